//! Dynamic client registration (RFC 7591) without storage: the issued
//! `client_id` carries the registration (`client.rs`).
//!
//! Accepted metadata: `redirect_uris` (required, 1 to 8, each acceptable to
//! `redirect.rs`, else `invalid_redirect_uri`), `token_endpoint_auth_method`
//! (`none`, `client_secret_basic` (RFC 7591's default) or
//! `client_secret_post`), `grant_types` (`authorization_code`, optionally
//! `refresh_token`; default `["authorization_code"]`), `response_types`
//! (`["code"]`), `client_name` (at most 100 characters). Everything else is
//! ignored and not echoed (§3.2.1 lets the server decide). Any other value
//! is `invalid_client_metadata`. A registration whose id would exceed
//! `MAX_CLIENT_ID_LEN` is refused, so authorization URLs stay short.

use serde_json::{json, Map, Value};

use super::cimd::{grant_types, valid_name};
use super::client::{dynamic_client_id, dynamic_client_secret, AuthMethod, Registration, MAX_CLIENT_ID_LEN, MAX_DYNAMIC_REDIRECT_URIS};
use super::http::{json_reply, refuse_unless_post, McpRequest, OAuthError};
use super::keys::{b64, random_bytes};
use super::redirect::check_redirect_uri;
use super::McpContext;
use crate::reply::LocalReply;

const NANOS_PER_SEC: u64 = 1_000_000_000;

fn metadata_error(description: &'static str) -> OAuthError {
    OAuthError::new(400, "invalid_client_metadata", description)
}

pub(crate) fn register(
    ctx: &McpContext,
    req: &McpRequest,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> LocalReply {
    if let Some(refused) = refuse_unless_post(req) {
        return refused;
    }
    match registration(ctx, req, random, now_ns) {
        Ok(reply) => reply,
        Err(error) => error.reply(),
    }
}

fn registration(
    ctx: &McpContext,
    req: &McpRequest,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Result<LocalReply, OAuthError> {
    if !ctx.mcp.dynamic_registration {
        return Err(OAuthError::new(403, "access_denied", "dynamic client registration is disabled"));
    }
    if req.media_type().as_deref() != Some("application/json") {
        return Err(metadata_error("the registration must be a JSON object (application/json)"));
    }
    let Ok(Value::Object(meta)) = serde_json::from_slice::<Value>(&req.body) else {
        return Err(metadata_error("the registration must be a JSON object (application/json)"));
    };
    let uris = match meta.get("redirect_uris") {
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_DYNAMIC_REDIRECT_URIS => list,
        Some(Value::Array(list)) if list.len() > MAX_DYNAMIC_REDIRECT_URIS => {
            return Err(OAuthError::new(400, "invalid_redirect_uri", "at most 8 redirect_uris"))
        }
        _ => return Err(OAuthError::new(400, "invalid_redirect_uri", "redirect_uris is required")),
    };
    let mut redirect_uris = Vec::with_capacity(uris.len());
    for uri in uris {
        let text = uri.as_str().ok_or(OAuthError::new(400, "invalid_redirect_uri", "a redirect URI must be a string"))?;
        check_redirect_uri(text).map_err(|reason| OAuthError::new(400, "invalid_redirect_uri", reason))?;
        if !redirect_uris.iter().any(|u| u == text) {
            redirect_uris.push(text.to_string());
        }
    }
    let method = match meta.get("token_endpoint_auth_method") {
        None => AuthMethod::SecretBasic,
        Some(Value::String(m)) => AuthMethod::parse(m)
            .ok_or(metadata_error("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post"))?,
        Some(_) => return Err(metadata_error("token_endpoint_auth_method must be a string")),
    };
    let refresh = grant_types(meta.get("grant_types")).ok_or(metadata_error(
        "grant_types must be authorization_code, optionally with refresh_token",
    ))?;
    match meta.get("response_types") {
        None => {}
        Some(Value::Array(list)) if !list.is_empty() && list.iter().all(|t| t == "code") => {}
        _ => return Err(metadata_error("response_types must be [\"code\"]")),
    }
    let name = match meta.get("client_name") {
        None => None,
        Some(Value::String(n)) if valid_name(n) => Some(n.clone()),
        Some(_) => return Err(metadata_error("client_name must be 1 to 100 characters without control characters")),
    };
    let issued_at = now_ns / NANOS_PER_SEC;
    let nonce = random_bytes(8, random).ok_or(OAuthError::unavailable("the server could not generate a client id; retry"))?;
    let reg = Registration {
        r: redirect_uris.clone(),
        n: name.clone(),
        m: method.as_str().to_string(),
        f: refresh,
        t: issued_at,
        j: b64(&nonce),
    };
    let client_id = dynamic_client_id(ctx.keys, &reg)
        .filter(|id| id.len() <= MAX_CLIENT_ID_LEN)
        .ok_or(metadata_error("the registration is too large (fewer or shorter redirect_uris, a shorter client_name)"))?;
    let mut grants = vec!["authorization_code"];
    if refresh {
        grants.push("refresh_token");
    }
    let mut body = Map::new();
    body.insert("client_id".into(), json!(client_id));
    body.insert("client_id_issued_at".into(), json!(issued_at));
    if method != AuthMethod::None {
        body.insert("client_secret".into(), json!(dynamic_client_secret(ctx.keys, &client_id)));
        body.insert("client_secret_expires_at".into(), json!(0));
    }
    if let Some(name) = name {
        body.insert("client_name".into(), json!(name));
    }
    body.insert("redirect_uris".into(), json!(redirect_uris));
    body.insert("grant_types".into(), json!(grants));
    body.insert("response_types".into(), json!(["code"]));
    body.insert("token_endpoint_auth_method".into(), json!(method.as_str()));
    Ok(json_reply(201, &Value::Object(body)))
}

#[cfg(test)]
#[path = "register_tests.rs"]
mod tests;
