//! ID token validation (OIDC Core §3.1.3.7): signature by `kid`, `iss`,
//! `aud`, `azp`, `exp`, `iat`, `nonce`, and a usable `sub`.

use serde_json::{Map, Value};

use super::idp_jwt::{audience_has, seconds, secs_to_ns, verify_signature, JwtError};
use super::jwks::JwkSet;
use crate::session::MAX_SUBJECT_LEN;

/// What the ID token must match.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenCheck<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now_ns: u64,
    pub leeway_ns: u64,
}

/// A validated ID token. Debug omits the claims.
#[derive(Clone, PartialEq)]
pub struct IdToken {
    pub sub: String,
    /// The IdP's session id (`sid`), when present.
    pub sid: Option<String>,
    pub claims: Map<String, Value>,
}

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdToken")
            .field("sub", &self.sub)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdTokenError {
    /// No key for the token's `kid`: refetch the JWKS (rate-limited).
    UnknownKey { kid: Option<String> },
    /// Any other failure, with a static reason for the page and the log.
    Invalid(&'static str),
}

impl From<JwtError> for IdTokenError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::UnknownKey { kid } => IdTokenError::UnknownKey { kid },
            JwtError::Malformed => IdTokenError::Invalid("malformed id token"),
            JwtError::BadSignature => IdTokenError::Invalid("id token signature is invalid"),
        }
    }
}

pub fn validate_id_token(
    token: &str,
    keys: &JwkSet,
    check: &IdTokenCheck,
) -> Result<IdToken, IdTokenError> {
    let claims = verify_signature(token, keys)?;
    let invalid = |r| Err(IdTokenError::Invalid(r));
    if claims.get("iss").and_then(Value::as_str) != Some(check.issuer) {
        return invalid("id token issuer is wrong");
    }
    if !audience_has(&claims, check.client_id) {
        return invalid("id token audience is wrong");
    }
    let several_audiences = matches!(claims.get("aud"), Some(Value::Array(a)) if a.len() > 1);
    match claims.get("azp") {
        Some(azp) if azp.as_str() != Some(check.client_id) => {
            return invalid("id token authorized party is wrong")
        }
        None if several_audiences => return invalid("id token has several audiences but no azp"),
        _ => {}
    }
    let Some(exp) = seconds(&claims, "exp") else {
        return invalid("id token has no expiry");
    };
    if check.now_ns >= secs_to_ns(exp).saturating_add(check.leeway_ns) {
        return invalid("id token expired");
    }
    let Some(iat) = seconds(&claims, "iat") else {
        return invalid("id token has no issue time");
    };
    if secs_to_ns(iat) > check.now_ns.saturating_add(check.leeway_ns) {
        return invalid("id token issued in the future");
    }
    let nonce_ok = claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|n| super::state::constant_time_eq(n.as_bytes(), check.nonce.as_bytes()));
    if !nonce_ok {
        return invalid("id token nonce does not match");
    }
    let sub = match claims.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= MAX_SUBJECT_LEN => s.to_string(),
        _ => return invalid("id token subject is missing or too long"),
    };
    let sid = claims
        .get("sid")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(IdToken { sub, sid, claims })
}

#[cfg(test)]
#[path = "id_token_tests.rs"]
mod tests;
