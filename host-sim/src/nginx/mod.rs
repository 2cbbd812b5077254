//! The parts of the nginx profile that are nginx data structures rather than hostcall rules: `shm_kv` zones,
//! the request header list ngx_wasm_module writes to, and what the proxy module makes of it upstream.

pub mod headers;
pub mod kv;
pub mod proxy;

/// ngx_wasm_module's default timeout for a callout dispatched with timeout 0 (`wasm_socket_*_timeout`, 60 s).
pub const DEFAULT_CALL_TIMEOUT_MS: u32 = 60_000;

/// Why an nginx worker crashes on an action on the request from the root context.
pub const NO_REQUEST_CONTEXT: &str = "ngx_wasm_module acts on the request of the executing context \
    (ngx_http_proxy_wasm_get_rctx), and a root context has none (NULL, or the fake request of its own \
    callout); proxy_set_effective_context is a no-op there, so the worker segfaults";
