//! Unit tests of the leader's job, admission and follower decisions on one
//! shared MemoryStore.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use serde_json::{json, Value};

use super::testing::{
    header, json_answer, login_alice, seq_random, test_config, ScriptedIdp, SECOND,
};
use super::*;
use crate::config::{ClientAuth, Config, FailurePolicy};
use crate::session::{is_revoked, read_session, session_key, Session, SessionState};
use crate::store::{MemoryStore, SharedStore};

const T0: u64 = 1_000 * SECOND;
const DUE: u64 = T0 + 61 * SECOND;

struct Fixture {
    cfg: Config,
    store: MemoryStore,
    a: VmIdentity,
    b: VmIdentity,
    sid: String,
    slot: u32,
}

fn allow_all(_: &Value) -> Result<(), String> {
    Ok(())
}

impl Fixture {
    fn new(cfg: Config) -> Self {
        Self::with_access_expiry(cfg, T0 + 600 * SECOND)
    }

    fn with_access_expiry(cfg: Config, access_expires_ns: u64) -> Self {
        let store = MemoryStore::new();
        let created = login_alice(&store, &cfg, &mut seq_random(9), access_expires_ns, T0);
        Self {
            cfg,
            store,
            a: VmIdentity {
                uid: "aaaa".into(),
                queue_token: Some(1),
            },
            b: VmIdentity {
                uid: "bbbb".into(),
                queue_token: Some(2),
            },
            sid: created.sid,
            slot: created.slot,
        }
    }

    fn key(&self) -> String {
        session_key("vigil:", self.slot)
    }

    fn record(&self) -> Session {
        read_session(&self.store, &self.key()).unwrap().0
    }

    fn edit(&self, change: impl FnOnce(&mut Session)) {
        let mut record = self.record();
        change(&mut record);
        self.store
            .set(&self.key(), &record.encode().unwrap(), 0)
            .unwrap();
    }

    fn admit(&self, vm: &VmIdentity, now_ns: u64) -> Admission {
        admit(&self.cfg, &self.store, vm, "alice", &self.sid, T0, now_ns)
    }

    fn lead(&self, now_ns: u64) -> LeadTicket {
        match self.admit(&self.a, now_ns) {
            Admission::Lead(ticket) => ticket,
            other => panic!("expected Lead, got {other:?}"),
        }
    }

    fn start(&self, rules: &RuleCheck, now_ns: u64) -> (Job, Step) {
        let ctx = JobContext {
            cfg: &self.cfg,
            vm: &self.a,
            rule_check: rules,
        };
        Job::start(&ctx, self.lead(now_ns), &self.store, now_ns)
    }

    fn answer(&self, job: &mut Job, rules: &RuleCheck, now_ns: u64, answer: IdpAnswer) -> Step {
        let ctx = JobContext {
            cfg: &self.cfg,
            vm: &self.a,
            rule_check: rules,
        };
        job.on_answer(&ctx, &self.store, now_ns, answer)
    }

    fn follower(
        &self,
        vm: &VmIdentity,
        seq_seen: u64,
        deadline_ns: u64,
        now_ns: u64,
    ) -> FollowerDecision {
        follower_decision(
            &self.cfg,
            &self.store,
            vm,
            self.slot,
            &self.nonce(),
            "alice",
            seq_seen,
            deadline_ns,
            now_ns,
        )
    }

    fn nonce(&self) -> String {
        self.sid.split_once('.').unwrap().1.to_owned()
    }
}

fn call(step: Step) -> IdpCall {
    match step {
        Step::Call(call) => call,
        other => panic!("expected a call, got {other:?}"),
    }
}

fn finished(step: Step) -> Finished {
    match step {
        Step::Finished(finished) => finished,
        other => panic!("expected finished, got {other:?}"),
    }
}

