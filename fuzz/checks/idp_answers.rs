//! `idp_answers`: everything vigil reads from the IdP: token endpoint and
//! userinfo answers (their fatal/non-fatal classification), the discovery
//! document, the JWKS, ID tokens and back-channel logout tokens verified
//! against a JWKS.
//!
//! Invariants beyond "no panic":
//! * transport failures and every `5xx` are non-fatal, whatever the body;
//!   a token answer is fatal only for a JSON `error` of `invalid_grant` /
//!   `invalid_client` below 500, userinfo only for 401, 403 or a 2xx naming
//!   another `sub`; a success carries exactly the body's tokens / claims;
//! * a discovery document is accepted exactly when its `issuer` is the
//!   configured one byte for byte, every endpoint present is an acceptable
//!   http(s) URL and the required ones are there; what is kept round-trips
//!   through its shared-data record and resolves to metadata;
//! * a JWKS keeps only public members of supported signature keys, at most
//!   `MAX_KEYS`, each of which parses, and filtering what was kept keeps it
//!   unchanged;
//! * an ID token (and a logout token) signed by the IdP is accepted exactly
//!   when its claims pass the documented checks (an independent oracle);
//!   any byte-level variant that is accepted carries exactly the signed
//!   claims; `none` and unlisted algorithms never verify;
//! * a back-channel logout revokes exactly the signed `sub`, once: a
//!   replay is refused, and a refused logout revokes nobody.

use serde_json::{json, Map, Value};
use vigil::config::endpoint::HttpUrl;
use vigil::login::backchannel::{
    backchannel_logout, LoggedOut, BACKCHANNEL_EVENT, MAX_LOGOUT_TOKEN_AGE_NS,
};
use vigil::login::id_token::{validate_id_token, IdTokenCheck};
use vigil::login::idp_jwt::verify_signature;
use vigil::login::jwks::{filter_jwks, JwkSet, MAX_KEYS};
use vigil::login::provider::{
    discovery_key, jwks_key, parse_discovery, DiscoveryRecord, JwksRecord, Provider,
    ProviderMetadata,
};
use vigil::revalidation::{
    classify_token_answer, classify_userinfo_answer, Class, FatalReason, IdpAnswer, NonFatalReason,
};
use vigil::session::is_revoked;
use vigil::store::{MemoryStore, SharedStore};

use super::fixtures::{
    hs256_signature, idp_jwks_json, idp_keys, idp_sign, idp_sign_logout, login_config, raw_jwt, CLIENT_ID,
    IDP_ISSUER, IDP_SIGNERS, NOW_NS, NOW_S, SEC,
};
use super::input::{Input, Output};

const LEEWAY_NS: u64 = 30 * SEC;
const NONCE: &str = "n-0123456789";
const STATUSES: [u16; 16] = [
    200, 201, 204, 301, 400, 401, 403, 404, 429, 499, 500, 502, 503, 504, 599, 0,
];

pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % 7 {
        0 => token_answer(&mut input),
        1 => userinfo_answer(&mut input),
        2 => discovery(&mut input),
        3 => jwks(&mut input),
        4 => id_token(&mut input),
        5 => logout_token(&mut input),
        _ => raw_idp_jwt(&mut input),
    }
}

fn answer(input: &mut Input, body: Vec<u8>) -> IdpAnswer {
    match input.u8() % 8 {
        0 => IdpAnswer::Reset,
        1 => IdpAnswer::Timeout,
        2 => IdpAnswer::Unreachable,
        3 => IdpAnswer::Response {
            status: input.u16(),
            headers: Vec::new(),
            body,
        },
        _ => IdpAnswer::Response {
            status: *input.pick(&STATUSES),
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        },
    }
}

/// A JSON value for a member the IdP may get wrong.
fn member(input: &mut Input, good: &[&str]) -> Option<Value> {
    match input.u8() % 8 {
        0 => None,
        1 => Some(Value::Null),
        2 => Some(Value::from(input.u64())),
        3 => Some(Value::from(input.text())),
        4 => Some(json!([input.text()])),
        5 => Some(Value::from(-1.5)),
        _ => Some(Value::from(*input.pick(good))),
    }
}

