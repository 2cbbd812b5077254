//! Classification of the IdP's answers, exactly as the reference's table:
//!
//! | answer | class |
//! |---|---|
//! | token endpoint JSON `error` = `invalid_grant` / `invalid_client` | fatal |
//! | userinfo 401 / 403 | fatal |
//! | userinfo `sub` differs from the session's | fatal |
//! | (rules no longer satisfied: decided by the job) | fatal |
//! | unreachable, reset, timeout, 5xx, undecodable body, `invalid_request`, other 4xx | non-fatal |
//!
//! The `error` field is read from the JSON body, never matched as a substring.
//! A 5xx is non-fatal whatever its body says: an IdP in trouble must not log
//! everybody out.

use serde_json::Value;

/// What came back from one IdP call, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpAnswer {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The stream was reset or the connection failed after dispatch
    /// (Envoy: a response callback without headers).
    Reset,
    /// No answer within the budget the call was given.
    Timeout,
    /// `dispatch_http_call` itself failed (unknown cluster, bad headers).
    Unreachable,
}

/// Answers that end the session (revoke the subject, 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatalReason {
    InvalidGrant,
    InvalidClient,
    UserinfoUnauthorized,
    UserinfoForbidden,
    SubjectMismatch,
    RuleViolation,
    /// Access token expired and no refresh token on file.
    NoRefreshToken,
}

impl FatalReason {
    /// Stable name for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            FatalReason::InvalidGrant => "invalid_grant",
            FatalReason::InvalidClient => "invalid_client",
            FatalReason::UserinfoUnauthorized => "userinfo_unauthorized",
            FatalReason::UserinfoForbidden => "userinfo_forbidden",
            FatalReason::SubjectMismatch => "sub_mismatch",
            FatalReason::RuleViolation => "rule_violation",
            FatalReason::NoRefreshToken => "no_refresh_token",
        }
    }
}

/// Answers that say nothing about the user (policy decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonFatalReason {
    ConnectFailure,
    Reset,
    Timeout,
    ServerError,
    UndecodableBody,
    InvalidRequest,
    ClientError,
    /// 1xx/3xx, or a 2xx error body with an unknown OAuth error code.
    UnexpectedAnswer,
    /// Shared data kept changing under every cas attempt.
    StoreContention,
}

impl NonFatalReason {
    pub const ALL: [NonFatalReason; 9] = [
        NonFatalReason::ConnectFailure,
        NonFatalReason::Reset,
        NonFatalReason::Timeout,
        NonFatalReason::ServerError,
        NonFatalReason::UndecodableBody,
        NonFatalReason::InvalidRequest,
        NonFatalReason::ClientError,
        NonFatalReason::UnexpectedAnswer,
        NonFatalReason::StoreContention,
    ];

    /// Stable name for logs, metrics and the session record's `failure.class`.
    pub fn as_str(&self) -> &'static str {
        match self {
            NonFatalReason::ConnectFailure => "connect_failure",
            NonFatalReason::Reset => "reset",
            NonFatalReason::Timeout => "timeout",
            NonFatalReason::ServerError => "server_error",
            NonFatalReason::UndecodableBody => "undecodable_body",
            NonFatalReason::InvalidRequest => "invalid_request",
            NonFatalReason::ClientError => "client_error",
            NonFatalReason::UnexpectedAnswer => "unexpected_answer",
            NonFatalReason::StoreContention => "store_contention",
        }
    }

    /// Inverse of `as_str` (reading `failure.class` back).
    pub fn parse(text: &str) -> Option<NonFatalReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// The class of one answer, with the useful payload on success.
#[derive(Debug, Clone, PartialEq)]
pub enum Class<T> {
    Ok(T),
    Fatal(FatalReason),
    NonFatal(NonFatalReason),
}

/// A successful token endpoint answer. Debug never prints the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: String,
    /// `expires_in` in seconds, when given (number or numeric string).
    pub expires_in_s: Option<u64>,
    /// The rotated refresh token; `None` = keep the old one.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("expires_in_s", &self.expires_in_s)
            .field("rotated", &self.refresh_token.is_some())
            .finish()
    }
}

/// Non-fatal reason for answers that never reached an HTTP status.
fn transport(answer: &IdpAnswer) -> Option<NonFatalReason> {
    match answer {
        IdpAnswer::Response { .. } => None,
        IdpAnswer::Reset => Some(NonFatalReason::Reset),
        IdpAnswer::Timeout => Some(NonFatalReason::Timeout),
        IdpAnswer::Unreachable => Some(NonFatalReason::ConnectFailure),
    }
}

