//! The request-path decision once the downstream token is verified.
//!
//! Order: session id shape, revocation cut-off, session record (usable, same
//! nonce and subject), freshness / recent failure, then the lease: take it
//! (this request's VM leads the revalidation) or join it (wait for the
//! leader's result). Only the lease step writes, with bounded cas retries.

use serde_json::Value;

use super::classify::NonFatalReason;
use super::policy::{
    cached_verdict, nanos, non_fatal_verdict, DenyReason, ValidationTimes, Verdict,
};
use crate::config::Config;
use crate::session::{
    claim_lease, is_revoked, parse_sid, read_session, session_key, update_session, Change,
    LeaseClaim, Session, SessionError, SessionId, SessionState,
};
use crate::store::SharedStore;

/// This VM, as the coalescing protocol names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmIdentity {
    /// 64 random bits, hex; the lease owner.
    pub uid: String,
    /// Token of this VM's shared queue (`P q:<uid>`): leaders of other VMs
    /// enqueue the slot number on it when a result is written. `None` when
    /// queues are off (`wake_queues: false`): this VM's waiters poll on ticks.
    pub queue_token: Option<u32>,
}

/// The leader's lease: everything `Job::start` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadTicket {
    pub slot: u32,
    pub nonce: String,
    pub sub: String,
    /// The lease's `job` (with the VM uid, identifies this run).
    pub job: u64,
    /// Lease deadline: end of the job's budget.
    pub deadline_ns: u64,
    /// Record `seq` when the lease was taken (the paused request waits for a
    /// larger one).
    pub seq_seen: u64,
}

/// A request that waits for a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowTicket {
    pub slot: u32,
    pub nonce: String,
    pub seq_seen: u64,
    /// The request is answered at the latest here (its arrival + timeout).
    pub deadline_ns: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Allow {
        claims: Option<Value>,
        times: ValidationTimes,
        warning: Option<NonFatalReason>,
    },
    Deny(DenyReason),
    /// Pause; run `Job::start` on the root context; wait as a local waiter
    /// with `seq_seen` and `deadline_ns` from the ticket.
    Lead(LeadTicket),
    /// Pause; wait as a local waiter.
    Follow(FollowTicket),
}

impl From<Verdict> for Admission {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Allow {
                claims,
                times,
                warning,
            } => Admission::Allow {
                claims,
                times,
                warning,
            },
            Verdict::Deny(reason) => Admission::Deny(reason),
        }
    }
}

/// Why a record of the request's own session cannot be used.
pub(crate) fn unusable_reason(record: &Session) -> DenyReason {
    match record.state {
        SessionState::Dead => DenyReason::SessionEnded,
        SessionState::Live => DenyReason::NoSession,
    }
}

/// The result of trying to lead or join a due session's revalidation.
pub(crate) enum LeaseAttempt {
    /// The record gives an answer now (gone, fresh, or a new result).
    Settled(Verdict),
    Lead(LeadTicket),
    Follow {
        seq_seen: u64,
    },
}

/// One cas-guarded attempt to take or join the lease of session `id`;
/// `settled` decides from the fresh record whether waiting is needed at all.
pub(crate) fn lease_attempt(
    cfg: &Config,
    store: &dyn SharedStore,
    vm: &VmIdentity,
    id: &SessionId,
    sub: &str,
    now_ns: u64,
    settled: &dyn Fn(&Session) -> Option<Verdict>,
) -> Result<LeaseAttempt, SessionError> {
    let (slot, nonce) = (id.slot, id.nonce.as_str());
    let key = session_key(&cfg.shared_data_prefix, slot);
    let timeout_ns = nanos(cfg.revalidate_timeout);
    let grace_ns = nanos(cfg.poll_interval);
    update_session(store, &key, |current| {
        let Some(mut record) = current.filter(|r| r.nonce == nonce && r.sub == sub) else {
            return Change::Keep(LeaseAttempt::Settled(Verdict::Deny(DenyReason::NoSession)));
        };
        if !record.is_usable(now_ns) {
            let verdict = Verdict::Deny(unusable_reason(&record));
            return Change::Keep(LeaseAttempt::Settled(verdict));
        }
        if let Some(verdict) = settled(&record) {
            return Change::Keep(LeaseAttempt::Settled(verdict));
        }
        let before = record.lease.clone();
        let seq_seen = record.seq;
        let claim = claim_lease(
            &mut record,
            &vm.uid,
            vm.queue_token,
            now_ns,
            timeout_ns,
            grace_ns,
        );
        let attempt = match claim {
            LeaseClaim::Took { job, deadline_ns } => LeaseAttempt::Lead(LeadTicket {
                slot,
                nonce: nonce.to_owned(),
                sub: sub.to_owned(),
                job,
                deadline_ns,
                seq_seen,
            }),
            LeaseClaim::Joined { .. } | LeaseClaim::Mine { .. } => {
                LeaseAttempt::Follow { seq_seen }
            }
        };
        if before == record.lease {
            Change::Keep(attempt)
        } else {
            Change::Write(record, attempt)
        }
    })
}

/// The decision for a request whose token (subject `sub`, session id `sid`,
/// issued at `iat_ns`) has been verified.
pub fn admit(
    cfg: &Config,
    store: &dyn SharedStore,
    vm: &VmIdentity,
    sub: &str,
    sid: &str,
    iat_ns: u64,
    now_ns: u64,
) -> Admission {
    let Some(id) = parse_sid(sid, cfg.max_sessions) else {
        return Admission::Deny(DenyReason::NoSession);
    };
    if is_revoked(store, cfg, sub, iat_ns) {
        return Admission::Deny(DenyReason::Revoked);
    }
    let key = session_key(&cfg.shared_data_prefix, id.slot);
    let Some((record, _)) =
        read_session(store, &key).filter(|(r, _)| r.nonce == id.nonce && r.sub == sub)
    else {
        return Admission::Deny(DenyReason::NoSession);
    };
    if !record.is_usable(now_ns) {
        return Admission::Deny(unusable_reason(&record));
    }
    // The hot path: no write.
    if let Some(verdict) = cached_verdict(cfg, &record, now_ns) {
        return verdict.into();
    }
    let settled = |r: &Session| cached_verdict(cfg, r, now_ns);
    match lease_attempt(cfg, store, vm, &id, sub, now_ns, &settled) {
        Ok(LeaseAttempt::Settled(verdict)) => verdict.into(),
        Ok(LeaseAttempt::Lead(ticket)) => Admission::Lead(ticket),
        Ok(LeaseAttempt::Follow { seq_seen }) => Admission::Follow(FollowTicket {
            slot: id.slot,
            nonce: id.nonce,
            seq_seen,
            deadline_ns: now_ns.saturating_add(nanos(cfg.revalidate_timeout)),
        }),
        Err(_) => non_fatal_verdict(cfg, &record, NonFatalReason::StoreContention, now_ns).into(),
    }
}
