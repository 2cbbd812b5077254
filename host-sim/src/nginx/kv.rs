//! ngx_wasm_module's shared key/value store (`shm_kv NAME SIZE [eviction=...]` zones), as
//! `src/common/shm/ngx_wa_shm_kv.c` and `ngx_proxy_wasm_host.c` (prerelease-0.6.0) implement it:
//!
//! * a key `ns/rest` lives in zone `ns` when such a zone is declared, otherwise in `*`; no zone at all traps.
//!   The whole key (`ns/rest`, not `rest`) is what the zone hashes and stores (`set_shared_data` passes the
//!   original key to `ngx_wa_shm_kv_set_locked`).
//! * inside a zone, entries are found by the CRC-32 of the key alone: two keys with the same CRC-32 are one
//!   entry. A get returns the other key's value; a matching-cas set overwrites it and keeps the old key bytes
//!   unless the new value is longer (then the entry is reallocated with the new key).
//! * a write is done only if `cas == (absent ? 0 : entry.cas)`: an absent key is created only with cas 0, an
//!   existing one needs its own cas (cas 0 is a mismatch). Each entry counts its writes from 1.
//! * a null value pointer deletes (`remove_shared_data`), with the same cas check; deleting an absent key is a
//!   mismatch.
//! * memory: every entry takes a slab chunk for `node + key + value`; a zone that cannot fit a new chunk evicts
//!   least recently used entries (`lru`, `slru`) or makes the hostcall trap (`eviction=none`).

use crate::types::ShmEviction;
use std::collections::BTreeMap;

/// `sizeof(ngx_wa_shm_kv_node_t)` on x86_64: rbtree node 40 + key `ngx_str_t` 16 + value 16 + cas 4 (+4) + queue 16.
pub const NODE_BYTES: usize = 96;
const PAGE: usize = 4096;
/// `sizeof(ngx_slab_page_t)`: nginx keeps one per page of the zone.
const PAGE_HEADER: usize = 24;
/// The slab pool header, its slot and stats arrays and the store's own rbtree: taken from the zone first.
const POOL_OVERHEAD: usize = 2048;

/// One declared zone.
#[derive(Clone, Debug)]
pub struct Zone {
    pub name: String,
    /// Declared size in bytes; `None` is unbounded (the default `*` zone of a sim that declares none).
    pub size: Option<usize>,
    pub eviction: ShmEviction,
    pub queue: bool,
    nodes: BTreeMap<u32, Node>,
    used: usize,
    clock: u64,
}

#[derive(Clone, Debug)]
struct Node {
    key: String,
    value: Vec<u8>,
    cas: u32,
    /// The slab chunk the entry occupies (it does not shrink when a shorter value is written in place).
    chunk: usize,
    last_use: u64,
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub enum KvWrite {
    Written,
    CasMismatch,
    /// eviction=none and no room: ngx_wasm_module logs CRIT "no memory" and the hostcall traps.
    NoMemory,
}

/// The slab chunk nginx's allocator hands out for `size` bytes: a power of two (at least 8) up to half a page,
/// whole pages above.
pub fn chunk(size: usize) -> usize {
    if size > PAGE / 2 {
        size.div_ceil(PAGE) * PAGE
    } else {
        size.max(8).next_power_of_two()
    }
}

pub fn crc32(key: &str) -> u32 {
    crc32fast::hash(key.as_bytes())
}

impl Zone {
    pub fn kv(name: &str, size: Option<usize>, eviction: ShmEviction) -> Zone {
        Zone { name: name.to_string(), size, eviction, queue: false, nodes: BTreeMap::new(), used: 0, clock: 0 }
    }

    pub fn queue(name: &str) -> Zone {
        Zone { queue: true, ..Zone::kv(name, None, ShmEviction::None) }
    }

