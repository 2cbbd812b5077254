//! Cross-VM coalescing: one IdP round trip per session however many requests
//! arrive on however many workers, so a rotating refresh token is never
//! presented twice (the scripted IdP revokes the grant if it is).

use host_sim::{Outcome, Profile, Request};
use vigil_tests::on_both_profiles;
use serde_json::json;
use std::time::Duration;
use vigil_tests::fixture::{user, Fixture, Options};
use vigil_tests::idp::{Fault, TOKEN_PATH, USERINFO_PATH};

const INTERVAL: Duration = Duration::from_secs(61);
const MS: u64 = 1_000_000;

fn burst(profile: Profile, seed: u64) {
    let mut f = Fixture::with(Options { profile, seed, workers: 4, config_patch: json!({}) });
    f.idp.set_access_ttl(20);
    f.idp.set_latency(Duration::from_millis(40));
    let login = f.login(user("alice"));
    f.advance(INTERVAL);
    let streams: Vec<_> = (0..200).map(|i| f.get(i % 4, &login.token)).collect();
    f.advance(Duration::from_secs(2));
    for (i, s) in streams.iter().enumerate() {
        let outcome = f.sim.outcome(*s);
        assert!(matches!(outcome, Outcome::Forwarded { .. }), "{profile:?} seed {seed}: request {i}: {outcome:?}");
    }
    assert_eq!(f.idp.refresh_calls(), 1, "{profile:?} seed {seed}: exactly one refresh");
    assert_eq!(f.idp.userinfo_calls(), 1, "{profile:?} seed {seed}: exactly one userinfo");
    assert_eq!(f.idp.reuse_detected(), 0);
    assert_eq!(f.sim.metric("vigil.revalidation.started"), Some(1));
    assert_eq!(f.sim.metric("vigil.revalidation.coalesced"), Some(199));
    assert!(f.sim.traps().is_empty(), "{:?}", f.sim.traps());
}

#[test]
fn two_hundred_requests_over_four_envoy_workers_share_one_round_trip() {
    for seed in [1, 2, 3] {
        burst(Profile::Envoy, seed);
    }
}

#[test]
fn two_hundred_requests_over_four_nginx_workers_share_one_round_trip() {
    // nginx delivers no queue notifications: followers learn by tick polling.
    for seed in [1, 2] {
        burst(Profile::Nginx, seed);
    }
}

on_both_profiles! {
    fn followers_never_wait_past_the_timeout(profile: Profile) {
        let mut f = Fixture::on(profile, json!({ "revalidate_timeout": "2s", "on_failure": "deny" }));
        let login = f.login(user("alice"));
        f.idp.inject(USERINFO_PATH, Fault::Hang, 1);
        f.advance(INTERVAL);
        let streams: Vec<_> = (0..20).map(|i| f.get(i % 4, &login.token)).collect();
        f.advance(Duration::from_millis(1900));
        assert!(streams.iter().all(|s| f.sim.outcome(*s).is_paused()));
        f.advance(Duration::from_millis(300));
        for s in &streams {
            assert_eq!(f.sim.outcome(*s).status(), Some(401), "{:?}", f.sim.outcome(*s));
        }
    }
}

on_both_profiles! {
    fn every_waiter_of_a_hanging_refresh_is_answered_at_its_own_deadline_on_every_worker(profile: Profile) {
        // The case measured in real Envoy 1.40 (issue 9): `revalidate_timeout` 2 s, `allow`, 4 workers, a token
        // endpoint that never answers, 20 requests of one due session. Each is answered 2.00-2.05 s after it arrived:
        // at the first tick of its own VM after its own deadline (`poll_interval` 50 ms). The refresh call is given one
        // more timeout (a late answer is still stored), so no result wakes anyone at the deadline; only the ticks do.
        let mut f = Fixture::on(profile, json!({ "on_failure": "allow", "revalidate_timeout": "2s" }));
        f.idp.set_access_ttl(20);
        let login = f.login(user("alice"));
        f.idp.inject(TOKEN_PATH, Fault::Hang, 1);
        f.advance(INTERVAL);
        // Arrivals 3 ms apart, round robin over the workers: every VM has waiters, none shares another's deadline.
        let mut sent = Vec::new();
        for i in 0..20 {
            sent.push((f.get(i % 4, &login.token), f.now_ns()));
            f.advance(Duration::from_millis(3));
        }
        let first = sent[0].1;
        f.sim.advance_to(first + 1_990 * MS);
        assert!(sent.iter().all(|(s, _)| f.sim.outcome(*s).is_paused()), "answered before its deadline");
        let mut answered = vec![None; sent.len()];
        while f.now_ns() < first + 2_200 * MS {
            f.advance(Duration::from_millis(1));
            for (i, (s, _)) in sent.iter().enumerate() {
                if answered[i].is_none() && !f.sim.outcome(*s).is_paused() {
                    answered[i] = Some(f.now_ns());
                }
            }
        }
        for (i, ((s, arrived), at)) in sent.iter().zip(&answered).enumerate() {
            let outcome = f.sim.outcome(*s);
            assert!(matches!(outcome, Outcome::Forwarded { .. }), "request {i} on worker {}: {outcome:?}", i % 4);
            let waited_ms = at.map(|at| (at - arrived) / MS);
            assert!(
                waited_ms.is_some_and(|ms| (2_000..=2_050).contains(&ms)),
                "request {i} on worker {} answered {waited_ms:?} ms after it arrived",
                i % 4
            );
        }
        let refreshes = f.idp_callouts().iter().filter(|c| c.path() == TOKEN_PATH).count();
        assert_eq!(refreshes, 1, "one refresh, still hanging: no takeover, no second round trip");
        assert!(f.sim.traps().is_empty(), "{:?}", f.sim.traps());
    }
}

