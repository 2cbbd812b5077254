//! Header map hostcalls on the nginx profile (`ngx_proxy_wasm_maps.c`, `ngx_proxy_wasm_host.c`):
//!
//! * request and response maps belong to the request of the *executing* context: from a root context (a tick,
//!   the root's own call response) any access crashes the worker;
//! * the pairs list starts with the pseudo-headers (`:path`, `:method`, `:scheme`, `:authority`; `:status`;
//!   for a call response `:status` when there is one, then `:dispatch_status`), then the visible entries;
//! * writes follow `crate::nginx::headers`; `:path` and `:method` can be set, `:scheme` and `:authority` are
//!   read-only (logged, nothing written; in `set_header_map_pairs` the first read-only pair ends the loop);
//! * request headers are writable in the request steps, and in a call response until the response started;
//!   response headers in the response-headers step and in a call response; elsewhere the hostcall traps.

use super::memory::Ctx;
use super::{host_trap, nginx_request_action};
use crate::headers::{serialize_pairs, HeaderMap};
use crate::nginx::headers::{clear, write, Mode};
use crate::state::{Callback, VmState};
use crate::types::{map_type as mt, status, LogLevel};
use wasmtime::Result;

const REQUEST_PSEUDO: &[&str] = &[":path", ":method", ":scheme", ":authority"];

fn is_stream_map(kind: u32) -> bool {
    kind <= mt::RESPONSE_TRAILERS
}

/// The map's pairs as the filter sees them, or the status to answer.
fn pairs(state: &VmState, kind: u32) -> Result<Vec<(String, Vec<u8>)>, i32> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let visible = |map: &HeaderMap, out: &mut Vec<(String, Vec<u8>)>| {
        out.extend(map.iter().filter(|(k, _)| !k.starts_with(':')).map(|(k, v)| (k.to_string(), v.to_vec())));
    };
    match kind {
        mt::CALL_RESPONSE_HEADERS => {
            let r = state.call_response.as_ref().ok_or(status::BAD_ARGUMENT)?;
            if let Some(code) = r.headers.get(":status") {
                out.push((":status".into(), code.to_vec()));
            }
            if let Some(dispatch) = &r.dispatch_status {
                out.push((":dispatch_status".into(), dispatch.as_bytes().to_vec()));
            }
            visible(&r.headers, &mut out);
        }
        mt::CALL_RESPONSE_TRAILERS => return Err(status::BAD_ARGUMENT),
        mt::REQUEST_HEADERS => {
            let s = state.stream().ok_or(status::BAD_ARGUMENT)?;
            for name in REQUEST_PSEUDO {
                if let Some(v) = s.request_headers.get(name).filter(|v| !v.is_empty()) {
                    out.push((name.to_string(), v.to_vec()));
                }
            }
            visible(&s.request_headers, &mut out);
        }
        mt::RESPONSE_HEADERS => {
            let s = state.stream().ok_or(status::BAD_ARGUMENT)?;
            if let Some(map) = &s.response_headers {
                if let Some(code) = map.get(":status") {
                    out.push((":status".into(), code.to_vec()));
                }
                visible(map, &mut out);
            }
        }
        mt::REQUEST_TRAILERS | mt::RESPONSE_TRAILERS => {}
        _ => return Err(status::BAD_ARGUMENT),
    }
    Ok(out)
}

fn value(state: &VmState, kind: u32, key: &str) -> Result<Option<Vec<u8>>, i32> {
    let key = key.to_ascii_lowercase();
    match kind {
        mt::CALL_RESPONSE_HEADERS => {
            let Some(r) = state.call_response.as_ref() else { return Ok(None) };
            if key == ":dispatch_status" {
                return Ok(r.dispatch_status.as_ref().map(|d| d.as_bytes().to_vec()));
            }
            Ok(r.headers.get(&key).map(<[u8]>::to_vec))
        }
        mt::REQUEST_HEADERS => Ok(state.stream().and_then(|s| s.request_headers.get(&key)).map(<[u8]>::to_vec)),
        mt::RESPONSE_HEADERS => {
            Ok(state.stream().and_then(|s| s.response_headers.as_ref()).and_then(|m| m.get(&key)).map(<[u8]>::to_vec))
        }
        mt::REQUEST_TRAILERS | mt::RESPONSE_TRAILERS | mt::CALL_RESPONSE_TRAILERS => Ok(None),
        _ => Err(status::BAD_ARGUMENT),
    }
}

