use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{
    ES256KeyPair, Ed25519KeyPair, EdDSAPublicKeyLike, HS256Key, MACLike, NoCustomClaims,
    RS256PublicKey,
};
use serde_json::{json, Map, Value};

use super::*;
use crate::config::VerificationKey;
use crate::token::mint::{MintClaims, Signer};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const OTHER_SECRET: &[u8] = b"fedcba9876543210fedcba9876543210";
const SEC: u64 = 1_000_000_000;
const NOW: u64 = 1_700_000_000 * SEC;

fn config(keys: Vec<VerificationKey>, algorithms: &[&str]) -> DownstreamConfig {
    DownstreamConfig {
        issuer: "https://vigil.local".to_string(),
        audience: "app".to_string(),
        algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
        keys,
        leeway: Duration::from_secs(30),
        cookie_name: "vigil_session".to_string(),
        header: "authorization".to_string(),
    }
}

fn hs_key(kid: Option<&str>, secret: &[u8]) -> VerificationKey {
    VerificationKey {
        kid: kid.map(str::to_string),
        material: KeyMaterial::Hs256(secret.to_vec()),
    }
}

fn hs_verifier() -> Verifier {
    Verifier::new(&config(vec![hs_key(None, SECRET)], &["HS256"]))
}

fn mint_claims() -> MintClaims {
    let mut extra = Map::new();
    extra.insert("email".to_string(), json!("a@example.com"));
    extra.insert("groups".to_string(), json!(["x", "y"]));
    // Registered names in `extra` never override the real claims.
    extra.insert("sub".to_string(), json!("intruder"));
    MintClaims {
        iss: "https://vigil.local".to_string(),
        aud: "app".to_string(),
        sub: "user-1".to_string(),
        sid: "7.AAAAAAAAAAAAAAAAAAAAAA".to_string(),
        iat_ns: NOW - 5 * SEC + 123,
        exp_s: NOW / SEC + 3600,
        extra,
    }
}

