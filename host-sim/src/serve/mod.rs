//! Serve mode: a real HTTP/1.1 proxy on the real clock. Requests run through the filter (each connection pinned
//! to one worker VM), go to the upstream, and the responses run back through the filter.

mod engine;
mod proxy;

use crate::types::{FailurePolicy, Profile};
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub wasm: PathBuf,
    /// Plugin configuration file (its bytes are the plugin configuration buffer).
    pub config: Option<PathBuf>,
    pub listen: SocketAddr,
    pub upstream: String,
    /// (cluster name, host:port) pairs the filter may call out to.
    pub clusters: Vec<(String, String)>,
    pub workers: usize,
    pub profile: Profile,
    pub env: Vec<(String, String)>,
    pub vm_config: Option<PathBuf>,
    pub vm_id: String,
    pub failure_policy: FailurePolicy,
    /// nginx: `host:port` targets answered 504 after the delay, as vigil's nginx wait location does.
    pub wait_locations: Vec<(String, std::time::Duration)>,
    /// nginx: the location's `proxy_set_header NAME VALUE;` lines.
    pub proxy_set_headers: Vec<(String, String)>,
    /// nginx: `shm_queue` zones.
    pub shm_queues: Vec<String>,
    /// Envoy: paths whose route has the buffer filter after the wasm filter (see `SimBuilder::buffered_path`).
    pub buffered_paths: Vec<String>,
}

fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>> {
    if !path.exists() {
        bail!("{what} file not found: {}", path.display());
    }
    std::fs::read(path).with_context(|| format!("cannot read {what} file {}", path.display()))
}

/// Builds the simulator, binds the listener, prints `listening on ADDR` and serves until the process ends.
pub fn run(cfg: ServeConfig) -> Result<()> {
    if !cfg.wasm.exists() {
        bail!("wasm file not found: {}", cfg.wasm.display());
    }
    let plugin_config = match &cfg.config {
        Some(path) => read(path, "config")?,
        None => Vec::new(),
    };
    let vm_config = match &cfg.vm_config {
        Some(path) => read(path, "vm config")?,
        None => Vec::new(),
    };
    let handle = engine::spawn(&cfg, plugin_config, vm_config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(proxy::serve(cfg.listen, cfg.workers, handle))
}
