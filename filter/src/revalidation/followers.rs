//! Paused requests: what each should do when its VM re-reads the record (a
//! queue wake-up, a tick, a local job finishing), and the VM-local list of
//! them, so the adapter only maps decisions to hostcalls.

use std::collections::BTreeMap;

use super::admission::{lease_attempt, unusable_reason, LeadTicket, LeaseAttempt, VmIdentity};
use super::classify::NonFatalReason;
use super::policy::{
    nanos, non_fatal_verdict, result_verdict, DenyReason, ValidationTimes, Verdict,
};
use crate::config::Config;
use crate::session::{read_session, session_key, Session, SessionId};
use crate::store::SharedStore;

#[derive(Debug, Clone, PartialEq)]
pub enum FollowerDecision {
    /// A result arrived: continue the request.
    Resume {
        claims: Option<serde_json::Value>,
        times: ValidationTimes,
        warning: Option<NonFatalReason>,
    },
    /// A result arrived (or the session is gone): 401.
    Deny(DenyReason),
    /// Nothing new, the leader is within its lease.
    KeepWaiting,
    /// The lease expired without a result; this VM took it: start
    /// `Job::start` with the ticket and keep the request waiting.
    TakeOver(LeadTicket),
    /// The request's own deadline passed: the non-fatal `timeout` treatment
    /// under the policy (allow with warning, or deny).
    Timeout(Verdict),
}

impl From<Verdict> for FollowerDecision {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Allow {
                claims,
                times,
                warning,
            } => FollowerDecision::Resume {
                claims,
                times,
                warning,
            },
            Verdict::Deny(reason) => FollowerDecision::Deny(reason),
        }
    }
}

/// The decision from an already read record; `None` = the lease must be
/// taken over (no live lease, no result, deadline not reached).
fn decide_on_record(
    cfg: &Config,
    record: Option<&Session>,
    waiter: &Waiter,
    now_ns: u64,
) -> Option<FollowerDecision> {
    let Some(record) = record.filter(|r| r.nonce == waiter.nonce && r.sub == waiter.sub) else {
        return Some(FollowerDecision::Deny(DenyReason::NoSession));
    };
    if !record.is_usable(now_ns) {
        return Some(FollowerDecision::Deny(unusable_reason(record)));
    }
    if record.seq != waiter.seq_seen {
        return Some(result_verdict(cfg, record, now_ns).into());
    }
    if now_ns >= waiter.deadline_ns {
        let verdict = non_fatal_verdict(cfg, record, NonFatalReason::Timeout, now_ns);
        return Some(FollowerDecision::Timeout(verdict));
    }
    let grace_ns = nanos(cfg.poll_interval);
    match &record.lease {
        Some(lease) if now_ns < lease.protected_until(grace_ns) => {
            Some(FollowerDecision::KeepWaiting)
        }
        _ => None,
    }
}

/// Takes over an expired lease for `waiter`'s session (one cas attempt loop);
/// a lost race or a result that just arrived is decided from the new record.
fn take_over(
    cfg: &Config,
    store: &dyn SharedStore,
    vm: &VmIdentity,
    slot: u32,
    waiter: &Waiter,
    now_ns: u64,
) -> FollowerDecision {
    let settled = |r: &Session| (r.seq != waiter.seq_seen).then(|| result_verdict(cfg, r, now_ns));
    let id = SessionId {
        slot,
        nonce: waiter.nonce.clone(),
    };
    match lease_attempt(cfg, store, vm, &id, &waiter.sub, now_ns, &settled) {
        Ok(LeaseAttempt::Settled(verdict)) => verdict.into(),
        Ok(LeaseAttempt::Lead(ticket)) => FollowerDecision::TakeOver(ticket),
        Ok(LeaseAttempt::Follow { .. }) | Err(_) => FollowerDecision::KeepWaiting,
    }
}

/// What a waiting request should do now (see `FollowerDecision`).
#[allow(clippy::too_many_arguments)]
pub fn follower_decision(
    cfg: &Config,
    store: &dyn SharedStore,
    vm: &VmIdentity,
    slot: u32,
    nonce: &str,
    sub: &str,
    seq_seen: u64,
    wait_deadline_ns: u64,
    now_ns: u64,
) -> FollowerDecision {
    let waiter = Waiter {
        context_id: 0,
        nonce: nonce.to_owned(),
        sub: sub.to_owned(),
        seq_seen,
        deadline_ns: wait_deadline_ns,
    };
    let key = session_key(&cfg.shared_data_prefix, slot);
    let record = read_session(store, &key).map(|(r, _)| r);
    decide_on_record(cfg, record.as_ref(), &waiter, now_ns)
        .unwrap_or_else(|| take_over(cfg, store, vm, slot, &waiter, now_ns))
}

