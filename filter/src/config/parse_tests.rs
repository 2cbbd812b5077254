use serde_json::{json, Value};

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef-hs";
const CLIENT_SECRET: &str = "s3cr3t-client-value";

/// A 2048-bit RSA public key (from jwt-simple's own tests): RSA key
/// generation is too slow for a debug-build unit test.
const RSA_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAt5N44H1mpb5Wlx/0e7Cd
oKTY8xt+3yMby8BgNdagVNkeCkZ4pRbmQXRWNC7qn//Zaxx9dnzHbzGCul5W0RLf
d3oB3PESwsrQh+oiXVEPTYhvUPQkX0vBfCXJtg/zY2mY1DxKOIiXnZ8PaK/7Sx0a
MmvR//0Yy2a5dIAWCmjPsxn+PcGZOkVUm+D5bH1+ZStcA/68r4ZSPix7Szhgl1Ro
Hb9Q6JSekyZqM0Qfwhgb7srZVXC/9/m5PEx9wMVNYpYJBrXhD5IQm9RzE9oJS8T+
Ai+4/5mNTNXI8f1rrYgffWS4wf9cvsEihrvEg9867B2f98L7ux9Llle7jsHCtwgV
1wIDAQAB
-----END PUBLIC KEY-----";

fn base() -> Value {
    json!({
        "idp": {
            "upstream": "outbound|443||idp.example.com",
            "token_endpoint": "https://idp.example.com/oauth/token",
            "userinfo_endpoint": "https://idp.example.com:8443/userinfo?schema=openid",
            "client_id": "vigil",
            "client_secret": CLIENT_SECRET
        },
        "downstream": {
            "issuer": "https://vigil.local",
            "audience": "app",
            "algorithms": ["HS256"],
            "keys": [{"alg": "HS256", "secret": SECRET}]
        }
    })
}

fn env(name: &str) -> Option<String> {
    match name {
        "VIGIL_CLIENT_SECRET" => Some("from-env-secret".to_string()),
        "VIGIL_HS_KEY" => Some(SECRET.to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn parse_value(value: &Value) -> Result<Config> {
    parse(value.to_string().as_bytes(), &env)
}

/// Applies `edit` to the base config and returns the error line.
fn error_of(edit: impl FnOnce(&mut Value)) -> String {
    let mut value = base();
    edit(&mut value);
    match parse_value(&value) {
        Ok(_) => panic!("accepted: {value}"),
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "one line: {line}");
            assert!(
                !line.contains(CLIENT_SECRET) && !line.contains(SECRET),
                "{line}"
            );
            line
        }
    }
}

fn set(value: &mut Value, path: &str, new: Value) {
    let mut target = value;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        target = &mut target[*part];
    }
    target[parts[parts.len() - 1]] = new;
}

fn remove(value: &mut Value, path: &str) {
    let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
    let mut target = value;
    if !parent.is_empty() {
        for part in parent.split('.') {
            target = &mut target[part];
        }
    }
    target.as_object_mut().unwrap().remove(last);
}

#[test]
fn defaults_match_the_design_table() {
    let config = parse_value(&base()).unwrap();
    assert_eq!(config.revalidate_interval, Duration::from_secs(60));
    assert_eq!(config.revalidate_timeout, Duration::from_secs(10));
    assert_eq!(config.on_failure, FailurePolicy::Allow);
    assert_eq!(config.max_staleness, None);
    assert_eq!(config.refresh_margin, Duration::from_secs(30));
    assert_eq!(config.poll_interval, Duration::from_millis(50));
    assert!(config.wake_queues);
    assert_eq!(config.shared_data_prefix, "vigil:");
    assert_eq!(config.max_sessions, 10_000);
    assert_eq!(config.revocation_buckets, 1024);
    assert_eq!(config.max_token_lifetime, Duration::from_secs(12 * 3600));
    assert_eq!(config.idp.client_auth, ClientAuth::SecretBasic);
    assert_eq!(config.idp.client_secret, CLIENT_SECRET);
    assert_eq!(config.downstream.leeway, Duration::from_secs(30));
    assert_eq!(config.downstream.cookie_name, "vigil_session");
    assert_eq!(config.downstream.header, "authorization");
    assert_eq!(config.downstream.keys.len(), 1);
    assert_eq!(config.downstream.keys[0].kid, None);
    assert_eq!(
        config.rules,
        AuthorizationRules {
            groups_claim: "groups".to_string(),
            ..AuthorizationRules::default()
        }
    );
    assert!(config.identity_headers.is_empty());
}

