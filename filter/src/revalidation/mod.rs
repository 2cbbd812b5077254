//! Periodic revalidation of upstream sessions: answer classification, the
//! leader's refresh + userinfo job, the request-path admission decision, and
//! what paused followers do. Pure: the adapter performs the calls, timers and
//! queue operations these functions ask for.

#[cfg(test)]
pub(crate) mod testing;

pub mod classify;

pub use classify::{
    classify_token_answer, classify_userinfo_answer, Class, FatalReason, IdpAnswer, NonFatalReason,
    TokenGrant,
};
pub mod admission;
pub mod followers;
pub mod job;
pub mod policy;

pub use admission::{admit, Admission, FollowTicket, LeadTicket, VmIdentity};
pub use followers::{follower_decision, FollowerDecision, Settled, Waiter, Waiters};
pub use job::{CallKind, Finished, IdpCall, Job, JobContext, Outcome, RuleCheck, Step};
pub use policy::{DenyReason, ValidationTimes, Verdict};

#[cfg(test)]
mod churn_tests;
#[cfg(test)]
mod job_tests;
#[cfg(test)]
mod sim_tests;
