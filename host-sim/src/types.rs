//! ABI enums and the simulator's small vocabulary types.

use std::fmt;

/// Status codes the Rust SDK 0.2.5 can represent (others would be UB in its `#[repr(u32)]` enum).
pub mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const PARSE_FAILURE: i32 = 4;
    pub const EMPTY: i32 = 7;
    pub const CAS_MISMATCH: i32 = 8;
    /// ngx_wasm_module's `ngx_proxy_wasm_result_err`.
    pub const INTERNAL_FAILURE: i32 = 10;
}

pub mod buffer_type {
    pub const HTTP_REQUEST_BODY: u32 = 0;
    pub const HTTP_RESPONSE_BODY: u32 = 1;
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    pub const VM_CONFIGURATION: u32 = 6;
    pub const PLUGIN_CONFIGURATION: u32 = 7;
    pub const MAX: u32 = 8;
}

pub mod map_type {
    pub const REQUEST_HEADERS: u32 = 0;
    pub const REQUEST_TRAILERS: u32 = 1;
    pub const RESPONSE_HEADERS: u32 = 2;
    pub const RESPONSE_TRAILERS: u32 = 3;
    pub const CALL_RESPONSE_HEADERS: u32 = 6;
    pub const CALL_RESPONSE_TRAILERS: u32 = 7;
    pub const MAX: u32 = 7;
}

/// Which proxy the simulator imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Profile {
    /// Envoy / Istio (proxy-wasm-cpp-host).
    #[default]
    Envoy,
    /// nginx with Kong's ngx_wasm_module (reference section 8).
    Nginx,
}

/// Envoy's `failure_policy` for a VM that trapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// 503 for the trapped stream and every later stream on that VM.
    #[default]
    FailClosed,
    /// The filter is bypassed on that VM.
    FailOpen,
    /// A fresh VM is built for a new request once the backoff has passed; until then as FailClosed.
    FailReload,
}

/// proxy-wasm log levels (`Trace=0 … Critical=5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl LogLevel {
    pub fn from_abi(level: u32) -> Option<LogLevel> {
        Some(match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    pub fn as_abi(self) -> u32 {
        self as u32
    }
}

/// One simulated VM: a worker thread's VM, the main-thread VM, or the throw-away canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VmRef {
    Worker(usize),
    Main,
    Canary,
}

impl From<usize> for VmRef {
    fn from(index: usize) -> Self {
        VmRef::Worker(index)
    }
}

impl PartialEq<usize> for VmRef {
    fn eq(&self, other: &usize) -> bool {
        *self == VmRef::Worker(*other)
    }
}

impl fmt::Display for VmRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmRef::Worker(i) => write!(f, "worker-{i}"),
            VmRef::Main => f.write_str("main"),
            VmRef::Canary => f.write_str("canary"),
        }
    }
}

/// A line the filter (or the host about the filter) logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub vm: VmRef,
    pub level: LogLevel,
    pub message: String,
    /// Virtual time of the line.
    pub at_ns: u64,
}

/// A VM that trapped: the filter's panic message when it logged one, else wasmtime's trap text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    pub vm: VmRef,
    pub message: String,
    /// The export that trapped, e.g. `proxy_on_request_headers`.
    pub function: String,
    pub at_ns: u64,
}

/// What a full nginx `shm_kv` zone does (`shm_kv NAME SIZE eviction=...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ShmEviction {
    /// `eviction=none`: a write that does not fit traps the hostcall ("could not write to slab").
    #[default]
    None,
    /// `eviction=lru`: least recently used entries are dropped until the write fits.
    Lru,
    /// `eviction=slru` (nginx's default): modelled as `Lru` (nginx keeps one LRU queue per slab size class).
    Slru,
}

/// A failure that takes the whole nginx worker process down (SIGSEGV, SIGABRT): not a Wasm trap, nginx has no
/// failure policy for it. Every stream of that worker is reset and the worker's VM is started afresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostCrash {
    pub vm: VmRef,
    /// What ngx_wasm_module does wrong, and why (the source and the signal).
    pub message: String,
    /// The hostcall that crashed the worker, e.g. `proxy_send_local_response`.
    pub hostcall: String,
    /// The export that was running, e.g. `proxy_on_tick`.
    pub function: String,
    pub at_ns: u64,
}

/// How an nginx callout fails (ngx_wasm_module's `:dispatch_status`); on Envoy each maps to the closest failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallFailure {
    /// Connect, send or read timed out: `timeout` (Envoy: the router's 504).
    Timeout,
    /// Refused or reset: `broken connection` (Envoy: reset, or the router's 503 for a refused connect).
    BrokenConnection,
    /// `tls handshake failure` (Envoy: the router's 503).
    TlsHandshake,
    /// The target's host name did not resolve: `resolver failure` (Envoy: the router's 503).
    Resolver,
    /// The status line and headers did not fit the socket buffers: `reader failure` (Envoy: reset).
    Reader,
}

impl CallFailure {
    /// The `:dispatch_status` ngx_wasm_module reports.
    pub fn dispatch_status(self) -> &'static str {
        match self {
            CallFailure::Timeout => "timeout",
            CallFailure::BrokenConnection => "broken connection",
            CallFailure::TlsHandshake => "tls handshake failure",
            CallFailure::Resolver => "resolver failure",
            CallFailure::Reader => "reader failure",
        }
    }
}
