//! `config`: the plugin configuration parser (`vigil::config::parse`) with
//! a fixed VM environment (`fixtures::env`).
//!
//! Invariants beyond "no panic":
//! * an accepted configuration re-validates the same: its JSON value,
//!   re-serialized compactly or pretty-printed, parses to an identical
//!   configuration (secrets and key material included);
//! * an accepted configuration satisfies the documented bounds (durations,
//!   counts, algorithms never `none`, every key's `alg` allowed, HS256
//!   secrets of at least 32 bytes, kids present and unique with several
//!   keys, header names valid and unreserved, nginx without queues), its
//!   login signing key builds a signer, and a token that signer mints
//!   verifies under the configuration's own downstream section;
//! * a rejected configuration yields exactly one line, `config key
//!   `<key>`: <problem>` (`config: <problem>` only when the document is not
//!   a JSON object), whose key names a known key or one of the document's;
//! * no error text contains a secret: neither a value of the environment nor
//!   an inline `secret`, `client_secret`, `state_secret`, `private_key` or
//!   `public_key` value (checked by re-parsing with those values replaced
//!   by a marker of the same length).

use std::time::Duration;

use serde_json::{Map, Value};
use vigil::config::{Config, HostKind, KeyMaterial};
use vigil::token::{MintClaims, Verifier};

use super::fixtures::{base_config_json, env, login_config_json, ENV_SECRETS, NOW_NS, NOW_S};

/// Top-level keys of the configuration (`RawConfig`).
const TOP_LEVEL: [&str; 18] = [
    "revalidate_interval",
    "revalidate_timeout",
    "on_failure",
    "max_staleness",
    "refresh_margin",
    "poll_interval",
    "wake_queues",
    "nginx",
    "shared_data_prefix",
    "max_sessions",
    "revocation_buckets",
    "max_token_lifetime",
    "idp",
    "downstream",
    "rules",
    "identity_headers",
    "session_headers",
    "login",
];

/// Keys whose string values are secrets (never in an error text).
const SECRET_KEYS: [&str; 5] = [
    "secret",
    "client_secret",
    "state_secret",
    "private_key",
    "public_key",
];

const RESERVED_HEADERS: [&str; 14] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "host",
    "content-length",
    "content-type",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub fn check(data: &[u8]) {
    let value: Option<Value> = serde_json::from_slice(data).ok();
    match vigil::config::parse(data, &env) {
        Ok(cfg) => accepted(
            &cfg,
            value.as_ref().expect("an accepted configuration is JSON"),
        ),
        Err(error) => {
            rejected(&error, data, value.as_ref());
            if let Some(value) = &value {
                no_inline_secret_in_errors(value, data);
            }
        }
    }
}

/// Whether `text` is written in the document itself (raw, or in a key or
/// string once JSON escapes are decoded): an error may then quote it, e.g.
/// as an unknown key's name, without leaking anything.
fn in_document(text: &str, data: &[u8], value: Option<&Value>) -> bool {
    fn walk(value: &Value, text: &str) -> bool {
        match value {
            Value::String(s) => s.contains(text),
            Value::Array(items) => items.iter().any(|v| walk(v, text)),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains(text) || walk(v, text)),
            _ => false,
        }
    }
    String::from_utf8_lossy(data).contains(text) || value.is_some_and(|v| walk(v, text))
}

/// Everything that identifies a configuration, secrets included.
fn fingerprint(cfg: &Config) -> String {
    let keys: Vec<(Option<String>, &str, Vec<u8>)> = cfg
        .downstream
        .keys
        .iter()
        .map(|k| {
            let material = match &k.material {
                KeyMaterial::Hs256(secret) => secret.clone(),
                _ => Vec::new(),
            };
            (k.kid.clone(), k.material.alg(), material)
        })
        .collect();
    let login = cfg
        .login
        .as_ref()
        .map(|l| (l.state_secret.clone(), format!("{:?}", l.signing_key)));
    format!("{cfg:?} {} {keys:?} {login:?}", cfg.idp.client_secret)
}

