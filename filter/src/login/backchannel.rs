//! OIDC Back-Channel Logout 1.0: the IdP POSTs a signed `logout_token`;
//! once it checks out, the subject is revoked on every VM at once (the
//! revocation cut-off in shared data), so every downstream token of that
//! user issued so far stops working on its next request.
//!
//! Checks (§2.6): signature by `kid` from the JWKS, the header's `typ`
//! when present (`logout+jwt`, §2.4's explicit typing, so no other JWT of
//! the IdP, an ID token say, passes for a logout token), `iss`, `aud`, `iat`
//! (not in the future, not older than `MAX_LOGOUT_TOKEN_AGE_NS`), `exp`
//! when present (a number, not passed), the `events` claim with the
//! back-channel logout member, a `sub` and/or `sid`, no `nonce`, and a `jti`
//! not seen before (kept in a bounded set in shared data).
//!
//! What ends: with a `sid`, only the sessions of that IdP session (a login
//! keeps the ID token's `sid` in its record and puts the session in one of
//! `idp_sid_slots(sid)`, so the few records there are all there is to read);
//! the user's other sessions stay. When no record there knows the sid (an
//! IdP whose ID tokens carry none, a session from before this version) and
//! the token names a `sub`, every session of the `sub` is revoked, as
//! without a `sid`: a logout is never silently dropped. A `sid` alone that
//! no record knows ends nothing (that session is already gone).

use serde_json::Value;

use super::error::LoginError;
use super::fetch::request_jwks_refetch;
use super::form::parse;
use super::idp_jwt::{audience_has, seconds, secs_to_ns, verify_signed, JwtError};
use super::provider::Provider;
use super::seen::{remember_once, JTI_TAG};
use crate::config::Config;
use crate::reply::LocalReply;
use crate::session::{
    idp_sid_slots, revoke_subject, session_key, update_session, Change, SessionState, MAX_IDP_SID_LEN,
    MAX_SUBJECT_LEN,
};
use crate::store::SharedStore;

pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Oldest `iat` accepted (the jti set remembers tokens this long).
pub const MAX_LOGOUT_TOKEN_AGE_NS: u64 = 10 * 60 * 1_000_000_000;
/// Largest request body read.
pub const MAX_BODY_LEN: usize = 32 * 1024;

/// The reply and, on success, what was logged out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelDone {
    pub reply: LocalReply,
    pub result: Result<LoggedOut, LoginError>,
}

/// What a valid logout token ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedOut {
    /// Every session and token of this subject (no `sid`, or a `sid` no
    /// record knows).
    Subject(String),
    /// The sessions of the token's IdP session (`sid`): how many were live.
    Sessions { ended: usize },
}

impl LoggedOut {
    /// For the log line (no subject, no sid).
    pub fn describe(&self) -> String {
        match self {
            LoggedOut::Subject(_) => "revoked a subject (every session)".to_string(),
            LoggedOut::Sessions { ended } => format!("ended {ended} session(s) of one IdP session (sid)"),
        }
    }
}

/// Handles a request to `login.backchannel_logout_path`; `body` is the
/// whole request body (the adapter buffers it, at most `MAX_BODY_LEN`).
pub fn backchannel_logout(
    cfg: &Config,
    provider: &Provider,
    store: &dyn SharedStore,
    method: &str,
    body: &[u8],
    now_ns: u64,
) -> BackchannelDone {
    let result = check_and_revoke(cfg, provider, store, method, body, now_ns);
    let reply = match &result {
        Ok(_) => LocalReply {
            status: 200,
            headers: vec![("cache-control", "no-store".to_string())],
            body: Vec::new(),
        },
        Err(e) => e.to_json(),
    };
    BackchannelDone { reply, result }
}

