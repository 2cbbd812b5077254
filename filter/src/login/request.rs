//! The parts of a downstream request the login endpoints look at.

/// A request as the adapter saw it: `:method`, `:path` (with the query),
/// `:authority` and the other headers (names lower-case, as proxy-wasm
/// hands them over).
#[derive(Clone, PartialEq, Eq)]
pub struct RequestView {
    pub method: String,
    pub path: String,
    /// `:authority` (empty when the host gave none).
    pub authority: String,
    pub headers: Vec<(String, String)>,
}

// Headers carry cookies and tokens: Debug shows only method and path.
impl std::fmt::Debug for RequestView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestView")
            .field("method", &self.method)
            .field("path", &self.path_only())
            .finish_non_exhaustive()
    }
}

impl RequestView {
    pub fn new(method: &str, path: &str, headers: Vec<(String, String)>) -> RequestView {
        RequestView {
            method: method.to_string(),
            path: path.to_string(),
            authority: String::new(),
            headers,
        }
    }

    /// The request's host[:port]: `:authority`, else the `host` header.
    pub fn authority(&self) -> Option<&str> {
        Some(self.authority.as_str())
            .filter(|a| !a.is_empty())
            .or_else(|| self.header("host"))
    }

    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `:path` without the query string.
    pub fn path_only(&self) -> &str {
        self.path
            .split_once('?')
            .map_or(self.path.as_str(), |(p, _)| p)
    }

    /// Decoded query parameters, in order.
    pub fn query(&self) -> Vec<(String, String)> {
        match self.path.split_once('?') {
            Some((_, q)) => super::form::parse(q),
            None => Vec::new(),
        }
    }

    /// Value of cookie `name` across every `cookie` header (`None` when
    /// absent or empty); `Err` when it appears more than once (a planted
    /// copy: neither may be trusted).
    pub fn cookie(&self, name: &str) -> Result<Option<String>, DuplicateCookie> {
        let mut values = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| crate::token::extract::cookie_values(v, name));
        let first = values.next();
        if values.next().is_some() {
            return Err(DuplicateCookie);
        }
        Ok(first.filter(|v| !v.is_empty()).map(str::to_string))
    }

    /// A browser navigation that may be redirected to the IdP: `GET`,
    /// `Accept` naming `text/html`, not XHR/fetch. Everything else gets a
    /// 401 (a redirect would lose a body or confuse a script).
    pub fn is_page_load(&self) -> bool {
        if self.method != "GET" {
            return false;
        }
        let accepts_html = self
            .header("accept")
            .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"));
        let xhr = self
            .header("x-requested-with")
            .is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"));
        let navigate = self
            .header("sec-fetch-mode")
            .is_none_or(|m| m.eq_ignore_ascii_case("navigate"));
        accepts_html && !xhr && navigate
    }
}

/// A cookie the request carries more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateCookie;

/// The one value of a query parameter; `Err` when it is repeated (an
/// injected second `state` or `code` must not be resolved by guessing).
pub(crate) fn single<'a>(
    params: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, ()> {
    let mut found = params.iter().filter(|(k, _)| k == name);
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(());
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)]) -> RequestView {
        RequestView::new(
            method,
            "/a/b?x=1&y=%20z",
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn page_loads_are_html_gets_that_navigate() {
        let html = ("accept", "text/html,application/xhtml+xml;q=0.9");
        assert!(req("GET", &[html]).is_page_load());
        assert!(req("GET", &[html, ("sec-fetch-mode", "navigate")]).is_page_load());
        assert!(!req("POST", &[html]).is_page_load());
        assert!(!req("GET", &[("accept", "application/json")]).is_page_load());
        assert!(!req("GET", &[]).is_page_load());
        assert!(!req("GET", &[html, ("x-requested-with", "xmlhttprequest")]).is_page_load());
        assert!(!req("GET", &[html, ("sec-fetch-mode", "cors")]).is_page_load());
    }

    #[test]
    fn query_cookies_and_path() {
        let r = req("GET", &[("cookie", "a=1; b=2"), ("Cookie", "c=3")]);
        assert_eq!(r.path_only(), "/a/b");
        let q = r.query();
        assert_eq!(single(&q, "y"), Ok(Some(" z")));
        assert_eq!(single(&q, "none"), Ok(None));
        assert_eq!(r.cookie("b"), Ok(Some("2".into())));
        assert_eq!(r.cookie("c"), Ok(Some("3".into())));
        assert_eq!(r.cookie("d"), Ok(None));
        let twice = req("GET", &[("cookie", "a=1; b=2"), ("Cookie", "b=3")]);
        assert_eq!(twice.cookie("b"), Err(DuplicateCookie));
        assert_eq!(twice.cookie("a"), Ok(Some("1".into())));
        let dup = vec![
            ("s".to_string(), "1".to_string()),
            ("s".to_string(), "2".to_string()),
        ];
        assert_eq!(single(&dup, "s"), Err(()));
        assert!(!format!("{r:?}").contains("a=1"));
    }
}
