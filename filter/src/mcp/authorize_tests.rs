#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use crate::mcp::code::open_code;
use crate::mcp::testing::{header, location_params, param, Harness, CHALLENGE, RESOURCE, SECOND};
use crate::revalidation::IdpAnswer;

const INSPECTOR_CB: &str = "http://localhost:6274/oauth/callback";

/// A complete, valid request of the `inspector` client (needs consent).
fn params<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut out = vec![
        ("response_type", "code"),
        ("client_id", "inspector"),
        ("redirect_uri", INSPECTOR_CB),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("resource", RESOURCE),
        ("scope", "mcp:tools"),
        ("state", "st-123"),
    ];
    for (k, v) in overrides {
        out.retain(|(name, _)| name != k);
        if !v.is_empty() {
            out.push((k, v));
        }
    }
    out
}

fn reply(served: Served) -> LocalReply {
    match served {
        Served::Reply(r) => r,
        other => panic!("expected a reply: {other:?}"),
    }
}

/// An HTML refusal that redirects nowhere.
fn assert_page(served: Served, status: u32) {
    let r = reply(served);
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert!(header(&r, "location").is_none());
    assert!(header(&r, "content-type").unwrap().starts_with("text/html"));
    assert_eq!(header(&r, "x-frame-options"), Some("DENY"));
}

/// A redirect back with `error`, `state` (when given) and `iss`.
fn assert_error(served: Served, code: &str, state: Option<&str>) {
    let r = reply(served);
    assert_eq!(r.status, 302);
    let location = header(&r, "location").unwrap();
    assert!(location.starts_with("http://localhost:"), "{location}");
    let p = location_params(&r);
    assert_eq!(param(&p, "error"), Some(code), "{location}");
    assert_eq!(param(&p, "state"), state);
    assert_eq!(param(&p, "iss"), Some("https://auth.example.com"));
    assert!(param(&p, "code").is_none());
}

#[test]
fn requests_before_the_redirect_uri_is_trusted_get_a_page() {
    let h = Harness::new();
    let s = h.session("alice", SECOND);
    let forged = format!("{}x", crate::mcp::client::DYNAMIC_PREFIX);
    for overrides in [
        vec![("client_id", "")],
        vec![("client_id", "nobody")],
        vec![("client_id", forged.as_str())],
        vec![("redirect_uri", "")],
        vec![("redirect_uri", "http://localhost:6274/oauth/other")],
        vec![("redirect_uri", "https://evil.example/cb")],
        vec![("redirect_uri", "http://127.0.0.1:6274/oauth/callback")],
        vec![("redirect_uri", "http://localhost:6274/oauth/callback#x")],
        vec![("redirect_uri", "http://localhost:6274/oauth/callback?next=https://evil.example")],
    ] {
        assert_page(h.authorize(&params(&overrides), Some(&s), SECOND), 400);
    }
    // Repeated client_id or redirect_uri.
    let mut twice = params(&[]);
    twice.push(("client_id", "ci-bot"));
    assert_page(h.authorize(&twice, Some(&s), SECOND), 400);
    let mut twice = params(&[]);
    twice.push(("redirect_uri", INSPECTOR_CB));
    assert_page(h.authorize(&twice, Some(&s), SECOND), 400);
    // A query that is not a valid form.
    let req = h.request("GET", "/oauth2/authorize?client_id=%zz", &[], b"");
    assert_page(h.serve(&req, Some(&s), SECOND), 400);
    let req = h.request("PUT", "/oauth2/authorize", &[], b"");
    assert_eq!(reply(h.serve(&req, Some(&s), SECOND)).status, 405);
}