pub fn get_pairs(c: &mut Ctx<'_>, kind: u32) -> Result<Result<Vec<u8>, i32>> {
    if is_stream_map(kind) {
        nginx_request_action(c, "proxy_get_header_map_pairs")?;
    }
    Ok(pairs(c.data(), kind).map(|p| serialize_pairs(p.iter().map(|(k, v)| (k.as_str(), v.as_slice())))))
}

pub fn get_value(c: &mut Ctx<'_>, kind: u32, key: &str) -> Result<Result<Option<Vec<u8>>, i32>> {
    if is_stream_map(kind) {
        nginx_request_action(c, "proxy_get_header_map_value")?;
    }
    Ok(value(c.data(), kind, key))
}

/// `ngx_proxy_wasm_hfuncs_set_header_check`: Ok(true) to write, Ok(false) for a status answer, Err to trap.
fn check_write(c: &mut Ctx<'_>, kind: u32, hostcall: &str) -> Result<bool> {
    if !is_stream_map(kind) {
        return Ok(false);
    }
    nginx_request_action(c, hostcall)?;
    let s = c.data();
    let started = s.stream().is_some_and(|h| h.response_started);
    let callback = s.callback;
    let ok = match kind {
        mt::REQUEST_HEADERS => match callback {
            Some(Callback::RequestHeaders | Callback::RequestBody | Callback::RequestTrailers) => true,
            Some(Callback::HttpCallResponse) => !started,
            _ => false,
        },
        mt::RESPONSE_HEADERS => match callback {
            Some(Callback::ResponseHeaders) => true,
            Some(Callback::HttpCallResponse) => !s.stream().is_some_and(|h| h.response_body_started),
            _ => false,
        },
        _ => return Ok(false),
    };
    if !ok {
        let message = if kind == mt::REQUEST_HEADERS {
            "can only set request headers before response is produced"
        } else {
            "can only set response headers before \"on_response_body\""
        };
        return Err(host_trap(c, message));
    }
    Ok(state_map(c.data_mut(), kind).is_some())
}

fn state_map(state: &mut VmState, kind: u32) -> Option<&mut HeaderMap> {
    let s = state.stream_mut()?;
    match kind {
        mt::REQUEST_HEADERS => Some(&mut s.request_headers),
        mt::RESPONSE_HEADERS => s.response_headers.as_mut(),
        _ => None,
    }
}

/// One write; false when the key is a read-only pseudo-header (logged, nothing written).
fn apply(state: &mut VmState, kind: u32, key: &str, value: &[u8], mode: Mode) -> bool {
    let key = key.to_ascii_lowercase();
    let writable_pseudo: &[&str] = if kind == mt::REQUEST_HEADERS { &[":path", ":method"] } else { &[":status"] };
    if key.starts_with(':') && !writable_pseudo.contains(&key.as_str()) {
        state.logs.push((LogLevel::Error, format!("host-sim (nginx): cannot set read-only \"{key}\" header")));
        return false;
    }
    let Some(map) = state_map(state, kind) else { return true };
    if key.starts_with(':') {
        if mode != Mode::Remove {
            map.replace(&key, value);
        }
        return true;
    }
    write(map, &key, value, mode);
    true
}

/// `proxy_replace_header_map_value`, `proxy_add_header_map_value`, `proxy_remove_header_map_value`.
pub fn modify(c: &mut Ctx<'_>, kind: u32, key: &str, value: &[u8], mode: Mode, hostcall: &str) -> Result<i32> {
    if !check_write(c, kind, hostcall)? {
        return Ok(if is_stream_map(kind) { status::OK } else { status::BAD_ARGUMENT });
    }
    apply(c.data_mut(), kind, key, value, mode);
    Ok(status::OK)
}

/// `proxy_set_header_map_pairs`: every visible entry is removed, then the pairs are set one by one until the
/// first read-only pseudo-header.
pub fn set_pairs(c: &mut Ctx<'_>, kind: u32, new_pairs: &[(String, Vec<u8>)]) -> Result<i32> {
    if !check_write(c, kind, "proxy_set_header_map_pairs")? {
        return Ok(if is_stream_map(kind) { status::OK } else { status::BAD_ARGUMENT });
    }
    let state = c.data_mut();
    if let Some(map) = state_map(state, kind) {
        clear(map);
    }
    for (k, v) in new_pairs {
        if !apply(state, kind, k, v, Mode::Set) {
            break;
        }
    }
    Ok(status::OK)
}