#[test]
fn fresh_sessions_pass_without_writing() {
    let f = Fixture::new(test_config());
    let cas = f.store.get(&f.key()).unwrap().1;
    assert_eq!(
        f.admit(&f.a, T0 + 59 * SECOND),
        Admission::Allow {
            claims: Some(json!({"sub": "alice"})),
            times: ValidationTimes {
                validated_ns: T0,
                revalidate_ns: Some(T0 + 60 * SECOND)
            },
            warning: None
        }
    );
    assert_eq!(f.store.get(&f.key()).unwrap().1, cas);
}

#[test]
fn bad_sid_unknown_session_wrong_subject_and_corrupt_record_are_denied() {
    let f = Fixture::new(test_config());
    let deny = |sub: &str, sid: &str| admit(&f.cfg, &f.store, &f.a, sub, sid, T0, DUE);
    let no_session = Admission::Deny(DenyReason::NoSession);
    assert_eq!(deny("alice", "garbage"), no_session);
    assert_eq!(deny("bob", &f.sid), no_session);
    let other_nonce = format!("{}.{}", f.slot, "B".repeat(22));
    assert_eq!(deny("alice", &other_nonce), no_session);
    assert_eq!(f.admit(&f.a, T0 + 3_600 * SECOND), no_session);
    f.store.set(&f.key(), b"{\"v\":1,\"nonce\":", 0).unwrap();
    assert_eq!(f.admit(&f.a, DUE), no_session);
}

