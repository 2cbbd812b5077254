//! proxy_log, log level, clock and tick period.

use super::memory::{check_allowed, read_string, write_u32, write_u64, Ctx};
use crate::state::{Effect, VmState};
use super::host_trap;
use crate::types::{status, LogLevel, Profile};
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
        let period = period as u32;
        if c.data().profile == Profile::Nginx {
            // ngx_wasm_module: only a root context has a timer, and a period can be set once (0 cancels).
            if !c.data().in_root() {
                return Err(host_trap(&mut c, "can only set tick_period in root context"));
            }
            if period != 0 && c.data().tick_period_ms != 0 {
                return Err(host_trap(&mut c, "tick_period already set"));
            }
            c.data_mut().tick_period_ms = period;
        }
        // Envoy: the timer belongs to the VM's root context, whichever context calls this.
        c.data_mut().effects.push(Effect::TickPeriod { period_ms: period });
        Ok(status::OK)
    })?;
    Ok(())
}
