//! Host-side state of one VM, reachable from every hostcall through the wasmtime `Caller`.

use crate::headers::HeaderMap;
use crate::types::{LogLevel, Profile, VmRef};
use crate::world::World;
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use wasmtime::{Memory, TypedFunc};

/// Which hostcalls are allowed right now (cpp-host restricts them during `_initialize` and allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restrict {
    None,
    Initialize,
    Allocate,
}

/// The callback currently running on this VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callback {
    ContextCreate,
    VmStart,
    Configure,
    Tick,
    QueueReady,
    HttpCallResponse,
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    Log,
    Done,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    Request,
    Response,
}

/// Actions Envoy defers with `addAfterVmCallAction`, applied by the simulator once the VM call returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deferred {
    Continue(u32, StreamKind),
    Close(u32, StreamKind),
    LocalReply { ctx: u32, status: u16, headers: Vec<(String, Vec<u8>)>, body: Vec<u8>, details: String },
    /// nginx: `send_local_response` from `on_http_response_headers` only replaces the status and the body.
    OverrideResponse { ctx: u32, status: u16, body: Vec<u8> },
}

/// Side effects a VM call produced, drained by the simulator after the call.
#[derive(Clone, Debug)]
pub enum Effect {
    Deferred(Deferred),
    /// `ctx`: the context that dispatched (on nginx the response goes back to it).
    Callout { token: u32, ctx: u32, cluster: String, headers: Vec<(String, String)>, body: Vec<u8>, trailers: Vec<(String, String)>, timeout_ms: u32 },
    QueueReady { target: VmRef, root: u32, generation: u64, queue_id: u32 },
    TickPeriod { period_ms: u32 },
}

/// Header maps and bodies of one HTTP stream, with Envoy's availability flags.
#[derive(Debug, Default)]
pub struct HttpData {
    pub request_headers: HeaderMap,
    pub request_headers_live: bool,
    pub request_body: Vec<u8>,
    pub request_body_live: bool,
    pub request_trailers: Option<HeaderMap>,
    pub request_trailers_live: bool,
    /// `on_request_body(eos)` with no trailers: Envoy lets the filter add trailers (`addDecodedTrailers`).
    pub request_trailers_creatable: bool,
    pub response_headers: Option<HeaderMap>,
    pub response_headers_live: bool,
    pub response_body: Vec<u8>,
    pub response_body_live: bool,
    pub response_trailers: Option<HeaderMap>,
    pub response_trailers_live: bool,
    pub response_trailers_creatable: bool,
    /// Access-log phase: every map that exists is readable, none writable.
    pub log_phase: bool,
    /// `proxy_set_property` values (Envoy keeps them in filter state).
    pub properties: HashMap<String, Vec<u8>>,
    /// nginx: a local reply is stashed and not yet sent (a second one traps).
    pub local_reply_stashed: bool,
    /// nginx: the response entered nginx's header filter (writes to request headers trap from then on).
    pub response_started: bool,
    /// nginx: the response body filter ran (a local reply then traps: "response already sent").
    pub response_body_started: bool,
    /// nginx: this request's last calls that ended in `:dispatch_status: timeout`, in a row.
    pub consecutive_timeouts: u32,
    /// nginx: one of those timed-out calls carried a request body (its buffers poison the request's).
    pub timed_out_with_body: bool,
}

/// The callout response visible during `proxy_on_http_call_response`.
#[derive(Debug, Default)]
pub struct CallResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    /// nginx: `:dispatch_status` ("ok", "timeout", "broken connection", ...); the map holds only it on failure.
    pub dispatch_status: Option<String>,
}

#[derive(Clone, Copy, Debug)]
pub struct MetricDef {
    pub kind: crate::world::MetricType,
}

