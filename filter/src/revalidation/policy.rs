//! What a request gets, given a session record: the freshness window, the
//! `on_failure` policy and the staleness bound, in one place for admission
//! and followers.

use std::time::Duration;

use serde_json::Value;

use super::classify::NonFatalReason;
use crate::config::{Config, FailurePolicy};
use crate::session::Session;

/// Why a request is rejected (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The token was issued at or before its subject's revocation cut-off.
    Revoked,
    /// No usable session for the token's `sid` (absent, other nonce or
    /// subject, expired).
    NoSession,
    /// The session was ended (fatal answer, or non-fatal under `deny`).
    SessionEnded,
    /// Under `allow`: the last success is older than `max_staleness`.
    Stale,
    /// Under `deny`: a non-fatal failure.
    Failed(NonFatalReason),
}

impl DenyReason {
    /// Stable name for logs and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            DenyReason::Revoked => "revoked",
            DenyReason::NoSession => "no_session",
            DenyReason::SessionEnded => "session_ended",
            DenyReason::Stale => "stale",
            DenyReason::Failed(_) => "revalidation_failed",
        }
    }
}

/// When the session was last validated and when its next revalidation is
/// due, as the record used for a verdict says (the session headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationTimes {
    /// Last successful validation (the login counts), proxy clock ns.
    pub validated_ns: u64,
    /// When a request next triggers a revalidation: one interval after the
    /// last success, or after a non-fatal failure recorded since (the retry
    /// waits for it). `None` when revalidation is disabled. May be in the
    /// past (a request let through while its revalidation is overdue).
    pub revalidate_ns: Option<u64>,
}

impl ValidationTimes {
    pub(crate) fn of(cfg: &Config, record: &Session) -> ValidationTimes {
        let interval = nanos(cfg.revalidate_interval);
        let last_attempt = match recorded_failure(record) {
            Some((_, at_ns)) => at_ns,
            None => record.validated_ns,
        };
        ValidationTimes {
            validated_ns: record.validated_ns,
            revalidate_ns: (interval != 0).then(|| last_attempt.saturating_add(interval)),
        }
    }
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Continue; `claims` are the last userinfo claims (identity headers),
    /// `times` the record's validation times (session headers); `warning`
    /// is set when passing despite a non-fatal failure.
    Allow {
        claims: Option<Value>,
        times: ValidationTimes,
        warning: Option<NonFatalReason>,
    },
    Deny(DenyReason),
}

pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Past the staleness bound (only meaningful under `allow`).
fn is_stale(cfg: &Config, record: &Session, now_ns: u64) -> bool {
    cfg.max_staleness
        .is_some_and(|bound| now_ns.saturating_sub(record.validated_ns) > nanos(bound))
}

/// A non-fatal failure under the configured policy.
pub(crate) fn non_fatal_verdict(
    cfg: &Config,
    record: &Session,
    reason: NonFatalReason,
    now_ns: u64,
) -> Verdict {
    match cfg.on_failure {
        FailurePolicy::Deny => Verdict::Deny(DenyReason::Failed(reason)),
        FailurePolicy::Allow if is_stale(cfg, record, now_ns) => Verdict::Deny(DenyReason::Stale),
        FailurePolicy::Allow => Verdict::Allow {
            claims: record.claims.clone(),
            times: ValidationTimes::of(cfg, record),
            warning: Some(reason),
        },
    }
}

/// The non-fatal failure recorded after the last success, if any.
fn recorded_failure(record: &Session) -> Option<(NonFatalReason, u64)> {
    let failure = record.failure.as_ref()?;
    if failure.at_ns < record.validated_ns {
        return None;
    }
    let reason = NonFatalReason::parse(&failure.class).unwrap_or(NonFatalReason::UnexpectedAnswer);
    Some((reason, failure.at_ns))
}

/// The verdict the record's latest result gives (a waiter saw `seq` move).
pub(crate) fn result_verdict(cfg: &Config, record: &Session, now_ns: u64) -> Verdict {
    match recorded_failure(record) {
        Some((reason, _)) => non_fatal_verdict(cfg, record, reason, now_ns),
        None => Verdict::Allow {
            claims: record.claims.clone(),
            times: ValidationTimes::of(cfg, record),
            warning: None,
        },
    }
}

