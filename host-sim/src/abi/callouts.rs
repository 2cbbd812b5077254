//! proxy_http_call (validated like Envoy's `Context::httpCall`), proxy_get_status and the gRPC calls (no gRPC
//! clusters exist in the simulator).

use super::memory::{check_allowed, copy_out, read, read_string, write_u32, Ctx};
use super::{host_crash, host_trap, nginx_unsupported};
use crate::headers::parse_pairs;
use crate::state::{Callback, Effect, VmState};
use crate::types::{status, Profile};
use wasmtime::Result;
use wasmtime::Linker;

fn lowercase(pairs: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    pairs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned())).collect()
}

pub fn register(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Ctx<'_>,
         uptr: i32,
         ulen: i32,
         hptr: i32,
         hlen: i32,
         bptr: i32,
         blen: i32,
         tptr: i32,
         tlen: i32,
         timeout_ms: i32,
         ret_token: i32|
         -> Result<i32> {
            check_allowed(&c, "proxy_http_call")?;
            let cluster = read_string(&c, uptr, ulen)?;
            let headers = lowercase(parse_pairs(&read(&c, hptr, hlen)?));
            let body = read(&c, bptr, blen)?;
            let trailers = lowercase(parse_pairs(&read(&c, tptr, tlen)?));
            if c.data().profile == Profile::Nginx {
                return nginx_dispatch(&mut c, cluster, headers, body, trailers, timeout_ms, ret_token);
            }
            let has = |name: &str| headers.iter().any(|(k, _)| k == name);
            // Envoy: the timeout is converted to int first, then the cluster is looked up, then pseudo-headers.
            let valid = timeout_ms >= 0
                && c.data().clusters.contains(&cluster)
                && [":path", ":method", ":authority"].iter().all(|h| has(h));
            if !valid {
                write_u32(&mut c, ret_token, 0)?;
                return Ok(status::BAD_ARGUMENT);
            }
            let token = c.data_mut().next_callout_token();
            write_u32(&mut c, ret_token, token)?;
            let ctx = c.data().current_ctx;
            c.data_mut().effects.push(Effect::Callout { token, ctx, cluster, headers, body, trailers, timeout_ms: timeout_ms as u32 });
            Ok(status::OK)
        },
    )?;
    linker.func_wrap("env", "proxy_get_status", |mut c: Ctx<'_>, ret_code: i32, ret_ptr: i32, ret_size: i32| -> Result<i32> {
        check_allowed(&c, "proxy_get_status")?;
        nginx_unsupported(&mut c, "proxy_get_status")?;
        let (code, message) = c.data().call_status.clone();
        write_u32(&mut c, ret_code, code)?;
        copy_out(&mut c, message.as_bytes(), ret_ptr, ret_size)?;
        Ok(status::OK)
    })?;
    grpc(linker)
}