fn object(input: &mut Input, members: &[(&str, &[&str])]) -> Vec<u8> {
    if input.bool() {
        return input.bytes().to_vec();
    }
    let mut map = Map::new();
    for (name, good) in members {
        if let Some(v) = member(input, good) {
            map.insert((*name).to_string(), v);
        }
    }
    Value::Object(map).to_string().into_bytes()
}

fn body_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn token_answer(input: &mut Input) {
    let body = object(
        input,
        &[
            ("access_token", &["at-1234567890", ""]),
            ("refresh_token", &["rt-1234567890", ""]),
            ("expires_in", &["300", " 60 ", "-1"]),
            (
                "error",
                &[
                    "invalid_grant",
                    "invalid_client",
                    "invalid_request",
                    "server_error",
                ],
            ),
            ("id_token", &["a.b.c"]),
        ],
    );
    let answer = answer(input, body);
    let class = classify_token_answer(&answer);
    let IdpAnswer::Response { status, body, .. } = &answer else {
        assert!(
            matches!(class, Class::NonFatal(_)),
            "a transport failure was {class:?}"
        );
        return;
    };
    let object = body_object(body);
    let error = object
        .as_ref()
        .and_then(|o| o.get("error"))
        .and_then(Value::as_str);
    if *status >= 500 {
        assert_eq!(
            class,
            Class::NonFatal(NonFatalReason::ServerError),
            "5xx must be non-fatal"
        );
    }
    match &class {
        Class::Fatal(reason) => {
            assert!(*status < 500);
            let want = match reason {
                FatalReason::InvalidGrant => "invalid_grant",
                FatalReason::InvalidClient => "invalid_client",
                other => panic!("token answer fatal for {other:?}"),
            };
            assert_eq!(error, Some(want));
        }
        Class::Ok(grant) => {
            assert!((200..300).contains(status) && error.is_none());
            let object = object.expect("a grant comes from a JSON object");
            assert_eq!(
                object.get("access_token").and_then(Value::as_str),
                Some(grant.access_token.as_str())
            );
            assert!(!grant.access_token.is_empty());
            let refresh = object
                .get("refresh_token")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            assert_eq!(grant.refresh_token.as_deref(), refresh);
            // Debug never depends on the tokens.
            let blanked = vigil::revalidation::TokenGrant {
                access_token: String::new(),
                expires_in_s: grant.expires_in_s,
                refresh_token: grant.refresh_token.as_ref().map(|_| String::new()),
            };
            assert_eq!(
                format!("{grant:?}"),
                format!("{blanked:?}"),
                "Debug prints a token"
            );
        }
        Class::NonFatal(_) => {
            assert!(!matches!(error, Some("invalid_grant" | "invalid_client")) || *status >= 500);
        }
    }
}

fn userinfo_answer(input: &mut Input) {
    let expected = if input.bool() {
        input.text()
    } else {
        "alice".to_string()
    };
    let body = object(
        input,
        &[
            ("sub", &["alice", "bob", ""]),
            ("email", &["a@example.com"]),
            ("email_verified", &["true"]),
            ("groups", &["staff"]),
        ],
    );
    let answer = answer(input, body);
    let class = classify_userinfo_answer(&answer, &expected);
    let IdpAnswer::Response { status, body, .. } = &answer else {
        assert!(
            matches!(class, Class::NonFatal(_)),
            "a transport failure was {class:?}"
        );
        return;
    };
    if *status >= 500 {
        assert_eq!(
            class,
            Class::NonFatal(NonFatalReason::ServerError),
            "5xx must be non-fatal"
        );
    }
    let sub =
        body_object(body).and_then(|o| o.get("sub").and_then(Value::as_str).map(str::to_string));
    match &class {
        Class::Fatal(FatalReason::UserinfoUnauthorized) => assert_eq!(*status, 401),
        Class::Fatal(FatalReason::UserinfoForbidden) => assert_eq!(*status, 403),
        Class::Fatal(FatalReason::SubjectMismatch) => {
            assert!((200..300).contains(status));
            assert!(sub.is_some_and(|s| s != expected));
        }
        Class::Fatal(other) => panic!("userinfo fatal for {other:?}"),
        Class::Ok(claims) => {
            assert!((200..300).contains(status));
            assert_eq!(
                claims.get("sub").and_then(Value::as_str),
                Some(expected.as_str())
            );
            let _ = vigil::rules::check_rules(&login_config().rules, claims);
            let _ = vigil::identity::identity_headers(&login_config().identity_headers, claims);
        }
        Class::NonFatal(_) => {}
    }
}

