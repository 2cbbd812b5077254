//! Whole flows through the pure functions with the in-memory store: what an
//! MCP client does, and what an attacker tries.
#![allow(clippy::unwrap_used, clippy::panic)]

use serde_json::{json, Value};

use super::testing::{header, json, location_params, param, Harness, CHALLENGE, RESOURCE, SECOND, VERIFIER};
use super::{guard, Guard, Served};
use crate::reply::LocalReply;
use crate::token::DownstreamClaims;

const CB: &str = "http://127.0.0.1:33418/callback";

/// A public native client registered dynamically (with refresh tokens).
fn register(h: &Harness) -> String {
    let body = json!({
        "client_name": "cli", "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"
    });
    let req = h.request("POST", "/oauth2/register", &[("content-type", "application/json")], body.to_string().as_bytes());
    let r = h.reply(&req, None, SECOND);
    assert_eq!(r.status, 201);
    json(&r)["client_id"].as_str().unwrap().to_string()
}

/// Authorize (consent included) and return the code.
fn code_for(h: &Harness, client_id: &str, session: &DownstreamClaims, scope: &str, now: u64) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("resource", RESOURCE),
        ("scope", scope),
        ("state", "xyz"),
    ];
    let page = match h.authorize(&params, Some(session), now) {
        Served::Reply(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(page.status, 200, "consent page");
    let r = h.decide(&page, "approve", session, now);
    let q = location_params(&r);
    assert_eq!(param(&q, "state"), Some("xyz"));
    param(&q, "code").unwrap().to_string()
}

fn exchange(h: &Harness, client_id: &str, code: &str, now: u64) -> LocalReply {
    h.post(
        "/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
            ("resource", RESOURCE),
        ],
        &[],
        now,
    )
}

fn refresh(h: &Harness, client_id: &str, token: &str, now: u64) -> LocalReply {
    h.post(
        "/oauth2/token",
        &[("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", client_id)],
        &[],
        now,
    )
}

fn error_of(r: &LocalReply) -> String {
    json(r)["error"].as_str().unwrap_or_default().to_string()
}

/// The resource check of a request carrying `token`.
fn resource_request(h: &Harness, token: &str, now: u64) -> Guard {
    let auth = format!("Bearer {token}");
    let req = h.request("POST", "/mcp", &[("authorization", &auth), ("accept", "application/json, text/event-stream")], b"");
    guard(&h.ctx(), &h.store, 0, &req, now)
}

fn admitted(g: &Guard) -> bool {
    matches!(g, Guard::Admit(_))
}

