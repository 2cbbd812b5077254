//! Bounded sets of one-time values in shared data (back-channel logout
//! `jti`s, completed login states), so a replay is refused on every VM.
//!
//! A set is `SEEN_BUCKETS` keys `P <tag>:<bucket>`, each holding at most
//! `SEEN_PER_BUCKET` entries `[hash, expires_ns]`; entries are dropped once
//! expired. A full bucket evicts the entry that expires first: under a flood
//! of distinct values an old value may become acceptable again, which is the
//! price of a fixed memory bound (the IdP's own single-use checks remain).

use serde::{Deserialize, Serialize};

use crate::session::update::cas_update;
use crate::session::{Change, SessionError};
use crate::store::SharedStore;

pub const SEEN_BUCKETS: u64 = 64;
pub const SEEN_PER_BUCKET: usize = 64;
/// Tag of the back-channel logout `jti` set.
pub const JTI_TAG: &str = "j";
/// Tag of the completed-login `state` set.
pub const STATE_TAG: &str = "u";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Bucket {
    v: u32,
    e: Vec<(u64, u64)>,
}

fn hash64(value: &str) -> u64 {
    let digest = hmac_sha256::Hash::hash(value.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// Records `value` until `expires_ns`. `Ok(false)` when it was already there
/// (a replay).
pub fn remember_once(
    store: &dyn SharedStore,
    prefix: &str,
    tag: &str,
    value: &str,
    expires_ns: u64,
    now_ns: u64,
) -> Result<bool, SessionError> {
    let hash = hash64(value);
    let key = format!("{prefix}{tag}:{}", hash % SEEN_BUCKETS);
    cas_update(
        store,
        &key,
        |bytes| {
            serde_json::from_slice::<Bucket>(bytes)
                .ok()
                .filter(|b| b.v == 1)
        },
        |b| serde_json::to_vec(b).ok(),
        |current| {
            let mut bucket = current.unwrap_or(Bucket {
                v: 1,
                e: Vec::new(),
            });
            bucket.e.retain(|(_, exp)| *exp > now_ns);
            if bucket.e.iter().any(|(h, _)| *h == hash) {
                return Change::Keep(false);
            }
            if bucket.e.len() >= SEEN_PER_BUCKET {
                if let Some(i) = bucket
                    .e
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (_, exp))| *exp)
                    .map(|(i, _)| i)
                {
                    bucket.e.swap_remove(i);
                }
            }
            bucket.e.push((hash, expires_ns));
            Change::Write(bucket, true)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn second_sighting_is_a_replay_until_expiry() {
        let store = MemoryStore::new();
        assert_eq!(remember_once(&store, "p:", "j", "a", 100, 0), Ok(true));
        assert_eq!(remember_once(&store, "p:", "j", "a", 100, 50), Ok(false));
        assert_eq!(remember_once(&store, "p:", "u", "a", 100, 50), Ok(true));
        assert_eq!(remember_once(&store, "p:", "j", "a", 200, 100), Ok(true));
    }

    #[test]
    fn buckets_stay_bounded() {
        let store = MemoryStore::new();
        for i in 0..(SEEN_BUCKETS as usize * SEEN_PER_BUCKET * 2) {
            remember_once(&store, "p:", "j", &format!("v{i}"), 1_000 + i as u64, 0).unwrap();
        }
        assert!(store.key_count() <= SEEN_BUCKETS as usize);
        for key in store.keys_with_prefix("p:j:") {
            let bucket: Bucket = serde_json::from_slice(&store.get(&key).unwrap().0).unwrap();
            assert!(bucket.e.len() <= SEEN_PER_BUCKET);
        }
    }
}
