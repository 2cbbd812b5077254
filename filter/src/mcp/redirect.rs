//! Redirect URIs: which ones a client may register (configuration, dynamic
//! registration, metadata documents) and how a presented one is matched.
//!
//! Accepted (RFC 8252 for native and CLI clients, MCP: "localhost or HTTPS"):
//! * loopback: `http://127.0.0.1[:port]/…`, `http://[::1][:port]/…`,
//!   `http://localhost[:port]/…`; matched on any port (RFC 8252 §7.3: the
//!   client picks a free port at run time);
//! * `https://host[:port]/…`, matched exactly;
//! * private-use schemes in reverse-domain form (`com.example.app:/cb`,
//!   RFC 8252 §7.1: the scheme must contain a `.`), matched exactly.
//!
//! Refused: fragments, userinfo, wildcards (`*`), whitespace and control
//! characters, non-ASCII, dot segments, plain `http` to other hosts, schemes
//! without a `.` (`javascript:`, `data:`, `file:`…), and anything longer
//! than `MAX_REDIRECT_URI_LEN`. Matching is byte-exact (apart from the
//! loopback port), so there is no open redirect through a prefix, a path
//! or a query the client did not register.

use crate::config::endpoint::HttpUrl;

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 512;

/// The kind of an acceptable redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    Loopback,
    Https,
    PrivateUse,
}

const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// Whether `uri` may be registered; `Err` says why not (static text).
pub fn check_redirect_uri(uri: &str) -> Result<RedirectKind, &'static str> {
    if uri.is_empty() || uri.len() > MAX_REDIRECT_URI_LEN {
        return Err("a redirect URI must have 1 to 512 characters");
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a redirect URI must be ASCII without spaces or control characters");
    }
    if uri.contains('#') {
        return Err("a redirect URI must not contain a fragment");
    }
    if uri.contains('*') {
        return Err("a redirect URI must not contain a wildcard");
    }
    if uri.contains('\\') {
        return Err("a redirect URI must not contain a backslash");
    }
    let (scheme, rest) = uri.split_once(':').ok_or("a redirect URI must be absolute")?;
    let lower = scheme.to_ascii_lowercase();
    if lower == "http" || lower == "https" {
        if scheme != lower {
            return Err("a redirect URI's scheme must be lower-case");
        }
        let url = HttpUrl::parse(uri).map_err(|_| "not a valid http(s) redirect URI")?;
        let loopback = LOOPBACK_HOSTS.contains(&url.host());
        return match (url.scheme(), loopback) {
            ("http", true) => Ok(RedirectKind::Loopback),
            ("http", false) => Err("a plain http redirect URI must use a loopback host (127.0.0.1, [::1] or localhost)"),
            _ => Ok(RedirectKind::Https),
        };
    }
    private_use(scheme, rest)
}

fn private_use(scheme: &str, rest: &str) -> Result<RedirectKind, &'static str> {
    const SCHEME: &str = "a custom-scheme redirect URI must use a reverse-domain scheme such as com.example.app:/callback";
    let mut bytes = scheme.bytes();
    let first_alpha = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
    let scheme_ok = first_alpha
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
        && scheme.contains('.')
        && !scheme.starts_with('.')
        && !scheme.ends_with('.')
        && !scheme.contains("..");
    if !scheme_ok {
        return Err(SCHEME);
    }
    if rest.is_empty() {
        return Err("a custom-scheme redirect URI needs a path");
    }
    if let Some(after) = rest.strip_prefix("//") {
        let authority = after.split(['/', '?']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err("a redirect URI must not contain credentials");
        }
    }
    let chars_ok = rest.bytes().all(|b| {
        b.is_ascii_alphanumeric() || b"-._~!$&'()+,;=:@/?%".contains(&b)
    });
    let dot_segment = rest
        .split(['/', '?'])
        .any(|s| s == "." || s == ".." || s.eq_ignore_ascii_case("%2e") || s.eq_ignore_ascii_case("%2e%2e"));
    if !chars_ok || dot_segment {
        return Err("a custom-scheme redirect URI has characters or dot segments that are not allowed");
    }
    Ok(RedirectKind::PrivateUse)
}

/// `(host, path?query)` of a loopback http URI (the parts that must match
/// whatever the port).
fn loopback_parts(uri: &str) -> Option<(String, String)> {
    if check_redirect_uri(uri) != Ok(RedirectKind::Loopback) {
        return None;
    }
    let url = HttpUrl::parse(uri).ok()?;
    Some((url.host().to_string(), url.path_and_query()))
}

