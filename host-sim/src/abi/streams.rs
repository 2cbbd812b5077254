//! Stream control (continue, close, local reply: all deferred), effective context, done, properties, foreign calls.

use super::memory::{check_allowed, copy_out, read, read_string, Ctx};
use super::{host_crash, host_trap, nginx_request_action, nginx_unsupported};
use crate::headers::parse_pairs;
use crate::state::{Callback, Deferred, StreamKind, VmState};
use crate::types::{status, Profile};
use wasmtime::{bail, Result};
use wasmtime::Linker;

fn stream_kind(kind: i32) -> Option<Option<StreamKind>> {
    match kind {
        0 => Some(Some(StreamKind::Request)),
        1 => Some(Some(StreamKind::Response)),
        2 => Some(None),
        _ => None,
    }
}

pub fn register(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap("env", "proxy_continue_stream", |mut c: Ctx<'_>, kind: i32| -> Result<i32> {
        check_allowed(&c, "proxy_continue_stream")?;
        nginx_request_action(&mut c, "proxy_continue_stream")?;
        if kind == 3 {
            bail!("proxy_continue_stream(Upstream): Envoy answers Unimplemented (12), which the Rust SDK cannot represent");
        }
        let Some(kind) = stream_kind(kind) else { return Ok(status::BAD_ARGUMENT) };
        let Some(kind) = kind else { return Ok(status::OK) };
        let state = c.data_mut();
        let ctx = state.effective_ctx;
        if let Some(s) = state.stream_mut() {
            // Envoy drops its map pointers at once: later access in this very callback is BadArgument.
            match kind {
                StreamKind::Request => {
                    s.request_headers_live = false;
                    s.request_body_live = false;
                    s.request_trailers_live = false;
                    s.request_trailers_creatable = false;
                }
                StreamKind::Response => {
                    s.response_headers_live = false;
                    s.response_body_live = false;
                    s.response_trailers_live = false;
                    s.response_trailers_creatable = false;
                }
            }
            state.defer(Deferred::Continue(ctx, kind));
        }
        Ok(status::OK)
    })?;
    linker.func_wrap("env", "proxy_close_stream", |mut c: Ctx<'_>, kind: i32| -> Result<i32> {
        check_allowed(&c, "proxy_close_stream")?;
        nginx_unsupported(&mut c, "proxy_close_stream")?;
        let Some(kind) = stream_kind(kind).or(if kind == 3 { Some(None) } else { None }) else {
            return Ok(status::BAD_ARGUMENT);
        };
        let state = c.data_mut();
        let ctx = state.effective_ctx;
        if let (Some(kind), true) = (kind, state.streams.contains_key(&ctx)) {
            state.defer(Deferred::Close(ctx, kind));
        }
        Ok(status::OK)
    })?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Ctx<'_>, code: i32, dptr: i32, dlen: i32, bptr: i32, blen: i32, hptr: i32, hlen: i32, _grpc: i32| -> Result<i32> {
            check_allowed(&c, "proxy_send_local_response")?;
            nginx_request_action(&mut c, "proxy_send_local_response")?;
            let details = read_string(&c, dptr, dlen)?;
            let body = read(&c, bptr, blen)?;
            let headers = parse_pairs(&read(&c, hptr, hlen)?);
            if c.data().profile == Profile::Nginx {
                return nginx_local_response(&mut c, code, headers, body);
            }
            let state = c.data_mut();
            let ctx = state.effective_ctx;
            if state.streams.contains_key(&ctx) {
                let headers = headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
                state.defer(Deferred::LocalReply { ctx, status: code as u16, headers, body, details });
            }
            Ok(status::OK)
        },
    )?;
    linker.func_wrap("env", "proxy_set_effective_context", |mut c: Ctx<'_>, ctx: i32| -> Result<i32> {
        check_allowed(&c, "proxy_set_effective_context")?;
        if c.data().profile == Profile::Nginx {
            // ngx_wasm_module: a no-op that answers Ok; later hostcalls still act on the executing context.
            return Ok(status::OK);
        }
        let state = c.data_mut();
        let ctx = ctx as u32;
        if state.is_root(ctx) || state.streams.contains_key(&ctx) {
            state.effective_ctx = ctx;
            Ok(status::OK)
        } else {
            Ok(status::BAD_ARGUMENT)
        }
    })?;
    linker.func_wrap("env", "proxy_done", |mut c: Ctx<'_>| -> Result<i32> {
        check_allowed(&c, "proxy_done")?;
        nginx_unsupported(&mut c, "proxy_done")?;
        // Only a root context pending shutdown may call it, and the simulator never shuts roots down.
        Ok(status::NOT_FOUND)
    })?;
    properties(linker)?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |c: Ctx<'_>, _n: i32, _nl: i32, _a: i32, _al: i32, _rp: i32, _rs: i32| -> Result<i32> {
            check_allowed(&c, "proxy_call_foreign_function")?;
            Ok(status::NOT_FOUND)
        },
    )?;
    Ok(())
}