#[test]
fn endpoints_are_split_for_callouts() {
    let config = parse_value(&base()).unwrap();
    let token = &config.idp.token_endpoint;
    assert_eq!(token.path, "/oauth/token");
    assert_eq!(token.authority, "idp.example.com");
    assert_eq!(token.scheme, "https");
    let userinfo = &config.idp.userinfo_endpoint;
    assert_eq!(userinfo.path, "/userinfo?schema=openid");
    assert_eq!(userinfo.authority, "idp.example.com:8443");

    let mut value = base();
    set(&mut value, "idp.authority", json!("idp.internal"));
    set(
        &mut value,
        "idp.token_endpoint",
        json!("http://10.0.0.1:8080"),
    );
    let config = parse_value(&value).unwrap();
    assert_eq!(config.idp.token_endpoint.path, "/");
    assert_eq!(config.idp.token_endpoint.scheme, "http");
    assert_eq!(config.idp.token_endpoint.authority, "idp.internal");
    assert_eq!(config.idp.userinfo_endpoint.authority, "idp.internal");
}

#[test]
fn every_key_is_read() {
    let ed = jwt_simple::prelude::Ed25519KeyPair::generate();
    let es = jwt_simple::prelude::ES256KeyPair::generate();
    let value = json!({
        "revalidate_interval": "1m30s",
        "revalidate_timeout": "2s",
        "on_failure": "allow",
        "max_staleness": "10m",
        "refresh_margin": "0",
        "poll_interval": "1s",
        "wake_queues": false,
        "shared_data_prefix": "vigil-a:",
        "max_sessions": 1,
        "revocation_buckets": 65536,
        "max_token_lifetime": "1h",
        "idp": {
            "upstream": "idp:443",
            "authority": "idp.example.com",
            "token_endpoint": "https://idp.example.com/token",
            "userinfo_endpoint": "https://idp.example.com/userinfo",
            "client_id": "c",
            "client_secret_env": "VIGIL_CLIENT_SECRET",
            "client_auth": "client_secret_post"
        },
        "downstream": {
            "issuer": "i", "audience": "a",
            "algorithms": ["EdDSA", "ES256", "HS256", "RS256"],
            "keys": [
                {"kid": "ed", "alg": "EdDSA", "public_key": ed.public_key().to_pem()},
                {"kid": "es", "alg": "ES256", "public_key": es.public_key().to_pem().unwrap()},
                {"kid": "hs", "alg": "HS256", "secret_env": "VIGIL_HS_KEY"},
                {"kid": "rs", "alg": "RS256", "public_key": RSA_PEM}
            ],
            "leeway": "5s",
            "cookie_name": "__Host-vigil",
            "header": "x-vigil-token"
        },
        "rules": {
            "allowed_subjects": ["user-*"],
            "allowed_emails": ["*@Example.COM"],
            "allowed_email_domains": ["Example.com"],
            "groups_claim": "roles",
            "required_groups": ["admins"],
            "require_email_verified": true
        },
        "identity_headers": {"x-user": "sub", "x-email": "email"}
    });
    let config = parse_value(&value).unwrap();
    assert_eq!(config.revalidate_interval, Duration::from_secs(90));
    assert_eq!(config.max_staleness, Some(Duration::from_secs(600)));
    assert_eq!(config.refresh_margin, Duration::ZERO);
    assert_eq!(config.max_sessions, 1);
    assert!(!config.wake_queues);
    assert_eq!(config.revocation_buckets, 65536);
    assert_eq!(config.idp.client_secret, "from-env-secret");
    assert_eq!(config.idp.client_auth, ClientAuth::SecretPost);
    let algs: Vec<&str> = config
        .downstream
        .keys
        .iter()
        .map(|k| k.material.alg())
        .collect();
    assert_eq!(algs, ["EdDSA", "ES256", "HS256", "RS256"]);
    assert_eq!(config.downstream.header, "x-vigil-token");
    assert_eq!(config.rules.allowed_emails, ["*@example.com"]);
    assert_eq!(config.rules.allowed_email_domains, ["example.com"]);
    assert!(config.rules.require_email_verified);
    let headers: Vec<(&str, &str)> = config
        .identity_headers
        .iter()
        .map(|h| (h.header.as_str(), h.claim.as_str()))
        .collect();
    assert_eq!(headers, [("x-email", "email"), ("x-user", "sub")]);
}

#[test]
fn document_level_errors() {
    assert_eq!(
        parse(b"", &env).unwrap_err().to_string(),
        "config: empty configuration (expected a JSON object)"
    );
    assert!(parse(b"{", &env)
        .unwrap_err()
        .to_string()
        .starts_with("config: invalid JSON"));
    assert_eq!(
        parse(b"[]", &env).unwrap_err().to_string(),
        "config: expected an object, found an array"
    );
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let line = error_of(|v| set(v, "revalidate_intervall", json!("1s")));
    assert!(
        line.starts_with("config key `revalidate_intervall`: unknown key"),
        "{line}"
    );
    let line = error_of(|v| set(v, "idp.client_secrte", json!("x")));
    assert!(
        line.starts_with("config key `idp.client_secrte`: unknown key"),
        "{line}"
    );
    let line = error_of(|v| v["downstream"]["keys"][0]["kyd"] = json!("x"));
    assert!(
        line.starts_with("config key `downstream.keys[0].kyd`: unknown key"),
        "{line}"
    );
}