fn check_and_revoke(
    cfg: &Config,
    provider: &Provider,
    store: &dyn SharedStore,
    method: &str,
    body: &[u8],
    now_ns: u64,
) -> Result<LoggedOut, LoginError> {
    let bad = |r| Err(LoginError::BadLogoutToken(r));
    if method != "POST" {
        return Err(LoginError::MethodNotAllowed);
    }
    let Some(login) = &cfg.login else {
        return Err(LoginError::MethodNotAllowed);
    };
    if body.len() > MAX_BODY_LEN {
        return bad("request body too large");
    }
    let form = parse(&String::from_utf8_lossy(body));
    let mut tokens = form.iter().filter(|(k, _)| k == "logout_token");
    let token = match (tokens.next(), tokens.next()) {
        (Some((_, t)), None) if !t.is_empty() => t,
        _ => return bad("exactly one logout_token is required"),
    };
    let Some((_, keys)) = provider.ready() else {
        return Err(LoginError::NotReady { retry_after_s: 1 });
    };
    let claims = match verify_signed(token, keys) {
        Ok((header, claims)) => {
            if !typed_as_logout_token(header.get("typ")) {
                return bad("logout token typ is not logout+jwt");
            }
            claims
        }
        Err(JwtError::UnknownKey { .. }) => {
            request_jwks_refetch(cfg, store);
            return bad("logout token signed with an unknown key");
        }
        Err(_) => return bad("logout token signature is invalid"),
    };
    let leeway_ns = u64::try_from(cfg.downstream.leeway.as_nanos()).unwrap_or(u64::MAX);
    if claims.get("iss").and_then(Value::as_str) != Some(login.provider.issuer.as_str()) {
        return bad("logout token issuer is wrong");
    }
    if !audience_has(&claims, &cfg.idp.client_id) {
        return bad("logout token audience is wrong");
    }
    let Some(iat_ns) = seconds(&claims, "iat").map(secs_to_ns) else {
        return bad("logout token has no issue time");
    };
    if iat_ns > now_ns.saturating_add(leeway_ns)
        || iat_ns
            .saturating_add(MAX_LOGOUT_TOKEN_AGE_NS)
            .saturating_add(leeway_ns)
            < now_ns
    {
        return bad("logout token issue time is out of range");
    }
    if let Some(exp) = claims.get("exp") {
        let expired = seconds(&claims, "exp")
            .is_none_or(|exp| now_ns >= secs_to_ns(exp).saturating_add(leeway_ns));
        if expired || exp.is_null() {
            return bad("logout token expired");
        }
    }
    let event_ok = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_EVENT))
        .is_some_and(Value::is_object);
    if !event_ok {
        return bad("logout token lacks the back-channel logout event");
    }
    if claims.contains_key("nonce") {
        return bad("logout token must not carry a nonce");
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let sid = claims
        .get("sid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let jti = match claims.get("jti").and_then(Value::as_str) {
        Some(jti) if !jti.is_empty() => jti,
        _ => return bad("logout token has no jti"),
    };
    match (sub, sid) {
        (None, None) => return bad("logout token has neither sub nor sid"),
        (Some(sub), _) if sub.len() > MAX_SUBJECT_LEN => return bad("logout token subject too long"),
        _ => {}
    }
    let remember_until = iat_ns
        .saturating_add(MAX_LOGOUT_TOKEN_AGE_NS)
        .saturating_add(leeway_ns.saturating_mul(2));
    let id = format!("{}\u{0}{jti}", login.provider.issuer);
    match remember_once(
        store,
        &cfg.shared_data_prefix,
        JTI_TAG,
        &id,
        remember_until,
        now_ns,
    ) {
        Ok(true) => {}
        Ok(false) => return bad("logout token replayed"),
        Err(_) => return Err(LoginError::StoreFailed),
    }
    if let Some(sid) = sid.filter(|s| s.len() <= MAX_IDP_SID_LEN) {
        let (known, ended) = end_idp_session(store, cfg, sid, sub, now_ns)?;
        if known || sub.is_none() {
            return Ok(LoggedOut::Sessions { ended });
        }
    }
    match sub {
        Some(sub) => {
            revoke_subject(store, cfg, sub, now_ns).map_err(|_| LoginError::StoreFailed)?;
            Ok(LoggedOut::Subject(sub.to_string()))
        }
        // A sid too long for any record to hold, and no sub.
        None => Ok(LoggedOut::Sessions { ended: 0 }),
    }
}

/// `typ` absent, or `logout+jwt` (RFC 8725 §3.11: compared case-insensitively,
/// with or without the `application/` prefix).
fn typed_as_logout_token(typ: Option<&Value>) -> bool {
    match typ {
        None => true,
        Some(Value::String(typ)) => {
            let typ = typ.to_ascii_lowercase();
            typ.strip_prefix("application/").unwrap_or(&typ) == "logout+jwt"
        }
        Some(_) => false,
    }
}

/// Ends the live sessions of IdP session `sid` (of `sub`, when given), in
/// the slots a login with that sid may use. `known`: a record there (live
/// or ended) carries the sid.
fn end_idp_session(
    store: &dyn SharedStore,
    cfg: &Config,
    sid: &str,
    sub: Option<&str>,
    now_ns: u64,
) -> Result<(bool, usize), LoginError> {
    let mut known = false;
    let mut ended = 0;
    let mut slots = idp_sid_slots(sid, cfg.max_sessions);
    slots.sort_unstable();
    slots.dedup();
    for slot in slots {
        let key = session_key(&cfg.shared_data_prefix, slot);
        let outcome = update_session(store, &key, |current| match current {
            Some(mut s) if s.idp_sid.as_deref() == Some(sid) && sub.is_none_or(|u| u == s.sub) => {
                if s.state == SessionState::Live {
                    s.kill("backchannel_logout", now_ns);
                    // Waiters of a running revalidation see a result arrive.
                    s.seq = s.seq.saturating_add(1);
                    Change::Write(s, (true, 1))
                } else {
                    Change::Keep((true, 0))
                }
            }
            _ => Change::Keep((false, 0)),
        })
        .map_err(|_| LoginError::StoreFailed)?;
        known |= outcome.0;
        ended += outcome.1;
    }
    Ok((known, ended))
}

/// The reply to a back-channel logout whose body exceeds `MAX_BODY_LEN`
/// (the adapter stops reading there).
pub fn body_too_large() -> LocalReply {
    let body = serde_json::json!({
        "error": "invalid_request",
        "reason": "request body too large"
    })
    .to_string();
    LocalReply {
        status: 413,
        headers: vec![
            ("content-type", "application/json".to_string()),
            ("cache-control", "no-store".to_string()),
        ],
        body: body.into_bytes(),
    }
}

#[cfg(test)]
#[path = "backchannel_tests.rs"]
mod tests;
