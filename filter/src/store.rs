//! Shared data as the pure code sees it: one trait with the two proxy-wasm
//! operations, and an in-memory implementation with Envoy's exact semantics
//! for native tests.
//!
//! Envoy semantics this module pins down (the adapter's `ProxyStore` must not
//! add any of its own):
//! * `cas = 0` writes unconditionally;
//! * writing a key that does not exist creates it whatever the cas;
//! * otherwise a cas different from the key's current one is a mismatch;
//! * keys are never removed: "removing" writes an empty value, which readers
//!   treat as absent;
//! * cas values come from one proxy-wide counter (never 0).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Why a shared-data write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The key changed since it was read (the caller re-reads and retries).
    CasMismatch,
    /// Any other host status (the adapter maps them here; never retried).
    Host(u32),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::CasMismatch => f.write_str("shared data cas mismatch"),
            StoreError::Host(status) => write!(f, "shared data host status {status}"),
        }
    }
}

/// The only way pure code touches proxy shared data.
pub trait SharedStore {
    /// Value and cas of `key`; `None` when the key was never written.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Write `value` if `cas` matches (see the module doc for Envoy's rules).
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// The cas to pass when the key was absent at read time and the write must
/// not clobber a concurrent creator: Envoy ignores the cas for a missing key,
/// and for a key someone else just created this value is (with probability
/// 1 - 2^-32) not its cas, so the second creator gets `CasMismatch`. Callers
/// re-read after such a create to close the remaining chance.
pub const CREATE_IF_ABSENT_CAS: u32 = u32::MAX;

/// Shared data in memory, behaving like Envoy's `SharedData` for one proxy.
#[derive(Debug)]
pub struct MemoryStore {
    entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            entries: RefCell::new(HashMap::new()),
            next_cas: Cell::new(1),
        }
    }

    /// A store whose cas counter starts at `first` (tests of wrap-around and
    /// of the `CREATE_IF_ABSENT_CAS` collision).
    pub fn with_first_cas(first: u32) -> Self {
        let store = Self::new();
        store.next_cas.set(first.max(1));
        store
    }

    fn take_cas(&self) -> u32 {
        let cas = self.next_cas.get();
        let mut next = cas.wrapping_add(1);
        if next == 0 {
            next = 1;
        }
        self.next_cas.set(next);
        cas
    }

    /// Number of keys ever written (Envoy never frees one).
    pub fn key_count(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Bytes held: every key plus its current value.
    pub fn total_bytes(&self) -> usize {
        self.entries
            .borrow()
            .iter()
            .map(|(k, (v, _))| k.len() + v.len())
            .sum()
    }

    /// Keys starting with `prefix` (tests and figures).
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .entries
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        keys
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut entries = self.entries.borrow_mut();
        if let Some((_, current)) = entries.get(key) {
            if cas != 0 && cas != *current {
                return Err(StoreError::CasMismatch);
            }
        }
        let new_cas = self.take_cas();
        entries.insert(key.to_owned(), (value.to_vec(), new_cas));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn missing_key_reads_none_and_is_created_whatever_the_cas() {
        let store = MemoryStore::new();
        assert_eq!(store.get("k"), None);
        assert_eq!(store.set("k", b"v", 12345), Ok(()));
        let (value, cas) = store.get("k").unwrap();
        assert_eq!(value, b"v");
        assert_ne!(cas, 0);
    }

    #[test]
    fn stale_cas_is_a_mismatch_and_current_cas_wins() {
        let store = MemoryStore::new();
        store.set("k", b"a", 0).unwrap();
        let (_, cas1) = store.get("k").unwrap();
        store.set("k", b"b", cas1).unwrap();
        assert_eq!(store.set("k", b"c", cas1), Err(StoreError::CasMismatch));
        assert_eq!(store.get("k").unwrap().0, b"b");
    }

    #[test]
    fn zero_cas_overwrites_unconditionally() {
        let store = MemoryStore::new();
        store.set("k", b"a", 0).unwrap();
        store.set("k", b"b", 0).unwrap();
        assert_eq!(store.get("k").unwrap().0, b"b");
    }

    #[test]
    fn cas_counter_is_global_across_keys_and_skips_zero() {
        let store = MemoryStore::with_first_cas(u32::MAX);
        store.set("a", b"1", 0).unwrap();
        store.set("b", b"1", 0).unwrap();
        assert_eq!(store.get("a").unwrap().1, u32::MAX);
        assert_eq!(store.get("b").unwrap().1, 1);
    }

    #[test]
    fn create_if_absent_cas_loses_against_a_concurrent_creator() {
        let store = MemoryStore::new();
        store.set("k", b"first", CREATE_IF_ABSENT_CAS).unwrap();
        assert_eq!(
            store.set("k", b"second", CREATE_IF_ABSENT_CAS),
            Err(StoreError::CasMismatch)
        );
        assert_eq!(store.get("k").unwrap().0, b"first");
    }

    #[test]
    fn removal_keeps_the_key_and_counts_bytes() {
        let store = MemoryStore::new();
        store.set("key", b"value", 0).unwrap();
        assert_eq!((store.key_count(), store.total_bytes()), (1, 8));
        store.set("key", b"", 0).unwrap();
        assert_eq!((store.key_count(), store.total_bytes()), (1, 3));
        assert_eq!(store.get("key").unwrap().0, b"");
    }
}