#[test]
fn wrong_types_name_the_key() {
    assert_eq!(
        error_of(|v| set(v, "max_sessions", json!("100"))),
        "config key `max_sessions`: expected a non-negative integer, found a string"
    );
    assert_eq!(
        error_of(|v| set(v, "idp.client_id", json!(5))),
        "config key `idp.client_id`: expected a string, found an integer"
    );
    assert_eq!(
        error_of(|v| set(v, "revalidate_interval", json!(60))),
        "config key `revalidate_interval`: expected a string, found an integer"
    );
    let line = error_of(|v| set(v, "on_failure", json!("maybe")));
    assert!(
        line.starts_with("config key `on_failure`: expected one of `allow`, `deny`"),
        "{line}"
    );
    // A secret typed into the wrong field is not echoed.
    let line = error_of(|v| set(v, "max_sessions", json!(CLIENT_SECRET)));
    assert!(line.starts_with("config key `max_sessions`"), "{line}");
}

#[test]
fn bad_durations_are_quoted_with_the_reason() {
    let line = error_of(|v| set(v, "revalidate_interval", json!("6o s")));
    assert!(
        line.starts_with("config key `revalidate_interval`: invalid duration \"6o s\": "),
        "{line}"
    );
    for key in [
        "revalidate_timeout",
        "refresh_margin",
        "poll_interval",
        "max_token_lifetime",
        "downstream.leeway",
    ] {
        let line = error_of(|v| set(v, key, json!("10")));
        assert!(
            line.starts_with(&format!("config key `{key}`: invalid duration")),
            "{line}"
        );
    }
    let line = error_of(|v| set(v, "refresh_margin", json!("9000h")));
    assert!(line.contains("too large"), "{line}");
}

#[test]
fn missing_required_keys() {
    for key in [
        "idp",
        "downstream",
        "idp.upstream",
        "idp.token_endpoint",
        "idp.userinfo_endpoint",
        "idp.client_id",
        "downstream.issuer",
        "downstream.audience",
        "downstream.algorithms",
        "downstream.keys",
    ] {
        assert_eq!(
            error_of(|v| remove(v, key)),
            format!("config key `{key}`: required key missing")
        );
    }
    assert_eq!(
        error_of(|v| remove(v, "idp.client_secret")),
        "config key `idp.client_secret`: required key missing (or set `client_secret_env`)"
    );
    assert_eq!(
        error_of(|v| remove(&mut v["downstream"]["keys"][0], "alg")),
        "config key `downstream.keys[0].alg`: required key missing"
    );
}

#[test]
fn timing_combinations() {
    assert_eq!(
        error_of(|v| set(v, "revalidate_timeout", json!("0"))),
        "config key `revalidate_timeout`: must be greater than 0"
    );
    let line = error_of(|v| {
        set(v, "on_failure", json!("deny"));
        set(v, "max_staleness", json!("10m"));
    });
    assert!(
        line.starts_with("config key `max_staleness`: only allowed with"),
        "{line}"
    );
    assert_eq!(
        error_of(|v| set(v, "max_staleness", json!("30s"))),
        "config key `max_staleness`: must be at least `revalidate_interval` (60000ms)"
    );
    let line = error_of(|v| {
        set(v, "revalidate_interval", json!("0"));
        set(v, "max_staleness", json!("30s"));
    });
    assert!(line.contains("has no effect"), "{line}");
    for bad in ["9ms", "1001ms", "0"] {
        assert_eq!(
            error_of(|v| set(v, "poll_interval", json!(bad))),
            "config key `poll_interval`: must be between 10ms and 1s"
        );
    }
    for ok in ["10ms", "1s"] {
        let mut value = base();
        set(&mut value, "poll_interval", json!(ok));
        assert!(parse_value(&value).is_ok());
    }
    let mut value = base();
    set(&mut value, "revalidate_interval", json!("0"));
    assert_eq!(
        parse_value(&value).unwrap().revalidate_interval,
        Duration::ZERO
    );
}

#[test]
fn integer_ranges() {
    for (key, bad) in [
        ("max_sessions", json!(0)),
        ("max_sessions", json!(1_000_001)),
        ("revocation_buckets", json!(65_537)),
        ("revocation_buckets", json!(u64::MAX)),
    ] {
        let line = error_of(|v| set(v, key, bad));
        assert!(
            line.starts_with(&format!("config key `{key}`: must be between 1 and")),
            "{line}"
        );
    }
    assert!(error_of(|v| set(v, "max_sessions", json!(-1))).contains("`max_sessions`"));
}

