//! Signature check of JWTs the IdP signs (ID tokens, logout tokens) with a
//! key chosen by `kid` from its JWKS; the claims are checked by the callers
//! against the proxy clock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, EdDSAPublicKeyLike, NoCustomClaims, RSAPublicKeyLike, UnixTimeStamp,
    VerificationOptions,
};
use serde_json::{Map, Value};

use super::jwks::{IdpKey, JwkSet};

/// Longest IdP token accepted.
pub const MAX_IDP_JWT_LEN: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    /// No key with this `kid` (and algorithm): the JWKS may have rotated.
    UnknownKey {
        kid: Option<String>,
    },
    BadSignature,
}

/// The claims of `token` once its signature checks out.
pub fn verify_signature(token: &str, keys: &JwkSet) -> Result<Map<String, Value>, JwtError> {
    verify_signed(token, keys).map(|(_, claims)| claims)
}

/// A JWT's header or claims, as JSON members.
pub type JsonObject = Map<String, Value>;

/// The header and the claims of `token` once its signature checks out.
pub fn verify_signed(token: &str, keys: &JwkSet) -> Result<(JsonObject, JsonObject), JwtError> {
    if token.len() > MAX_IDP_JWT_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header = decode(header)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(JwtError::Malformed),
    };
    let key = keys.select(kid, alg).ok_or_else(|| JwtError::UnknownKey {
        kid: kid.map(str::to_string),
    })?;
    // Time checks happen in the callers against the proxy clock.
    let options = VerificationOptions {
        accept_future: true,
        time_tolerance: None,
        artificial_time: Some(UnixTimeStamp::from_secs(0)),
        max_token_length: Some(MAX_IDP_JWT_LEN),
        max_header_length: Some(MAX_IDP_JWT_LEN),
        ..VerificationOptions::default()
    };
    let checked = match key {
        IdpKey::Rs256(k) => k
            .verify_token::<NoCustomClaims>(token, Some(options))
            .map(|_| ()),
        IdpKey::Es256(k) => k
            .verify_token::<NoCustomClaims>(token, Some(options))
            .map(|_| ()),
        IdpKey::EdDsa(k) => k
            .verify_token::<NoCustomClaims>(token, Some(options))
            .map(|_| ()),
    };
    checked.map_err(|_| JwtError::BadSignature)?;
    Ok((header, decode(claims)?))
}

fn decode(part: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}

/// `aud` is the client id, or an array containing it.
pub(crate) fn audience_has(claims: &Map<String, Value>, client_id: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    }
}

/// A numeric-date claim in seconds (integer or non-negative float).
pub(crate) fn seconds(claims: &Map<String, Value>, name: &str) -> Option<u64> {
    let n = claims.get(name)?.as_number()?;
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| *f >= 0.0 && f.is_finite())
            .map(|f| f as u64)
    })
}

pub(crate) fn secs_to_ns(s: u64) -> u64 {
    s.saturating_mul(1_000_000_000)
}
