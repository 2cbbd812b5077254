//! Identity headers for the upstream service: claim values mapped to the
//! configured header names, and the session headers (when the session was
//! last validated, when its next revalidation is due). The adapter strips
//! every configured name from the incoming request first, in any case and
//! with `_` (or any other non-alphanumeric byte) for `-` (`spoofed_headers`):
//! CGI, WSGI and Rack upstreams read `X-Vigil-Sub` and `x_vigil_sub` alike
//! (`HTTP_X_VIGIL_SUB`), so a client cannot spoof them even when a claim is
//! missing and the header is not set.

use serde_json::Value;

use crate::config::{IdentityHeader, SessionHeaders};
use crate::revalidation::ValidationTimes;

/// Longest header value sent; longer claim values are dropped.
pub const MAX_VALUE_LEN: usize = 4096;

/// The list separator of multi-valued identity headers.
pub const LIST_SEPARATOR: char = ',';

/// `(header, value)` pairs for the claims present in `claims`.
///
/// Strings are sent as-is, numbers and booleans as their JSON text, arrays
/// of strings/numbers/booleans joined with `,`. Missing, null, object claims
/// and arrays holding anything else are skipped, as are values with CR, LF,
/// NUL or other control characters (header injection) or longer than
/// [`MAX_VALUE_LEN`] bytes.
///
/// A list (an array, or the groups claim even as one string) with an
/// element containing `,` is not sent at all and a warning is logged: the
/// upstream would split `x,admin` into the groups `x` and `admin`. The
/// header is left out rather than escaped (every upstream would have to
/// learn the escape) or cut to the other elements (a partial list that
/// looks complete); the request itself goes on.
pub fn identity_headers(map: &[IdentityHeader], claims: &Value) -> Vec<(String, String)> {
    map.iter()
        .filter_map(|entry| {
            let claim = claims.get(&entry.claim)?;
            if is_ambiguous_list(claim, entry.list) {
                log::warn!(
                    "vigil: identity header {} not sent: an element of claim {} contains the list separator ','",
                    entry.header,
                    entry.claim
                );
                return None;
            }
            let value = render(claim)?;
            is_safe(&value).then(|| (entry.header.clone(), value))
        })
        .collect()
}

/// A list value whose elements cannot be told apart once joined.
fn is_ambiguous_list(claim: &Value, list: bool) -> bool {
    let has_separator = |v: &Value| v.as_str().is_some_and(|s| s.contains(LIST_SEPARATOR));
    match claim {
        Value::Array(items) => items.iter().any(has_separator),
        Value::String(_) => list && has_separator(claim),
        _ => false,
    }
}

/// The names among `request_headers` to remove before anything else: every
/// one that is a configured identity or session header name once both are
/// folded (ASCII lower case, every byte other than a letter or digit read as
/// `-`). So `X_Vigil_Sub` and `x.vigil.sub` go too when `x-vigil-sub` is
/// configured: CGI-style upstreams cannot tell them apart.
pub fn spoofed_headers<'a>(
    configured: impl Iterator<Item = &'a str>,
    request_headers: &[String],
) -> Vec<String> {
    let configured: Vec<String> = configured.map(fold).collect();
    if configured.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for name in request_headers {
        if !name.starts_with(':') && configured.contains(&fold(name)) && !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

fn fold(name: &str) -> String {
    name.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b.to_ascii_lowercase()) } else { '-' })
        .collect()
}

/// Every configured header name, to strip from incoming requests.
pub fn header_names(map: &[IdentityHeader]) -> Vec<&str> {
    map.iter().map(|entry| entry.header.as_str()).collect()
}

