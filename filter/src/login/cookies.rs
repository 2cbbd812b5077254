//! `Set-Cookie` values for the session cookie and the login state cookie.

use crate::config::{CookieConfig, LoginConfig};

/// Name of the short-lived login state cookie.
pub fn state_cookie_name(session_cookie: &str) -> String {
    format!("{session_cookie}_login")
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
        assert_eq!(state_cookie_name("vigil_session"), "vigil_session_login");
    }
}