/// `ngx_proxy_wasm_hfuncs_dispatch_http_call` and `ngx_http_proxy_wasm_dispatch`.
fn nginx_dispatch(
    c: &mut Ctx<'_>,
    target: String,
    mut headers: Vec<(String, String)>,
    body: Vec<u8>,
    trailers: Vec<(String, String)>,
    timeout_ms: i32,
    ret_token: i32,
) -> Result<i32> {
    let (callback, in_root) = (c.data().callback, c.data().in_root());
    if in_root && callback == Some(Callback::HttpCallResponse) {
        return Err(host_crash(
            c,
            "proxy_http_call",
            "a dispatch from the root context's own on_http_call_response: ngx_wasm_module finds the finished \
             call's request context and allocates the new call on its freed pool (SIGSEGV)",
        ));
    }
    let poisoned = !in_root
        && callback == Some(Callback::HttpCallResponse)
        && c.data().stream().is_some_and(|h| h.consecutive_timeouts >= 1 && h.timed_out_with_body);
    if poisoned {
        return Err(host_crash(
            c,
            "proxy_http_call",
            "a dispatch from a request whose last call (with a request body) ended in `:dispatch_status: timeout`: \
             the worker loops forever on \"send() returned zero\" (measured with ngx_wasm_module prerelease-0.6.0)",
        ));
    }
    let allowed = matches!(callback, Some(Callback::RequestHeaders | Callback::RequestBody | Callback::Tick | Callback::HttpCallResponse));
    if !allowed {
        return Err(host_trap(
            c,
            "can only send HTTP dispatch during \"on_request_headers\", \"on_request_body\", \"on_tick\", \"on_dispatch_response\", \"on_foreign_function\"",
        ));
    }
    let has = |name: &str| headers.iter().any(|(k, v)| k == name && !v.is_empty());
    let error = if !has(":method") {
        Some("no :method")
    } else if !has(":path") {
        Some("no :path")
    } else if target.is_empty() || target.starts_with(':') {
        Some("tcp socket - no host")
    } else {
        None
    };
    if let Some(error) = error {
        // In a request's hostcall the failure traps; a root's (fake request) is logged and answered with an error.
        let message = format!("dispatch failed: {error}");
        if !in_root {
            return Err(host_trap(c, message));
        }
        c.data_mut().logs.push((crate::types::LogLevel::Error, format!("host-sim (nginx): {message}")));
        write_u32(c, ret_token, 0)?;
        return Ok(status::INTERNAL_FAILURE);
    }
    if !has(":authority") {
        // The Host header defaults to the target (unix sockets: "localhost").
        let authority = if target.starts_with("unix:") { "localhost".to_string() } else { target.clone() };
        headers.retain(|(k, _)| k != ":authority");
        headers.push((":authority".to_string(), authority));
    }
    let timeout_ms = match timeout_ms as u32 {
        0 => crate::nginx::DEFAULT_CALL_TIMEOUT_MS,
        t => t,
    };
    let token = c.data_mut().next_callout_token();
    write_u32(c, ret_token, token)?;
    let ctx = c.data().current_ctx;
    c.data_mut().effects.push(Effect::Callout { token, ctx, cluster: target, headers, body, trailers, timeout_ms });
    Ok(status::OK)
}

fn grpc(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut c: Ctx<'_>, _p1: i32, _p2: i32, _p3: i32, _p4: i32, _p5: i32, _p6: i32, _p7: i32, _p8: i32, _p9: i32, _p10: i32, _p11: i32, _p12: i32| -> Result<i32> {
            check_allowed(&c, "proxy_grpc_call")?;
            nginx_unsupported(&mut c, "proxy_grpc_call")?;
            // No cluster is a gRPC service here: Envoy answers ParseFailure for an unknown one.
            Ok(status::PARSE_FAILURE)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut c: Ctx<'_>, _p1: i32, _p2: i32, _p3: i32, _p4: i32, _p5: i32, _p6: i32, _p7: i32, _p8: i32, _p9: i32| -> Result<i32> {
            check_allowed(&c, "proxy_grpc_stream")?;
            nginx_unsupported(&mut c, "proxy_grpc_stream")?;
            Ok(status::PARSE_FAILURE)
        },
    )?;
    linker.func_wrap("env", "proxy_grpc_send", |mut c: Ctx<'_>, _t: i32, _p: i32, _l: i32, _e: i32| -> Result<i32> {
        check_allowed(&c, "proxy_grpc_send")?;
        nginx_unsupported(&mut c, "proxy_grpc_send")?;
        Ok(status::NOT_FOUND)
    })?;
    linker.func_wrap("env", "proxy_grpc_cancel", |mut c: Ctx<'_>, _t: i32| -> Result<i32> {
        check_allowed(&c, "proxy_grpc_cancel")?;
        nginx_unsupported(&mut c, "proxy_grpc_cancel")?;
        Ok(status::NOT_FOUND)
    })?;
    linker.func_wrap("env", "proxy_grpc_close", |mut c: Ctx<'_>, _t: i32| -> Result<i32> {
        check_allowed(&c, "proxy_grpc_close")?;
        nginx_unsupported(&mut c, "proxy_grpc_close")?;
        Ok(status::NOT_FOUND)
    })?;
    Ok(())
}
