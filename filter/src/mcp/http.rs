//! Requests and replies of the authorization server: the request as the
//! adapter hands it over, strict form parsing, RFC 6749 JSON errors, HTML
//! pages, and the header checks the endpoints share.
//!
//! Replies never reflect request input except where a protocol requires it
//! (`state` in a redirect, registered metadata echoed by registration), and
//! error descriptions are static.

use serde_json::Value;

use crate::reply::{escape_html, LocalReply};

/// Largest request body an endpoint reads (token, revocation, registration,
/// consent form); a larger one gets 413 without being parsed.
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// A request to one of the MCP endpoints, as the adapter saw it.
#[derive(Clone, PartialEq, Eq)]
pub struct McpRequest {
    pub method: String,
    /// `:path`, with the query.
    pub path: String,
    /// `:authority` (or `host`); empty when the host gave none.
    pub authority: String,
    /// Every header, names lower-case (proxy-wasm hands them over so).
    pub headers: Vec<(String, String)>,
    /// The whole body (empty for requests without one).
    pub body: Vec<u8>,
}

// Headers and bodies carry secrets: Debug shows method and path only.
impl std::fmt::Debug for McpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpRequest")
            .field("method", &self.method)
            .field("path", &self.path_only())
            .finish_non_exhaustive()
    }
}

impl McpRequest {
    pub fn new(method: &str, path: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> McpRequest {
        let authority = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(":authority") || k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        McpRequest {
            method: method.to_string(),
            path: path.to_string(),
            authority,
            headers,
            body,
        }
    }

    /// Every value of header `name`.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(self.path.as_str(), |(p, _)| p)
    }

    pub fn query(&self) -> &str {
        self.path.split_once('?').map_or("", |(_, q)| q)
    }

    /// The media type of `content-type`, lower-case, without parameters.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }
}

/// A browser navigation (a page load): `GET`, `Accept` naming `text/html`,
/// not `XMLHttpRequest`, and `Sec-Fetch-Mode: navigate` when the browser
/// sends that header. The adapter uses it on protected paths: navigations
/// without an `Authorization` header keep vigil's ordinary handling (the
/// session cookie, or the redirect to the login); every other request gets
/// the MCP challenge (`401` with `resource_metadata`).
pub fn is_browser_navigation(method: &str, headers: &[(String, String)]) -> bool {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let accepts_html = header("accept").is_some_and(|a| a.to_ascii_lowercase().contains("text/html"));
    let xhr = header("x-requested-with").is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"));
    let navigate = header("sec-fetch-mode").is_none_or(|m| m.eq_ignore_ascii_case("navigate"));
    method == "GET" && accepts_html && !xhr && navigate
}

/// A `POST` from this site's own page: `Sec-Fetch-Site` `same-origin` (or
/// `none`, the user's own action); without it, an `Origin` whose host[:port]
/// is the request's authority; a request with neither is no browser's
/// cross-site request (and the `SameSite=Lax` session cookie is not sent on a
/// cross-site `POST` anyway).
pub(crate) fn same_origin(req: &McpRequest) -> bool {
    if let Some(site) = req.header("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none");
    }
    let Some(origin) = req.header("origin") else {
        return true;
    };
    match origin.trim().split_once("://") {
        Some((_, host)) => !req.authority.is_empty() && host.eq_ignore_ascii_case(&req.authority),
        None => false,
    }
}

/// Strict `application/x-www-form-urlencoded` decoding (query strings and
/// bodies): `+` is a space, `%XX` must be a valid escape, the result must be
/// UTF-8. `Err` names the problem (static text).
pub(crate) fn parse_form(input: &[u8]) -> Result<Vec<(String, String)>, &'static str> {
    let text = std::str::from_utf8(input).map_err(|_| "the form is not UTF-8")?;
    let mut out = Vec::new();
    for part in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

fn decode(text: &str) -> Result<String, &'static str> {
    const BAD: &str = "the form has an invalid percent-encoding";
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(BAD)?;
                let hex = std::str::from_utf8(hex).map_err(|_| BAD)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| BAD)?);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the form is not UTF-8")
}

/// The value of parameter `name`: `Ok(None)` when absent or empty (RFC 6749
/// §3.1: a parameter without a value is omitted), `Err` when repeated.
pub(crate) fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ()> {
    let mut found = params.iter().filter(|(k, _)| k == name);
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(());
    }
    Ok(first.filter(|v| !v.is_empty()))
}

