//! The inline check: every request with a bad, missing, revoked or orphaned
//! token gets a precise 401 and causes no IdP traffic; a good one passes with
//! identity headers and spoofed copies stripped.

use host_sim::{Outcome, Request};
use vigil_tests::on_both_profiles;
use serde_json::json;
use vigil_tests::fixture::{mint_with, user, Fixture, SECOND_NS};
use vigil_tests::{AUDIENCE, HS_SECRET, ISSUER};

fn assert_invalid_token(outcome: &Outcome, reason: &str) {
    let Outcome::LocalReply(reply) = outcome else { panic!("expected a local 401 ({reason}), got {outcome:?}") };
    assert_eq!(reply.status, 401, "{reason}: {}", reply.body_str());
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{reason}: challenge {challenge:?}");
    let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON body");
    assert!(body["error"].is_string(), "{reason}: body {body}");
}

on_both_profiles! {
    fn fresh_session_passes_with_identity_headers_and_no_idp_traffic(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        let login = f.login(user("alice"));
        let s = f.sim.send(
            2,
            Request::get("/api")
                .header("authorization", format!("Bearer {}", login.token))
                .header("x-vigil-sub", "mallory")
                .header("X-Vigil-Email", "mallory@evil.example"),
        );
        let outcome = f.sim.outcome(s);
        assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
        assert_eq!(outcome.upstream_header("x-vigil-sub").as_deref(), Some("alice"));
        assert_eq!(outcome.upstream_header("x-vigil-email").as_deref(), Some("alice@example.com"));
        assert_eq!(outcome.upstream_header("x-vigil-groups").as_deref(), Some("staff,dev"));
        // vigil's own credential stays at the proxy.
        assert_eq!(outcome.upstream_header("authorization"), None);
        assert_eq!(f.idp_callouts().len(), 0);
        assert_eq!(f.sim.metric("vigil.revalidation.skipped"), Some(1));
    }
}

on_both_profiles! {
    fn the_session_cookie_works_like_a_bearer_token(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        let login = f.login(user("alice"));
        let s = f.sim.send(0, Request::get("/").header("cookie", format!("theme=dark; vigil_session={}; x=1", login.token)));
        assert!(matches!(f.sim.outcome(s), Outcome::Forwarded { .. }), "{:?}", f.sim.outcome(s));
        // The upstream keeps its own cookies and never sees vigil's.
        assert_eq!(f.sim.outcome(s).upstream_header("cookie").as_deref(), Some("theme=dark; x=1"));
        let s = f.sim.send(1, Request::get("/").header("cookie", format!("vigil_session={}", login.token)));
        assert!(matches!(f.sim.outcome(s), Outcome::Forwarded { .. }), "{:?}", f.sim.outcome(s));
        assert_eq!(f.sim.outcome(s).upstream_header("cookie"), None);
    }
}

on_both_profiles! {
    fn an_identity_header_spoofed_twice_never_reaches_the_upstream(profile: Profile) {
        // ngx_wasm_module can neither remove nor blank both copies (one stays hidden and nginx still sends
        // it, real nginx confirms): vigil refuses such a request, on every proxy.
        let mut f = Fixture::on(profile, json!({ "session_headers": { "validated_at": VALIDATED_AT } }));
        let login = f.login(user("alice"));
        let bearer = format!("Bearer {}", login.token);
        let twice = [
            Request::get("/api").header("authorization", &bearer).header("x-vigil-sub", "mallory").header("X-Vigil-Sub", "eve"),
            Request::get("/api").header("authorization", &bearer).header("x-vigil-sub", "mallory").header("x_vigil_sub", "eve"),
            spoofing_twice(&login.token),
        ];
        for request in twice {
            let s = f.sim.send(0, request);
            let outcome = f.sim.outcome(s);
            assert_eq!(outcome.status(), Some(400), "{outcome:?}");
            assert!(outcome.upstream_request().is_none());
        }
    }
}

on_both_profiles! {
    fn spoofed_identity_headers_are_stripped_even_when_the_request_is_rejected_later(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        let s = f.sim.send(0, Request::get("/").header("x-vigil-sub", "admin"));
        assert_invalid_token(&f.sim.outcome(s), "no token");
    }
}