/// `ngx_proxy_wasm_hfuncs_send_local_response` and `ngx_http_wasm_stash_local_response`.
fn nginx_local_response(c: &mut Ctx<'_>, code: i32, headers: Vec<(String, Vec<u8>)>, body: Vec<u8>) -> Result<i32> {
    let state = c.data();
    let ctx = state.current_ctx;
    let in_call_response = state.callback == Some(Callback::HttpCallResponse);
    let Some(http) = state.stream() else { return Ok(status::OK) };
    let timeouts = http.consecutive_timeouts;
    if in_call_response && (timeouts >= 2 || (timeouts >= 1 && http.timed_out_with_body)) {
        let why = format!(
            "a local response from on_http_call_response after {timeouts} call(s) of this request in a row ended in \
             `:dispatch_status: timeout`{}: nginx logs \"zero size buf in writer\" and the assertion at \
             ngx_http_wasm_module.c:1240 aborts the worker (SIGABRT; a release build answers 500 after the headers went out)",
            if http.timed_out_with_body { ", one of them with a request body" } else { "" }
        );
        return Err(host_crash(c, "proxy_send_local_response", why));
    }
    if !(100..=999).contains(&code) {
        return Ok(status::BAD_ARGUMENT);
    }
    if http.response_body_started {
        return Err(host_trap(c, "response already sent"));
    }
    if http.response_started {
        // In on_http_response_headers: only the status and the body are replaced.
        c.data_mut().defer(Deferred::OverrideResponse { ctx, status: code as u16, body });
        return Ok(status::OK);
    }
    if http.local_reply_stashed {
        return Err(host_trap(c, "local response already stashed"));
    }
    let headers = headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    let state = c.data_mut();
    if let Some(http) = state.stream_mut() {
        http.local_reply_stashed = true;
    }
    state.defer(Deferred::LocalReply { ctx, status: code as u16, headers, body, details: String::new() });
    Ok(status::OK)
}

fn property(state: &VmState, path: &[&str]) -> Option<Vec<u8>> {
    let stream = state.stream();
    let request_header = |name: &str| stream.and_then(|s| s.request_headers.get(name)).map(<[u8]>::to_vec);
    match path {
        ["plugin_vm_id"] => Some(state.vm_id.as_bytes().to_vec()),
        ["plugin_root_id"] | ["plugin_name"] => Some(Vec::new()),
        ["request", "path"] => request_header(":path"),
        ["request", "method"] => request_header(":method"),
        ["request", "host"] => request_header(":authority"),
        ["request", "scheme"] => request_header(":scheme"),
        ["request", "id"] => request_header("x-request-id"),
        ["source", "address"] if stream.is_some() => Some(b"127.0.0.1:50000".to_vec()),
        ["destination", "address"] if stream.is_some() => Some(b"127.0.0.1:10000".to_vec()),
        _ => stream.and_then(|s| s.properties.get(&path.join("\0")).cloned()),
    }
}

fn properties(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Ctx<'_>, pptr: i32, plen: i32, ret_ptr: i32, ret_size: i32| -> Result<i32> {
            check_allowed(&c, "proxy_get_property")?;
            let raw = read_string(&c, pptr, plen)?;
            let path: Vec<&str> = raw.split('\0').collect();
            match property(c.data(), &path) {
                Some(value) => {
                    copy_out(&mut c, &value, ret_ptr, ret_size)?;
                    Ok(status::OK)
                }
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap("env", "proxy_set_property", |mut c: Ctx<'_>, pptr: i32, plen: i32, vptr: i32, vlen: i32| -> Result<i32> {
        check_allowed(&c, "proxy_set_property")?;
        let path = read_string(&c, pptr, plen)?;
        let value = read(&c, vptr, vlen)?;
        match c.data_mut().stream_mut() {
            Some(s) => {
                s.properties.insert(path, value);
                Ok(status::OK)
            }
            None => Ok(status::NOT_FOUND),
        }
    })?;
    Ok(())
}