/// An RFC 6749 §5.2 error (also used by RFC 7009 and RFC 7591).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u32,
    pub code: &'static str,
    pub description: &'static str,
}

impl OAuthError {
    pub(crate) const fn new(status: u32, code: &'static str, description: &'static str) -> Self {
        OAuthError { status, code, description }
    }
    pub(crate) const fn invalid_request(description: &'static str) -> Self {
        Self::new(400, "invalid_request", description)
    }
    /// `401` with `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    pub(crate) const fn invalid_client(description: &'static str) -> Self {
        Self::new(401, "invalid_client", description)
    }
    pub(crate) const fn invalid_grant(description: &'static str) -> Self {
        Self::new(400, "invalid_grant", description)
    }
    pub(crate) const fn invalid_scope(description: &'static str) -> Self {
        Self::new(400, "invalid_scope", description)
    }
    /// RFC 8707 §2: the `resource` is not one this server issues tokens for.
    pub(crate) const fn invalid_target(description: &'static str) -> Self {
        Self::new(400, "invalid_target", description)
    }
    pub(crate) const fn unavailable(description: &'static str) -> Self {
        Self::new(503, "temporarily_unavailable", description)
    }

    /// The JSON reply, `no-store`, with a `Basic` challenge on 401.
    pub fn reply(&self) -> LocalReply {
        let body = serde_json::json!({ "error": self.code, "error_description": self.description });
        let mut reply = json_reply(self.status, &body);
        match self.status {
            401 => reply
                .headers
                .push(("www-authenticate", "Basic realm=\"vigil\", charset=\"UTF-8\"".to_string())),
            503 => reply.headers.push(("retry-after", "1".to_string())),
            _ => {}
        }
        reply
    }
}

/// A JSON reply: `no-store`, readable cross-origin (browser-based MCP
/// clients call the metadata, token, registration and revocation endpoints
/// with `fetch`; no cookie is ever involved, so `*` is safe).
pub(crate) fn json_reply(status: u32, body: &Value) -> LocalReply {
    LocalReply {
        status,
        headers: vec![
            ("content-type", "application/json".to_string()),
            ("cache-control", "no-store".to_string()),
            ("pragma", "no-cache".to_string()),
            ("access-control-allow-origin", "*".to_string()),
        ],
        body: body.to_string().into_bytes(),
    }
}

/// `413` for a body over `MAX_BODY_LEN` (the adapter sends it as soon as
/// `content-length` or the buffered size exceeds the bound).
pub fn body_too_large() -> LocalReply {
    let mut reply = OAuthError::invalid_request("the request body is larger than 16 KiB").reply();
    reply.status = 413;
    reply
}

/// `405` with `Allow`.
pub(crate) fn method_not_allowed(allow: &'static str) -> LocalReply {
    let mut reply = OAuthError::invalid_request("method not allowed").reply();
    reply.status = 405;
    reply.headers.push(("allow", allow.to_string()));
    reply
}

/// The answer to a CORS preflight of an endpoint that browsers may `fetch`.
pub(crate) fn preflight(allow: &'static str) -> LocalReply {
    LocalReply {
        status: 204,
        headers: vec![
            ("access-control-allow-origin", "*".to_string()),
            ("access-control-allow-methods", allow.to_string()),
            (
                "access-control-allow-headers",
                "authorization, content-type, mcp-protocol-version".to_string(),
            ),
            ("access-control-max-age", "600".to_string()),
            ("cache-control", "no-store".to_string()),
        ],
        body: Vec::new(),
    }
}

/// Headers of every HTML page: no framing (clickjacking of the consent
/// page), no script, no referrer, no caching.
pub(crate) fn html_reply(status: u32, body: String) -> LocalReply {
    LocalReply {
        status,
        headers: vec![
            ("content-type", "text/html; charset=utf-8".to_string()),
            ("cache-control", "no-store".to_string()),
            (
                "content-security-policy",
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
                    .to_string(),
            ),
            ("x-frame-options", "DENY".to_string()),
            ("x-content-type-options", "nosniff".to_string()),
            ("referrer-policy", "no-referrer".to_string()),
        ],
        body: body.into_bytes(),
    }
}

/// A static error page (the authorization endpoint before the redirect URI
/// is trusted, RFC 6749 §4.1.2.1: never redirect then).
pub(crate) fn error_page(status: u32, code: &'static str, reason: &'static str) -> LocalReply {
    html_reply(
        status,
        format!(
            "<!doctype html><title>Authorization refused</title><h1>Authorization refused</h1><p>{}</p><p><code>{}</code></p>\n",
            escape_html(reason),
            escape_html(code)
        ),
    )
}


