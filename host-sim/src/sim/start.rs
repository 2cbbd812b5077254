//! VM creation and Envoy's start sequence: canary (thrown away), then the main-thread VM, then the workers.

use super::builder::SimBuilder;
use super::{Sim, SimError, TickState, VmSlot};
use crate::clock::{Clock, EventQueue};
use crate::engine;
use crate::state::{Callback, VmState};
use crate::types::{Profile, VmRef};
use crate::vm::{CallResult, Vm};
use crate::world::World;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{mpsc, Arc, Mutex};

fn vm_seed(seed: u64, vm: VmRef, generation: u64) -> u64 {
    let index = match vm {
        VmRef::Worker(i) => i as u64 + 2,
        VmRef::Main => 1,
        VmRef::Canary => 0,
    };
    seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ generation.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

impl Sim {
    pub(crate) fn start(b: SimBuilder) -> Result<Sim, SimError> {
        let path = b.path.display().to_string();
        let bytes = match &b.bytes {
            Some(bytes) => bytes.to_vec(),
            None => std::fs::read(&b.path).map_err(|e| SimError::Load { path: path.clone(), message: e.to_string() })?,
        };
        let loaded = engine::load(&bytes).map_err(|e| SimError::Load { path: path.clone(), message: format!("{e:#}") })?;
        let mut world = World::new(b.cfg.profile);
        if !b.shm_zones.is_empty() {
            let declares_kv = b.shm_zones.iter().any(|z| !z.queue);
            let mut zones = if declares_kv { Vec::new() } else { world.zones.zones.clone() };
            zones.extend(b.shm_zones.iter().cloned());
            world.zones.zones = zones;
        }
        for (key, value) in &b.shared_data {
            world.force_set(&b.cfg.vm_id, key, value);
        }
        let (real_tx, real_rx) = mpsc::channel();
        let clock = if b.real_clock { Clock::real() } else { Clock::virtual_at(b.start_ns) };
        let mut sim = Sim {
            loaded,
            rng: ChaCha8Rng::seed_from_u64(b.cfg.seed),
            cfg: b.cfg,
            world: Arc::new(Mutex::new(world)),
            slots: Vec::new(),
            clock,
            events: EventQueue::default(),
            streams: Vec::new(),
            runnable: VecDeque::new(),
            callouts: Vec::new(),
            callout_states: Vec::new(),
            logs: Vec::new(),
            traps: Vec::new(),
            event_log: Vec::new(),
            real_tx,
            real_rx,
            real_in_flight: 0,
            waker: None,
            upstream_out: Vec::new(),
            finished: Vec::new(),
            host_crashes: Vec::new(),
            starting: false,
        };
        if sim.cfg.profile == Profile::Nginx {
            // nginx: no canary and no main-thread VM; each worker process starts its own VM.
            for i in 0..sim.cfg.workers {
                let slot = sim.new_slot(VmRef::Worker(i), 0)?;
                sim.slots.push(slot);
            }
            for i in 0..sim.cfg.workers {
                sim.start_sequence(i)?;
            }
            sim.run_until_idle();
            return Ok(sim);
        }
        // Envoy validates every plugin config in a throw-away clone first; its side effects on shared state stay.
        let canary = sim.new_slot(VmRef::Canary, 0)?;
        sim.slots.push(canary);
        let canary_result = sim.start_sequence(0);
        sim.slots.clear();
        sim.events = EventQueue::default();
        for state in &mut sim.callout_states {
            state.delivered = true;
        }
        canary_result?;
        for i in 0..sim.cfg.workers {
            let slot = sim.new_slot(VmRef::Worker(i), 0)?;
            sim.slots.push(slot);
        }
        let main = sim.new_slot(VmRef::Main, 0)?;
        sim.slots.push(main);
        // The TLS slot runs inline on the main thread first, then on each worker.
        sim.start_sequence(sim.cfg.workers)?;
        for i in 0..sim.cfg.workers {
            sim.start_sequence(i)?;
        }
        sim.run_until_idle();
        Ok(sim)
    }

    pub(crate) fn new_slot(&self, vref: VmRef, generation: u64) -> Result<VmSlot, SimError> {
        let clusters: HashSet<String> = self.cfg.clusters.keys().cloned().collect();
        let state = VmState::new(
            vref,
            generation,
            self.cfg.profile,
            self.cfg.vm_id.clone(),
            self.cfg.env.clone(),
            self.cfg.vm_config.clone(),
            self.cfg.plugin_config.clone(),
            Arc::new(clusters),
            self.world.clone(),
            ChaCha8Rng::seed_from_u64(vm_seed(self.cfg.seed, vref, generation)),
            self.now_ns(),
        );
        let vm = Vm::instantiate(&self.loaded, state)
            .map_err(|e| SimError::Load { path: self.loaded.sha256.clone(), message: format!("instantiation failed: {e:#}") })?;
        Ok(VmSlot { vref, vm, generation, tick: TickState { period_ms: 0, generation: 0 }, streams: HashMap::new() })
    }

    /// `_initialize`, `proxy_on_context_create(root, 0)`, `proxy_on_vm_start`, `proxy_on_configure`.
    pub(crate) fn start_sequence(&mut self, slot: usize) -> Result<(), SimError> {
        let was_starting = std::mem::replace(&mut self.starting, true);
        let result = self.run_start_sequence(slot);
        self.starting = was_starting;
        result
    }

    fn run_start_sequence(&mut self, slot: usize) -> Result<(), SimError> {
        let vref = self.slots[slot].vref;
        let now = self.now_ns();
        let result = self.slots[slot].vm.initialize(now);
        self.start_step(slot, result, false)?;
        let root = self.slots[slot].vm.state().root_id as i32;
        let vm_config_len = self.cfg.vm_config.len() as i32;
        let plugin_config_len = self.cfg.plugin_config.len() as i32;
        let result = self.slots[slot].vm.call(Callback::ContextCreate, root as u32, "proxy_on_context_create", &[root, 0], now);
        self.start_step(slot, result, false)?;
        let result = self.slots[slot].vm.call(Callback::VmStart, root as u32, "proxy_on_vm_start", &[root, vm_config_len], now);
        self.start_step(slot, result, true)?;
        let result = self.slots[slot].vm.call(Callback::Configure, root as u32, "proxy_on_configure", &[root, plugin_config_len], now);
        self.start_step(slot, result, true)?;
        let _ = vref;
        Ok(())
    }

    fn start_step(&mut self, slot: usize, result: CallResult, must_be_true: bool) -> Result<(), SimError> {
        let vref = self.slots[slot].vref;
        let (trapped, crashed) = match &result {
            CallResult::Trapped { message, .. } => (Some(message.clone()), None),
            CallResult::Crashed { message, .. } => (None, Some(message.clone())),
            CallResult::Returned(_) => (None, None),
        };
        let value = self.finish_call(slot, result);
        if let Some(message) = trapped {
            return Err(SimError::Trap { vm: vref, message });
        }
        if let Some(message) = crashed {
            return Err(SimError::HostCrash { vm: vref, message });
        }
        if must_be_true && value == Some(0) {
            let logs = self.logs.iter().filter(|l| l.vm == vref).map(|l| l.message.clone()).collect();
            return Err(SimError::ConfigRejected { vm: vref, logs });
        }
        Ok(())
    }

    /// FAIL_RELOAD: a failed VM is rebuilt for a new request once the backoff has passed. nginx has no
    /// failure policy: the next request always gets a fresh instance (on_vm_start and on_configure run again).
    pub(crate) fn maybe_reload(&mut self, slot: usize) {
        let vm = &self.slots[slot].vm;
        let due = vm.failed_at_ns.saturating_add(self.cfg.reload_backoff.as_nanos() as u64);
        let reload = match self.cfg.profile {
            Profile::Nginx => vm.failed,
            Profile::Envoy => self.cfg.policy == crate::types::FailurePolicy::FailReload && vm.failed && self.now_ns() >= due,
        };
        if !reload {
            return;
        }
        let vref = self.slots[slot].vref;
        let generation = self.slots[slot].generation + 1;
        let Ok(fresh) = self.new_slot(vref, generation) else { return };
        self.slots[slot] = fresh;
        self.event_log.push(format!("{} reload {vref} generation {generation}", self.time_label()));
        if let Err(e) = self.start_sequence(slot) {
            let now = self.now_ns();
            let vm = &mut self.slots[slot].vm;
            vm.failed = true;
            vm.failed_at_ns = now;
            self.push_log(vref, crate::types::LogLevel::Error, format!("host-sim: reload of {vref} failed: {e}"));
        }
    }
}
