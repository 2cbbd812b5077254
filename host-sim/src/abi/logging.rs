//! proxy_log, log level, clock and tick period.

use super::memory::{check_allowed, read_string, write_u32, write_u64, Ctx};
use crate::state::{Effect, VmState};
use crate::types::{status, LogLevel};
use wasmtime::Result;
use wasmtime::Linker;

pub fn register(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap("env", "proxy_log", |mut c: Ctx<'_>, level: i32, ptr: i32, len: i32| -> Result<i32> {
        check_allowed(&c, "proxy_log")?;
        let Some(level) = LogLevel::from_abi(level as u32) else { return Ok(status::BAD_ARGUMENT) };
        let message = read_string(&c, ptr, len)?;
        c.data_mut().logs.push((level, message));
        Ok(status::OK)
    })?;
    linker.func_wrap("env", "proxy_get_log_level", |mut c: Ctx<'_>, ret: i32| -> Result<i32> {
        check_allowed(&c, "proxy_get_log_level")?;
        let level = c.data().host_log_level.as_abi();
        write_u32(&mut c, ret, level)?;
        Ok(status::OK)
    })?;
    linker.func_wrap("env", "proxy_get_current_time_nanoseconds", |mut c: Ctx<'_>, ret: i32| -> Result<i32> {
        check_allowed(&c, "proxy_get_current_time_nanoseconds")?;
        let now = c.data().now_ns;
        write_u64(&mut c, ret, now)?;
        Ok(status::OK)
    })?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", |mut c: Ctx<'_>, period: i32| -> Result<i32> {
        check_allowed(&c, "proxy_set_tick_period_milliseconds")?;
        // The timer belongs to the VM's root context, whichever context calls this.
        c.data_mut().effects.push(Effect::TickPeriod { period_ms: period as u32 });
        Ok(status::OK)
    })?;
    Ok(())
}
