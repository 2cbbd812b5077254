//! Per-VM cache of verified downstream tokens, so that asymmetric signature
//! checks do not run on every request of a session.
//!
//! An entry is served only until the token's `exp` (no leeway): past that the
//! token goes through full verification again. Revocation and session checks
//! are not cached; the request path runs them on every request.

use std::collections::HashMap;

use super::claims::DownstreamClaims;

/// Bounded map token -> verified claims.
#[derive(Debug)]
pub struct TokenCache {
    capacity: usize,
    entries: HashMap<String, DownstreamClaims>,
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens (0 disables caching).
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            entries: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything (on reconfiguration: keys may have changed).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The cached claims of `token` if it was verified and has not expired.
    pub fn get(&mut self, token: &str, now_ns: u64) -> Option<DownstreamClaims> {
        let claims = self.entries.get(token)?;
        if now_ns < claims.exp_ns() {
            return Some(claims.clone());
        }
        self.entries.remove(token);
        None
    }

    /// Remembers a verified token. When full, expired entries go first; if
    /// that frees nothing, an arbitrary half goes. Either way the O(n) sweep
    /// runs at most once per n/2 inserts, so a stream of distinct tokens
    /// (a busy VM or a flood) costs O(1) per insert, not a scan each time.
    pub fn insert(&mut self, token: &str, claims: DownstreamClaims, now_ns: u64) {
        if self.capacity == 0 || now_ns >= claims.exp_ns() {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(token) {
            self.entries.retain(|_, c| now_ns < c.exp_ns());
            if self.entries.len() >= self.capacity {
                let mut keep = self.capacity / 2;
                self.entries.retain(|_, _| {
                    let kept = keep > 0;
                    keep = keep.saturating_sub(1);
                    kept
                });
            }
        }
        self.entries.insert(token.to_string(), claims);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::Map;

    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn claims(sub: &str, exp: u64) -> DownstreamClaims {
        DownstreamClaims {
            sub: sub.to_string(),
            sid: "1.abc".to_string(),
            iat_ns: 0,
            exp,
            extra: Map::new(),
        }
    }

    #[test]
    fn serves_entries_until_exp() {
        let mut cache = TokenCache::new(4);
        cache.insert("t", claims("a", 100), 10 * SEC);
        assert_eq!(cache.get("t", 99 * SEC).unwrap().sub, "a");
        assert_eq!(cache.get("t", 100 * SEC), None);
        assert!(cache.is_empty(), "expired entry dropped on lookup");
        assert_eq!(cache.get("unknown", 0), None);
    }

    #[test]
    fn does_not_store_expired_tokens() {
        let mut cache = TokenCache::new(4);
        cache.insert("t", claims("a", 100), 100 * SEC);
        assert!(cache.is_empty());
        let mut off = TokenCache::new(0);
        off.insert("t", claims("a", 100), 0);
        assert!(off.is_empty());
    }

    #[test]
    fn stays_within_capacity_evicting_expired_then_half() {
        let mut cache = TokenCache::new(4);
        cache.insert("a", claims("a", 50), 0);
        cache.insert("b", claims("b", 300), 0);
        cache.insert("c", claims("c", 200), 0);
        cache.insert("d", claims("d", 200), 0);
        // At t=60 "a" has expired: it makes room, the live ones stay.
        cache.insert("e", claims("e", 400), 60 * SEC);
        assert_eq!(cache.len(), 4);
        for token in ["b", "c", "d", "e"] {
            assert!(cache.get(token, 60 * SEC).is_some(), "{token}");
        }
        // Full with live entries: half of them go, the new one is kept.
        cache.insert("f", claims("f", 500), 60 * SEC);
        assert_eq!(cache.len(), 3);
        assert!(cache.get("f", 60 * SEC).is_some());
        // Re-inserting a present token does not evict.
        cache.insert("f", claims("f", 500), 60 * SEC);
        assert_eq!(cache.len(), 3);
        for i in 0..1000 {
            cache.insert(&format!("x{i}"), claims("x", 1000 + i), 60 * SEC);
            assert!(cache.len() <= 4);
        }
        cache.clear();
        assert!(cache.is_empty());
    }
}