/// A token with any header and claims, HMAC-signed with `secret`.
fn forge(header: Value, claims: Value, secret: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let tag = HS256Key::from_bytes(secret).authentication_tag(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn good_claims() -> Value {
    json!({
        "iss": "https://vigil.local", "aud": "app", "sub": "user-1",
        "sid": "1.x", "iat_ns": NOW - SEC, "iat": NOW / SEC - 1, "exp": NOW / SEC + 60
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn hs_check(claims: Value, now_ns: u64) -> Result<DownstreamClaims, TokenError> {
    hs_verifier().verify(&forge(json!({"alg": "HS256"}), claims, SECRET), now_ns)
}

#[test]
fn hs256_round_trip_keeps_extra_claims() {
    let signer = Signer::hs256(SECRET, None).unwrap();
    let token = signer.mint(&mint_claims()).unwrap();
    let claims = hs_verifier().verify(&token, NOW).unwrap();
    assert_eq!(claims.sub, "user-1");
    assert_eq!(claims.sid, "7.AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(claims.iat_ns, NOW - 5 * SEC + 123);
    assert_eq!(claims.exp, NOW / SEC + 3600);
    assert_eq!(claims.extra.get("email"), Some(&json!("a@example.com")));
    assert_eq!(claims.extra.get("groups"), Some(&json!(["x", "y"])));
    assert!(!claims.extra.contains_key("sub") && !claims.extra.contains_key("iss"));
    let value = claims.to_value();
    assert_eq!(value["sub"], "user-1");
    assert_eq!(value["email"], "a@example.com");
}

#[test]
fn asymmetric_round_trips() {
    let ed = Ed25519KeyPair::generate();
    let es = ES256KeyPair::generate();
    let ed_signer = Signer::ed25519_pem(&ed.to_pem(), Some("ed".to_string())).unwrap();
    let es_signer = Signer::es256_pem(&es.to_pem().unwrap(), Some("es".to_string())).unwrap();
    assert_eq!((ed_signer.alg(), es_signer.alg()), ("EdDSA", "ES256"));
    let keys = vec![
        VerificationKey {
            kid: Some("ed".to_string()),
            material: KeyMaterial::EdDsa(
                jwt_simple::prelude::Ed25519PublicKey::from_pem(
                    &ed_signer.public_key_pem().unwrap(),
                )
                .unwrap(),
            ),
        },
        VerificationKey {
            kid: Some("es".to_string()),
            material: KeyMaterial::Es256(
                jwt_simple::prelude::ES256PublicKey::from_pem(&es_signer.public_key_pem().unwrap())
                    .unwrap(),
            ),
        },
    ];
    let verifier = Verifier::new(&config(keys, &["EdDSA", "ES256"]));
    for signer in [&ed_signer, &es_signer] {
        let token = signer.mint(&mint_claims()).unwrap();
        assert_eq!(verifier.verify(&token, NOW).unwrap().sub, "user-1");
        // Flip one signature character: the signature no longer verifies.
        let (head, sig) = token.rsplit_once('.').unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let tampered = format!("{head}.{flipped}{}", &sig[1..]);
        assert_eq!(
            verifier.verify(&tampered, NOW),
            Err(TokenError::BadSignature)
        );
    }
    assert!(Signer::hs256(SECRET, None)
        .unwrap()
        .public_key_pem()
        .is_none());
}

#[test]
fn rs256_signature_is_checked() {
    // jwt-simple's RS256 test vector: iss chronogears, aud "test", nbf 300, exp 500, no sid.
    let pem = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAt5N44H1mpb5Wlx/0e7Cd
oKTY8xt+3yMby8BgNdagVNkeCkZ4pRbmQXRWNC7qn//Zaxx9dnzHbzGCul5W0RLf
d3oB3PESwsrQh+oiXVEPTYhvUPQkX0vBfCXJtg/zY2mY1DxKOIiXnZ8PaK/7Sx0a
MmvR//0Yy2a5dIAWCmjPsxn+PcGZOkVUm+D5bH1+ZStcA/68r4ZSPix7Szhgl1Ro
Hb9Q6JSekyZqM0Qfwhgb7srZVXC/9/m5PEx9wMVNYpYJBrXhD5IQm9RzE9oJS8T+
Ai+4/5mNTNXI8f1rrYgffWS4wf9cvsEihrvEg9867B2f98L7ux9Llle7jsHCtwgV
1wIDAQAB
-----END PUBLIC KEY-----";
    let jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjEifQ.eyJuYW1lIjoiQWRhIExvdmVsYWNlIiwiaXNzIjoiaHR0cHM6Ly9jaHJvbm9nZWFycy5jb20vdGVzdCIsImF1ZCI6InRlc3QiLCJhdXRoX3RpbWUiOjEwMCwidXNlcl9pZCI6InVpZDEyMyIsInN1YiI6InNidTEyMyIsImlhdCI6MjAwLCJleHAiOjUwMCwibmJmIjozMDAsImVtYWlsIjoiYWxvdmVsYWNlQGNocm9ub2dlYXJzLmNvbSJ9.eTQnwXrri_uY55fS4IygseBzzbosDM1hP153EZXzNlLH5s29kdlGt2mL_KIjYmQa8hmptt9RwKJHBtw6l4KFHvIcuif86Ix-iI2fCpqNnKyGZfgERV51NXk1THkgWj0GQB6X5cvOoFIdHa9XvgPl_rVmzXSUYDgkhd2t01FOjQeeT6OL2d9KdlQHJqAsvvKVc3wnaYYoSqv2z0IluvK93Tk1dUBU2yWXH34nX3GAVGvIoFoNRiiFfZwFlnz78G0b2fQV7B5g5F8XlNRdD1xmVZXU8X2-xh9LqRpnEakdhecciFHg0u6AyC4c00rlo_HBb69wlXajQ3R4y26Kpxn7HA";
    let mut cfg = config(
        vec![VerificationKey {
            kid: Some("1".to_string()),
            material: KeyMaterial::Rs256(RS256PublicKey::from_pem(pem).unwrap()),
        }],
        &["RS256"],
    );
    cfg.issuer = "https://chronogears.com/test".to_string();
    cfg.audience = "test".to_string();
    let verifier = Verifier::new(&cfg);
    // The signature and every time/iss/aud check pass; only vigil's sid is missing.
    assert_eq!(
        verifier.verify(jwt, 400 * SEC),
        Err(TokenError::MissingSessionId)
    );
    assert_eq!(
        verifier.verify(jwt, 250 * SEC),
        Err(TokenError::NotYetValid)
    );
    assert_eq!(verifier.verify(jwt, 600 * SEC), Err(TokenError::Expired));
    let tampered = jwt.replace("eTQnwXrri", "eTQnwXrrj");
    assert_eq!(
        verifier.verify(&tampered, 400 * SEC),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn alg_none_and_unlisted_algorithms_are_refused() {
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(good_claims().to_string())
    );
    assert_eq!(
        hs_verifier().verify(&none, NOW),
        Err(TokenError::AlgorithmNotAllowed)
    );
    for header in [
        json!({"alg": "None"}),
        json!({"alg": "HS512"}),
        json!({}),
        json!({"alg": 1}),
    ] {
        let token = forge(header.clone(), good_claims(), SECRET);
        assert_eq!(
            hs_verifier().verify(&token, NOW),
            Err(TokenError::AlgorithmNotAllowed),
            "{header}"
        );
    }
}

#[test]
fn jwt_simple_itself_rejects_none_and_cross_family_tokens() {
    // Measured, not assumed: even without vigil's header checks jwt-simple
    // refuses these. vigil checks the header anyway (defence in depth).
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(good_claims().to_string())
    );
    let hs = HS256Key::from_bytes(SECRET);
    assert!(hs.verify_token::<NoCustomClaims>(&none, None).is_err());
    // HMAC keyed with the public key's PEM bytes: the classic confusion attack.
    let ed = Ed25519KeyPair::generate();
    let public_pem = ed.public_key().to_pem();
    let confused = forge(
        json!({"alg": "HS256"}),
        good_claims(),
        public_pem.as_bytes(),
    );
    let err = ed
        .public_key()
        .verify_token::<NoCustomClaims>(&confused, None)
        .unwrap_err();
    assert!(matches!(
        err.downcast_ref::<jwt_simple::JWTError>(),
        Some(jwt_simple::JWTError::AlgorithmMismatch)
    ));
}

#[test]
fn hmac_public_key_confusion_is_refused_by_vigil() {
    let ed = Ed25519KeyPair::generate();
    let public_pem = ed.public_key().to_pem();
    let keys = vec![VerificationKey {
        kid: Some("ed".to_string()),
        material: KeyMaterial::EdDsa(ed.public_key()),
    }];
    // Even with HS256 allowed, the kid selects an EdDSA key.
    let verifier = Verifier::new(&config(keys, &["EdDSA", "HS256"]));
    let confused = forge(
        json!({"alg": "HS256", "kid": "ed"}),
        good_claims(),
        public_pem.as_bytes(),
    );
    assert_eq!(
        verifier.verify(&confused, NOW),
        Err(TokenError::AlgorithmMismatch)
    );
}

#[test]
fn keys_are_selected_by_kid() {
    let keys = vec![hs_key(Some("a"), SECRET), hs_key(Some("b"), OTHER_SECRET)];
    let verifier = Verifier::new(&config(keys, &["HS256"]));
    let header = |kid: &str| json!({"alg": "HS256", "kid": kid});
    let b = forge(header("b"), good_claims(), OTHER_SECRET);
    assert_eq!(verifier.verify(&b, NOW).unwrap().sub, "user-1");
    let a_signed_with_b = forge(header("a"), good_claims(), OTHER_SECRET);
    assert_eq!(
        verifier.verify(&a_signed_with_b, NOW),
        Err(TokenError::BadSignature)
    );
    let unknown = forge(header("c"), good_claims(), SECRET);
    assert_eq!(verifier.verify(&unknown, NOW), Err(TokenError::UnknownKid));
    let no_kid = forge(json!({"alg": "HS256"}), good_claims(), SECRET);
    assert_eq!(verifier.verify(&no_kid, NOW), Err(TokenError::UnknownKid));
    let kid_not_string = forge(json!({"alg": "HS256", "kid": 1}), good_claims(), SECRET);
    assert_eq!(
        verifier.verify(&kid_not_string, NOW),
        Err(TokenError::Malformed)
    );
    // A single key without kid accepts any kid.
    let any = forge(header("whatever"), good_claims(), SECRET);
    assert!(hs_verifier().verify(&any, NOW).is_ok());
}

#[test]
fn expiry_and_not_before_use_the_leeway() {
    let exp = NOW / SEC + 60;
    let claims = good_claims();
    assert!(hs_check(claims.clone(), (exp + 29) * SEC).is_ok());
    assert!(hs_check(claims.clone(), (exp + 30) * SEC - 1).is_ok());
    assert_eq!(
        hs_check(claims.clone(), (exp + 30) * SEC),
        Err(TokenError::Expired)
    );
    let nbf = NOW / SEC + 100;
    let early = with(claims.clone(), "exp", json!(nbf + 100));
    let early = with(early, "nbf", json!(nbf));
    assert_eq!(
        hs_check(early.clone(), (nbf - 31) * SEC),
        Err(TokenError::NotYetValid)
    );
    assert!(hs_check(early.clone(), (nbf - 30) * SEC).is_ok());
    assert_eq!(
        hs_check(with(claims.clone(), "nbf", json!("soon")), NOW),
        Err(TokenError::Malformed)
    );
    assert_eq!(
        hs_check(without(claims.clone(), "exp"), NOW),
        Err(TokenError::MissingExpiry)
    );
    assert_eq!(
        hs_check(with(claims, "exp", json!(1.5)), NOW),
        Err(TokenError::MissingExpiry)
    );
}

#[test]
fn issuer_and_audience_must_match() {
    let claims = good_claims();
    assert_eq!(
        hs_check(with(claims.clone(), "iss", json!("evil")), NOW),
        Err(TokenError::WrongIssuer)
    );
    assert_eq!(
        hs_check(without(claims.clone(), "iss"), NOW),
        Err(TokenError::WrongIssuer)
    );
    assert_eq!(
        hs_check(with(claims.clone(), "aud", json!("other")), NOW),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        hs_check(without(claims.clone(), "aud"), NOW),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        hs_check(with(claims.clone(), "aud", json!(["x", "y"])), NOW),
        Err(TokenError::WrongAudience)
    );
    assert!(hs_check(with(claims, "aud", json!(["x", "app"])), NOW).is_ok());
}

#[test]
fn vigil_claims_are_required() {
    let claims = good_claims();
    assert_eq!(
        hs_check(without(claims.clone(), "sub"), NOW),
        Err(TokenError::MissingSubject)
    );
    assert_eq!(
        hs_check(with(claims.clone(), "sub", json!("")), NOW),
        Err(TokenError::MissingSubject)
    );
    assert_eq!(
        hs_check(without(claims.clone(), "sid"), NOW),
        Err(TokenError::MissingSessionId)
    );
    assert_eq!(
        hs_check(with(claims.clone(), "sid", json!(5)), NOW),
        Err(TokenError::MissingSessionId)
    );
    assert_eq!(
        hs_check(without(claims.clone(), "iat_ns"), NOW),
        Err(TokenError::MissingIssueTime)
    );
    assert_eq!(
        hs_check(with(claims.clone(), "iat_ns", json!(-1)), NOW),
        Err(TokenError::MissingIssueTime)
    );
    assert_eq!(
        hs_check(with(claims, "iat_ns", json!(NOW + 31 * SEC)), NOW),
        Err(TokenError::IssuedInFuture)
    );
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let verifier = hs_verifier();
    let good = forge(json!({"alg": "HS256"}), good_claims(), SECRET);
    let (head, _) = good.split_once('.').unwrap();
    let cases = [
        String::new(),
        ".".to_string(),
        "..".to_string(),
        "a.b".to_string(),
        "a.b.c.d".to_string(),
        "!!!.???.***".to_string(),
        format!("{head}.!!!.sig"),
        format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("not json")),
        format!("{}.e30.sig", URL_SAFE_NO_PAD.encode("[1,2]")),
        format!("{head}.{}.sig", URL_SAFE_NO_PAD.encode("{\"sub\":")),
        format!("{good}="),
        "é.ü.ß".to_string(),
        "\u{0}.\u{0}.\u{0}".to_string(),
    ];
    for token in cases {
        let err = verifier.verify(&token, NOW).unwrap_err();
        assert!(
            matches!(
                err,
                TokenError::Malformed | TokenError::AlgorithmNotAllowed | TokenError::BadSignature
            ),
            "{token:?}: {err:?}"
        );
    }
    let huge = format!("{good}{}", "A".repeat(MAX_TOKEN_LEN));
    assert_eq!(verifier.verify(&huge, NOW), Err(TokenError::TooLarge));
    // Every prefix of a valid token is refused without panicking.
    for end in 0..good.len() {
        if let Some(prefix) = good.get(..end) {
            assert!(verifier.verify(prefix, NOW).is_err());
        }
    }
}

#[test]
fn reasons_are_short_and_never_echo_the_token() {
    let token = forge(
        json!({"alg": "HS256"}),
        with(good_claims(), "iss", json!("evil")),
        SECRET,
    );
    let err = hs_verifier().verify(&token, NOW).unwrap_err();
    assert_eq!(err.reason(), "wrong issuer");
    assert_eq!(err.to_string(), "wrong issuer");
    assert!(!format!("{err:?}").contains(&token));
}
