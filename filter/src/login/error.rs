//! Why a login, callback, logout or back-channel logout was refused: one
//! status, a stable code and a static reason each. Nothing from the request
//! or the IdP's answer is reflected, so no secret can leak into a page.

use crate::reply::LocalReply;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// Discovery or the JWKS has not succeeded yet.
    NotReady {
        retry_after_s: u64,
    },
    /// No state cookie, or it expired.
    StateMissing,
    /// The state cookie was altered, or `state` does not match it.
    StateMismatch,
    /// This login was already completed (a replayed callback).
    StateReplayed,
    MissingParameter(&'static str),
    /// The IdP answered the authorization request with `error=`.
    IdpRefused {
        access_denied: bool,
    },
    /// RFC 9207 `iss` parameter differs from the configured issuer.
    IssuerMismatch,
    /// The code was refused (replayed, expired, or PKCE mismatch).
    CodeRejected,
    /// The token endpoint failed (transport, 5xx, malformed answer).
    TokenEndpointFailed,
    InvalidIdToken(&'static str),
    UserinfoFailed,
    /// The authorization rules refused the user.
    Forbidden(&'static str),
    /// Shared data kept failing (contention or host error).
    StoreFailed,
    BadLogoutToken(&'static str),
    MethodNotAllowed,
    /// A logout `POST` from another site (`Sec-Fetch-Site`/`Origin`).
    CrossSiteLogout,
    /// The session cookie appears twice (one was planted).
    DuplicateCookie,
    /// The session cookie would exceed `MAX_SET_COOKIE_LEN` (too many or
    /// too large `login.token_claims`): browsers would drop it.
    SessionCookieTooLarge,
    /// The host's random source failed: no state, nonce, verifier or
    /// session nonce can be made, and nothing guessable replaces them.
    NoEntropy,
}

impl LoginError {
    pub fn status(&self) -> u32 {
        match self {
            LoginError::NotReady { .. } | LoginError::StoreFailed | LoginError::NoEntropy => 503,
            LoginError::TokenEndpointFailed | LoginError::UserinfoFailed => 502,
            LoginError::IdpRefused {
                access_denied: true,
            }
            | LoginError::Forbidden(_) => 403,
            LoginError::MethodNotAllowed => 405,
            LoginError::CrossSiteLogout => 403,
            LoginError::SessionCookieTooLarge => 500,
            _ => 400,
        }
    }

    /// Stable code for the page, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::NotReady { .. } => "idp_unavailable",
            LoginError::StateMissing | LoginError::StateMismatch | LoginError::StateReplayed => {
                "invalid_state"
            }
            LoginError::MissingParameter(_) | LoginError::MethodNotAllowed => "invalid_request",
            LoginError::IdpRefused { .. } => "login_refused",
            LoginError::IssuerMismatch => "invalid_issuer",
            LoginError::CodeRejected => "invalid_grant",
            LoginError::TokenEndpointFailed => "token_endpoint_failed",
            LoginError::InvalidIdToken(_) => "invalid_id_token",
            LoginError::UserinfoFailed => "userinfo_failed",
            LoginError::Forbidden(_) => "access_denied",
            LoginError::StoreFailed => "store_failed",
            LoginError::BadLogoutToken(_) => "invalid_logout_token",
            LoginError::NoEntropy => "entropy_unavailable",
            LoginError::CrossSiteLogout => "cross_site_request",
            LoginError::SessionCookieTooLarge => "session_cookie_too_large",
            LoginError::DuplicateCookie => "invalid_request",
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            LoginError::NotReady { .. } => {
                "the identity provider is not reachable yet; retry shortly"
            }
            LoginError::StateMissing => "the login expired or cookies are disabled; start again",
            LoginError::StateMismatch => "the login state does not match; start again",
            LoginError::StateReplayed => "this login was already completed; start again",
            LoginError::MissingParameter(p) => p,
            LoginError::IdpRefused {
                access_denied: true,
            } => "the identity provider denied access",
            LoginError::IdpRefused {
                access_denied: false,
            } => "the identity provider refused the login request",
            LoginError::IssuerMismatch => "the answer came from an unexpected issuer",
            LoginError::CodeRejected => {
                "the authorization code was refused (already used or expired); start again"
            }
            LoginError::TokenEndpointFailed => "the identity provider's token endpoint failed",
            LoginError::InvalidIdToken(r)
            | LoginError::Forbidden(r)
            | LoginError::BadLogoutToken(r) => r,
            LoginError::UserinfoFailed => "the identity provider's userinfo endpoint failed",
            LoginError::StoreFailed => "the session could not be stored; retry",
            LoginError::MethodNotAllowed => "method not allowed",
            LoginError::NoEntropy => "the proxy could not generate random values; retry shortly",
            LoginError::CrossSiteLogout => "a logout must come from this site's own page",
            LoginError::SessionCookieTooLarge => {
                "the session cookie would exceed 4096 bytes, which browsers drop; the proxy's login.token_claims must be reduced"
            }
            LoginError::DuplicateCookie => {
                "the request carries two session cookies (one may be planted by another site); clear this site's cookies"
            }
        }
    }

    /// A small HTML page for browsers (callback, logout).
    pub fn to_page(&self) -> LocalReply {
        let title = match self {
            LoginError::CrossSiteLogout | LoginError::DuplicateCookie => "Request refused",
            _ => "Login failed",
        };
        let body = format!(
            "<!doctype html><title>{title}</title><h1>{title}</h1><p>{}</p><p><code>{}</code></p>\n",
            self.reason(),
            self.code()
        );
        self.reply("text/html; charset=utf-8", body)
    }

    /// A JSON body (back-channel logout, API clients).
    pub fn to_json(&self) -> LocalReply {
        let body = serde_json::json!({ "error": self.code(), "reason": self.reason() }).to_string();
        self.reply("application/json", body)
    }

    fn reply(&self, content_type: &str, body: String) -> LocalReply {
        let mut headers = vec![
            ("content-type", content_type.to_string()),
            ("cache-control", "no-store".to_string()),
        ];
        match self {
            LoginError::NotReady { retry_after_s } => {
                headers.push(("retry-after", retry_after_s.max(&1).to_string()))
            }
            LoginError::NoEntropy => headers.push(("retry-after", "1".to_string())),
            _ => {}
        }
        LocalReply {
            status: self.status(),
            headers,
            body: body.into_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_is_503_with_retry_after() {
        let r = LoginError::NotReady { retry_after_s: 0 }.to_page();
        assert_eq!(r.status, 503);
        assert!(r.headers.contains(&("retry-after", "1".to_string())));
    }

    #[test]
    fn rejections_are_4xx_with_json_or_html() {
        for e in [
            LoginError::StateMismatch,
            LoginError::CodeRejected,
            LoginError::InvalidIdToken("wrong nonce"),
            LoginError::IssuerMismatch,
            LoginError::MissingParameter("missing code"),
        ] {
            assert_eq!(e.to_page().status, 400);
        }
        assert_eq!(
            LoginError::IdpRefused {
                access_denied: true
            }
            .status(),
            403
        );
        let json: serde_json::Value =
            serde_json::from_slice(&LoginError::BadLogoutToken("no events").to_json().body)
                .unwrap();
        assert_eq!(json["error"], "invalid_logout_token");
    }
}
