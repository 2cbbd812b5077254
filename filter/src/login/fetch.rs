//! One discovery / JWKS fetch per proxy, not per worker VM.
//!
//! `P d:fetch` holds the fetch state: a lease (`owner` = VM uid,
//! `deadline_ns`), the failure streak and the next retry time (backoff), and
//! a pending "unknown kid" refetch request. A VM's tick calls
//! `Fetcher::poll`; the VM that wins the cas on the lease performs the call
//! on its root context and writes the result (`P d:discovery`, `P d:jwks`),
//! then releases the lease. Every VM's `Provider::sync` picks the records
//! up. A lease whose deadline passed can be taken by anyone, so a VM that
//! died mid-fetch delays the next one by at most the call timeout.

use serde::{Deserialize, Serialize};

use super::idp_call::{get_json, IdpRequest, LoginCallKind};
use super::jwks::filter_jwks;
use super::provider::{
    discovery_key, jwks_key, parse_discovery, DiscoveryRecord, JwksRecord, ProviderMetadata,
    RECORD_VERSION,
};
use crate::config::{Config, LoginConfig};
use crate::revalidation::IdpAnswer;
use crate::session::update::cas_update;
use crate::session::Change;
use crate::store::SharedStore;

/// Unknown-kid refetches are at most this often (a token with a made-up
/// kid must not turn vigil into a JWKS flood).
pub const KID_REFETCH_INTERVAL_NS: u64 = 30 * 1_000_000_000;
const BACKOFF_BASE_NS: u64 = 1_000_000_000;
const BACKOFF_MAX_NS: u64 = 60 * 1_000_000_000;

pub fn fetch_key(prefix: &str) -> String {
    format!("{prefix}d:fetch")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FetchLease {
    owner: String,
    deadline_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FetchState {
    v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease: Option<FetchLease>,
    /// Consecutive failures (0 after a success).
    failures: u32,
    /// No new attempt before this time (backoff).
    retry_ns: u64,
    /// A request met a token with a kid the JWKS lacks.
    kid_wanted: bool,
}

impl FetchState {
    fn empty() -> FetchState {
        FetchState {
            v: RECORD_VERSION,
            lease: None,
            failures: 0,
            retry_ns: 0,
            kid_wanted: false,
        }
    }

    fn decode(bytes: &[u8]) -> Option<FetchState> {
        serde_json::from_slice::<FetchState>(bytes)
            .ok()
            .filter(|s| s.v == RECORD_VERSION)
    }

    fn encode(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }
}

/// `P d:fetch` as `FetchState` decodes and re-encodes it (`None` when it
/// reads as absent). Only for the `records` fuzz target, which checks
/// `decode(encode(x)) == x` on the private record type.
#[doc(hidden)]
pub fn reencode_fetch_state(bytes: &[u8]) -> Option<Vec<u8>> {
    FetchState::decode(bytes)?.encode()
}

fn read_state(store: &dyn SharedStore, prefix: &str) -> FetchState {
    store
        .get(&fetch_key(prefix))
        .and_then(|(bytes, _)| FetchState::decode(&bytes))
        .unwrap_or_else(FetchState::empty)
}

fn update_state<T>(
    store: &dyn SharedStore,
    prefix: &str,
    change: impl FnMut(FetchState) -> Change<FetchState, T>,
) -> Option<T> {
    let mut change = change;
    cas_update(
        store,
        &fetch_key(prefix),
        FetchState::decode,
        FetchState::encode,
        |current| change(current.unwrap_or_else(FetchState::empty)),
    )
    .ok()
}

/// What a failed fetch reports (log once per streak).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    pub kind: LoginCallKind,
    pub reason: &'static str,
    /// The first failure after a success (or since start): log it; later
    /// ones of the same streak are silent.
    pub first_of_streak: bool,
    pub retry_in_ns: u64,
}

/// Result of feeding an answer to the fetcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchStep {
    /// Dispatch this call too (the JWKS after discovery).
    Call(IdpRequest),
    Done,
    Failed(FetchFailure),
}

/// The per-VM side of the protocol: the one fetch this VM runs, if any.
#[derive(Debug, Default)]
pub struct Fetcher {
    in_flight: Option<LoginCallKind>,
    deadline_ns: u64,
}

impl Fetcher {
    pub fn new() -> Fetcher {
        Fetcher::default()
    }

    pub fn in_flight(&self) -> Option<LoginCallKind> {
        self.in_flight
    }