pub struct VmState {
    pub vm: VmRef,
    pub generation: u64,
    pub profile: Profile,
    pub vm_id: String,
    pub now_ns: u64,
    pub start_ns: u64,
    pub env: Vec<(String, String)>,
    pub vm_config: Vec<u8>,
    pub plugin_config: Vec<u8>,
    pub host_log_level: LogLevel,
    pub clusters: Arc<HashSet<String>>,
    pub world: Arc<Mutex<World>>,
    pub rng: ChaCha8Rng,

    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<i32, i32>>,
    pub restrict: Restrict,
    pub callback: Option<Callback>,
    /// Context of the running callback, and the effective one (`proxy_set_effective_context`).
    pub current_ctx: u32,
    pub effective_ctx: u32,
    pub root_id: u32,
    pub next_ctx: u32,
    pub streams: HashMap<u32, HttpData>,
    pub call_response: Option<CallResponse>,
    pub call_status: (u32, String),
    next_callout_token: u32,
    pub metric_defs: HashMap<u32, (String, MetricDef)>,
    next_metric_id: [u32; 3],
    pub effects: Vec<Effect>,
    pub logs: Vec<(LogLevel, String)>,
    /// Partial stdout/stderr lines (WASI fd_write), flushed as log lines.
    pub stdio: [Vec<u8>; 2],
    /// A hostcall asked to fail the VM (e.g. an nginx-unsupported call); reported as the trap message.
    pub host_failure: Option<String>,
    /// nginx: a hostcall crashed the worker process: (hostcall, why).
    pub host_crash: Option<(String, String)>,
    /// nginx: the tick period this root set (a second non-zero one traps).
    pub tick_period_ms: u32,
}

impl VmState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vm: VmRef,
        generation: u64,
        profile: Profile,
        vm_id: String,
        env: Vec<(String, String)>,
        vm_config: Vec<u8>,
        plugin_config: Vec<u8>,
        clusters: Arc<HashSet<String>>,
        world: Arc<Mutex<World>>,
        rng: ChaCha8Rng,
        start_ns: u64,
    ) -> Self {
        // ngx_wasm_module's context ids are large numbers, and its first callout token is 0.
        let (first_ctx, first_token) = match profile {
            Profile::Envoy => (1, 4),
            Profile::Nginx => (1_048_577, 0),
        };
        VmState {
            vm,
            generation,
            profile,
            vm_id,
            now_ns: start_ns,
            start_ns,
            env,
            vm_config,
            plugin_config,
            host_log_level: LogLevel::Info,
            clusters,
            world,
            rng,
            memory: None,
            alloc: None,
            restrict: Restrict::None,
            callback: None,
            current_ctx: 0,
            effective_ctx: 0,
            root_id: first_ctx,
            next_ctx: first_ctx + 1,
            streams: HashMap::new(),
            call_response: None,
            call_status: (0, String::new()),
            next_callout_token: first_token,
            metric_defs: HashMap::new(),
            next_metric_id: [0, 1, 2],
            effects: Vec::new(),
            logs: Vec::new(),
            stdio: [Vec::new(), Vec::new()],
            host_failure: None,
            host_crash: None,
            tick_period_ms: 0,
        }
    }

    pub fn alloc_context_id(&mut self) -> u32 {
        let id = self.next_ctx;
        self.next_ctx += 1;
        id
    }

    pub fn next_callout_token(&mut self) -> u32 {
        let token = self.next_callout_token;
        self.next_callout_token += match self.profile {
            Profile::Envoy => 4,
            Profile::Nginx => 1,
        };
        token
    }

    /// Envoy's metric ids: the low 2 bits carry the type (counter 4, 8…; gauge 5, 9…; histogram 6, 10…).
    pub fn next_metric_id(&mut self, kind: crate::world::MetricType) -> u32 {
        let slot = kind as usize;
        self.next_metric_id[slot] += 4;
        self.next_metric_id[slot]
    }

    pub fn is_root(&self, ctx: u32) -> bool {
        ctx == self.root_id
    }

    /// Whether the running callback belongs to the root context (the context executing, not the effective one).
    pub fn in_root(&self) -> bool {
        self.is_root(self.current_ctx)
    }

    /// The stream the hostcall acts on: the effective context if it is a stream.
    pub fn stream_mut(&mut self) -> Option<&mut HttpData> {
        let ctx = self.effective_ctx;
        self.streams.get_mut(&ctx)
    }

    pub fn stream(&self) -> Option<&HttpData> {
        self.streams.get(&self.effective_ctx)
    }

    /// Emits buffered stdout/stderr text as Info/Error lines (one per line; a trailing partial line too).
    pub fn flush_stdio(&mut self, partial_too: bool) {
        for (fd, level) in [(0, LogLevel::Info), (1, LogLevel::Error)] {
            while let Some(end) = self.stdio[fd].iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.stdio[fd].drain(..=end).collect();
                self.logs.push((level, String::from_utf8_lossy(&line[..line.len() - 1]).into_owned()));
            }
            if partial_too && !self.stdio[fd].is_empty() {
                let line = std::mem::take(&mut self.stdio[fd]);
                self.logs.push((level, String::from_utf8_lossy(&line).into_owned()));
            }
        }
    }

    pub fn defer(&mut self, action: Deferred) {
        self.effects.push(Effect::Deferred(action));
    }
}
