use serde_json::{json, Value};

use super::*;
use crate::login::testkeys::TestIdpKeys;

const NOW_S: u64 = 1_800_000_000;

fn check() -> IdTokenCheck<'static> {
    IdTokenCheck {
        issuer: "https://idp.example.com",
        client_id: "vigil",
        nonce: "n-0S6_WzA2Mj",
        now_ns: NOW_S * 1_000_000_000,
        leeway_ns: 30 * 1_000_000_000,
    }
}

fn claims() -> Value {
    json!({
        "iss": "https://idp.example.com",
        "aud": "vigil",
        "sub": "alice",
        "exp": NOW_S + 300,
        "iat": NOW_S - 1,
        "nonce": "n-0S6_WzA2Mj",
        "sid": "idp-session-1",
        "email": "alice@example.com"
    })
}

fn with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims();
    edit(&mut c);
    c
}

#[test]
fn valid_tokens_of_every_supported_algorithm_pass() {
    let idp = TestIdpKeys::new();
    let keys = idp.jwk_set();
    for alg in ["ES256", "EdDSA", "RS256"] {
        let token = idp.sign(alg, &claims());
        let id = validate_id_token(&token, &keys, &check()).unwrap();
        assert_eq!(id.sub, "alice", "{alg}");
        assert_eq!(id.sid.as_deref(), Some("idp-session-1"));
        assert_eq!(id.claims["email"], "alice@example.com");
    }
}

#[test]
fn each_claim_check_refuses() {
    let idp = TestIdpKeys::new();
    let keys = idp.jwk_set();
    let cases: Vec<(Value, &str)> = vec![
        (
            with(|c| c["iss"] = json!("https://idp.example.com/")),
            "issuer",
        ),
        (with(|c| c["aud"] = json!("other")), "audience"),
        (with(|c| c["aud"] = json!(["other", "vigil"])), "azp"),
        (
            with(|c| {
                c["aud"] = json!(["other", "vigil"]);
                c["azp"] = json!("other")
            }),
            "authorized party",
        ),
        (with(|c| c["exp"] = json!(NOW_S - 31)), "expired"),
        (
            with(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "expiry",
        ),
        (with(|c| c["iat"] = json!(NOW_S + 31)), "future"),
        (
            with(|c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
            "issue time",
        ),
        (with(|c| c["nonce"] = json!("other")), "nonce"),
        (
            with(|c| {
                c.as_object_mut().unwrap().remove("nonce");
            }),
            "nonce",
        ),
        (with(|c| c["sub"] = json!("")), "subject"),
        (with(|c| c["sub"] = json!("x".repeat(256))), "subject"),
    ];
    for (claims, word) in cases {
        let token = idp.sign("ES256", &claims);
        match validate_id_token(&token, &keys, &check()) {
            Err(IdTokenError::Invalid(reason)) => {
                assert!(reason.contains(word), "{reason} vs {word}")
            }
            other => panic!("{claims}: {other:?}"),
        }
    }
    let ok = with(|c| {
        c["aud"] = json!(["other", "vigil"]);
        c["azp"] = json!("vigil")
    });
    assert!(validate_id_token(&idp.sign("EdDSA", &ok), &keys, &check()).is_ok());
}

#[test]
fn signatures_and_keys_are_enforced() {
    let idp = TestIdpKeys::new();
    let other = TestIdpKeys::new();
    let keys = idp.jwk_set();
    // Same kid, another key: a forged token.
    let forged = other.sign("ES256", &claims());
    assert_eq!(
        validate_id_token(&forged, &keys, &check()),
        Err(IdTokenError::Invalid("id token signature is invalid"))
    );
    // A kid the JWKS does not have: rotation, refetch.
    let rotated = TestIdpKeys {
        es: jwt_simple::prelude::ES256KeyPair::generate().with_key_id("es2"),
        ..TestIdpKeys::new()
    };
    match validate_id_token(&rotated.sign("ES256", &claims()), &keys, &check()) {
        Err(IdTokenError::UnknownKey { kid }) => assert_eq!(kid.as_deref(), Some("es2")),
        other => panic!("{other:?}"),
    }
    // alg none and HMAC tokens have no key.
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "es1"})),
        b64(&claims())
    );
    assert!(validate_id_token(&none, &keys, &check()).is_err());
    let hs = format!(
        "{}.{}.AAAA",
        b64(&json!({"alg": "HS256", "kid": "es1"})),
        b64(&claims())
    );
    assert!(matches!(
        validate_id_token(&hs, &keys, &check()),
        Err(IdTokenError::UnknownKey { .. })
    ));
    for junk in ["", "a.b", "a.b.c.d", "!.!.!"] {
        assert!(validate_id_token(junk, &keys, &check()).is_err());
    }
}
