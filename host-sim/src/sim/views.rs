//! Read access for tests (shared data, metrics) and the hooks serve mode drives the simulator with.

use super::{Sim, StreamId};
use crate::http::{Reply, UpstreamRequest};
use crate::world::{SetResult, World};
use std::sync::{Arc, Mutex, MutexGuard};

/// Shared data of one vm_id namespace, as every VM sees it.
pub struct SharedDataView {
    world: Arc<Mutex<World>>,
    vm_id: String,
}

impl SharedDataView {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (value, cas) of a key, as a filter's get would find it (nginx: by CRC-32 in the key's zone), without
    /// refreshing LRU order.
    pub fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.world().peek(&self.vm_id, key)
    }

    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key).map(|(v, _)| String::from_utf8_lossy(&v).into_owned())
    }

    /// A test's write that always succeeds: cas 0 on Envoy, the entry's own cas on nginx (panics if the zone
    /// is missing or full).
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) {
        self.world().force_set(&self.vm_id, key, value.as_ref());
    }

    /// A write with the hosts' CAS rules, as a filter's; false on CasMismatch (or an nginx trap).
    pub fn set_with_cas(&self, key: &str, value: impl AsRef<[u8]>, cas: u32) -> bool {
        matches!(self.world().set(&self.vm_id, key, Some(value.as_ref()), cas), SetResult::Ok)
    }

    /// A removal with the hosts' rules (`remove_shared_data(key, cas)`): Envoy stores an empty value, nginx
    /// deletes the key (cas checked; an absent key is a mismatch). False on CasMismatch.
    pub fn remove_with_cas(&self, key: &str, cas: u32) -> bool {
        matches!(self.world().set(&self.vm_id, key, None, cas), SetResult::Ok)
    }

    /// What `remove_shared_data` does on the current profile (empty value on Envoy, key deleted on nginx).
    pub fn remove(&self, key: &str) {
        self.world().force_remove(&self.vm_id, key);
    }

    /// Keys in sorted order (nginx: the key bytes each entry holds, across every `shm_kv` zone).
    pub fn keys(&self) -> Vec<String> {
        self.world().entries(&self.vm_id).into_iter().map(|(k, _, _)| k).collect()
    }

    pub fn key_count(&self) -> usize {
        self.world().entries(&self.vm_id).len()
    }

    /// Sum of key and value sizes.
    pub fn total_bytes(&self) -> usize {
        self.world().entries(&self.vm_id).iter().map(|(k, v, _)| k.len() + v.len()).sum()
    }

    /// (key, value) pairs whose key starts with `prefix`.
    pub fn entries_with_prefix(&self, prefix: &str) -> Vec<(String, Vec<u8>)> {
        self.world().entries(&self.vm_id).into_iter().filter(|(k, _, _)| k.starts_with(prefix)).map(|(k, v, _)| (k, v)).collect()
    }

    /// nginx: bytes of slab chunks in use and the capacity of a `shm_kv` zone (`None` if no such zone).
    pub fn zone_usage(&self, zone: &str) -> Option<(usize, usize)> {
        let world = self.world();
        let usage = world.zones.kv_zones().find(|z| z.name == zone).map(|z| (z.used(), z.capacity()));
        usage
    }
}

impl std::fmt::Debug for SharedDataView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.world().entries(&self.vm_id);
        let mut map = f.debug_map();
        for (k, v, cas) in &entries {
            map.entry(k, &(String::from_utf8_lossy(v), cas));
        }
        map.finish()
    }
}

impl Sim {
    /// Shared data of the sim's vm_id.
    pub fn shared_data(&self) -> SharedDataView {
        SharedDataView { world: self.world.clone(), vm_id: self.cfg.vm_id.clone() }
    }

    /// Shared data of another vm_id namespace.
    pub fn shared_data_of(&self, vm_id: &str) -> SharedDataView {
        SharedDataView { world: self.world.clone(), vm_id: vm_id.to_string() }
    }

    /// Items waiting in a shared queue (by vm_id of the sim and queue name).
    pub fn queue_len(&self, name: &str) -> Option<usize> {
        let world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let id = world.resolve_queue(&self.cfg.vm_id, name)?;
        world.queues.get(&id).map(|q| q.items.len())
    }

    /// A metric's value in the proxy-wide stats store (all VMs add to the same stat, as in Envoy).
    /// Histograms report their sample count.
    pub fn metric(&self, name: &str) -> Option<i64> {
        let world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        world.metrics.get(name).map(|m| m.value)
    }

    /// One VM's contribution to a metric (counter increments, its last gauge value, histogram samples).
    pub fn metric_on(&self, vm: impl Into<crate::types::VmRef>, name: &str) -> Option<i64> {
        let world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        world.metrics.get(name).and_then(|m| m.per_vm.get(&vm.into()).copied())
    }

    /// Recorded histogram samples.
    pub fn metric_samples(&self, name: &str) -> Vec<u64> {
        let world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        world.metrics.get(name).map(|m| m.samples.clone()).unwrap_or_default()
    }

    /// While `true`, WASI `random_get` fails with EIO on every VM (a host whose entropy source broke).
    pub fn set_random_failing(&mut self, failing: bool) {
        let mut world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        world.random_fails = failing;
    }

    /// Every defined metric and its value.
    pub fn metrics(&self) -> Vec<(String, i64)> {
        let world = self.world.lock().unwrap_or_else(|e| e.into_inner());
        world.metrics.iter().map(|(k, m)| (k.clone(), m.value)).collect()
    }

    /// Serve mode: requests the filter let through, to be sent to the real upstream.
    pub fn take_upstream_requests(&mut self) -> Vec<(StreamId, UpstreamRequest)> {
        std::mem::take(&mut self.upstream_out)
    }

    /// Serve mode: the upstream's answer to a forwarded request; the response path runs.
    pub fn deliver_upstream(&mut self, stream: StreamId, reply: Reply) {
        self.upstream_replied(stream, &reply);
        self.run_until_idle();
    }

    /// Streams that reached a final outcome since the last call.
    /// Envoy: whether the router opened an upstream request for `stream` that never received the whole
    /// request: the filter let the headers go on while body or trailers were still to come (no buffer filter
    /// on the route, `SimBuilder::buffered_path`), then answered locally. Real Envoy sends those headers to the
    /// upstream and resets the request.
    pub fn upstream_opened_early(&self, stream: StreamId) -> bool {
        let st = &self.streams[stream.0];
        st.router_started && st.upstream_request.is_none()
    }

    /// The request a stream was started with, as the client sent it.
    pub fn request_of(&self, stream: StreamId) -> &crate::http::Request {
        &self.streams[stream.0].request
    }

    pub fn take_finished(&mut self) -> Vec<StreamId> {
        std::mem::take(&mut self.finished)
    }

    /// Called from another thread when a real callout finishes (serve mode wakes its loop with it).
    pub fn set_waker(&mut self, waker: Arc<dyn Fn() + Send + Sync>) {
        self.waker = Some(waker);
    }

    /// When the next timed event is due.
    pub fn next_due_ns(&self) -> Option<u64> {
        self.events.next_due()
    }
}
