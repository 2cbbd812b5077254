//! The session record stored under `P s/<slot>`.
//!
//! Decoding never fails loudly: an empty value (Envoy's "removed"), bytes that
//! are not this version's JSON, or a record of another version are all
//! "absent", so a corrupt or foreign record can never trap the filter.

use serde::{Deserialize, Serialize};

/// Version written into every record; others decode as absent.
pub const RECORD_VERSION: u32 = 1;

/// Longest ID token kept for `id_token_hint` (a typical one is under 1.5
/// KB; a larger one is dropped, so the record stays bounded).
pub const MAX_ID_TOKEN_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    Live,
    /// Ended by a fatal answer (or a non-fatal one under `deny`); the slot is
    /// free for the next login.
    Dead,
}

/// The last failed revalidation attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `FatalReason::as_str()` or `NonFatalReason::as_str()`.
    pub class: String,
    pub at_ns: u64,
}

/// The revalidation lease: at most one live per session, across every VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Uid of the leader's VM (hex).
    pub owner: String,
    /// Identifies this run of the leader (its start time); `(owner, job)` is
    /// unique because a new lease is only taken after the previous deadline.
    pub job: u64,
    pub deadline_ns: u64,
    /// Queue tokens of other VMs with paused requests (each at most once).
    #[serde(default)]
    pub waiters: Vec<u32>,
    /// A refresh is in flight whose answer may still come after the
    /// deadline (and rotate the refresh token): nobody takes the lease over
    /// before this instant, so the old refresh token is never redeemed twice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hold_ns: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Lease {
    /// Still protects the session (not past its deadline).
    pub fn is_live(&self, now_ns: u64) -> bool {
        now_ns < self.deadline_ns
    }

    /// Until when the lease keeps others out: the deadline plus a grace for
    /// the leader's last write, or a refresh hold if that is later.
    pub fn protected_until(&self, grace_ns: u64) -> u64 {
        self.deadline_ns.saturating_add(grace_ns).max(self.hold_ns)
    }

    pub fn is_held_by(&self, owner: &str, job: u64) -> bool {
        self.owner == owner && self.job == job
    }
}

/// One upstream session, as in `docs/design.md`. Debug omits the tokens.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub v: u32,
    /// Must equal the nonce in the downstream token's `sid`.
    pub nonce: String,
    pub sub: String,
    pub state: SessionState,
    pub created_ns: u64,
    /// End of the login session (no revalidation extends it).
    pub expires_ns: u64,
    pub access_token: String,
    pub access_expires_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Last successful validation (login counts).
    pub validated_ns: u64,
    /// Last revalidation attempt that finished, whatever its outcome.
    pub attempt_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The login's ID token, for `id_token_hint` at logout (absent when it
    /// was longer than `MAX_ID_TOKEN_LEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The IdP's session id (the login ID token's `sid`, at most
    /// `MAX_IDP_SID_LEN` bytes): a back-channel logout naming it ends this
    /// session. Kept when the session ends, so a later logout token for it
    /// is known to be done. The slot is one of `idp_sid_slots(idp_sid)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_sid: Option<String>,
    /// Incremented by every finished revalidation (waiters compare it).
    pub seq: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sub", &self.sub)
            .field("state", &self.state)
            .field("created_ns", &self.created_ns)
            .field("expires_ns", &self.expires_ns)
            .field("access_expires_ns", &self.access_expires_ns)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("validated_ns", &self.validated_ns)
            .field("attempt_ns", &self.attempt_ns)
            .field("failure", &self.failure)
            .field("lease", &self.lease)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The record in `bytes`, or `None` for empty, unparsable or foreign data.
    pub fn decode(bytes: &[u8]) -> Option<Session> {
        if bytes.is_empty() {
            return None;
        }
        let session: Session = serde_json::from_slice(bytes).ok()?;
        (session.v == RECORD_VERSION).then_some(session)
    }

    /// JSON bytes; `None` only if serialization failed (never for these
    /// types, but an empty write would delete the record, so callers skip it).
    pub fn encode(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok().filter(|b| !b.is_empty())
    }

    /// Live, not expired: a request carrying this record's nonce may pass.
    pub fn is_usable(&self, now_ns: u64) -> bool {
        self.state == SessionState::Live && now_ns < self.expires_ns
    }

    /// The live lease, if any.
    pub fn live_lease(&self, now_ns: u64) -> Option<&Lease> {
        self.lease.as_ref().filter(|l| l.is_live(now_ns))
    }

    /// Ends the session: state dead, secrets wiped, lease cleared (the
    /// caller advances `seq` with the rest of its result).
    pub fn kill(&mut self, class: &str, now_ns: u64) {
        self.state = SessionState::Dead;
        self.access_token.clear();
        self.refresh_token = None;
        self.claims = None;
        self.lease = None;
        self.id_token = None;
        self.attempt_ns = now_ns;
        self.failure = Some(Failure {
            class: class.to_owned(),
            at_ns: now_ns,
        });
    }
}