fn json_object(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice(body).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn non_empty_string(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn expires_in(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Classifies a token endpoint answer to `grant_type=refresh_token`.
pub fn classify_token_answer(answer: &IdpAnswer) -> Class<TokenGrant> {
    if let Some(reason) = transport(answer) {
        return Class::NonFatal(reason);
    }
    let IdpAnswer::Response { status, body, .. } = answer else {
        return Class::NonFatal(NonFatalReason::Reset);
    };
    let status = *status;
    if status >= 500 {
        return Class::NonFatal(NonFatalReason::ServerError);
    }
    let object = json_object(body);
    let error = object
        .as_ref()
        .and_then(|o| o.get("error"))
        .and_then(Value::as_str);
    if let Some(code) = error {
        return match code {
            "invalid_grant" => Class::Fatal(FatalReason::InvalidGrant),
            "invalid_client" => Class::Fatal(FatalReason::InvalidClient),
            "invalid_request" => Class::NonFatal(NonFatalReason::InvalidRequest),
            _ if (400..500).contains(&status) => Class::NonFatal(NonFatalReason::ClientError),
            _ => Class::NonFatal(NonFatalReason::UnexpectedAnswer),
        };
    }
    match status {
        200..=299 => {
            let Some(object) = object else {
                return Class::NonFatal(NonFatalReason::UndecodableBody);
            };
            match non_empty_string(object.get("access_token")) {
                Some(access_token) => Class::Ok(TokenGrant {
                    access_token,
                    expires_in_s: expires_in(object.get("expires_in")),
                    refresh_token: non_empty_string(object.get("refresh_token")),
                }),
                None => Class::NonFatal(NonFatalReason::UndecodableBody),
            }
        }
        400..=499 => Class::NonFatal(NonFatalReason::ClientError),
        _ => Class::NonFatal(NonFatalReason::UnexpectedAnswer),
    }
}

/// Classifies a userinfo answer; success carries the claims (an object whose
/// `sub` equals `expected_sub`).
pub fn classify_userinfo_answer(answer: &IdpAnswer, expected_sub: &str) -> Class<Value> {
    if let Some(reason) = transport(answer) {
        return Class::NonFatal(reason);
    }
    let IdpAnswer::Response { status, body, .. } = answer else {
        return Class::NonFatal(NonFatalReason::Reset);
    };
    match *status {
        401 => Class::Fatal(FatalReason::UserinfoUnauthorized),
        403 => Class::Fatal(FatalReason::UserinfoForbidden),
        200..=299 => {
            let Some(object) = json_object(body) else {
                return Class::NonFatal(NonFatalReason::UndecodableBody);
            };
            match object.get("sub").and_then(Value::as_str) {
                Some(sub) if sub == expected_sub => Class::Ok(Value::Object(object)),
                Some(_) => Class::Fatal(FatalReason::SubjectMismatch),
                None => Class::NonFatal(NonFatalReason::UndecodableBody),
            }
        }
        400..=499 => Class::NonFatal(NonFatalReason::ClientError),
        500..=u16::MAX => Class::NonFatal(NonFatalReason::ServerError),
        _ => Class::NonFatal(NonFatalReason::UnexpectedAnswer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FatalReason as F;
    use NonFatalReason as N;

    fn response(status: u16, body: &str) -> IdpAnswer {
        IdpAnswer::Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn token_class(answer: &IdpAnswer) -> Class<()> {
        match classify_token_answer(answer) {
            Class::Ok(_) => Class::Ok(()),
            Class::Fatal(r) => Class::Fatal(r),
            Class::NonFatal(r) => Class::NonFatal(r),
        }
    }

    #[test]
    fn token_endpoint_table() {
        let rows: Vec<(IdpAnswer, Class<()>)> = vec![
            (
                response(400, r#"{"error":"invalid_grant"}"#),
                Class::Fatal(F::InvalidGrant),
            ),
            (
                response(401, r#"{"error":"invalid_client","error_description":"x"}"#),
                Class::Fatal(F::InvalidClient),
            ),
            (
                response(400, r#"{"error":"invalid_request"}"#),
                Class::NonFatal(N::InvalidRequest),
            ),
            (
                response(400, r#"{"error":"unsupported_grant_type"}"#),
                Class::NonFatal(N::ClientError),
            ),
            // Substrings and descriptions never count.
            (
                response(
                    400,
                    r#"{"error":"bad","error_description":"invalid_grant"}"#,
                ),
                Class::NonFatal(N::ClientError),
            ),
            (
                response(400, "invalid_grant"),
                Class::NonFatal(N::ClientError),
            ),
            (
                response(400, r#"{"error":"invalid_grant_x"}"#),
                Class::NonFatal(N::ClientError),
            ),
            (response(404, ""), Class::NonFatal(N::ClientError)),
            (
                response(500, r#"{"error":"invalid_grant"}"#),
                Class::NonFatal(N::ServerError),
            ),
            (response(503, "down"), Class::NonFatal(N::ServerError)),
            (response(200, "<html>"), Class::NonFatal(N::UndecodableBody)),
            (
                response(200, r#"{"token_type":"Bearer"}"#),
                Class::NonFatal(N::UndecodableBody),
            ),
            (
                response(200, r#"{"access_token":""}"#),
                Class::NonFatal(N::UndecodableBody),
            ),
            (
                response(200, r#"{"error":"invalid_grant"}"#),
                Class::Fatal(F::InvalidGrant),
            ),
            (
                response(200, r#"{"error":"slow_down"}"#),
                Class::NonFatal(N::UnexpectedAnswer),
            ),
            (response(302, ""), Class::NonFatal(N::UnexpectedAnswer)),
            (response(200, r#"{"access_token":"a"}"#), Class::Ok(())),
            (IdpAnswer::Reset, Class::NonFatal(N::Reset)),
            (IdpAnswer::Timeout, Class::NonFatal(N::Timeout)),
            (IdpAnswer::Unreachable, Class::NonFatal(N::ConnectFailure)),
        ];
        for (answer, expected) in rows {
            assert_eq!(token_class(&answer), expected, "{answer:?}");
        }
    }

    #[test]
    fn token_success_reads_rotation_and_expiry_forms() {
        let body = r#"{"access_token":"at2","refresh_token":"rt2","expires_in":300,"token_type":"Bearer"}"#;
        let Class::Ok(grant) = classify_token_answer(&response(200, body)) else {
            unreachable!("success expected")
        };
        assert_eq!(grant.access_token, "at2");
        assert_eq!(grant.refresh_token.as_deref(), Some("rt2"));
        assert_eq!(grant.expires_in_s, Some(300));
        let Class::Ok(grant) = classify_token_answer(&response(
            200,
            r#"{"access_token":"a","expires_in":"60","refresh_token":""}"#,
        )) else {
            unreachable!("success expected")
        };
        let debug = format!("{grant:?}");
        assert_eq!((grant.expires_in_s, grant.refresh_token), (Some(60), None));
        assert!(!debug.contains("\"a\""), "{debug}");
    }

    #[test]
    fn userinfo_table() {
        let rows: Vec<(IdpAnswer, Class<Value>)> = vec![
            (response(401, ""), Class::Fatal(F::UserinfoUnauthorized)),
            (
                response(403, r#"{"error":"insufficient_scope"}"#),
                Class::Fatal(F::UserinfoForbidden),
            ),
            (
                response(200, r#"{"sub":"mallory"}"#),
                Class::Fatal(F::SubjectMismatch),
            ),
            (
                response(200, r#"{"email":"a@b"}"#),
                Class::NonFatal(N::UndecodableBody),
            ),
            (
                response(200, r#"{"sub":7}"#),
                Class::NonFatal(N::UndecodableBody),
            ),
            (
                response(200, "eyJhbGciOi.x.y"),
                Class::NonFatal(N::UndecodableBody),
            ),
            (
                response(400, r#"{"error":"invalid_request"}"#),
                Class::NonFatal(N::ClientError),
            ),
            (response(429, ""), Class::NonFatal(N::ClientError)),
            (response(502, ""), Class::NonFatal(N::ServerError)),
            (response(100, ""), Class::NonFatal(N::UnexpectedAnswer)),
            (IdpAnswer::Reset, Class::NonFatal(N::Reset)),
            (IdpAnswer::Timeout, Class::NonFatal(N::Timeout)),
            (IdpAnswer::Unreachable, Class::NonFatal(N::ConnectFailure)),
            (
                response(200, r#"{"sub":"alice","groups":["a"]}"#),
                Class::Ok(serde_json::json!({"sub":"alice","groups":["a"]})),
            ),
        ];
        for (answer, expected) in rows {
            assert_eq!(
                classify_userinfo_answer(&answer, "alice"),
                expected,
                "{answer:?}"
            );
        }
    }

    #[test]
    fn reason_names_are_distinct_and_parse_back() {
        for reason in NonFatalReason::ALL {
            assert_eq!(NonFatalReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(NonFatalReason::parse("invalid_grant"), None);
        let mut names: Vec<&str> = NonFatalReason::ALL.iter().map(|r| r.as_str()).collect();
        names.extend(
            [
                F::InvalidGrant,
                F::InvalidClient,
                F::UserinfoUnauthorized,
                F::UserinfoForbidden,
                F::SubjectMismatch,
                F::RuleViolation,
                F::NoRefreshToken,
            ]
            .iter()
            .map(|r| r.as_str()),
        );
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
