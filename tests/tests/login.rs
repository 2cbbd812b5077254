//! Login, logout and back-channel logout, black-box: the release .wasm in
//! host-sim against a scripted OpenID provider. The test plays the browser
//! (it follows the redirect's parameters to the scripted IdP and calls the
//! callback with the code) and checks what the proxy answers and what the
//! IdP saw.

use host_sim::{Cluster, Outcome, Profile, Reply, Request, Sim};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use vigil_tests::fixture::user;
use vigil_tests::idp::CLIENT_ID;
use vigil_tests::oidc::{
    login_config, ScriptedOidc, AUTHORIZE_URL, BACKCHANNEL_EVENT, CALLBACK, COOKIE, END_SESSION_URL, OIDC_ISSUER,
    STATE_COOKIE,
};
use vigil_tests::{merge, nginx, on_both_profiles, vigil_wasm};


struct H {
    sim: Sim,
    idp: ScriptedOidc,
}

/// An nginx worker crash is a test failure.
impl Drop for H {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let crashes = self.sim.host_crashes();
            assert!(crashes.is_empty(), "vigil crashed an nginx worker: {crashes:#?}\n{}", self.sim.logs_text());
        }
    }
}

/// What the browser keeps between the redirect and the callback.
struct Pending {
    query: String,
    state_cookie: String,
}

impl H {
    /// A proxy with `workers` VMs; the first ticks run discovery.
    fn new(profile: Profile, workers: usize, patch: Value) -> H {
        let mut h = H::cold(profile, workers, patch);
        h.sim.advance(Duration::from_secs(1));
        h
    }

    /// Not advanced: discovery has not run yet.
    fn cold(profile: Profile, workers: usize, patch: Value) -> H {
        H::on(profile, workers, patch)
    }

    fn on(profile: Profile, workers: usize, patch: Value) -> H {
        let idp = ScriptedOidc::new();
        idp.add_user(user("alice"));
        idp.add_user(user("bob"));
        let config = nginx::config_for(profile, login_config(patch));
        let sim = nginx::builder(Sim::builder(vigil_wasm()), profile, &config, Cluster::scripted(idp.handler()))
            .workers(workers)
            .build()
            .unwrap_or_else(|e| panic!("vigil did not start: {e:?}"));
        H { sim, idp }
    }

    fn run(&mut self, vm: usize, request: Request) -> Outcome {
        let s = self.sim.send(vm, request);
        // Queue wake-up, IdP round trips (5 ms each), ticks.
        self.sim.advance(Duration::from_millis(200));
        self.sim.outcome(s)
    }

    fn page(&mut self, vm: usize, path: &str, cookie: Option<&str>) -> Outcome {
        let mut r = Request::get(path).header("accept", "text/html,application/xhtml+xml");
        if let Some(token) = cookie {
            r = r.header("cookie", format!("{COOKIE}={token}"));
        }
        self.run(vm, r)
    }

    /// A page load without a session: the redirect to the IdP.
    fn start_login(&mut self, vm: usize, path: &str) -> Pending {
        let outcome = self.page(vm, path, None);
        let reply = local(&outcome, 302);
        let location = reply.header("location").unwrap_or_default().to_string();
        let (base, query) = location.split_once('?').unwrap_or_else(|| panic!("no query in {location}"));
        assert_eq!(base, AUTHORIZE_URL);
        let set = reply.header_values("set-cookie").into_iter().find(|c| c.starts_with(STATE_COOKIE)).expect("state cookie");
        let state_cookie = set.split(';').next().unwrap_or_default().to_string();
        Pending { query: query.to_string(), state_cookie }
    }

    /// The browser returns from the IdP to the callback.
    fn callback(&mut self, vm: usize, pending: &Pending, params: &[(&str, &str)]) -> Outcome {
        let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        self.run(vm, Request::get(format!("{CALLBACK}?{query}")).header("cookie", &pending.state_cookie).header("accept", "text/html"))
    }