const VALIDATED_AT: &str = "x-vigil-validated-at";
const REVALIDATE_AT: &str = "x-vigil-revalidate-at";

fn session_headers() -> serde_json::Value {
    json!({ "session_headers": { "validated_at": VALIDATED_AT, "revalidate_at": REVALIDATE_AT } })
}

/// The request as a client trying to spoof the session headers sends it.
fn spoofing(token: &str) -> Request {
    Request::get("/api")
        .header("authorization", format!("Bearer {token}"))
        .header("X-Vigil-Validated-At", "9999999999")
        .header(REVALIDATE_AT, "9999999999")
}

/// The same with a second copy of the validated-at header (vigil refuses that when it sets the header).
fn spoofing_twice(token: &str) -> Request {
    spoofing(token).header(VALIDATED_AT, "1")
}

on_both_profiles! {
    fn session_headers_carry_the_login_time_and_the_next_revalidation_in_unix_seconds(profile: Profile) {
        let mut f = Fixture::on(profile, session_headers());
        let login_s = f.now_ns() / SECOND_NS;
        let login = f.login(user("alice"));
        f.advance(std::time::Duration::from_secs(5));
        let s = f.sim.send(1, spoofing(&login.token));
        let outcome = f.sim.outcome(s);
        let upstream = outcome.upstream_request().unwrap_or_else(|| panic!("not forwarded: {outcome:?}"));
        // One value each, vigil's: the login, and one revalidate_interval (60 s) later.
        assert_eq!(upstream.header_values(VALIDATED_AT), [login_s.to_string()]);
        assert_eq!(upstream.header_values(REVALIDATE_AT), [(login_s + 60).to_string()]);
        assert_eq!(outcome.upstream_header("x-vigil-sub").as_deref(), Some("alice"), "identity headers still sent");
        assert_eq!(f.idp_callouts().len(), 0);
    }
}

on_both_profiles! {
    fn spoofed_session_headers_are_stripped_on_every_path(profile: Profile) {
        // Rejected: no token (the copies are removed before the token is read).
        let mut f = Fixture::on(profile, session_headers());
        let s = f.sim.send(0, Request::get("/").header(VALIDATED_AT, "1").header(REVALIDATE_AT, "2"));
        assert_invalid_token(&f.sim.outcome(s), "no token");
        // Revalidation disabled: revalidate_at is never set, so a client's copy
        // would reach the upstream if it were not stripped first.
        let mut f = Fixture::on(profile, vigil_tests::merge(session_headers(), json!({ "revalidate_interval": "0" })));
        let login_s = f.now_ns() / SECOND_NS;
        let login = f.login(user("alice"));
        let s = f.sim.send(2, spoofing(&login.token));
        let outcome = f.sim.outcome(s);
        let upstream = outcome.upstream_request().unwrap_or_else(|| panic!("not forwarded: {outcome:?}"));
        assert_eq!(upstream.header_values(VALIDATED_AT), [login_s.to_string()]);
        assert!(upstream.header_values(REVALIDATE_AT).is_empty(), "{upstream:?}");
        // Only validated_at configured: the other name is an ordinary header.
        let mut f = Fixture::on(profile, json!({ "session_headers": { "validated_at": VALIDATED_AT } }));
        let login = f.login(user("alice"));
        let s = f.sim.send(3, spoofing(&login.token));
        let upstream = f.sim.outcome(s).upstream_request().cloned().expect("forwarded");
        assert_eq!(upstream.header_values(VALIDATED_AT).len(), 1);
        assert_eq!(upstream.header_values(REVALIDATE_AT), ["9999999999"]);
    }
}

on_both_profiles! {
    fn without_session_headers_nothing_changes(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        let login = f.login(user("alice"));
        let s = f.sim.send(0, spoofing_twice(&login.token));
        let upstream = f.sim.outcome(s).upstream_request().cloned().expect("forwarded");
        // Not vigil's headers in this configuration: passed on as sent.
        assert_eq!(upstream.header_values(VALIDATED_AT), ["9999999999", "1"]);
        assert_eq!(upstream.header_values(REVALIDATE_AT), ["9999999999"]);
    }
}

