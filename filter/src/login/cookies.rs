//! `Set-Cookie` values for the session cookie and the login state cookie.

use crate::config::{cookie_prefix, Config, CookieConfig, LoginConfig, HOST_PREFIX};

/// The pre-`__Host-` default names: a browser may still send them (until
/// they expire) after an upgrade, and the upstream must never get them.
const LEGACY_COOKIES: [&str; 2] = ["vigil_session", "vigil_session_login"];

/// `Path` of the login state cookie: `/` for a `__Host-` cookie (browsers
/// require it), else the callback path (it is only needed there).
pub fn state_cookie_path(login: &LoginConfig) -> &str {
    if cookie_prefix(&login.state_cookie_name) == HOST_PREFIX {
        "/"
    } else {
        &login.callback_path
    }
}

/// Cookies vigil removes from requests before the upstream: the session
/// cookie, the login state cookie and, when the session cookie has a
/// prefixed name, the names older versions used by default.
pub fn own_cookie_names(cfg: &Config) -> Vec<String> {
    let mut names = vec![cfg.downstream.cookie_name.clone()];
    if let Some(login) = &cfg.login {
        names.push(login.state_cookie_name.clone());
        if !cookie_prefix(&cfg.downstream.cookie_name).is_empty() {
            names.extend(LEGACY_COOKIES.iter().map(|n| n.to_string()));
        }
    }
    names
}

/// `name=value` with `HttpOnly`, `SameSite=Lax`, `Secure` (unless disabled),
/// the configured domain, `path` and `Max-Age`.
pub fn set_cookie(
    cookie: &CookieConfig,
    name: &str,
    value: &str,
    path: &str,
    max_age_s: u64,
) -> String {
    let mut out =
        format!("{name}={value}; Path={path}; Max-Age={max_age_s}; HttpOnly; SameSite=Lax");
    if cookie.secure {
        out.push_str("; Secure");
    }
    if let Some(domain) = &cookie.domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    out
}

/// Expires the cookie at once (same attributes, so the browser matches it).
pub fn clear_cookie(cookie: &CookieConfig, name: &str, path: &str) -> String {
    set_cookie(cookie, name, "", path, 0)
}

/// The session cookie carrying the downstream token.
pub fn session_cookie(login: &LoginConfig, name: &str, token: &str, max_age_s: u64) -> String {
    set_cookie(&login.cookie, name, token, &login.cookie.path, max_age_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_follow_the_configuration() {
        let mut cfg = CookieConfig {
            domain: None,
            path: "/".into(),
            secure: true,
        };
        assert_eq!(
            set_cookie(&cfg, "s", "v", "/", 60),
            "s=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        cfg.secure = false;
        cfg.domain = Some("example.com".into());
        assert_eq!(
            clear_cookie(&cfg, "s", "/cb"),
            "s=; Path=/cb; Max-Age=0; HttpOnly; SameSite=Lax; Domain=example.com"
        );
    }

    #[test]
    fn own_cookies_include_the_legacy_names_after_the_prefix_upgrade() {
        let mut cfg = crate::login::testkeys::login_config();
        assert_eq!(own_cookie_names(&cfg), ["vigil_session", "vigil_session_login"]);
        cfg.downstream.cookie_name = "__Host-vigil_session".into();
        let login = cfg.login.as_mut().unwrap();
        login.state_cookie_name = "__Host-vigil_session_login".into();
        assert_eq!(state_cookie_path(login), "/");
        assert_eq!(
            own_cookie_names(&cfg),
            ["__Host-vigil_session", "__Host-vigil_session_login", "vigil_session", "vigil_session_login"]
        );
        cfg.login.as_mut().unwrap().state_cookie_name = "__Secure-s".into();
        assert_eq!(state_cookie_path(cfg.login.as_ref().unwrap()), "/callback");
        cfg.login = None;
        assert_eq!(own_cookie_names(&cfg), ["__Host-vigil_session"]);
    }
}
