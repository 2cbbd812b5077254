//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6 with OAuth 2.1 PKCE and
//! refresh token rotation, RFC 8707 `resource`).
//!
//! Access tokens are JWTs signed with vigil's login signing key: `iss` =
//! `mcp.issuer`, `aud` = the resource, `sub`, `sid` (the vigil session, so
//! revalidation and revocation apply to them as to the session cookie),
//! `iat_ns` (after the subject's revocation cut-off), `exp` (at most
//! `access_token_lifetime`, never past the session or the family),
//! `client_id`, `scope`, `fam` (the token family, `family.rs`). Every error
//! is an RFC 6749 §5.2 JSON error with `Cache-Control: no-store`.

use serde_json::{Map, Value};

use super::client::{authenticate, Authenticated};
use super::code::{open_code, redeem, Redeemed};
use super::family::{self, parse_refresh_token, refresh_token, FamilyId, NewFamily, Rotation};
use super::http::{json_reply, parse_form, refuse_unless_post, single, McpRequest, OAuthError};
use super::keys::{constant_time_eq, digest};
use super::routes::find_resource;
use super::{live_session, McpContext};
use crate::login::pkce::s256_challenge;
use crate::reply::LocalReply;
use crate::session::mint_time_ns;
use crate::store::SharedStore;
use crate::token::MintClaims;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const REPEATED: OAuthError = OAuthError::invalid_request("a parameter is repeated");