    /// The whole login of `sub` on `vm`: returns the session cookie value.
    fn login(&mut self, vm: usize, sub: &str) -> String {
        let pending = self.start_login(vm, "/app?x=1");
        let code = self.idp.authorize(&pending.query, sub, json!({}));
        let state = param(&pending.query, "state");
        let outcome = self.callback(vm, &pending, &[("code", &code), ("state", &state), ("iss", OIDC_ISSUER)]);
        let reply = local(&outcome, 302);
        assert_eq!(reply.header("location"), Some("/app?x=1"));
        session_cookie(reply).expect("session cookie")
    }

    /// The logout form's POST from the proxy's own page.
    fn logout(&mut self, vm: usize, token: &str) -> Outcome {
        self.run(vm, logout_request(token))
    }

    fn api(&mut self, vm: usize, token: &str) -> Outcome {
        self.run(vm, Request::get("/api").header("authorization", format!("Bearer {token}")).header("accept", "application/json"))
    }

    fn assert_no_secret_logged(&self, extra: &[&str]) {
        let text = self.sim.logs_text();
        for secret in self.idp.secrets().iter().map(String::as_str).chain(extra.iter().copied()) {
            assert!(!text.contains(secret), "a secret was logged: {secret}\n{text}");
        }
    }

    fn sessions(&self) -> usize {
        self.sim
            .shared_data()
            .entries_with_prefix("vigil:s:")
            .into_iter()
            .filter(|(_, v)| vigil::session::Session::decode(v).is_some_and(|s| s.state == vigil::session::SessionState::Live))
            .count()
    }
}

fn logout_request(token: &str) -> Request {
    Request::post("/logout").header("sec-fetch-site", "same-origin").header("cookie", format!("{COOKIE}={token}"))
}

fn local(outcome: &Outcome, status: u16) -> &Reply {
    match outcome {
        Outcome::LocalReply(reply) if reply.status == status => reply,
        other => panic!("expected a local {status}, got {other:?}"),
    }
}

fn param(query: &str, name: &str) -> String {
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    params.get(name).cloned().unwrap_or_else(|| panic!("no {name} in {query}"))
}

