//! Every shared-data key vigil can write, and the guard against ngx_wasm_module's
//! key aliasing: its store finds a key by the CRC-32 of its bytes alone
//! (compares no key bytes), so two keys with equal CRC-32 would read and
//! overwrite each other's values. The key space is fixed by the configuration
//! (session slots, revocation buckets, the IdP metadata records), so it can be
//! checked once, at configure time, and moved under another prefix if two of
//! its keys alias. Envoy compares whole keys; there the check is not needed.

use std::collections::HashMap;

use super::revocation::bucket_key_at;
use super::slots::session_key;

/// The fixed keys other than slots and buckets (`login/fetch.rs`, `login/provider.rs`).
const METADATA_KEYS: [&str; 3] = ["d:fetch", "d:discovery", "d:jwks"];

/// Every key vigil writes under `prefix`.
pub fn all_keys(prefix: &str, max_sessions: u32, buckets: u32) -> impl Iterator<Item = String> + '_ {
    (0..max_sessions)
        .map(move |slot| session_key(prefix, slot))
        .chain((0..buckets).map(move |bucket| bucket_key_at(prefix, bucket)))
        .chain(METADATA_KEYS.iter().map(move |k| format!("{prefix}{k}")))
}

/// The bytes ngx_wasm_module hashes: the part after the first `/` when the key
/// names a declared `shm_kv` zone, else the whole key. Which applies depends
/// on the nginx configuration, so both must be free of collisions.
fn hashed_forms(key: &str) -> impl Iterator<Item = &str> {
    let after_zone = key.split_once('/').map(|(_, rest)| rest);
    std::iter::once(key).chain(after_zone)
}

/// Two keys of the space whose CRC-32 (of either hashed form) is equal.
/// Note that for keys of equal length CRC-32 collisions do not depend on a
/// common prefix (the CRC of the difference decides), so changing
/// `shared_data_prefix` cannot break them; the largest allowed key space has
/// none (tests below), so a hit means a configuration to refuse, not to repair.
pub fn first_alias(prefix: &str, max_sessions: u32, buckets: u32) -> Option<(String, String)> {
    first_alias_among(all_keys(prefix, max_sessions, buckets))
}

fn first_alias_among(keys: impl IntoIterator<Item = String>) -> Option<(String, String)> {
    let mut seen: [HashMap<u32, String>; 2] = [HashMap::new(), HashMap::new()];
    for key in keys {
        let hashes: Vec<u32> = hashed_forms(&key).map(|text| crc32fast::hash(text.as_bytes())).collect();
        for (form, hash) in hashes.into_iter().enumerate() {
            if let Some(other) = seen[form.min(1)].insert(hash, key.clone()) {
                return Some((other, key));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_key_space_has_no_crc32_aliases() {
        assert_eq!(first_alias("vigil:", 10_000, 1024), None);
        assert_eq!(first_alias("vigil/", 10_000, 1024), None);
    }

    #[test]
    fn the_largest_key_space_has_no_crc32_aliases() {
        assert_eq!(first_alias("vigil:", 1_000_000, 65_536), None);
    }

    #[test]
    fn aliasing_keys_are_found_in_either_hashed_form() {
        // "plumless" and "buckeroo" are a known CRC-32 collision.
        assert_eq!(crc32fast::hash(b"plumless"), crc32fast::hash(b"buckeroo"));
        let keys = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        assert_eq!(first_alias_among(keys("plumless", "buckeroo")), Some(("plumless".into(), "buckeroo".into())));
        // Equal-length keys keep the collision under any common prefix...
        assert!(first_alias_among(keys("p:plumless", "p:buckeroo")).is_some());
        // ...and keys in a declared zone are hashed without "<zone>/".
        assert!(first_alias_among(keys("a/plumless", "bb/buckeroo")).is_some());
        assert_eq!(first_alias_among(keys("p:plumless", "p:buckeroe")), None);
    }

    #[test]
    fn every_kind_of_key_is_in_the_space() {
        let keys: Vec<String> = all_keys("p:", 2, 2).collect();
        assert_eq!(keys, ["p:s:0", "p:s:1", "p:r:0", "p:r:1", "p:d:fetch", "p:d:discovery", "p:d:jwks"]);
    }
}