#[test]
fn due_session_one_leader_others_follow_and_register_their_queue_once() {
    let f = Fixture::new(test_config());
    let ticket = f.lead(DUE);
    assert_eq!(
        (ticket.job, ticket.deadline_ns, ticket.seq_seen),
        (DUE, DUE + 10 * SECOND, 0)
    );
    let same_vm = f.admit(&f.a, DUE + 1);
    let cas = f.store.get(&f.key()).unwrap().1;
    assert!(matches!(
        same_vm,
        Admission::Follow(FollowTicket { seq_seen: 0, .. })
    ));
    assert_eq!(
        f.store.get(&f.key()).unwrap().1,
        cas,
        "same-VM follower must not write"
    );
    for _ in 0..3 {
        match f.admit(&f.b, DUE + 2) {
            Admission::Follow(t) => assert_eq!(t.deadline_ns, DUE + 2 + 10 * SECOND),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(f.record().lease.unwrap().waiters, vec![2]);
}

#[test]
fn success_without_refresh_records_validation_and_wakes_other_vms() {
    let f = Fixture::new(test_config());
    let (mut job, step) = f.start(&allow_all, DUE);
    let _ = f.admit(&f.b, DUE + 1);
    let userinfo = call(step);
    assert_eq!(userinfo.kind, CallKind::Userinfo);
    assert_eq!(header(&userinfo, ":method"), Some("GET"));
    assert_eq!(header(&userinfo, ":path"), Some("/userinfo"));
    assert_eq!(header(&userinfo, ":authority"), Some("idp.example.com"));
    assert_eq!(header(&userinfo, "authorization"), Some("Bearer at-0"));
    assert_eq!(userinfo.timeout, Duration::from_secs(10));
    let done = finished(f.answer(
        &mut job,
        &allow_all,
        DUE + SECOND,
        json_answer(200, r#"{"sub":"alice","email":"a@x"}"#),
    ));
    assert_eq!(
        (done.outcome, done.wake_queues, done.refreshed),
        (Outcome::Success, vec![2], false)
    );
    let record = f.record();
    assert_eq!(
        (record.validated_ns, record.seq, record.lease),
        (DUE + SECOND, 1, None)
    );
    assert_eq!(record.claims, Some(json!({"sub":"alice","email":"a@x"})));
    assert_eq!(
        f.follower(&f.b, 0, DUE + 11 * SECOND, DUE + 2 * SECOND),
        FollowerDecision::Resume {
            claims: Some(json!({"sub":"alice","email":"a@x"})),
            // The new validation time, and the next one an interval later.
            times: ValidationTimes {
                validated_ns: DUE + SECOND,
                revalidate_ns: Some(DUE + 61 * SECOND)
            },
            warning: None
        }
    );
}

#[test]
fn refresh_with_basic_auth_stores_rotation_before_userinfo() {
    let f = Fixture::with_access_expiry(test_config(), DUE + 10 * SECOND);
    let mut idp = ScriptedIdp::new("alice", "rt-0", "at-0");
    let (mut job, step) = f.start(&allow_all, DUE);
    let refresh = call(step);
    assert_eq!(refresh.kind, CallKind::Refresh);
    assert_eq!(header(&refresh, ":method"), Some("POST"));
    assert_eq!(header(&refresh, ":path"), Some("/token"));
    assert_eq!(
        header(&refresh, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // "vigil client" / "s3cr&t:x", form-encoded then Basic (RFC 6749 §2.3.1).
    let expected = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "vigil+client:s3cr%26t%3Ax",
    );
    assert_eq!(
        header(&refresh, "authorization"),
        Some(format!("Basic {expected}").as_str())
    );
    assert_eq!(refresh.body, b"grant_type=refresh_token&refresh_token=rt-0");
    let debug = format!("{refresh:?}");
    assert!(
        !debug.contains("rt-0") && !debug.contains("Basic"),
        "{debug}"
    );

    let userinfo = call(f.answer(&mut job, &allow_all, DUE + 2 * SECOND, idp.answer(&refresh)));
    let record = f.record();
    assert_eq!(record.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(
        (record.access_token.as_str(), record.access_expires_ns),
        ("at-1", DUE + 302 * SECOND)
    );
    assert_eq!(record.seq, 0, "rotation is stored, the result not yet");
    assert_eq!(header(&userinfo, "authorization"), Some("Bearer at-1"));
    assert_eq!(userinfo.timeout, Duration::from_secs(8));
    let done = finished(f.answer(
        &mut job,
        &allow_all,
        DUE + 3 * SECOND,
        idp.answer(&userinfo),
    ));
    assert_eq!((done.outcome, done.refreshed), (Outcome::Success, true));
    assert_eq!((idp.refresh_calls, idp.userinfo_calls), (1, 1));
}

#[test]
fn client_secret_post_and_a_grant_without_rotation_keeps_the_old_refresh_token() {
    let mut cfg = test_config();
    cfg.idp.client_auth = ClientAuth::SecretPost;
    let f = Fixture::with_access_expiry(cfg, DUE);
    let (mut job, step) = f.start(&allow_all, DUE);
    let refresh = call(step);
    assert_eq!(header(&refresh, "authorization"), None);
    assert_eq!(
        String::from_utf8(refresh.body).unwrap(),
        "grant_type=refresh_token&refresh_token=rt-0&client_id=vigil+client&client_secret=s3cr%26t%3Ax"
    );
    let next = f.answer(
        &mut job,
        &allow_all,
        DUE + 1,
        json_answer(200, r#"{"access_token":"at-9"}"#),
    );
    assert_eq!(call(next).kind, CallKind::Userinfo);
    let record = f.record();
    assert_eq!(record.refresh_token.as_deref(), Some("rt-0"));
    assert_eq!(record.access_expires_ns, DUE + 1 + 60 * SECOND);
}

#[test]
fn expired_access_token_without_refresh_token_is_fatal_without_calling() {
    let f = Fixture::with_access_expiry(test_config(), DUE);
    f.edit(|r| r.refresh_token = None);
    let (_, step) = f.start(&allow_all, DUE);
    assert_eq!(
        finished(step).outcome,
        Outcome::Fatal(FatalReason::NoRefreshToken)
    );
    assert!(is_revoked(&f.store, &f.cfg, "alice", T0));
    let record = f.record();
    assert_eq!((record.state, record.seq), (SessionState::Dead, 1));
    assert!(record.access_token.is_empty());
    assert_eq!(f.admit(&f.b, DUE + 1), Admission::Deny(DenyReason::Revoked));
}

#[test]
fn near_expiry_without_refresh_token_still_uses_the_access_token() {
    let f = Fixture::with_access_expiry(test_config(), DUE + 5 * SECOND);
    f.edit(|r| r.refresh_token = None);
    let (_, step) = f.start(&allow_all, DUE);
    assert_eq!(call(step).kind, CallKind::Userinfo);
}

#[test]
fn invalid_grant_with_the_stored_token_revokes_the_subject() {
    let f = Fixture::with_access_expiry(test_config(), DUE);
    let (mut job, step) = f.start(&allow_all, DUE);
    let _ = call(step);
    let done = finished(f.answer(
        &mut job,
        &allow_all,
        DUE + 1,
        json_answer(400, r#"{"error":"invalid_grant"}"#),
    ));
    assert_eq!(done.outcome, Outcome::Fatal(FatalReason::InvalidGrant));
    assert_eq!(f.record().state, SessionState::Dead);
    assert_eq!(f.admit(&f.a, DUE + 2), Admission::Deny(DenyReason::Revoked));
}

#[test]
fn rotation_race_retries_once_with_the_stored_refresh_token() {
    let f = Fixture::with_access_expiry(test_config(), DUE);
    let mut idp = ScriptedIdp::new("alice", "rt-0", "at-0");
    idp.reuse_detection = false;
    let (mut job, step) = f.start(&allow_all, DUE);
    let first = call(step);
    // Another VM redeemed rt-0 and stored the rotation meanwhile.
    let rotated = idp.answer(&first);
    f.edit(|r| {
        r.refresh_token = Some("rt-1".into());
        r.access_token = "at-1".into();
    });
    assert!(matches!(rotated, IdpAnswer::Response { status: 200, .. }));
    let stale = idp.answer(&first);
    let retry = call(f.answer(&mut job, &allow_all, DUE + 1, stale));
    assert_eq!(
        retry.kind,
        CallKind::Refresh,
        "stored access token still expired"
    );
    assert!(String::from_utf8_lossy(&retry.body).contains("refresh_token=rt-1"));
    let userinfo = call(f.answer(&mut job, &allow_all, DUE + 2, idp.answer(&retry)));
    let done = finished(f.answer(&mut job, &allow_all, DUE + 3, idp.answer(&userinfo)));
    assert_eq!(done.outcome, Outcome::Success);
    assert!(!is_revoked(&f.store, &f.cfg, "alice", T0));
    assert_eq!(f.record().refresh_token.as_deref(), Some("rt-2"));
}

#[test]
fn rotation_race_is_retried_only_once() {
    let f = Fixture::with_access_expiry(test_config(), DUE);
    let (mut job, step) = f.start(&allow_all, DUE);
    let _ = call(step);
    let invalid = || json_answer(400, r#"{"error":"invalid_grant"}"#);
    f.edit(|r| r.refresh_token = Some("rt-1".into()));
    let _ = call(f.answer(&mut job, &allow_all, DUE + 1, invalid()));
    f.edit(|r| r.refresh_token = Some("rt-2".into()));
    let done = finished(f.answer(&mut job, &allow_all, DUE + 2, invalid()));
    assert_eq!(done.outcome, Outcome::Fatal(FatalReason::InvalidGrant));
}

#[test]
fn userinfo_rejections_sub_mismatch_and_rules_are_fatal() {
    let deny_rules = |_: &Value| Err("group removed".to_owned());
    let cases: Vec<(IdpAnswer, &RuleCheck, FatalReason)> = vec![
        (
            json_answer(401, ""),
            &allow_all,
            FatalReason::UserinfoUnauthorized,
        ),
        (
            json_answer(403, ""),
            &allow_all,
            FatalReason::UserinfoForbidden,
        ),
        (
            json_answer(200, r#"{"sub":"mallory"}"#),
            &allow_all,
            FatalReason::SubjectMismatch,
        ),
        (
            json_answer(200, r#"{"sub":"alice"}"#),
            &deny_rules,
            FatalReason::RuleViolation,
        ),
    ];
    for (answer, rules, reason) in cases {
        let f = Fixture::new(test_config());
        let (mut job, step) = f.start(rules, DUE);
        let _ = call(step);
        let done = finished(f.answer(&mut job, rules, DUE + 1, answer));
        assert_eq!(done.outcome, Outcome::Fatal(reason));
        assert_eq!(f.record().failure.unwrap().class, reason.as_str());
        assert!(is_revoked(&f.store, &f.cfg, "alice", T0));
    }
}

#[test]
fn userinfo_401_after_another_vm_refreshed_is_retried_with_the_new_access_token() {
    let f = Fixture::new(test_config());
    let (mut job, step) = f.start(&allow_all, DUE);
    let _ = call(step);
    f.edit(|r| r.access_token = "at-1".into());
    let retry = call(f.answer(&mut job, &allow_all, DUE + 1, json_answer(401, "")));
    assert_eq!(header(&retry, "authorization"), Some("Bearer at-1"));
}

#[test]
fn non_fatal_under_allow_records_failure_and_passes_with_warning() {
    let f = Fixture::new(test_config());
    let (mut job, step) = f.start(&allow_all, DUE);
    let _ = call(step);
    let done = finished(f.answer(&mut job, &allow_all, DUE + 1, json_answer(503, "")));
    assert_eq!(done.outcome, Outcome::NonFatal(NonFatalReason::ServerError));
    let record = f.record();
    assert_eq!(
        (record.state, record.seq, record.validated_ns),
        (SessionState::Live, 1, T0)
    );
    let warned = Admission::Allow {
        claims: Some(json!({"sub": "alice"})),
        // The last success stays; the retry is one interval after the failure.
        times: ValidationTimes {
            validated_ns: T0,
            revalidate_ns: Some(DUE + 1 + 60 * SECOND),
        },
        warning: Some(NonFatalReason::ServerError),
    };
    assert_eq!(f.admit(&f.b, DUE + 30 * SECOND), warned);
    assert!(matches!(
        f.follower(&f.b, 0, DUE + 10 * SECOND, DUE + 2),
        FollowerDecision::Resume {
            warning: Some(NonFatalReason::ServerError),
            ..
        }
    ));
    // After another interval the next request revalidates again.
    assert!(matches!(
        f.admit(&f.b, DUE + 62 * SECOND),
        Admission::Lead(_)
    ));
    assert!(!is_revoked(&f.store, &f.cfg, "alice", T0));
}

#[test]
fn staleness_bound_denies_under_allow() {
    let mut cfg = test_config();
    cfg.max_staleness = Some(Duration::from_secs(120));
    let f = Fixture::new(cfg);
    let at = T0 + 119 * SECOND;
    let (mut job, step) = f.start(&allow_all, at);
    let _ = call(step);
    let _ = f.answer(&mut job, &allow_all, at + 1, IdpAnswer::Reset);
    assert!(matches!(
        f.admit(&f.a, at + 2),
        Admission::Allow {
            warning: Some(NonFatalReason::Reset),
            ..
        }
    ));
    assert_eq!(
        f.admit(&f.a, T0 + 121 * SECOND),
        Admission::Deny(DenyReason::Stale)
    );
}

#[test]
fn non_fatal_under_deny_revokes_and_ends_the_session() {
    let mut cfg = test_config();
    cfg.on_failure = FailurePolicy::Deny;
    let f = Fixture::new(cfg);
    let (mut job, step) = f.start(&allow_all, DUE);
    let _ = call(step);
    let _ = f.admit(&f.b, DUE + 1);
    let done = finished(f.answer(&mut job, &allow_all, DUE + 2, IdpAnswer::Unreachable));
    assert_eq!(
        done.outcome,
        Outcome::NonFatal(NonFatalReason::ConnectFailure)
    );
    assert_eq!(done.wake_queues, vec![2]);
    assert_eq!(f.record().state, SessionState::Dead);
    assert!(is_revoked(&f.store, &f.cfg, "alice", T0));
    assert_eq!(
        f.follower(&f.b, 0, DUE + 11 * SECOND, DUE + 3),
        FollowerDecision::Deny(DenyReason::SessionEnded)
    );
}

#[test]
fn answers_at_the_deadline_are_timeouts_but_a_late_rotation_is_kept() {
    let f = Fixture::with_access_expiry(test_config(), DUE);
    let mut idp = ScriptedIdp::new("alice", "rt-0", "at-0");
    let (mut job, step) = f.start(&allow_all, DUE);
    let refresh = call(step);
    let deadline = DUE + 10 * SECOND;
    let done = finished(f.answer(&mut job, &allow_all, deadline, idp.answer(&refresh)));
    assert_eq!(done.outcome, Outcome::NonFatal(NonFatalReason::Timeout));
    let record = f.record();
    assert_eq!(record.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(record.failure.unwrap().class, "timeout");
}

#[test]
fn a_job_whose_lease_was_taken_over_writes_no_result() {
    let f = Fixture::new(test_config());
    let (mut job, step) = f.start(&allow_all, DUE);
    let _ = call(step);
    let takeover_at = DUE + 10 * SECOND + 50_000_000;
    assert!(matches!(
        f.follower(&f.b, 0, takeover_at + SECOND, takeover_at),
        FollowerDecision::TakeOver(LeadTicket { job, .. }) if job == takeover_at
    ));
    let before = f.record();
    let done = finished(f.answer(
        &mut job,
        &allow_all,
        takeover_at + 1,
        json_answer(200, r#"{"sub":"alice"}"#),
    ));
    assert_eq!(
        (done.outcome, done.wake_queues),
        (Outcome::LeaseLost, vec![])
    );
    assert_eq!(f.record(), before);
}

#[test]
fn follower_waits_then_times_out_under_the_policy() {
    let f = Fixture::new(test_config());
    let _ = f.lead(DUE);
    let deadline = DUE + 5 * SECOND;
    assert_eq!(
        f.follower(&f.b, 0, deadline, deadline - 1),
        FollowerDecision::KeepWaiting
    );
    assert_eq!(
        f.follower(&f.b, 0, deadline, deadline),
        FollowerDecision::Timeout(Verdict::Allow {
            claims: Some(json!({"sub": "alice"})),
            // Overdue: the revalidation has not finished.
            times: ValidationTimes {
                validated_ns: T0,
                revalidate_ns: Some(T0 + 60 * SECOND)
            },
            warning: Some(NonFatalReason::Timeout)
        })
    );
    let mut cfg = test_config();
    cfg.on_failure = FailurePolicy::Deny;
    let d = follower_decision(
        &cfg,
        &f.store,
        &f.b,
        f.slot,
        &f.nonce(),
        "alice",
        0,
        deadline,
        deadline,
    );
    assert_eq!(
        d,
        FollowerDecision::Timeout(Verdict::Deny(DenyReason::Failed(NonFatalReason::Timeout)))
    );
}

#[test]
fn lease_in_grace_is_not_taken_over_and_expired_lease_is_taken_by_admission() {
    let f = Fixture::new(test_config());
    let _ = f.lead(DUE);
    let deadline = DUE + 10 * SECOND;
    assert!(matches!(
        f.admit(&f.b, deadline + 49_000_000),
        Admission::Follow(_)
    ));
    match f.admit(&f.b, deadline + 50_000_000) {
        Admission::Lead(t) => assert_eq!(t.deadline_ns, deadline + 50_000_000 + 10 * SECOND),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.record().lease.unwrap().owner, "bbbb");
}

#[test]
fn waiters_bookkeeping() {
    let mut waiters = Waiters::new();
    let w = |id: u32, deadline_ns: u64| Waiter {
        context_id: id,
        nonce: "n".into(),
        sub: "s".into(),
        seq_seen: 0,
        deadline_ns,
    };
    waiters.add(3, w(1, 100));
    waiters.add(3, w(2, 200));
    waiters.add(7, w(3, 50));
    assert_eq!((waiters.len(), waiters.slots_waiting()), (3, vec![3, 7]));
    assert_eq!(waiters.next_deadline_ns(), Some(50));
    assert_eq!(
        waiters.remove(2).map(|(s, w)| (s, w.context_id)),
        Some((3, 2))
    );
    assert_eq!(waiters.remove(2), None);
    let due: Vec<(u32, u32)> = waiters
        .take_due(100)
        .into_iter()
        .map(|(s, w)| (s, w.context_id))
        .collect();
    assert_eq!(due, vec![(3, 1), (7, 3)]);
    assert!(waiters.is_empty() && waiters.slots_waiting().is_empty());
}

#[test]
fn settle_slot_answers_all_local_waiters_from_one_read_and_takes_over_once() {
    let f = Fixture::new(test_config());
    let ticket = f.lead(DUE);
    let mut waiters = Waiters::new();
    for id in 0..5 {
        waiters.add(
            f.slot,
            Waiter {
                context_id: id,
                nonce: f.nonce(),
                sub: "alice".into(),
                seq_seen: ticket.seq_seen,
                deadline_ns: DUE + 30 * SECOND,
            },
        );
    }
    let settled = waiters.settle_slot(&f.cfg, &f.store, &f.b, f.slot, DUE + SECOND);
    assert_eq!(settled, Settled::default());
    let late = DUE + 11 * SECOND;
    let settled = waiters.settle_slot(&f.cfg, &f.store, &f.b, f.slot, late);
    assert_eq!(settled.takeovers.len(), 1);
    assert!(settled.answers.is_empty() && waiters.len() == 5);
    let ctx = JobContext {
        cfg: &f.cfg,
        vm: &f.b,
        rule_check: &allow_all,
    };
    let (mut job, step) = Job::start(&ctx, settled.takeovers[0].clone(), &f.store, late);
    let _ = call(step);
    let done = job.on_answer(
        &ctx,
        &f.store,
        late + 1,
        json_answer(200, r#"{"sub":"alice"}"#),
    );
    assert_eq!(finished(done).outcome, Outcome::Success);
    let settled = waiters.settle_slot(&f.cfg, &f.store, &f.b, f.slot, late + 2);
    assert_eq!(settled.answers.len(), 5);
    assert!(waiters.is_empty());
}

/// Runs `hook` once, just before the first write goes through.
struct HookStore<'a> {
    inner: &'a MemoryStore,
    hook: std::cell::RefCell<Option<Box<dyn FnOnce() + 'a>>>,
}

impl SharedStore for HookStore<'_> {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), crate::store::StoreError> {
        if let Some(hook) = self.hook.borrow_mut().take() {
            hook();
        }
        self.inner.set(key, value, cas)
    }
}

#[test]
fn a_result_written_while_joining_is_used_instead_of_waiting() {
    let f = Fixture::new(test_config());
    let (mut job, step) = f.start(&allow_all, DUE);
    let _ = call(step);
    let hooked = HookStore {
        inner: &f.store,
        hook: std::cell::RefCell::new(Some(Box::new(|| {
            let answer = json_answer(200, r#"{"sub":"alice"}"#);
            let done = f.answer(&mut job, &allow_all, DUE + 1, answer);
            assert_eq!(finished(done).outcome, Outcome::Success);
        }))),
    };
    let admission = admit(&f.cfg, &hooked, &f.b, "alice", &f.sid, T0, DUE + 2);
    assert!(
        matches!(admission, Admission::Allow { warning: None, .. }),
        "{admission:?}"
    );
    let record = f.record();
    assert_eq!((record.seq, record.lease), (1, None));
}
