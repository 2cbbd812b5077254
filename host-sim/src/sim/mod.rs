//! The simulated proxy: VMs, streams, callouts and the event loop, driven by a test (virtual clock) or by serve
//! mode (real clock).

mod builder;
mod calls;
mod callouts;
mod crash;
mod events;
mod start;
mod stream;
mod views;

pub use builder::SimBuilder;
pub use views::SharedDataView;

use crate::clock::{Clock, EventQueue};
use crate::cluster::{CalloutId, CalloutRequest, Cluster};
use crate::engine::Loaded;
use crate::http::{Outcome, Request, UpstreamRequest};
use crate::realhttp::RealResult;
use crate::types::{FailurePolicy, LogLine, Profile, Trap, VmRef};
use crate::vm::Vm;
use crate::world::World;
use callouts::CalloutState;
use events::EventKind;
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stream::StreamState;

/// Identifies one HTTP stream sent with `Sim::send`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub usize);

/// Why a `Sim` could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// The file is missing, not wasm, or imports something no proxy-wasm host provides.
    Load { path: String, message: String },
    /// `on_vm_start` or `on_configure` returned false; `logs` are the lines the filter logged on that VM.
    ConfigRejected { vm: VmRef, logs: Vec<String> },
    /// A start callback trapped; `message` is the panic message the filter logged.
    Trap { vm: VmRef, message: String },
    /// nginx: a start callback crashed the worker process (see `HostCrash`).
    HostCrash { vm: VmRef, message: String },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Load { path, message } => write!(f, "cannot load {path}: {message}"),
            SimError::ConfigRejected { vm, logs } => {
                write!(f, "configuration rejected on {vm} (on_vm_start/on_configure returned false)")?;
                for line in logs {
                    write!(f, "\n  {line}")?;
                }
                Ok(())
            }
            SimError::Trap { vm, message } => write!(f, "VM {vm} trapped while starting: {message}"),
            SimError::HostCrash { vm, message } => write!(f, "the nginx worker of {vm} crashed while starting: {message}"),
        }
    }
}

impl std::error::Error for SimError {}

#[derive(Clone, Debug)]
pub(crate) struct SimConfig {
    pub profile: Profile,
    pub policy: FailurePolicy,
    pub vm_id: String,
    pub env: Vec<(String, String)>,
    pub vm_config: Vec<u8>,
    pub plugin_config: Vec<u8>,
    pub seed: u64,
    pub workers: usize,
    pub clusters: HashMap<String, Cluster>,
    pub reload_backoff: Duration,
    pub echo_logs: bool,
    pub retain_logs: bool,
    pub external_upstream: bool,
    /// Envoy: request paths whose headers Envoy's buffer filter (after the wasm filter, on that route) holds
    /// back from the router until the whole request is in; elsewhere the router opens the upstream request as
    /// soon as the headers continue, body or not.
    pub buffered_paths: Vec<String>,
    /// nginx: the location's `proxy_set_header` lines.
    pub proxy_set_headers: Vec<crate::nginx::proxy::ProxySetHeader>,
    /// nginx: unnamed `host:port` callout targets are real addresses.
    pub real_targets: bool,
    /// Dropping a `Sim` with worker crashes no test took panics (serve mode turns this off).
    pub panic_on_crash: bool,
}

pub(crate) struct TickState {
    pub period_ms: u32,
    pub generation: u64,
}

pub(crate) struct VmSlot {
    pub vref: VmRef,
    pub vm: Vm,
    pub generation: u64,
    pub tick: TickState,
    pub streams: HashMap<u32, StreamId>,
}

/// A simulated proxy running one filter module on N worker VMs plus the main-thread VM.
pub struct Sim {
    pub(crate) loaded: Arc<Loaded>,
    pub(crate) cfg: SimConfig,
    pub(crate) world: Arc<Mutex<World>>,
    pub(crate) slots: Vec<VmSlot>,
    pub(crate) clock: Clock,
    pub(crate) events: EventQueue<(u64, EventKind)>,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) streams: Vec<StreamState>,
    pub(crate) runnable: VecDeque<StreamId>,
    pub(crate) callouts: Vec<CalloutRequest>,
    pub(crate) callout_states: Vec<CalloutState>,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) traps: Vec<Trap>,
    pub(crate) event_log: Vec<String>,
    pub(crate) real_tx: Sender<(CalloutId, RealResult)>,
    pub(crate) real_rx: Receiver<(CalloutId, RealResult)>,
    pub(crate) real_in_flight: usize,
    pub(crate) waker: Option<Arc<dyn Fn() + Send + Sync>>,
    pub(crate) upstream_out: Vec<(StreamId, UpstreamRequest)>,
    pub(crate) finished: Vec<StreamId>,
    pub(crate) host_crashes: Vec<crate::types::HostCrash>,
    /// A start sequence is running (a crash then leaves the worker down instead of respawning it).
    pub(crate) starting: bool,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("module_sha256", &self.loaded.sha256)
            .field("profile", &self.cfg.profile)
            .field("workers", &self.cfg.workers)
            .field("now_ns", &self.now_ns())
            .field("streams", &self.streams.len())
            .field("callouts", &self.callouts.len())
            .field("pending_events", &self.events.len())
            .field("traps", &self.traps)
            .field("host_crashes", &self.host_crashes)
            .finish()
    }
}