/// The verdict without revalidating, when the record allows one: validated
/// within the interval (or revalidation disabled), or a non-fatal failure
/// recorded within the interval (retried only once the interval has passed).
pub(crate) fn cached_verdict(cfg: &Config, record: &Session, now_ns: u64) -> Option<Verdict> {
    let interval = nanos(cfg.revalidate_interval);
    let fresh = Verdict::Allow {
        claims: record.claims.clone(),
        times: ValidationTimes::of(cfg, record),
        warning: None,
    };
    if interval == 0 || now_ns.saturating_sub(record.validated_ns) < interval {
        return Some(fresh);
    }
    match recorded_failure(record) {
        Some((reason, at_ns)) if now_ns.saturating_sub(at_ns) < interval => {
            Some(non_fatal_verdict(cfg, record, reason, now_ns))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revalidation::testing::{test_config, SECOND};
    use crate::session::record::sample_session;
    use crate::session::Failure;

    #[test]
    fn fresh_within_interval_and_always_when_disabled() {
        let mut cfg = test_config();
        let s = sample_session("n", "a", 0);
        assert!(matches!(
            cached_verdict(&cfg, &s, 59 * SECOND),
            Some(Verdict::Allow { warning: None, .. })
        ));
        assert_eq!(cached_verdict(&cfg, &s, 60 * SECOND), None);
        cfg.revalidate_interval = Duration::ZERO;
        assert!(cached_verdict(&cfg, &s, 1_000 * SECOND).is_some());
    }

    #[test]
    fn recent_failure_allows_with_warning_until_stale_or_interval_passes() {
        let mut cfg = test_config();
        cfg.max_staleness = Some(Duration::from_secs(100));
        let mut s = sample_session("n", "a", 0);
        s.failure = Some(Failure {
            class: "server_error".into(),
            at_ns: 61 * SECOND,
        });
        let warned = cached_verdict(&cfg, &s, 90 * SECOND);
        assert!(
            matches!(
                warned,
                Some(Verdict::Allow {
                    warning: Some(NonFatalReason::ServerError),
                    ..
                })
            ),
            "{warned:?}"
        );
        assert_eq!(
            cached_verdict(&cfg, &s, 101 * SECOND),
            Some(Verdict::Deny(DenyReason::Stale))
        );
        assert_eq!(cached_verdict(&cfg, &s, 121 * SECOND), None);
        cfg.on_failure = FailurePolicy::Deny;
        assert_eq!(
            result_verdict(&cfg, &s, 62 * SECOND),
            Verdict::Deny(DenyReason::Failed(NonFatalReason::ServerError))
        );
    }

    #[test]
    fn validation_times_follow_the_last_success_or_the_failure_since() {
        let mut cfg = test_config();
        let mut s = sample_session("n", "a", 7 * SECOND);
        let times = |cfg: &Config, s: &Session| ValidationTimes::of(cfg, s);
        assert_eq!(
            times(&cfg, &s),
            ValidationTimes {
                validated_ns: 7 * SECOND,
                revalidate_ns: Some(67 * SECOND)
            }
        );
        // A non-fatal failure after the success: the retry waits one interval
        // after it; the last success stays what it was.
        s.failure = Some(Failure {
            class: "timeout".into(),
            at_ns: 70 * SECOND,
        });
        assert_eq!(
            times(&cfg, &s),
            ValidationTimes {
                validated_ns: 7 * SECOND,
                revalidate_ns: Some(130 * SECOND)
            }
        );
        // A success after that failure: the failure no longer counts.
        s.validated_ns = 80 * SECOND;
        assert_eq!(times(&cfg, &s).revalidate_ns, Some(140 * SECOND));
        cfg.revalidate_interval = Duration::ZERO;
        assert_eq!(times(&cfg, &s).revalidate_ns, None);
        // Every allowing verdict carries the times of the record it read.
        cfg.revalidate_interval = Duration::from_secs(60);
        let expected = times(&cfg, &s);
        for verdict in [
            cached_verdict(&cfg, &s, 81 * SECOND),
            Some(result_verdict(&cfg, &s, 81 * SECOND)),
            Some(non_fatal_verdict(&cfg, &s, NonFatalReason::Reset, 81 * SECOND)),
        ] {
            match verdict {
                Some(Verdict::Allow { times, .. }) => assert_eq!(times, expected),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_success_after_a_failure_clears_the_warning() {
        let cfg = test_config();
        let mut s = sample_session("n", "a", 0);
        s.failure = Some(Failure {
            class: "timeout".into(),
            at_ns: 5,
        });
        s.validated_ns = 6;
        assert!(matches!(
            result_verdict(&cfg, &s, 7),
            Verdict::Allow { warning: None, .. }
        ));
    }
}
