//! Which requests vigil answers itself instead of forwarding.

use super::request::RequestView;
use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRoute {
    /// `redirect_uri`'s path: `Callback::start`.
    Callback,
    /// `login.logout_path`: `logout::logout`.
    Logout,
    /// `login.backchannel_logout_path`: buffer the body, then
    /// `backchannel::backchannel_logout`.
    BackchannelLogout,
}

/// The login endpoint `req` is for (exact path match, query ignored);
/// `None`: an ordinary request (check its token, forward it).
pub fn route(cfg: &Config, req: &RequestView) -> Option<LoginRoute> {
    let login = cfg.login.as_ref()?;
    let path = req.path_only();
    if path == login.callback_path {
        Some(LoginRoute::Callback)
    } else if login.logout_path.as_deref() == Some(path) {
        Some(LoginRoute::Logout)
    } else if login.backchannel_logout_path.as_deref() == Some(path) {
        Some(LoginRoute::BackchannelLogout)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::testkeys::login_config;

    #[test]
    fn exact_paths_only() {
        let cfg = login_config();
        let r = |p: &str| route(&cfg, &RequestView::new("GET", p, vec![]));
        assert_eq!(r("/callback?code=1"), Some(LoginRoute::Callback));
        assert_eq!(r("/logout"), Some(LoginRoute::Logout));
        assert_eq!(r("/backchannel"), Some(LoginRoute::BackchannelLogout));
        assert_eq!(r("/callback/x"), None);
        assert_eq!(r("/"), None);
        let mut plain = cfg.clone();
        plain.login = None;
        assert_eq!(route(&plain, &RequestView::new("GET", "/callback", vec![])), None);
    }
}