impl Sim {
    /// Starts building a simulator for the module at `wasm`.
    pub fn builder(wasm: impl AsRef<std::path::Path>) -> SimBuilder {
        SimBuilder::new(wasm.as_ref())
    }

    /// Sends a request on a VM (`usize` = worker index, or `sim.main_vm()`), runs its request path, then the
    /// event loop until idle without advancing the clock.
    pub fn send(&mut self, vm: impl Into<VmRef>, request: Request) -> StreamId {
        let id = self.start_stream(vm.into(), request);
        self.run_until_idle();
        id
    }

    /// Where the stream stands now.
    pub fn outcome(&self, stream: StreamId) -> Outcome {
        self.stream_state(stream).outcome.clone()
    }

    /// The client went away: Envoy resets the stream and runs on_log, on_done, on_delete (callouts go on).
    pub fn abandon(&mut self, stream: StreamId) {
        self.abandon_stream(stream);
        self.run_until_idle();
    }

    /// Runs every event due up to now + `d` in time order, then leaves the clock at now + `d`.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now_ns().saturating_add(d.as_nanos() as u64);
        self.run_until(target);
    }

    /// Advances the clock to an absolute virtual time (no-op if in the past).
    pub fn advance_to(&mut self, at_ns: u64) {
        self.run_until(at_ns.max(self.now_ns()));
    }

    /// Runs every event already due (and waits for in-flight real callouts) without advancing the clock.
    pub fn run_until_idle(&mut self) {
        let now = self.now_ns();
        self.run_until(now);
    }

    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Number of worker VMs.
    pub fn workers(&self) -> usize {
        self.cfg.workers
    }

    /// The main-thread VM (it gets ticks and queue notifications; it can also be sent requests).
    pub fn main_vm(&self) -> VmRef {
        VmRef::Main
    }

    pub fn profile(&self) -> Profile {
        self.cfg.profile
    }

    /// Hex sha256 of the loaded module.
    pub fn module_sha256(&self) -> &str {
        &self.loaded.sha256
    }

    /// Every callout dispatched so far, in order.
    pub fn callouts(&self) -> &[CalloutRequest] {
        &self.callouts
    }

    pub fn callout(&self, id: CalloutId) -> &CalloutRequest {
        self.callouts.get(id.0).unwrap_or_else(|| panic!("no callout {id:?}: {} dispatched so far", self.callouts.len()))
    }

    /// Callouts to manual clusters that are still waiting for `answer` (not answered, not timed out).
    pub fn pending_callouts(&self) -> Vec<CalloutId> {
        self.callout_states
            .iter()
            .enumerate()
            .filter(|(_, s)| s.manual && !s.answered && !s.delivered)
            .map(|(i, _)| CalloutId(i))
            .collect()
    }

    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    pub fn logs_containing(&self, needle: &str) -> Vec<&LogLine> {
        self.logs.iter().filter(|l| l.message.contains(needle)).collect()
    }

    pub fn logs_on(&self, vm: impl Into<VmRef>) -> Vec<&LogLine> {
        let vm = vm.into();
        self.logs.iter().filter(|l| l.vm == vm).collect()
    }

    /// All log lines as text, one per line (handy in assertion messages).
    pub fn logs_text(&self) -> String {
        self.logs.iter().map(|l| format!("[{} {:?}] {}\n", l.vm, l.level, l.message)).collect()
    }

    pub fn traps(&self) -> Vec<Trap> {
        self.traps.clone()
    }

    pub fn vm_failed(&self, vm: impl Into<VmRef>) -> bool {
        self.slots[self.slot_of(vm.into())].vm.failed
    }

    /// What happened, in order: one line per event the loop ran (for determinism checks and debugging).
    pub fn event_log(&self) -> &[String] {
        &self.event_log
    }

    /// The VM's current tick period, if any.
    pub fn tick_period(&self, vm: impl Into<VmRef>) -> Option<Duration> {
        let tick = &self.slots[self.slot_of(vm.into())].tick;
        (tick.period_ms > 0).then(|| Duration::from_millis(tick.period_ms as u64))
    }

    /// The stream's context id inside its VM (2, 3, … on Envoy).
    pub fn context_id(&self, stream: StreamId) -> u32 {
        self.stream_state(stream).ctx
    }

    pub(crate) fn slot_of(&self, vm: VmRef) -> usize {
        match vm {
            VmRef::Worker(i) if i < self.cfg.workers => i,
            VmRef::Main if self.cfg.profile == Profile::Nginx => {
                panic!("nginx has no main-thread VM: ngx_wasm_module runs one VM per worker process")
            }
            VmRef::Main => self.cfg.workers,
            other => panic!("no VM {other} in this sim (workers: {})", self.cfg.workers),
        }
    }

    pub(crate) fn stream_state(&self, stream: StreamId) -> &StreamState {
        self.streams.get(stream.0).unwrap_or_else(|| panic!("no stream {stream:?}: {} sent so far", self.streams.len()))
    }
}
