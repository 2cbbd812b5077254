//! Shared queues: tokens from 1, the last registrant is notified asynchronously, one notification per enqueue
//! (never on nginx, which also lacks resolve).

use super::memory::{check_allowed, copy_out, read, read_string, write_u32, Ctx};
use super::{host_trap, nginx_unsupported};
use crate::state::{Effect, VmState};
use crate::types::{status, Profile};
use wasmtime::{format_err as anyhow, Result};
use wasmtime::Linker;

pub fn register(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap("env", "proxy_register_shared_queue", |mut c: Ctx<'_>, nptr: i32, nlen: i32, ret: i32| -> Result<i32> {
        check_allowed(&c, "proxy_register_shared_queue")?;
        let name = read_string(&c, nptr, nlen)?;
        let registered = {
            let s = c.data();
            let target = (s.vm, s.root_id, s.generation);
            let mut world = s.world.lock().map_err(|_| anyhow!("shared world poisoned"))?;
            world.register_queue(&s.vm_id, &name, target)
        };
        // ngx_wasm_module: a queue is an `shm_queue` zone; any other name traps the VM call.
        let id = match registered {
            Ok(id) => id,
            Err(message) => return Err(host_trap(&mut c, message)),
        };
        write_u32(&mut c, ret, id)?;
        Ok(status::OK)
    })?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Ctx<'_>, vptr: i32, vlen: i32, nptr: i32, nlen: i32, ret: i32| -> Result<i32> {
            check_allowed(&c, "proxy_resolve_shared_queue")?;
            nginx_unsupported(&mut c, "proxy_resolve_shared_queue")?;
            let vm_id = read_string(&c, vptr, vlen)?;
            let name = read_string(&c, nptr, nlen)?;
            let found = {
                let s = c.data();
                let vm_id = if vm_id.is_empty() { s.vm_id.clone() } else { vm_id };
                s.world.lock().map_err(|_| anyhow!("shared world poisoned"))?.resolve_queue(&vm_id, &name)
            };
            match found {
                Some(id) => {
                    write_u32(&mut c, ret, id)?;
                    Ok(status::OK)
                }
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap("env", "proxy_dequeue_shared_queue", |mut c: Ctx<'_>, id: i32, ret_ptr: i32, ret_size: i32| -> Result<i32> {
        check_allowed(&c, "proxy_dequeue_shared_queue")?;
        let item = {
            let mut world = c.data().world.lock().map_err(|_| anyhow!("shared world poisoned"))?;
            match world.queues.get_mut(&(id as u32)) {
                None => return Ok(status::NOT_FOUND),
                Some(q) => q.items.pop_front(),
            }
        };
        match item {
            None => Ok(status::EMPTY),
            Some(item) => {
                copy_out(&mut c, &item, ret_ptr, ret_size)?;
                Ok(status::OK)
            }
        }
    })?;
    linker.func_wrap("env", "proxy_enqueue_shared_queue", |mut c: Ctx<'_>, id: i32, vptr: i32, vlen: i32| -> Result<i32> {
        check_allowed(&c, "proxy_enqueue_shared_queue")?;
        let value = read(&c, vptr, vlen)?;
        let target = {
            let mut world = c.data().world.lock().map_err(|_| anyhow!("shared world poisoned"))?;
            match world.queues.get_mut(&(id as u32)) {
                None => return Ok(status::NOT_FOUND),
                Some(q) => {
                    q.items.push_back(value);
                    q.target
                }
            }
        };
        if let (Some((vm, root, generation)), Profile::Envoy) = (target, c.data().profile) {
            c.data_mut().effects.push(Effect::QueueReady { target: vm, root, generation, queue_id: id as u32 });
        }
        Ok(status::OK)
    })?;
    Ok(())
}
