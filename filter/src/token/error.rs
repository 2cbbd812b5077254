//! Why a downstream token was refused.

use std::fmt;

/// A refused downstream token. [`TokenError::reason`] is short, static and
/// safe for logs and the 401 body: it never contains the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// The `Authorization` header is not `Bearer <token68>`.
    MalformedHeader,
    /// Not three base64url parts with JSON header and claims.
    Malformed,
    /// Longer than [`crate::token::MAX_TOKEN_LEN`].
    TooLarge,
    /// Header `alg` missing, `none` or not in `downstream.algorithms`.
    AlgorithmNotAllowed,
    /// Header `alg` differs from the selected key's algorithm.
    AlgorithmMismatch,
    /// No configured key for the header's `kid`.
    UnknownKid,
    BadSignature,
    Expired,
    NotYetValid,
    /// `iat_ns` later than now + leeway.
    IssuedInFuture,
    WrongIssuer,
    WrongAudience,
    MissingSubject,
    MissingSessionId,
    MissingIssueTime,
    MissingExpiry,
    /// The session cookie appears twice in the request (one was planted).
    DuplicateCookie,
}

impl TokenError {
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::MalformedHeader => "malformed authorization header",
            TokenError::Malformed => "malformed token",
            TokenError::TooLarge => "token too large",
            TokenError::AlgorithmNotAllowed => "algorithm not allowed",
            TokenError::AlgorithmMismatch => "algorithm does not match key",
            TokenError::UnknownKid => "unknown kid",
            TokenError::BadSignature => "bad signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not yet valid",
            TokenError::IssuedInFuture => "issued in the future",
            TokenError::WrongIssuer => "wrong issuer",
            TokenError::WrongAudience => "wrong audience",
            TokenError::MissingSubject => "missing sub",
            TokenError::MissingSessionId => "missing sid",
            TokenError::MissingIssueTime => "missing iat_ns",
            TokenError::MissingExpiry => "missing exp",
            TokenError::DuplicateCookie => {
                "the request carries two session cookies (one may be planted by another site); clear this site's cookies"
            }
        }
    }
}

impl TokenError {
    /// The reply: `400 invalid_request` for two session cookies (no token
    /// could fix that request, the browser's cookies must be cleared),
    /// `401 invalid_token` for everything else.
    pub fn rejection(&self) -> crate::reply::Rejection {
        match self {
            TokenError::DuplicateCookie => crate::reply::Rejection::BadRequest(self.reason()),
            _ => crate::reply::Rejection::InvalidToken(self.reason()),
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for TokenError {}
