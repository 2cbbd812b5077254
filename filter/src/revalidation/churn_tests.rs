//! Memory under churn: 100,000 sessions through login, revalidation (with
//! refresh), revocation and expiry; the shared-data key count and bytes stay
//! within the bound documented in `docs/design.md`.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::VecDeque;

use serde_json::{json, Value};

use super::testing::{json_answer, seq_random, test_config, SECOND};
use super::*;
use crate::config::Config;
use crate::session::revocation::MAX_BUCKET_ENTRIES;
use crate::session::{create_session, NewSession, MAX_SUBJECT_LEN};
use crate::store::{MemoryStore, SharedStore};

const SESSIONS: u64 = 100_000;
/// Virtual time between two logins: 100,000 logins span ~13.9 h, more than
/// `max_token_lifetime` (12 h), so revocation pruning is exercised.
const STEP_NS: u64 = SECOND / 2;

fn allow_all(_: &Value) -> Result<(), String> {
    Ok(())
}

/// Runs one revalidation to its end with an IdP that answers `userinfo`
/// (refreshing first when the job asks).
fn revalidate(
    cfg: &Config,
    store: &MemoryStore,
    vm: &VmIdentity,
    (sub, sid, iat): &(String, String, u64),
    now: u64,
    userinfo: IdpAnswer,
) -> Option<Outcome> {
    let Admission::Lead(ticket) = admit(cfg, store, vm, sub, sid, *iat, now) else {
        return None;
    };
    let ctx = JobContext {
        cfg,
        vm,
        rule_check: &allow_all,
    };
    let (mut job, mut step) = Job::start(&ctx, ticket, store, now);
    loop {
        match step {
            Step::Finished(finished) => return Some(finished.outcome),
            Step::Call(call) => {
                let answer = match call.kind {
                    CallKind::Refresh => json_answer(
                        200,
                        &json!({"access_token": format!("at-{now}"), "refresh_token": format!("rt-{now}"), "expires_in": 300}).to_string(),
                    ),
                    CallKind::Userinfo => userinfo.clone(),
                };
                step = job.on_answer(&ctx, store, now + 1, answer);
            }
        }
    }
}

#[test]
fn hundred_thousand_sessions_stay_within_the_documented_bound() {
    let cfg = test_config();
    let store = MemoryStore::new();
    let vm = VmIdentity {
        uid: "0123456789abcdef".into(),
        queue_token: Some(1),
    };
    let mut random = seq_random(2024);
    let mut recent: VecDeque<(String, String, u64)> = VecDeque::new();
    let (mut evicted, mut revalidated, mut revoked) = (0u64, 0u64, 0u64);
    let mut now = 1_000 * SECOND;
    for i in 0..SESSIONS {
        now += STEP_NS;
        let sub = format!("user-{:06}@example.com", random() % 40_000);
        let new = NewSession {
            sub: sub.clone(),
            access_token: format!("at-{i:040}"),
            // Half the sessions need a refresh at their first revalidation.
            access_expires_ns: now
                + if i % 2 == 0 {
                    20 * SECOND
                } else {
                    3_600 * SECOND
                },
            refresh_token: Some(format!("rt-{i:040}")),
            // ~3,600 sessions alive at a time in 10,000 slots.
            expires_ns: now + 1_800 * SECOND,
            claims: Some(json!({"sub": sub, "email": sub, "groups": ["staff", "dev"]})),
        };
        let created = create_session(&store, &cfg, new, &mut random, now).unwrap();
        evicted += u64::from(created.evicted);
        recent.push_back((sub, created.sid, now));
        // The session created 200 logins (100 s) ago is due: every other
        // one is revalidated, and every fifth of those the IdP has
        // deprovisioned.
        if recent.len() > 200 {
            let login = recent.pop_front().unwrap();
            if i % 2 == 1 {
                continue;
            }
            let userinfo = if i % 10 == 0 {
                json_answer(401, "")
            } else {
                json_answer(200, &json!({"sub": login.0}).to_string())
            };
            match revalidate(&cfg, &store, &vm, &login, now, userinfo) {
                Some(Outcome::Success) => revalidated += 1,
                Some(Outcome::Fatal(_)) => revoked += 1,
                _ => {}
            }
        }
    }
    let keys = store.key_count();
    let bytes = store.total_bytes();
    let session_keys = store.keys_with_prefix("vigil:s:").len();
    let bucket_keys = store.keys_with_prefix("vigil:r:").len();
    let largest_session = store
        .keys_with_prefix("vigil:s:")
        .iter()
        .map(|k| k.len() + store.get(k).unwrap().0.len())
        .max()
        .unwrap();
    let largest_bucket = store
        .keys_with_prefix("vigil:r:")
        .iter()
        .map(|k| k.len() + store.get(k).unwrap().0.len())
        .max()
        .unwrap();
    println!(
        "churn: {SESSIONS} logins, {revalidated} revalidated, {revoked} revoked, {evicted} evicted; \
         {keys} keys ({session_keys} session + {bucket_keys} revocation), {bytes} bytes; \
         largest session entry {largest_session} B, largest bucket entry {largest_bucket} B"
    );
    assert!(
        revalidated > 35_000 && revoked > 8_000,
        "the churn must exercise every path"
    );
    assert_eq!(keys, session_keys + bucket_keys);
    assert!(session_keys <= cfg.max_sessions as usize);
    assert!(bucket_keys <= cfg.revocation_buckets as usize);
    // design.md: a bucket holds at most 64 entries of a subject (<= 255
    // bytes) and a cut-off (<= 20 digits) plus 64 bytes of framing per
    // entry and for the bucket itself.
    let bucket_bound = 64 + MAX_BUCKET_ENTRIES * (MAX_SUBJECT_LEN + 20 + 64);
    assert!(largest_bucket <= bucket_bound);
    // Records here carry 43-byte tokens and ~90 bytes of claims.
    let session_bound = 1_024;
    assert!(largest_session <= session_bound, "{largest_session}");
    assert!(
        bytes
            <= cfg.max_sessions as usize * session_bound
                + cfg.revocation_buckets as usize * bucket_bound
    );
}
