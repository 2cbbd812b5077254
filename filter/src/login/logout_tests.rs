use super::*;
use crate::login::form::parse as parse_form;
use crate::login::testkeys::{logged_in, login_config, ready_provider, TestIdpKeys};
use crate::session::read_session;
use crate::store::MemoryStore;

const NOW: u64 = 1_800_000_000 * 1_000_000_000;

/// The logout form's POST, as a browser sends it from the proxy's own page.
fn cookie_request(token: &str) -> RequestView {
    RequestView::new(
        "POST",
        "/logout",
        vec![
            ("cookie".into(), format!("vigil_session={token}")),
            ("sec-fetch-site".into(), "same-origin".into()),
        ],
    )
}

fn location(reply: &LocalReply) -> &str {
    &reply
        .headers
        .iter()
        .find(|(k, _)| *k == "location")
        .unwrap()
        .1
}

#[test]
fn logout_ends_the_session_revokes_the_refresh_token_and_redirects_to_the_idp() {
    let cfg = login_config();
    let store = MemoryStore::new();
    let provider = ready_provider(&cfg, &store, &TestIdpKeys::new(), NOW);
    let verifier = Verifier::new(&cfg.downstream);
    let (token, slot) = logged_in(&cfg, &store, "alice", NOW);
    let (other, other_slot) = logged_in(&cfg, &store, "alice", NOW + 1);
    let done = logout(
        &cfg,
        &provider,
        &verifier,
        &store,
        &cookie_request(&token),
        NOW + 2,
    );
    assert_eq!(done.ended.as_deref(), Some("alice"));
    let (record, _) = read_session(&store, &session_key("vigil:", slot)).unwrap();
    assert_eq!(record.state, SessionState::Dead);
    assert!(record.refresh_token.is_none() && record.access_token.is_empty());
    // Only this session ends; the user's other device stays logged in.
    let (still, _) = read_session(&store, &session_key("vigil:", other_slot)).unwrap();
    assert_eq!(still.state, SessionState::Live);
    assert!(verifier.verify(&other, NOW + 2).is_ok());
    let call = done.revocation.unwrap();
    assert_eq!(call.kind, LoginCallKind::Revocation);
    let body = String::from_utf8(call.body).unwrap();
    assert_eq!(
        parse_form(&body),
        vec![
            ("token".into(), "rt-alice".into()),
            ("token_type_hint".into(), "refresh_token".into())
        ]
    );
    assert!(call
        .headers
        .iter()
        .any(|(k, v)| k == ":path" && v == "/token/revocation"));
    let reply = done.reply;
    assert_eq!(reply.status, 302);
    let loc = location(&reply);
    assert!(
        loc.starts_with("https://idp.example.com/session/end?client_id=vigil+client"),
        "{loc}"
    );
    assert!(loc.contains("post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2Fbye"));
    assert!(reply.headers.iter().any(|(k, v)| *k == "set-cookie"
        && v.starts_with("vigil_session=;")
        && v.contains("Max-Age=0")));
    // A second logout with the same token ends nothing and revokes nothing.
    let again = logout(
        &cfg,
        &provider,
        &verifier,
        &store,
        &cookie_request(&token),
        NOW + 3,
    );
    assert_eq!((again.ended, again.revocation), (None, None));
    assert_eq!(again.reply.status, 302);
}

#[test]
fn logout_without_a_session_or_idp_endpoints_still_clears_the_cookie() {
    let mut cfg = login_config();
    let store = MemoryStore::new();
    let verifier = Verifier::new(&cfg.downstream);
    let cold = crate::login::provider::Provider::new();
    let done = logout(
        &cfg,
        &cold,
        &verifier,
        &store,
        &RequestView::new("POST", "/logout", vec![]),
        NOW,
    );
    assert_eq!(location(&done.reply), "https://app.example.com/bye");
    assert!(done.revocation.is_none());
    cfg.login.as_mut().unwrap().post_logout_redirect_uri = None;
    let forged = cookie_request("eyJhbGciOiJIUzI1NiJ9.e30.AAAA");
    let done = logout(&cfg, &cold, &verifier, &store, &forged, NOW);
    assert_eq!(location(&done.reply), "/");
    assert!(done.ended.is_none());
}

