use serde_json::{json, Value};

use super::*;
use crate::login::form::serialize;
use crate::login::testkeys::{logged_in, login_config, ready_provider, TestIdpKeys, ISSUER};
use crate::session::is_revoked;
use crate::store::MemoryStore;
use crate::token::Verifier;

const NOW_S: u64 = 1_800_000_000;
const NOW: u64 = NOW_S * 1_000_000_000;

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": "vigil client",
        "iat": NOW_S,
        "exp": NOW_S + 120,
        "jti": "jti-1",
        "sub": "alice",
        "sid": "idp-sid",
        "events": { BACKCHANNEL_EVENT: {} }
    })
}

fn body(token: &str) -> Vec<u8> {
    serialize(&[("logout_token", token)]).into_bytes()
}

#[test]
fn a_valid_logout_token_revokes_the_subject_once() {
    let cfg = login_config();
    let store = MemoryStore::new();
    let idp = TestIdpKeys::new();
    let provider = ready_provider(&cfg, &store, &idp, NOW);
    let (token, _) = logged_in(&cfg, &store, "alice", NOW - 5);
    let claims_of = Verifier::new(&cfg.downstream).verify(&token, NOW).unwrap();
    let logout_token = idp.sign("RS256", &claims());
    let done = backchannel_logout(&cfg, &provider, &store, "POST", &body(&logout_token), NOW);
    assert_eq!(done.result, Ok("alice".to_string()));
    assert_eq!(done.reply.status, 200);
    assert!(is_revoked(&store, &cfg, "alice", claims_of.iat_ns));
    let replay = backchannel_logout(
        &cfg,
        &provider,
        &store,
        "POST",
        &body(&logout_token),
        NOW + 1,
    );
    assert_eq!(
        replay.result,
        Err(LoginError::BadLogoutToken("logout token replayed"))
    );
    assert_eq!(replay.reply.status, 400);
}

#[test]
fn every_check_refuses_with_400() {
    let cfg = login_config();
    let store = MemoryStore::new();
    let idp = TestIdpKeys::new();
    let provider = ready_provider(&cfg, &store, &idp, NOW);
    type Edit = fn(&mut Value);
    let edits: Vec<(Edit, &str)> = vec![
        (|c| c["iss"] = json!("https://evil"), "issuer"),
        (|c| c["aud"] = json!("other"), "audience"),
        (
            |c| {
                c.as_object_mut().unwrap().remove("iat");
            },
            "issue time",
        ),
        (|c| c["iat"] = json!(NOW_S + 60), "issue time"),
        (|c| c["iat"] = json!(NOW_S - 3600), "issue time"),
        (|c| c["exp"] = json!(NOW_S - 60), "expired"),
        (
            |c| {
                c.as_object_mut().unwrap().remove("events");
            },
            "event",
        ),
        (
            |c| c["events"] = json!({"http://schemas.openid.net/event/other": {}}),
            "event",
        ),
        (
            |c| c["events"] = json!({ BACKCHANNEL_EVENT: "yes" }),
            "event",
        ),
        (|c| c["nonce"] = json!("n"), "nonce"),
        (
            |c| {
                c.as_object_mut().unwrap().remove("jti");
            },
            "jti",
        ),
        (
            |c| {
                let o = c.as_object_mut().unwrap();
                o.remove("sub");
                o.remove("sid");
            },
            "neither",
        ),
        (
            |c| {
                c.as_object_mut().unwrap().remove("sub");
            },
            "sid alone",
        ),
    ];
    for (i, (edit, word)) in edits.into_iter().enumerate() {
        let mut c = claims();
        c["jti"] = json!(format!("jti-{i}"));
        edit(&mut c);
        let done = backchannel_logout(
            &cfg,
            &provider,
            &store,
            "POST",
            &body(&idp.sign("ES256", &c)),
            NOW,
        );
        match done.result {
            Err(LoginError::BadLogoutToken(reason)) => {
                assert!(reason.contains(word), "{reason} / {word}")
            }
            other => panic!("{c}: {other:?}"),
        }
        assert_eq!(done.reply.status, 400);
    }
    let forged = TestIdpKeys::new().sign("EdDSA", &claims());
    let done = backchannel_logout(&cfg, &provider, &store, "POST", &body(&forged), NOW);
    assert_eq!(
        done.result,
        Err(LoginError::BadLogoutToken(
            "logout token signature is invalid"
        ))
    );
    for bad_body in [
        &b""[..],
        b"logout_token=",
        b"logout_token=a&logout_token=b",
        b"x=1",
    ] {
        let done = backchannel_logout(&cfg, &provider, &store, "POST", bad_body, NOW);
        assert_eq!(done.reply.status, 400);
    }
    let get = backchannel_logout(&cfg, &provider, &store, "GET", &body("x"), NOW);
    assert_eq!(get.reply.status, 405);
    assert!(!is_revoked(&store, &cfg, "alice", 1));
}

#[test]
fn an_oversized_body_gets_413_json() {
    let reply = body_too_large();
    assert_eq!(reply.status, 413);
    let json: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(json["error"], "invalid_request");
}