/// `(header, value)` pairs for the configured session headers: Unix time in
/// whole seconds (truncated), like a JWT's `iat`/`exp`. `revalidate_at` is
/// left out when revalidation is disabled.
pub fn session_headers(map: &SessionHeaders, times: &ValidationTimes) -> Vec<(String, String)> {
    let seconds = |ns: u64| (ns / 1_000_000_000).to_string();
    let validated = map
        .validated_at
        .as_ref()
        .map(|name| (name.clone(), seconds(times.validated_ns)));
    let revalidate = map
        .revalidate_at
        .as_ref()
        .zip(times.revalidate_ns)
        .map(|(name, ns)| (name.clone(), seconds(ns)));
    validated.into_iter().chain(revalidate).collect()
}

fn render(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => {
            let parts = items
                .iter()
                .map(|item| match item {
                    Value::Array(_) | Value::Object(_) | Value::Null => None,
                    scalar => render(scalar),
                })
                .collect::<Option<Vec<String>>>()?;
            Some(parts.join(","))
        }
        Value::Null | Value::Object(_) => None,
    }
}

/// Visible characters, spaces and tabs only (RFC 9110 field-value).
fn is_safe(value: &str) -> bool {
    value.len() <= MAX_VALUE_LEN && !value.chars().any(|c| c.is_control() && c != '\t')
}

