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
    let logout_token = idp.sign_logout("RS256", &claims());
    let done = backchannel_logout(&cfg, &provider, &store, "POST", &body(&logout_token), NOW);
    // The token's sid is not on file (this session has none): every session of the sub ends.
    assert_eq!(done.result, Ok(LoggedOut::Subject("alice".to_string())));
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
            &body(&idp.sign_logout("ES256", &c)),
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
    let forged = TestIdpKeys::new().sign_logout("EdDSA", &claims());
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

fn session_with_idp_sid(cfg: &crate::config::Config, store: &MemoryStore, sub: &str, idp_sid: &str, seed: u64) -> u32 {
    let mut random = crate::revalidation::testing::seq_entropy(seed);
    let new = crate::session::NewSession {
        sub: sub.to_string(),
        access_token: format!("at-{sub}"),
        access_expires_ns: NOW + 300 * 1_000_000_000,
        refresh_token: None,
        expires_ns: NOW + 3600 * 1_000_000_000,
        claims: None,
    };
    let ids = crate::session::LoginIds { id_token: None, idp_sid: Some(idp_sid.to_string()) };
    crate::session::create_login_session(store, cfg, new, ids, &mut random, NOW - 5).unwrap().slot
}

fn state_of(cfg: &crate::config::Config, store: &MemoryStore, slot: u32) -> crate::session::SessionState {
    crate::session::read_session(store, &crate::session::session_key(&cfg.shared_data_prefix, slot)).unwrap().0.state
}

#[test]
fn a_sid_ends_only_the_sessions_of_that_idp_session() {
    use crate::session::SessionState::{Dead, Live};
    let cfg = login_config();
    let store = MemoryStore::new();
    let idp = TestIdpKeys::new();
    let provider = ready_provider(&cfg, &store, &idp, NOW);
    let laptop = session_with_idp_sid(&cfg, &store, "alice", "idp-sid", 1);
    let phone = session_with_idp_sid(&cfg, &store, "alice", "idp-sid-2", 2);
    let bob = session_with_idp_sid(&cfg, &store, "bob", "idp-sid", 3);
    // sub + sid: alice's laptop session only (bob's record with the same sid is another subject's).
    let done = backchannel_logout(&cfg, &provider, &store, "POST", &body(&idp.sign_logout("ES256", &claims())), NOW);
    assert_eq!(done.result, Ok(LoggedOut::Sessions { ended: 1 }));
    assert_eq!(done.reply.status, 200);
    assert_eq!((state_of(&cfg, &store, laptop), state_of(&cfg, &store, phone), state_of(&cfg, &store, bob)), (Dead, Live, Live));
    assert!(!is_revoked(&store, &cfg, "alice", NOW - 5), "no subject-wide revocation");
    // The same IdP session again (a new jti): known, nothing left to end, no revocation.
    let mut again = claims();
    again["jti"] = json!("jti-again");
    let done = backchannel_logout(&cfg, &provider, &store, "POST", &body(&idp.sign_logout("ES256", &again)), NOW);
    assert_eq!(done.result, Ok(LoggedOut::Sessions { ended: 0 }));
    assert!(!is_revoked(&store, &cfg, "alice", NOW - 5));
    // sid alone: every subject's session of that IdP session.
    let mut sid_only = claims();
    sid_only["jti"] = json!("jti-sid-only");
    sid_only["sid"] = json!("idp-sid-2");
    sid_only.as_object_mut().unwrap().remove("sub");
    let done = backchannel_logout(&cfg, &provider, &store, "POST", &body(&idp.sign_logout("EdDSA", &sid_only)), NOW);
    assert_eq!(done.result, Ok(LoggedOut::Sessions { ended: 1 }));
    assert_eq!(state_of(&cfg, &store, phone), Dead);
    assert_eq!(state_of(&cfg, &store, bob), Live);
    // A sid nobody knows, with no sub: nothing to end, 200.
    let mut unknown = sid_only.clone();
    unknown["jti"] = json!("jti-unknown");
    unknown["sid"] = json!("never-seen");
    let done = backchannel_logout(&cfg, &provider, &store, "POST", &body(&idp.sign_logout("EdDSA", &unknown)), NOW);
    assert_eq!((done.result, done.reply.status), (Ok(LoggedOut::Sessions { ended: 0 }), 200));
    assert_eq!(state_of(&cfg, &store, bob), Live);
}

#[test]
fn the_typ_header_must_be_logout_jwt_when_present() {
    let cfg = login_config();
    let store = MemoryStore::new();
    let idp = TestIdpKeys::new();
    let provider = ready_provider(&cfg, &store, &idp, NOW);
    for (i, typ) in [None, Some("JWT"), Some("at+jwt"), Some("secevent+jwt")].into_iter().enumerate() {
        let mut c = claims();
        c["jti"] = json!(format!("typ-{i}"));
        let done = backchannel_logout(&cfg, &provider, &store, "POST", &body(&idp.sign_typed("ES256", typ, &c)), NOW);
        assert_eq!(done.result, Err(LoginError::BadLogoutToken("logout token typ is not logout+jwt")), "{typ:?}");
    }
    // An exp that is not a number, or null: refused too (jwt-simple already
    // rejects such a claim set, so the reason names the signature check).
    for (i, exp) in [json!("soon"), Value::Null].into_iter().enumerate() {
        let mut c = claims();
        c["jti"] = json!(format!("exp-{i}"));
        c["exp"] = exp;
        let done = backchannel_logout(&cfg, &provider, &store, "POST", &body(&idp.sign_logout("ES256", &c)), NOW);
        assert!(matches!(done.result, Err(LoginError::BadLogoutToken(_))), "{:?}", done.result);
        assert_eq!(done.reply.status, 400);
    }
    for (i, typ) in ["logout+jwt", "LOGOUT+JWT", "application/logout+jwt"].into_iter().enumerate() {
        let mut c = claims();
        c["jti"] = json!(format!("ok-{i}"));
        let done = backchannel_logout(&cfg, &provider, &store, "POST", &body(&idp.sign_typed("ES256", Some(typ), &c)), NOW);
        assert!(done.result.is_ok(), "{typ}: {:?}", done.result);
    }
    // No typ at all is allowed (explicit typing is a recommendation to IdPs).
    assert!(typed_as_logout_token(None));
    assert!(!typed_as_logout_token(Some(&json!(1))));
}