#[test]
fn register_authorize_token_refresh_reuse_and_deprovisioning() {
    let h = Harness::new();
    let client = register(&h);
    let alice = h.session("alice", SECOND);

    // Authorization code -> tokens.
    let code = code_for(&h, &client, &alice, "mcp:tools", 2 * SECOND);
    let r = exchange(&h, &client, &code, 3 * SECOND);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(header(&r, "cache-control"), Some("no-store"));
    let body = json(&r);
    assert_eq!((body["token_type"].as_str(), body["expires_in"].as_u64()), (Some("Bearer"), Some(300)));
    assert_eq!(body["scope"], "mcp:tools");
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh1 = body["refresh_token"].as_str().unwrap().to_string();

    // The access token opens the resource, bound to the user's session.
    let Guard::Admit(a) = resource_request(&h, &access, 4 * SECOND) else { panic!("refused") };
    assert_eq!((a.claims.sub.as_str(), a.claims.sid.as_str()), ("alice", alice.sid.as_str()));
    assert_eq!((a.client_id.as_str(), a.scope.as_str(), a.resource), (client.as_str(), "mcp:tools", 0));
    assert!(a.claims.iat_ns >= 3 * SECOND);
    // ... the admission the adapter runs next sees a live session.
    let vm = crate::revalidation::VmIdentity { uid: "vm".into(), queue_token: None };
    let admission = crate::revalidation::admit(&h.cfg, &h.store, &vm, &a.claims.sub, &a.claims.sid, a.claims.iat_ns, 4 * SECOND);
    assert!(matches!(admission, crate::revalidation::Admission::Allow { .. }), "{admission:?}");

    // Refresh rotates.
    let r = refresh(&h, &client, &refresh1, 5 * SECOND);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let refresh2 = json(&r)["refresh_token"].as_str().unwrap().to_string();
    let access2 = json(&r)["access_token"].as_str().unwrap().to_string();
    assert_ne!(refresh1, refresh2);
    assert!(admitted(&resource_request(&h, &access2, 6 * SECOND)));

    // Reusing the old refresh token revokes the whole family.
    let r = refresh(&h, &client, &refresh1, 7 * SECOND);
    assert_eq!((r.status, error_of(&r).as_str()), (400, "invalid_grant"));
    let r = refresh(&h, &client, &refresh2, 8 * SECOND);
    assert_eq!(error_of(&r), "invalid_grant", "the current token died with its family");
    for token in [&access, &access2] {
        let Guard::Reply(r) = resource_request(&h, token, 8 * SECOND) else { panic!("admitted a revoked family") };
        assert_eq!(r.status, 401);
        assert!(header(&r, "www-authenticate").unwrap().contains("resource_metadata="));
    }

    // A new grant works until the IdP deprovisions the user: the
    // revalidation's fatal answer revokes the subject and ends the session.
    let code = code_for(&h, &client, &alice, "mcp:tools", 9 * SECOND);
    let r = exchange(&h, &client, &code, 10 * SECOND);
    let refresh3 = json(&r)["refresh_token"].as_str().unwrap().to_string();
    let access3 = json(&r)["access_token"].as_str().unwrap().to_string();
    crate::session::revoke_subject(&h.store, &h.cfg, "alice", 11 * SECOND).unwrap();
    // The access token still verifies, but the session admission (run by
    // the adapter after `guard`) refuses it: the subject is revoked.
    let Guard::Admit(a) = resource_request(&h, &access3, 11 * SECOND + 1) else { panic!("refused early") };
    let admission = crate::revalidation::admit(&h.cfg, &h.store, &vm, &a.claims.sub, &a.claims.sid, a.claims.iat_ns, 11 * SECOND + 1);
    let crate::revalidation::Admission::Deny(reason) = admission else { panic!("{admission:?}") };
    let r = super::denied(&h.ctx(), 0, &reason);
    assert_eq!(r.status, 401);
    assert!(header(&r, "www-authenticate").unwrap().contains("error=\"invalid_token\""));
    let r = refresh(&h, &client, &refresh3, 12 * SECOND);
    assert_eq!(error_of(&r), "invalid_grant");
    assert_eq!(json(&r)["error_description"], "the user's access was revoked");
    // Its access token is refused too (the family died with the refusal).
    assert!(!admitted(&resource_request(&h, &access3, 12 * SECOND)));
}

#[test]
fn a_dead_session_ends_refreshes() {
    let h = Harness::new();
    let client = register(&h);
    let alice = h.session("alice", SECOND);
    let code = code_for(&h, &client, &alice, "", 2 * SECOND);
    let r = exchange(&h, &client, &code, 3 * SECOND);
    let token = json(&r)["refresh_token"].as_str().unwrap().to_string();
    // The revalidation marked the session dead (fatal answer).
    let id = crate::session::parse_sid(&alice.sid, h.cfg.max_sessions).unwrap();
    let key = crate::session::session_key("vigil:", id.slot);
    let (mut record, cas) = crate::session::read_session(&h.store, &key).unwrap();
    record.kill("invalid_grant", 4 * SECOND);
    crate::store::SharedStore::set(&h.store, &key, &record.encode().unwrap(), cas).unwrap();
    let r = refresh(&h, &client, &token, 5 * SECOND);
    assert_eq!((r.status, error_of(&r).as_str()), (400, "invalid_grant"));
    assert_eq!(json(&r)["error_description"], "the user's session has ended");
}