fn accepted(cfg: &Config, value: &Value) {
    let want = fingerprint(cfg);
    for text in [
        serde_json::to_vec(value).expect("re-serialize"),
        serde_json::to_vec_pretty(value).expect("re-serialize"),
    ] {
        let again =
            vigil::config::parse(&text, &env).expect("an accepted configuration re-validates");
        assert_eq!(fingerprint(&again), want, "re-validation differs");
    }
    bounds(cfg);
    // The login signer's tokens verify under the accepted downstream section.
    let verifier = Verifier::new(&cfg.downstream);
    if let Some(login) = &cfg.login {
        let signer = login
            .signing_key
            .signer()
            .expect("a parsed signing key builds a signer");
        let token = signer
            .mint(&MintClaims {
                iss: cfg.downstream.issuer.clone(),
                aud: cfg.downstream.audience.clone(),
                sub: "alice".into(),
                sid: "1.AAAAAAAAAAAAAAAAAAAAAA".into(),
                iat_ns: NOW_NS,
                exp_s: NOW_S + 60,
                extra: Map::new(),
            })
            .expect("minting with a parsed key");
        let claims = verifier
            .verify(&token, NOW_NS)
            .expect("the login key's token verifies");
        assert_eq!(claims.sub, "alice");
        assert!(vigil::login::LoginVm::new(cfg).is_some_and(|vm| vm.is_ok()));
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn header_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| is_token_byte(b) && !b.is_ascii_uppercase())
        && !RESERVED_HEADERS.contains(&name)
}

fn bounds(cfg: &Config) {
    assert!(!cfg.revalidate_timeout.is_zero());
    assert!((Duration::from_millis(10)..=Duration::from_secs(1)).contains(&cfg.poll_interval));
    assert!((1..=1_000_000).contains(&cfg.max_sessions));
    assert!((1..=65_536).contains(&cfg.revocation_buckets));
    assert!(!cfg.max_token_lifetime.is_zero());
    if let Some(staleness) = cfg.max_staleness {
        assert_eq!(cfg.on_failure, vigil::config::FailurePolicy::Allow);
        assert!(!cfg.revalidate_interval.is_zero() && staleness >= cfg.revalidate_interval);
    }
    let prefix = &cfg.shared_data_prefix;
    assert!((1..=64).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_graphic()));
    if matches!(cfg.host, HostKind::Nginx(_)) {
        assert!(!cfg.wake_queues, "nginx with queues");
    }
    let down = &cfg.downstream;
    assert!(!down.algorithms.is_empty());
    for alg in &down.algorithms {
        assert!(
            ["HS256", "ES256", "EdDSA", "RS256"].contains(&alg.as_str()),
            "{alg:?}"
        );
    }
    assert!(!down.keys.is_empty());
    for key in &down.keys {
        assert!(down.algorithms.iter().any(|a| a == key.material.alg()));
        if let KeyMaterial::Hs256(secret) = &key.material {
            assert!(secret.len() >= 32, "short HS256 secret accepted");
        }
    }
    if down.keys.len() > 1 {
        let kids: Vec<&str> = down
            .keys
            .iter()
            .map(|k| k.kid.as_deref().expect("kid with several keys"))
            .collect();
        for (i, kid) in kids.iter().enumerate() {
            assert!(!kids[..i].contains(kid), "duplicate kid {kid:?}");
        }
    }
    assert!(!down.cookie_name.is_empty() && down.cookie_name.bytes().all(is_token_byte));
    assert!(
        !down.header.is_empty()
            && down
                .header
                .bytes()
                .all(|b| is_token_byte(b) && !b.is_ascii_uppercase())
    );
    assert_ne!(down.header, "cookie");
    let mut names: Vec<&str> = Vec::new();
    for entry in &cfg.identity_headers {
        assert!(
            header_ok(&entry.header) && entry.header != down.header,
            "{:?}",
            entry.header
        );
        names.push(&entry.header);
    }
    for name in cfg.session_headers.names() {
        assert!(header_ok(name) && name != down.header, "{name:?}");
        assert!(!names.contains(&name), "{name:?} set twice");
        names.push(name);
    }
    if let Some(login) = &cfg.login {
        assert!(login.state_secret.len() >= 32);
        assert!(
            login.session_lifetime <= cfg.max_token_lifetime && !login.session_lifetime.is_zero()
        );
        assert!(login.scopes.iter().any(|s| s == "openid"));
    }
}

fn rejected(error: &vigil::config::ConfigError, data: &[u8], value: Option<&Value>) {
    let text = error.to_string();
    assert!(
        !text.contains(['\n', '\r']),
        "error is not one line: {text:?}"
    );
    // The message writes control characters escaped, to stay on one line.
    let esc = |s: &str| -> String {
        s.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
    };
    let key = error.key();
    if key.is_empty() {
        assert_eq!(text, format!("config: {}", esc(error.problem())));
        assert!(
            !matches!(value, Some(Value::Object(_))),
            "an object was refused without a key: {text}"
        );
    } else {
        assert_eq!(text, format!("config key `{}`: {}", esc(key), esc(error.problem())));
        // It starts with a known top-level key or one of the document's
        // (whose name may itself hold a `.`: the path quotes it as written;
        // an empty key is written `""`).
        let document_keys = value
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|o| o.keys().map(|k| if k.is_empty() { "\"\"" } else { k.as_str() }));
        let names = |top: &str| {
            key.strip_prefix(top)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        assert!(
            TOP_LEVEL.into_iter().chain(document_keys).any(names),
            "key {key:?} names nothing"
        );
    }
    for secret in ENV_SECRETS {
        if !in_document(secret, data, value) {
            assert!(
                !text.contains(secret),
                "an environment secret leaked: {text}"
            );
        }
    }
}

