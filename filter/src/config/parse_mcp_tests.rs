use serde_json::{json, Value};

use crate::config::{parse, Config, McpClientAuth};

const SIGNING: &str = "0123456789abcdef0123456789abcdef-hs";
const CLIENT_SECRET: &str = "a client secret of at least 32 bytes";
const MCP_SECRET: &str = "an mcp secret of at least 32 bytes!!";

fn base() -> Value {
    json!({
        "idp": {
            "upstream": "idp",
            "token_endpoint": "https://idp.example.com/token",
            "userinfo_endpoint": "https://idp.example.com/userinfo",
            "client_id": "vigil",
            "client_secret": "s",
            "issuer": "https://idp.example.com"
        },
        "downstream": { "issuer": "https://auth.example.com", "audience": "app" },
        "login": {
            "redirect_uri": "https://auth.example.com/callback",
            "logout_path": "/logout",
            "signing_key": { "alg": "HS256", "secret": SIGNING }
        },
        "mcp": {
            "scopes": ["mcp:tools", "mcp:admin", "offline_access"],
            "resources": [{ "resource": "https://mcp.example.com/mcp", "scopes": ["mcp:tools"] }]
        }
    })
}

fn env(name: &str) -> Option<String> {
    match name {
        "CLIENT_SECRET" => Some(CLIENT_SECRET.to_string()),
        "MCP_SECRET" => Some(MCP_SECRET.to_string()),
        "SHORT" => Some("short".to_string()),
        _ => None,
    }
}

fn ok(value: &Value) -> Config {
    match parse(value.to_string().as_bytes(), &env) {
        Ok(cfg) => cfg,
        Err(e) => panic!("refused: {e}"),
    }
}

fn error_of(edit: impl FnOnce(&mut Value)) -> String {
    let mut value = base();
    edit(&mut value);
    match parse(value.to_string().as_bytes(), &env) {
        Ok(_) => panic!("accepted: {value}"),
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains(CLIENT_SECRET) && !line.contains(SIGNING) && !line.contains(MCP_SECRET), "{line}");
            line
        }
    }
}