const URLS: [&str; 6] = [
    "https://idp.example.com/authorize",
    "https://idp.example.com/jwks",
    "http://127.0.0.1:8081/keys?x=1",
    "https://idp.example.com/a b",
    "ftp://idp.example.com/",
    "https://user:pw@idp.example.com/",
];
const ENDPOINTS: [&str; 4] = [
    "authorization_endpoint",
    "jwks_uri",
    "end_session_endpoint",
    "revocation_endpoint",
];

fn discovery(input: &mut Input) {
    let provider = &login_config().login.as_ref().expect("login").provider;
    let issuers = [
        IDP_ISSUER,
        "https://idp.example.com/",
        "https://IDP.example.com",
        "idp",
    ];
    let members: Vec<(&str, &[&str])> = std::iter::once(("issuer", &issuers[..]))
        .chain(ENDPOINTS.iter().map(|e| (*e, &URLS[..])))
        .collect();
    let body = object(input, &members);
    let now = NOW_NS + u64::from(input.u32());
    let result = parse_discovery(&body, provider, now);
    let doc = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object);
    // The oracle: issuer byte for byte, acceptable URLs, the required ones.
    let expected = doc.as_ref().is_some_and(|doc| {
        let url_ok = |name: &str| match doc.get(name) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => HttpUrl::parse(s).is_ok(),
            Some(_) => false,
        };
        let present = |name: &str| doc.get(name).is_some_and(Value::is_string);
        body.len() <= vigil::login::provider::MAX_DISCOVERY_LEN
            && doc.get("issuer").and_then(Value::as_str) == Some(IDP_ISSUER)
            && ENDPOINTS.iter().all(|e| url_ok(e))
            && present("authorization_endpoint")
            && present("jwks_uri")
    });
    assert_eq!(
        result.is_ok(),
        expected,
        "discovery {:?}: {result:?}",
        String::from_utf8_lossy(&body)
    );
    let Ok(record) = result else { return };
    let doc = doc.expect("accepted discovery is an object");
    assert_eq!(record.issuer, provider.issuer);
    assert_eq!(record.fetched_ns, now);
    for (name, got) in [
        ("authorization_endpoint", &record.authorization_endpoint),
        ("jwks_uri", &record.jwks_uri),
        ("end_session_endpoint", &record.end_session_endpoint),
        ("revocation_endpoint", &record.revocation_endpoint),
    ] {
        assert_eq!(
            got.as_deref(),
            doc.get(name).and_then(Value::as_str),
            "{name}"
        );
    }
    let bytes = serde_json::to_vec(&record).expect("encode");
    assert_eq!(DiscoveryRecord::decode(&bytes), Some(record.clone()));
    let metadata =
        ProviderMetadata::resolve(provider, Some(&record)).expect("accepted discovery resolves");
    assert_eq!(
        Some(metadata.authorization_endpoint.as_str()),
        record.authorization_endpoint.as_deref()
    );
}

const JWK_MEMBERS: [&str; 10] = ["kty", "crv", "alg", "use", "kid", "x", "y", "n", "e", "x5c"];
const KEPT_MEMBERS: [&str; 7] = ["kty", "crv", "x", "y", "n", "e", "kid"];