/// RFC 6749 §3.3 scope-token characters.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// The answer for a request to a form-`POST` endpoint that is not one: the
/// CORS preflight, `405` for another method, `413` for a body over
/// `MAX_BODY_LEN`; `None` for a `POST` to serve.
pub(crate) fn refuse_unless_post(req: &McpRequest) -> Option<LocalReply> {
    match req.method.as_str() {
        "POST" if req.body.len() > MAX_BODY_LEN => Some(body_too_large()),
        "POST" => None,
        "OPTIONS" => Some(preflight("POST")),
        _ => Some(method_not_allowed("POST")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn strict_forms_refuse_bad_escapes_and_non_utf8() {
        assert_eq!(
            parse_form(b"a=b+c&d=%2F%C3%A9&e").unwrap(),
            vec![
                ("a".into(), "b c".into()),
                ("d".into(), "/\u{e9}".into()),
                ("e".into(), String::new())
            ]
        );
        for bad in [&b"a=%zz"[..], b"a=%4", b"a=%", b"a=%C3", b"\xff=1", b"a=%FF"] {
            assert!(parse_form(bad).is_err(), "{bad:?}");
        }
        let params = parse_form(b"a=1&a=2&b=&c=3").unwrap();
        assert_eq!(single(&params, "a"), Err(()));
        assert_eq!(single(&params, "b"), Ok(None));
        assert_eq!(single(&params, "c"), Ok(Some("3")));
        assert_eq!(single(&params, "z"), Ok(None));
    }

    #[test]
    fn oauth_errors_are_json_no_store_and_401_challenges_basic() {
        let r = OAuthError::invalid_client("unknown client").reply();
        assert_eq!(r.status, 401);
        let has = |name: &str| r.headers.iter().any(|(k, _)| *k == name);
        assert!(has("www-authenticate") && has("cache-control") && has("pragma"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "invalid_client");
        let r = OAuthError::invalid_grant("x").reply();
        assert_eq!(r.status, 400);
        assert!(!r.headers.iter().any(|(k, _)| *k == "www-authenticate"));
        assert_eq!(body_too_large().status, 413);
        let r = method_not_allowed("POST");
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("allow", "POST".to_string())));
    }

    #[test]
    fn navigations_and_same_origin_posts() {
        let html = ("accept", "text/html,application/xhtml+xml");
        assert!(is_browser_navigation("GET", &headers(&[html])));
        assert!(is_browser_navigation("GET", &headers(&[html, ("sec-fetch-mode", "navigate")])));
        assert!(!is_browser_navigation("GET", &headers(&[html, ("sec-fetch-mode", "cors")])));
        assert!(!is_browser_navigation("POST", &headers(&[html])));
        assert!(!is_browser_navigation("GET", &headers(&[("accept", "application/json, text/event-stream")])));
        assert!(!is_browser_navigation("GET", &headers(&[])));
        let req = |pairs: &[(&str, &str)]| {
            let mut h = headers(pairs);
            h.push(("host".into(), "app.example.com".into()));
            McpRequest::new("POST", "/x", h, Vec::new())
        };
        assert!(same_origin(&req(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&req(&[("sec-fetch-site", "cross-site")])));
        assert!(same_origin(&req(&[("origin", "https://app.example.com")])));
        assert!(!same_origin(&req(&[("origin", "https://evil.example")])));
        assert!(!same_origin(&req(&[("origin", "null")])));
        assert!(same_origin(&req(&[])));
    }

    #[test]
    fn html_escaping_and_scope_tokens() {
        assert_eq!(escape_html("<a href=\"x\">'&'</a>\u{7}"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\u{fffd}");
        assert!(is_scope_token("mcp:tools.read"));
        for bad in ["", "a b", "a\"b", "a\\b", "\u{e9}"] {
            assert!(!is_scope_token(bad), "{bad}");
        }
        let req = McpRequest::new(
            "POST",
            "/t?x=1",
            headers(&[("content-type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8"), ("authorization", "secret")]),
            b"secret".to_vec(),
        );
        assert_eq!(req.media_type().as_deref(), Some("application/x-www-form-urlencoded"));
        assert_eq!((req.path_only(), req.query()), ("/t", "x=1"));
        assert!(!format!("{req:?}").contains("secret"));
    }
}
