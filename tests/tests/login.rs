//! Login, logout and back-channel logout, black-box: the release .wasm in
//! host-sim against a scripted OpenID provider. The test plays the browser
//! (it follows the redirect's parameters to the scripted IdP and calls the
//! callback with the code) and checks what the proxy answers and what the
//! IdP saw.

use host_sim::{Cluster, Outcome, Reply, Request, Sim};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use vigil_tests::fixture::user;
use vigil_tests::idp::CLIENT_ID;
use vigil_tests::oidc::{ScriptedOidc, AUTHORIZE_URL, END_SESSION_URL, OIDC_ISSUER};
use vigil_tests::{base_config, merge, vigil_wasm, HS_SECRET, IDP_CLUSTER};

const CALLBACK: &str = "/callback";
const COOKIE: &str = "vigil_session";
const STATE_COOKIE: &str = "vigil_session_login";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn login_config(patch: Value) -> Value {
    let login = json!({
        "idp": { "issuer": OIDC_ISSUER },
        "login": {
            "redirect_uri": format!("https://app.test{CALLBACK}"),
            "scopes": ["openid", "email", "offline_access"],
            "signing_key": { "alg": "HS256", "secret": String::from_utf8_lossy(HS_SECRET) },
            "logout_path": "/logout",
            "backchannel_logout_path": "/backchannel",
            "post_logout_redirect_uri": "https://app.test/bye",
            "token_claims": ["email"]
        }
    });
    merge(merge(base_config(), login), patch)
}

struct H {
    sim: Sim,
    idp: ScriptedOidc,
}

/// What the browser keeps between the redirect and the callback.
struct Pending {
    query: String,
    state_cookie: String,
}

impl H {
    /// A proxy with `workers` VMs; the first ticks run discovery.
    fn new(workers: usize, patch: Value) -> H {
        let h = H::cold(workers, patch);
        let mut h = h;
        h.sim.advance(Duration::from_secs(1));
        h
    }

    /// Not advanced: discovery has not run yet.
    fn cold(workers: usize, patch: Value) -> H {
        let idp = ScriptedOidc::new();
        idp.add_user(user("alice"));
        idp.add_user(user("bob"));
        let sim = Sim::builder(vigil_wasm())
            .plugin_config(login_config(patch).to_string())
            .workers(workers)
            .cluster(IDP_CLUSTER, Cluster::scripted(idp.handler()))
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
            r = r.header("cookie", &format!("{COOKIE}={token}"));
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

    fn api(&mut self, vm: usize, token: &str) -> Outcome {
        self.run(vm, Request::get("/api").header("authorization", &format!("Bearer {token}")).header("accept", "application/json"))
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

#[test]
fn redirect_callback_cookie_request_logout_and_backchannel_logout() {
    let mut h = H::new(4, json!({}));
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
    let outcome = h.page(0, "/logout", Some(&token));
    let reply = local(&outcome, 302);
    let location = reply.header("location").unwrap_or_default();
    assert!(location.starts_with(&format!("{END_SESSION_URL}?")), "{location}");
    let (_, q) = location.split_once('?').unwrap_or_default();
    assert_eq!(param(q, "post_logout_redirect_uri"), "https://app.test/bye");
    assert_eq!(param(q, "client_id"), CLIENT_ID);
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
    let logout_token = h.idp.sign(&json!({
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