fn jwks(input: &mut Input) {
    let body = if input.bool() {
        input.bytes().to_vec()
    } else {
        let fixture = idp_jwks_json();
        let pool = fixture["keys"].as_array().cloned().unwrap_or_default();
        let mut keys = Vec::new();
        for _ in 0..input.u8() % 6 {
            let mut key = pool[input.below(pool.len())].clone();
            for _ in 0..input.u8() % 4 {
                let name = *input.pick(&JWK_MEMBERS);
                match input.u8() % 5 {
                    0 => {
                        key.as_object_mut().map(|o| o.remove(name));
                    }
                    1 => key[name] = Value::from(input.text()),
                    2 => key[name] = Value::from(input.u64()),
                    3 => {
                        key[name] = Value::from(*input.pick(&[
                            "RSA", "EC", "OKP", "oct", "P-256", "Ed25519", "sig", "enc", "RS256",
                            "Ed25519",
                        ]))
                    }
                    _ => {
                        let other = &pool[input.below(pool.len())];
                        if let Some(v) = other.get(name) {
                            key[name] = v.clone();
                        }
                    }
                }
            }
            keys.push(key);
        }
        if input.bool() {
            keys.push(Value::from(input.text()));
        }
        json!({ "keys": keys }).to_string().into_bytes()
    };
    let Ok(kept) = filter_jwks(&body) else { return };
    assert!(!kept.is_empty() && kept.len() <= MAX_KEYS);
    for key in &kept {
        let object = key.as_object().expect("kept keys are objects");
        assert!(
            object.keys().all(|k| KEPT_MEMBERS.contains(&k.as_str())),
            "private or extra member kept: {key}"
        );
    }
    let set = JwkSet::from_values(&kept);
    assert_eq!(set.len(), kept.len(), "a kept key does not parse");
    let again =
        filter_jwks(json!({ "keys": kept }).to_string().as_bytes()).expect("kept keys are kept");
    assert_eq!(again, kept, "filtering is not idempotent");
    let record = JwksRecord {
        v: 1,
        fetched_ns: NOW_NS,
        keys: kept,
    };
    let bytes = serde_json::to_vec(&record).expect("encode");
    assert_eq!(JwksRecord::decode(&bytes), Some(record));
}

/// A claims object for an IdP-signed token, valid or off in one or more
/// ways the input chooses.
fn idp_claims(input: &mut Input, logout: bool) -> Value {
    let flags = input.u16();
    let bit = |n: u16| flags & (1 << n) != 0;
    let mut c = Map::new();
    c.insert(
        "iss".into(),
        if bit(0) {
            Value::from(input.text())
        } else {
            Value::from(IDP_ISSUER)
        },
    );
    let aud = match (bit(1), bit(2)) {
        (false, false) => Value::from(CLIENT_ID),
        (true, false) => json!([CLIENT_ID, "other-client"]),
        (false, true) => json!(["other-client"]),
        (true, true) => Value::from(input.text()),
    };
    c.insert("aud".into(), aud);
    if bit(3) {
        c.insert(
            "azp".into(),
            if bit(4) {
                Value::from(input.text())
            } else {
                Value::from(CLIENT_ID)
            },
        );
    }
    let iat = (NOW_S + 60).saturating_sub(u64::from(input.u16()));
    if !bit(5) {
        c.insert("iat".into(), Value::from(iat));
    }
    if !bit(6) || logout {
        let exp = (NOW_S + 1000).saturating_sub(u64::from(input.u16()));
        if !(logout && bit(6)) {
            c.insert("exp".into(), Value::from(exp));
        }
    }
    if bit(7) {
        c.insert(
            "nonce".into(),
            if bit(8) {
                Value::from(input.text())
            } else {
                Value::from(NONCE)
            },
        );
    }
    if !bit(9) {
        let sub = match input.u8() % 4 {
            0 => Value::from(input.text()),
            1 => Value::from("x".repeat(256)),
            2 => Value::from(""),
            _ => Value::from("alice"),
        };
        c.insert("sub".into(), sub);
    }
    if bit(10) {
        c.insert("sid".into(), Value::from(input.text()));
    }
    if logout {
        if !bit(11) {
            let event = if bit(12) { json!(true) } else { json!({}) };
            c.insert("events".into(), json!({ BACKCHANNEL_EVENT: event }));
        }
        if !bit(13) {
            let jti = if bit(14) {
                input.text()
            } else {
                format!("jti-{}", input.u32())
            };
            c.insert("jti".into(), Value::from(jti));
        }
    }
    Value::Object(c)
}