#[test]
fn client_secret_sources() {
    let line = error_of(|v| set(v, "idp.client_secret_env", json!("VIGIL_CLIENT_SECRET")));
    assert_eq!(
        line,
        "config key `idp.client_secret`: set only one of `client_secret` and `client_secret_env`"
    );
    let line = error_of(|v| {
        remove(v, "idp.client_secret");
        set(v, "idp.client_secret_env", json!("NOPE"));
    });
    assert_eq!(
        line,
        "config key `idp.client_secret_env`: environment variable `NOPE` is not set"
    );
    let line = error_of(|v| {
        remove(v, "idp.client_secret");
        set(v, "idp.client_secret_env", json!("EMPTY"));
    });
    assert!(line.ends_with("is empty"), "{line}");
}

#[test]
fn endpoint_urls_are_checked() {
    for bad in [
        "idp.example.com/token",
        "/token",
        "ftp://idp.example.com/token",
        "https://user:pw@idp.example.com/token",
        "https://idp.example.com/token#frag",
        "not a url",
    ] {
        let line = error_of(|v| set(v, "idp.token_endpoint", json!(bad)));
        assert!(
            line.starts_with("config key `idp.token_endpoint`: "),
            "{line}"
        );
        assert!(!line.contains("pw@"), "{line}");
    }
    assert_eq!(
        error_of(|v| set(v, "idp.userinfo_endpoint", json!("mailto:a@b"))),
        "config key `idp.userinfo_endpoint`: not an absolute http(s) URL"
    );
    assert!(error_of(|v| set(v, "idp.authority", json!("a b"))).contains("`idp.authority`"));
    assert!(error_of(|v| set(v, "idp.upstream", json!(""))).contains("`idp.upstream`"));
}

#[test]
fn algorithm_list_is_an_allow_list() {
    assert_eq!(
        error_of(|v| set(v, "downstream.algorithms", json!(["HS256", "none"]))),
        "config key `downstream.algorithms[1]`: `none` is never allowed"
    );
    assert!(error_of(|v| set(v, "downstream.algorithms", json!(["NONE"]))).contains("never"));
    assert!(
        error_of(|v| set(v, "downstream.algorithms", json!(["HS512"])))
            .contains("unsupported algorithm")
    );
    assert!(error_of(|v| set(v, "downstream.algorithms", json!([]))).contains("at least one"));
    let line = error_of(|v| set(v, "downstream.algorithms", json!(["ES256"])));
    assert_eq!(
        line,
        "config key `downstream.keys[0].alg`: algorithm `HS256` is not in `downstream.algorithms`"
    );
}

#[test]
fn key_material_is_checked() {
    let line = error_of(|v| v["downstream"]["keys"][0]["secret"] = json!("short-secret"));
    assert_eq!(
        line,
        "config key `downstream.keys[0].secret`: HS256 secret must be at least 32 bytes"
    );
    let line = error_of(|v| v["downstream"]["keys"][0]["public_key"] = json!(RSA_PEM));
    assert!(
        line.starts_with("config key `downstream.keys[0].public_key`: not used"),
        "{line}"
    );
    let line = error_of(|v| {
        set(v, "downstream.algorithms", json!(["ES256"]));
        v["downstream"]["keys"][0] = json!({"alg": "ES256", "public_key": "garbage"});
    });
    assert_eq!(
        line,
        "config key `downstream.keys[0].public_key`: not a valid ES256 public key (PEM)"
    );
    let line = error_of(|v| {
        set(v, "downstream.algorithms", json!(["EdDSA"]));
        v["downstream"]["keys"][0] = json!({"alg": "EdDSA", "public_key": RSA_PEM});
    });
    assert!(line.contains("not a valid EdDSA public key"), "{line}");
    let line = error_of(|v| {
        set(v, "downstream.algorithms", json!(["RS256"]));
        v["downstream"]["keys"][0] = json!({"alg": "RS256", "secret": SECRET});
    });
    assert!(
        line.starts_with("config key `downstream.keys[0].secret`: not used with RS256"),
        "{line}"
    );
    let line = error_of(|v| {
        v["downstream"]["keys"][0] = json!({"alg": "HS256", "secret_env": "MISSING_KEY"});
    });
    assert_eq!(
        line,
        "config key `downstream.keys[0].secret_env`: environment variable `MISSING_KEY` is not set"
    );
}

