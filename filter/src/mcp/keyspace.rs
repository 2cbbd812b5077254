//! Every shared-data key the authorization server writes, and the CRC-32
//! alias check ngx_wasm_module needs (see `session::keyspace`): on nginx the
//! configuration is refused when any two keys of vigil's whole key space
//! (sessions, revocation buckets, IdP metadata, one-time sets, and these)
//! have the same CRC-32.
//!
//! Bound: `refresh_families` + `CODE_BUCKETS` + `cache_entries` keys.

use std::collections::HashMap;

use super::cimd::cache_key_at;
use super::code::{marker_key, CODE_BUCKETS};
use super::family::family_key;
use crate::config::McpConfig;

/// The keys of the MCP authorization server under `prefix`.
pub fn mcp_keys<'a>(prefix: &'a str, mcp: &'a McpConfig) -> impl Iterator<Item = String> + 'a {
    let cache = mcp.cimd.as_ref().map_or(0, |c| c.cache_entries);
    (0..mcp.refresh_families)
        .map(move |slot| family_key(prefix, slot))
        .chain((0..CODE_BUCKETS).map(move |b| marker_key(prefix, b)))
        .chain((0..cache).map(move |i| cache_key_at(prefix, i)))
}

/// How many keys `mcp_keys` yields.
pub fn key_count(mcp: &McpConfig) -> u64 {
    u64::from(mcp.refresh_families) + CODE_BUCKETS + u64::from(mcp.cimd.as_ref().map_or(0, |c| c.cache_entries))
}

/// The bytes ngx_wasm_module hashes: the key, and the part after the first
/// `/` when the key names a declared `shm_kv` zone.
fn hashed_forms(key: &str) -> impl Iterator<Item = &str> {
    std::iter::once(key).chain(key.split_once('/').map(|(_, rest)| rest))
}

/// Two keys of `keys` whose CRC-32 (of either hashed form) is equal.
pub fn first_alias(keys: impl IntoIterator<Item = String>) -> Option<(String, String)> {
    let mut seen: [HashMap<u32, String>; 2] = [HashMap::new(), HashMap::new()];
    for key in keys {
        let hashes: Vec<u32> = hashed_forms(&key).map(|text| crc32fast::hash(text.as_bytes())).collect();
        for (form, hash) in hashes.into_iter().enumerate() {
            if let Some(other) = seen[form.min(1)].insert(hash, key.clone()) {
                if other != key {
                    return Some((other, key));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::testing::mcp_config;

    #[test]
    fn the_key_space_is_what_the_modules_write() {
        let mut mcp = mcp_config();
        mcp.refresh_families = 2;
        if let Some(c) = mcp.cimd.as_mut() {
            c.cache_entries = 2;
        }
        let keys: Vec<String> = mcp_keys("p:", &mcp).collect();
        assert_eq!(keys.len() as u64, key_count(&mcp));
        assert_eq!(&keys[..3], ["p:mf:0", "p:mf:1", "p:mu:0"]);
        assert_eq!(&keys[keys.len() - 2..], ["p:mc:0", "p:mc:1"]);
    }

    #[test]
    fn aliases_are_found() {
        let keys = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        assert!(first_alias(keys("p:plumless", "p:buckeroo")).is_some());
        assert_eq!(first_alias(keys("p:plumless", "p:buckeroe")), None);
    }

    #[test]
    fn the_largest_mcp_key_space_with_the_default_sessions_has_no_alias() {
        let mut mcp = mcp_config();
        mcp.refresh_families = 1_000_000;
        if let Some(c) = mcp.cimd.as_mut() {
            c.cache_entries = 65_536;
        }
        let all = crate::session::keyspace::all_keys("vigil:", 10_000, 1024).chain(mcp_keys("vigil:", &mcp));
        assert_eq!(first_alias(all), None);
    }
}