#[test]
fn the_login_id_token_is_sent_as_id_token_hint_and_wiped() {
    let cfg = login_config();
    let store = MemoryStore::new();
    let provider = ready_provider(&cfg, &store, &TestIdpKeys::new(), NOW);
    let verifier = Verifier::new(&cfg.downstream);
    let (token, slot) = logged_in(&cfg, &store, "alice", NOW);
    let key = session_key("vigil:", slot);
    let (mut record, _) = read_session(&store, &key).unwrap();
    record.id_token = Some("h.p.s".into());
    store.set(&key, &record.encode().unwrap(), 0).unwrap();
    let done = logout(&cfg, &provider, &verifier, &store, &cookie_request(&token), NOW + 1);
    let loc = location(&done.reply);
    assert!(
        loc.starts_with("https://idp.example.com/session/end?id_token_hint=h.p.s&client_id=vigil+client"),
        "{loc}"
    );
    let (record, _) = read_session(&store, &key).unwrap();
    assert!(record.id_token.is_none());
}

fn with_headers(method: &str, token: &str, headers: &[(&str, &str)]) -> RequestView {
    let mut view = RequestView::new(
        method,
        "/logout?x=1",
        vec![("cookie".into(), format!("vigil_session={token}"))],
    );
    view.authority = "app.example.com".into();
    view.headers
        .extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    view
}

#[test]
fn a_get_shows_a_confirmation_form_and_ends_nothing() {
    let cfg = login_config();
    let store = MemoryStore::new();
    let provider = ready_provider(&cfg, &store, &TestIdpKeys::new(), NOW);
    let verifier = Verifier::new(&cfg.downstream);
    let (token, slot) = logged_in(&cfg, &store, "alice", NOW);
    for method in ["GET", "HEAD"] {
        let done = logout(&cfg, &provider, &verifier, &store, &with_headers(method, &token, &[]), NOW);
        assert_eq!((done.reply.status, done.ended, done.revocation), (200, None, None));
        let body = String::from_utf8(done.reply.body).unwrap();
        assert!(body.contains(r#"<form method="post" action="/logout">"#), "{body}");
        assert!(done.reply.headers.iter().all(|(k, _)| *k != "set-cookie"));
        assert!(done
            .reply
            .headers
            .iter()
            .any(|(k, v)| *k == "content-security-policy" && v.contains("frame-ancestors 'none'")));
    }
    let (record, _) = read_session(&store, &session_key("vigil:", slot)).unwrap();
    assert_eq!(record.state, SessionState::Live);
}

#[test]
fn cross_site_posts_and_other_methods_are_refused() {
    let cfg = login_config();
    let store = MemoryStore::new();
    let provider = ready_provider(&cfg, &store, &TestIdpKeys::new(), NOW);
    let verifier = Verifier::new(&cfg.downstream);
    let (token, slot) = logged_in(&cfg, &store, "alice", NOW);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u32);
    let refused: &[Case] = &[
        ("POST", &[("sec-fetch-site", "cross-site")], 403),
        ("POST", &[("sec-fetch-site", "same-site")], 403),
        ("POST", &[("sec-fetch-site", "cross-site"), ("origin", "https://app.example.com")], 403),
        ("POST", &[("origin", "https://evil.example.com")], 403),
        ("POST", &[("origin", "https://app.example.com.evil.test")], 403),
        ("POST", &[("origin", "null")], 403),
        ("PUT", &[("sec-fetch-site", "same-origin")], 405),
        ("DELETE", &[], 405),
    ];
    for (method, headers, status) in refused {
        let done = logout(&cfg, &provider, &verifier, &store, &with_headers(method, &token, headers), NOW);
        assert_eq!(done.reply.status, *status, "{method} {headers:?}");
        assert_eq!((done.ended, done.revocation), (None, None), "{method} {headers:?}");
    }
    // Two session cookies: neither is trusted.
    let mut twice = with_headers("POST", &token, &[("sec-fetch-site", "same-origin")]);
    twice.headers.push(("cookie".into(), "vigil_session=planted".into()));
    let done = logout(&cfg, &provider, &verifier, &store, &twice, NOW);
    assert_eq!((done.reply.status, done.ended), (400, None));
    let (record, _) = read_session(&store, &session_key("vigil:", slot)).unwrap();
    assert_eq!(record.state, SessionState::Live, "nothing ended");
    // Same origin (with or without the default port), or no browser headers at all.
    for headers in [
        &[("origin", "https://app.example.com:443")][..],
        &[("origin", "https://APP.example.com")][..],
        &[("sec-fetch-site", "none")][..],
    ] {
        let (token, _) = logged_in(&cfg, &store, "bob", NOW);
        let done = logout(&cfg, &provider, &verifier, &store, &with_headers("POST", &token, headers), NOW);
        assert_eq!((done.reply.status, done.ended.as_deref()), (302, Some("bob")), "{headers:?}");
    }
    let (token, _) = logged_in(&cfg, &store, "carol", NOW);
    let done = logout(&cfg, &provider, &verifier, &store, &with_headers("POST", &token, &[]), NOW);
    assert_eq!(done.ended.as_deref(), Some("carol"));
}