const MARKER: &str = "SECRET-MARKER-";

/// `value` with every string under a secret key replaced by a marker of
/// the same length (when it is long enough to hold one); `None` if none was.
fn mark_secrets(value: &Value) -> Option<Value> {
    fn walk(value: &mut Value, marked: &mut bool) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    match v {
                        Value::String(s)
                            if SECRET_KEYS.contains(&key.as_str()) && s.len() >= MARKER.len() =>
                        {
                            *s = format!("{MARKER}{}", "Z".repeat(s.len() - MARKER.len()));
                            *marked = true;
                        }
                        _ => walk(v, marked),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, marked)),
            _ => {}
        }
    }
    let mut value = value.clone();
    let mut marked = false;
    walk(&mut value, &mut marked);
    marked.then_some(value)
}

fn no_inline_secret_in_errors(value: &Value, data: &[u8]) {
    if in_document(MARKER, data, Some(value)) {
        return;
    }
    let Some(marked) = mark_secrets(value) else {
        return;
    };
    let text = serde_json::to_vec(&marked).expect("re-serialize");
    if let Err(error) = vigil::config::parse(&text, &env) {
        assert!(
            !error.to_string().contains(MARKER),
            "an inline secret leaked: {error}"
        );
    }
}

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Value)> = vec![
        ("base".into(), base_config_json()),
        ("login".into(), login_config_json()),
    ];
    let mut nginx = login_config_json();
    nginx["nginx"] = serde_json::json!({"wait_upstream": "127.0.0.1:8081"});
    nginx["wake_queues"] = Value::from(false);
    nginx["max_sessions"] = Value::from(100);
    nginx["revocation_buckets"] = Value::from(16);
    seeds.push(("nginx".into(), nginx));
    let mut ed_login = login_config_json();
    ed_login["login"]["signing_key"] =
        serde_json::json!({"kid": "e", "alg": "EdDSA", "private_key_env": "VIGIL_ED_KEY"});
    ed_login["downstream"]["keys"] = Value::Array(Vec::new());
    seeds.push(("login-eddsa".into(), ed_login));
    let mut rules = base_config_json();
    rules["rules"] = serde_json::json!({"allowed_subjects": ["a*", "?b"], "allowed_emails": ["*@example.com"],
        "allowed_email_domains": ["example.com"], "required_groups": ["staff"], "require_email_verified": true});
    rules["on_failure"] = Value::from("allow");
    rules["max_staleness"] = Value::from("15m");
    seeds.push(("rules-staleness".into(), rules));
    // Near-valid: each refused for one key.
    let mut none = base_config_json();
    none["downstream"]["algorithms"] = serde_json::json!(["none"]);
    seeds.push(("bad-alg-none".into(), none));
    let mut short = base_config_json();
    short["downstream"]["keys"] =
        serde_json::json!([{"kid": "hs", "alg": "HS256", "secret": "too-short-secret-value"}]);
    seeds.push(("bad-short-secret".into(), short));
    let mut unknown = base_config_json();
    unknown["idp"]["client_secrett"] = Value::from("x");
    seeds.push(("bad-unknown-key".into(), unknown));
    let mut both = base_config_json();
    both["idp"]["client_secret"] = Value::from("inline-client-secret-value");
    seeds.push(("bad-two-secrets".into(), both));
    let mut env_missing = base_config_json();
    env_missing["idp"]["client_secret_env"] = Value::from("VIGIL_MISSING");
    seeds.push(("bad-env-missing".into(), env_missing));
    let mut duration = base_config_json();
    duration["revalidate_interval"] = Value::from("1m30");
    seeds.push(("bad-duration".into(), duration));
    let mut header = base_config_json();
    header["identity_headers"] = serde_json::json!({"Authorization": "sub"});
    seeds.push(("bad-identity-header".into(), header));
    let mut pem = base_config_json();
    pem["downstream"]["keys"][1]["public_key"] =
        Value::from("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----");
    seeds.push(("bad-pem".into(), pem));
    let mut out: Vec<(String, Vec<u8>)> = seeds
        .into_iter()
        .map(|(name, value)| (name, serde_json::to_vec_pretty(&value).expect("seed json")))
        .collect();
    out.push(("bad-not-json".into(), b"{\"idp\": ".to_vec()));
    out.push(("bad-array".into(), b"[]".to_vec()));
    out
}
