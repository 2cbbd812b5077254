//! Periodic revalidation against a scripted IdP: every row of the
//! classification table, both failure policies, the timeout, the staleness
//! bound, refresh-token rotation and the rotation race guard.

use host_sim::{Outcome, Profile, Request};
use vigil_tests::on_both_profiles;
use serde_json::json;
use std::time::Duration;
use vigil_tests::fixture::{user, Fixture, Login, Options, SECOND_NS};
use vigil_tests::idp::{Fault, TOKEN_PATH, USERINFO_PATH};

const INTERVAL: Duration = Duration::from_secs(61);

fn allow(profile: Profile) -> Fixture {
    Fixture::on(profile, json!({ "on_failure": "allow" }))
}

fn deny(profile: Profile) -> Fixture {
    Fixture::on(profile, json!({ "on_failure": "deny" }))
}

/// Send one request for a due session and let the revalidation finish.
fn due_request(f: &mut Fixture, login: &Login, vm: usize) -> Outcome {
    let s = f.get(vm, &login.token);
    f.advance(Duration::from_secs(11));
    f.sim.outcome(s)
}

fn assert_passed(outcome: &Outcome) {
    assert!(matches!(outcome, Outcome::Forwarded { .. }), "expected the request to pass, got {outcome:?}");
}

fn assert_401(outcome: &Outcome) {
    assert_eq!(outcome.status(), Some(401), "expected 401, got {outcome:?}");
}

/// After a fatal answer: the subject is revoked on every VM and the session
/// is gone, so even a request that would not revalidate is rejected.
fn assert_revoked_everywhere(f: &mut Fixture, login: &Login) {
    for vm in 0..4 {
        assert_401(&f.get_outcome(vm, &login.token));
    }
    assert!(f.session(login).is_none_or(|s| s.state == vigil::session::SessionState::Dead));
}

on_both_profiles! {
    fn a_due_session_revalidates_once_then_is_fresh_again(profile: Profile) {
        let mut f = allow(profile);
        let login = f.login(user("alice"));
        f.advance(INTERVAL);
        let s = f.get(0, &login.token);
        assert!(f.sim.outcome(s).is_paused(), "a due session pauses the request");
        f.advance(Duration::from_millis(100));
        assert_passed(&f.sim.outcome(s));
        assert_eq!(f.idp.userinfo_calls(), 1);
        assert_eq!(f.idp.refresh_calls(), 0, "access token still valid: no refresh");
        let before = f.idp_callouts().len();
        assert_passed(&f.get_outcome(1, &login.token));
        assert_eq!(f.idp_callouts().len(), before, "fresh again: no IdP traffic");
        assert_eq!(f.sim.metric("vigil.revalidation.succeeded"), Some(1));
        let userinfo = f.idp_callouts().iter().find(|c| c.path() == USERINFO_PATH).cloned().unwrap();
        assert_eq!(userinfo.method(), "GET");
        assert_eq!(userinfo.header(":authority"), Some("idp.test"));
        assert!(userinfo.header("authorization").unwrap_or_default().starts_with("Bearer at-"));
    }
}

/// `(validated_at, revalidate_at)` as the upstream received them (one value each).
fn session_header_values(outcome: &Outcome) -> (String, String) {
    let upstream = outcome.upstream_request().unwrap_or_else(|| panic!("not forwarded: {outcome:?}"));
    let one = |name: &str| match upstream.header_values(name)[..] {
        [value] => value.to_string(),
        ref other => panic!("{name}: {other:?}"),
    };
    (one("x-vigil-validated-at"), one("x-vigil-revalidate-at"))
}