#[test]
fn several_keys_need_distinct_kids() {
    let key = json!({"alg": "HS256", "secret": SECRET});
    let line = error_of(|v| set(v, "downstream.keys", json!([key, key])));
    assert_eq!(
        line,
        "config key `downstream.keys[0].kid`: required when several keys are configured"
    );
    let a = json!({"kid": "k", "alg": "HS256", "secret": SECRET});
    assert_eq!(
        error_of(|v| set(v, "downstream.keys", json!([a, a]))),
        "config key `downstream.keys[1].kid`: duplicate kid `k`"
    );
    assert!(error_of(|v| set(v, "downstream.keys", json!([]))).contains("at least one key"));
}

#[test]
fn header_and_cookie_names() {
    assert_eq!(
        error_of(|v| set(v, "downstream.header", json!("X-Token"))),
        "config key `downstream.header`: header names must be lower-case"
    );
    assert!(error_of(|v| set(v, "downstream.header", json!(":path"))).contains("not a valid"));
    assert!(error_of(|v| set(v, "downstream.header", json!("cookie"))).contains("must not"));
    assert!(error_of(|v| set(v, "downstream.cookie_name", json!("a;b"))).contains("cookie name"));
    assert!(error_of(|v| set(v, "downstream.cookie_name", json!(""))).contains("cookie name"));
}

#[test]
fn identity_header_names_are_checked() {
    for (bad, problem) in [
        ("X-User", "header names must be lower-case"),
        (":authority", "not a valid header name"),
        ("x user", "not a valid header name"),
        ("", "not a valid header name"),
        ("authorization", "reserved header"),
        ("cookie", "reserved header"),
        ("transfer-encoding", "reserved header"),
        ("connection", "reserved header"),
    ] {
        let line = error_of(|v| set(v, "identity_headers", json!({ bad: "sub" })));
        assert!(
            line.starts_with(&format!("config key `identity_headers.{bad}`: {problem}")),
            "{line}"
        );
    }
    let line = error_of(|v| {
        set(v, "downstream.header", json!("x-token"));
        set(v, "identity_headers", json!({"x-token": "sub"}));
    });
    assert!(line.contains("reserved header"), "{line}");
    assert!(error_of(|v| set(v, "identity_headers", json!({"x-user": ""}))).contains("empty"));
}

#[test]
fn session_headers_are_off_by_default_and_parsed_when_set() {
    let config = parse_value(&base()).unwrap();
    assert_eq!(config.session_headers, SessionHeaders::default());
    assert_eq!(config.session_headers.names().count(), 0);
    let mut value = base();
    set(&mut value, "identity_headers", json!({"x-user": "sub"}));
    set(
        &mut value,
        "session_headers",
        json!({"validated_at": "x-validated-at", "revalidate_at": "x-revalidate-at"}),
    );
    let config = parse_value(&value).unwrap();
    assert_eq!(
        config.session_headers.validated_at.as_deref(),
        Some("x-validated-at")
    );
    let names: Vec<&str> = config.session_headers.names().collect();
    assert_eq!(names, ["x-validated-at", "x-revalidate-at"]);
    set(&mut value, "session_headers", json!({"revalidate_at": "x-due"}));
    let config = parse_value(&value).unwrap();
    let names: Vec<&str> = config.session_headers.names().collect();
    assert_eq!(names, ["x-due"]);
    set(&mut value, "session_headers", json!({}));
    assert_eq!(
        parse_value(&value).unwrap().session_headers,
        SessionHeaders::default()
    );
}

#[test]
fn session_header_names_are_checked() {
    for (bad, problem) in [
        ("X-Validated", "header names must be lower-case"),
        (":path", "not a valid header name"),
        ("", "not a valid header name"),
        ("authorization", "reserved header"),
        ("cookie", "reserved header"),
        ("content-length", "reserved header"),
    ] {
        let line = error_of(|v| set(v, "session_headers", json!({ "validated_at": bad })));
        assert!(
            line.starts_with(&format!(
                "config key `session_headers.validated_at`: {problem}"
            )),
            "{line}"
        );
    }
    let line = error_of(|v| {
        set(v, "downstream.header", json!("x-token"));
        set(v, "session_headers", json!({"revalidate_at": "x-token"}));
    });
    assert!(line.contains("reserved header"), "{line}");
    // One header, one value: no clash with an identity header or the other time.
    let line = error_of(|v| {
        set(v, "identity_headers", json!({"x-user": "sub"}));
        set(v, "session_headers", json!({"validated_at": "x-user"}));
    });
    assert!(
        line.starts_with("config key `session_headers.validated_at`: header \"x-user\" is already set"),
        "{line}"
    );
    let line = error_of(|v| {
        set(v, "session_headers", json!({"validated_at": "x-t", "revalidate_at": "x-t"}));
    });
    assert!(
        line.starts_with("config key `session_headers.revalidate_at`: header \"x-t\" is already set"),
        "{line}"
    );
    let line = error_of(|v| set(v, "session_headers", json!({"expires_at": "x-e"})));
    assert!(line.contains("session_headers.expires_at"), "{line}");
    let line = error_of(|v| set(v, "session_headers", json!({"validated_at": 1})));
    assert!(line.contains("session_headers.validated_at"), "{line}");
}

