#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use crate::mcp::client::{authenticate, lookup, ClientKind, Lookup};
use crate::mcp::http::MAX_BODY_LEN;
use crate::mcp::testing::{header, json, Harness, SECOND};

fn register_json(h: &Harness, body: &Value) -> LocalReply {
    let req = h.request("POST", "/oauth2/register", &[("content-type", "application/json")], body.to_string().as_bytes());
    h.reply(&req, None, 5 * SECOND)
}

fn assert_refused(h: &Harness, body: Value, code: &str) {
    let r = register_json(h, &body);
    assert_eq!(r.status, 400, "{body}");
    assert_eq!(json(&r)["error"], code, "{body}");
}

#[test]
fn a_public_native_client_registers_without_storage() {
    let h = Harness::new();
    let r = register_json(
        &h,
        &json!({
            "client_name": "Claude Code",
            "redirect_uris": ["http://localhost:33418/callback", "http://localhost:33418/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "logo_uri": "https://evil.example/logo.png",
            "scope": "mcp:tools"
        }),
    );
    assert_eq!(r.status, 201);
    assert_eq!(header(&r, "cache-control"), Some("no-store"));
    let body = json(&r);
    let id = body["client_id"].as_str().unwrap();
    assert!(id.starts_with("vd1."));
    assert_eq!(body["client_id_issued_at"], 5);
    assert_eq!(body["redirect_uris"], json!(["http://localhost:33418/callback"]));
    assert_eq!(body["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert!(body.get("client_secret").is_none() && body.get("logo_uri").is_none());
    assert_eq!(h.store.key_count(), 0, "nothing stored");
    // The same metadata again is another client.
    let again = register_json(&h, &json!({ "redirect_uris": ["http://localhost:33418/callback"], "token_endpoint_auth_method": "none" }));
    let first = register_json(&h, &json!({ "redirect_uris": ["http://localhost:33418/callback"], "token_endpoint_auth_method": "none" }));
    assert_ne!(json(&again)["client_id"], json(&first)["client_id"]);
    let Lookup::Found(client) = lookup(h.ctx().mcp, h.ctx().keys, id) else { panic!("unknown") };
    assert_eq!((client.kind, client.name.as_deref(), client.refresh), (ClientKind::Dynamic, Some("Claude Code"), true));
}

#[test]
fn the_default_method_is_client_secret_basic_with_a_derived_secret() {
    let h = Harness::new();
    let body = json(&register_json(&h, &json!({ "redirect_uris": ["https://app.example.com/cb"] })));
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["grant_types"], json!(["authorization_code"]));
    assert_eq!(body["client_secret_expires_at"], 0);
    let (id, secret) = (body["client_id"].as_str().unwrap(), body["client_secret"].as_str().unwrap());
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let req = h.request("POST", "/oauth2/token", &[("authorization", &format!("Basic {basic}"))], b"");
    assert!(authenticate(h.ctx().mcp, h.ctx().keys, &req, &[]).is_ok());
}

#[test]
fn bad_metadata_gets_the_rfc7591_error() {
    let h = Harness::new();
    let uri = |u: &str| json!({ "redirect_uris": [u], "token_endpoint_auth_method": "none" });
    for bad in [
        "https://app.example.com/cb#frag",
        "http://app.example.com/cb",
        "https://user@app.example.com/cb",
        "https://*.example.com/cb",
        "javascript:alert(1)",
        "myapp:/cb",
        "/relative",
    ] {
        assert_refused(&h, uri(bad), "invalid_redirect_uri");
    }
    assert_refused(&h, json!({ "redirect_uris": [] }), "invalid_redirect_uri");
    assert_refused(&h, json!({ "client_name": "x" }), "invalid_redirect_uri");
    assert_refused(&h, json!({ "redirect_uris": [1] }), "invalid_redirect_uri");
    let nine: Vec<String> = (0..9).map(|i| format!("http://127.0.0.1/cb{i}")).collect();
    assert_refused(&h, json!({ "redirect_uris": nine }), "invalid_redirect_uri");
    let ok_uri = json!(["http://127.0.0.1/cb"]);
    for (field, value) in [
        ("token_endpoint_auth_method", json!("private_key_jwt")),
        ("token_endpoint_auth_method", json!(1)),
        ("grant_types", json!(["client_credentials"])),
        ("grant_types", json!(["implicit", "authorization_code"])),
        ("grant_types", json!("authorization_code")),
        ("response_types", json!(["token"])),
        ("client_name", json!("")),
        ("client_name", json!("x".repeat(101))),
        ("client_name", json!("bad\u{7}name")),
    ] {
        assert_refused(&h, json!({ "redirect_uris": ok_uri, field: value }), "invalid_client_metadata");
    }
    // Too much metadata for a client id of bounded length.
    let long: Vec<String> = (0..8).map(|i| format!("https://app.example.com/{}{i}", "p".repeat(300))).collect();
    assert_refused(&h, json!({ "redirect_uris": long }), "invalid_client_metadata");
    // Not JSON, not an object, not declared as JSON.
    let req = h.request("POST", "/oauth2/register", &[("content-type", "application/json")], b"{");
    assert_eq!(json(&h.reply(&req, None, 0))["error"], "invalid_client_metadata");
    let req = h.request("POST", "/oauth2/register", &[("content-type", "application/json")], b"[]");
    assert_eq!(h.reply(&req, None, 0).status, 400);
    let req = h.request("POST", "/oauth2/register", &[("content-type", "text/plain")], b"{}");
    assert_eq!(h.reply(&req, None, 0).status, 400);
}

#[test]
fn methods_bodies_and_the_switch() {
    let h = Harness::new();
    assert_eq!(h.reply(&h.request("GET", "/oauth2/register", &[], b""), None, 0).status, 405);
    let preflight = h.reply(&h.request("OPTIONS", "/oauth2/register", &[], b""), None, 0);
    assert_eq!(preflight.status, 204);
    assert_eq!(header(&preflight, "access-control-allow-origin"), Some("*"));
    let big = vec![b' '; MAX_BODY_LEN + 1];
    let req = h.request("POST", "/oauth2/register", &[("content-type", "application/json")], &big);
    assert_eq!(h.reply(&req, None, 0).status, 413);
    let mut cfg = crate::mcp::testing::config();
    cfg.mcp.as_mut().unwrap().dynamic_registration = false;
    let off = Harness::with(cfg);
    let req = off.request("POST", "/oauth2/register", &[("content-type", "application/json")], b"{}");
    assert_eq!(register(&off.ctx(), &req, &mut || Some(1), 0).status, 403);
    // No randomness, no client id.
    let req = h.request("POST", "/oauth2/register", &[("content-type", "application/json")], b"{\"redirect_uris\":[\"http://127.0.0.1/cb\"]}");
    assert_eq!(register(&h.ctx(), &req, &mut || None, 0).status, 503);
}
