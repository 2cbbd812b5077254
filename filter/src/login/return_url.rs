//! The URL a browser returns to after login: only same-origin relative
//! paths, so the login flow can never be turned into an open redirect.

/// Longest return path kept (longer ones fall back to `/`).
pub const MAX_RETURN_LEN: usize = 2048;

/// `candidate` when it is a same-origin relative path, else `/`.
///
/// Refused: absolute URLs, scheme-relative `//host`, `/\host` (browsers
/// treat `\` as `/`), anything with control characters or spaces, and
/// over-long paths.
pub fn safe_return_url(candidate: &str) -> String {
    if is_safe(candidate) {
        candidate.to_string()
    } else {
        "/".to_string()
    }
}

fn is_safe(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && path.len() <= MAX_RETURN_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic() && *b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_paths_survive() {
        for good in ["/", "/app?x=1&y=%2F", "/a/b#frag", "/%2F%2Fevil.com"] {
            assert_eq!(safe_return_url(good), good);
        }
        for bad in [
            "https://evil.com/",
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "evil.com",
            "",
            "/a b",
            "/a\r\nSet-Cookie: x=1",
            "/a\\b",
            "javascript:alert(1)",
            "/\u{e9}",
        ] {
            assert_eq!(safe_return_url(bad), "/", "{bad:?}");
        }
        assert_eq!(
            safe_return_url(&format!("/{}", "a".repeat(MAX_RETURN_LEN))),
            "/"
        );
    }
}
