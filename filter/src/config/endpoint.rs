//! Absolute http(s) URLs from the configuration, parsed strictly.
//!
//! This replaces the `url` crate, whose IDNA and Unicode normalisation tables
//! were a fifth of the filter module. Only what an IdP endpoint needs is
//! accepted: an ASCII host (reg-name, IPv4 or bracketed IPv6), an optional
//! port, a path and a query. Anything a WHATWG parser would silently repair
//! (whitespace, backslashes, dot segments, characters that need
//! percent-encoding) is refused instead, so the configured text is exactly
//! what goes on the wire. Error texts never repeat the URL: it may carry
//! credentials.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a URL was refused; the text is the problem part of a config error.
pub type UrlProblem = &'static str;

pub const NOT_HTTP: UrlProblem = "not an absolute http(s) URL";

/// A validated absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    scheme: &'static str,
    /// Lower-cased reg-name or IPv4, or `[canonical IPv6]`.
    host: String,
    /// `None` when absent or the scheme's default (as browsers and `url` do).
    port: Option<u16>,
    /// Starts with `/`; no query.
    path: String,
    query: Option<String>,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, UrlProblem> {
        const WHITESPACE: UrlProblem = "must not contain whitespace or control characters";
        let Some((scheme, rest)) = split_scheme(text) else {
            // " https://..." is named for its space, not as a missing scheme.
            let padded = text.trim() != text && split_scheme(text.trim()).is_some();
            return Err(if padded { WHITESPACE } else { NOT_HTTP });
        };
        if !text.is_ascii() {
            return Err("must be ASCII (IDN hosts must be given in punycode)");
        }
        if text.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(WHITESPACE);
        }
        if rest.contains('#') {
            return Err("must not contain a fragment");
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(end);
        if authority.contains('@') {
            return Err("must not contain credentials");
        }
        let (host, port) = split_host_port(authority)?;
        let default_port = if scheme == "https" { 443 } else { 80 };
        let port = parse_port(port)?.filter(|&p| p != default_port);
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        check_path(path)?;
        if let Some(query) = query {
            check_chars(query, b"/?")?;
        }
        Ok(HttpUrl {
            scheme,
            host: parse_host(host)?,
            port,
            path: path.to_string(),
            query: query.map(str::to_string),
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// Lower-cased; an IPv6 address keeps its brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port unless it is the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `host[:port]`, what `:authority` carries.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The path without the query; at least `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// What `:path` carries: the path and `?query` if there is one.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority(), self.path_and_query())
    }
}

fn split_scheme(text: &str) -> Option<(&'static str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    if scheme.eq_ignore_ascii_case("https") {
        Some(("https", rest))
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(("http", rest))
    } else {
        None
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), UrlProblem> {
    if authority.starts_with('[') {
        let close = authority.find(']').ok_or("has an invalid host")? + 1;
        let (host, after) = authority.split_at(close);
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err("has an invalid host"),
        };
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn parse_port(port: Option<&str>) -> Result<Option<u16>, UrlProblem> {
    let Some(port) = port else { return Ok(None) };
    let valid = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    match port.parse::<u16>() {
        Ok(p) if valid && p != 0 => Ok(Some(p)),
        _ => Err("has an invalid port"),
    }
}

fn parse_host(host: &str) -> Result<String, UrlProblem> {
    const INVALID: UrlProblem = "has an invalid host";
    if host.is_empty() {
        return Err("has an empty host");
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // No zone ids: they mean nothing to the proxy.
        let addr: Ipv6Addr = inner.parse().map_err(|_| INVALID)?;
        return Ok(format!("[{addr}]"));
    }
    let host = host.to_ascii_lowercase();
    let dns_char = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let labels = host.strip_suffix('.').unwrap_or(&host);
    if !labels
        .split('.')
        .all(|label| !label.is_empty() && label.bytes().all(dns_char))
    {
        return Err(INVALID);
    }
    // A numeric last label makes it an IPv4 address; WHATWG would also read
    // octal, hex and short forms, which only a strict dotted quad avoids.
    let last = labels.rsplit('.').next().unwrap_or_default();
    let hex = last.strip_prefix("0x").unwrap_or(last);
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (hex.len() < last.len() && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric && host.parse::<Ipv4Addr>().is_err() {
        return Err(INVALID);
    }
    Ok(host)
}

fn check_path(path: &str) -> Result<(), UrlProblem> {
    check_chars(path, b"/")?;
    let dot = |segment: &str| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    };
    if path.split('/').any(dot) {
        return Err("must not contain `.` or `..` path segments");
    }
    Ok(())
}

/// RFC 3986 pchar plus `extra`, with `%` only as a valid escape.
fn check_chars(text: &str, extra: &[u8]) -> Result<(), UrlProblem> {
    const BAD: UrlProblem = "has a character that must be percent-encoded";
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let escape = bytes.get(i + 1..i + 3).ok_or(BAD)?;
            if !escape.iter().all(u8::is_ascii_hexdigit) {
                return Err(BAD);
            }
            i += 3;
            continue;
        }
        let pchar = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if !pchar && !extra.contains(&b) {
            return Err(BAD);
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> HttpUrl {
        match HttpUrl::parse(text) {
            Ok(url) => url,
            Err(problem) => panic!("{text}: {problem}"),
        }
    }

    fn err(text: &str) -> UrlProblem {
        match HttpUrl::parse(text) {
            Ok(url) => panic!("accepted {text} as {url}"),
            Err(problem) => problem,
        }
    }

    #[test]
    fn splits_what_a_callout_needs() {
        let url = ok("https://idp.example.com:8443/userinfo?schema=openid");
        assert_eq!(url.scheme(), "https");
        assert_eq!(url.host(), "idp.example.com");
        assert_eq!(url.port(), Some(8443));
        assert_eq!(url.authority(), "idp.example.com:8443");
        assert_eq!(url.path(), "/userinfo");
        assert_eq!(url.query(), Some("schema=openid"));
        assert_eq!(url.path_and_query(), "/userinfo?schema=openid");
        assert_eq!(
            url.to_string(),
            "https://idp.example.com:8443/userinfo?schema=openid"
        );
    }

    #[test]
    fn normalises_like_the_url_crate() {
        let url = ok("http://10.0.0.1:8080");
        assert_eq!((url.path(), url.authority()), ("/", "10.0.0.1:8080".into()));
        assert_eq!(url.to_string(), "http://10.0.0.1:8080/");
        assert_eq!(ok("HTTPS://IdP.Example.COM/Token").to_string(), "https://idp.example.com/Token");
        assert_eq!(ok("https://idp:443/t").authority(), "idp");
        assert_eq!(ok("http://idp:80/t").authority(), "idp");
        assert_eq!(ok("http://idp:443/t").authority(), "idp:443");
        assert_eq!(ok("https://idp?a=1").path_and_query(), "/?a=1");
        assert_eq!(ok("https://idp/?").query(), Some(""));
        assert_eq!(ok("https://idp.example.com./t").host(), "idp.example.com.");
    }

    #[test]
    fn accepts_ip_literals_and_escapes() {
        assert_eq!(ok("https://[::1]:9443/t").authority(), "[::1]:9443");
        assert_eq!(ok("https://[2001:DB8:0:0:0:0:0:1]/t").host(), "[2001:db8::1]");
        assert_eq!(ok("http://127.0.0.1/t").host(), "127.0.0.1");
        assert_eq!(ok("https://idp_1.local/t").host(), "idp_1.local");
        let url = ok("https://idp/realms/a%20b/token?x=%2F&y=a/b?c:d@e");
        assert_eq!(url.path(), "/realms/a%20b/token");
        assert_eq!(url.query(), Some("x=%2F&y=a/b?c:d@e"));
    }

    #[test]
    fn refuses_other_schemes_and_relative_urls() {
        for text in [
            "idp.example.com/token",
            "/token",
            "ftp://idp.example.com/token",
            "mailto:a@b",
            "https:idp.example.com/token",
            "https:/idp.example.com/token",
            "not a url",
            "",
        ] {
            assert_eq!(err(text), NOT_HTTP, "{text}");
        }
    }

    #[test]
    fn refuses_credentials_and_fragments_without_echoing_them() {
        for text in [
            "https://user:pw@idp.example.com/token",
            "https://user@idp.example.com/token",
            "https://@idp.example.com/token",
        ] {
            assert_eq!(err(text), "must not contain credentials");
        }
        assert_eq!(err("https://idp.example.com/token#frag"), "must not contain a fragment");
        assert_eq!(err("https://idp.example.com/#"), "must not contain a fragment");
    }

    #[test]
    fn refuses_what_a_browser_would_repair() {
        for text in [
            "https://idp.example.com/a b",
            " https://idp.example.com/",
            "https://idp.example.com/\t",
            "https://idp.exa\nmple.com/",
        ] {
            assert_eq!(err(text), "must not contain whitespace or control characters");
        }
        assert!(err("https://bücher.example/token").contains("punycode"));
        assert!(err("https://idp/t?q=é").contains("punycode"));
        assert_eq!(ok("https://xn--bcher-kva.example/t").host(), "xn--bcher-kva.example");
        for text in [
            "https://idp/a\\b",
            "https://idp/a|b",
            "https://idp/a\"b",
            "https://idp/a<b>",
            "https://idp/t?q={x}",
            "https://idp/a%2",
            "https://idp/a%zz",
            "https://idp/t?q=%",
        ] {
            assert_eq!(err(text), "has a character that must be percent-encoded", "{text}");
        }
        for text in ["https://idp/a/../b", "https://idp/./b", "https://idp/a/%2E%2e", "https://idp/.."] {
            assert!(err(text).contains("path segments"), "{text}");
        }
        assert_eq!(ok("https://idp/a/.well-known/..x").path(), "/a/.well-known/..x");
    }

    #[test]
    fn refuses_bad_hosts() {
        for text in ["https:///token", "https://:443/token", "https://?x", "https://"] {
            assert_eq!(err(text), "has an empty host", "{text}");
        }
        for text in [
            "https://idp..example/t",
            "https://.idp/t",
            "https://idp.example.com../t",
            "https://idp%2Eexample/t",
            "https://idp!/t",
            "https://1.2.3.256/t",
            "https://1.2.3/t",
            "https://010.0.0.1/t",
            "https://0x7f.1/t",
            "https://idp.0x1f/t",
            "https://[::1/t",
            "https://[::1]x/t",
            "https://[fe80::1%25eth0]/t",
            "https://[idp]/t",
        ] {
            assert_eq!(err(text), "has an invalid host", "{text}");
        }
        assert_eq!(ok("https://idp.0xyz/t").host(), "idp.0xyz");
        assert_eq!(ok("https://1.2.3.example/t").host(), "1.2.3.example");
    }

    #[test]
    fn refuses_bad_ports() {
        for text in [
            "https://idp:/t",
            "https://idp:0/t",
            "https://idp:65536/t",
            "https://idp:99999999999999999999/t",
            "https://idp:+443/t",
            "https://idp:44a/t",
            "https://idp:1:2/t",
            "https://[::1]:/t",
            "https://[::1]:x/t",
        ] {
            assert_eq!(err(text), "has an invalid port", "{text}");
        }
        assert_eq!(ok("https://idp:65535/t").port(), Some(65535));
        assert_eq!(ok("https://idp:00443/t").port(), None);
    }
}
