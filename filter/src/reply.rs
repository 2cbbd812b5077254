//! The local replies vigil sends instead of forwarding a request.
//!
//! Bodies are short JSON documents with a stable `error` code and a short
//! static `reason`; they never contain a token, a cookie or anything the
//! client sent, so they cannot leak secrets or reflect input.

/// A reply ready for `send_http_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Why a request is rejected; each maps to one status and `error` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No token, or a token that fails the inline check (RFC 6750 `invalid_token`).
    InvalidToken(&'static str),
    /// The token's subject was revoked after the token was issued.
    Revoked,
    /// No upstream session on file for the token's session id: log in again.
    NoSession,
    /// The IdP said the session is gone (fatal answer) or a rule no longer holds.
    SessionEnded(&'static str),
    /// Non-fatal IdP failure under `on_failure: deny`, or staleness bound exceeded.
    RevalidationFailed(&'static str),
    /// The request itself is malformed (e.g. an unparsable Authorization header).
    BadRequest(&'static str),
    /// vigil could not finish the request's check for a reason of its host
    /// (nginx: the wait location failed); retry shortly.
    Unavailable(&'static str),
}

impl Rejection {
    /// The `error` code in the JSON body (and metrics/log label).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidToken(_) => "invalid_token",
            Rejection::Revoked => "session_revoked",
            Rejection::NoSession => "no_session",
            Rejection::SessionEnded(_) => "session_ended",
            Rejection::RevalidationFailed(_) => "revalidation_failed",
            Rejection::BadRequest(_) => "invalid_request",
            Rejection::Unavailable(_) => "temporarily_unavailable",
        }
    }

    /// A short, static explanation (never derived from client input).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::InvalidToken(r)
            | Rejection::SessionEnded(r)
            | Rejection::RevalidationFailed(r)
            | Rejection::BadRequest(r)
            | Rejection::Unavailable(r) => r,
            Rejection::Revoked => "the session was revoked; log in again",
            Rejection::NoSession => "no session on file; log in again",
        }
    }

    pub fn status(&self) -> u32 {
        match self {
            Rejection::BadRequest(_) => 400,
            Rejection::Unavailable(_) => 503,
            _ => 401,
        }
    }

    /// Build the reply. Every 401 carries a `WWW-Authenticate` challenge so API
    /// clients know to obtain a new token (RFC 6750 §3).
    pub fn to_reply(&self) -> LocalReply {
        let code = self.code();
        let reason = self.reason();
        let body = serde_json::json!({ "error": code, "reason": reason }).to_string();
        let mut headers = vec![
            ("content-type", "application/json".to_string()),
            ("cache-control", "no-store".to_string()),
        ];
        if self.status() == 401 {
            headers.push((
                "www-authenticate",
                format!("Bearer error=\"invalid_token\", error_description=\"{reason}\""),
            ));
        }
        if self.status() == 503 {
            headers.push(("retry-after", "1".to_string()));
        }
        LocalReply { status: self.status(), headers, body: body.into_bytes() }
    }
}

/// Text safe inside HTML element content and double-quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_is_503_with_retry_after_and_no_challenge() {
        let r = Rejection::Unavailable("waiting failed").to_reply();
        assert_eq!(r.status, 503);
        assert!(r.headers.iter().any(|(k, v)| *k == "retry-after" && v == "1"));
        assert!(!r.headers.iter().any(|(k, _)| *k == "www-authenticate"));
        assert!(String::from_utf8_lossy(&r.body).contains("temporarily_unavailable"));
    }

    #[test]
    fn invalid_token_is_401_with_challenge_and_json() {
        let r = Rejection::InvalidToken("expired").to_reply();
        assert_eq!(r.status, 401);
        let challenge = r.headers.iter().find(|(k, _)| *k == "www-authenticate").map(|(_, v)| v.clone());
        assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\", error_description=\"expired\""));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["reason"], "expired");
    }

    #[test]
    fn bad_request_is_400_without_challenge() {
        let r = Rejection::BadRequest("malformed authorization header").to_reply();
        assert_eq!(r.status, 400);
        assert!(r.headers.iter().all(|(k, _)| *k != "www-authenticate"));
    }

    #[test]
    fn every_rejection_has_a_distinct_code() {
        let all = [
            Rejection::InvalidToken("x"),
            Rejection::Revoked,
            Rejection::NoSession,
            Rejection::SessionEnded("x"),
            Rejection::RevalidationFailed("x"),
            Rejection::BadRequest("x"),
        ];
        let mut codes: Vec<_> = all.iter().map(|r| r.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