on_both_profiles! {
    fn session_headers_carry_the_new_validation_time_after_a_revalidation(profile: Profile) {
        let mut f = Fixture::on(profile, json!({
            "on_failure": "allow",
            "session_headers": { "validated_at": "x-vigil-validated-at", "revalidate_at": "x-vigil-revalidate-at" }
        }));
        let login_s = f.now_ns() / SECOND_NS;
        let login = f.login(user("alice"));
        let spoofed = |login: &Login| {
            Request::get("/api")
                .header("authorization", format!("Bearer {}", login.token))
                .header("x-vigil-validated-at", "9999999999")
                .header("x-vigil-revalidate-at", "9999999999")
        };
        let s = f.sim.send(3, spoofed(&login));
        let first = session_header_values(&f.sim.outcome(s));
        assert_eq!(first, (login_s.to_string(), (login_s + 60).to_string()));
        // Due: the leader (VM 0) and a follower on another VM (VM 1) wait for
        // the same revalidation; both resume with the new validation time.
        f.advance(INTERVAL);
        let leader = f.sim.send(0, spoofed(&login));
        let follower = f.sim.send(1, spoofed(&login));
        assert!(f.sim.outcome(leader).is_paused() && f.sim.outcome(follower).is_paused());
        f.advance(Duration::from_millis(100));
        assert_eq!(f.idp.userinfo_calls(), 1);
        let validated_ns = f.session(&login).unwrap().validated_ns;
        assert!(validated_ns >= (login_s + 61) * SECOND_NS, "revalidated now, not at login");
        let validated_s = validated_ns / SECOND_NS;
        let expected = (validated_s.to_string(), (validated_ns / SECOND_NS + 60).to_string());
        for (who, s) in [("leader", leader), ("follower", follower)] {
            assert_eq!(session_header_values(&f.sim.outcome(s)), expected, "{who}");
        }
        // Fresh again: the same values without IdP traffic.
        f.advance(Duration::from_secs(30));
        let s = f.sim.send(2, spoofed(&login));
        assert_eq!(session_header_values(&f.sim.outcome(s)), expected);
        // A non-fatal failure under allow: the last success stays, and the next
        // attempt is one interval after the failure.
        f.advance(INTERVAL);
        f.idp.inject(USERINFO_PATH, Fault::Status(503, ""), 1);
        let s = f.sim.send(2, spoofed(&login));
        f.advance(Duration::from_millis(100));
        let outcome = f.sim.outcome(s);
        assert_eq!(f.sim.metric("vigil.revalidation.nonfatal_allowed"), Some(1), "{outcome:?}");
        let failed_ns = f.session(&login).unwrap().failure.expect("failure recorded").at_ns;
        assert_eq!(session_header_values(&outcome), (validated_s.to_string(), (failed_ns / SECOND_NS + 60).to_string()));
    }
}

