//! The claims of a verified downstream token that the request path uses.

use serde_json::{Map, Value};

/// Claims vigil reads from a verified downstream token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamClaims {
    pub sub: String,
    /// `"<slot>.<nonce>"` (checked against the session record by the caller).
    pub sid: String,
    /// Issue time in nanoseconds of the proxy clock (revocation cut-offs).
    pub iat_ns: u64,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Every other non-registered claim (identity claims copied at login).
    pub extra: Map<String, Value>,
}

/// Claims with a meaning of their own; never taken from `extra`.
pub(crate) const REGISTERED: [&str; 10] = [
    "iss", "aud", "sub", "exp", "nbf", "iat", "jti", "nonce", "sid", "iat_ns",
];

impl DownstreamClaims {
    /// One JSON object with `sub`, `sid`, `iat_ns`, `exp` and the extra
    /// claims, the shape `rules::check_rules` and `identity::identity_headers`
    /// read.
    pub fn to_value(&self) -> Value {
        let mut map = self.extra.clone();
        map.insert("sub".to_string(), Value::from(self.sub.clone()));
        map.insert("sid".to_string(), Value::from(self.sid.clone()));
        map.insert("iat_ns".to_string(), Value::from(self.iat_ns));
        map.insert("exp".to_string(), Value::from(self.exp));
        Value::Object(map)
    }

    /// `exp` in nanoseconds, saturating.
    pub fn exp_ns(&self) -> u64 {
        self.exp.saturating_mul(1_000_000_000)
    }
}
