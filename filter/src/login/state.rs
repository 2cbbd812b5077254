//! The login state cookie: what the callback needs to finish a login
//! (state, nonce, PKCE verifier, return URL, expiry), kept by the browser
//! and protected by HMAC-SHA256 so the client cannot alter or forge it.
//!
//! Format: `base64url(json) "." base64url(hmac(key, base64url(json)))`.
//! The verifier is not secret from the browser that started the login (the
//! code is useless without it, and both go to the same user agent).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Longest state cookie accepted.
pub const MAX_STATE_COOKIE_LEN: usize = 4096;

/// One pending login. Debug omits the nonce and verifier.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// `state` sent to the IdP (CSRF binding).
    #[serde(rename = "s")]
    pub state: String,
    /// `nonce` the ID token must carry.
    #[serde(rename = "n")]
    pub nonce: String,
    /// PKCE code verifier.
    #[serde(rename = "v")]
    pub verifier: String,
    /// Same-origin relative URL to return to.
    #[serde(rename = "r")]
    pub return_to: String,
    /// End of validity on the proxy clock.
    #[serde(rename = "e")]
    pub expires_ns: u64,
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState")
            .field("return_to", &self.return_to)
            .field("expires_ns", &self.expires_ns)
            .finish_non_exhaustive()
    }
}

/// Why a state cookie was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    Malformed,
    BadSignature,
    Expired,
}

impl LoginState {
    pub fn seal(&self, key: &[u8]) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        let mac = URL_SAFE_NO_PAD.encode(hmac_sha256::HMAC::mac(body.as_bytes(), key));
        format!("{body}.{mac}")
    }

    pub fn open(cookie: &str, key: &[u8], now_ns: u64) -> Result<LoginState, StateError> {
        if cookie.len() > MAX_STATE_COOKIE_LEN {
            return Err(StateError::Malformed);
        }
        let (body, mac) = cookie.split_once('.').ok_or(StateError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| StateError::Malformed)?;
        let expected = hmac_sha256::HMAC::mac(body.as_bytes(), key);
        if !constant_time_eq(&mac, &expected) {
            return Err(StateError::BadSignature);
        }
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| StateError::Malformed)?;
        let state: LoginState = serde_json::from_slice(&json).map_err(|_| StateError::Malformed)?;
        if now_ns >= state.expires_ns {
            return Err(StateError::Expired);
        }
        Ok(state)
    }
}

/// Compares without an early exit, so timing does not reveal how much of a
/// forged value matched.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn sample() -> LoginState {
        LoginState {
            state: "st".into(),
            nonce: "no".into(),
            verifier: "ve".into(),
            return_to: "/app".into(),
            expires_ns: 100,
        }
    }

    #[test]
    fn round_trips_until_expiry() {
        let sealed = sample().seal(KEY);
        assert_eq!(LoginState::open(&sealed, KEY, 99), Ok(sample()));
        assert_eq!(
            LoginState::open(&sealed, KEY, 100),
            Err(StateError::Expired)
        );
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let sealed = sample().seal(KEY);
        let (_, mac) = sealed.split_once('.').unwrap();
        let mut forged = sample();
        forged.return_to = "https://evil".into();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            LoginState::open(&format!("{body}.{mac}"), KEY, 0),
            Err(StateError::BadSignature)
        );
        assert_eq!(
            LoginState::open(&sealed, b"another key another key another!", 0),
            Err(StateError::BadSignature)
        );
        for junk in ["", "abc", "a.b", "!!.!!"] {
            assert!(LoginState::open(junk, KEY, 0).is_err(), "{junk}");
        }
        assert!(!format!("{:?}", sample()).contains("ve\""));
    }
}