    /// Bytes of slab pages the zone can hand out (approximately what nginx's slab allocator gets from `size`).
    pub fn capacity(&self) -> usize {
        match self.size {
            None => usize::MAX,
            Some(size) => (size.saturating_sub(POOL_OVERHEAD) / (PAGE + PAGE_HEADER)) * PAGE,
        }
    }

    /// Bytes of slab chunks in use.
    pub fn used(&self) -> usize {
        self.used
    }

    fn touch(&mut self, hash: u32) {
        self.clock += 1;
        let clock = self.clock;
        if self.eviction != ShmEviction::None {
            if let Some(node) = self.nodes.get_mut(&hash) {
                node.last_use = clock;
            }
        }
    }

    /// (value, cas) of the entry whose CRC-32 is the key's; a get refreshes the LRU position.
    pub fn get(&mut self, key: &str) -> Option<(Vec<u8>, u32)> {
        let hash = crc32(key);
        self.touch(hash);
        self.nodes.get(&hash).map(|n| (n.value.clone(), n.cas))
    }

    /// The stored key bytes and value of the entry `key` hashes to (read-only, for tests).
    pub fn peek(&self, key: &str) -> Option<(&str, &[u8], u32)> {
        self.nodes.get(&crc32(key)).map(|n| (n.key.as_str(), n.value.as_slice(), n.cas))
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &[u8], u32)> {
        self.nodes.values().map(|n| (n.key.as_str(), n.value.as_slice(), n.cas))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// `ngx_wa_shm_kv_set_locked`: `value = None` deletes.
    pub fn set(&mut self, key: &str, value: Option<&[u8]>, cas: u32) -> KvWrite {
        let hash = crc32(key);
        let current = self.nodes.get(&hash).map(|n| n.cas);
        if cas != current.unwrap_or(0) {
            return KvWrite::CasMismatch;
        }
        let Some(value) = value else {
            return match self.nodes.remove(&hash) {
                Some(node) => {
                    self.used -= node.chunk;
                    KvWrite::Written
                }
                None => KvWrite::CasMismatch,
            };
        };
        self.clock += 1;
        let clock = self.clock;
        if let Some(node) = self.nodes.get_mut(&hash) {
            if value.len() <= node.value.len() {
                // In place: the entry keeps its chunk and its key bytes (an alias keeps the first key).
                node.value = value.to_vec();
                node.cas += 1;
                node.last_use = clock;
                return KvWrite::Written;
            }
        }
        // A new chunk is allocated while the old one is still held, then the old one is freed.
        let need = chunk(NODE_BYTES + key.len() + value.len());
        while self.used.saturating_add(need) > self.capacity() {
            if self.eviction == ShmEviction::None || !self.evict_lru(hash) {
                return KvWrite::NoMemory;
            }
        }
        let old_cas = match self.nodes.remove(&hash) {
            Some(old) => {
                self.used -= old.chunk;
                old.cas
            }
            None => 0,
        };
        self.used += need;
        self.nodes.insert(hash, Node { key: key.to_string(), value: value.to_vec(), cas: old_cas + 1, chunk: need, last_use: clock });
        KvWrite::Written
    }

    /// Drops the least recently used entry other than `keep`; false when there is none.
    fn evict_lru(&mut self, keep: u32) -> bool {
        let victim = self.nodes.iter().filter(|(h, _)| **h != keep).min_by_key(|(_, n)| n.last_use).map(|(h, _)| *h);
        match victim.and_then(|h| self.nodes.remove(&h)) {
            Some(node) => {
                self.used -= node.chunk;
                true
            }
            None => false,
        }
    }
}

/// Every `shm_kv` and `shm_queue` zone of the simulated nginx.conf, in declaration order (a queue's token is
/// its index in this list, as in ngx_wasm_module).
#[derive(Clone, Debug)]
pub struct Zones {
    pub zones: Vec<Zone>,
}

/// Why a shared-data hostcall traps.
#[derive(Debug, PartialEq, Eq)]
pub enum ZoneError {
    /// No zone named by the key's namespace and no `*` zone.
    NoNamespace,
    /// The namespace names an `shm_queue` zone.
    IsQueue,
}

impl Zones {
    /// The default: one unbounded `shm_kv *` zone, no queues.
    pub fn default_zones() -> Zones {
        Zones { zones: vec![Zone::kv("*", None, ShmEviction::None)] }
    }

