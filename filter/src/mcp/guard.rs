//! The check of protected paths: only access tokens this server issued for
//! the resource (`aud`), sent as `Authorization: Bearer` (never a cookie,
//! never the query string), whose token family is still live and whose
//! scopes cover the resource's. The session behind the token is then the
//! adapter's ordinary admission (`revalidation::admit`).

use serde_json::Value;

use super::family::{read, FamilyId};
use super::http::{is_browser_navigation, McpRequest};
use super::metadata::{insufficient_scope, invalid_request, invalid_token, missing_token};
use super::McpContext;
use crate::reply::LocalReply;
use crate::revalidation::DenyReason;
use crate::store::SharedStore;
use crate::token::DownstreamClaims;

/// A request with a valid access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// `sub`, `sid`, `iat_ns` for `revalidation::admit`; `extra` holds
    /// `client_id`, `scope` and `fam`.
    pub claims: DownstreamClaims,
    /// Index into `mcp.resources`.
    pub resource: usize,
    pub client_id: String,
    pub scope: String,
}

/// What to do with a request to a protected path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// Run the admission, forward without `authorization` (module doc of `mcp`).
    Admit(Box<Admitted>),
    Reply(LocalReply),
    /// A browser navigation without `Authorization`: vigil's ordinary handling.
    Ordinary,
    /// A CORS preflight (no credentials by definition): forward untouched.
    Preflight,
}

/// Checks a request to `mcp.resources[resource]`.
pub fn guard(ctx: &McpContext, store: &dyn SharedStore, resource: usize, req: &McpRequest, now_ns: u64) -> Guard {
    let (Some(config), Some(verifier)) = (ctx.mcp.resources.get(resource), ctx.verifiers.get(resource)) else {
        return Guard::Ordinary;
    };
    let mut headers = req.header_values("authorization");
    let (first, second) = (headers.next(), headers.next());
    let Some(value) = first else {
        if req.method == "OPTIONS" && req.header("access-control-request-method").is_some() {
            return Guard::Preflight;
        }
        if is_browser_navigation(&req.method, &req.headers) {
            return Guard::Ordinary;
        }
        return Guard::Reply(missing_token(config));
    };
    if second.is_some() {
        return Guard::Reply(invalid_request(config, "the authorization header is repeated"));
    }
    let Some(token) = bearer(value) else {
        return Guard::Reply(invalid_request(config, "the authorization header is not Bearer <token>"));
    };
    let claims = match verifier.verify(token, now_ns) {
        Ok(claims) => claims,
        Err(e) => return Guard::Reply(invalid_token(config, e.reason())),
    };
    let text = |name: &str| claims.extra.get(name).and_then(Value::as_str).map(str::to_string);
    let (Some(client_id), Some(scope), Some(fam)) = (text("client_id"), text("scope"), text("fam")) else {
        return Guard::Reply(invalid_token(config, "not an access token of this server"));
    };
    let family = FamilyId::parse(&fam, ctx.mcp.refresh_families)
        .and_then(|id| read(store, &ctx.cfg.shared_data_prefix, &id))
        .filter(|f| f.is_live(now_ns) && f.a == config.resource && f.i == claims.sid && f.u == claims.sub);
    if family.is_none() {
        return Guard::Reply(invalid_token(config, "the token was revoked"));
    }
    let granted: Vec<&str> = scope.split(' ').collect();
    if !config.scopes.iter().all(|needed| granted.contains(&needed.as_str())) {
        return Guard::Reply(insufficient_scope(config));
    }
    Guard::Admit(Box::new(Admitted { claims, resource, client_id, scope }))
}

/// The token of `Bearer <token68>` (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    let token = token.trim_start();
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.bytes().all(token68)).then_some(token)
}

/// The reply when the admission of an admitted token denies it (the session
/// behind it ended, was revoked, or could not be revalidated).
pub fn denied(ctx: &McpContext, resource: usize, reason: &DenyReason) -> LocalReply {
    let description = match reason {
        DenyReason::Revoked => "the user's access was revoked",
        DenyReason::NoSession => "the session behind this token is gone; authorize again",
        DenyReason::SessionEnded => "the user's session has ended; authorize again",
        DenyReason::Stale | DenyReason::Failed(_) => "the session could not be revalidated",
    };
    match ctx.mcp.resources.get(resource) {
        Some(config) => invalid_token(config, description),
        None => crate::reply::Rejection::InvalidToken(description).to_reply(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc.def-_~+/="), Some("abc.def-_~+/="));
        assert_eq!(bearer("bearer  abc"), Some("abc"));
        for bad in ["Bearer", "Bearer ", "Basic abc", "Bearer a b", "Bearer a,b", "abc"] {
            assert_eq!(bearer(bad), None, "{bad}");
        }
    }
}
