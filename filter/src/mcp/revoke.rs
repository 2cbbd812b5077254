//! Token revocation (RFC 7009). The client authenticates as at the token
//! endpoint. A refresh token or an access token of this server, issued to
//! that client, revokes its whole family: every refresh token of the grant
//! and, at once on every worker, its access tokens (the resource check reads
//! the family). Anything else (unknown, expired, malformed, another
//! client's token) is answered `200` too and changes nothing (§2.2: the
//! client cannot tell, and learns nothing about other clients' tokens).

use serde_json::Value;

use super::client::authenticate;
use super::family::{self, parse_refresh_token, FamilyId, REFRESH_PREFIX};
use super::http::{refuse_unless_post, single, McpRequest, OAuthError};
use super::keys::digest;
use super::token::form_params;
use super::McpContext;
use crate::reply::LocalReply;
use crate::store::SharedStore;

pub(crate) fn revoke(ctx: &McpContext, store: &dyn SharedStore, req: &McpRequest, now_ns: u64) -> LocalReply {
    if let Some(refused) = refuse_unless_post(req) {
        return refused;
    }
    match revoke_request(ctx, store, req, now_ns) {
        Ok(()) => LocalReply {
            status: 200,
            headers: vec![
                ("cache-control", "no-store".to_string()),
                ("access-control-allow-origin", "*".to_string()),
            ],
            body: Vec::new(),
        },
        Err(error) => error.reply(),
    }
}

fn revoke_request(ctx: &McpContext, store: &dyn SharedStore, req: &McpRequest, now_ns: u64) -> Result<(), OAuthError> {
    let params = form_params(req)?;
    let client = authenticate(ctx.mcp, ctx.keys, req, &params)?;
    let token = single(&params, "token")
        .map_err(|()| OAuthError::invalid_request("a parameter is repeated"))?
        .ok_or(OAuthError::invalid_request("token is required"))?;
    let Some(id) = family_of(ctx, store, token, &client.id, now_ns) else {
        return Ok(());
    };
    family::revoke(store, &ctx.cfg.shared_data_prefix, &id)
        .map(|_| ())
        .map_err(|_| OAuthError::unavailable("the server is busy; retry"))
}

/// The family of `token` when it is one of ours and `client_id`'s.
fn family_of(ctx: &McpContext, store: &dyn SharedStore, token: &str, client_id: &str, now_ns: u64) -> Option<FamilyId> {
    let slots = ctx.mcp.refresh_families;
    if token.starts_with(REFRESH_PREFIX) {
        let (id, _) = parse_refresh_token(ctx.keys, token, slots)?;
        let record = family::read(store, &ctx.cfg.shared_data_prefix, &id)?;
        return (record.c == digest(client_id)).then_some(id);
    }
    let claims = ctx.verifiers.iter().find_map(|v| v.verify(token, now_ns).ok())?;
    if claims.extra.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return None;
    }
    FamilyId::parse(claims.extra.get("fam").and_then(Value::as_str)?, slots)
}