#[test]
fn bad_requests_are_redirected_back_with_an_error() {
    let h = Harness::new();
    let s = h.session("alice", SECOND);
    let st = Some("st-123");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("response_type", "")], "invalid_request"),
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge", "short")], "invalid_request"),
        (vec![("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c+")], "invalid_request"),
        (vec![("resource", "https://evil.example.com/mcp")], "invalid_target"),
        (vec![("resource", "https://mcp.example.com/other")], "invalid_target"),
        (vec![("resource", "not a url")], "invalid_target"),
        (vec![("resource", "")], "invalid_target"),
        (vec![("scope", "mcp:tools root")], "invalid_scope"),
        (vec![("scope", "offline_access")], "invalid_scope"),
        (vec![("prompt", "bogus")], "invalid_request"),
    ];
    for (overrides, code) in cases {
        assert_error(h.authorize(&params(&overrides), Some(&s), SECOND), code, st);
    }
    let mut two = params(&[]);
    two.push(("resource", "https://tools.example.com"));
    assert_error(h.authorize(&two, Some(&s), SECOND), "invalid_target", st);
    let mut twice = params(&[]);
    twice.push(("code_challenge", CHALLENGE));
    assert_error(h.authorize(&twice, Some(&s), SECOND), "invalid_request", st);
    // A repeated or over-long state is not echoed.
    let mut twice = params(&[]);
    twice.push(("state", "other"));
    assert_error(h.authorize(&twice, Some(&s), SECOND), "invalid_request", None);
    let long = "s".repeat(MAX_STATE_LEN + 1);
    assert_error(h.authorize(&params(&[("state", &long)]), Some(&s), SECOND), "invalid_request", None);
}

#[test]
fn without_a_session_the_login_runs_first() {
    let h = Harness::new();
    let p = params(&[]);
    match h.authorize(&p, None, SECOND) {
        Served::Login { return_to } => {
            assert!(return_to.starts_with("/oauth2/authorize?"));
            assert!(return_to.contains("code_challenge="));
        }
        other => panic!("{other:?}"),
    }
    assert_error(h.authorize(&params(&[("prompt", "none")]), None, SECOND), "login_required", Some("st-123"));
    // A session that ended (or was revoked) counts as none.
    let s = h.session("alice", SECOND);
    crate::session::revoke_subject(&h.store, &h.cfg, "alice", 2 * SECOND).unwrap();
    assert!(matches!(h.authorize(&p, Some(&s), 3 * SECOND), Served::Login { .. }));
    // A request too long to be a login's return URL is refused, not lost.
    let state = "\u{e9}".repeat(MAX_STATE_LEN / 2);
    let scope = vec!["mcp:tools"; 100].join(" ");
    let long = params(&[("state", &state), ("scope", &scope)]);
    assert_error(h.authorize(&long, None, SECOND), "invalid_request", Some(state.as_str()));
}

#[test]
fn a_trusted_client_gets_its_code_at_once() {
    let h = Harness::new();
    let s = h.session("alice", SECOND);
    let p = params(&[("client_id", "ci-bot"), ("redirect_uri", "https://ci.example.com/cb"), ("scope", "")]);
    let r = reply(h.authorize(&p, Some(&s), SECOND));
    assert_eq!(r.status, 302);
    assert!(header(&r, "location").unwrap().starts_with("https://ci.example.com/cb?code=vc1."));
    let q = location_params(&r);
    assert_eq!(param(&q, "state"), Some("st-123"));
    assert_eq!(param(&q, "iss"), Some("https://auth.example.com"));
    let code = open_code(&crate::mcp::testing::test_keys(), param(&q, "code").unwrap(), SECOND).unwrap();
    assert_eq!(code.c, digest("ci-bot"));
    assert_eq!(code.r, digest("https://ci.example.com/cb"));
    assert_eq!((code.p.as_str(), code.a.as_str()), (CHALLENGE, RESOURCE));
    assert_eq!(code.s, "mcp:tools", "no scope asked: the resource's");
    assert_eq!((code.i.as_str(), code.u.as_str()), (s.sid.as_str(), "alice"));
    assert_eq!(code.e, SECOND + 60 * SECOND);
    // A redirect URI with a query keeps it.
    let mut cfg = crate::mcp::testing::config();
    cfg.mcp.as_mut().unwrap().clients[1].redirect_uris = vec!["https://ci.example.com/cb?tenant=a".into()];
    let h = Harness::with(cfg);
    let s = h.session("alice", SECOND);
    let p = params(&[("client_id", "ci-bot"), ("redirect_uri", "https://ci.example.com/cb?tenant=a")]);
    let r = reply(h.authorize(&p, Some(&s), SECOND));
    assert!(header(&r, "location").unwrap().starts_with("https://ci.example.com/cb?tenant=a&code="));
}

