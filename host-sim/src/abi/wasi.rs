//! The WASI preview1 calls a Rust wasip1 proxy-wasm module makes, answered as cpp-host does: stdout/stderr go to
//! the log, environ is the VM's configured environment, clocks are the virtual clock, random_get is the seeded
//! PRNG, and file calls fail harmlessly.

use super::memory::{read, write, write_u32, write_u64, Ctx};
use crate::state::VmState;
use crate::types::LogLevel;
use wasmtime::{bail, Result};
use rand_core::RngCore;
use wasmtime::Linker;

pub const MODULES: &[&str] = &["wasi_snapshot_preview1", "wasi_unstable"];

/// The WASI functions answered specifically; any other one gets ENOSYS.
pub const DEFINED: &[&str] = &[
    "fd_write",
    "environ_sizes_get",
    "environ_get",
    "args_sizes_get",
    "args_get",
    "clock_time_get",
    "clock_res_get",
    "random_get",
    "proc_exit",
    "sched_yield",
    "poll_oneoff",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_close",
    "fd_read",
    "fd_seek",
    "fd_filestat_get",
    "path_open",
    "path_filestat_get",
];

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
const EIO: i32 = 29;
const ENOENT: i32 = 44;
pub const ENOSYS: i32 = 52;
const ENOTSUP: i32 = 58;
const RANDOM_MAX: i32 = 64 * 1024;

fn env_strings(state: &VmState) -> Vec<Vec<u8>> {
    state.env.iter().map(|(k, v)| format!("{k}={v}\0").into_bytes()).collect()
}

pub fn register(linker: &mut Linker<VmState>) -> Result<()> {
    for m in MODULES {
        register_module(linker, m)?;
    }
    Ok(())
}

fn register_module(linker: &mut Linker<VmState>, m: &str) -> Result<()> {
    linker.func_wrap(m, "fd_write", |mut c: Ctx<'_>, fd: i32, iovs: i32, count: i32, nwritten: i32| -> Result<i32> {
        if fd != 1 && fd != 2 {
            return Ok(EBADF);
        }
        let mut total = 0u32;
        for i in 0..count {
            let iov = read(&c, iovs + i * 8, 8)?;
            let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
            let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
            let bytes = read(&c, ptr, len)?;
            total += bytes.len() as u32;
            c.data_mut().stdio[(fd - 1) as usize].extend_from_slice(&bytes);
        }
        c.data_mut().flush_stdio(false);
        write_u32(&mut c, nwritten, total)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(m, "environ_sizes_get", |mut c: Ctx<'_>, count_ptr: i32, size_ptr: i32| -> Result<i32> {
        let strings = env_strings(c.data());
        let size: usize = strings.iter().map(Vec::len).sum();
        write_u32(&mut c, count_ptr, strings.len() as u32)?;
        write_u32(&mut c, size_ptr, size as u32)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(m, "environ_get", |mut c: Ctx<'_>, environ: i32, buf: i32| -> Result<i32> {
        let mut at = buf;
        for (i, s) in env_strings(c.data()).iter().enumerate() {
            write_u32(&mut c, environ + 4 * i as i32, at as u32)?;
            write(&mut c, at, s)?;
            at += s.len() as i32;
        }
        Ok(SUCCESS)
    })?;
    linker.func_wrap(m, "args_sizes_get", |mut c: Ctx<'_>, count: i32, size: i32| -> Result<i32> {
        write_u32(&mut c, count, 0)?;
        write_u32(&mut c, size, 0)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(m, "args_get", |_c: Ctx<'_>, _argv: i32, _buf: i32| -> Result<i32> { Ok(SUCCESS) })?;
    linker.func_wrap(m, "clock_time_get", |mut c: Ctx<'_>, id: i32, _precision: i64, ret: i32| -> Result<i32> {
        let state = c.data();
        let value = match id {
            0 => state.now_ns,
            1 => state.now_ns.saturating_sub(state.start_ns),
            _ => return Ok(ENOTSUP),
        };
        write_u64(&mut c, ret, value)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(m, "clock_res_get", |mut c: Ctx<'_>, id: i32, ret: i32| -> Result<i32> {
        if id > 1 {
            return Ok(ENOTSUP);
        }
        write_u64(&mut c, ret, 1)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(m, "random_get", |mut c: Ctx<'_>, buf: i32, len: i32| -> Result<i32> {
        if !(0..=RANDOM_MAX).contains(&len) {
            return Ok(EINVAL);
        }
        if c.data().world.lock().map(|w| w.random_fails).unwrap_or(false) {
            return Ok(EIO);
        }
        let mut bytes = vec![0u8; len as usize];
        c.data_mut().rng.fill_bytes(&mut bytes);
        write(&mut c, buf, &bytes)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(m, "proc_exit", |mut c: Ctx<'_>, code: i32| -> Result<()> {
        c.data_mut().logs.push((LogLevel::Error, format!("proc_exit({code}) called")));
        bail!("proc_exit({code})")
    })?;
    linker.func_wrap(m, "sched_yield", |_c: Ctx<'_>| -> Result<i32> { Ok(SUCCESS) })?;
    linker.func_wrap(m, "poll_oneoff", |mut c: Ctx<'_>, _in: i32, _out: i32, _n: i32, nevents: i32| -> Result<i32> {
        write_u32(&mut c, nevents, 0)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(m, "fd_fdstat_get", |mut c: Ctx<'_>, fd: i32, ret: i32| -> Result<i32> {
        if !(0..=2).contains(&fd) {
            return Ok(EBADF);
        }
        let mut stat = [0u8; 24];
        stat[0] = 2; // character device
        stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        write(&mut c, ret, &stat)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(m, "fd_prestat_get", |_c: Ctx<'_>, _fd: i32, _ret: i32| -> Result<i32> { Ok(EBADF) })?;
    linker.func_wrap(m, "fd_prestat_dir_name", |_c: Ctx<'_>, _fd: i32, _p: i32, _l: i32| -> Result<i32> { Ok(EBADF) })?;
    linker.func_wrap(m, "fd_close", |_c: Ctx<'_>, _fd: i32| -> Result<i32> { Ok(EBADF) })?;
    linker.func_wrap(m, "fd_read", |_c: Ctx<'_>, _fd: i32, _i: i32, _n: i32, _r: i32| -> Result<i32> { Ok(EBADF) })?;
    linker.func_wrap(m, "fd_seek", |_c: Ctx<'_>, _fd: i32, _o: i64, _w: i32, _r: i32| -> Result<i32> { Ok(EBADF) })?;
    linker.func_wrap(m, "fd_filestat_get", |_c: Ctx<'_>, _fd: i32, _r: i32| -> Result<i32> { Ok(EBADF) })?;
    linker.func_wrap(
        m,
        "path_open",
        |_c: Ctx<'_>, _fd: i32, _df: i32, _p: i32, _pl: i32, _of: i32, _rb: i64, _ri: i64, _ff: i32, _r: i32| -> Result<i32> { Ok(ENOENT) },
    )?;
    linker.func_wrap(m, "path_filestat_get", |_c: Ctx<'_>, _fd: i32, _f: i32, _p: i32, _l: i32, _r: i32| -> Result<i32> { Ok(ENOENT) })?;
    Ok(())
}