/// Serves the token endpoint.
pub(crate) fn token(
    ctx: &McpContext,
    store: &dyn SharedStore,
    req: &McpRequest,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> LocalReply {
    if let Some(refused) = refuse_unless_post(req) {
        return refused;
    }
    match grant(ctx, store, req, random, now_ns) {
        Ok(reply) => reply,
        Err(error) => error.reply(),
    }
}

/// The parameters of a form `POST`, each at most once (RFC 6749 §3.2),
/// except `resource` (RFC 8707 allows several; callers refuse more than one).
pub(crate) fn form_params(req: &McpRequest) -> Result<Vec<(String, String)>, OAuthError> {
    if req.media_type().as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    let params = parse_form(&req.body).map_err(OAuthError::invalid_request)?;
    for (i, (name, _)) in params.iter().enumerate() {
        if name != "resource" && params[..i].iter().any(|(n, _)| n == name) {
            return Err(REPEATED);
        }
    }
    Ok(params)
}

/// The one `resource` parameter, if any, as a configured resource.
fn resource_param(ctx: &McpContext, params: &[(String, String)]) -> Result<Option<String>, OAuthError> {
    let values: Vec<&str> = params
        .iter()
        .filter(|(k, v)| k == "resource" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    match values.as_slice() {
        [] => Ok(None),
        [one] => find_resource(ctx.mcp, one)
            .and_then(|i| ctx.mcp.resources.get(i))
            .map(|r| Some(r.resource.clone()))
            .ok_or(OAuthError::invalid_target("the resource is not served by this authorization server")),
        _ => Err(OAuthError::invalid_target("request one resource at a time")),
    }
}

fn grant(
    ctx: &McpContext,
    store: &dyn SharedStore,
    req: &McpRequest,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Result<LocalReply, OAuthError> {
    let params = form_params(req)?;
    let client = authenticate(ctx.mcp, ctx.keys, req, &params)?;
    match single(&params, "grant_type").map_err(|()| REPEATED)? {
        None => Err(OAuthError::invalid_request("grant_type is required")),
        Some("authorization_code") => code_grant(ctx, store, &client, &params, random, now_ns),
        Some("refresh_token") => refresh_grant(ctx, store, &client, &params, now_ns),
        Some(_) => Err(OAuthError::new(400, "unsupported_grant_type", "only authorization_code and refresh_token are supported")),
    }
}

/// RFC 7636 §4.1 verifier: 43 to 128 unreserved characters.
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn code_grant(
    ctx: &McpContext,
    store: &dyn SharedStore,
    client: &Authenticated,
    params: &[(String, String)],
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Result<LocalReply, OAuthError> {
    let get = |name: &str| single(params, name).map_err(|()| REPEATED);
    let code = get("code")?.ok_or(OAuthError::invalid_request("code is required"))?;
    let redirect_uri = get("redirect_uri")?.ok_or(OAuthError::invalid_request("redirect_uri is required"))?;
    let verifier = get("code_verifier")?.ok_or(OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let resource = resource_param(ctx, params)?;
    let claims = open_code(ctx.keys, code, now_ns).map_err(OAuthError::invalid_grant)?;
    if !constant_time_eq(claims.c.as_bytes(), digest(&client.id).as_bytes()) {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if claims.r != digest(redirect_uri) {
        return Err(OAuthError::invalid_grant("redirect_uri differs from the authorization request"));
    }
    if !valid_verifier(verifier) || !constant_time_eq(s256_challenge(verifier).as_bytes(), claims.p.as_bytes()) {
        return Err(OAuthError::invalid_grant("the code_verifier does not match the code_challenge"));
    }
    if resource.as_ref().is_some_and(|r| *r != claims.a) {
        return Err(OAuthError::invalid_target("the resource differs from the authorization request"));
    }
    if find_resource(ctx.mcp, &claims.a).is_none() {
        return Err(OAuthError::invalid_target("the resource is no longer served"));
    }
    let session =
        live_session(ctx.cfg, store, &claims.u, &claims.i, Some(claims.t), now_ns).map_err(OAuthError::invalid_grant)?;
    let cfg = ctx.cfg;
    let prefix = &cfg.shared_data_prefix;
    let refresh_life = u64::try_from(ctx.mcp.refresh_token_lifetime.as_nanos()).unwrap_or(u64::MAX);
    let new = NewFamily {
        client_digest: claims.c.clone(),
        sub: claims.u.clone(),
        sid: claims.i.clone(),
        resource: claims.a.clone(),
        scope: claims.s.clone(),
        refresh: claims.f,
        created_ns: mint_time_ns(store, cfg, &claims.u, now_ns),
        expires_ns: now_ns.saturating_add(refresh_life).min(session.expires_ns),
    };
    let busy = OAuthError::unavailable("the server is busy; retry");
    let id = family::create(store, prefix, ctx.mcp.refresh_families, &new, random, now_ns).map_err(|_| busy)?;
    let revoke_new = || {
        let _ = family::revoke(store, prefix, &id);
    };
    match redeem(store, prefix, ctx.keys, &claims.n, claims.e, &id.to_string(), now_ns) {
        Ok(Redeemed::First) => {}
        Ok(Redeemed::Replayed { family: first }) => {
            revoke_new();
            if let Some(first) = FamilyId::parse(&first, ctx.mcp.refresh_families) {
                let _ = family::revoke(store, prefix, &first);
            }
            return Err(OAuthError::invalid_grant("the code was already used; what it issued is revoked"));
        }
        Ok(Redeemed::Full) | Err(_) => {
            revoke_new();
            return Err(busy);
        }
    }
    let issued = Issue {
        family: &id,
        generation: new.refresh.then_some(0),
        sub: &new.sub,
        sid: &new.sid,
        resource: &new.resource,
        scope: &new.scope,
        client_id: &client.id,
        ends_ns: new.expires_ns,
    };
    issue(ctx, store, &issued, now_ns)
}

fn refresh_grant(
    ctx: &McpContext,
    store: &dyn SharedStore,
    client: &Authenticated,
    params: &[(String, String)],
    now_ns: u64,
) -> Result<LocalReply, OAuthError> {
    let get = |name: &str| single(params, name).map_err(|()| REPEATED);
    let presented = get("refresh_token")?.ok_or(OAuthError::invalid_request("refresh_token is required"))?;
    let resource = resource_param(ctx, params)?;
    let scope = get("scope")?;
    let prefix = &ctx.cfg.shared_data_prefix;
    let unknown = OAuthError::invalid_grant("unknown refresh token");
    let (id, generation) = parse_refresh_token(ctx.keys, presented, ctx.mcp.refresh_families).ok_or(unknown)?;
    // Checked before the rotation, so a bad request does not spend the token.
    let current = family::read(store, prefix, &id).ok_or(unknown)?;
    if resource.as_ref().is_some_and(|r| *r != current.a) {
        return Err(OAuthError::invalid_target("the resource differs from the original grant"));
    }
    let original: Vec<&str> = current.s.split(' ').filter(|s| !s.is_empty()).collect();
    let narrowed = match scope {
        None => current.s.clone(),
        Some(requested) => {
            let wanted: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
            if !wanted.iter().all(|s| original.contains(s)) {
                return Err(OAuthError::invalid_scope("the scope exceeds the original grant"));
            }
            wanted.join(" ")
        }
    };
    let cfg = ctx.cfg;
    let check = |f: &family::Family| live_session(cfg, store, &f.u, &f.i, Some(f.t), now_ns).map(|_| ());
    let rotated = match family::rotate(store, prefix, &id, generation, &digest(&client.id), now_ns, &check) {
        Ok(Rotation::Rotated(f)) => f,
        Ok(Rotation::Reused) => {
            return Err(OAuthError::invalid_grant("the refresh token was already used; the grant is revoked"))
        }
        Ok(Rotation::Refused(reason)) => return Err(OAuthError::invalid_grant(reason)),
        Err(_) => return Err(OAuthError::unavailable("the server is busy; retry")),
    };
    let ends_ns = live_session(cfg, store, &rotated.u, &rotated.i, None, now_ns)
        .map_or(rotated.x, |s| s.expires_ns.min(rotated.x));
    let issued = Issue {
        family: &id,
        generation: Some(rotated.g),
        sub: &rotated.u,
        sid: &rotated.i,
        resource: &rotated.a,
        scope: &narrowed,
        client_id: &client.id,
        ends_ns,
    };
    issue(ctx, store, &issued, now_ns)
}

/// What one token response contains.
struct Issue<'a> {
    family: &'a FamilyId,
    /// The refresh token's generation; `None`: no refresh token.
    generation: Option<u64>,
    sub: &'a str,
    sid: &'a str,
    resource: &'a str,
    scope: &'a str,
    client_id: &'a str,
    /// Nothing issued lives past this (session or family end).
    ends_ns: u64,
}

fn issue(ctx: &McpContext, store: &dyn SharedStore, issued: &Issue, now_ns: u64) -> Result<LocalReply, OAuthError> {
    let lifetime = u64::try_from(ctx.mcp.access_token_lifetime.as_nanos()).unwrap_or(u64::MAX);
    let exp_ns = now_ns.saturating_add(lifetime).min(issued.ends_ns);
    let mut extra = Map::new();
    extra.insert("client_id".into(), Value::from(issued.client_id));
    extra.insert("scope".into(), Value::from(issued.scope));
    extra.insert("fam".into(), Value::from(issued.family.to_string()));
    let access_token = ctx
        .signer
        .mint(&MintClaims {
            iss: ctx.mcp.issuer.clone(),
            aud: issued.resource.to_string(),
            sub: issued.sub.to_string(),
            sid: issued.sid.to_string(),
            iat_ns: mint_time_ns(store, ctx.cfg, issued.sub, now_ns),
            exp_s: exp_ns / NANOS_PER_SEC,
            extra,
        })
        .map_err(|_| OAuthError::new(500, "server_error", "the access token could not be signed"))?;
    let mut body = Map::new();
    body.insert("access_token".into(), Value::from(access_token));
    body.insert("token_type".into(), Value::from("Bearer"));
    body.insert("expires_in".into(), Value::from(exp_ns.saturating_sub(now_ns) / NANOS_PER_SEC));
    if !issued.scope.is_empty() {
        body.insert("scope".into(), Value::from(issued.scope));
    }
    if let Some(generation) = issued.generation {
        body.insert("refresh_token".into(), Value::from(refresh_token(ctx.keys, issued.family, generation)));
    }
    Ok(json_reply(200, &Value::Object(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_follow_rfc7636() {
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(valid_verifier(&"-._~".repeat(32)));
        assert!(!valid_verifier(&"a".repeat(42)));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(43))));
    }
}
