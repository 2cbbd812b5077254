//! The metrics vigil exports (Envoy stats, under `wasmcustom.` in /stats).
//!
//! The names are the public contract documented in the README; the adapter
//! defines them once per VM and increments them by enum.

/// A counter vigil maintains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Requests whose downstream token failed the inline check.
    TokenInvalid,
    /// Requests rejected because the subject was revoked.
    Revoked,
    /// Requests rejected because no session is on file.
    NoSession,
    /// Requests passed without IdP traffic (session fresh).
    Skipped,
    /// Revalidations started (one per IdP round trip, not per request).
    Started,
    /// Revalidations that succeeded.
    Succeeded,
    /// Revalidations that ended with a fatal answer.
    Fatal,
    /// Requests allowed despite a non-fatal failure (`on_failure: allow`).
    NonFatalAllowed,
    /// Requests denied after a non-fatal failure (`deny`, or staleness bound).
    NonFatalDenied,
    /// Revalidations or waits that ran into the timeout.
    Timeouts,
    /// Token-endpoint refreshes performed.
    Refreshes,
    /// Subjects revoked.
    Revocations,
    /// Requests that waited on another request's revalidation.
    Coalesced,
}

impl Counter {
    pub const ALL: [Counter; 13] = [
        Counter::TokenInvalid,
        Counter::Revoked,
        Counter::NoSession,
        Counter::Skipped,
        Counter::Started,
        Counter::Succeeded,
        Counter::Fatal,
        Counter::NonFatalAllowed,
        Counter::NonFatalDenied,
        Counter::Timeouts,
        Counter::Refreshes,
        Counter::Revocations,
        Counter::Coalesced,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::TokenInvalid => "vigil.token_invalid",
            Counter::Revoked => "vigil.revoked_rejected",
            Counter::NoSession => "vigil.no_session",
            Counter::Skipped => "vigil.revalidation.skipped",
            Counter::Started => "vigil.revalidation.started",
            Counter::Succeeded => "vigil.revalidation.succeeded",
            Counter::Fatal => "vigil.revalidation.fatal",
            Counter::NonFatalAllowed => "vigil.revalidation.nonfatal_allowed",
            Counter::NonFatalDenied => "vigil.revalidation.nonfatal_denied",
            Counter::Timeouts => "vigil.revalidation.timeout",
            Counter::Refreshes => "vigil.revalidation.refresh",
            Counter::Revocations => "vigil.revocations",
            Counter::Coalesced => "vigil.revalidation.coalesced",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Histogram of IdP call latency in milliseconds (refresh and userinfo).
pub const IDP_LATENCY_MS: &str = "vigil.idp.latency_ms";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indices_dense() {
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }
}