    /// `ngx_wa_shm_kv_resolve_key`: the index of the zone a key lives in.
    pub fn index_for(&self, key: &str) -> Result<usize, ZoneError> {
        let named = key.split_once('/').map(|(ns, _)| ns).filter(|ns| !ns.is_empty());
        let index = named
            .and_then(|ns| self.zones.iter().position(|z| z.name == ns))
            .or_else(|| self.zones.iter().position(|z| z.name == "*"))
            .ok_or(ZoneError::NoNamespace)?;
        if self.zones[index].queue {
            return Err(ZoneError::IsQueue);
        }
        Ok(index)
    }

    /// The zone a key lives in.
    pub fn zone_for(&mut self, key: &str) -> Result<&mut Zone, ZoneError> {
        let index = self.index_for(key)?;
        Ok(&mut self.zones[index])
    }

    pub fn kv_zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.iter().filter(|z| !z.queue)
    }

    /// The token `register_shared_queue` hands out: the zone's index; `Err` names why it traps.
    pub fn queue_token(&self, name: &str) -> Result<u32, &'static str> {
        match self.zones.iter().position(|z| z.name == name) {
            None => Err("could not find queue"),
            Some(i) if !self.zones[i].queue => Err("attempt to use a key/value shm store as a queue"),
            Some(i) => Ok(i as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_chunks_round_like_nginx() {
        assert_eq!(chunk(1), 8);
        assert_eq!(chunk(97), 128);
        assert_eq!(chunk(2048), 2048);
        assert_eq!(chunk(2049), 4096);
        assert_eq!(chunk(8193), 12288);
    }

    #[test]
    fn cas_rules_and_counter() {
        let mut z = Zone::kv("*", None, ShmEviction::None);
        assert_eq!(z.set("k", Some(b"v"), 5), KvWrite::CasMismatch, "absent: only cas 0 creates");
        assert_eq!(z.set("k", Some(b"v"), 0), KvWrite::Written);
        assert_eq!(z.get("k"), Some((b"v".to_vec(), 1)));
        assert_eq!(z.set("k", Some(b"w"), 0), KvWrite::CasMismatch, "existing: cas 0 is a mismatch");
        assert_eq!(z.set("k", Some(b"ww"), 1), KvWrite::Written);
        assert_eq!(z.get("k").map(|(_, c)| c), Some(2));
        assert_eq!(z.set("k", None, 0), KvWrite::CasMismatch);
        assert_eq!(z.set("k", None, 2), KvWrite::Written);
        assert_eq!(z.set("k", None, 0), KvWrite::CasMismatch, "deleting an absent key");
        assert_eq!(z.set("k", Some(b"again"), 0), KvWrite::Written);
        assert_eq!(z.get("k").map(|(_, c)| c), Some(1), "back to 1 after delete and re-create");
    }

    #[test]
    fn a_full_zone_without_eviction_refuses_and_lru_evicts() {
        let mut z = Zone::kv("*", Some(16 * 1024), ShmEviction::None);
        let big = vec![b'x'; 3000];
        let mut written = 0;
        while z.set(&format!("k{written}"), Some(&big), 0) == KvWrite::Written {
            written += 1;
        }
        assert_eq!(written, 3, "16 KiB: three 4 KiB pages");
        let mut z = Zone::kv("*", Some(16 * 1024), ShmEviction::Lru);
        for i in 0..5 {
            assert_eq!(z.set(&format!("k{i}"), Some(&big), 0), KvWrite::Written);
        }
        assert_eq!(z.len(), 3);
        assert!(z.get("k0").is_none() && z.get("k4").is_some());
    }
}
