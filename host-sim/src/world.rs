//! State shared by every VM of one simulated proxy: shared data (with Envoy's CAS rules), shared queues and
//! the stats store. One `World` per `Sim`, so parallel tests never see each other.

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
    /// nginx profile: the `shm_queue` zones nginx.conf declares; registering any other name traps.
    pub shm_queues: Vec<String>,
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
            shm_queues: Vec::new(),
            random_fails: false,
        }
    }

    fn take_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        cas
    }

    pub fn get(&self, vm_id: &str, key: &str) -> Option<(Vec<u8>, u32)> {
        self.data.get(vm_id)?.get(key).cloned()
    }

    /// cpp-host `SharedData::set`: cas 0 is unconditional, creation ignores cas, every success takes the next global
    /// cas. An empty value is a removal on nginx and an empty stored value on Envoy.
    pub fn set(&mut self, vm_id: &str, key: &str, value: &[u8], cas: u32) -> SetResult {
        let stored = self.data.get(vm_id).and_then(|m| m.get(key)).map(|(_, c)| *c);
        if let Some(stored) = stored {
            if cas != 0 && cas != stored {
                return SetResult::CasMismatch;
            }
        }
        if value.is_empty() && self.profile == Profile::Nginx {
            if let Some(map) = self.data.get_mut(vm_id) {
                map.remove(key);
            }
            return SetResult::Ok;
        }
        let next = self.take_cas();
        self.data.entry(vm_id.to_string()).or_default().insert(key.to_string(), (value.to_vec(), next));
        SetResult::Ok
    }

    pub fn register_queue(&mut self, vm_id: &str, name: &str, target: (VmRef, u32, u64)) -> u32 {
        let key = (vm_id.to_string(), name.to_string());
        let id = match self.queue_ids.get(&key) {
            Some(id) => *id,
            None => {
                let id = self.next_queue_id;
                self.next_queue_id += 1;
                self.queue_ids.insert(key, id);
                id
            }
        };
        self.queues.entry(id).or_default().target = Some(target);
        id
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
