//! Finds the downstream token in a request: `Authorization: Bearer` first,
//! then the session cookie.

use super::error::TokenError;

/// The token from `authorization` (the configured header's value) or, when
/// that header is absent, from the `cookie_name` cookie. A present but
/// malformed header is an error rather than a silent fall-back to the cookie,
/// so a broken API client gets a clear 401. A cookie header naming the
/// session cookie twice is refused (`DuplicateCookie`): the second one was
/// planted (a sibling subdomain, a narrower path) and picking either would
/// let the planter choose whose session the browser uses.
pub fn extract_token(
    authorization: Option<&str>,
    cookie_header: Option<&str>,
    cookie_name: &str,
) -> Result<Option<String>, TokenError> {
    if let Some(value) = authorization {
        return bearer(value).map(Some);
    }
    match cookie_header {
        Some(header) => cookie(header, cookie_name),
        None => Ok(None),
    }
}

fn bearer(value: &str) -> Result<String, TokenError> {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, token) = value
        .split_once([' ', '\t'])
        .ok_or(TokenError::MalformedHeader)?;
    let token = token.trim_start_matches([' ', '\t']);
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || !token.bytes().all(is_token68)
    {
        return Err(TokenError::MalformedHeader);
    }
    Ok(token.to_string())
}

/// RFC 9110 token68 characters.
fn is_token68(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

/// Every value of cookie `name` in one `cookie` header, in order (spaces
/// and quotes removed; empty values included).
pub fn cookie_values<'a>(header: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    header.split(';').filter_map(move |pair| {
        let (key, value) = pair.split_once('=')?;
        if key.trim() != name {
            return None;
        }
        let value = value.trim();
        Some(
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value),
        )
    })
}

/// The value of cookie `name` (`None` when absent or empty); two of them
/// are an error. Tolerates spaces and quoted values.
fn cookie(header: &str, name: &str) -> Result<Option<String>, TokenError> {
    let mut values = cookie_values(header, name);
    let first = values.next();
    if values.next().is_some() {
        return Err(TokenError::DuplicateCookie);
    }
    Ok(first.filter(|v| !v.is_empty()).map(str::to_string))
}

/// The `cookie` header without vigil's own cookies (`names`), for the
/// upstream: it gets identity headers, never the session token itself.
/// `None` when no cookie is left (remove the header); the header unchanged
/// when it holds none of them.
pub fn cookie_header_without(header: &str, names: &[&str]) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k).trim();
            !names.contains(&key)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn own_cookies_are_removed_for_the_upstream() {
        let names = [NAME, "vigil_session_login"];
        assert_eq!(
            cookie_header_without("theme=dark; vigil_session=a.b.c; x=1", &names).as_deref(),
            Some("theme=dark; x=1")
        );
        assert_eq!(cookie_header_without("vigil_session=a;vigil_session_login=s", &names), None);
        assert_eq!(cookie_header_without(" vigil_session = a ", &names), None);
        // A cookie whose name only starts with ours is someone else's.
        assert_eq!(
            cookie_header_without("vigil_sessionx=1;b=2", &names).as_deref(),
            Some("vigil_sessionx=1; b=2")
        );
        assert_eq!(cookie_header_without("", &names), None);
    }

    const NAME: &str = "vigil_session";

    fn ok(auth: Option<&str>, cookie: Option<&str>) -> Option<String> {
        extract_token(auth, cookie, NAME).unwrap()
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for header in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER  abc.def.ghi ",
            "Bearer\tabc.def.ghi",
        ] {
            assert_eq!(
                ok(Some(header), None).as_deref(),
                Some("abc.def.ghi"),
                "{header:?}"
            );
        }
    }

    #[test]
    fn malformed_authorization_is_an_error() {
        for header in [
            "",
            "Bearer",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "Bearer a b",
            "Bearer a,b",
            "Token abc",
            "Bearerabc",
        ] {
            assert_eq!(
                extract_token(Some(header), Some("vigil_session=x"), NAME),
                Err(TokenError::MalformedHeader),
                "{header:?}"
            );
        }
    }

    #[test]
    fn bearer_wins_over_cookie() {
        assert_eq!(
            ok(
                Some("Bearer from-header"),
                Some("vigil_session=from-cookie")
            )
            .as_deref(),
            Some("from-header")
        );
    }

    #[test]
    fn cookie_parsing_is_tolerant() {
        let cases = [
            ("vigil_session=tok", Some("tok")),
            ("a=1; vigil_session=tok; b=2", Some("tok")),
            ("a=1;vigil_session=tok;b=2", Some("tok")),
            ("  vigil_session = tok  ; b=2", Some("tok")),
            ("vigil_session=\"tok\"", Some("tok")),
            ("vigil_session=", None),
            ("xvigil_session=tok; vigil_sessionx=tok", None),
            ("a=1; b", None),
            ("", None),
            ("vigil_session", None),
            ("vigil_session=a=b", Some("a=b")),
        ];
        for (header, want) in cases {
            assert_eq!(ok(None, Some(header)).as_deref(), want, "{header:?}");
        }
        assert_eq!(ok(None, None), None);
    }

    #[test]
    fn two_session_cookies_are_refused() {
        for header in [
            "vigil_session=first; vigil_session=second",
            "vigil_session=; vigil_session=second",
            "a=1;vigil_session=x; b=2 ; vigil_session = x",
        ] {
            assert_eq!(
                extract_token(None, Some(header), NAME),
                Err(TokenError::DuplicateCookie),
                "{header:?}"
            );
        }
        // A bearer token does not read the cookies.
        assert_eq!(
            ok(Some("Bearer t"), Some("vigil_session=a; vigil_session=b")).as_deref(),
            Some("t")
        );
    }
}
