//! One wasmtime Engine per process and a process-wide cache of compiled modules keyed by the wasm bytes' hash
//! (tests build hundreds of sims: each module compiles once per process, and once per machine via the on-disk
//! cache in `target/host-sim-cache/`).

use crate::abi::{self, wasi};
use crate::state::VmState;
use anyhow::{anyhow, bail, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, Val, ValType};

/// A module ready to instantiate.
pub struct Loaded {
    pub pre: InstancePre<VmState>,
    pub sha256: String,
}

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // Engine::new only fails on inconsistent settings, which this fixed config cannot have.
        Engine::new(&config).unwrap_or_else(|e| panic!("wasmtime engine: {e}"))
    })
}

fn cache() -> &'static Mutex<HashMap<String, Arc<Loaded>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Loaded>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn disk_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HOST_SIM_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"));
    target.join("host-sim-cache")
}

/// Compiles (or fetches from cache) the module in `bytes`, checking its imports and exports.
pub fn load(bytes: &[u8]) -> Result<Arc<Loaded>> {
    let sha256 = hex(&Sha256::digest(bytes));
    if let Some(hit) = cache().lock().map_err(|_| anyhow!("module cache poisoned"))?.get(&sha256) {
        return Ok(hit.clone());
    }
    let module = compile(bytes, &sha256)?;
    // Imports first: an unknown import is the more specific error.
    let linker = linker_for(&module)?;
    check_exports(&module)?;
    let pre = linker.instantiate_pre(&module)?;
    let loaded = Arc::new(Loaded { pre, sha256: sha256.clone() });
    cache().lock().map_err(|_| anyhow!("module cache poisoned"))?.insert(sha256, loaded.clone());
    Ok(loaded)
}

fn compile(bytes: &[u8], sha256: &str) -> Result<Module> {
    let dir = disk_cache_dir();
    let path = dir.join(format!("{sha256}-wasmtime{}.cwasm", wasmtime_version()));
    if path.exists() {
        // SAFETY: the file is one this process family wrote with `Module::serialize` for the same engine
        // configuration; wasmtime checks the version and settings header and errors out otherwise.
        if let Ok(module) = unsafe { Module::deserialize_file(engine(), &path) } {
            return Ok(module);
        }
    }
    let module = Module::new(engine(), bytes).map_err(|e| anyhow!("invalid WebAssembly module: {e}"))?;
    if let Ok(serialized) = module.serialize() {
        let tmp = dir.join(format!("{sha256}.{}.tmp", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&tmp, serialized).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    Ok(module)
}

fn wasmtime_version() -> &'static str {
    "48"
}

fn check_exports(module: &Module) -> Result<()> {
    let has = |name: &str| module.get_export(name).is_some();
    if !has("proxy_abi_version_0_2_1") && !has("proxy_abi_version_0_2_0") {
        bail!("Missing or unknown Proxy-Wasm ABI version (no proxy_abi_version_0_2_1 export)");
    }
    if !has("proxy_on_memory_allocate") {
        bail!("module exports neither proxy_on_memory_allocate nor malloc");
    }
    if !has("memory") {
        bail!("module exports no memory");
    }
    Ok(())
}

/// The full host plus a harmless ENOSYS answer for any other WASI function the module imports. Any other
/// import fails the load, naming it.
fn linker_for(module: &Module) -> Result<Linker<VmState>> {
    let mut linker = Linker::new(engine());
    abi::register_all(&mut linker)?;
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        let known_env = m == "env" && abi::ENV_IMPORTS.contains(&name);
        let is_wasi = wasi::MODULES.contains(&m);
        if !known_env && !is_wasi {
            bail!("module imports {m}.{name}, which is not part of proxy-wasm ABI 0.2.1 / SDK 0.2.5 or WASI");
        }
        if is_wasi && !wasi::DEFINED.contains(&name) {
            let ty = import.ty().func().cloned().ok_or_else(|| anyhow!("{m}.{name} is not a function import"))?;
            let results: Vec<ValType> = ty.results().collect();
            if results.len() != 1 || !matches!(results[0], ValType::I32) {
                bail!("module imports {m}.{name} with an unsupported signature");
            }
            linker.func_new(m, name, ty, |_, _, out| {
                out[0] = Val::I32(wasi::ENOSYS);
                Ok(())
            })?;
        }
    }
    Ok(linker)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