#[test]
fn the_negative_cases_of_the_issue() {
    let h = Harness::new();
    let client = register(&h);
    let other = register(&h);
    let alice = h.session("alice", SECOND);

    // Wrong resource at the token endpoint.
    let code = code_for(&h, &client, &alice, "", 2 * SECOND);
    let wrong = h.post(
        "/oauth2/token",
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CB), ("code_verifier", VERIFIER),
          ("client_id", &client), ("resource", "https://tools.example.com")],
        &[],
        3 * SECOND,
    );
    assert_eq!(error_of(&wrong), "invalid_target");
    let unknown = h.post(
        "/oauth2/token",
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CB), ("code_verifier", VERIFIER),
          ("client_id", &client), ("resource", "https://evil.example.com/mcp")],
        &[],
        3 * SECOND,
    );
    assert_eq!(error_of(&unknown), "invalid_target");

    // Missing PKCE verifier, or the wrong one.
    let r = h.post("/oauth2/token", &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CB), ("client_id", &client)], &[], 3 * SECOND);
    assert_eq!(error_of(&r), "invalid_request");
    let bad_verifier = "x".repeat(43);
    let r = h.post("/oauth2/token", &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CB), ("code_verifier", &bad_verifier), ("client_id", &client)], &[], 3 * SECOND);
    assert_eq!(error_of(&r), "invalid_grant");
    // The code's PKCE challenge is the only one accepted: "plain" (verifier = challenge) fails.
    let r = h.post("/oauth2/token", &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CB), ("code_verifier", CHALLENGE), ("client_id", &client)], &[], 3 * SECOND);
    assert_eq!(error_of(&r), "invalid_grant");

    // A redirect URI other than the authorization request's.
    let r = h.post("/oauth2/token", &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:9/callback"), ("code_verifier", VERIFIER), ("client_id", &client)], &[], 3 * SECOND);
    assert_eq!(error_of(&r), "invalid_grant");

    // A forged client id, and another client presenting the code.
    let forged = format!("{}.AAAA", &client[..client.rfind('.').unwrap()]);
    let r = exchange(&h, &forged, &code, 3 * SECOND);
    assert_eq!((r.status, error_of(&r).as_str()), (401, "invalid_client"));
    assert!(header(&r, "www-authenticate").unwrap().starts_with("Basic"));
    let r = exchange(&h, &other, &code, 3 * SECOND);
    assert_eq!(error_of(&r), "invalid_grant");

    // None of that spent the code; its first redemption works...
    let first = exchange(&h, &client, &code, 4 * SECOND);
    assert_eq!(first.status, 200);
    let access = json(&first)["access_token"].as_str().unwrap().to_string();
    let refresh_token = json(&first)["refresh_token"].as_str().unwrap().to_string();
    assert!(admitted(&resource_request(&h, &access, 5 * SECOND)));
    // ... and a replay is refused and revokes what the first one issued.
    let replay = exchange(&h, &client, &code, 5 * SECOND);
    assert_eq!(error_of(&replay), "invalid_grant");
    assert!(!admitted(&resource_request(&h, &access, 6 * SECOND)));
    assert_eq!(error_of(&refresh(&h, &client, &refresh_token, 6 * SECOND)), "invalid_grant");

    // An expired code.
    let code = code_for(&h, &client, &alice, "", 10 * SECOND);
    assert_eq!(error_of(&exchange(&h, &client, &code, 71 * SECOND)), "invalid_grant");
    // A code whose user was revoked after it was issued (back-channel logout).
    let code = code_for(&h, &client, &alice, "", 80 * SECOND);
    crate::session::revoke_subject(&h.store, &h.cfg, "alice", 81 * SECOND).unwrap();
    assert_eq!(error_of(&exchange(&h, &client, &code, 82 * SECOND)), "invalid_grant");
}

