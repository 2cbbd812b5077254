//! proxy_http_call (validated like Envoy's `Context::httpCall`), proxy_get_status and the gRPC calls (no gRPC
//! clusters exist in the simulator).

use super::memory::{check_allowed, copy_out, read, read_string, write_u32, Ctx};
use super::nginx_unsupported;
use crate::headers::parse_pairs;
use crate::state::{Effect, VmState};
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
            let profile = c.data().profile;
            let has = |name: &str| headers.iter().any(|(k, _)| k == name);
            let required: &[&str] = match profile {
                Profile::Envoy => &[":path", ":method", ":authority"],
                Profile::Nginx => &[":path", ":method"],
            };
            // Envoy: the timeout is converted to int first, then the cluster is looked up, then pseudo-headers.
            let valid = timeout_ms >= 0
                && (profile == Profile::Nginx || c.data().clusters.contains(&cluster))
                && required.iter().all(|h| has(h));
            if !valid {
                write_u32(&mut c, ret_token, 0)?;
                return Ok(status::BAD_ARGUMENT);
            }
            let token = c.data_mut().next_callout_token();
            write_u32(&mut c, ret_token, token)?;
            c.data_mut().effects.push(Effect::Callout { token, cluster, headers, body, trailers, timeout_ms: timeout_ms as u32 });
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
