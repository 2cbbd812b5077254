//! Inline verification of downstream tokens.
//!
//! The header is checked here before any key is touched: `alg` must be in the
//! configured allow-list (never `none`), the key is chosen by `kid`, and the
//! header `alg` must be the chosen key's algorithm, so an HMAC secret can
//! never verify an asymmetric token or the reverse. jwt-simple then checks
//! the signature only (its clock is never read: the proxy clock is passed
//! in), and the claims are checked here against `now_ns`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, EdDSAPublicKeyLike, HS256Key, MACLike, NoCustomClaims,
    RSAPublicKeyLike, UnixTimeStamp, VerificationOptions,
};
use serde_json::{Map, Value};

use super::claims::{DownstreamClaims, REGISTERED};
use super::error::TokenError;
use crate::config::{DownstreamConfig, KeyMaterial};

/// Longest accepted token (bytes); longer ones are refused before decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
const NANOS_PER_SEC: u64 = 1_000_000_000;

enum Key {
    Hs256(HS256Key),
    Es256(jwt_simple::prelude::ES256PublicKey),
    EdDsa(jwt_simple::prelude::Ed25519PublicKey),
    Rs256(Box<jwt_simple::prelude::RS256PublicKey>),
}

struct SelectableKey {
    kid: Option<String>,
    alg: &'static str,
    key: Key,
}

/// Verifies downstream tokens against one configuration.
pub struct Verifier {
    issuer: String,
    audience: String,
    algorithms: Vec<String>,
    keys: Vec<SelectableKey>,
    leeway_ns: u64,
}

impl Verifier {
    pub fn new(config: &DownstreamConfig) -> Verifier {
        let keys = config
            .keys
            .iter()
            .map(|k| SelectableKey {
                kid: k.kid.clone(),
                alg: k.material.alg(),
                key: match &k.material {
                    KeyMaterial::Hs256(secret) => Key::Hs256(HS256Key::from_bytes(secret)),
                    KeyMaterial::Es256(key) => Key::Es256(key.clone()),
                    KeyMaterial::EdDsa(key) => Key::EdDsa(key.clone()),
                    KeyMaterial::Rs256(key) => Key::Rs256(Box::new(key.clone())),
                },
            })
            .collect();
        Verifier {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            algorithms: config.algorithms.clone(),
            keys,
            leeway_ns: u64::try_from(config.leeway.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Checks signature, `exp`/`nbf` (with leeway), `iss`, `aud` and the
    /// presence of `sub`, `sid` and `iat_ns` at proxy time `now_ns`.
    pub fn verify(&self, token: &str, now_ns: u64) -> Result<DownstreamClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(_sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header = decode_object(header_b64)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(TokenError::AlgorithmNotAllowed)?;
        if alg.eq_ignore_ascii_case("none") || !self.algorithms.iter().any(|a| a == alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(TokenError::Malformed),
        };
        let key = self.select(kid)?;
        if key.alg != alg {
            return Err(TokenError::AlgorithmMismatch);
        }
        check_signature(&key.key, token)?;
        self.check_claims(decode_object(claims_b64)?, now_ns)
    }

    /// A key without kid matches any token; one with a kid only its own.
    fn select(&self, kid: Option<&str>) -> Result<&SelectableKey, TokenError> {
        self.keys
            .iter()
            .find(|k| match (&k.kid, kid) {
                (None, _) => true,
                (Some(want), Some(got)) => want == got,
                (Some(_), None) => false,
            })
            .ok_or(TokenError::UnknownKid)
    }

    fn check_claims(
        &self,
        mut claims: Map<String, Value>,
        now_ns: u64,
    ) -> Result<DownstreamClaims, TokenError> {
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(TokenError::MissingExpiry)?;
        // Valid while now < exp + leeway (RFC 7519 §4.1.4).
        if now_ns
            >= exp
                .saturating_mul(NANOS_PER_SEC)
                .saturating_add(self.leeway_ns)
        {
            return Err(TokenError::Expired);
        }
        match claims.get("nbf") {
            None => {}
            Some(nbf) => {
                let nbf = nbf.as_u64().ok_or(TokenError::Malformed)?;
                if now_ns.saturating_add(self.leeway_ns) < nbf.saturating_mul(NANOS_PER_SEC) {
                    return Err(TokenError::NotYetValid);
                }
            }
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(TokenError::WrongIssuer);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => false,
        };
        if !audience_ok {
            return Err(TokenError::WrongAudience);
        }
        let sub = non_empty_string(&claims, "sub").ok_or(TokenError::MissingSubject)?;
        let sid = non_empty_string(&claims, "sid").ok_or(TokenError::MissingSessionId)?;
        let iat_ns = claims
            .get("iat_ns")
            .and_then(Value::as_u64)
            .ok_or(TokenError::MissingIssueTime)?;
        if iat_ns > now_ns.saturating_add(self.leeway_ns) {
            return Err(TokenError::IssuedInFuture);
        }
        for name in REGISTERED {
            claims.remove(name);
        }
        Ok(DownstreamClaims {
            sub,
            sid,
            iat_ns,
            exp,
            extra: claims,
        })
    }
}

fn non_empty_string(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn decode_object(part: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed),
    }
}

/// Signature only: jwt-simple's time checks are neutralised (time 0, future
/// accepted) because `check_claims` does them against the proxy clock.
fn check_signature(key: &Key, token: &str) -> Result<(), TokenError> {
    let options = VerificationOptions {
        accept_future: true,
        time_tolerance: None,
        artificial_time: Some(UnixTimeStamp::from_secs(0)),
        max_token_length: Some(MAX_TOKEN_LEN),
        max_header_length: Some(MAX_TOKEN_LEN),
        ..VerificationOptions::default()
    };
    let result = match key {
        Key::Hs256(k) => k.verify_token::<NoCustomClaims>(token, Some(options)),
        Key::Es256(k) => k.verify_token::<NoCustomClaims>(token, Some(options)),
        Key::EdDsa(k) => k.verify_token::<NoCustomClaims>(token, Some(options)),
        Key::Rs256(k) => k.verify_token::<NoCustomClaims>(token, Some(options)),
    };
    result.map(|_| ()).map_err(|e| classify(&e))
}

fn classify(error: &jwt_simple::Error) -> TokenError {
    use jwt_simple::JWTError;
    match error.downcast_ref::<JWTError>() {
        Some(JWTError::InvalidAuthenticationTag | JWTError::InvalidSignature) => {
            TokenError::BadSignature
        }
        Some(JWTError::AlgorithmMismatch) => TokenError::AlgorithmMismatch,
        Some(JWTError::TokenTooLong | JWTError::HeaderTooLarge) => TokenError::TooLarge,
        _ => TokenError::Malformed,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "verify_tests.rs"]
mod tests;
