//! host-sim: a native proxy-wasm host on wasmtime with Envoy's semantics (and ngx_wasm_module's on the nginx
//! profile), for tests, demos and benchmarks. See host-sim/README.md.

mod abi;
mod clock;
mod cluster;
mod engine;
mod headers;
mod http;
mod nginx;
mod realhttp;
pub mod serve;
mod sim;
mod state;
mod types;
mod vm;
mod world;

pub use cluster::{CalloutId, CalloutReply, CalloutRequest, Cluster};
pub use headers::HeaderMap;
pub use http::{Outcome, Reply, Request, UpstreamRequest};
pub use sim::{SharedDataView, Sim, SimBuilder, SimError, StreamId};
pub use nginx::proxy::ProxySetHeader;
pub use types::{CallFailure, FailurePolicy, HostCrash, LogLevel, LogLine, Profile, ShmEviction, Trap, VmRef};

/// Compiles a module into the process-wide cache ahead of time (optional; `build` does it on first use).
pub fn precompile(wasm: impl AsRef<std::path::Path>) -> Result<(), SimError> {
    let path = wasm.as_ref().display().to_string();
    let bytes = std::fs::read(wasm.as_ref()).map_err(|e| SimError::Load { path: path.clone(), message: e.to_string() })?;
    engine::load(&bytes).map(|_| ()).map_err(|e| SimError::Load { path, message: format!("{e:#}") })
}