/// The fields slot allocation looks at, decoded without building the
/// tokens and claims (allocation probes several records per login).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlotSummary {
    pub v: u32,
    pub state: SessionState,
    pub created_ns: u64,
    pub expires_ns: u64,
    pub validated_ns: u64,
    #[serde(default)]
    pub lease: Option<LeaseSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LeaseSummary {
    pub deadline_ns: u64,
}

impl SlotSummary {
    /// Same absence rules as `Session::decode`; fields it does not read are
    /// skipped, so a record `Session::decode` rejects for another field may
    /// still summarize (it is then reused like any other record).
    pub fn decode(bytes: &[u8]) -> Option<SlotSummary> {
        if bytes.is_empty() {
            return None;
        }
        let summary: SlotSummary = serde_json::from_slice(bytes).ok()?;
        (summary.v == RECORD_VERSION).then_some(summary)
    }

    /// As `Session::is_usable`.
    pub fn is_usable(&self, now_ns: u64) -> bool {
        self.state == SessionState::Live && now_ns < self.expires_ns
    }

    pub fn has_live_lease(&self, now_ns: u64) -> bool {
        self.lease.as_ref().is_some_and(|l| now_ns < l.deadline_ns)
    }
}

#[cfg(test)]
pub(crate) fn sample_session(nonce: &str, sub: &str, now_ns: u64) -> Session {
    Session {
        v: RECORD_VERSION,
        nonce: nonce.to_owned(),
        sub: sub.to_owned(),
        state: SessionState::Live,
        created_ns: now_ns,
        expires_ns: now_ns + 3_600_000_000_000,
        access_token: "at-0".to_owned(),
        access_expires_ns: now_ns + 600_000_000_000,
        refresh_token: Some("rt-0".to_owned()),
        validated_ns: now_ns,
        attempt_ns: now_ns,
        failure: None,
        claims: Some(serde_json::json!({"sub": sub})),
        lease: None,
        id_token: None,
        idp_sid: None,
        seq: 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_omits_absent_options() {
        let mut s = sample_session("n", "alice", 5);
        s.refresh_token = None;
        s.claims = None;
        let bytes = s.encode().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            !text.contains("refresh_token") && !text.contains("lease"),
            "{text}"
        );
        assert!(text.contains("\"state\":\"live\""), "{text}");
        assert_eq!(Session::decode(&bytes), Some(s));
    }

    #[test]
    fn empty_garbage_and_foreign_versions_are_absent() {
        assert_eq!(Session::decode(b""), None);
        assert_eq!(Session::decode(b"\xff\x00{"), None);
        assert_eq!(Session::decode(b"{\"v\":1}"), None);
        assert_eq!(Session::decode(b"[1,2,3]"), None);
        let mut s = sample_session("n", "alice", 5);
        s.v = 2;
        assert_eq!(Session::decode(&s.encode().unwrap()), None);
        let text = String::from_utf8(sample_session("n", "a", 5).encode().unwrap()).unwrap();
        let bad_state = text.replace("\"live\"", "\"zombie\"");
        assert_eq!(Session::decode(bad_state.as_bytes()), None);
    }

    #[test]
    fn summary_agrees_with_the_full_record() {
        let mut s = sample_session("n", "alice", 5);
        s.lease = Some(Lease {
            owner: "vm".into(),
            job: 1,
            deadline_ns: 10,
            waiters: vec![],
            hold_ns: 0,
        });
        let summary = SlotSummary::decode(&s.encode().unwrap()).unwrap();
        assert_eq!((summary.created_ns, summary.validated_ns), (5, 5));
        assert!(summary.is_usable(6) && summary.has_live_lease(9) && !summary.has_live_lease(10));
        assert_eq!(SlotSummary::decode(b""), None);
        assert_eq!(SlotSummary::decode(b"{\"v\":2}"), None);
    }

    #[test]
    fn debug_never_prints_tokens_or_nonce() {
        let s = sample_session("nonce-value", "alice", 5);
        let text = format!("{s:?}");
        assert!(
            !text.contains("at-0") && !text.contains("rt-0") && !text.contains("nonce-value"),
            "{text}"
        );
    }

    #[test]
    fn kill_wipes_secrets_and_the_lease() {
        let mut s = sample_session("n", "alice", 5);
        s.lease = Some(Lease {
            owner: "vm".into(),
            job: 1,
            deadline_ns: 10,
            waiters: vec![3],
            hold_ns: 0,
        });
        s.kill("invalid_grant", 7);
        assert_eq!(s.state, SessionState::Dead);
        assert!(s.access_token.is_empty() && s.refresh_token.is_none() && s.lease.is_none());
        assert!(!s.is_usable(7));
    }

    #[test]
    fn usability_and_lease_liveness_follow_the_clock() {
        let mut s = sample_session("n", "alice", 0);
        assert!(s.is_usable(s.expires_ns - 1));
        assert!(!s.is_usable(s.expires_ns));
        s.lease = Some(Lease {
            owner: "vm".into(),
            job: 1,
            deadline_ns: 10,
            waiters: vec![],
            hold_ns: 0,
        });
        assert!(s.live_lease(9).is_some());
        assert!(s.live_lease(10).is_none());
    }
}