#[test]
fn defaults_fill_a_minimal_section() {
    let cfg = ok(&base());
    let mcp = cfg.mcp.unwrap();
    assert_eq!(mcp.issuer, "https://auth.example.com");
    assert_eq!((mcp.issuer_origin.as_str(), mcp.issuer_path.as_str()), ("https://auth.example.com", ""));
    let r = &mcp.resources[0];
    assert_eq!(r.resource, "https://mcp.example.com/mcp");
    assert_eq!((r.authority.as_str(), r.path.as_str()), ("mcp.example.com", "/mcp"));
    assert_eq!(r.paths, ["/mcp"]);
    assert_eq!(r.scopes, ["mcp:tools"]);
    assert_eq!(r.metadata_url, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
    assert_eq!(mcp.access_token_lifetime.as_secs(), 300);
    assert_eq!(mcp.refresh_token_lifetime.as_secs(), 8 * 3600);
    assert_eq!(mcp.code_lifetime.as_secs(), 60);
    assert_eq!(mcp.paths.authorize, "/oauth2/authorize");
    assert_eq!(mcp.paths.token, "/oauth2/token");
    assert_eq!(mcp.paths.register, "/oauth2/register");
    assert_eq!(mcp.paths.revoke, "/oauth2/revoke");
    assert!(mcp.dynamic_registration && mcp.cimd.is_none() && mcp.clients.is_empty());
    assert_eq!(mcp.refresh_families, 4096);
    // The key is derived from the signing key by default.
    assert_eq!(mcp.prk, crate::mcp::keys::extract(SIGNING.as_bytes()));
    assert!(!format!("{mcp:?}").contains("prk"));
    // Without the section nothing changes.
    let mut plain = base();
    plain.as_object_mut().unwrap().remove("mcp");
    assert!(ok(&plain).mcp.is_none());
}

#[test]
fn every_key_is_read() {
    let mut v = base();
    v["mcp"] = json!({
        "issuer": "https://auth.example.com/tenant",
        "scopes": ["mcp:tools"],
        "resources": [
            { "resource": "https://MCP.example.com/mcp", "paths": ["/mcp", "/sse"], "name": "Tools" }
        ],
        "access_token_lifetime": "2m",
        "refresh_token_lifetime": "24h",
        "code_lifetime": "30s",
        "authorization_path": "/as/authorize",
        "token_path": "/as/token",
        "registration_path": "/as/register",
        "revocation_path": "/as/revoke",
        "clients": [
            { "client_id": "cli", "redirect_uris": ["http://127.0.0.1/cb"], "grant_types": ["authorization_code"] },
            { "client_id": "bot", "client_name": "Bot", "redirect_uris": ["https://bot.example.com/cb"],
              "token_endpoint_auth_method": "client_secret_post", "secret_env": "CLIENT_SECRET", "consent": false }
        ],
        "dynamic_registration": false,
        "client_id_metadata_documents": {
            "upstream": "dfp", "allowed_hosts": ["clients.example.com", ".apps.example.com"],
            "timeout": "3s", "cache_ttl": "10m", "max_document_size": 4096, "cache_entries": 32
        },
        "secret_env": "MCP_SECRET",
        "refresh_families": 100
    });
    // A canonical spelling is required.
    assert!(parse(v.to_string().as_bytes(), &env).unwrap_err().to_string().contains("mcp.resources[0].resource"));
    v["mcp"]["resources"][0]["resource"] = json!("https://mcp.example.com/mcp");
    let mcp = ok(&v).mcp.unwrap();
    assert_eq!(mcp.issuer_path, "/tenant");
    assert_eq!(mcp.resources[0].paths, ["/mcp", "/sse"]);
    assert_eq!(mcp.resources[0].scopes, Vec::<String>::new());
    assert_eq!(mcp.resources[0].name.as_deref(), Some("Tools"));
    assert_eq!(mcp.access_token_lifetime.as_secs(), 120);
    assert_eq!(mcp.paths.revoke, "/as/revoke");
    assert_eq!(mcp.clients[0].auth, McpClientAuth::None);
    assert!(!mcp.clients[0].refresh && mcp.clients[0].consent);
    assert_eq!(mcp.clients[1].auth, McpClientAuth::SecretPost(CLIENT_SECRET.into()));
    assert!(mcp.clients[1].refresh && !mcp.clients[1].consent);
    assert!(!mcp.dynamic_registration);
    let cimd = mcp.cimd.as_ref().unwrap();
    assert_eq!((cimd.upstream.as_str(), cimd.max_document_size, cimd.cache_entries), ("dfp", 4096, 32));
    assert_eq!(cimd.allowed_hosts, ["clients.example.com", ".apps.example.com"]);
    assert_eq!(mcp.prk, crate::mcp::keys::extract(MCP_SECRET.as_bytes()));
    assert_eq!(mcp.refresh_families, 100);
    assert!(!format!("{mcp:?}").contains(CLIENT_SECRET));
}

type Edit = Box<dyn FnOnce(&mut Value)>;

#[test]
fn bad_values_are_refused_with_their_key() {
    let cases: Vec<(&str, Edit)> = vec![
        ("`mcp`", Box::new(|v| {
            v.as_object_mut().unwrap().remove("login");
            v["idp"].as_object_mut().unwrap().remove("issuer");
            v["downstream"]["algorithms"] = json!(["HS256"]);
            v["downstream"]["keys"] = json!([{ "alg": "HS256", "secret": SIGNING }]);
        })),
        ("mcp.issuer", Box::new(|v| v["downstream"]["issuer"] = json!("vigil"))),
        ("mcp.issuer", Box::new(|v| v["mcp"]["issuer"] = json!("https://auth.example.com/"))),
        ("mcp.issuer", Box::new(|v| v["mcp"]["issuer"] = json!("http://auth.example.com"))),
        ("mcp.issuer", Box::new(|v| v["mcp"]["issuer"] = json!("https://auth.example.com?x=1"))),
        ("mcp.resources", Box::new(|v| v["mcp"]["resources"] = json!([]))),
        ("mcp.resources", Box::new(|v| { v["mcp"].as_object_mut().unwrap().remove("resources"); })),
        ("mcp.resources[0].resource", Box::new(|v| v["mcp"]["resources"][0]["resource"] = json!("app"))),
        ("mcp.resources[0].resource", Box::new(|v| {
            v["downstream"]["audience"] = json!("https://mcp.example.com/mcp");
        })),
        ("mcp.resources[0].resource", Box::new(|v| v["mcp"]["resources"][0]["resource"] = json!("https://mcp.example.com/mcp#x"))),
        ("mcp.resources[1].resource", Box::new(|v| {
            v["mcp"]["resources"].as_array_mut().unwrap().push(json!({ "resource": "https://mcp.example.com/mcp", "paths": ["/other"] }));
        })),
        ("mcp.resources[1].paths[0]", Box::new(|v| v["mcp"]["resources"].as_array_mut().unwrap().push(json!({ "resource": "https://x.example.com", "paths": ["/mcp"] })))),
        ("mcp.resources[0].paths[0]", Box::new(|v| v["mcp"]["resources"][0]["paths"] = json!(["/mcp/"]))),
        ("mcp.resources[0].paths[0]", Box::new(|v| v["mcp"]["resources"][0]["paths"] = json!(["mcp"]))),
        ("mcp.resources[0].paths[0]", Box::new(|v| v["mcp"]["resources"][0]["paths"] = json!(["/mcp/*"]))),
        ("mcp.resources[0].paths[0]", Box::new(|v| v["mcp"]["resources"][0]["paths"] = json!(["/.well-known/x"]))),
        ("mcp.resources[0].paths", Box::new(|v| v["mcp"]["resources"][0]["paths"] = json!([]))),
        ("mcp.authorization_path", Box::new(|v| v["mcp"]["resources"][0]["paths"] = json!(["/"]))),
        ("mcp.resources[0].paths[0]", Box::new(|v| v["mcp"]["resources"][0]["paths"] = json!(["/logout"]))),
        ("mcp.resources[0].scopes[0]", Box::new(|v| v["mcp"]["resources"][0]["scopes"] = json!(["other"]))),
        ("mcp.resources[0].scopes[0]", Box::new(|v| v["mcp"]["resources"][0]["scopes"] = json!(["offline_access"]))),
        ("mcp.scopes[0]", Box::new(|v| v["mcp"]["scopes"] = json!(["a b"]))),
        ("mcp.token_path", Box::new(|v| v["mcp"]["token_path"] = json!("/callback"))),
        ("mcp.token_path", Box::new(|v| v["mcp"]["token_path"] = json!("/oauth2/authorize"))),
        ("mcp.token_path", Box::new(|v| v["mcp"]["token_path"] = json!("/mcp/token"))),
        ("mcp.revocation_path", Box::new(|v| v["mcp"]["revocation_path"] = json!("/logout"))),
        ("mcp.access_token_lifetime", Box::new(|v| v["mcp"]["access_token_lifetime"] = json!("2h"))),
        ("mcp.access_token_lifetime", Box::new(|v| v["mcp"]["access_token_lifetime"] = json!("1s"))),
        ("mcp.code_lifetime", Box::new(|v| v["mcp"]["code_lifetime"] = json!("1h"))),
        ("mcp.refresh_token_lifetime", Box::new(|v| v["mcp"]["refresh_token_lifetime"] = json!("1000h"))),
        ("mcp.refresh_families", Box::new(|v| v["mcp"]["refresh_families"] = json!(0))),
        ("mcp.secret", Box::new(|v| v["mcp"]["secret"] = json!("short"))),
        ("mcp.secret", Box::new(|v| { v["mcp"]["secret"] = json!(MCP_SECRET); v["mcp"]["secret_env"] = json!("MCP_SECRET"); })),
        ("mcp.secret_env", Box::new(|v| v["mcp"]["secret_env"] = json!("UNSET"))),
        ("mcp.clients[0].redirect_uris[0]", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "c", "redirect_uris": ["http://evil.example/cb"] }]))),
        ("mcp.clients[0].redirect_uris", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "c", "redirect_uris": [] }]))),
        ("mcp.clients[0].client_id", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "vd1.x", "redirect_uris": ["http://127.0.0.1/cb"] }]))),
        ("mcp.clients[0].client_id", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "a b", "redirect_uris": ["http://127.0.0.1/cb"] }]))),
        ("mcp.clients[1].client_id", Box::new(|v| v["mcp"]["clients"] = json!([
            { "client_id": "c", "redirect_uris": ["http://127.0.0.1/cb"] },
            { "client_id": "c", "redirect_uris": ["http://127.0.0.1/cb"] }
        ]))),
        ("mcp.clients[0].secret", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "c", "redirect_uris": ["https://c.example/cb"], "token_endpoint_auth_method": "client_secret_basic" }]))),
        ("mcp.clients[0].secret", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "c", "redirect_uris": ["https://c.example/cb"], "token_endpoint_auth_method": "client_secret_basic", "secret_env": "SHORT" }]))),
        ("mcp.clients[0].secret", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "c", "redirect_uris": ["https://c.example/cb"], "secret": CLIENT_SECRET }]))),
        ("mcp.clients[0].token_endpoint_auth_method", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "c", "redirect_uris": ["https://c.example/cb"], "token_endpoint_auth_method": "private_key_jwt" }]))),
        ("mcp.clients[0].grant_types", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "c", "redirect_uris": ["https://c.example/cb"], "grant_types": ["client_credentials"] }]))),
        ("mcp.clients[0].grant_types", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "c", "redirect_uris": ["https://c.example/cb"], "grant_types": ["refresh_token"] }]))),
        ("mcp.clients[0].client_name", Box::new(|v| v["mcp"]["clients"] = json!([{ "client_id": "c", "client_name": "", "redirect_uris": ["https://c.example/cb"] }]))),
        ("mcp.client_id_metadata_documents.upstream", Box::new(|v| v["mcp"]["client_id_metadata_documents"] = json!({}))),
        ("mcp.client_id_metadata_documents.allowed_hosts[0]", Box::new(|v| v["mcp"]["client_id_metadata_documents"] = json!({ "upstream": "u", "allowed_hosts": ["*.example.com"] }))),
        ("mcp.client_id_metadata_documents.allowed_hosts[0]", Box::new(|v| v["mcp"]["client_id_metadata_documents"] = json!({ "upstream": "u", "allowed_hosts": ["localhost"] }))),
        ("mcp.client_id_metadata_documents.max_document_size", Box::new(|v| v["mcp"]["client_id_metadata_documents"] = json!({ "upstream": "u", "max_document_size": 100 }))),
        ("mcp.client_id_metadata_documents.timeout", Box::new(|v| v["mcp"]["client_id_metadata_documents"] = json!({ "upstream": "u", "timeout": "1m" }))),
        ("mcp.bogus", Box::new(|v| v["mcp"]["bogus"] = json!(1))),
        ("mcp.resources[0].bogus", Box::new(|v| v["mcp"]["resources"][0]["bogus"] = json!(1))),
    ];
    for (key, edit) in cases {
        let line = error_of(edit);
        assert!(line.contains(key), "expected `{key}` in: {line}");
    }
}

#[test]
fn http_on_a_loopback_host_is_allowed_for_local_development() {
    let mut v = base();
    v["mcp"]["issuer"] = json!("http://127.0.0.1:8080");
    v["mcp"]["resources"][0]["resource"] = json!("http://localhost:8080/mcp");
    let mcp = ok(&v).mcp.unwrap();
    assert_eq!(mcp.resources[0].metadata_url, "http://localhost:8080/.well-known/oauth-protected-resource/mcp");
    assert_eq!(mcp.issuer_origin, "http://127.0.0.1:8080");
}

#[test]
fn the_nginx_key_space_check_runs_with_mcp() {
    let mut v = base();
    v["nginx"] = json!({ "wait_upstream": "127.0.0.1:8081" });
    v["mcp"]["client_id_metadata_documents"] = json!({ "upstream": "127.0.0.1:3128" });
    assert!(ok(&v).mcp.is_some());
}
