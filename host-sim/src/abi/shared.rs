//! Shared data: one store per vm_id across every VM of the simulated proxy (nginx: the `shm_kv` zones).

use super::memory::{check_allowed, copy_out, read, read_string, write_u32, Ctx};
use super::host_trap;
use crate::state::VmState;
use crate::types::status;
use crate::world::SetResult;
use wasmtime::Result;
use wasmtime::Linker;

pub fn register(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Ctx<'_>, kptr: i32, klen: i32, ret_ptr: i32, ret_size: i32, ret_cas: i32| -> Result<i32> {
            check_allowed(&c, "proxy_get_shared_data")?;
            let key = read_string(&c, kptr, klen)?;
            let found = {
                let state = c.data();
                let mut world = state.world.lock().map_err(|_| wasmtime::format_err!("shared world poisoned"))?;
                world.get(&state.vm_id, &key)
            };
            let found = match found {
                Ok(found) => found,
                Err(message) => return Err(host_trap(&mut c, message)),
            };
            let Some((value, cas)) = found else { return Ok(status::NOT_FOUND) };
            copy_out(&mut c, &value, ret_ptr, ret_size)?;
            write_u32(&mut c, ret_cas, cas)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Ctx<'_>, kptr: i32, klen: i32, vptr: i32, vlen: i32, cas: i32| -> Result<i32> {
            check_allowed(&c, "proxy_set_shared_data")?;
            let key = read_string(&c, kptr, klen)?;
            // A null value pointer is a removal (the SDK's `None`); `Some(b"")` is a non-null empty value.
            let value = if vptr == 0 { None } else { Some(read(&c, vptr, vlen)?) };
            let result = {
                let state = c.data();
                let mut world = state.world.lock().map_err(|_| wasmtime::format_err!("shared world poisoned"))?;
                world.set(&state.vm_id, &key, value.as_deref(), cas as u32)
            };
            match result {
                SetResult::Ok => Ok(status::OK),
                SetResult::CasMismatch => Ok(status::CAS_MISMATCH),
                SetResult::Trap(message) => {
                    if message.contains("no memory") {
                        c.data_mut().logs.push((crate::types::LogLevel::Critical, format!("host-sim (nginx CRIT): {message}")));
                    }
                    Err(host_trap(&mut c, message))
                }
            }
        },
    )?;
    Ok(())
}