/// One paused request of this VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    /// The HTTP context to resume or answer.
    pub context_id: u32,
    pub nonce: String,
    pub sub: String,
    pub seq_seen: u64,
    pub deadline_ns: u64,
}

/// What re-reading one slot (or all) decided.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Settled {
    /// Requests to answer now (removed from the list).
    pub answers: Vec<(Waiter, FollowerDecision)>,
    /// Leases this VM took over: start a job for each (their requests stay).
    pub takeovers: Vec<LeadTicket>,
}

/// The VM-local list of paused requests, by slot.
#[derive(Debug, Default, Clone)]
pub struct Waiters {
    by_slot: BTreeMap<u32, Vec<Waiter>>,
}

impl Waiters {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, slot: u32, waiter: Waiter) {
        self.by_slot.entry(slot).or_default().push(waiter);
    }

    /// Forgets a request whose stream went away (`on_done`/`on_log`).
    pub fn remove(&mut self, context_id: u32) -> Option<(u32, Waiter)> {
        let (slot, index) = self.by_slot.iter().find_map(|(slot, list)| {
            list.iter()
                .position(|w| w.context_id == context_id)
                .map(|i| (*slot, i))
        })?;
        let list = self.by_slot.get_mut(&slot)?;
        let waiter = list.remove(index);
        if list.is_empty() {
            self.by_slot.remove(&slot);
        }
        Some((slot, waiter))
    }

    /// Removes and returns every waiter whose deadline has passed.
    pub fn take_due(&mut self, now_ns: u64) -> Vec<(u32, Waiter)> {
        let mut due = Vec::new();
        for (slot, list) in self.by_slot.iter_mut() {
            let (expired, kept): (Vec<Waiter>, Vec<Waiter>) =
                list.drain(..).partition(|w| now_ns >= w.deadline_ns);
            *list = kept;
            due.extend(expired.into_iter().map(|w| (*slot, w)));
        }
        self.by_slot.retain(|_, list| !list.is_empty());
        due
    }

    pub fn slots_waiting(&self) -> Vec<u32> {
        self.by_slot.keys().copied().collect()
    }

    pub fn waiting_on(&self, slot: u32) -> &[Waiter] {
        self.by_slot.get(&slot).map_or(&[], Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.by_slot.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_slot.is_empty()
    }

    /// Earliest waiter deadline (to size the tick, if the adapter wants).
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.by_slot.values().flatten().map(|w| w.deadline_ns).min()
    }

    /// Re-reads `slot` once and decides for each of its waiters; answered
    /// ones leave the list. At most one takeover per slot.
    pub fn settle_slot(
        &mut self,
        cfg: &Config,
        store: &dyn SharedStore,
        vm: &VmIdentity,
        slot: u32,
        now_ns: u64,
    ) -> Settled {
        let mut settled = Settled::default();
        let Some(list) = self.by_slot.remove(&slot) else {
            return settled;
        };
        let key = session_key(&cfg.shared_data_prefix, slot);
        let mut record = read_session(store, &key).map(|(r, _)| r);
        let mut kept = Vec::new();
        for waiter in list {
            let decision = match decide_on_record(cfg, record.as_ref(), &waiter, now_ns) {
                Some(decision) => decision,
                None => {
                    let decision = take_over(cfg, store, vm, slot, &waiter, now_ns);
                    // Later waiters must see the lease just taken.
                    record = read_session(store, &key).map(|(r, _)| r);
                    decision
                }
            };
            match decision {
                FollowerDecision::KeepWaiting => kept.push(waiter),
                FollowerDecision::TakeOver(ticket) => {
                    settled.takeovers.push(ticket);
                    kept.push(waiter);
                }
                answer => settled.answers.push((waiter, answer)),
            }
        }
        if !kept.is_empty() {
            self.by_slot.insert(slot, kept);
        }
        settled
    }

    /// `settle_slot` for every slot (ticks: the guaranteed wake-up path).
    pub fn settle_all(
        &mut self,
        cfg: &Config,
        store: &dyn SharedStore,
        vm: &VmIdentity,
        now_ns: u64,
    ) -> Settled {
        let mut all = Settled::default();
        for slot in self.slots_waiting() {
            let settled = self.settle_slot(cfg, store, vm, slot, now_ns);
            all.answers.extend(settled.answers);
            all.takeovers.extend(settled.takeovers);
        }
        all
    }
}
