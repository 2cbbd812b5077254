//! Header/trailer map hostcalls with Envoy's phase availability: a map that is not available in the current phase
//! answers BadArgument to get-value and to every write (the SDK panics), and Ok+empty to get-pairs.

use super::memory::{check_allowed, copy_out, read, read_string, Ctx};
use super::ngx_maps;
use crate::headers::{parse_pairs, HeaderMap};
use crate::nginx::headers::Mode;
use crate::state::{HttpData, VmState};
use crate::types::{map_type as mt, status, Profile};
use wasmtime::Result;
use wasmtime::Linker;

enum Access<'a> {
    Map(&'a HeaderMap),
    Empty,
    Unavailable,
    /// The access-log phase answers NotFound for a map that does not exist.
    LogMissing,
}

fn stream_map(s: &HttpData, kind: u32) -> Access<'_> {
    let (map, live, creatable) = match kind {
        mt::REQUEST_HEADERS => (Some(&s.request_headers), s.request_headers_live, false),
        mt::REQUEST_TRAILERS => (s.request_trailers.as_ref(), s.request_trailers_live, s.request_trailers_creatable),
        mt::RESPONSE_HEADERS => (s.response_headers.as_ref(), s.response_headers_live, false),
        mt::RESPONSE_TRAILERS => (s.response_trailers.as_ref(), s.response_trailers_live, s.response_trailers_creatable),
        _ => (None, false, false),
    };
    match map {
        Some(map) if live || s.log_phase => Access::Map(map),
        None if creatable => Access::Empty,
        _ if s.log_phase => Access::LogMissing,
        _ => Access::Unavailable,
    }
}

fn readable(state: &VmState, kind: u32) -> Access<'_> {
    match kind {
        mt::CALL_RESPONSE_HEADERS => state.call_response.as_ref().map_or(Access::Unavailable, |r| Access::Map(&r.headers)),
        mt::CALL_RESPONSE_TRAILERS => state.call_response.as_ref().map_or(Access::Unavailable, |r| Access::Map(&r.trailers)),
        _ => state.stream().map_or(Access::Unavailable, |s| stream_map(s, kind)),
    }
}

/// The map a write may change, or the status to answer.
fn writable(state: &mut VmState, kind: u32) -> Result<&mut HeaderMap, i32> {
    if kind > mt::MAX {
        return Err(status::BAD_ARGUMENT);
    }
    let s = state.stream_mut().ok_or(status::BAD_ARGUMENT)?;
    if s.log_phase {
        return Err(status::BAD_ARGUMENT);
    }
    let (map, live, creatable) = match kind {
        mt::REQUEST_HEADERS => (Some(&mut s.request_headers), s.request_headers_live, false),
        mt::REQUEST_TRAILERS => {
            if s.request_trailers.is_none() && s.request_trailers_creatable {
                s.request_trailers = Some(HeaderMap::new());
                s.request_trailers_live = true;
            }
            (s.request_trailers.as_mut(), s.request_trailers_live, s.request_trailers_creatable)
        }
        mt::RESPONSE_HEADERS => (s.response_headers.as_mut(), s.response_headers_live, false),
        mt::RESPONSE_TRAILERS => {
            if s.response_trailers.is_none() && s.response_trailers_creatable {
                s.response_trailers = Some(HeaderMap::new());
                s.response_trailers_live = true;
            }
            (s.response_trailers.as_mut(), s.response_trailers_live, s.response_trailers_creatable)
        }
        _ => (None, false, false),
    };
    match map {
        Some(map) if live || creatable => Ok(map),
        _ => Err(status::BAD_ARGUMENT),
    }
}

fn modify(c: &mut Ctx<'_>, kind: i32, change: impl FnOnce(&mut HeaderMap)) -> i32 {
    match writable(c.data_mut(), kind as u32) {
        Ok(map) => {
            change(map);
            status::OK
        }
        Err(code) => code,
    }
}

fn nginx(c: &Ctx<'_>) -> bool {
    c.data().profile == Profile::Nginx
}