/// The session cookie's value, after checking its attributes.
fn session_cookie(reply: &Reply) -> Option<String> {
    let set = reply.header_values("set-cookie").into_iter().find(|c| c.starts_with(&format!("{COOKIE}=")))?;
    assert!(set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Lax"), "{set}");
    let value = set.split(';').next()?.split_once('=')?.1.to_string();
    Some(value)
}

on_both_profiles! {
    fn redirect_callback_cookie_request_logout_and_backchannel_logout(profile: Profile) {
        let mut h = H::new(profile, 4, json!({}));
        // Redirect: every parameter of an authorization code + PKCE request.
        let pending = h.start_login(1, "/app?x=1");
        for (k, v) in [("response_type", "code"), ("client_id", CLIENT_ID), ("code_challenge_method", "S256"), ("prompt", "consent")] {
            assert_eq!(param(&pending.query, k), v, "{k}");
        }
        assert_eq!(param(&pending.query, "redirect_uri"), format!("https://app.test{CALLBACK}"));
        assert_eq!(param(&pending.query, "scope"), "openid email offline_access");
        assert!(param(&pending.query, "nonce").len() >= 16 && param(&pending.query, "code_challenge").len() == 43);
        // Callback on another VM: code exchange, ID token, userinfo, session.
        let code = h.idp.authorize(&pending.query, "alice", json!({}));
        let state = param(&pending.query, "state");
        let outcome = h.callback(2, &pending, &[("code", &code), ("state", &state), ("iss", OIDC_ISSUER)]);
        let reply = local(&outcome, 302);
        assert_eq!(reply.header("location"), Some("/app?x=1"));
        let token = session_cookie(reply).expect("session cookie");
        assert!(reply.header_values("set-cookie").iter().any(|c| c.starts_with(&format!("{STATE_COOKIE}=;"))), "state cookie cleared");
        assert_eq!((h.idp.token_calls(), h.idp.userinfo_calls()), (1, 1));
        assert_eq!(h.sessions(), 1);
        // The cookie works on every VM, with identity headers.
        for vm in 0..4 {
            let outcome = h.page(vm, "/app", Some(&token));
            assert!(outcome.is_forwarded(), "vm {vm}: {outcome:?}");
            assert_eq!(outcome.upstream_header("x-vigil-sub").as_deref(), Some("alice"));
            assert_eq!(outcome.upstream_header("x-vigil-email").as_deref(), Some("alice@example.com"));
        }
        assert!(h.api(3, &token).is_forwarded(), "the same token as a bearer token");
        // Logout: session gone everywhere, refresh token revoked, cookie cleared.
        let refresh = h.idp.refresh_tokens();
        let outcome = h.logout(0, &token);
        let reply = local(&outcome, 302);
        let location = reply.header("location").unwrap_or_default();
        assert!(location.starts_with(&format!("{END_SESSION_URL}?")), "{location}");
        let (_, q) = location.split_once('?').unwrap_or_default();
        assert_eq!(param(q, "post_logout_redirect_uri"), "https://app.test/bye");
        assert_eq!(param(q, "client_id"), CLIENT_ID);
        assert_eq!(param(q, "id_token_hint").split('.').count(), 3, "the login's ID token as id_token_hint");
        assert!(reply.header_values("set-cookie").iter().any(|c| c.starts_with(&format!("{COOKIE}=;")) && c.contains("Max-Age=0")));
        assert_eq!(h.idp.revocation_calls(), 1);
        assert_eq!(h.idp.revoked(), refresh, "the refresh token is revoked at the IdP");
        for vm in 0..4 {
            assert_eq!(h.api(vm, &token).status(), Some(401), "vm {vm}");
        }
        // Back-channel logout: log in again, then the IdP ends bob's... alice's session.
        let token = h.login(3, "alice");
        assert!(h.api(0, &token).is_forwarded());
        let now_s = h.sim.now_ns() / 1_000_000_000;
        let logout_token = h.idp.sign_logout(&json!({
            "iss": OIDC_ISSUER, "aud": CLIENT_ID, "sub": "alice", "iat": now_s, "exp": now_s + 120,
            "jti": "jti-1", "events": { BACKCHANNEL_EVENT: {} }
        }));
        let body = format!("logout_token={logout_token}");
        let outcome = h.run(1, Request::post("/backchannel").header("content-type", "application/x-www-form-urlencoded").body(body.clone()));
        assert_eq!(outcome.status(), Some(200), "{outcome:?} {:?}", h.sim.traps());
        for vm in 0..4 {
            assert_eq!(h.api(vm, &token).status(), Some(401), "vm {vm}");
        }
        // The same logout token again: a replay.
        let outcome = h.run(2, Request::post("/backchannel").header("content-type", "application/x-www-form-urlencoded").body(body));
        assert_eq!(outcome.status(), Some(400), "{outcome:?}");
        h.assert_no_secret_logged(&[&token, &logout_token]);
        assert!(h.sim.traps().is_empty(), "{:?}", h.sim.traps());
    }
}

/// Each refusal: the status and code on the page, no session, state cookie
/// cleared, nothing secret in the logs.
fn assert_refused(h: &H, outcome: &Outcome, status: u16, code: &str, sessions_before: usize) {
    let reply = local(outcome, status);
    let body = reply.body_str();
    assert!(body.contains(code), "expected {code}: {body}");
    assert!(session_cookie_absent(reply), "a refusal sets no session cookie");
    assert_eq!(h.sessions(), sessions_before, "no session created ({code})");
}

fn session_cookie_absent(reply: &Reply) -> bool {
    reply.header_values("set-cookie").iter().all(|c| !c.starts_with(&format!("{COOKIE}=")) || c.starts_with(&format!("{COOKIE}=;")))
}

on_both_profiles! {
    fn every_bad_callback_is_a_clear_4xx_and_creates_no_session(profile: Profile) {
        let mut h = H::new(profile, 2, json!({}));
        let mut logged_values: Vec<String> = Vec::new();
        let attempt = |h: &mut H, patch: Value| {
            let pending = h.start_login(0, "/app");
            let code = h.idp.authorize(&pending.query, "alice", patch);
            let state = param(&pending.query, "state");
            (pending, code, state)
        };
        // Tampered state cookie (one character of the MAC changed).
        let (pending, code, state) = attempt(&mut h, json!({}));
        let mut tampered = pending.state_cookie.clone();
        let last = tampered.pop().map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
        tampered.push(last);
        let forged = Pending { query: pending.query.clone(), state_cookie: tampered };
        let outcome = h.callback(0, &forged, &[("code", &code), ("state", &state)]);
        assert_refused(&h, &outcome, 400, "invalid_state", 0);
        // A state parameter that is not the cookie's.
        let outcome = h.callback(1, &pending, &[("code", &code), ("state", "another-state-value")]);
        assert_refused(&h, &outcome, 400, "invalid_state", 0);
        // No state cookie at all (cookies disabled, or a forged link).
        let bare = Pending { query: pending.query.clone(), state_cookie: "other=1".into() };
        let outcome = h.callback(1, &bare, &[("code", &code), ("state", &state)]);
        assert_refused(&h, &outcome, 400, "invalid_state", 0);
        // Missing code; repeated parameter.
        let outcome = h.callback(0, &pending, &[("state", &state)]);
        assert_refused(&h, &outcome, 400, "invalid_request", 0);
        let outcome = h.callback(0, &pending, &[("code", &code), ("state", &state), ("state", &state)]);
        assert_refused(&h, &outcome, 400, "invalid_request", 0);
        // The IdP refused: error= gives a page, access_denied a 403.
        let outcome = h.callback(0, &pending, &[("error", "access_denied"), ("state", &state)]);
        assert_refused(&h, &outcome, 403, "login_refused", 0);
        let outcome = h.callback(0, &pending, &[("error", "invalid_scope"), ("state", &state)]);
        assert_refused(&h, &outcome, 400, "login_refused", 0);
        // RFC 9207: an answer naming another issuer (mix-up attack).
        let outcome = h.callback(0, &pending, &[("code", &code), ("state", &state), ("iss", "https://evil.test")]);
        assert_refused(&h, &outcome, 400, "invalid_issuer", 0);
        assert_eq!(h.idp.token_calls(), 0, "none of these reached the token endpoint");
        // The good callback works once...
        let outcome = h.callback(1, &pending, &[("code", &code), ("state", &state), ("iss", OIDC_ISSUER)]);
        let first = session_cookie(local(&outcome, 302)).expect("session cookie");
        assert_eq!(h.sessions(), 1);
        // ...and its replay (same state, on another VM) is refused.
        let outcome = h.callback(0, &pending, &[("code", &code), ("state", &state), ("iss", OIDC_ISSUER)]);
        assert_refused(&h, &outcome, 400, "invalid_state", 1);
        // A replayed code under a fresh state: the IdP refuses it.
        let (fresh, _unused_code, fresh_state) = attempt(&mut h, json!({}));
        let outcome = h.callback(0, &fresh, &[("code", &code), ("state", &fresh_state)]);
        assert_refused(&h, &outcome, 400, "invalid_grant", 1);
        // ID tokens with a wrong nonce, a wrong audience, a wrong issuer, expired.
        let now_s = h.sim.now_ns() / 1_000_000_000;
        for (patch, what) in [
            (json!({ "nonce": "not-the-nonce" }), "nonce"),
            (json!({ "aud": "another-client" }), "audience"),
            (json!({ "iss": "https://evil.test" }), "issuer"),
            (json!({ "exp": now_s - 3600, "iat": now_s - 7200 }), "expired"),
            (json!({ "aud": [CLIENT_ID, "other"], "azp": "other" }), "azp"),
        ] {
            let (pending, code, state) = attempt(&mut h, patch);
            let outcome = h.callback(1, &pending, &[("code", &code), ("state", &state)]);
            let reply = local(&outcome, 400);
            assert!(reply.body_str().contains("invalid_id_token"), "{what}: {}", reply.body_str());
            assert_eq!(h.sessions(), 1, "{what}: no session created");
            logged_values.push(pending.state_cookie.clone());
            logged_values.push(state);
        }
        // A callback that is not a GET.
        let outcome = h.run(0, Request::post(format!("{CALLBACK}?code=x&state=y")).header("cookie", &pending.state_cookie));
        assert_refused(&h, &outcome, 405, "invalid_request", 1);
        let refs: Vec<&str> = logged_values.iter().map(String::as_str).chain([first.as_str(), state.as_str()]).collect();
        h.assert_no_secret_logged(&refs);
        let cookie_value = pending.state_cookie.split_once('=').map(|(_, v)| v.to_string()).unwrap_or_default();
        h.assert_no_secret_logged(&[&cookie_value]);
        assert!(h.sim.traps().is_empty(), "{:?}", h.sim.traps());
    }
}

on_both_profiles! {
    fn four_vms_fetch_discovery_and_the_jwks_once(profile: Profile) {
        let mut h = H::cold(profile, 4, json!({}));
        assert_eq!(h.idp.discovery_calls(), 0, "never from on_configure");
        h.sim.advance(Duration::from_secs(5));
        assert_eq!((h.idp.discovery_calls(), h.idp.jwks_calls()), (1, 1));
        // Every VM uses the shared result.
        for vm in 0..4 {
            let outcome = h.page(vm, "/", None);
            assert_eq!(outcome.status(), Some(302), "vm {vm}");
        }
        assert_eq!((h.idp.discovery_calls(), h.idp.jwks_calls()), (1, 1));
        // Refreshed once per `idp.metadata_refresh` (1h), still once per proxy.
        h.sim.advance(Duration::from_secs(3601));
        assert_eq!((h.idp.discovery_calls(), h.idp.jwks_calls()), (2, 2));
    }
}

on_both_profiles! {
    fn before_discovery_page_loads_get_503_with_retry_after_and_api_calls_401(profile: Profile) {
        let mut h = H::cold(profile, 2, json!({}));
        h.idp.set_discovery_up(false);
        h.sim.advance(Duration::from_millis(500));
        let outcome = h.page(0, "/app", None);
        let reply = local(&outcome, 503);
        let retry: u64 = reply.header("retry-after").and_then(|v| v.parse().ok()).expect("retry-after");
        assert!((1..=60).contains(&retry), "{retry}");
        let outcome = h.run(1, Request::get("/api").header("accept", "application/json"));
        assert_eq!(outcome.status(), Some(401));
        // The callback too waits (the browser may retry it).
        let outcome = h.run(1, Request::get(format!("{CALLBACK}?code=c&state=s")).header("cookie", format!("{STATE_COOKIE}=x")));
        local(&outcome, 503);
        // Failures are retried with backoff and logged once per streak.
        h.sim.advance(Duration::from_secs(10));
        let failed = h.sim.logs_containing("discovery document failed").len();
        assert_eq!(failed, 1, "{}", h.sim.logs_text());
        assert!(h.idp.discovery_calls() >= 3, "retried: {}", h.idp.discovery_calls());
        h.idp.set_discovery_up(true);
        h.sim.advance(Duration::from_secs(65));
        assert_eq!(h.page(0, "/app", None).status(), Some(302));
        let token = h.login(1, "alice");
        assert!(h.api(0, &token).is_forwarded());
    }
}

on_both_profiles! {
    fn a_new_kid_triggers_one_rate_limited_jwks_refetch(profile: Profile) {
        let mut h = H::new(profile, 2, json!({}));
        let token = h.login(0, "alice");
        assert!(h.api(1, &token).is_forwarded());
        assert_eq!(h.idp.jwks_calls(), 1);
        // The IdP rotates to key-2; vigil's JWKS copy has only key-1.
        h.idp.rotate_key();
        let pending = h.start_login(0, "/next");
        let code = h.idp.authorize(&pending.query, "bob", json!({}));
        let state = param(&pending.query, "state");
        let outcome = h.callback(0, &pending, &[("code", &code), ("state", &state)]);
        assert!(local(&outcome, 400).body_str().contains("unknown key"));
        // One refetch, not before 30 s after the last fetch, whatever the traffic.
        for _ in 0..3 {
            let pending = h.start_login(1, "/next");
            let code = h.idp.authorize(&pending.query, "bob", json!({}));
            let state = param(&pending.query, "state");
            h.callback(1, &pending, &[("code", &code), ("state", &state)]);
        }
        assert_eq!(h.idp.jwks_calls(), 1, "rate-limited");
        h.sim.advance(Duration::from_secs(31));
        assert_eq!(h.idp.jwks_calls(), 2);
        let token = h.login(1, "bob");
        let outcome = h.api(0, &token);
        assert_eq!(outcome.upstream_header("x-vigil-sub").as_deref(), Some("bob"));
        // Logout tokens are checked against the new key too.
        let now_s = h.sim.now_ns() / 1_000_000_000;
        let logout_token = h.idp.sign_logout_with_kid("key-2", &json!({
            "iss": OIDC_ISSUER, "aud": CLIENT_ID, "sub": "bob", "iat": now_s, "jti": "j-rot", "events": { BACKCHANNEL_EVENT: {} }
        }));
        let outcome = h.run(0, Request::post("/backchannel").body(format!("logout_token={logout_token}")));
        assert_eq!(outcome.status(), Some(200), "{outcome:?}");
        assert_eq!(h.api(1, &token).status(), Some(401));
    }
}

on_both_profiles! {
    fn only_same_origin_relative_return_urls_are_followed(profile: Profile) {
        let mut h = H::new(profile, 1, json!({}));
        for (start, expected) in [("//evil.test/x", "/"), ("/a/b?c=1", "/a/b?c=1"), ("/\\evil.test", "/")] {
            let pending = h.start_login(0, start);
            let code = h.idp.authorize(&pending.query, "alice", json!({}));
            let state = param(&pending.query, "state");
            let outcome = h.callback(0, &pending, &[("code", &code), ("state", &state)]);
            assert_eq!(local(&outcome, 302).header("location"), Some(expected), "{start}");
        }
    }
}

on_both_profiles! {
    fn only_page_loads_are_redirected_the_rest_get_401(profile: Profile) {
        let mut h = H::new(profile, 1, json!({}));
        let cases = [
            Request::get("/api").header("accept", "application/json"),
            Request::get("/api"),
            Request::get("/page").header("accept", "text/html").header("x-requested-with", "XMLHttpRequest"),
            Request::get("/page").header("accept", "text/html").header("sec-fetch-mode", "cors"),
            Request::post("/form").header("accept", "text/html").body("a=1"),
        ];
        for request in cases {
            let outcome = h.run(0, request);
            let reply = local(&outcome, 401);
            assert!(reply.header("www-authenticate").is_some_and(|c| c.starts_with("Bearer")), "{reply:?}");
        }
        assert_eq!(h.page(0, "/page", None).status(), Some(302));
        // A page load with a dead session cookie goes to the IdP as well.
        let token = h.login(0, "alice");
        h.logout(0, &token);
        assert_eq!(h.page(0, "/page", Some(&token)).status(), Some(302));
    }
}

on_both_profiles! {
    fn backchannel_logout_refuses_bad_requests(profile: Profile) {
        let mut h = H::new(profile, 2, json!({}));
        let token = h.login(0, "alice");
        let now_s = h.sim.now_ns() / 1_000_000_000;
        let good = json!({ "iss": OIDC_ISSUER, "aud": CLIENT_ID, "sub": "alice", "iat": now_s, "jti": "j", "events": { BACKCHANNEL_EVENT: {} } });
        let with = |patch: Value| merge(good.clone(), patch);
        let post = |h: &mut H, body: String| h.run(1, Request::post("/backchannel").header("content-type", "application/x-www-form-urlencoded").body(body));
        let cases = vec![
            ("nonce", format!("logout_token={}", h.idp.sign_logout(&with(json!({ "nonce": "n" }))))),
            ("audience", format!("logout_token={}", h.idp.sign_logout(&with(json!({ "aud": "other" }))))),
            ("issuer", format!("logout_token={}", h.idp.sign_logout(&with(json!({ "iss": "https://evil.test" }))))),
            ("no event", format!("logout_token={}", h.idp.sign_logout(&with(json!({ "events": [] }))))),
            ("typ JWT (an ID token's)", format!("logout_token={}", h.idp.sign(&good))),
            ("old", format!("logout_token={}", h.idp.sign_logout(&with(json!({ "iat": now_s - 3600 }))))),
            ("no token", "other=1".to_string()),
            ("garbage", "logout_token=a.b.c".to_string()),
        ];
        for (what, body) in cases {
            let outcome = post(&mut h, body);
            assert_eq!(outcome.status(), Some(400), "{what}: {outcome:?}");
        }
        // A sid alone that no session on file carries: nothing to end, 200 (alice stays).
        let sid_only = format!("logout_token={}", h.idp.sign_logout(&with(json!({ "sub": null, "sid": "s1", "jti": "j-sid" }))));
        assert_eq!(post(&mut h, sid_only).status(), Some(200));
        assert!(h.api(0, &token).is_forwarded());
        // No body at all, a GET, a body over 32 KiB.
        assert_eq!(h.run(1, Request::post("/backchannel")).status(), Some(400));
        assert_eq!(h.run(1, Request::get("/backchannel")).status(), Some(405));
        let outcome = post(&mut h, format!("logout_token={}", "a".repeat(40 * 1024)));
        assert_eq!(outcome.status(), Some(413), "{outcome:?}");
        // The body may arrive in several chunks.
        let body = format!("logout_token={}", h.idp.sign_logout(&good));
        let (a, b) = body.split_at(body.len() / 2);
        let request = Request::post("/backchannel").body(a.as_bytes().to_vec()).body(b.as_bytes().to_vec());
        assert_eq!(h.run(0, request).status(), Some(200));
        assert!(h.api(0, &token).status() == Some(401));
        // A logout token signed with a key the JWKS lacks.
        let other = h.idp.sign_logout_with_kid("key-2", &with(json!({ "jti": "j2" })));
        assert_eq!(post(&mut h, format!("logout_token={other}")).status(), Some(400));
        assert!(h.sim.traps().is_empty(), "{:?}", h.sim.traps());
    }
}

on_both_profiles! {
    fn a_page_load_whose_revalidation_ends_the_session_goes_to_the_idp(profile: Profile) {
        let mut h = H::new(profile, 2, json!({}));
        let token = h.login(0, "alice");
        h.idp.remove_user("alice");
        h.sim.advance(Duration::from_secs(61));
        // The page load waits for the revalidation, whose fatal answer sends it
        // to the IdP; an API call gets the 401.
        let outcome = h.page(1, "/app", Some(&token));
        let reply = local(&outcome, 302);
        assert!(reply.header("location").is_some_and(|l| l.starts_with(AUTHORIZE_URL)), "{reply:?}");
        assert_eq!(h.api(0, &token).status(), Some(401));
    }
}

on_both_profiles! {
    fn a_hanging_token_endpoint_is_bounded_by_the_timeout(profile: Profile) {
        let mut h = H::new(profile, 2, json!({ "revalidate_timeout": "2s" }));
        h.idp.set_token_hangs(true);
        let pending = h.start_login(0, "/app");
        let code = h.idp.authorize(&pending.query, "alice", json!({}));
        let state = param(&pending.query, "state");
        let query = format!("code={code}&state={state}");
        let s = h.sim.send(1, Request::get(format!("{CALLBACK}?{query}")).header("cookie", &pending.state_cookie));
        h.sim.advance(Duration::from_millis(1900));
        assert!(h.sim.outcome(s).is_paused(), "waits for the IdP");
        h.sim.advance(Duration::from_millis(300));
        let outcome = h.sim.outcome(s);
        let reply = local(&outcome, 502);
        assert!(reply.body_str().contains("token_endpoint_failed"), "{}", reply.body_str());
        assert_eq!(h.sessions(), 0);
    }
}

on_both_profiles! {
    fn a_browser_that_leaves_during_the_callback_creates_no_session(profile: Profile) {
        let mut h = H::new(profile, 2, json!({}));
        let pending = h.start_login(0, "/app");
        let code = h.idp.authorize(&pending.query, "alice", json!({}));
        let state = param(&pending.query, "state");
        let s = h.sim.send(0, Request::get(format!("{CALLBACK}?code={code}&state={state}")).header("cookie", &pending.state_cookie));
        h.sim.abandon(s);
        h.sim.advance(Duration::from_secs(1));
        assert_eq!(h.sessions(), 0);
        assert!(h.sim.traps().is_empty(), "{:?}", h.sim.traps());
        // The next login works.
        let token = h.login(1, "alice");
        assert!(h.api(0, &token).is_forwarded());
    }
}

on_both_profiles! {
    fn after_a_login_the_session_headers_carry_the_login_time(profile: Profile) {
        let mut h = H::new(profile, 2, json!({ "session_headers": { "validated_at": "x-vigil-validated-at", "revalidate_at": "x-vigil-revalidate-at" } }));
        let before_s = h.sim.now_ns() / 1_000_000_000;
        let token = h.login(0, "alice");
        let after_s = h.sim.now_ns() / 1_000_000_000;
        let outcome = h.page(1, "/app", Some(&token));
        let header = |name: &str| -> u64 {
            outcome.upstream_header(name).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name}: {outcome:?}"))
        };
        let validated = header("x-vigil-validated-at");
        assert!((before_s..=after_s).contains(&validated), "{before_s} <= {validated} <= {after_s}");
        assert_eq!(header("x-vigil-revalidate-at"), validated + 60, "one revalidate_interval later");
    }
}

#[test]
fn the_whole_life_cycle_works_on_nginx_without_queue_notifications() {
    let mut h = H::on(Profile::Nginx, 2, json!({ "wake_queues": false }));
    h.sim.advance(Duration::from_secs(1));
    assert_eq!((h.idp.discovery_calls(), h.idp.jwks_calls()), (1, 1));
    let token = h.login(0, "alice");
    assert_eq!(h.page(1, "/app", Some(&token)).upstream_header("x-vigil-sub").as_deref(), Some("alice"));
    // The redirect does not wait for the revocation call.
    let s = h.sim.send(1, logout_request(&token));
    local(&h.sim.outcome(s), 302);
    assert_eq!(h.idp.revocation_calls(), 0);
    h.sim.advance(Duration::from_millis(200));
    assert_eq!(h.idp.revocation_calls(), 1);
    assert_eq!(h.api(0, &token).status(), Some(401));
    assert!(h.sim.traps().is_empty(), "{:?}", h.sim.traps());
}
