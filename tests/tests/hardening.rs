//! Hardening (issue 12, items 7-12, and bad input by name), black-box: the
//! release .wasm in host-sim against a scripted OpenID provider. The test
//! plays the browser: it keeps a cookie jar that follows the rules browsers
//! apply to cookie prefixes, and sends the `Sec-Fetch-*`/`Origin` headers a
//! browser sends.

use host_sim::{Cluster, Outcome, Reply, Request, Sim};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use vigil_tests::fixture::{user, Fixture};
use vigil_tests::idp::CLIENT_ID;
use vigil_tests::oidc::{
    login_config, ScriptedOidc, APP_HOST, AUTHORIZE_URL, BACKCHANNEL_EVENT, CALLBACK, COOKIE, END_SESSION_URL, OIDC_ISSUER,
    STATE_COOKIE,
};
use vigil_tests::{merge, vigil_wasm, HS_SECRET, IDP_CLUSTER};


/// A `Set-Cookie` value a browser would store: at most 4096 bytes (RFC 6265
/// §6.1, Chrome's limit), RFC 6265bis §4.1.3 prefixes (`__Secure-` needs
/// `Secure`; `__Host-` needs `Secure`, no `Domain`, `Path=/`).
fn browser_accepts(set_cookie: &str) -> bool {
    if set_cookie.len() > 4096 {
        return false;
    }
    let mut parts = set_cookie.split(';').map(str::trim);
    let name = parts.next().and_then(|p| p.split_once('=')).map(|(n, _)| n.to_ascii_lowercase()).unwrap_or_default();
    let attrs: Vec<(String, String)> = parts
        .map(|a| {
            let (k, v) = a.split_once('=').unwrap_or((a, ""));
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let has = |k: &str| attrs.iter().any(|(n, _)| n == k);
    let value = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if name.starts_with("__secure-") && !has("secure") {
        return false;
    }
    if name.starts_with("__host-") && !(has("secure") && !has("domain") && value("path") == Some("/")) {
        return false;
    }
    true
}

/// The browser's cookies for the app's host: name -> (value, path).
#[derive(Default, Clone)]
struct Jar {
    cookies: HashMap<String, (String, String)>,
}

impl Jar {
    /// Stores what a browser would store; panics on a cookie it would drop.
    fn store(&mut self, reply: &Reply) {
        for set in reply.header_values("set-cookie") {
            assert!(browser_accepts(set), "a browser drops this cookie: {set}");
            let mut parts = set.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else { continue };
            let path = parts.find_map(|a| a.strip_prefix("Path=")).unwrap_or("/").to_string();
            if set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), (value.to_string(), path));
            }
        }
    }

    /// The `cookie` header for a request to `path`.
    fn header(&self, path: &str) -> String {
        let path = path.split('?').next().unwrap_or("/");
        let mut pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|(_, (_, p))| path == p || path.starts_with(&format!("{}/", p.trim_end_matches('/'))) || p == "/")
            .map(|(n, (v, _))| format!("{n}={v}"))
            .collect();
        pairs.sort();
        pairs.join("; ")
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(|(v, _)| v.as_str())
    }
}

struct H {
    sim: Sim,
    idp: ScriptedOidc,
}

impl H {
    /// A proxy with `workers` VMs, discovery done.
    fn new(workers: usize, patch: Value) -> H {
        let idp = ScriptedOidc::new();
        idp.add_user(user("alice"));
        idp.add_user(user("bob"));
        let sim = Sim::builder(vigil_wasm())
            .plugin_config(login_config(patch).to_string())
            .workers(workers)
            .cluster(IDP_CLUSTER, Cluster::scripted(idp.handler()))
            .build()
            .unwrap_or_else(|e| panic!("vigil did not start: {e:?}"));
        let mut h = H { sim, idp };
        h.sim.advance(Duration::from_secs(1));
        h
    }

    fn run(&mut self, vm: usize, request: Request) -> Outcome {
        let s = self.sim.send(vm, request.authority(APP_HOST).scheme("https"));
        self.sim.advance(Duration::from_millis(200));
        self.sim.outcome(s)
    }

    /// A top-level navigation to `path` with the jar's cookies.
    fn navigate(&mut self, vm: usize, path: &str, jar: &mut Jar) -> Outcome {
        let mut r = Request::get(path)
            .header("accept", "text/html,application/xhtml+xml")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-site", "same-origin");
        let cookie = jar.header(path);
        if !cookie.is_empty() {
            r = r.header("cookie", cookie);
        }
        let outcome = self.run(vm, r);
        if let Some(reply) = outcome.reply() {
            jar.store(reply);
        }
        outcome
    }