on_both_profiles! {
    fn followers_whose_client_left_are_skipped(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        f.idp.set_latency(Duration::from_millis(50));
        let login = f.login(user("alice"));
        f.advance(INTERVAL);
        let streams: Vec<_> = (0..8).map(|i| f.get(i % 4, &login.token)).collect();
        for s in streams.iter().step_by(2) {
            f.sim.abandon(*s);
        }
        f.advance(Duration::from_secs(1));
        for s in streams.iter().skip(1).step_by(2) {
            assert!(matches!(f.sim.outcome(*s), Outcome::Forwarded { .. }));
        }
        assert!(f.sim.traps().is_empty(), "{:?}", f.sim.traps());
        assert_eq!(f.idp.userinfo_calls(), 1);
    }
}

on_both_profiles! {
    fn the_leader_leaving_does_not_lose_the_rotated_refresh_token(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        f.idp.set_access_ttl(20);
        f.idp.set_latency(Duration::from_millis(50));
        let login = f.login(user("alice"));
        f.advance(INTERVAL);
        let leader = f.get(0, &login.token);
        f.advance(Duration::from_millis(10));
        f.sim.abandon(leader);
        f.advance(Duration::from_secs(1));
        // The refresh finished on the root context and its result was stored.
        assert_eq!(f.idp.refresh_calls(), 1);
        f.advance(INTERVAL);
        let s = f.get(1, &login.token);
        f.advance(Duration::from_secs(1));
        assert!(matches!(f.sim.outcome(s), Outcome::Forwarded { .. }), "{:?}", f.sim.outcome(s));
        assert_eq!(f.idp.reuse_detected(), 0, "the rotated refresh token was kept");
    }
}

on_both_profiles! {
    fn a_dead_leaders_lease_is_taken_over_after_its_deadline(profile: Profile) {
        let mut f = Fixture::on(profile, json!({ "revalidate_timeout": "2s" }));
        let login = f.login(user("alice"));
        f.advance(INTERVAL);
        // A leader on another proxy-process-local VM that never finishes: write
        // its lease by hand (as if its VM crashed mid-revalidation).
        let key = vigil::session::session_key(&f.cfg.shared_data_prefix, login.slot);
        let mut record = f.session(&login).unwrap();
        record.lease = Some(vigil::session::Lease {
            owner: "deadbeefdeadbeef".into(),
            job: 1,
            deadline_ns: f.now_ns() + 2_000_000_000,
            waiters: vec![],
            hold_ns: 0,
        });
        f.sim.shared_data().set(&key, record.encode().unwrap());
        let s = f.get(3, &login.token);
        f.advance(Duration::from_millis(1500));
        assert!(f.sim.outcome(s).is_paused(), "waits for the live lease");
        assert_eq!(f.idp.userinfo_calls(), 0);
        let later = f.get(2, &login.token);
        f.advance(Duration::from_secs(3));
        assert_eq!(f.idp.userinfo_calls(), 1, "someone took the expired lease over");
        assert!(matches!(f.sim.outcome(later), Outcome::Forwarded { .. }), "{:?}", f.sim.outcome(later));
    }
}

on_both_profiles! {
    fn revocation_is_seen_by_every_vm_on_its_next_request(profile: Profile) {
        let mut f = Fixture::on(profile, json!({}));
        let login = f.login(user("alice"));
        for vm in 0..4 {
            assert!(matches!(f.get_outcome(vm, &login.token), Outcome::Forwarded { .. }));
        }
        f.idp.deprovision("alice");
        f.advance(INTERVAL);
        let s = f.get(0, &login.token);
        f.advance(Duration::from_secs(1));
        assert_eq!(f.sim.outcome(s).status(), Some(401));
        for vm in 0..4 {
            let s = f.sim.send(vm, Request::get("/again").header("authorization", format!("Bearer {}", login.token)));
            assert_eq!(f.sim.outcome(s).status(), Some(401), "vm {vm}");
        }
        assert_eq!(f.idp.userinfo_calls(), 1, "revocation is checked inline, without IdP traffic");
    }
}
