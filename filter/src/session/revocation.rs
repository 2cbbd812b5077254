//! Per-subject revocation cut-offs, in `revocation_buckets` shared-data keys.
//!
//! A token of subject S is revoked when `iat_ns <= cutoff(S)` or
//! `iat_ns <= floor_ns` of S's bucket. Entries are dropped once every token
//! they cover has expired (`cutoff + max_token_lifetime + leeway < now`); a
//! bucket keeps at most `MAX_BUCKET_ENTRIES`, folding the oldest into
//! `floor_ns` (revokes more, never less).

use serde::{Deserialize, Serialize};

use super::update::{cas_update, Change, SessionError};
use super::MAX_SUBJECT_LEN;
use crate::config::Config;
use crate::store::SharedStore;

pub const MAX_BUCKET_ENTRIES: usize = 64;
const BUCKET_VERSION: u32 = 1;

/// The record under `P r/<bucket>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationBucket {
    pub v: u32,
    pub floor_ns: u64,
    /// `(sub, cutoff_ns)`, at most one entry per subject.
    pub subs: Vec<(String, u64)>,
}

impl RevocationBucket {
    fn empty() -> Self {
        Self {
            v: BUCKET_VERSION,
            floor_ns: 0,
            subs: Vec::new(),
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() {
            return None;
        }
        let bucket: Self = serde_json::from_slice(bytes).ok()?;
        (bucket.v == BUCKET_VERSION).then_some(bucket)
    }

    pub fn encode(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok().filter(|b| !b.is_empty())
    }

    /// Everything at or before this instant is revoked for `sub`.
    pub fn cutoff(&self, sub: &str) -> u64 {
        let own = self
            .subs
            .iter()
            .find(|(s, _)| s == sub)
            .map_or(0, |(_, c)| *c);
        own.max(self.floor_ns)
    }

    /// Drops entries whose tokens have all expired, then folds the oldest
    /// into the floor until the cap holds.
    fn compact(&mut self, retain_ns: u64, now_ns: u64) {
        let expired = |cutoff: u64| cutoff.saturating_add(retain_ns) < now_ns;
        self.subs.retain(|(_, cutoff)| !expired(*cutoff));
        if expired(self.floor_ns) {
            self.floor_ns = 0;
        }
        if self.subs.len() > MAX_BUCKET_ENTRIES {
            self.subs.sort_by_key(|(_, cutoff)| *cutoff);
            let overflow = self.subs.len() - MAX_BUCKET_ENTRIES;
            for (_, cutoff) in self.subs.drain(..overflow) {
                self.floor_ns = self.floor_ns.max(cutoff);
            }
        }
    }
}

/// FNV-1a, 64 bits: stable across builds and VMs (std's hasher is seeded).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Shared-data key of `sub`'s bucket.
pub fn bucket_key(prefix: &str, buckets: u32, sub: &str) -> String {
    let index = fnv1a64(sub.as_bytes()) % u64::from(buckets.max(1));
    format!("{prefix}r:{index}")
}

/// Shared-data key of bucket number `index`.
pub fn bucket_key_at(prefix: &str, index: u32) -> String {
    format!("{prefix}r:{index}")
}

fn read_bucket(store: &dyn SharedStore, cfg: &Config, sub: &str) -> Option<RevocationBucket> {
    let key = bucket_key(&cfg.shared_data_prefix, cfg.revocation_buckets, sub);
    store
        .get(&key)
        .and_then(|(bytes, _)| RevocationBucket::decode(&bytes))
}

/// How long a revocation must be remembered: the longest a token it covers
/// can still be accepted.
fn retention_ns(cfg: &Config) -> u64 {
    let nanos = cfg
        .max_token_lifetime
        .saturating_add(cfg.downstream.leeway)
        .as_nanos();
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// The subject's effective cut-off (0 = never revoked).
pub fn revocation_cutoff(store: &dyn SharedStore, cfg: &Config, sub: &str) -> u64 {
    read_bucket(store, cfg, sub).map_or(0, |b| b.cutoff(sub))
}

/// Whether a token of `sub` issued at `iat_ns` is revoked. An undecodable
/// bucket is absent (documented: corruption must not trap).
pub fn is_revoked(store: &dyn SharedStore, cfg: &Config, sub: &str, iat_ns: u64) -> bool {
    let cutoff = revocation_cutoff(store, cfg, sub);
    cutoff != 0 && iat_ns <= cutoff
}

/// `iat_ns` for a token minted now: strictly after the subject's cut-off, so
/// a login right after a revocation works even within the same nanosecond.
pub fn mint_time_ns(store: &dyn SharedStore, cfg: &Config, sub: &str, now_ns: u64) -> u64 {
    now_ns.max(revocation_cutoff(store, cfg, sub).saturating_add(1))
}

/// Revokes every token of `sub` issued so far and returns the cut-off. The
/// cut-off is `max(now, previous cut-off + 1)`, which is at or after every
/// `iat_ns` `mint_time_ns` can have handed out before this call.
pub fn revoke_subject(
    store: &dyn SharedStore,
    cfg: &Config,
    sub: &str,
    now_ns: u64,
) -> Result<u64, SessionError> {
    if sub.len() > MAX_SUBJECT_LEN {
        return Err(SessionError::SubjectTooLong);
    }
    let key = bucket_key(&cfg.shared_data_prefix, cfg.revocation_buckets, sub);
    let retain = retention_ns(cfg);
    cas_update(
        store,
        &key,
        RevocationBucket::decode,
        RevocationBucket::encode,
        |current| {
            let mut bucket = current.unwrap_or_else(RevocationBucket::empty);
            let cutoff = now_ns.max(bucket.cutoff(sub).saturating_add(1));
            bucket.subs.retain(|(s, _)| s != sub);
            bucket.subs.push((sub.to_owned(), cutoff));
            bucket.compact(retain, now_ns);
            Change::Write(bucket, cutoff)
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::revalidation::testing::test_config;
    use crate::store::MemoryStore;

    #[test]
    fn revocation_covers_earlier_tokens_and_a_relogin_in_the_same_ns_works() {
        let store = MemoryStore::new();
        let cfg = test_config();
        assert!(!is_revoked(&store, &cfg, "alice", 5));
        let cutoff = revoke_subject(&store, &cfg, "alice", 1_000).unwrap();
        assert_eq!(cutoff, 1_000);
        assert!(is_revoked(&store, &cfg, "alice", 999));
        assert!(is_revoked(&store, &cfg, "alice", 1_000));
        assert!(!is_revoked(&store, &cfg, "bob", 1_000));
        let iat = mint_time_ns(&store, &cfg, "alice", 1_000);
        assert_eq!(iat, 1_001);
        assert!(!is_revoked(&store, &cfg, "alice", iat));
        // A second revocation at the same instant also covers that re-login.
        let again = revoke_subject(&store, &cfg, "alice", 1_000).unwrap();
        assert!(again >= iat && is_revoked(&store, &cfg, "alice", iat));
    }

    #[test]
    fn old_entries_are_pruned_after_lifetime_plus_leeway() {
        let store = MemoryStore::new();
        let mut cfg = test_config();
        cfg.revocation_buckets = 1;
        revoke_subject(&store, &cfg, "old", 1_000).unwrap();
        let retain = retention_ns(&cfg);
        revoke_subject(&store, &cfg, "new", 1_000 + retain).unwrap();
        assert!(is_revoked(&store, &cfg, "old", 1_000));
        revoke_subject(&store, &cfg, "new", 1_001 + retain).unwrap();
        assert!(!is_revoked(&store, &cfg, "old", 1_000));
        let bucket = read_bucket(&store, &cfg, "x").unwrap();
        assert_eq!(bucket.subs.len(), 1);
    }

    #[test]
    fn overflow_folds_the_oldest_into_the_floor() {
        let store = MemoryStore::new();
        let mut cfg = test_config();
        cfg.revocation_buckets = 1;
        for i in 0..=MAX_BUCKET_ENTRIES as u64 {
            revoke_subject(&store, &cfg, &format!("u{i}"), 100 + i).unwrap();
        }
        let bucket = read_bucket(&store, &cfg, "x").unwrap();
        assert_eq!(bucket.subs.len(), MAX_BUCKET_ENTRIES);
        assert_eq!(bucket.floor_ns, 100);
        // The folded subject stays revoked; others are revoked up to the floor.
        assert!(is_revoked(&store, &cfg, "u0", 100));
        assert!(is_revoked(&store, &cfg, "stranger", 100));
        assert!(!is_revoked(&store, &cfg, "stranger", 101));
        assert_eq!(mint_time_ns(&store, &cfg, "stranger", 50), 101);
    }

    #[test]
    fn corrupt_bucket_reads_as_empty_and_is_rewritten() {
        let store = MemoryStore::new();
        let cfg = test_config();
        let key = bucket_key("vigil:", cfg.revocation_buckets, "alice");
        store.set(&key, b"not json", 0).unwrap();
        assert!(!is_revoked(&store, &cfg, "alice", 1));
        revoke_subject(&store, &cfg, "alice", 10).unwrap();
        assert!(is_revoked(&store, &cfg, "alice", 10));
    }

    #[test]
    fn bucket_index_is_stable_fnv1a() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            bucket_key("p:", 1024, "a"),
            format!("p:r:{}", 0xaf63_dc4c_8601_ec8cu64 % 1024)
        );
    }
}