#[test]
fn other_clients_need_the_users_consent() {
    let h = Harness::new();
    let s = h.session("alice", SECOND);
    // Any loopback port matches the registered one.
    let p = params(&[("redirect_uri", "http://localhost:51234/oauth/callback")]);
    let page = reply(h.authorize(&p, Some(&s), SECOND));
    assert_eq!(page.status, 200);
    let csp = header(&page, "content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("MCP Inspector") && html.contains("localhost:51234") && html.contains("your own computer"));
    assert!(html.contains("mcp:tools") && html.contains(RESOURCE));
    assert_error(h.authorize(&params(&[("prompt", "none")]), Some(&s), SECOND), "consent_required", Some("st-123"));
    // Allow: a 303 to the presented redirect URI with the code.
    let r = h.decide(&page, "approve", &s, 2 * SECOND);
    assert_eq!(r.status, 303);
    assert!(header(&r, "location").unwrap().starts_with("http://localhost:51234/oauth/callback?code="));
    assert_eq!(param(&location_params(&r), "state"), Some("st-123"));
    // Deny: access_denied.
    let r = h.decide(&page, "deny", &s, 2 * SECOND);
    assert_eq!(r.status, 303);
    assert_eq!(param(&location_params(&r), "error"), Some("access_denied"));
}

#[test]
fn the_consent_form_is_bound_to_its_session_site_and_time() {
    let h = Harness::new();
    let s = h.session("alice", SECOND);
    let page = reply(h.authorize(&params(&[]), Some(&s), SECOND));
    let ticket = crate::mcp::testing::ticket_of(&page);
    let post = |headers: &[(&str, &str)], body: String, session: Option<&DownstreamClaims>, now: u64| {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        reply(h.serve(&h.request("POST", "/oauth2/authorize", &all, body.as_bytes()), session, now))
    };
    let body = |t: &str| format!("ticket={}&decision=approve", crate::login::form::encode(t));
    // Another site's page.
    assert_eq!(post(&[("sec-fetch-site", "cross-site")], body(&ticket), Some(&s), 2 * SECOND).status, 403);
    assert_eq!(post(&[("origin", "https://evil.example")], body(&ticket), Some(&s), 2 * SECOND).status, 403);
    // Another user's (or no) session.
    let mallory = h.session("mallory", SECOND);
    assert_eq!(post(&[], body(&ticket), Some(&mallory), 2 * SECOND).status, 400);
    assert_eq!(post(&[], body(&ticket), None, 2 * SECOND).status, 400);
    // Expired, forged, missing.
    assert_eq!(post(&[], body(&ticket), Some(&s), SECOND + CONSENT_LIFETIME_NS).status, 400);
    let forged = ticket.replacen("vk1.e", "vk1.f", 1);
    assert_eq!(post(&[], body(&forged), Some(&s), 2 * SECOND).status, 400);
    assert_eq!(post(&[], "decision=approve".into(), Some(&s), 2 * SECOND).status, 400);
    assert_eq!(post(&[], format!("ticket={}&decision=maybe", crate::login::form::encode(&ticket)), Some(&s), 2 * SECOND).status, 400);
    // Not a form.
    let req = h.request("POST", "/oauth2/authorize", &[("content-type", "application/json")], body(&ticket).as_bytes());
    assert_eq!(reply(h.serve(&req, Some(&s), 2 * SECOND)).status, 400);
    // The session ended meanwhile.
    crate::session::revoke_subject(&h.store, &h.cfg, "alice", 3 * SECOND).unwrap();
    assert_eq!(post(&[], body(&ticket), Some(&s), 4 * SECOND).status, 400);
}

#[test]
fn consent_pages_escape_what_clients_say_about_themselves() {
    let h = Harness::new();
    let s = h.session("<b>alice</b>", SECOND);
    let reg = crate::mcp::client::Registration {
        r: vec!["http://127.0.0.1/cb".into()],
        n: Some("<script>alert(1)</script>".into()),
        m: "none".into(),
        f: false,
        t: 0,
        j: "AAAAAAAAAAA".into(),
    };
    let id = crate::mcp::client::dynamic_client_id(h.ctx().keys, &reg).unwrap();
    let page = reply(h.authorize(&params(&[("client_id", &id), ("redirect_uri", "http://127.0.0.1:4000/cb")]), Some(&s), SECOND));
    let html = String::from_utf8_lossy(&page.body);
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
    assert!(!html.contains("<b>alice") && html.contains("its name is not verified"));
}

#[test]
fn metadata_document_clients_are_fetched_once_then_cached() {
    let h = Harness::new();
    let s = h.session("alice", SECOND);
    let url = "https://client.example.com/oauth/meta.json";
    let p = params(&[("client_id", url), ("redirect_uri", "http://127.0.0.1:3000/callback")]);
    let Served::Fetch(fetch) = h.authorize(&p, Some(&s), SECOND) else { panic!("no fetch") };
    assert_eq!(fetch.url, url);
    let doc = serde_json::json!({
        "client_id": url, "client_name": "Doc Client",
        "redirect_uris": ["http://127.0.0.1:3000/callback"], "grant_types": ["authorization_code", "refresh_token"]
    });
    let answer = IdpAnswer::Response { status: 200, headers: vec![], body: doc.to_string().into_bytes() };
    let req = h.request("GET", &format!("/oauth2/authorize?{}", crate::login::form::serialize(&p)), &[], b"");
    let resumed = crate::mcp::resume(&h.ctx(), &h.store, &req, Some(&s), &fetch, &answer, &mut || Some(h.next()), SECOND);
    let page = reply(resumed);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("client.example.com"));
    // Cached: no second fetch; an unregistered redirect URI is still refused.
    assert_eq!(reply(h.authorize(&p, Some(&s), 2 * SECOND)).status, 200);
    let bad = params(&[("client_id", url), ("redirect_uri", "http://127.0.0.1:3000/other")]);
    assert_page(h.authorize(&bad, Some(&s), 2 * SECOND), 400);
    // A failed fetch is a page, and is remembered.
    let other = "https://other.example.com/meta.json";
    let p = params(&[("client_id", other), ("redirect_uri", "http://127.0.0.1:3000/callback")]);
    let Served::Fetch(fetch) = h.authorize(&p, Some(&s), SECOND) else { panic!("no fetch") };
    let req = h.request("GET", &format!("/oauth2/authorize?{}", crate::login::form::serialize(&p)), &[], b"");
    let resumed = crate::mcp::resume(&h.ctx(), &h.store, &req, Some(&s), &fetch, &IdpAnswer::Timeout, &mut || Some(h.next()), SECOND);
    assert_page(resumed, 400);
    assert_page(h.authorize(&p, Some(&s), 2 * SECOND), 400);
    // An internal URL is never fetched.
    let p = params(&[("client_id", "https://169.254.169.254/latest/meta.json")]);
    assert_page(h.authorize(&p, Some(&s), SECOND), 400);
}

#[test]
fn scopes_are_checked_and_deduplicated() {
    let h = Harness::new();
    let ctx = h.ctx();
    let default = vec!["mcp:tools".to_string()];
    assert_eq!(granted_scope(&ctx, None, &default), Ok("mcp:tools".into()));
    assert_eq!(granted_scope(&ctx, Some("  "), &default), Ok("mcp:tools".into()));
    assert_eq!(granted_scope(&ctx, Some("mcp:admin mcp:tools mcp:admin"), &default), Ok("mcp:admin mcp:tools".into()));
    assert!(granted_scope(&ctx, Some("mcp:tools other"), &default).is_err());
    assert!(granted_scope(&ctx, Some(&"mcp:tools ".repeat(300)), &default).is_err());
}