on_both_profiles! {
    fn bad_tokens_get_401_invalid_token_and_no_idp_call(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        let login = f.login(user("alice"));
        let now = f.now_ns();
        let now_s = now / SECOND_NS;
        let other_secret = b"another-hs256-secret-that-is-32-bytes-long";
        let cases: Vec<(&str, String)> = vec![
            ("garbage", "not.a.jwt".to_string()),
            ("empty", String::new()),
            ("three dots", "a.b.c.d".to_string()),
            ("expired", mint_with(HS_SECRET, Some("k1"), ISSUER, AUDIENCE, "alice", &login.sid, now - 7200 * SECOND_NS, now_s - 3600)),
            ("wrong issuer", mint_with(HS_SECRET, Some("k1"), "https://evil.test", AUDIENCE, "alice", &login.sid, now, now_s + 60)),
            ("wrong audience", mint_with(HS_SECRET, Some("k1"), ISSUER, "other-app", "alice", &login.sid, now, now_s + 60)),
            ("wrong key", mint_with(other_secret, Some("k1"), ISSUER, AUDIENCE, "alice", &login.sid, now, now_s + 60)),
            ("unknown kid", mint_with(HS_SECRET, Some("k9"), ISSUER, AUDIENCE, "alice", &login.sid, now, now_s + 60)),
            ("alg none", alg_none_token(&login.sid, now_s)),
            ("tampered payload", tamper(&login.token)),
            ("huge", "a".repeat(20_000)),
        ];
        for (what, token) in cases {
            let outcome = f.get_outcome(1, &token);
            assert_invalid_token(&outcome, what);
        }
        assert_eq!(f.idp_callouts().len(), 0, "an invalid token must never cause IdP traffic");
        assert!(f.sim.traps().is_empty(), "{:?}", f.sim.traps());
        assert!(f.sim.metric("vigil.token_invalid").unwrap_or(0) >= 11);
    }
}

on_both_profiles! {
    fn malformed_authorization_headers_never_trap(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        let weird = ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Bearer \u{e9}t\u{e9}.\u{fffd}", "bearer a.b.c", "Bearer a b c"];
        for value in weird {
            let s = f.sim.send(0, Request::get("/").header("authorization", value));
            let outcome = f.sim.outcome(s);
            let status = outcome.status().unwrap_or(0);
            assert!(status == 401 || status == 400, "{value:?} -> {outcome:?}");
        }
        let s = f.sim.send(0, Request::get("/").header("cookie", "\u{e9}=\u{fffd}; vigil_session=\u{e9}"));
        assert_eq!(f.sim.outcome(s).status(), Some(401));
        assert!(f.sim.traps().is_empty(), "{:?}", f.sim.traps());
    }
}

on_both_profiles! {
    fn no_session_on_file_is_401(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        let now = f.now_ns();
        let token = f.mint("bob", "17.AAAAAAAAAAAAAAAAAAAAAA", now);
        let outcome = f.get_outcome(0, &token);
        assert_eq!(outcome.status(), Some(401), "{outcome:?}");
        assert_eq!(f.idp_callouts().len(), 0);
        assert_eq!(f.sim.metric("vigil.no_session"), Some(1));
    }
}

on_both_profiles! {
    fn a_corrupt_session_record_is_treated_as_absent(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        let login = f.login(user("alice"));
        let key = vigil::session::session_key(&f.cfg.shared_data_prefix, login.slot);
        for junk in [&b"{not json"[..], &b""[..], &br#"{"v":99}"#[..], &[0xff, 0x00, 0x13][..]] {
            f.sim.shared_data().set(&key, junk);
            let outcome = f.get_outcome(3, &login.token);
            assert_eq!(outcome.status(), Some(401), "{outcome:?}");
        }
        assert!(f.sim.traps().is_empty());
    }
}

fn alg_none_token(sid: &str, now_s: u64) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "sid": sid, "iat": now_s, "exp": now_s + 60, "iat_ns": now_s * SECOND_NS});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

fn tamper(token: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("admin");
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2])
}