#[test]
fn rule_values_are_checked() {
    assert!(
        error_of(|v| set(v, "rules", json!({"allowed_email_domains": ["@x.com"]})))
            .starts_with("config key `rules.allowed_email_domains[0]`")
    );
    let long = "a".repeat(MAX_GLOB_LEN + 1);
    assert!(
        error_of(|v| set(v, "rules", json!({"allowed_subjects": [long]})))
            .starts_with("config key `rules.allowed_subjects[0]`: longer than")
    );
    assert!(
        error_of(|v| set(v, "rules", json!({"required_groups": [""]})))
            .starts_with("config key `rules.required_groups[0]`")
    );
    assert!(
        error_of(|v| set(v, "rules", json!({"require_email_verified": "yes"})))
            .starts_with("config key `rules.require_email_verified`: expected a boolean")
    );
}

#[test]
fn debug_output_of_the_config_hides_key_material() {
    let config = parse_value(&base()).unwrap();
    let keys = format!("{:?}", config.downstream.keys);
    assert!(!keys.contains(SECRET), "{keys}");
}

fn with_login() -> Value {
    let mut value = base();
    set(&mut value, "idp.issuer", json!("https://idp.example.com"));
    value["login"] = json!({
        "redirect_uri": "https://app.example.com/oauth/callback?x=1",
        "signing_key": {"alg": "HS256", "secret": SECRET}
    });
    set(
        &mut value,
        "downstream.keys",
        json!([{"kid": "k1", "alg": "HS256", "secret": SECRET}]),
    );
    value
}

#[test]
fn login_defaults_and_the_signing_key_joins_the_downstream_keys() {
    let config = parse_value(&with_login()).unwrap();
    let login = config.login.as_ref().unwrap();
    assert_eq!(login.callback_path, "/oauth/callback");
    assert_eq!(login.scopes, ["openid", "profile", "email"]);
    assert!(login.consent_for_offline_access && login.cookie.secure);
    assert_eq!(login.cookie.path, "/");
    assert_eq!(login.session_lifetime, Duration::from_secs(8 * 3600));
    assert_eq!(login.state_lifetime, Duration::from_secs(600));
    assert_eq!(login.state_secret.len(), 32);
    assert_eq!(
        (
            login.logout_path.as_deref(),
            login.backchannel_logout_path.as_deref()
        ),
        (None, None)
    );
    let provider = &login.provider;
    assert!(provider.discovery);
    assert_eq!(
        provider.discovery_endpoint.path,
        "/.well-known/openid-configuration"
    );
    assert_eq!(provider.metadata_refresh, Duration::from_secs(3600));
    // The signing key is first; the configured key stays.
    let keys = &config.downstream.keys;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid.as_deref(), Some("vigil"));
    assert!(!format!("{login:?}").contains(SECRET));
    // Without downstream keys and algorithms, the signing key is enough.
    let mut value = with_login();
    remove(&mut value, "downstream.keys");
    remove(&mut value, "downstream.algorithms");
    let config = parse_value(&value).unwrap();
    assert_eq!(config.downstream.algorithms, ["HS256"]);
    assert_eq!(config.downstream.keys.len(), 1);
}

#[test]
fn asymmetric_signing_keys_publish_their_public_half() {
    use jwt_simple::prelude::{ES256KeyPair, Ed25519KeyPair};
    for (alg, pem) in [
        ("EdDSA", Ed25519KeyPair::generate().to_pem()),
        ("ES256", ES256KeyPair::generate().to_pem().unwrap()),
    ] {
        let mut value = with_login();
        value["login"]["signing_key"] = json!({"kid": "k9", "alg": alg, "private_key": pem});
        remove(&mut value, "downstream.keys");
        remove(&mut value, "downstream.algorithms");
        let config = parse_value(&value).unwrap();
        assert_eq!(config.downstream.algorithms, [alg]);
        assert_eq!(config.downstream.keys[0].material.alg(), alg);
        // What the signer mints, the downstream verifier accepts.
        let signer = config.login.as_ref().unwrap().signing_key.signer().unwrap();
        let token = signer
            .mint(&crate::token::MintClaims {
                iss: "https://vigil.local".into(),
                aud: "app".into(),
                sub: "alice".into(),
                sid: "0.AAAAAAAAAAAAAAAAAAAAAA".into(),
                iat_ns: 1_000_000_000,
                exp_s: 4_000_000_000,
                extra: serde_json::Map::new(),
            })
            .unwrap();
        let verifier = crate::token::Verifier::new(&config.downstream);
        assert_eq!(verifier.verify(&token, 2_000_000_000).unwrap().sub, "alice");
    }
}