on_both_profiles! {
    fn an_expiring_access_token_is_refreshed_and_the_rotated_refresh_token_stored(profile: Profile) {
        let mut f = allow(profile);
        f.idp.set_access_ttl(20);
        let login = f.login(user("alice"));
        let first_rt = f.session(&login).unwrap().refresh_token.unwrap();
        f.advance(INTERVAL);
        assert_passed(&due_request(&mut f, &login, 0));
        assert_eq!(f.idp.refresh_calls(), 1);
        assert_eq!(f.idp.userinfo_calls(), 1);
        let stored = f.session(&login).unwrap();
        let second_rt = stored.refresh_token.clone().unwrap();
        assert_ne!(first_rt, second_rt, "the rotated refresh token is stored");
        // The next revalidation presents the rotated token: no reuse, user stays in.
        f.advance(INTERVAL);
        assert_passed(&due_request(&mut f, &login, 1));
        assert_eq!(f.idp.refresh_calls(), 2);
        assert_eq!(f.idp.reuse_detected(), 0);
        let refresh = f.idp_callouts().iter().find(|c| c.path() == TOKEN_PATH).cloned().unwrap();
        assert_eq!(refresh.method(), "POST");
        assert_eq!(refresh.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert!(refresh.header("authorization").unwrap_or_default().starts_with("Basic "), "client_secret_basic by default");
        assert_eq!(f.sim.metric("vigil.revalidation.refresh"), Some(2));
    }
}

on_both_profiles! {
    fn client_secret_post_sends_the_credentials_in_the_form(profile: Profile) {
        let mut f = Fixture::on(profile, json!({ "idp": { "client_auth": "client_secret_post" } }));
        f.idp.set_access_ttl(20);
        let login = f.login(user("alice"));
        f.advance(INTERVAL);
        assert_passed(&due_request(&mut f, &login, 0));
        let refresh = f.idp_callouts().iter().find(|c| c.path() == TOKEN_PATH).cloned().unwrap();
        assert!(refresh.header("authorization").is_none());
        let body = String::from_utf8_lossy(&refresh.body).to_string();
        assert!(body.contains("client_id=vigil-test") && body.contains("client_secret="), "{body}");
    }
}

// ---- fatal rows -----------------------------------------------------------

on_both_profiles! {
    fn deprovisioned_user_invalid_grant_on_refresh_is_fatal(profile: Profile) {
        let mut f = allow(profile);
        f.idp.set_access_ttl(20);
        let login = f.login(user("alice"));
        f.idp.deprovision("alice");
        f.advance(INTERVAL);
        assert_401(&due_request(&mut f, &login, 0));
        assert_revoked_everywhere(&mut f, &login);
        assert_eq!(f.sim.metric("vigil.revalidation.fatal"), Some(1));
        assert_eq!(f.sim.metric("vigil.revocations"), Some(1));
    }
}

on_both_profiles! {
    fn invalid_client_is_fatal(profile: Profile) {
        let mut f = allow(profile);
        f.idp.set_access_ttl(20);
        let login = f.login(user("alice"));
        f.idp.inject(TOKEN_PATH, Fault::Status(401, r#"{"error":"invalid_client"}"#), 1);
        f.advance(INTERVAL);
        assert_401(&due_request(&mut f, &login, 0));
        assert_revoked_everywhere(&mut f, &login);
    }
}

on_both_profiles! {
    fn userinfo_401_and_403_are_fatal(profile: Profile) {
        for status in [401u16, 403] {
            let mut f = allow(profile);
            let login = f.login(user("alice"));
            f.idp.inject(USERINFO_PATH, Fault::Status(status, r#"{"error":"invalid_token"}"#), 1);
            f.advance(INTERVAL);
            assert_401(&due_request(&mut f, &login, 0));
            assert_revoked_everywhere(&mut f, &login);
        }
    }
}

on_both_profiles! {
    fn userinfo_for_another_subject_is_fatal(profile: Profile) {
        let mut f = allow(profile);
        let login = f.login(user("alice"));
        f.idp.set_claims("alice", json!({ "sub": "mallory", "email": "m@example.com" }));
        f.advance(INTERVAL);
        assert_401(&due_request(&mut f, &login, 0));
        assert_revoked_everywhere(&mut f, &login);
    }
}

on_both_profiles! {
    fn a_removed_group_is_fatal(profile: Profile) {
        let mut f = Fixture::on(profile, json!({ "rules": { "required_groups": ["staff"] } }));
        let login = f.login(user("alice"));
        assert_passed(&f.get_outcome(0, &login.token));
        f.idp.set_claims("alice", json!({ "sub": "alice", "email": "alice@example.com", "groups": ["dev"] }));
        f.advance(INTERVAL);
        assert_401(&due_request(&mut f, &login, 1));
        assert_revoked_everywhere(&mut f, &login);
    }
}

on_both_profiles! {
    fn expired_access_token_without_refresh_token_is_fatal_without_calling_the_idp(profile: Profile) {
        let mut f = allow(profile);
        f.idp.add_user(user("carol"));
        let now = f.now_ns();
        let login = f.seed_session("carol", "at-unrefreshable", now + 10 * SECOND_NS, None, Some(user("carol")));
        f.advance(INTERVAL);
        assert_401(&due_request(&mut f, &login, 0));
        assert_eq!(f.idp_callouts().len(), 0);
    }
}

// ---- non-fatal rows ---------------------------------------------------------

fn non_fatal_faults() -> Vec<(&'static str, &'static str, Fault)> {
    vec![
        ("userinfo 500", USERINFO_PATH, Fault::Status(500, "oops")),
        ("userinfo 503", USERINFO_PATH, Fault::Status(503, "")),
        ("userinfo reset", USERINFO_PATH, Fault::Reset),
        ("userinfo connect failure", USERINFO_PATH, Fault::ConnectFailure),
        ("userinfo undecodable", USERINFO_PATH, Fault::Status(200, "<html>not json")),
        ("userinfo other 4xx", USERINFO_PATH, Fault::Status(404, "")),
        ("refresh invalid_request", TOKEN_PATH, Fault::Status(400, r#"{"error":"invalid_request"}"#)),
        ("refresh 502", TOKEN_PATH, Fault::Status(502, "")),
        ("refresh undecodable", TOKEN_PATH, Fault::Status(200, "{\"access_token\":")),
        ("refresh hang", TOKEN_PATH, Fault::Hang),
    ]
}

on_both_profiles! {
    fn non_fatal_answers_pass_under_allow_with_a_warning_and_keep_the_session(profile: Profile) {
        for (what, path, fault) in non_fatal_faults() {
            let mut f = allow(profile);
            f.idp.set_access_ttl(20);
            let login = f.login(user("alice"));
            f.idp.inject(path, fault, 1);
            f.advance(INTERVAL);
            let outcome = due_request(&mut f, &login, 0);
            assert!(matches!(outcome, Outcome::Forwarded { .. }), "{what}: {outcome:?}");
            assert_eq!(f.sim.metric("vigil.revalidation.nonfatal_allowed"), Some(1), "{what}");
            assert!(!f.sim.logs_containing("non-fatal").is_empty(), "{what}: a warning is logged");
            let session = f.session(&login).expect("session kept");
            assert_eq!(session.state, vigil::session::SessionState::Live, "{what}");
            // Retried on the next request one interval after the failed attempt
            // ended (a hung refresh ends one timeout after the deadline: its late
            // answer would still be stored); the fault is gone.
            f.advance(INTERVAL + Duration::from_secs(10));
            assert_passed(&due_request(&mut f, &login, 2));
            assert_eq!(f.sim.metric("vigil.revalidation.succeeded"), Some(1), "{what}");
            assert!(f.sim.traps().is_empty(), "{what}: {:?}", f.sim.traps());
        }
    }
}

on_both_profiles! {
    fn non_fatal_answers_are_rejected_under_deny(profile: Profile) {
        for (what, path, fault) in non_fatal_faults() {
            let mut f = deny(profile);
            f.idp.set_access_ttl(20);
            let login = f.login(user("alice"));
            f.idp.inject(path, fault, 1);
            f.advance(INTERVAL);
            let outcome = due_request(&mut f, &login, 0);
            assert_eq!(outcome.status(), Some(401), "{what}: {outcome:?}");
            assert_eq!(f.sim.metric("vigil.revalidation.nonfatal_denied"), Some(1), "{what}");
        }
    }
}

on_both_profiles! {
    fn a_hanging_idp_is_answered_exactly_at_the_timeout(profile: Profile) {
        for (policy, expect_pass) in [("allow", true), ("deny", false)] {
            let mut f = Fixture::on(profile, json!({ "on_failure": policy, "revalidate_timeout": "2s" }));
            let login = f.login(user("alice"));
            f.idp.inject(USERINFO_PATH, Fault::Hang, 1);
            f.advance(INTERVAL);
            let s = f.get(0, &login.token);
            f.advance(Duration::from_millis(1900));
            assert!(f.sim.outcome(s).is_paused(), "{policy}: still waiting before the deadline");
            f.advance(Duration::from_millis(200));
            let outcome = f.sim.outcome(s);
            assert_eq!(matches!(outcome, Outcome::Forwarded { .. }), expect_pass, "{policy}: {outcome:?}");
            assert_eq!(f.sim.metric("vigil.revalidation.timeout"), Some(1), "{policy}");
        }
    }
}

on_both_profiles! {
    fn the_whole_revalidation_shares_one_timeout_budget(profile: Profile) {
        // Refresh takes 1.5 s of a 2 s budget; userinfo then hangs: the request is
        // answered at 2 s, not 1.5 s + 2 s.
        let mut f = Fixture::on(profile, json!({ "on_failure": "deny", "revalidate_timeout": "2s" }));
        f.idp.set_access_ttl(20);
        let login = f.login(user("alice"));
        f.idp.inject(TOKEN_PATH, Fault::Delay(Duration::from_millis(1500)), 1);
        f.idp.inject(USERINFO_PATH, Fault::Hang, 1);
        f.advance(INTERVAL);
        let s = f.get(0, &login.token);
        f.advance(Duration::from_millis(1950));
        assert!(f.sim.outcome(s).is_paused());
        f.advance(Duration::from_millis(100));
        assert_401(&f.sim.outcome(s));
        let userinfo = f.idp_callouts().iter().find(|c| c.path() == USERINFO_PATH).cloned().unwrap();
        let budget = userinfo.timeout.expect("userinfo has a timeout");
        assert!(budget <= Duration::from_millis(500), "userinfo got the remaining budget, not a fresh one: {budget:?}");
    }
}

on_both_profiles! {
    fn max_staleness_bounds_fail_open(profile: Profile) {
        let mut f = Fixture::on(profile, json!({ "on_failure": "allow", "max_staleness": "150s" }));
        let login = f.login(user("alice"));
        f.idp.inject(USERINFO_PATH, Fault::Status(503, ""), 100);
        f.advance(INTERVAL);
        assert_passed(&due_request(&mut f, &login, 0)); // 72 s stale: allowed
        f.advance(INTERVAL);
        assert_passed(&due_request(&mut f, &login, 0)); // 144 s: allowed
        f.advance(INTERVAL);
        assert_401(&due_request(&mut f, &login, 0)); // 216 s: past the bound
    }
}

on_both_profiles! {
    fn rotation_race_invalid_grant_after_another_rotation_is_retried_not_fatal(profile: Profile) {
        let mut f = allow(profile);
        f.idp.set_access_ttl(20);
        let login = f.login(user("alice"));
        // Another worker rotated the refresh token behind this one's back: the
        // stored record now has a newer token than the one that will be sent.
        // Simulate by answering the first refresh with invalid_grant while the
        // record is updated concurrently (the IdP's real state moved on).
        let rotated = f.idp.login("alice");
        f.idp.inject(TOKEN_PATH, Fault::Status(400, r#"{"error":"invalid_grant"}"#), 1);
        let key = vigil::session::session_key(&f.cfg.shared_data_prefix, login.slot);
        let hook_key = key.clone();
        let mut record = f.session(&login).unwrap();
        record.refresh_token = Some(rotated.refresh_token.clone());
        record.access_token = rotated.access_token.clone();
        record.access_expires_ns = f.now_ns() + 3600 * SECOND_NS;
        let bytes = record.encode().unwrap();
        f.advance(INTERVAL);
        let s = f.get(0, &login.token);
        // The refresh is in flight now; the other worker's rotation lands.
        f.sim.shared_data().set(&hook_key, bytes_with_lease(&f, &hook_key, bytes));
        f.advance(Duration::from_secs(1));
        assert_passed(&f.sim.outcome(s));
        assert_eq!(f.sim.metric("vigil.revalidation.fatal").unwrap_or(0), 0, "not treated as a deprovisioning");
    }
}

/// Keep the lease the in-flight revalidation holds when overwriting a record.
fn bytes_with_lease(f: &Fixture, key: &str, bytes: Vec<u8>) -> Vec<u8> {
    let current = f.sim.shared_data().get(key).and_then(|(b, _)| vigil::session::Session::decode(&b));
    let mut next = vigil::session::Session::decode(&bytes).unwrap();
    if let Some(c) = current {
        next.lease = c.lease;
        next.seq = c.seq;
    }
    next.encode().unwrap()
}

on_both_profiles! {
    fn revalidation_disabled_with_interval_zero(profile: Profile) {
        let mut f = Fixture::on(profile, json!({ "revalidate_interval": "0" }));
        let login = f.login(user("alice"));
        f.advance(Duration::from_secs(3000));
        assert_passed(&f.get_outcome(0, &login.token));
        assert_eq!(f.idp_callouts().len(), 0);
    }
}

on_both_profiles! {
    fn relogin_after_revocation_works_in_the_same_instant(profile: Profile) {
        let mut f = allow(profile);
        let login = f.login(user("alice"));
        f.idp.inject(USERINFO_PATH, Fault::Status(401, ""), 1);
        f.advance(INTERVAL);
        assert_401(&due_request(&mut f, &login, 0));
        // Log in again at the very same virtual nanosecond as the revocation.
        let again = f.login(user("alice"));
        let now = f.now_ns();
        let iat = vigil::session::mint_time_ns(&vigil_tests::fixture::SimStore(&f.sim), &f.cfg, "alice", now);
        let token = f.mint("alice", &again.sid, iat);
        assert_passed(&f.get_outcome(1, &token));
        assert_401(&f.get_outcome(1, &login.token));
    }
}

#[test]
fn without_the_nginx_section_vigil_crashes_an_nginx_worker() {
    // vigil's Envoy control flow on nginx: the root answers a paused request through
    // set_effective_context, which ngx_wasm_module ignores, so the resume acts on the
    // root's own (missing) request and the worker dies. The `nginx` section exists for this.
    let envoy_flow = json!({ "nginx": null, "wake_queues": false });
    let mut f = Fixture::with(Options { profile: Profile::Nginx, config_patch: envoy_flow, ..Options::default() });
    let login = f.login(user("alice"));
    f.advance(INTERVAL);
    let s = f.get(0, &login.token);
    f.advance(Duration::from_secs(1));
    let crashes = f.sim.take_host_crashes();
    assert_eq!(crashes.len(), 1, "{}", f.sim.logs_text());
    assert_eq!(crashes[0].function, "proxy_on_http_call_response", "{crashes:?}");
    assert!(crashes[0].message.contains("from the root context"), "{crashes:?}");
    assert_eq!(f.sim.outcome(s), Outcome::Reset);
}

#[test]
fn on_nginx_wake_queues_must_be_off_or_the_vm_traps_at_start() {
    // ngx_wasm_module traps when a filter registers a queue that nginx.conf
    // does not declare with `shm_queue`; vigil's per-VM queues have random
    // names, so the nginx configuration sets `wake_queues: false`.
    let config = vigil_tests::base_config();
    let result = host_sim::Sim::builder(vigil_tests::vigil_wasm())
        .plugin_config(config.to_string())
        .profile(Profile::Nginx)
        .cluster(vigil_tests::IDP_CLUSTER, host_sim::Cluster::scripted(|_| host_sim::CalloutReply::ok(200)))
        .build();
    match result {
        Err(host_sim::SimError::Trap { message, .. }) => assert!(message.contains("could not find queue"), "{message}"),
        Err(other) => panic!("expected a trap naming the queue, got {other}"),
        Ok(_) => panic!("the nginx profile accepted an undeclared queue"),
    }
    let mut off = config.clone();
    off["wake_queues"] = serde_json::json!(false);
    let started = host_sim::Sim::builder(vigil_tests::vigil_wasm())
        .plugin_config(off.to_string())
        .profile(Profile::Nginx)
        .cluster(vigil_tests::IDP_CLUSTER, host_sim::Cluster::scripted(|_| host_sim::CalloutReply::ok(200)))
        .build();
    assert!(started.is_ok(), "{:?}", started.err());
}

on_both_profiles! {
    fn a_refresh_answered_after_the_timeout_is_still_stored_so_the_user_stays_logged_in(profile: Profile) {
        // The IdP rotates the refresh token but answers after the 2 s budget: the
        // waiting request is answered at 2 s (allow: passes with a warning), and
        // the late answer's rotated token is still stored. Dropping it would make
        // the next refresh present a spent token, and the IdP's reuse detection
        // would revoke the grant: a healthy user logged out.
        let mut f = Fixture::on(profile, json!({ "on_failure": "allow", "revalidate_timeout": "2s" }));
        f.idp.set_access_ttl(20);
        let login = f.login(user("alice"));
        f.idp.inject(TOKEN_PATH, Fault::Delay(Duration::from_millis(3000)), 1);
        f.advance(INTERVAL);
        let s = f.get(0, &login.token);
        f.advance(Duration::from_millis(1950));
        assert!(f.sim.outcome(s).is_paused());
        f.advance(Duration::from_millis(100));
        assert_passed(&f.sim.outcome(s));
        assert_eq!(f.sim.metric("vigil.revalidation.timeout"), Some(1));
        // Between the deadline and the late answer no other VM redeems the
        // token: a request arriving then waits for the refresh in flight (within
        // its own timeout) and gets its result.
        let during = f.get(1, &login.token);
        f.advance(Duration::from_millis(400));
        assert!(f.sim.outcome(during).is_paused());
        assert_eq!(f.idp.refresh_calls(), 1, "the held lease kept other VMs from refreshing");
        // nginx: the userinfo call that follows the late refresh waits for the next tick.
        let slack = f.nginx_slack();
        f.advance(Duration::from_millis(600) + slack);
        assert_passed(&f.sim.outcome(during));
        // The next revalidation uses the rotated token.
        f.advance(INTERVAL);
        assert_passed(&due_request(&mut f, &login, 2));
        assert_eq!(f.idp.refresh_calls(), 2);
        assert_eq!(f.idp.reuse_detected(), 0, "a spent refresh token was presented");
        assert_eq!(f.sim.metric("vigil.revalidation.fatal").unwrap_or(0), 0);
    }
}