fn aud_ok(c: &Map<String, Value>) -> bool {
    match c.get("aud") {
        Some(Value::String(a)) => a == CLIENT_ID,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(CLIENT_ID)),
        _ => false,
    }
}

/// OIDC Core §3.1.3.7 as vigil documents it, written independently.
fn id_token_valid(c: &Map<String, Value>) -> bool {
    let several = matches!(c.get("aud"), Some(Value::Array(a)) if a.len() > 1);
    let azp_ok = match c.get("azp") {
        Some(azp) => azp.as_str() == Some(CLIENT_ID),
        None => !several,
    };
    let exp_ok = c
        .get("exp")
        .and_then(Value::as_u64)
        .is_some_and(|e| NOW_NS < e * SEC + LEEWAY_NS);
    let iat_ok = c
        .get("iat")
        .and_then(Value::as_u64)
        .is_some_and(|i| i * SEC <= NOW_NS + LEEWAY_NS);
    let sub_ok = c
        .get("sub")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty() && s.len() <= 255);
    c.get("iss").and_then(Value::as_str) == Some(IDP_ISSUER)
        && aud_ok(c)
        && azp_ok
        && exp_ok
        && iat_ok
        && c.get("nonce").and_then(Value::as_str) == Some(NONCE)
        && sub_ok
}

/// OIDC Back-Channel Logout §2.6 as vigil documents it (sub required).
fn logout_token_valid(c: &Map<String, Value>) -> bool {
    let iat_ok = c.get("iat").and_then(Value::as_u64).is_some_and(|i| {
        let iat = i * SEC;
        iat <= NOW_NS + LEEWAY_NS && iat + MAX_LOGOUT_TOKEN_AGE_NS + LEEWAY_NS >= NOW_NS
    });
    let exp_ok = match c.get("exp") {
        None => true,
        Some(e) => e.as_u64().is_some_and(|e| NOW_NS < e * SEC + LEEWAY_NS),
    };
    let event_ok = c
        .get("events")
        .and_then(|e| e.get(BACKCHANNEL_EVENT))
        .is_some_and(Value::is_object);
    let jti_ok = c
        .get("jti")
        .and_then(Value::as_str)
        .is_some_and(|j| !j.is_empty());
    // A sub (at most 255 bytes) and/or a sid: at least one, non-empty.
    let sub = c.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty());
    let sub_ok = (sub.is_some() || non_empty(c, "sid")) && sub.is_none_or(|s| s.len() <= 255);
    c.get("iss").and_then(Value::as_str) == Some(IDP_ISSUER)
        && aud_ok(c)
        && iat_ok
        && exp_ok
        && event_ok
        && !c.contains_key("nonce")
        && jti_ok
        && sub_ok
}