    /// Called on every tick (and on the first tick after configure: never
    /// dispatch from `on_configure`). `Some(call)`: this VM holds the lease;
    /// dispatch the call from the root context and pass the answer to
    /// `on_answer`.
    pub fn poll(
        &mut self,
        cfg: &Config,
        store: &dyn SharedStore,
        vm_uid: &str,
        now_ns: u64,
    ) -> Option<IdpRequest> {
        let login = cfg.login.as_ref()?;
        if self.in_flight.is_some() {
            if now_ns < self.deadline_ns {
                return None;
            }
            // The adapter lost the answer; the lease has expired anyway.
            self.in_flight = None;
        }
        let prefix = &cfg.shared_data_prefix;
        let state = read_state(store, prefix);
        if state.lease.as_ref().is_some_and(|l| now_ns < l.deadline_ns) || now_ns < state.retry_ns {
            return None;
        }
        let (kind, call) = due(cfg, login, store, &state, now_ns)?;
        let deadline_ns = now_ns.saturating_add(nanos(cfg.revalidate_timeout));
        let won = update_state(store, prefix, |mut current| {
            let taken = current
                .lease
                .as_ref()
                .is_some_and(|l| now_ns < l.deadline_ns);
            if taken || now_ns < current.retry_ns {
                return Change::Keep(false);
            }
            current.lease = Some(FetchLease {
                owner: vm_uid.to_string(),
                deadline_ns,
            });
            Change::Write(current, true)
        })?;
        if !won {
            return None;
        }
        self.in_flight = Some(kind);
        self.deadline_ns = deadline_ns;
        Some(call)
    }

    /// The answer to this VM's call. Writes the record, then either asks for
    /// the next call or releases the lease (with backoff on failure).
    pub fn on_answer(
        &mut self,
        cfg: &Config,
        store: &dyn SharedStore,
        vm_uid: &str,
        now_ns: u64,
        answer: &IdpAnswer,
    ) -> FetchStep {
        let (Some(kind), Some(login)) = (self.in_flight.take(), cfg.login.as_ref()) else {
            return FetchStep::Done;
        };
        let prefix = &cfg.shared_data_prefix;
        let body = match answer {
            IdpAnswer::Response {
                status: 200, body, ..
            } => Ok(body.as_slice()),
            IdpAnswer::Response { status, .. } if *status >= 500 => Err("server error"),
            IdpAnswer::Response { .. } => Err("unexpected status"),
            IdpAnswer::Timeout => Err("timeout"),
            IdpAnswer::Reset => Err("reset"),
            IdpAnswer::Unreachable => Err("connect failure"),
        };
        let written = body.and_then(|body| match kind {
            LoginCallKind::Discovery => {
                let record = parse_discovery(body, &login.provider, now_ns)?;
                write_record(store, &discovery_key(prefix), &record)
            }
            _ => {
                let keys = filter_jwks(body)?;
                let record = JwksRecord {
                    v: RECORD_VERSION,
                    fetched_ns: now_ns,
                    keys,
                };
                write_record(store, &jwks_key(prefix), &record)
            }
        });
        if let Err(reason) = written {
            return self.fail(cfg, store, vm_uid, now_ns, kind, reason);
        }
        if kind == LoginCallKind::Discovery {
            let state = read_state(store, prefix);
            if let Some((next, call)) = due(cfg, login, store, &state, now_ns) {
                if next == LoginCallKind::Jwks {
                    // Keep the lease: one holder fetches both documents.
                    let deadline_ns = now_ns.saturating_add(nanos(cfg.revalidate_timeout));
                    let kept = update_state(store, prefix, |mut s| match &mut s.lease {
                        Some(l) if l.owner == vm_uid => {
                            l.deadline_ns = deadline_ns;
                            Change::Write(s, true)
                        }
                        _ => Change::Keep(false),
                    });
                    if kept == Some(true) {
                        self.in_flight = Some(next);
                        self.deadline_ns = deadline_ns;
                        return FetchStep::Call(call);
                    }
                    return FetchStep::Done;
                }
            }
        }
        let fetched_jwks = kind == LoginCallKind::Jwks;
        update_state(store, prefix, |mut s| {
            if s.lease.as_ref().is_some_and(|l| l.owner == vm_uid) {
                s.lease = None;
            }
            s.failures = 0;
            s.retry_ns = 0;
            s.kid_wanted &= !fetched_jwks;
            Change::Write(s, ())
        });
        FetchStep::Done
    }