#[test]
fn login_configuration_errors_name_the_key() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|v| remove(v, "idp.issuer")), "idp.issuer"),
        (
            Box::new(|v| set(v, "idp.discovery", json!(false))),
            "idp.authorization_endpoint",
        ),
        (
            Box::new(|v| {
                set(v, "idp.discovery", json!(false));
                set(
                    v,
                    "idp.authorization_endpoint",
                    json!("https://idp.example.com/auth"),
                );
            }),
            "idp.jwks_uri",
        ),
        (
            Box::new(|v| set(v, "idp.jwks_uri", json!("not a url"))),
            "idp.jwks_uri",
        ),
        (
            Box::new(|v| v["login"]["scopes"] = json!(["email"])),
            "login.scopes",
        ),
        (
            Box::new(|v| v["login"]["scopes"] = json!(["openid", "a b"])),
            "login.scopes[1]",
        ),
        (
            Box::new(|v| v["login"]["redirect_uri"] = json!("/callback")),
            "login.redirect_uri",
        ),
        (
            Box::new(|v| v["login"]["logout_path"] = json!("/oauth/callback")),
            "login.logout_path",
        ),
        (
            Box::new(|v| v["login"]["backchannel_logout_path"] = json!("bc")),
            "login.backchannel_logout_path",
        ),
        (
            Box::new(|v| v["login"]["session_lifetime"] = json!("13h")),
            "login.session_lifetime",
        ),
        (
            Box::new(|v| v["login"]["state_lifetime"] = json!("2h")),
            "login.state_lifetime",
        ),
        (
            Box::new(|v| v["login"]["state_secret"] = json!("short")),
            "login.state_secret",
        ),
        (
            Box::new(|v| v["login"]["cookie_path"] = json!("x;y")),
            "login.cookie_path",
        ),
        (
            Box::new(|v| v["login"]["signing_key"] = json!({"alg": "RS256", "private_key": "x"})),
            "login.signing_key.alg",
        ),
        (
            Box::new(|v| {
                v["login"]["signing_key"] = json!({"alg": "EdDSA", "private_key": "nope"})
            }),
            "login.signing_key.private_key",
        ),
        (
            Box::new(|v| v["login"]["signing_key"] = json!({"alg": "HS256", "secret": "short"})),
            "login.signing_key.secret",
        ),
        (
            Box::new(|v| {
                v["login"]["signing_key"] =
                    json!({"alg": "HS256", "secret": SECRET, "private_key": "x"})
            }),
            "login.signing_key.private_key",
        ),
        (
            Box::new(|v| {
                v["downstream"]["keys"] =
                    json!([{"kid": "vigil", "alg": "HS256", "secret": SECRET}])
            }),
            "downstream.keys[0].kid",
        ),
        (
            Box::new(|v| v["login"]["unknown"] = json!(1)),
            "login.unknown",
        ),
        (
            Box::new(|v| v["downstream"]["keys"] = json!([{"alg": "HS256", "secret": SECRET}])),
            "downstream.keys[0].kid",
        ),
    ];
    for (edit, key) in cases {
        let mut value = with_login();
        edit(&mut value);
        match parse_value(&value) {
            Ok(_) => panic!("accepted: {value}"),
            Err(e) => {
                assert_eq!(e.key(), key, "{e}");
                assert!(!e.to_string().contains(SECRET));
            }
        }
    }
    let line = error_of(|v| set(v, "idp.issuer", json!("https://idp.example.com")));
    assert!(
        line.contains("idp.issuer") && line.contains("login"),
        "{line}"
    );
}

#[test]
fn without_an_nginx_section_the_host_is_envoy() {
    let config = parse_value(&base()).unwrap();
    assert_eq!(config.host, HostKind::Envoy);
    assert!(config.nginx().is_none());
    assert!(config.wake_queues);
}

#[test]
fn the_nginx_section_selects_nginx_with_its_wait_location_and_no_queues() {
    let mut value = base();
    value["nginx"] = json!({ "wait_upstream": "127.0.0.1:8080" });
    let config = parse_value(&value).unwrap();
    let nginx = config.nginx().unwrap();
    assert_eq!(nginx.wait_upstream, "127.0.0.1:8080");
    assert_eq!(nginx.wait_path, "/_vigil/wait");
    assert!(!config.wake_queues, "nginx cannot host vigil's queues");

    value["nginx"]["wait_path"] = json!("/internal/vigil-wait");
    value["wake_queues"] = json!(false);
    let config = parse_value(&value).unwrap();
    assert_eq!(config.nginx().unwrap().wait_path, "/internal/vigil-wait");
}

