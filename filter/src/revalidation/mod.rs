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