/// Whether `presented` is the registered `registered`: byte-exact, except
/// that two loopback URIs match whatever their ports (same host, path and
/// query).
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return check_redirect_uri(presented).is_ok();
    }
    match (loopback_parts(registered), loopback_parts(presented)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The first registered URI that `presented` matches.
pub fn find_registered<'a>(registered: &'a [String], presented: &str) -> Option<&'a str> {
    registered
        .iter()
        .find(|r| redirect_matches(r, presented))
        .map(String::as_str)
}

/// What the consent page shows of a redirect URI: its host (or the custom
/// scheme), never the whole text.
pub fn display_target(uri: &str) -> String {
    match HttpUrl::parse(uri) {
        Ok(url) => url.authority(),
        Err(_) => uri.split(':').next().unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_cli_and_web_redirects_are_accepted() {
        for (uri, kind) in [
            ("http://127.0.0.1/callback", RedirectKind::Loopback),
            ("http://127.0.0.1:33418/callback?x=1", RedirectKind::Loopback),
            ("http://[::1]:8080/cb", RedirectKind::Loopback),
            ("http://localhost:6274/oauth/callback", RedirectKind::Loopback),
            ("https://app.example.com/oauth/callback", RedirectKind::Https),
            ("https://app.example.com:8443/cb?tenant=a", RedirectKind::Https),
            ("com.example.app:/oauth2redirect", RedirectKind::PrivateUse),
            ("com.example.app://callback/path", RedirectKind::PrivateUse),
            ("io.cursor.app-1:/cb", RedirectKind::PrivateUse),
        ] {
            assert_eq!(check_redirect_uri(uri), Ok(kind), "{uri}");
        }
    }

    #[test]
    fn hostile_redirects_are_refused() {
        let long = format!("https://a.example/{}", "x".repeat(MAX_REDIRECT_URI_LEN));
        for uri in [
            "",
            "/relative",
            "callback",
            "http://evil.example/cb",
            "http://127.0.0.2/cb",
            "http://127.0.0.1.evil.example/cb",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "https://user@app.example.com/cb",
            "https://*.example.com/cb",
            "https://app.example.com/*",
            "https://app.example.com/a/../b",
            "https://app.example.com/a b",
            "https://app.example.com/\u{e9}",
            "https://app.example.com\\@evil.example/",
            "HTTPS://app.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "vbscript:x",
            "myapp:/cb",
            "com.example.app:",
            "com.example.app://user@host/cb",
            "com.example.app:/a/../b",
            "com.example.app:/a<b",
            ".com.example:/cb",
            "Com.Example.App:/cb",
            long.as_str(),
        ] {
            assert!(check_redirect_uri(uri).is_err(), "accepted {uri:?}");
        }
    }

    #[test]
    fn matching_is_exact_except_the_loopback_port() {
        let registered = "http://127.0.0.1/callback";
        assert!(redirect_matches(registered, "http://127.0.0.1:51004/callback"));
        assert!(redirect_matches("http://127.0.0.1:3000/callback", "http://127.0.0.1:4000/callback"));
        assert!(redirect_matches("http://localhost:1/cb", "http://localhost:2/cb"));
        assert!(!redirect_matches(registered, "http://localhost:51004/callback"));
        assert!(!redirect_matches(registered, "http://127.0.0.1:51004/callback/x"));
        assert!(!redirect_matches(registered, "http://127.0.0.1:51004/callback?x=1"));
        assert!(!redirect_matches(registered, "http://127.0.0.1:51004/Callback"));
        let https = "https://app.example.com/cb";
        assert!(redirect_matches(https, https));
        assert!(!redirect_matches(https, "https://app.example.com:8443/cb"));
        assert!(!redirect_matches(https, "https://app.example.com/cb/"));
        assert!(!redirect_matches(https, "https://app.example.com/cb?next=https://evil.example"));
        assert!(!redirect_matches(https, "https://APP.example.com/cb"));
        assert!(!redirect_matches("https://app.example.com:443/cb", https));
        assert!(redirect_matches("com.example.app:/cb", "com.example.app:/cb"));
        assert!(!redirect_matches("com.example.app:/cb", "com.example.app:/cb2"));
        // A registered value that is no longer acceptable never matches.
        assert!(!redirect_matches("http://evil.example/cb", "http://evil.example/cb"));
        let list = vec![https.to_string(), registered.to_string()];
        assert_eq!(find_registered(&list, "http://127.0.0.1:9/callback"), Some(registered));
        assert_eq!(find_registered(&list, "https://evil.example/cb"), None);
    }

    #[test]
    fn the_consent_page_shows_hosts_only() {
        assert_eq!(display_target("https://app.example.com/cb?x=1"), "app.example.com");
        assert_eq!(display_target("http://127.0.0.1:8080/cb"), "127.0.0.1:8080");
        assert_eq!(display_target("com.example.app:/cb"), "com.example.app");
    }
}