#[test]
fn nginx_section_errors_name_the_key() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "config key `nginx.wait_upstream`: required key missing"),
        (json!({ "wait_upstream": "localhost" }), "config key `nginx.wait_upstream`: must be host:port"),
        (json!({ "wait_upstream": "127.0.0.1:0" }), "config key `nginx.wait_upstream`: must be host:port"),
        (json!({ "wait_upstream": "http://127.0.0.1:80" }), "config key `nginx.wait_upstream`: must be host:port"),
        (json!({ "wait_upstream": "127.0.0.1:80", "wait_path": "wait" }), "config key `nginx.wait_path`"),
        (json!({ "wait_upstream": "127.0.0.1:80", "wait": 1 }), "unknown"),
    ];
    for (nginx, expected) in cases {
        let line = error_of(|v| v["nginx"] = nginx.clone());
        assert!(line.contains(expected), "{nginx}: {line}");
    }
    let line = error_of(|v| {
        v["nginx"] = json!({ "wait_upstream": "127.0.0.1:80" });
        v["wake_queues"] = json!(true);
    });
    assert!(line.starts_with("config key `wake_queues`: must be false with `nginx`"), "{line}");
}

#[test]
fn login_cookies_get_the_strongest_prefix_their_attributes_allow() {
    let names = |edit: &dyn Fn(&mut Value)| {
        let mut value = with_login();
        edit(&mut value);
        let config = parse_value(&value).unwrap();
        let state = config.login.as_ref().unwrap().state_cookie_name.clone();
        (config.downstream.cookie_name, state)
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(names(&|_| {}), pair("__Host-vigil_session", "__Host-vigil_session_login"));
    assert_eq!(
        names(&|v| v["login"]["cookie_domain"] = json!("example.com")),
        pair("__Secure-vigil_session", "__Secure-vigil_session_login")
    );
    assert_eq!(
        names(&|v| v["login"]["cookie_path"] = json!("/app")),
        pair("__Secure-vigil_session", "__Secure-vigil_session_login")
    );
    assert_eq!(
        names(&|v| v["login"]["cookie_secure"] = json!(false)),
        pair("vigil_session", "vigil_session_login")
    );
    // An explicit session cookie name keeps its own base in the state cookie's.
    assert_eq!(
        names(&|v| set(v, "downstream.cookie_name", json!("app_sid"))),
        pair("app_sid", "__Host-app_sid_login")
    );
    assert_eq!(
        names(&|v| set(v, "downstream.cookie_name", json!("__Host-app"))),
        pair("__Host-app", "__Host-app_login")
    );
    assert_eq!(
        names(&|v| v["login"]["state_cookie_name"] = json!("__Secure-st")),
        pair("__Host-vigil_session", "__Secure-st")
    );
    // Without login nothing changes.
    assert_eq!(parse_value(&base()).unwrap().downstream.cookie_name, "vigil_session");
}

#[test]
fn prefixed_cookie_names_need_the_attributes_browsers_require() {
    let error = |edit: &dyn Fn(&mut Value)| {
        let mut value = with_login();
        edit(&mut value);
        parse_value(&value).err().map(|e| e.to_string()).unwrap_or_default()
    };
    let host_with_domain = error(&|v| {
        set(v, "downstream.cookie_name", json!("__Host-s"));
        v["login"]["cookie_domain"] = json!("example.com");
    });
    assert!(host_with_domain.starts_with("config key `downstream.cookie_name`: a `__Host-` cookie"), "{host_with_domain}");
    let host_with_path = error(&|v| {
        set(v, "downstream.cookie_name", json!("__host-s"));
        v["login"]["cookie_path"] = json!("/app");
    });
    assert!(host_with_path.contains("`__Host-`"), "{host_with_path}");
    let secure_over_http = error(&|v| {
        set(v, "downstream.cookie_name", json!("__Secure-s"));
        v["login"]["cookie_secure"] = json!(false);
    });
    assert!(secure_over_http.contains("`__Secure-` cookie needs"), "{secure_over_http}");
    let state_host_with_domain = error(&|v| {
        v["login"]["state_cookie_name"] = json!("__Host-st");
        v["login"]["cookie_domain"] = json!("example.com");
    });
    assert!(state_host_with_domain.starts_with("config key `login.state_cookie_name`"), "{state_host_with_domain}");
    let same = error(&|v| v["login"]["state_cookie_name"] = json!("vigil_session"));
    assert!(same.contains("must differ"), "{same}");
    let bad = error(&|v| v["login"]["state_cookie_name"] = json!("a b"));
    assert!(bad.contains("cookie name"), "{bad}");
}

#[test]
fn an_empty_key_is_named_as_such() {
    let line = error_of(|v| v[""] = json!(0));
    assert!(line.starts_with("config key `\"\"`: unknown key"), "{line}");
}