    fn fail(
        &mut self,
        cfg: &Config,
        store: &dyn SharedStore,
        vm_uid: &str,
        now_ns: u64,
        kind: LoginCallKind,
        reason: &'static str,
    ) -> FetchStep {
        let failures = update_state(store, &cfg.shared_data_prefix, |mut s| {
            if s.lease.as_ref().is_some_and(|l| l.owner == vm_uid) {
                s.lease = None;
            }
            s.failures = s.failures.saturating_add(1);
            s.retry_ns = now_ns.saturating_add(backoff_ns(s.failures));
            let failures = s.failures;
            Change::Write(s, failures)
        })
        .unwrap_or(1);
        FetchStep::Failed(FetchFailure {
            kind,
            reason,
            first_of_streak: failures == 1,
            retry_in_ns: backoff_ns(failures),
        })
    }
}

fn write_record<T: Serialize>(
    store: &dyn SharedStore,
    key: &str,
    record: &T,
) -> Result<(), &'static str> {
    let bytes = serde_json::to_vec(record).map_err(|_| "encode error")?;
    // Only the lease holder writes; a late writer's copy is as good.
    store
        .set(key, &bytes, 0)
        .map_err(|_| "shared data write failed")
}

/// 1s, 2s, 4s ... capped at 60s.
fn backoff_ns(failures: u32) -> u64 {
    let exp = failures.saturating_sub(1).min(6);
    BACKOFF_BASE_NS.saturating_mul(1 << exp).min(BACKOFF_MAX_NS)
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The fetch due now, if any: discovery first (missing or stale), then the
/// JWKS (missing, stale, or an unknown kid seen and the rate limit allows).
fn due(
    cfg: &Config,
    login: &LoginConfig,
    store: &dyn SharedStore,
    state: &FetchState,
    now_ns: u64,
) -> Option<(LoginCallKind, IdpRequest)> {
    let prefix = &cfg.shared_data_prefix;
    let refresh = nanos(login.provider.metadata_refresh);
    let timeout = cfg.revalidate_timeout;
    let stale = |fetched_ns: u64| fetched_ns.saturating_add(refresh) <= now_ns;
    let discovery = store
        .get(&discovery_key(prefix))
        .and_then(|(b, _)| DiscoveryRecord::decode(&b))
        .filter(|d| d.issuer == login.provider.issuer);
    if login.provider.discovery && discovery.as_ref().is_none_or(|d| stale(d.fetched_ns)) {
        let call = get_json(
            LoginCallKind::Discovery,
            &login.provider.discovery_endpoint,
            timeout,
        );
        return Some((LoginCallKind::Discovery, call));
    }
    let metadata = ProviderMetadata::resolve(&login.provider, discovery.as_ref())?;
    let jwks = store
        .get(&jwks_key(prefix))
        .and_then(|(b, _)| JwksRecord::decode(&b));
    // The rate limit counts from the last successful JWKS fetch; failed
    // attempts are spaced by the backoff.
    let kid_due = |fetched_ns: u64| {
        state.kid_wanted && now_ns >= fetched_ns.saturating_add(KID_REFETCH_INTERVAL_NS)
    };
    if jwks
        .as_ref()
        .is_none_or(|j| stale(j.fetched_ns) || kid_due(j.fetched_ns))
    {
        let call = get_json(LoginCallKind::Jwks, &metadata.jwks_uri, timeout);
        return Some((LoginCallKind::Jwks, call));
    }
    None
}

/// A token named a kid the JWKS lacks: ask for a refetch (performed by the
/// next tick of some VM, at most once per `KID_REFETCH_INTERVAL_NS`).
pub fn request_jwks_refetch(cfg: &Config, store: &dyn SharedStore) {
    update_state(store, &cfg.shared_data_prefix, |mut s| {
        if s.kid_wanted {
            return Change::Keep(());
        }
        s.kid_wanted = true;
        Change::Write(s, ())
    });
}

/// Seconds for `Retry-After` while discovery or the JWKS is missing.
pub fn retry_after_s(cfg: &Config, store: &dyn SharedStore, now_ns: u64) -> u64 {
    let state = read_state(store, &cfg.shared_data_prefix);
    let wait_ns = state.retry_ns.saturating_sub(now_ns);
    wait_ns.div_ceil(1_000_000_000).max(1)
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