pub fn register(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap("env", "proxy_get_header_map_pairs", |mut c: Ctx<'_>, kind: i32, ret_ptr: i32, ret_size: i32| -> Result<i32> {
        check_allowed(&c, "proxy_get_header_map_pairs")?;
        if kind as u32 > mt::MAX {
            return Ok(status::BAD_ARGUMENT);
        }
        if nginx(&c) {
            return match ngx_maps::get_pairs(&mut c, kind as u32)? {
                Ok(bytes) => {
                    copy_out(&mut c, &bytes, ret_ptr, ret_size)?;
                    Ok(status::OK)
                }
                Err(code) => Ok(code),
            };
        }
        let bytes = match readable(c.data(), kind as u32) {
            Access::Map(map) => map.serialize(),
            _ => Vec::new(),
        };
        copy_out(&mut c, &bytes, ret_ptr, ret_size)?;
        Ok(status::OK)
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Ctx<'_>, kind: i32, kptr: i32, klen: i32, ret_ptr: i32, ret_size: i32| -> Result<i32> {
            check_allowed(&c, "proxy_get_header_map_value")?;
            if kind as u32 > mt::MAX {
                return Ok(status::BAD_ARGUMENT);
            }
            let key = read_string(&c, kptr, klen)?;
            if nginx(&c) {
                return match ngx_maps::get_value(&mut c, kind as u32, &key)? {
                    Ok(Some(value)) => {
                        copy_out(&mut c, &value, ret_ptr, ret_size)?;
                        Ok(status::OK)
                    }
                    Ok(None) => Ok(status::NOT_FOUND),
                    Err(code) => Ok(code),
                };
            }
            let value = match readable(c.data(), kind as u32) {
                Access::Map(map) => map.get(&key).map(<[u8]>::to_vec),
                Access::Empty | Access::LogMissing => None,
                Access::Unavailable => return Ok(status::BAD_ARGUMENT),
            };
            match value {
                Some(value) => {
                    copy_out(&mut c, &value, ret_ptr, ret_size)?;
                    Ok(status::OK)
                }
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap("env", "proxy_set_header_map_pairs", |mut c: Ctx<'_>, kind: i32, ptr: i32, len: i32| -> Result<i32> {
        check_allowed(&c, "proxy_set_header_map_pairs")?;
        let pairs = parse_pairs(&read(&c, ptr, len)?);
        if nginx(&c) {
            return ngx_maps::set_pairs(&mut c, kind as u32, &pairs);
        }
        Ok(modify(&mut c, kind, |map| {
            let keys: Vec<String> = map.iter().map(|(k, _)| k.to_string()).collect();
            for key in keys {
                map.remove(&key);
            }
            for (k, v) in &pairs {
                map.add(k, v);
            }
        }))
    })?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Ctx<'_>, kind: i32, kptr: i32, klen: i32, vptr: i32, vlen: i32| -> Result<i32> {
            check_allowed(&c, "proxy_replace_header_map_value")?;
            let (key, value) = (read_string(&c, kptr, klen)?, read(&c, vptr, vlen)?);
            if nginx(&c) {
                return ngx_maps::modify(&mut c, kind as u32, &key, &value, Mode::Set, "proxy_replace_header_map_value");
            }
            Ok(modify(&mut c, kind, |map| map.replace(&key, &value)))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Ctx<'_>, kind: i32, kptr: i32, klen: i32, vptr: i32, vlen: i32| -> Result<i32> {
            check_allowed(&c, "proxy_add_header_map_value")?;
            let (key, value) = (read_string(&c, kptr, klen)?, read(&c, vptr, vlen)?);
            if nginx(&c) {
                return ngx_maps::modify(&mut c, kind as u32, &key, &value, Mode::Append, "proxy_add_header_map_value");
            }
            Ok(modify(&mut c, kind, |map| map.add(&key, &value)))
        },
    )?;
    linker.func_wrap("env", "proxy_remove_header_map_value", |mut c: Ctx<'_>, kind: i32, kptr: i32, klen: i32| -> Result<i32> {
        check_allowed(&c, "proxy_remove_header_map_value")?;
        let key = read_string(&c, kptr, klen)?;
        if nginx(&c) {
            return ngx_maps::modify(&mut c, kind as u32, &key, b"", Mode::Remove, "proxy_remove_header_map_value");
        }
        Ok(modify(&mut c, kind, |map| map.remove(&key)))
    })?;
    Ok(())
}
