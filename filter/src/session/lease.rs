//! The revalidation lease inside a session record, as a pure mutation.
//!
//! A lease is live until `deadline_ns`; it can be taken over only from
//! `deadline_ns + grace_ns` on, which gives a leader whose IdP call timed out
//! at the deadline the time to write its timeout result (followers then see a
//! result instead of starting a second IdP round trip).

use super::record::{Lease, Session};

/// What `claim_lease` did to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseClaim {
    /// This VM is the new leader: run job `job` until `deadline_ns`.
    Took { job: u64, deadline_ns: u64 },
    /// Another VM leads; this VM's queue token is in the waiters.
    Joined { deadline_ns: u64 },
    /// This VM already leads: its local job will answer.
    Mine { deadline_ns: u64 },
}

/// Takes the lease when none can still protect the session, else joins it.
/// Waiters of an expired lease are carried over so their VMs are still woken
/// by the new leader.
pub fn claim_lease(
    record: &mut Session,
    vm_uid: &str,
    queue_token: Option<u32>,
    now_ns: u64,
    timeout_ns: u64,
    grace_ns: u64,
) -> LeaseClaim {
    if let Some(lease) = record.lease.as_mut() {
        if now_ns < lease.protected_until(grace_ns) {
            if lease.owner == vm_uid {
                return LeaseClaim::Mine {
                    deadline_ns: lease.deadline_ns,
                };
            }
            if let Some(token) = queue_token.filter(|t| !lease.waiters.contains(t)) {
                lease.waiters.push(token);
            }
            return LeaseClaim::Joined {
                deadline_ns: lease.deadline_ns,
            };
        }
    }
    let mut waiters = record.lease.take().map(|l| l.waiters).unwrap_or_default();
    waiters.retain(|t| Some(*t) != queue_token);
    let deadline_ns = now_ns.saturating_add(timeout_ns);
    record.lease = Some(Lease {
        owner: vm_uid.to_owned(),
        job: now_ns,
        deadline_ns,
        waiters,
        hold_ns: 0,
    });
    LeaseClaim::Took {
        job: now_ns,
        deadline_ns,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::session::record::sample_session;

    #[test]
    fn first_claim_takes_later_ones_join_once() {
        let mut s = sample_session("n", "a", 0);
        assert_eq!(
            claim_lease(&mut s, "A", Some(1), 100, 10, 5),
            LeaseClaim::Took {
                job: 100,
                deadline_ns: 110
            }
        );
        assert_eq!(
            claim_lease(&mut s, "A", Some(1), 101, 10, 5),
            LeaseClaim::Mine { deadline_ns: 110 }
        );
        for _ in 0..2 {
            assert_eq!(
                claim_lease(&mut s, "B", Some(2), 102, 10, 5),
                LeaseClaim::Joined { deadline_ns: 110 }
            );
        }
        assert_eq!(s.lease.as_ref().map(|l| l.waiters.clone()), Some(vec![2]));
    }

    #[test]
    fn expired_lease_is_taken_over_after_the_grace_keeping_other_waiters() {
        let mut s = sample_session("n", "a", 0);
        claim_lease(&mut s, "A", Some(1), 100, 10, 5);
        claim_lease(&mut s, "B", Some(2), 101, 10, 5);
        claim_lease(&mut s, "C", Some(3), 101, 10, 5);
        assert_eq!(
            claim_lease(&mut s, "B", Some(2), 114, 10, 5),
            LeaseClaim::Joined { deadline_ns: 110 }
        );
        let claim = claim_lease(&mut s, "B", Some(2), 115, 10, 5);
        assert_eq!(
            claim,
            LeaseClaim::Took {
                job: 115,
                deadline_ns: 125
            }
        );
        let lease = s.lease.unwrap();
        assert_eq!((lease.owner.as_str(), lease.waiters), ("B", vec![3]));
    }
}
