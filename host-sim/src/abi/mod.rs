//! Every `env.proxy_*` import of proxy-wasm 0.2.5 and the WASI calls a Rust wasip1 module makes.

pub mod buffers;
pub mod callouts;
pub mod headers;
pub mod logging;
pub mod memory;
pub mod metrics;
mod ngx_maps;
pub mod queues;
pub mod shared;
pub mod streams;
pub mod wasi;

use crate::state::VmState;
use crate::types::Profile;
use wasmtime::{bail, Result};
use memory::Ctx;
use wasmtime::Linker;

/// The `env` imports a proxy-wasm 0.2.5 module may reference.
pub const ENV_IMPORTS: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_add_header_map_value",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_call_foreign_function",
    "proxy_done",
    "proxy_define_metric",
    "proxy_get_metric",
    "proxy_record_metric",
    "proxy_increment_metric",
];

pub fn register_all(linker: &mut Linker<VmState>) -> Result<()> {
    logging::register(linker)?;
    buffers::register(linker)?;
    headers::register(linker)?;
    shared::register(linker)?;
    queues::register(linker)?;
    streams::register(linker)?;
    callouts::register(linker)?;
    metrics::register(linker)?;
    wasi::register(linker)?;
    Ok(())
}

/// The hostcall traps (the VM call fails) with `message` as the reported trap.
pub fn host_trap(caller: &mut Ctx<'_>, message: impl Into<String>) -> wasmtime::Error {
    let message = message.into();
    caller.data_mut().host_failure = Some(message.clone());
    wasmtime::format_err!("{message}")
}

/// nginx: the hostcall crashes the worker process (recorded as a `HostCrash`; the VM call is aborted).
pub fn host_crash(caller: &mut Ctx<'_>, hostcall: &str, why: impl Into<String>) -> wasmtime::Error {
    let why = why.into();
    caller.data_mut().host_crash = Some((hostcall.to_string(), why.clone()));
    wasmtime::format_err!("nginx worker crash in {hostcall}: {why}")
}

/// nginx: `hostcall` acts on the request of the executing context; from a root context that crashes the worker.
pub fn nginx_request_action(caller: &mut Ctx<'_>, hostcall: &str) -> Result<()> {
    let s = caller.data();
    if s.profile == Profile::Nginx && s.in_root() {
        let callback = s.callback.map(|c| format!("{c:?}")).unwrap_or_default();
        return Err(host_crash(caller, hostcall, format!("{hostcall} from the root context (callback {callback}): {}", crate::nginx::NO_REQUEST_CONTEXT)));
    }
    Ok(())
}

/// ngx_wasm_module lacks some hostcalls; calling one fails the request (the VM call traps).
pub fn nginx_unsupported(caller: &mut Ctx<'_>, name: &str) -> Result<()> {
    if caller.data().profile == Profile::Nginx {
        let message = format!("host function not supported on nginx: {name}");
        caller.data_mut().host_failure = Some(message.clone());
        bail!(message);
    }
    Ok(())
}