    /// The whole login of `sub` in `jar` (with any ID token claims patched).
    fn login_with(&mut self, vm: usize, sub: &str, jar: &mut Jar, id_token_patch: Value) -> Outcome {
        let outcome = self.navigate(vm, "/app", jar);
        let location = local(&outcome, 302).header("location").unwrap_or_default().to_string();
        let (base, query) = location.split_once('?').unwrap_or_else(|| panic!("no query in {location}"));
        assert_eq!(base, AUTHORIZE_URL);
        let code = self.idp.authorize(query, sub, id_token_patch);
        let state = param(query, "state");
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("code", code.as_str()), ("state", state.as_str()), ("iss", OIDC_ISSUER)])
            .finish();
        // The IdP's redirect back: a cross-site navigation.
        let path = format!("{CALLBACK}?{q}");
        let mut r = Request::get(&path).header("accept", "text/html").header("sec-fetch-site", "cross-site");
        let cookie = jar.header(&path);
        if !cookie.is_empty() {
            r = r.header("cookie", cookie);
        }
        let outcome = self.run(vm, r);
        if let Some(reply) = outcome.reply() {
            jar.store(reply);
        }
        outcome
    }

    /// A login that must succeed: the session cookie's value.
    fn login(&mut self, vm: usize, sub: &str, jar: &mut Jar) -> String {
        let outcome = self.login_with(vm, sub, jar, json!({}));
        local(&outcome, 302);
        // (The name before issue 12's item 8 too, so the other items' tests
        // fail on their own assertions on older modules.)
        let value = jar.get(COOKIE).or_else(|| jar.get("vigil_session"));
        value.unwrap_or_else(|| panic!("no session cookie after {outcome:?}")).to_string()
    }

    fn api(&mut self, vm: usize, token: &str) -> Outcome {
        self.run(vm, Request::get("/api").header("authorization", format!("Bearer {token}")).header("accept", "application/json"))
    }

    fn sessions(&self) -> usize {
        self.sim
            .shared_data()
            .entries_with_prefix("vigil:s:")
            .into_iter()
            .filter(|(_, v)| vigil::session::Session::decode(v).is_some_and(|s| s.state == vigil::session::SessionState::Live))
            .count()
    }

    fn assert_no_trap(&self) {
        assert!(self.sim.traps().is_empty(), "{:?}", self.sim.traps());
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

fn error_code(reply: &Reply) -> String {
    let body = reply.body_str();
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or(body)
}

// ---- item 7: logout is a same-origin POST ---------------------------------

/// The logout form's POST from the proxy's own page.
fn logout_post(jar: &Jar, site: Option<&str>, origin: Option<&str>) -> Request {
    let mut r = Request::post("/logout")
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", jar.header("/logout"));
    if let Some(site) = site {
        r = r.header("sec-fetch-site", site);
    }
    if let Some(origin) = origin {
        r = r.header("origin", origin);
    }
    r
}

#[test]
fn logout_is_a_same_origin_post_and_a_get_only_shows_a_confirmation_page() {
    let mut h = H::new(2, json!({}));
    let mut jar = Jar::default();
    let token = h.login(0, "alice", &mut jar);
    // Another site links to the logout path: a cross-site top-level navigation
    // (the SameSite=Lax cookie comes along). It gets a page, nothing ends.
    let cookie = jar.header("/logout");
    let outcome = h.run(
        1,
        Request::get("/logout")
            .header("accept", "text/html")
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "navigate")
            .header("cookie", cookie),
    );
    let page = local(&outcome, 200);
    let body = page.body_str();
    assert!(body.contains(r#"<form method="post" action="/logout">"#), "{body}");
    assert!(page.header("content-security-policy").is_some_and(|c| c.contains("frame-ancestors 'none'")));
    assert!(page.header_values("set-cookie").is_empty(), "the cookie is kept");
    assert!(h.api(0, &token).is_forwarded(), "still logged in");
    assert_eq!(h.idp.revocation_calls(), 0, "nothing revoked");
    // A cross-site POST (a form on another site), or one from another origin: 403.
    for (site, origin) in [
        (Some("cross-site"), None),
        (Some("same-site"), Some("https://sibling.app.test")),
        (None, Some("https://evil.test")),
        (None, Some("null")),
    ] {
        let outcome = h.run(0, logout_post(&jar, site, origin));
        let reply = local(&outcome, 403);
        assert!(reply.body_str().contains("cross_site_request"), "{site:?} {origin:?}: {}", reply.body_str());
        assert!(h.api(1, &token).is_forwarded(), "{site:?} {origin:?}: still logged in");
    }
    // Other methods: 405 naming the allowed ones.
    let outcome = h.run(0, Request::new("DELETE", "/logout").header("cookie", jar.header("/logout")));
    assert_eq!(local(&outcome, 405).header("allow"), Some("GET, POST"));
    assert_eq!(h.idp.revocation_calls(), 0);
    // The confirmation form's POST (same origin): the logout.
    let outcome = h.run(1, logout_post(&jar, Some("same-origin"), Some(&format!("https://{APP_HOST}"))));
    let reply = local(&outcome, 302);
    assert!(reply.header("location").is_some_and(|l| l.starts_with(END_SESSION_URL)), "{reply:?}");
    jar.store(reply);
    assert_eq!(jar.get(COOKIE), None, "cookie cleared");
    for vm in 0..2 {
        assert_eq!(h.api(vm, &token).status(), Some(401), "vm {vm}");
    }
    assert_eq!(h.idp.revocation_calls(), 1);
    h.assert_no_trap();
}

// ---- item 8: cookie prefixes, duplicate session cookies --------------------

#[test]
fn login_cookies_are_host_prefixed_by_default_and_a_browser_keeps_them() {
    let mut h = H::new(2, json!({}));
    let mut jar = Jar::default();
    // `Jar::store` asserts every cookie satisfies the prefix rules.
    let outcome = h.navigate(0, "/app", &mut jar);
    let set = local(&outcome, 302).header_values("set-cookie");
    assert!(set.iter().any(|c| c.starts_with(&format!("{STATE_COOKIE}=")) && c.contains("Path=/;")), "{set:?}");
    let token = h.login(1, "alice", &mut jar);
    assert!(h.api(0, &token).is_forwarded());
    let outcome = h.navigate(1, "/app", &mut jar);
    assert_eq!(outcome.upstream_header("x-vigil-sub").as_deref(), Some("alice"));
    h.assert_no_trap();
}

#[test]
fn a_host_prefixed_session_cookie_name_can_log_in() {
    // Before: the state cookie was `<cookie_name>_login` at Path=/callback,
    // which a browser drops for a `__Host-` name, so no login could finish.
    for name in ["__Host-app_session", "__Secure-app_session"] {
        let mut h = H::new(1, json!({ "downstream": { "cookie_name": name } }));
        let mut jar = Jar::default();
        let outcome = h.login_with(0, "alice", &mut jar, json!({}));
        local(&outcome, 302);
        let token = jar.get(name).unwrap_or_else(|| panic!("{name}: no session cookie")).to_string();
        assert!(h.api(0, &token).is_forwarded(), "{name}");
    }
}

#[test]
fn a_request_carrying_two_session_cookies_is_refused_with_400() {
    let mut h = H::new(2, json!({}));
    let mut jar = Jar::default();
    let token = h.login(0, "alice", &mut jar);
    let mut other = Jar::default();
    let planted = h.login(0, "bob", &mut other);
    // A sibling subdomain planted its own session cookie with a narrower path:
    // the browser sends both, the narrower first.
    for cookie in [format!("{COOKIE}={planted}; {COOKIE}={token}"), format!("{COOKIE}={token}; theme=dark; {COOKIE}={token}")] {
        for (accept, vm) in [("application/json", 0), ("text/html", 1)] {
            let outcome = h.run(vm, Request::get("/app").header("accept", accept).header("cookie", cookie.as_str()));
            let reply = local(&outcome, 400);
            assert_eq!(error_code(reply), "invalid_request", "{}", reply.body_str());
            assert!(reply.body_str().contains("two session cookies"), "{}", reply.body_str());
            assert!(reply.header("location").is_none(), "no redirect to the IdP");
        }
    }
    // The logout POST likewise ends neither.
    let both = Request::post("/logout").header("sec-fetch-site", "same-origin").header("cookie", format!("{COOKIE}={planted}; {COOKIE}={token}"));
    let outcome = h.run(0, both);
    assert!(local(&outcome, 400).body_str().contains("two session cookies"));
    assert_eq!(h.sessions(), 2);
    assert!(h.api(1, &token).is_forwarded());
    h.assert_no_trap();
}

#[test]
fn a_pre_upgrade_session_cookie_is_ignored_and_never_reaches_the_upstream() {
    let mut h = H::new(1, json!({}));
    let mut jar = Jar::default();
    let token = h.login(0, "alice", &mut jar);
    // The cookie under the old default name (a browser keeps it until it
    // expires): not read, and stripped like vigil's own cookies.
    let cookie = format!("vigil_session={token}; theme=dark; vigil_session_login=x; {COOKIE}={token}");
    let outcome = h.run(0, Request::get("/app").header("accept", "text/html").header("cookie", cookie));
    assert!(outcome.is_forwarded(), "{outcome:?}");
    assert_eq!(outcome.upstream_header("cookie").as_deref(), Some("theme=dark"));
    // Alone it is no session: a page load goes to the login.
    let outcome = h.run(0, Request::get("/app").header("accept", "text/html").header("cookie", format!("vigil_session={token}")));
    assert!(local(&outcome, 302).header("location").is_some_and(|l| l.starts_with(AUTHORIZE_URL)));
}

// ---- item 10: no randomness, no login -------------------------------------

#[test]
fn a_failing_random_source_fails_closed_with_503() {
    let mut h = H::new(2, json!({}));
    let mut jar = Jar::default();
    let token = h.login(0, "alice", &mut jar);
    // A login started while the source worked...
    let mut pending = Jar::default();
    let outcome = h.navigate(1, "/next", &mut pending);
    let location = local(&outcome, 302).header("location").unwrap_or_default().to_string();
    let query = location.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
    h.sim.set_random_failing(true);
    // ...a new login cannot start: no state, nonce or verifier without entropy.
    let mut fresh = Jar::default();
    let outcome = h.navigate(0, "/app", &mut fresh);
    let reply = local(&outcome, 503);
    assert!(reply.body_str().contains("entropy_unavailable"), "{}", reply.body_str());
    assert!(reply.header("location").is_none() && reply.header_values("set-cookie").is_empty());
    assert!(reply.header("retry-after").is_some());
    // ...and the started one cannot finish: no session nonce, no session.
    let code = h.idp.authorize(&query, "bob", json!({}));
    let state = param(&query, "state");
    let path = format!("{CALLBACK}?code={code}&state={state}");
    let outcome = h.run(1, Request::get(&path).header("accept", "text/html").header("cookie", pending.header(&path)));
    let reply = local(&outcome, 503);
    assert!(reply.body_str().contains("entropy_unavailable"), "{}", reply.body_str());
    assert_eq!(h.sessions(), 1, "no session created");
    // Existing sessions are unaffected.
    assert!(h.api(1, &token).is_forwarded());
    h.sim.set_random_failing(false);
    let outcome = h.navigate(0, "/app", &mut fresh);
    local(&outcome, 302);
    h.assert_no_trap();
}

// ---- item 9: identity header variants, the list separator ---------------

#[test]
fn identity_header_variants_are_stripped_and_a_list_with_the_separator_is_not_sent() {
    let mut f = Fixture::new(json!({ "session_headers": { "validated_at": "x-vigil-validated-at" } }));
    let login = f.login(json!({ "sub": "alice", "email": "alice@example.com", "groups": ["staff", "x,admin"] }));
    // What a CGI/WSGI/Rack upstream reads as HTTP_X_VIGIL_SUB etc., in any case.
    let spoofs = [
        ("x_vigil_sub", "admin"),
        ("X_Vigil_Email", "admin@example.com"),
        ("x.vigil.groups", "admins"),
        ("X-VIGIL-GROUPS", "admins"),
        ("x_vigil_validated_at", "9999999999"),
    ];
    let mut request = Request::get("/api").header("authorization", format!("Bearer {}", login.token));
    for (name, value) in spoofs {
        request = request.header(name, value);
    }
    let s = f.sim.send(1, request);
    let outcome = f.sim.outcome(s);
    let upstream = outcome.upstream_request().unwrap_or_else(|| panic!("not forwarded: {outcome:?}")).clone();
    for (name, _) in spoofs {
        let lower = name.to_ascii_lowercase();
        if lower.contains('_') || lower.contains('.') {
            assert!(upstream.header_values(&lower).is_empty(), "{name} reached the upstream: {upstream:?}");
        }
    }
    assert_eq!(upstream.header_values("x-vigil-sub"), ["alice"]);
    assert_eq!(upstream.header_values("x-vigil-email"), ["alice@example.com"]);
    // ["staff", "x,admin"] would read as three groups: the header is left out
    // (and the client's copy is gone), the request goes on, a warning says why.
    assert!(upstream.header_values("x-vigil-groups").is_empty(), "{upstream:?}");
    let warned = f.sim.logs_containing("identity header x-vigil-groups not sent");
    assert_eq!(warned.len(), 1, "{}", f.sim.logs_text());
    assert!(!f.sim.logs_text().contains("x,admin"), "the value is not logged");
    // A rejected request: the variants are removed before anything else too.
    let s = f.sim.send(0, Request::get("/api").header("x_vigil_sub", "admin"));
    assert_eq!(f.sim.outcome(s).status(), Some(401));
    assert!(f.sim.traps().is_empty(), "{:?}", f.sim.traps());
}

// ---- item 11: the minted cookie must fit ----------------------------------

#[test]
fn a_login_whose_cookie_would_exceed_4_kib_fails_clearly_and_leaves_no_session() {
    let mut h = H::new(2, json!({ "login": { "token_claims": ["email", "bio"] } }));
    let mut big = user("alice");
    big["bio"] = json!("b".repeat(4000));
    h.idp.add_user(big);
    // Each attempt: a clear 500 page, no session cookie, and no session on file.
    for attempt in 0..5 {
        let mut jar = Jar::default();
        let outcome = h.login_with(attempt % 2, "alice", &mut jar, json!({}));
        let reply = local(&outcome, 500);
        assert!(reply.body_str().contains("session_cookie_too_large"), "{}", reply.body_str());
        assert!(reply.header_values("set-cookie").iter().all(|c| !c.starts_with(&format!("{COOKIE}="))));
        assert_eq!(jar.get(COOKIE), None);
        assert_eq!(h.sessions(), 0, "attempt {attempt}: the slot was released");
    }
    // The slots were freed, not leaked: dead records only.
    let records = h.sim.shared_data().entries_with_prefix("vigil:s:");
    assert!(records.len() <= 5, "{} records", records.len());
    assert!(h.sim.logs_containing("session_cookie_too_large").len() >= 5, "{}", h.sim.logs_text());
    // A user whose claims fit logs in as usual.
    let mut jar = Jar::default();
    let token = h.login(0, "bob", &mut jar);
    assert!(h.api(1, &token).is_forwarded());
    h.assert_no_trap();
}

// ---- item 12: back-channel logout tokens ----------------------------------

/// A logout token's claims at the proxy's time, with `patch` merged.
fn logout_claims(h: &H, jti: &str, patch: Value) -> Value {
    let now_s = h.sim.now_ns() / 1_000_000_000;
    let claims = json!({
        "iss": OIDC_ISSUER, "aud": CLIENT_ID, "iat": now_s, "exp": now_s + 120, "jti": jti,
        "events": { BACKCHANNEL_EVENT: {} }
    });
    merge(claims, patch)
}

fn backchannel(h: &mut H, vm: usize, token: &str) -> Outcome {
    h.run(
        vm,
        Request::post("/backchannel")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("logout_token={token}")),
    )
}

#[test]
fn a_logout_token_with_a_sid_ends_only_the_sessions_of_that_idp_session() {
    let mut h = H::new(2, json!({}));
    let login = |h: &mut H, sub: &str, sid: &str| {
        let mut jar = Jar::default();
        local(&h.login_with(0, sub, &mut jar, json!({ "sid": sid })), 302);
        jar.get(COOKIE).or_else(|| jar.get("vigil_session")).map(str::to_string).expect("session cookie")
    };
    let laptop = login(&mut h, "alice", "idp-session-laptop");
    let phone = login(&mut h, "alice", "idp-session-phone");
    let bob = login(&mut h, "bob", "idp-session-bob");
    // The IdP ends alice's laptop session: sub + sid.
    let token = h.idp.sign_logout(&logout_claims(&h, "j1", json!({ "sub": "alice", "sid": "idp-session-laptop" })));
    assert_eq!(backchannel(&mut h, 1, &token).status(), Some(200));
    for vm in 0..2 {
        assert_eq!(h.api(vm, &laptop).status(), Some(401), "vm {vm}: the laptop session ended");
        assert!(h.api(vm, &phone).is_forwarded(), "vm {vm}: alice's phone session stays");
        assert!(h.api(vm, &bob).is_forwarded(), "vm {vm}");
    }
    assert!(h.sim.logs_containing("ended 1 session(s) of one IdP session").len() == 1, "{}", h.sim.logs_text());
    // A sid alone (no sub), as OpenID Back-Channel Logout allows.
    let token = h.idp.sign_logout(&logout_claims(&h, "j2", json!({ "sid": "idp-session-phone" })));
    assert_eq!(backchannel(&mut h, 0, &token).status(), Some(200));
    assert_eq!(h.api(1, &phone).status(), Some(401));
    assert!(h.api(1, &bob).is_forwarded());
    // A sid no session on file carries, with a sub: every session of the sub
    // ends, as without a sid (an IdP whose ID tokens name no sid).
    let desk = login(&mut h, "alice", "idp-session-desk");
    let token = h.idp.sign_logout(&logout_claims(&h, "j3", json!({ "sub": "alice", "sid": "unknown-to-vigil" })));
    assert_eq!(backchannel(&mut h, 1, &token).status(), Some(200));
    assert_eq!(h.api(0, &desk).status(), Some(401));
    assert!(h.api(0, &bob).is_forwarded());
    h.assert_no_trap();
}

#[test]
fn logout_tokens_must_be_typed_logout_jwt_and_unexpired() {
    let mut h = H::new(2, json!({}));
    let mut jar = Jar::default();
    let token = h.login(0, "alice", &mut jar);
    let now_s = h.sim.now_ns() / 1_000_000_000;
    let refused = [
        // An ID token's typ: no other JWT of the IdP passes for a logout token.
        h.idp.sign(&logout_claims(&h, "t1", json!({ "sub": "alice" }))),
        // Expired (the leeway is 30 s), or an exp that is no number.
        h.idp.sign_logout(&logout_claims(&h, "t2", json!({ "sub": "alice", "iat": now_s - 300, "exp": now_s - 60 }))),
        h.idp.sign_logout(&logout_claims(&h, "t3", json!({ "sub": "alice", "exp": "tomorrow" }))),
    ];
    for (i, logout_token) in refused.iter().enumerate() {
        let outcome = backchannel(&mut h, i % 2, logout_token);
        let reply = local(&outcome, 400);
        assert_eq!(error_code(reply), "invalid_logout_token", "case {i}: {}", reply.body_str());
        assert!(h.api(1, &token).is_forwarded(), "case {i}: alice is still logged in");
    }
    assert!(local(&backchannel(&mut h, 0, &refused[0]), 400).body_str().contains("typ is not logout+jwt"));
    // Typed and fresh: accepted.
    let good = h.idp.sign_logout(&logout_claims(&h, "t4", json!({ "sub": "alice" })));
    assert_eq!(backchannel(&mut h, 0, &good).status(), Some(200));
    assert_eq!(h.api(1, &token).status(), Some(401));
    h.assert_no_trap();
}

// ---- bad input, by name: a precise 4xx or ignored, no trap, bounded memory ---

/// Shared data's size, to check a flood of bad requests leaves no trace.
fn footprint(sim: &Sim) -> (usize, usize) {
    (sim.shared_data().key_count(), sim.shared_data().total_bytes())
}

#[test]
fn tokens_of_64_kib_are_refused_everywhere() {
    let big = "a".repeat(64 * 1024);
    let mut f = Fixture::new(json!({}));
    let before = footprint(&f.sim);
    for request in [
        Request::get("/api").header("authorization", format!("Bearer {big}")),
        Request::get("/api").header("cookie", format!("vigil_session={big}")),
        Request::get("/api").header("authorization", format!("Bearer {big}.{big}.{big}")),
    ] {
        let s = f.sim.send(0, request);
        let outcome = f.sim.outcome(s);
        let reply = local(&outcome, 401);
        assert_eq!(error_code(reply), "invalid_token", "{}", reply.body_str());
    }
    assert_eq!(footprint(&f.sim), before, "nothing stored");
    assert!(f.sim.traps().is_empty(), "{:?}", f.sim.traps());
    // With login: a 64 KiB state cookie at the callback, session cookie at the
    // logout, logout token at the back-channel path.
    let mut h = H::new(2, json!({}));
    let before = footprint(&h.sim);
    let outcome = h.run(0, Request::get(format!("{CALLBACK}?code=c&state=s")).header("cookie", format!("{STATE_COOKIE}={big}")));
    assert!(local(&outcome, 400).body_str().contains("invalid_state"));
    let outcome = h.run(1, Request::post("/logout").header("sec-fetch-site", "same-origin").header("cookie", format!("{COOKIE}={big}")));
    assert_eq!(outcome.status(), Some(302), "nothing to end: the cookie is cleared and the browser sent on");
    let outcome = backchannel(&mut h, 0, &big);
    assert_eq!(outcome.status(), Some(413), "over the 32 KiB body bound");
    let outcome = backchannel(&mut h, 1, &"a".repeat(20 * 1024));
    assert!(local(&outcome, 400).body_str().contains("invalid_logout_token"));
    assert_eq!(footprint(&h.sim), before, "nothing stored");
    h.assert_no_trap();
}

#[test]
fn a_thousand_request_headers_are_ignored_and_a_thousand_spoofs_go_nowhere() {
    let mut f = Fixture::new(json!({}));
    let login = f.login(user("alice"));
    let before = footprint(&f.sim);
    let mut request = Request::get("/api").header("authorization", format!("Bearer {}", login.token));
    for i in 0..1000 {
        request = request.header(format!("x-h-{i}"), format!("v{i}"));
    }
    let s = f.sim.send(1, request);
    let outcome = f.sim.outcome(s);
    let upstream = outcome.upstream_request().unwrap_or_else(|| panic!("not forwarded: {:?}", outcome.status())).clone();
    assert_eq!(upstream.header_values("x-h-999"), ["v999"], "the application's headers pass untouched");
    assert_eq!(upstream.header_values("x-vigil-sub"), ["alice"]);
    // A thousand copies of a spoofed identity header (and its variants): a
    // precise 400, or forwarded with none of them; never a trap.
    let mut request = Request::get("/api").header("authorization", format!("Bearer {}", login.token));
    for i in 0..1000 {
        request = request.header(if i % 2 == 0 { "x-vigil-sub" } else { "x_vigil_sub" }, "admin");
    }
    let s = f.sim.send(2, request);
    let outcome = f.sim.outcome(s);
    match &outcome {
        Outcome::LocalReply(reply) => {
            assert_eq!(reply.status, 400, "{}", reply.body_str());
            assert_eq!(error_code(reply), "invalid_request");
        }
        other => {
            let upstream = other.upstream_request().unwrap_or_else(|| panic!("{other:?}"));
            assert_eq!(upstream.header_values("x-vigil-sub"), ["alice"]);
            assert!(upstream.header_values("x_vigil_sub").is_empty());
        }
    }
    assert_eq!(footprint(&f.sim), before, "nothing stored");
    assert!(f.sim.traps().is_empty(), "{:?}", f.sim.traps());
}

#[test]
fn header_values_that_are_not_utf8_never_trap() {
    let junk: &[u8] = b"\xff\xfe\x80 Bearer \xc3\x28";
    let mut f = Fixture::new(json!({}));
    let login = f.login(user("alice"));
    let before = footprint(&f.sim);
    // As the token's carrier: refused like any malformed credential.
    let s = f.sim.send(0, Request::get("/api").header_bytes("authorization", junk));
    assert_eq!(error_code(local(&f.sim.outcome(s), 401)), "invalid_token");
    let s = f.sim.send(1, Request::get("/api").header_bytes("cookie", [b"vigil_session=".as_slice(), junk].concat()));
    assert_eq!(error_code(local(&f.sim.outcome(s), 401)), "invalid_token");
    // Anywhere else: ignored; a spoofed identity header is still removed.
    let s = f.sim.send(
        2,
        Request::get("/api")
            .header("authorization", format!("Bearer {}", login.token))
            .header_bytes("x_vigil_email", junk)
            .header_bytes("x-application", junk),
    );
    let outcome = f.sim.outcome(s);
    let upstream = outcome.upstream_request().unwrap_or_else(|| panic!("not forwarded: {outcome:?}")).clone();
    assert_eq!(upstream.header_values("x-vigil-email"), ["alice@example.com"]);
    assert!(upstream.header_values("x_vigil_email").is_empty());
    assert_eq!(footprint(&f.sim), before);
    assert!(f.sim.traps().is_empty(), "{:?}", f.sim.traps());
    // With login: the headers the login endpoints read.
    let mut h = H::new(2, json!({}));
    let mut jar = Jar::default();
    let token = h.login(0, "alice", &mut jar);
    let outcome = h.run(0, Request::get("/app").header_bytes("accept", junk).header("cookie", format!("{COOKIE}={token}")));
    assert!(outcome.is_forwarded(), "{outcome:?}");
    let outcome = h.run(1, Request::post("/logout").header_bytes("origin", junk).header("cookie", format!("{COOKIE}={token}")));
    assert_eq!(local(&outcome, 403).status, 403, "an origin that is no origin: refused");
    let outcome = h.run(0, Request::get(format!("{CALLBACK}?code=c&state=s")).header_bytes("cookie", [STATE_COOKIE.as_bytes(), b"=", junk].concat()));
    assert!(local(&outcome, 400).body_str().contains("invalid_state"));
    let outcome = h.run(1, Request::post("/backchannel").header_bytes("content-type", junk).body(junk.to_vec()));
    assert_eq!(outcome.status(), Some(400));
    assert!(h.api(1, &token).is_forwarded());
    h.assert_no_trap();
}

#[test]
fn duplicate_cookies_are_refused_not_guessed() {
    let mut h = H::new(2, json!({}));
    // Two login state cookies at the callback (one planted: login CSRF).
    let mut jar = Jar::default();
    let outcome = h.navigate(0, "/app", &mut jar);
    let location = local(&outcome, 302).header("location").unwrap_or_default().to_string();
    let query = location.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
    let code = h.idp.authorize(&query, "alice", json!({}));
    let state = param(&query, "state");
    let path = format!("{CALLBACK}?code={code}&state={state}");
    let mine = jar.header(&path);
    let outcome = h.run(1, Request::get(&path).header("cookie", format!("{STATE_COOKIE}=planted; {mine}")));
    assert!(local(&outcome, 400).body_str().contains("invalid_state"));
    assert_eq!(h.sessions(), 0);
    assert_eq!(h.idp.token_calls(), 0, "refused before the code is redeemed");
    // Two session cookies: covered by a_request_carrying_two_session_cookies_is_refused_with_400.
    h.assert_no_trap();
}

#[test]
fn kids_with_path_or_quote_characters_are_unknown_keys() {
    use jwt_simple::prelude::Ed25519KeyPair;
    let kids = ["../../etc/passwd", "k1\"", "k1'; --", "%2e%2e%2f", "/jwks", "k1\\u0000", "\"k1\""];
    // Downstream tokens: 401 unknown kid, nothing stored, no IdP call.
    let mut f = Fixture::new(json!({}));
    let now = f.now_ns();
    let before = footprint(&f.sim);
    for kid in kids {
        let token = vigil_tests::fixture::mint_with(HS_SECRET, Some(kid), vigil_tests::ISSUER, vigil_tests::AUDIENCE, "alice", "1.AAAAAAAAAAAAAAAAAAAAAA", now, now / 1_000_000_000 + 60);
        let outcome = f.get_outcome(0, &token);
        let reply = local(&outcome, 401);
        assert!(reply.body_str().contains("unknown kid"), "{kid}: {}", reply.body_str());
    }
    assert_eq!(f.sim.callouts().len(), 0);
    assert_eq!(footprint(&f.sim), before);
    // Logout tokens signed under such kids: refused, and the
    // unknown kid asks for one rate-limited JWKS refetch, no more.
    let mut h = H::new(2, json!({}));
    let pem = Ed25519KeyPair::generate().to_pem();
    let jwks_before = h.idp.jwks_calls();
    for (i, kid) in kids.iter().enumerate() {
        let claims = logout_claims(&h, &format!("kid-{i}"), json!({ "sub": "alice" }));
        let token = vigil::login::test_signing::sign_ed25519_typed(&pem, kid, "logout+jwt", &claims).expect("signed");
        let outcome = backchannel(&mut h, i % 2, &token);
        assert!(local(&outcome, 400).body_str().contains("unknown key"), "{kid}");
    }
    h.sim.advance(Duration::from_secs(1));
    assert!(h.idp.jwks_calls() <= jwks_before + 1, "{} JWKS fetches", h.idp.jwks_calls() - jwks_before);
    h.assert_no_trap();
}
