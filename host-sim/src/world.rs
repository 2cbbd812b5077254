//! State shared by every VM of one simulated proxy: shared data (Envoy's CAS rules, or nginx's `shm_kv` zones),
//! shared queues and the stats store. One `World` per `Sim`, so parallel tests never see each other.

use crate::nginx::kv::{KvWrite, ZoneError, Zones};
use crate::types::{Profile, VmRef};
use std::collections::{BTreeMap, HashMap, VecDeque};

#[derive(Debug)]
pub struct World {
    pub profile: Profile,
    pub data: HashMap<String, BTreeMap<String, (Vec<u8>, u32)>>,
    next_cas: u32,
    pub queues: HashMap<u32, Queue>,
    pub queue_ids: HashMap<(String, String), u32>,
    next_queue_id: u32,
    pub metrics: BTreeMap<String, Metric>,
    /// nginx profile: the `shm_kv` and `shm_queue` zones of nginx.conf (shared data lives here, not in `data`).
    pub zones: Zones,
    /// WASI `random_get` fails (EIO) while set: a host whose entropy source broke (`Sim::set_random_failing`).
    pub random_fails: bool,
}

#[derive(Debug, Default)]
pub struct Queue {
    pub items: VecDeque<Vec<u8>>,
    /// Last registrant: (vm, root context id, vm generation).
    pub target: Option<(VmRef, u32, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug)]
pub struct Metric {
    /// The type the filter defined (kept for Debug output; the id encodes it too).
    #[allow(dead_code)]
    pub kind: MetricType,
    pub value: i64,
    pub samples: Vec<u64>,
    pub per_vm: BTreeMap<VmRef, i64>,
}

pub enum SetResult {
    Ok,
    CasMismatch,
    /// nginx: the hostcall traps with this message (no zone for the key, a queue zone, a full zone).
    Trap(String),
}

impl World {
    pub fn new(profile: Profile) -> Self {
        World {
            profile,
            data: HashMap::new(),
            next_cas: 1,
            queues: HashMap::new(),
            queue_ids: HashMap::new(),
            next_queue_id: 1,
            metrics: BTreeMap::new(),
            zones: Zones::default_zones(),
            random_fails: false,
        }
    }

