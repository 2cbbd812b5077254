//! The redirect to the IdP's authorization endpoint (authorization code
//! flow with PKCE S256), and what an unauthenticated request gets.

use super::cookies::{set_cookie, state_cookie_path};
use super::error::LoginError;
use super::fetch::retry_after_s;
use super::form::serialize;
use super::pkce::{new_verifier, random_b64, s256_challenge};
use super::provider::{Provider, ProviderMetadata};
use super::request::RequestView;
use super::return_url::safe_return_url;
use super::state::LoginState;
use crate::config::{Config, LoginConfig};
use crate::reply::{LocalReply, Rejection};
use crate::store::SharedStore;

/// The 302 to the IdP, with the sealed state cookie (scoped to the
/// callback path, living `state_lifetime`). `Err` when the random source
/// failed: state, nonce and verifier are secrets and have no fallback.
pub fn authorization_redirect(
    cfg: &Config,
    login: &LoginConfig,
    metadata: &ProviderMetadata,
    return_to: &str,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> Result<LocalReply, LoginError> {
    let lifetime_ns = u64::try_from(login.state_lifetime.as_nanos()).unwrap_or(u64::MAX);
    let mut secret = |words| random_b64(words, random).ok_or(LoginError::NoEntropy);
    let state = LoginState {
        state: secret(2)?,
        nonce: secret(2)?,
        verifier: new_verifier(random).ok_or(LoginError::NoEntropy)?,
        return_to: safe_return_url(return_to),
        expires_ns: now_ns.saturating_add(lifetime_ns),
    };
    let scope = login.scopes.join(" ");
    let challenge = s256_challenge(&state.verifier);
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &cfg.idp.client_id),
        ("redirect_uri", &login.redirect_uri),
        ("scope", &scope),
        ("state", &state.state),
        ("nonce", &state.nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    if login.consent_for_offline_access && login.scopes.iter().any(|s| s == "offline_access") {
        // OIDC Core §11: offline_access is ignored without prompt=consent.
        params.push(("prompt", "consent"));
    }
    let endpoint = &metadata.authorization_endpoint;
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    let location = format!("{endpoint}{separator}{}", serialize(&params));
    let cookie = set_cookie(
        &login.cookie,
        &login.state_cookie_name,
        &state.seal(&login.state_secret),
        state_cookie_path(login),
        login.state_lifetime.as_secs(),
    );
    Ok(LocalReply {
        status: 302,
        headers: vec![
            ("location", location),
            ("set-cookie", cookie),
            ("cache-control", "no-store".to_string()),
        ],
        body: Vec::new(),
    })
}

/// The reply to a request without a valid session: page loads go to the
/// IdP (503 with `Retry-After` until discovery and the JWKS are in), every
/// other request gets `rejection` (401 with `WWW-Authenticate`).
pub fn unauthenticated(
    cfg: &Config,
    provider: &Provider,
    store: &dyn SharedStore,
    req: &RequestView,
    rejection: Rejection,
    random: &mut dyn FnMut() -> Option<u64>,
    now_ns: u64,
) -> LocalReply {
    // A malformed request (two session cookies) would come back the same
    // after a login: it gets its 400, never a redirect.
    let bad_request = matches!(rejection, Rejection::BadRequest(_));
    let Some(login) = cfg.login.as_ref().filter(|_| req.is_page_load() && !bad_request) else {
        return rejection.to_reply();
    };
    match provider.ready() {
        Some((metadata, _)) => {
            authorization_redirect(cfg, login, metadata, &req.path, random, now_ns)
                .unwrap_or_else(|e| e.to_page())
        }
        None => LoginError::NotReady {
            retry_after_s: retry_after_s(cfg, store, now_ns),
        }
        .to_page(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::form::parse;
    use crate::login::testkeys::login_config;
    use crate::revalidation::testing::seq_entropy as seq_random;
    use crate::store::MemoryStore;

    fn metadata() -> ProviderMetadata {
        ProviderMetadata {
            authorization_endpoint: "https://idp.example.com/auth?tenant=a".into(),
            jwks_uri: crate::login::testkeys::endpoint("/jwks"),
            end_session_endpoint: None,
            revocation_endpoint: None,
        }
    }

    fn header<'a>(reply: &'a LocalReply, name: &str) -> &'a str {
        reply
            .headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn redirect_carries_every_parameter_and_a_sealed_state() {
        let cfg = login_config();
        let login = cfg.login.as_ref().unwrap();
        let mut random = seq_random(7);
        let reply =
            authorization_redirect(&cfg, login, &metadata(), "/app?x=1", &mut random, 1_000).unwrap();
        assert_eq!(reply.status, 302);
        let location = header(&reply, "location");
        let (base, query) = location.split_once("?").unwrap();
        assert_eq!(base, "https://idp.example.com/auth");
        let q = parse(query);
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("tenant"), Some("a"));
        assert_eq!(get("response_type"), Some("code"));
        assert_eq!(get("client_id"), Some("vigil client"));
        assert_eq!(
            get("redirect_uri"),
            Some("https://app.example.com/callback")
        );
        assert_eq!(get("scope"), Some("openid email offline_access"));
        assert_eq!(get("code_challenge_method"), Some("S256"));
        assert_eq!(get("prompt"), Some("consent"));
        let cookie = header(&reply, "set-cookie");
        assert!(cookie.starts_with("vigil_session_login="), "{cookie}");
        assert!(
            cookie.contains("Path=/callback")
                && cookie.contains("HttpOnly")
                && cookie.contains("Secure")
        );
        let sealed = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
        let state = LoginState::open(sealed, &login.state_secret, 1_000).unwrap();
        assert_eq!(get("state"), Some(state.state.as_str()));
        assert_eq!(get("nonce"), Some(state.nonce.as_str()));
        assert_eq!(
            get("code_challenge").unwrap(),
            s256_challenge(&state.verifier)
        );
        assert_eq!(state.return_to, "/app?x=1");
        // A second login gets fresh values.
        let again =
            authorization_redirect(&cfg, login, &metadata(), "//evil.com", &mut random, 1_000).unwrap();
        assert_ne!(header(&again, "location"), location);
        let sealed = header(&again, "set-cookie")
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_string();
        assert_eq!(
            LoginState::open(&sealed, &login.state_secret, 1_000)
                .unwrap()
                .return_to,
            "/"
        );
    }

    #[test]
    fn no_consent_prompt_without_offline_access_or_when_disabled() {
        let mut cfg = login_config();
        cfg.login.as_mut().unwrap().consent_for_offline_access = false;
        let login = cfg.login.as_ref().unwrap();
        let reply =
            authorization_redirect(&cfg, login, &metadata(), "/", &mut seq_random(1), 0).unwrap();
        assert!(!header(&reply, "location").contains("prompt="));
    }

    #[test]
    fn a_failing_random_source_gives_503_not_a_guessable_login() {
        let cfg = login_config();
        let store = MemoryStore::new();
        let provider = crate::login::testkeys::ready_provider(
            &cfg,
            &store,
            &crate::login::testkeys::TestIdpKeys::new(),
            0,
        );
        let page = RequestView::new("GET", "/page", vec![("accept".into(), "text/html".into())]);
        let mut words = 0;
        // The source fails part-way through the login's secrets.
        let mut flaky = || {
            words += 1;
            (words <= 3).then_some(42)
        };
        let r = unauthenticated(&cfg, &provider, &store, &page, Rejection::NoSession, &mut flaky, 0);
        assert_eq!(r.status, 503);
        assert!(r.headers.iter().all(|(k, _)| *k != "location" && *k != "set-cookie"));
        assert!(String::from_utf8_lossy(&r.body).contains("entropy_unavailable"));
    }

    #[test]
    fn api_requests_get_401_and_page_loads_503_before_discovery() {
        let cfg = login_config();
        let store = MemoryStore::new();
        let provider = Provider::new();
        let api = RequestView::new(
            "GET",
            "/api",
            vec![("accept".into(), "application/json".into())],
        );
        let page = RequestView::new("GET", "/page", vec![("accept".into(), "text/html".into())]);
        let mut random = seq_random(1);
        let r = unauthenticated(
            &cfg,
            &provider,
            &store,
            &api,
            Rejection::NoSession,
            &mut random,
            0,
        );
        assert_eq!(r.status, 401);
        assert!(r.headers.iter().any(|(k, _)| *k == "www-authenticate"));
        let r = unauthenticated(
            &cfg,
            &provider,
            &store,
            &page,
            Rejection::NoSession,
            &mut random,
            0,
        );
        assert_eq!(r.status, 503);
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| *k == "retry-after" && v == "1"));
    }
}
