//! `Sim::builder(path)…build()`.

use super::{Sim, SimConfig, SimError};
use crate::cluster::Cluster;
use crate::nginx::kv::Zone;
use crate::nginx::proxy::ProxySetHeader;
use crate::types::{FailurePolicy, Profile, ShmEviction};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Default virtual wall clock at start: 2026-01-01T00:00:00Z.
pub const DEFAULT_START_NS: u64 = 1_767_225_600_000_000_000;

#[derive(Clone, Debug)]
pub struct SimBuilder {
    pub(crate) path: PathBuf,
    pub(crate) bytes: Option<Arc<Vec<u8>>>,
    pub(crate) cfg: SimConfig,
    pub(crate) start_ns: u64,
    pub(crate) real_clock: bool,
    pub(crate) shared_data: Vec<(String, Vec<u8>)>,
    /// nginx: the `shm_kv` / `shm_queue` zones declared so far, in order (`None`: the default `shm_kv *`).
    pub(crate) shm_zones: Vec<Zone>,
}

impl SimBuilder {
    pub(crate) fn new(path: &Path) -> Self {
        SimBuilder {
            path: path.to_path_buf(),
            bytes: None,
            cfg: SimConfig {
                profile: Profile::Envoy,
                policy: FailurePolicy::FailClosed,
                vm_id: String::new(),
                env: Vec::new(),
                vm_config: Vec::new(),
                plugin_config: Vec::new(),
                seed: 0,
                workers: 1,
                clusters: HashMap::new(),
                reload_backoff: Duration::from_secs(1),
                echo_logs: std::env::var_os("HOST_SIM_LOG").is_some(),
                retain_logs: true,
                external_upstream: false,
                proxy_set_headers: Vec::new(),
                buffered_paths: Vec::new(),
                real_targets: false,
                panic_on_crash: true,
            },
            start_ns: DEFAULT_START_NS,
            real_clock: false,
            shared_data: Vec::new(),
            shm_zones: Vec::new(),
        }
    }

    /// nginx profile: declares a queue as nginx.conf's `shm_queue NAME SIZE;` does. ngx_wasm_module traps when a
    /// filter registers a queue name that no `shm_queue` zone declares; the token is the zone's index among the
    /// declared zones.
    pub fn shm_queue(mut self, name: impl Into<String>) -> Self {
        self.shm_zones.push(Zone::queue(&name.into()));
        self
    }

    /// nginx profile: declares a key/value zone as `shm_kv NAME SIZE eviction=...;` does (`size_bytes`: `None`
    /// for unbounded). Without any `shm_kv`, the sim has one unbounded `shm_kv *` zone; once one is declared,
    /// only declared zones exist (a key whose namespace names no zone goes to `*`, and without `*` the
    /// hostcall traps).
    pub fn shm_kv(mut self, name: impl Into<String>, size_bytes: Option<usize>, eviction: ShmEviction) -> Self {
        self.shm_zones.push(Zone::kv(&name.into(), size_bytes, eviction));
        self
    }

    /// nginx profile: a `proxy_set_header NAME VALUE;` line of the location (VALUE: a literal or
    /// `$http_<name>`); what the upstream receives is assembled as nginx's proxy module does.
    /// Envoy profile: a route with Envoy's buffer filter after the wasm filter (exact path, query ignored): the
    /// router opens no upstream request for it before the whole request is in (see `Sim::upstream_opened_early`).
    pub fn buffered_path(mut self, path: impl Into<String>) -> Self {
        self.cfg.buffered_paths.push(path.into());
        self
    }

    pub fn proxy_set_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cfg.proxy_set_headers.push(ProxySetHeader { name: name.into(), value: value.into() });
        self
    }

    /// nginx profile: a callout to a `host:port` that no `cluster` names goes to that address over real
    /// HTTP/1.1 (serve mode), instead of failing as an unreachable or unresolvable target.
    pub fn real_targets(mut self, on: bool) -> Self {
        self.cfg.real_targets = on;
        self
    }

    /// Builds from module bytes instead of a file.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        let mut builder = SimBuilder::new(Path::new("<bytes>"));
        builder.bytes = Some(Arc::new(bytes.into()));
        builder
    }

    /// Plugin configuration buffer (readable only during on_configure).
    pub fn plugin_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.cfg.plugin_config = config.into();
        self
    }

    /// VM configuration buffer (passed to on_vm_start).
    pub fn vm_config(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.cfg.vm_config = config.into();
        self
    }

    /// Shared data / queue namespace.
    pub fn vm_id(mut self, vm_id: impl Into<String>) -> Self {
        self.cfg.vm_id = vm_id.into();
        self
    }

    /// One VM environment variable (WASI environ).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cfg.env.push((name.into(), value.into()));
        self
    }

    /// Number of worker VMs (there is always a main-thread VM besides).
    pub fn workers(mut self, n: usize) -> Self {
        assert!(n >= 1, "a simulated proxy needs at least one worker VM");
        self.cfg.workers = n;
        self
    }

    pub fn profile(mut self, profile: Profile) -> Self {
        self.cfg.profile = profile;
        self
    }

    /// Seeds the PRNG that orders simultaneous events across VMs and feeds WASI random_get.
    pub fn seed(mut self, seed: u64) -> Self {
        self.cfg.seed = seed;
        self
    }

    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.cfg.policy = policy;
        self
    }

    /// FAIL_RELOAD backoff before a failed VM is rebuilt (Envoy's default 1 s).
    pub fn reload_backoff(mut self, backoff: Duration) -> Self {
        self.cfg.reload_backoff = backoff;
        self
    }

    /// Virtual wall clock at start (default 2026-01-01T00:00:00Z).
    pub fn start_time_ns(mut self, ns: u64) -> Self {
        self.start_ns = ns;
        self
    }

    /// A callout target: an Envoy cluster name (on the nginx profile, the `host:port` the filter dispatches to).
    pub fn cluster(mut self, name: impl Into<String>, cluster: Cluster) -> Self {
        self.cfg.clusters.insert(name.into(), cluster);
        self
    }

    /// Pre-populates shared data (default vm_id namespace) before any VM starts.
    pub fn shared_data(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.shared_data.push((key.into(), value.into()));
        self
    }

    /// Also print every log line to stderr as it happens (also on when HOST_SIM_LOG is set).
    pub fn echo_logs(mut self, on: bool) -> Self {
        self.cfg.echo_logs = on;
        self
    }

    /// Keep log lines for `Sim::logs` (serve mode turns this off).
    pub fn retain_logs(mut self, on: bool) -> Self {
        self.cfg.retain_logs = on;
        self
    }

    /// Whether dropping the `Sim` with nginx worker crashes no test took (`Sim::take_host_crashes`) panics
    /// (default on; serve mode turns it off and only logs them).
    pub fn panic_on_host_crash(mut self, on: bool) -> Self {
        self.cfg.panic_on_crash = on;
        self
    }

    /// Real wall clock instead of the virtual one (serve mode).
    pub fn real_clock(mut self, on: bool) -> Self {
        self.real_clock = on;
        self
    }

    /// Forwarded requests are handed out with `Sim::take_upstream_requests` instead of answered with the
    /// request's `upstream_reply` (serve mode).
    pub fn external_upstream(mut self, on: bool) -> Self {
        self.cfg.external_upstream = on;
        self
    }

    pub fn build(self) -> Result<Sim, SimError> {
        Sim::start(self)
    }
}
