//! Guest memory access. Host→guest data goes through `proxy_on_memory_allocate` with the exact size, and empty
//! data is written as (null, 0) without allocating, as cpp-host does (ngx_wasm_module allocates 0 bytes).

use crate::state::{Restrict, VmState};
use wasmtime::{bail, format_err as anyhow, Result};
use wasmtime::Caller;

pub type Ctx<'a> = Caller<'a, VmState>;

fn memory(caller: &Ctx<'_>) -> Result<wasmtime::Memory> {
    caller.data().memory.ok_or_else(|| anyhow!("module has no exported memory"))
}

/// Out-of-bounds pointers would be InvalidMemoryAccess (6), which the SDK cannot represent: trap instead.
pub fn read(caller: &Ctx<'_>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if len == 0 {
        return Ok(Vec::new());
    }
    let mem = memory(caller)?;
    let data = mem.data(caller);
    data.get(ptr..ptr.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| anyhow!("guest pointer {ptr:#x}+{len} is out of bounds (InvalidMemoryAccess)"))
}

pub fn read_string(caller: &Ctx<'_>, ptr: i32, len: i32) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned())
}

pub fn write(caller: &mut Ctx<'_>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let ptr = ptr as u32 as usize;
    let mem = memory(caller)?;
    let data = mem.data_mut(caller);
    let slot = data
        .get_mut(ptr..ptr.saturating_add(bytes.len()))
        .ok_or_else(|| anyhow!("guest pointer {ptr:#x}+{} is out of bounds (InvalidMemoryAccess)", bytes.len()))?;
    slot.copy_from_slice(bytes);
    Ok(())
}

pub fn write_u32(caller: &mut Ctx<'_>, ptr: i32, value: u32) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

pub fn write_u64(caller: &mut Ctx<'_>, ptr: i32, value: u64) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Copies `bytes` into a fresh guest allocation and writes (ptr, size) to the two return slots.
pub fn copy_out(caller: &mut Ctx<'_>, bytes: &[u8], ret_ptr: i32, ret_size: i32) -> Result<()> {
    // ngx_wasm_module allocates even for empty data, so the guest gets a non-null pointer (the SDK: Some(b"")).
    if bytes.is_empty() && caller.data().profile != crate::types::Profile::Nginx {
        write_u32(caller, ret_ptr, 0)?;
        return write_u32(caller, ret_size, 0);
    }
    let alloc = caller.data().alloc.clone().ok_or_else(|| anyhow!("module does not export proxy_on_memory_allocate"))?;
    let previous = caller.data().restrict;
    caller.data_mut().restrict = Restrict::Allocate;
    let result = alloc.call(&mut *caller, bytes.len() as i32);
    caller.data_mut().restrict = previous;
    let ptr = result?;
    if ptr == 0 && !bytes.is_empty() {
        bail!("proxy_on_memory_allocate({}) returned null", bytes.len());
    }
    write(caller, ptr, bytes)?;
    write_u32(caller, ret_ptr, ptr as u32)?;
    write_u32(caller, ret_size, bytes.len() as u32)
}

/// cpp-host allows only these hostcalls while `_initialize` runs or while the guest allocates.
pub fn check_allowed(caller: &Ctx<'_>, name: &str) -> Result<()> {
    match caller.data().restrict {
        Restrict::None => Ok(()),
        Restrict::Initialize if name == "proxy_log" => Ok(()),
        Restrict::Allocate if name == "proxy_log" => Ok(()),
        r => bail!("restricted_callback: {name} called during {}", if r == Restrict::Initialize { "_initialize" } else { "proxy_on_memory_allocate" }),
    }
}
