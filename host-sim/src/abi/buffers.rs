//! proxy_get_buffer_bytes / proxy_set_buffer_bytes with Envoy's availability and clamping rules.

use super::memory::{check_allowed, copy_out, read, Ctx};
use super::nginx_request_action;
use crate::state::{Callback, VmState};
use crate::types::{buffer_type as bt, status};
use wasmtime::Result;
use wasmtime::Linker;

fn readable(state: &VmState, kind: u32) -> Option<Vec<u8>> {
    match kind {
        bt::HTTP_REQUEST_BODY => state.stream().filter(|s| s.request_body_live).map(|s| s.request_body.clone()),
        bt::HTTP_RESPONSE_BODY => state.stream().filter(|s| s.response_body_live).map(|s| s.response_body.clone()),
        bt::HTTP_CALL_RESPONSE_BODY => state.call_response.as_ref().map(|r| r.body.clone()),
        bt::VM_CONFIGURATION => Some(state.vm_config.clone()),
        bt::PLUGIN_CONFIGURATION => match state.callback {
            Some(Callback::Configure) => Some(state.plugin_config.clone()),
            Some(Callback::ContextCreate) if state.is_root(state.current_ctx) => Some(state.plugin_config.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Envoy `Buffer::copyFrom`: prepend, replace all, append, anything else BadArgument.
fn splice(buffer: &mut Vec<u8>, start: usize, length: usize, data: &[u8]) -> i32 {
    if start == 0 && length == 0 {
        buffer.splice(0..0, data.iter().copied());
    } else if start == 0 && length >= buffer.len() {
        *buffer = data.to_vec();
    } else if start >= buffer.len() {
        buffer.extend_from_slice(data);
    } else {
        return status::BAD_ARGUMENT;
    }
    status::OK
}

pub fn register(linker: &mut wasmtime::Linker<VmState>) -> Result<()> {
    get(linker)?;
    set(linker)
}

fn get(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Ctx<'_>, kind: i32, start: i32, max: i32, ret_ptr: i32, ret_size: i32| -> Result<i32> {
            check_allowed(&c, "proxy_get_buffer_bytes")?;
            let kind = kind as u32;
            if kind > bt::MAX {
                return Ok(status::BAD_ARGUMENT);
            }
            if matches!(kind, bt::HTTP_REQUEST_BODY | bt::HTTP_RESPONSE_BODY) {
                nginx_request_action(&mut c, "proxy_get_buffer_bytes")?;
            }
            let Some(buffer) = readable(c.data(), kind) else { return Ok(status::NOT_FOUND) };
            let start = (start as u32 as usize).min(buffer.len());
            let end = start.saturating_add(max as u32 as usize).min(buffer.len());
            copy_out(&mut c, &buffer[start..end], ret_ptr, ret_size)?;
            Ok(status::OK)
        },
    )?;
    Ok(())
}

fn set(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Ctx<'_>, kind: i32, start: i32, length: i32, ptr: i32, len: i32| -> Result<i32> {
            check_allowed(&c, "proxy_set_buffer_bytes")?;
            let kind = kind as u32;
            if kind > bt::MAX {
                return Ok(status::BAD_ARGUMENT);
            }
            if matches!(kind, bt::HTTP_REQUEST_BODY | bt::HTTP_RESPONSE_BODY) {
                nginx_request_action(&mut c, "proxy_set_buffer_bytes")?;
            }
            let data = read(&c, ptr, len)?;
            let (start, length) = (start as u32 as usize, length as u32 as usize);
            let state = c.data_mut();
            let result = match kind {
                bt::HTTP_REQUEST_BODY => match state.stream_mut().filter(|s| s.request_body_live) {
                    Some(s) => splice(&mut s.request_body, start, length, &data),
                    None => status::NOT_FOUND,
                },
                bt::HTTP_RESPONSE_BODY => match state.stream_mut().filter(|s| s.response_body_live) {
                    Some(s) => splice(&mut s.response_body, start, length, &data),
                    None => status::NOT_FOUND,
                },
                _ if readable(state, kind).is_some() => status::BAD_ARGUMENT,
                _ => status::NOT_FOUND,
            };
            Ok(result)
        },
    )?;
    Ok(())
}