/// The first of `configured` (header names vigil sets) that the request
/// carries more than once, counting `_`/`-` and case variants as the same name.
pub fn repeated_header<'a>(configured: &[&'a str], present: &[String]) -> Option<&'a str> {
    let same = |a: &str, b: &str| {
        a.len() == b.len()
            && a.bytes().zip(b.bytes()).all(|(x, y)| {
                let norm = |c: u8| if c == b'_' { b'-' } else { c.to_ascii_lowercase() };
                norm(x) == norm(y)
            })
    };
    configured
        .iter()
        .copied()
        .find(|name| present.iter().filter(|p| same(name, p)).count() > 1)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> Vec<IdentityHeader> {
        pairs
            .iter()
            .map(|(header, claim)| IdentityHeader {
                header: header.to_string(),
                claim: claim.to_string(),
                list: *claim == "groups",
            })
            .collect()
    }

    fn pairs(out: &[(String, String)]) -> Vec<(&str, &str)> {
        out.iter().map(|(h, v)| (h.as_str(), v.as_str())).collect()
    }

    #[test]
    fn renders_scalars_and_arrays() {
        let m = map(&[
            ("x-user", "sub"),
            ("x-age", "age"),
            ("x-ratio", "ratio"),
            ("x-admin", "admin"),
            ("x-groups", "groups"),
            ("x-mixed", "mixed"),
            ("x-empty", "empty"),
            ("x-name", "name"),
        ]);
        let claims = json!({
            "sub": "user-1", "age": 42, "ratio": 1.5, "admin": false,
            "groups": ["a", "b c"], "mixed": ["a", 1, true], "empty": [],
            "name": "Zoë d'Arc"
        });
        assert_eq!(
            pairs(&identity_headers(&m, &claims)),
            [
                ("x-user", "user-1"),
                ("x-age", "42"),
                ("x-ratio", "1.5"),
                ("x-admin", "false"),
                ("x-groups", "a,b c"),
                ("x-mixed", "a,1,true"),
                ("x-empty", ""),
                ("x-name", "Zoë d'Arc"),
            ]
        );
    }

    #[test]
    fn skips_missing_structured_and_unsafe_values() {
        let m = map(&[
            ("x-missing", "missing"),
            ("x-null", "null"),
            ("x-obj", "obj"),
            ("x-nested", "nested"),
            ("x-crlf", "crlf"),
            ("x-nul", "nul"),
            ("x-lf-in-array", "lf_array"),
            ("x-long", "long"),
            ("x-max", "max"),
            ("x-tab", "tab"),
        ]);
        let claims = json!({
            "null": null, "obj": {"a": 1}, "nested": ["a", ["b"]],
            "crlf": "a\r\nx-admin: true", "nul": "a\u{0}b", "lf_array": ["a", "b\nc"],
            "long": "x".repeat(MAX_VALUE_LEN + 1), "max": "y".repeat(MAX_VALUE_LEN),
            "tab": "a\tb"
        });
        let out = identity_headers(&m, &claims);
        let names: Vec<&str> = out.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(names, ["x-max", "x-tab"]);
        assert_eq!(identity_headers(&m, &json!(null)), []);
    }

    #[test]
    fn session_headers_send_unix_seconds_and_only_what_is_configured() {
        let times = ValidationTimes {
            validated_ns: 1_700_000_000_999_999_999,
            revalidate_ns: Some(1_700_000_060_999_999_999),
        };
        let both = SessionHeaders {
            validated_at: Some("x-validated-at".into()),
            revalidate_at: Some("x-revalidate-at".into()),
        };
        assert_eq!(
            pairs(&session_headers(&both, &times)),
            [("x-validated-at", "1700000000"), ("x-revalidate-at", "1700000060")]
        );
        let disabled = ValidationTimes { revalidate_ns: None, ..times };
        assert_eq!(pairs(&session_headers(&both, &disabled)), [("x-validated-at", "1700000000")]);
        let only_due = SessionHeaders { revalidate_at: Some("x-due".into()), ..SessionHeaders::default() };
        assert_eq!(pairs(&session_headers(&only_due, &times)), [("x-due", "1700000060")]);
        assert_eq!(session_headers(&SessionHeaders::default(), &times), []);
    }

    #[test]
    fn lists_with_the_separator_in_an_element_are_not_sent() {
        let m = map(&[("x-groups", "groups"), ("x-roles", "roles"), ("x-name", "name"), ("x-sub", "sub")]);
        let claims = json!({
            "groups": ["staff", "x,admin"], "roles": ["a", "b,c"],
            "name": "Doe, John", "sub": "u1"
        });
        // The name is one value (not a list): its comma is kept.
        assert_eq!(pairs(&identity_headers(&m, &claims)), [("x-name", "Doe, John"), ("x-sub", "u1")]);
        // The groups claim as one string is a list too.
        let one = json!({ "groups": "x,admin" });
        assert_eq!(identity_headers(&m, &one), []);
        let fine = json!({ "groups": "admins" });
        assert_eq!(pairs(&identity_headers(&m, &fine)), [("x-groups", "admins")]);
    }

    #[test]
    fn spoofed_headers_match_any_case_and_underscore_or_dot_variants() {
        let request: Vec<String> = [
            ":authority", "x-vigil-sub", "X_Vigil_Sub", "x_vigil_sub", "x.vigil.sub", "X-VIGIL-SUB",
            "x-vigil-subx", "xvigilsub", "accept", "x_vigil_validated_at",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let configured = ["x-vigil-sub", "x-vigil-validated-at"];
        assert_eq!(
            spoofed_headers(configured.iter().copied(), &request),
            ["x-vigil-sub", "X_Vigil_Sub", "x_vigil_sub", "x.vigil.sub", "X-VIGIL-SUB", "x_vigil_validated_at"]
        );
        assert!(spoofed_headers(std::iter::empty(), &request).is_empty());
    }

    #[test]
    fn header_names_lists_every_mapping() {
        let m = map(&[("x-user", "sub"), ("x-email", "email")]);
        assert_eq!(header_names(&m), ["x-user", "x-email"]);
        assert!(header_names(&[]).is_empty());
    }

    #[test]
    fn a_header_vigil_sets_present_twice_is_found_in_any_spelling() {
        let present = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let configured = ["x-vigil-user", "x-vigil-email"];
        assert_eq!(repeated_header(&configured, &present(&["x-vigil-user", "accept"])), None);
        assert_eq!(repeated_header(&configured, &present(&["x-vigil-user", "X-Vigil-User"])), Some("x-vigil-user"));
        assert_eq!(repeated_header(&configured, &present(&["x_vigil_email", "x-vigil-email"])), Some("x-vigil-email"));
        assert_eq!(repeated_header(&configured, &present(&["x-vigil-users", "x-vigil-user"])), None);
    }
}