#[test]
fn the_resource_accepts_only_its_own_tokens() {
    let h = Harness::new();
    let client = register(&h);
    let alice = h.session("alice", SECOND);
    let code = code_for(&h, &client, &alice, "mcp:admin", 2 * SECOND);
    let r = exchange(&h, &client, &code, 3 * SECOND);
    let admin_only = json(&r)["access_token"].as_str().unwrap().to_string();
    // Granted, but without the scope the resource requires: 403.
    let Guard::Reply(r) = resource_request(&h, &admin_only, 4 * SECOND) else { panic!("admitted") };
    assert_eq!(r.status, 403);
    assert!(header(&r, "www-authenticate").unwrap().contains("error=\"insufficient_scope\""));
    assert!(header(&r, "www-authenticate").unwrap().contains("scope=\"mcp:tools\""));
    // The same token at the other resource: wrong audience.
    let auth = format!("Bearer {admin_only}");
    let req = h.request("GET", "/tools", &[("authorization", &auth)], b"");
    let Guard::Reply(r) = guard(&h.ctx(), &h.store, 1, &req, 4 * SECOND) else { panic!("admitted") };
    assert_eq!(r.status, 401);
    assert!(header(&r, "www-authenticate").unwrap().contains("wrong audience"));
    // vigil's own session token as a bearer token.
    let signer = crate::login::testkeys::login_config().login.unwrap().signing_key.signer().unwrap();
    let cookie_token = signer
        .mint(&crate::token::MintClaims {
            iss: "vigil".into(),
            aud: "app".into(),
            sub: "alice".into(),
            sid: alice.sid.clone(),
            iat_ns: alice.iat_ns,
            exp_s: 3600,
            extra: serde_json::Map::new(),
        })
        .unwrap();
    assert!(!admitted(&resource_request(&h, &cookie_token, 4 * SECOND)));
    // Expired access tokens.
    let code = code_for(&h, &client, &alice, "", 10 * SECOND);
    let token = json(&exchange(&h, &client, &code, 11 * SECOND))["access_token"].as_str().unwrap().to_string();
    assert!(admitted(&resource_request(&h, &token, 11 * SECOND + 299 * SECOND)));
    let leeway = u64::try_from(h.cfg.downstream.leeway.as_nanos()).unwrap();
    assert!(!admitted(&resource_request(&h, &token, 11 * SECOND + 300 * SECOND + leeway)));
    // Header shapes.
    let req = |headers: &[(&str, &str)], method: &str| h.request(method, "/mcp", headers, b"");
    let g = |r: &super::McpRequest| guard(&h.ctx(), &h.store, 0, r, 12 * SECOND);
    let Guard::Reply(r) = g(&req(&[("accept", "application/json")], "POST")) else { panic!() };
    assert_eq!(r.status, 401);
    assert_eq!(
        header(&r, "www-authenticate"),
        Some("Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\"")
    );
    assert_eq!(g(&req(&[("accept", "text/html")], "GET")), Guard::Ordinary);
    assert_eq!(g(&req(&[("access-control-request-method", "POST")], "OPTIONS")), Guard::Preflight);
    let Guard::Reply(r) = g(&req(&[("authorization", "Basic abc")], "POST")) else { panic!() };
    assert_eq!(r.status, 400);
    let bearer = format!("Bearer {token}");
    let Guard::Reply(r) = g(&req(&[("authorization", &bearer), ("authorization", &bearer)], "POST")) else { panic!() };
    assert_eq!(r.status, 400);
    // A token in the query string is no token.
    let req = h.request("POST", &format!("/mcp?access_token={token}"), &[], b"");
    assert!(!admitted(&g(&req)));
}