    fn take_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        cas
    }

    /// A filter's `get_shared_data`: `Err` is the message the hostcall traps with (nginx). On nginx a get
    /// refreshes the entry's LRU position; shared data is not scoped by vm_id there.
    pub fn get(&mut self, vm_id: &str, key: &str) -> Result<Option<(Vec<u8>, u32)>, String> {
        if self.profile == Profile::Nginx {
            return match self.zones.zone_for(key) {
                Ok(zone) => Ok(zone.get(key)),
                Err(e) => Err(zone_error("get", e)),
            };
        }
        Ok(self.data.get(vm_id).and_then(|m| m.get(key)).cloned())
    }

    /// What a test sees, without touching LRU order (`None` also when no zone holds the key).
    pub fn peek(&self, vm_id: &str, key: &str) -> Option<(Vec<u8>, u32)> {
        if self.profile == Profile::Nginx {
            let zone = &self.zones.zones[self.zones.index_for(key).ok()?];
            return zone.peek(key).map(|(_, v, cas)| (v.to_vec(), cas));
        }
        self.data.get(vm_id).and_then(|m| m.get(key)).cloned()
    }

    /// A filter's `set_shared_data` (`value = None`: the null pointer `remove_shared_data` passes).
    ///
    /// Envoy (cpp-host `SharedData::set`): cas 0 is unconditional, creation ignores cas, every success takes the
    /// next global cas, and a null value stores an empty one. nginx: see `crate::nginx::kv`.
    pub fn set(&mut self, vm_id: &str, key: &str, value: Option<&[u8]>, cas: u32) -> SetResult {
        if self.profile == Profile::Nginx {
            let zone = match self.zones.zone_for(key) {
                Ok(zone) => zone,
                Err(e) => return SetResult::Trap(zone_error("set", e)),
            };
            return match zone.set(key, value, cas) {
                KvWrite::Written => SetResult::Ok,
                KvWrite::CasMismatch => SetResult::CasMismatch,
                KvWrite::NoMemory => SetResult::Trap(format!(
                    "failed setting value to shm (could not write to slab): \"{}\" shm store: no memory; cannot allocate pair with key size {} and value size {}",
                    zone.name,
                    key.len(),
                    value.map_or(0, <[u8]>::len)
                )),
            };
        }
        let stored = self.data.get(vm_id).and_then(|m| m.get(key)).map(|(_, c)| *c);
        if let Some(stored) = stored {
            if cas != 0 && cas != stored {
                return SetResult::CasMismatch;
            }
        }
        let next = self.take_cas();
        self.data.entry(vm_id.to_string()).or_default().insert(key.to_string(), (value.unwrap_or_default().to_vec(), next));
        SetResult::Ok
    }

    /// A test's unconditional write: on nginx with the entry's own cas (creating it with cas 0); panics when
    /// the zone is full or missing.
    pub fn force_set(&mut self, vm_id: &str, key: &str, value: &[u8]) {
        let cas = match self.profile {
            Profile::Envoy => 0,
            Profile::Nginx => self.peek(vm_id, key).map_or(0, |(_, cas)| cas),
        };
        if let SetResult::Trap(message) = self.set(vm_id, key, Some(value), cas) {
            panic!("host-sim: cannot write shared data {key:?}: {message}");
        }
    }

    /// A test's removal: the key is deleted on nginx, emptied on Envoy.
    pub fn force_remove(&mut self, vm_id: &str, key: &str) {
        match self.profile {
            Profile::Envoy => {
                self.set(vm_id, key, None, 0);
            }
            Profile::Nginx => {
                if let Some((_, cas)) = self.peek(vm_id, key) {
                    self.set(vm_id, key, None, cas);
                }
            }
        }
    }

    /// (key, value) of every entry of the namespace (nginx: of every `shm_kv` zone), sorted by key.
    pub fn entries(&self, vm_id: &str) -> Vec<(String, Vec<u8>, u32)> {
        let mut out: Vec<(String, Vec<u8>, u32)> = match self.profile {
            Profile::Envoy => self
                .data
                .get(vm_id)
                .map(|m| m.iter().map(|(k, (v, c))| (k.clone(), v.clone(), *c)).collect())
                .unwrap_or_default(),
            Profile::Nginx => self
                .zones
                .kv_zones()
                .flat_map(|z| z.entries().map(|(k, v, c)| (k.to_string(), v.to_vec(), c)))
                .collect(),
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Registers (or re-targets) a queue; `Err` is the message the hostcall traps with (nginx: the name must be
    /// an `shm_queue` zone, whose index is the token).
    pub fn register_queue(&mut self, vm_id: &str, name: &str, target: (VmRef, u32, u64)) -> Result<u32, String> {
        let key = (vm_id.to_string(), name.to_string());
        let id = match (self.profile, self.queue_ids.get(&key)) {
            (Profile::Nginx, _) => {
                let id = self.zones.queue_token(name).map_err(|e| format!("{e} \"{name}\" (declare it with shm_queue in nginx.conf)"))?;
                self.queue_ids.insert(key, id);
                id
            }
            (Profile::Envoy, Some(id)) => *id,
            (Profile::Envoy, None) => {
                let id = self.next_queue_id;
                self.next_queue_id += 1;
                self.queue_ids.insert(key, id);
                id
            }
        };
        self.queues.entry(id).or_default().target = Some(target);
        Ok(id)
    }

    pub fn resolve_queue(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.queue_ids.get(&(vm_id.to_string(), name.to_string())).copied()
    }

    pub fn metric_mut(&mut self, name: &str, kind: MetricType) -> &mut Metric {
        self.metrics.entry(name.to_string()).or_insert_with(|| Metric {
            kind,
            value: 0,
            samples: Vec::new(),
            per_vm: BTreeMap::new(),
        })
    }
}

fn zone_error(op: &str, e: ZoneError) -> String {
    match (op, e) {
        ("get", ZoneError::IsQueue) => "attempt to get key/value from a queue".to_string(),
        (_, ZoneError::IsQueue) => "attempt to set key/value in a queue".to_string(),
        ("get", ZoneError::NoNamespace) => "failed getting value from shm (could not resolve namespace)".to_string(),
        (_, ZoneError::NoNamespace) => "failed setting value to shm (could not resolve namespace)".to_string(),
    }
}