fn non_empty(c: &Map<String, Value>, name: &str) -> bool {
    c.get(name).and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

fn mutate(token: &str, input: &mut Input) -> String {
    let mut bytes = token.as_bytes().to_vec();
    for _ in 0..input.u8() % 6 {
        let at = usize::from(input.u16()) % (bytes.len() + 1);
        let byte = input.u8();
        match input.u8() % 3 {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn id_token(input: &mut Input) {
    let signer = input.below(IDP_SIGNERS.len());
    let claims = idp_claims(input, false);
    let token = idp_sign(signer, &claims);
    let check = IdTokenCheck {
        issuer: IDP_ISSUER,
        client_id: CLIENT_ID,
        nonce: NONCE,
        now_ns: NOW_NS,
        leeway_ns: LEEWAY_NS,
    };
    let signed = claims.as_object().expect("claims object");
    let original = validate_id_token(&token, idp_keys(), &check);
    assert_eq!(
        original.is_ok(),
        id_token_valid(signed),
        "{claims}: {original:?}"
    );
    let variant = mutate(&token, input);
    if let Ok(got) = validate_id_token(&variant, idp_keys(), &check) {
        assert_eq!(
            &got.claims, signed,
            "a variant was accepted with other claims"
        );
        assert_eq!(
            Some(got.sub.as_str()),
            signed.get("sub").and_then(Value::as_str)
        );
        assert_eq!(
            got.sid.as_deref(),
            signed.get("sid").and_then(Value::as_str)
        );
    }
}

/// A store holding the IdP's discovery and JWKS records, as after a fetch.
fn provider_store() -> (MemoryStore, Provider) {
    let cfg = login_config();
    let login = cfg.login.as_ref().expect("login");
    let store = MemoryStore::new();
    let doc = json!({"issuer": IDP_ISSUER, "authorization_endpoint": URLS[0], "jwks_uri": URLS[1]});
    let record =
        parse_discovery(doc.to_string().as_bytes(), &login.provider, NOW_NS).expect("discovery");
    let prefix = &cfg.shared_data_prefix;
    let set = |key: &str, bytes: Vec<u8>| store.set(key, &bytes, 0).expect("store");
    set(
        &discovery_key(prefix),
        serde_json::to_vec(&record).expect("encode"),
    );
    let keys = filter_jwks(idp_jwks_json().to_string().as_bytes()).expect("jwks");
    let jwks = JwksRecord {
        v: 1,
        fetched_ns: NOW_NS,
        keys,
    };
    set(
        &jwks_key(prefix),
        serde_json::to_vec(&jwks).expect("encode"),
    );
    let mut provider = Provider::new();
    provider.sync(&store, cfg);
    assert!(provider.ready().is_some());
    (store, provider)
}

fn logout_token(input: &mut Input) {
    let cfg = login_config();
    let signer = input.below(IDP_SIGNERS.len());
    let claims = idp_claims(input, true);
    let signed = claims.as_object().expect("claims object").clone();
    let token = idp_sign_logout(signer, &claims);
    let mutated = input.u8().is_multiple_of(3);
    let variant = if mutated {
        mutate(&token, input)
    } else {
        token.clone()
    };
    let method = *input.pick(&["POST", "POST", "POST", "GET", "post"]);
    let encoded = vigil::login::form::encode(&variant);
    let body = match input.u8() % 6 {
        0 => input.bytes().to_vec(),
        1 => format!("logout_token={encoded}&logout_token={encoded}").into_bytes(),
        2 => format!("a=1&logout_token={variant}").into_bytes(),
        _ => format!("logout_token={encoded}").into_bytes(),
    };
    let (store, provider) = provider_store();
    let done = backchannel_logout(cfg, &provider, &store, method, &body, NOW_NS);
    let signed_sub = signed
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match &done.result {
        Ok(logged_out) => {
            assert_eq!(done.reply.status, 200);
            assert_eq!(method, "POST");
            // What was accepted is a token that verifies, with valid claims.
            let form = vigil::login::form::parse(&String::from_utf8_lossy(&body));
            let sent = form
                .iter()
                .find(|(k, _)| k == "logout_token")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let got =
                verify_signature(&sent, idp_keys()).expect("an accepted logout token verifies");
            assert!(logout_token_valid(&got), "accepted {got:?}");
            match logged_out {
                // No session is on file here, so a sid is never known: with a
                // sub, the subject is revoked; with a sid alone, nothing ends.
                LoggedOut::Subject(sub) => {
                    assert_eq!(got.get("sub").and_then(Value::as_str), Some(sub.as_str()));
                    assert!(
                        is_revoked(&store, cfg, sub, NOW_NS),
                        "accepted but not revoked"
                    );
                }
                LoggedOut::Sessions { ended } => {
                    assert_eq!(*ended, 0, "no session was on file");
                    assert!(non_empty(&got, "sid") && !non_empty(&got, "sub"), "{got:?}");
                }
            }
            if sent == variant {
                assert_eq!(&got, &signed, "a variant was accepted with other claims");
            }
            let again = backchannel_logout(cfg, &provider, &store, method, &body, NOW_NS);
            assert!(
                again.result.is_err() && again.reply.status != 200,
                "a replay was accepted"
            );
        }
        Err(_) => {
            assert_ne!(done.reply.status, 200);
            if !signed_sub.is_empty() && signed_sub.len() <= 255 {
                assert!(
                    !is_revoked(&store, cfg, signed_sub, NOW_NS),
                    "refused but revoked"
                );
            }
        }
    }
    // The oracle, for the untouched token in a well-formed request.
    let well_formed =
        !mutated && method == "POST" && body == format!("logout_token={encoded}").into_bytes();
    if well_formed {
        assert_eq!(
            done.result.is_ok(),
            logout_token_valid(&signed),
            "{claims}: {:?}",
            done.result
        );
    }
}

const ALGS: [&str; 10] = [
    "none", "NONE", "HS256", "EdDSA", "Ed25519", "ES256", "RS256", "PS256", "ES384", "",
];
const IDP_KIDS: [Option<&str>; 5] = [
    None,
    Some("ed-idp"),
    Some("es-idp"),
    Some("rs-idp"),
    Some("x"),
];

fn raw_idp_jwt(input: &mut Input) {
    let forged = !input.bool();
    let token = if !forged {
        String::from_utf8_lossy(input.rest()).into_owned()
    } else {
        let alg = *input.pick(&ALGS);
        let mut header = json!({ "alg": alg });
        if let Some(kid) = *input.pick(&IDP_KIDS) {
            header["kid"] = Value::from(kid);
        }
        let claims = json!({"iss": IDP_ISSUER, "sub": "mallory", "aud": CLIENT_ID}).to_string();
        let unsigned = raw_jwt(&header.to_string(), &claims, b"");
        let signing_input = unsigned.trim_end_matches('.').to_string();
        let signature = match input.u8() % 3 {
            0 => Vec::new(),
            1 => hs256_signature(
                &signing_input,
                super::fixtures::RSA_IDP_PUBLIC_PEM.as_bytes(),
            ),
            _ => input.bytes().to_vec(),
        };
        raw_jwt(&header.to_string(), &claims, &signature)
    };
    if verify_signature(&token, idp_keys()).is_ok() {
        assert!(!forged, "a forged token verified: {token}");
        let header = token.split('.').next().unwrap_or_default();
        let header: Value = base64_json(header).expect("verified header");
        let alg = header.get("alg").and_then(Value::as_str);
        assert!(
            matches!(alg, Some("EdDSA" | "ES256" | "RS256")),
            "verified with alg {alg:?}"
        );
    }
}

fn base64_json(part: &str) -> Option<Value> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let json_body = |mode: u8, body: &str, status: u8| {
        Output::new()
            .u8(mode)
            .bool(true)
            .text(body)
            .u8(4)
            .u8(status)
            .finish()
    };
    for (name, body, status) in [
        (
            "token-ok",
            r#"{"access_token":"at-1","refresh_token":"rt-2","expires_in":300}"#,
            0u8,
        ),
        ("token-invalid-grant", r#"{"error":"invalid_grant"}"#, 4),
        (
            "token-invalid-client-5xx",
            r#"{"error":"invalid_client"}"#,
            11,
        ),
        (
            "token-invalid-request",
            r#"{"error":"invalid_request","error_description":"invalid_grant"}"#,
            4,
        ),
        ("token-html-502", "<html>bad gateway</html>", 11),
    ] {
        seeds.push((name.to_string(), json_body(0, body, status)));
    }
    for (name, body, status) in [
        (
            "userinfo-ok",
            r#"{"sub":"alice","email":"a@example.com","groups":["staff"]}"#,
            0u8,
        ),
        ("userinfo-other-sub", r#"{"sub":"bob"}"#, 0),
        ("userinfo-401", "", 5),
        ("userinfo-503", r#"{"sub":"bob"}"#, 12),
    ] {
        let out = Output::new()
            .u8(1)
            .bool(false)
            .bool(true)
            .text(body)
            .u8(4)
            .u8(status);
        seeds.push((name.to_string(), out.finish()));
    }
    let discovery_ok = json!({"issuer": IDP_ISSUER, "authorization_endpoint": URLS[0], "jwks_uri": URLS[1],
        "end_session_endpoint": "https://idp.example.com/logout", "revocation_endpoint": "https://idp.example.com/revoke"});
    seeds.push((
        "discovery-ok".into(),
        Output::new()
            .u8(2)
            .bool(true)
            .text(&discovery_ok.to_string())
            .finish(),
    ));
    let discovery_slash = json!({"issuer": "https://idp.example.com/", "authorization_endpoint": URLS[0], "jwks_uri": URLS[1]});
    seeds.push((
        "discovery-issuer-slash".into(),
        Output::new()
            .u8(2)
            .bool(true)
            .text(&discovery_slash.to_string())
            .finish(),
    ));
    seeds.push((
        "jwks-fixture".into(),
        Output::new()
            .u8(3)
            .bool(true)
            .text(&idp_jwks_json().to_string())
            .finish(),
    ));
    seeds.push((
        "jwks-built".into(),
        Output::new()
            .u8(3)
            .bool(false)
            .u8(3)
            .u8(0)
            .u8(0)
            .u8(1)
            .u8(0)
            .u8(2)
            .u8(1)
            .u8(4)
            .u8(9)
            .u8(0)
            .bool(false)
            .finish(),
    ));
    // ID tokens: valid (both keys), wrong nonce, several audiences without azp, expired.
    for (name, signer, flags) in [
        ("idtoken-ok-ed", 0u8, 1u16 << 7),
        ("idtoken-ok-es", 1, 1 << 7),
        ("idtoken-no-nonce", 0, 0),
        ("idtoken-two-aud-no-azp", 0, (1 << 7) | (1 << 1)),
        ("idtoken-azp", 1, (1 << 7) | (1 << 1) | (1 << 3)),
    ] {
        let out = Output::new()
            .u8(4)
            .u8(signer)
            .u16(flags)
            .u16(100)
            .u16(10)
            .u8(3)
            .u8(0);
        seeds.push((name.into(), out.finish()));
    }
    let flipped = Output::new()
        .u8(4)
        .u8(0)
        .u16(1 << 7)
        .u16(100)
        .u16(10)
        .u8(3)
        .u8(1)
        .u16(30)
        .u8(b'x')
        .u8(0);
    seeds.push(("idtoken-flipped".into(), flipped.finish()));
    // Logout tokens: valid, with nonce, sid only, replay-prone.
    for (name, signer, flags) in [
        ("logout-ok-ed", 0u8, 1u16 << 6),
        ("logout-ok-es", 1, 1 << 6),
        ("logout-with-exp", 0, 0),
        ("logout-nonce", 0, (1 << 6) | (1 << 7)),
        ("logout-sid-only", 0, (1 << 6) | (1 << 9) | (1 << 10)),
        ("logout-no-event", 1, (1 << 6) | (1 << 11)),
    ] {
        let mut out = Output::new().u8(5).u8(signer).u16(flags).u16(100).u16(10);
        if flags & (1 << 9) == 0 {
            out = out.u8(3);
        } else {
            out = out.text("sid-1");
        }
        let out = out.u32(7).u8(1).u8(0).u8(3);
        seeds.push((name.into(), out.finish()));
    }
    for (name, alg, kid, sig) in [
        ("raw-none", 0u8, 1u8, 0u8),
        ("raw-hs256-rsa-pem", 2, 3, 1),
        ("raw-eddsa-empty", 3, 1, 0),
    ] {
        seeds.push((
            name.into(),
            Output::new()
                .u8(6)
                .bool(false)
                .u8(alg)
                .u8(kid)
                .u8(sig)
                .finish(),
        ));
    }
    seeds
}