#[test]
fn access_tokens_carry_the_binding_claims() {
    let h = Harness::new();
    let client = register(&h);
    let alice = h.session("alice", SECOND);
    let code = code_for(&h, &client, &alice, "mcp:tools mcp:admin", 2 * SECOND);
    let token = json(&exchange(&h, &client, &code, 3 * SECOND))["access_token"].as_str().unwrap().to_string();
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    assert_eq!(claims["iss"], "https://auth.example.com");
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!((claims["sub"].as_str(), claims["sid"].as_str()), (Some("alice"), Some(alice.sid.as_str())));
    assert_eq!(claims["client_id"], client.as_str());
    assert_eq!(claims["scope"], "mcp:tools mcp:admin");
    assert!(claims["fam"].as_str().unwrap().contains('.'));
    assert_eq!(claims["exp"], 3 + 300);
    // Refresh may narrow the scope, never widen it.
    let refresh_token = json(&exchange(&h, &client, &code_for(&h, &client, &alice, "mcp:tools", 4 * SECOND), 5 * SECOND))["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let wider = h.post("/oauth2/token", &[("grant_type", "refresh_token"), ("refresh_token", &refresh_token), ("client_id", &client), ("scope", "mcp:tools mcp:admin")], &[], 6 * SECOND);
    assert_eq!(error_of(&wider), "invalid_scope");
    let other_resource = h.post("/oauth2/token", &[("grant_type", "refresh_token"), ("refresh_token", &refresh_token), ("client_id", &client), ("resource", "https://tools.example.com")], &[], 6 * SECOND);
    assert_eq!(error_of(&other_resource), "invalid_target");
    // Neither refusal spent the token.
    let r = refresh(&h, &client, &refresh_token, 7 * SECOND);
    assert_eq!(r.status, 200);
    // A token never outlives the session it came from.
    let late = h.session("bob", 8 * 3600 * SECOND - 100 * SECOND);
    let code = code_for(&h, &client, &late, "", 8 * 3600 * SECOND - 99 * SECOND);
    let r = exchange(&h, &client, &code, 8 * 3600 * SECOND - 98 * SECOND);
    assert!(json(&r)["expires_in"].as_u64().unwrap() <= 300);
}

#[test]
fn clients_without_the_refresh_grant_get_no_refresh_token() {
    let h = Harness::new();
    let body = json!({ "redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none" });
    let req = h.request("POST", "/oauth2/register", &[("content-type", "application/json")], body.to_string().as_bytes());
    let client = json(&h.reply(&req, None, SECOND))["client_id"].as_str().unwrap().to_string();
    let alice = h.session("alice", SECOND);
    let code = code_for(&h, &client, &alice, "", 2 * SECOND);
    let r = exchange(&h, &client, &code, 3 * SECOND);
    assert_eq!(r.status, 200);
    assert!(json(&r).get("refresh_token").is_none());
}

#[test]
fn a_confidential_trusted_client_authenticates_with_basic() {
    let h = Harness::new();
    let alice = h.session("alice", SECOND);
    let params = [
        ("response_type", "code"), ("client_id", "ci-bot"), ("redirect_uri", "https://ci.example.com/cb"),
        ("code_challenge", CHALLENGE), ("code_challenge_method", "S256"), ("resource", RESOURCE),
    ];
    let Served::Reply(r) = h.authorize(&params, Some(&alice), 2 * SECOND) else { panic!() };
    let code = param(&location_params(&r), "code").unwrap().to_string();
    use base64::Engine;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ci-bot:{}", crate::login::form::encode(super::testing::CI_SECRET))));
    let token_params = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", "https://ci.example.com/cb"), ("code_verifier", VERIFIER)];
    let no_auth = h.post("/oauth2/token", &token_params, &[], 3 * SECOND);
    assert_eq!(error_of(&no_auth), "invalid_client");
    let r = h.post("/oauth2/token", &token_params, &[("authorization", &basic)], 3 * SECOND);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn the_token_endpoint_refuses_malformed_requests_precisely() {
    let h = Harness::new();
    let client = register(&h);
    let post = |body: &[u8], ct: &str| h.reply(&h.request("POST", "/oauth2/token", &[("content-type", ct)], body), None, SECOND);
    assert_eq!(h.reply(&h.request("GET", "/oauth2/token", &[], b""), None, SECOND).status, 405);
    assert_eq!(h.reply(&h.request("OPTIONS", "/oauth2/token", &[], b""), None, SECOND).status, 204);
    let big = vec![b'a'; super::MAX_BODY_LEN + 1];
    assert_eq!(post(&big, "application/x-www-form-urlencoded").status, 413);
    let r = post(b"grant_type=authorization_code", "application/json");
    assert_eq!((r.status, error_of(&r).as_str()), (400, "invalid_request"));
    let r = post(b"grant_type=%zz", "application/x-www-form-urlencoded");
    assert_eq!(error_of(&r), "invalid_request");
    let body = format!("client_id={}&grant_type=refresh_token&grant_type=authorization_code", crate::login::form::encode(&client));
    assert_eq!(error_of(&post(body.as_bytes(), "application/x-www-form-urlencoded")), "invalid_request");
    let body = format!("client_id={}&grant_type=password", crate::login::form::encode(&client));
    assert_eq!(error_of(&post(body.as_bytes(), "application/x-www-form-urlencoded")), "unsupported_grant_type");
    let body = format!("client_id={}", crate::login::form::encode(&client));
    assert_eq!(error_of(&post(body.as_bytes(), "application/x-www-form-urlencoded")), "invalid_request");
    let body = format!("client_id={}&grant_type=authorization_code", crate::login::form::encode(&client));
    assert_eq!(error_of(&post(body.as_bytes(), "application/x-www-form-urlencoded")), "invalid_request");
    let body = format!("client_id={}&grant_type=authorization_code&code=vc1.junk&redirect_uri=x&code_verifier=y", crate::login::form::encode(&client));
    assert_eq!(error_of(&post(body.as_bytes(), "application/x-www-form-urlencoded")), "invalid_grant");
    let body = format!("client_id={}&grant_type=refresh_token&refresh_token=vr1.0.x.0.y", crate::login::form::encode(&client));
    assert_eq!(error_of(&post(body.as_bytes(), "application/x-www-form-urlencoded")), "invalid_grant");
}

#[test]
fn revocation_of_refresh_and_access_tokens() {
    let h = Harness::new();
    let client = register(&h);
    let other = register(&h);
    let alice = h.session("alice", SECOND);
    let tokens = |now: u64| {
        let code = code_for(&h, &client, &alice, "", now);
        let body = json(&exchange(&h, &client, &code, now + 1));
        (body["access_token"].as_str().unwrap().to_string(), body["refresh_token"].as_str().unwrap().to_string())
    };
    let revoke = |token: &str, client_id: &str| h.post("/oauth2/revoke", &[("token", token), ("client_id", client_id)], &[], 5 * SECOND);

    // A refresh token: its family, access tokens included.
    let (access, refresh_token) = tokens(2 * SECOND);
    assert_eq!(revoke(&refresh_token, &client).status, 200);
    assert_eq!(error_of(&refresh(&h, &client, &refresh_token, 6 * SECOND)), "invalid_grant");
    assert!(!admitted(&resource_request(&h, &access, 6 * SECOND)));

    // An access token: its family too.
    let (access, refresh_token) = tokens(3 * SECOND);
    assert_eq!(revoke(&access, &client).status, 200);
    assert!(!admitted(&resource_request(&h, &access, 6 * SECOND)));
    assert_eq!(error_of(&refresh(&h, &client, &refresh_token, 6 * SECOND)), "invalid_grant");

    // Another client's tokens and unknown ones: 200, nothing changes.
    let (access, refresh_token) = tokens(4 * SECOND);
    assert_eq!(revoke(&refresh_token, &other).status, 200);
    assert_eq!(revoke(&access, &other).status, 200);
    assert_eq!(revoke("no such token", &client).status, 200);
    assert_eq!(revoke("vr1.1.AAAAAAAAAAAAAAAAAAAAAA.0.AAAA", &client).status, 200);
    assert!(admitted(&resource_request(&h, &access, 6 * SECOND)));
    assert_eq!(refresh(&h, &client, &refresh_token, 6 * SECOND).status, 200);

    // Requests that are not valid revocations.
    let r = h.post("/oauth2/revoke", &[("client_id", &client)], &[], 5 * SECOND);
    assert_eq!(error_of(&r), "invalid_request");
    let r = h.post("/oauth2/revoke", &[("token", "x"), ("client_id", "nobody")], &[], 5 * SECOND);
    assert_eq!((r.status, error_of(&r).as_str()), (401, "invalid_client"));
    assert_eq!(h.reply(&h.request("GET", "/oauth2/revoke", &[], b""), None, 0).status, 405);
}

#[test]
fn discovery_documents_are_served_with_cors() {
    let h = Harness::new();
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let r = h.reply(&h.request("GET", path, &[], b""), None, 0);
        assert_eq!(r.status, 200);
        assert_eq!(json(&r)["issuer"], "https://auth.example.com");
        assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
    }
    let mut req = h.request("GET", "/.well-known/oauth-protected-resource/mcp", &[], b"");
    req.authority = "mcp.example.com".into();
    let r = h.reply(&req, None, 0);
    assert_eq!(json(&r)["resource"], RESOURCE);
    req.method = "POST".into();
    assert_eq!(h.reply(&req, None, 0).status, 405);
    req.method = "OPTIONS".into();
    assert_eq!(h.reply(&req, None, 0).status, 204);
}

#[test]
fn a_failing_random_source_issues_nothing() {
    let h = Harness::new();
    let client = register(&h);
    let alice = h.session("alice", SECOND);
    let code = code_for(&h, &client, &alice, "", 2 * SECOND);
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}&client_id={}",
        crate::login::form::encode(&code),
        crate::login::form::encode(CB),
        crate::login::form::encode(&client)
    );
    let req = h.request("POST", "/oauth2/token", &[("content-type", "application/x-www-form-urlencoded")], body.as_bytes());
    let Served::Reply(r) = super::serve(&h.ctx(), &h.store, super::McpRoute::Token, &req, None, &mut || None, 3 * SECOND) else { panic!() };
    assert_eq!((r.status, error_of(&r).as_str()), (503, "temporarily_unavailable"));
    // The code was not spent.
    assert_eq!(exchange(&h, &client, &code, 4 * SECOND).status, 200);
}
