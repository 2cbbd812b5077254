//! One simulated VM: a wasmtime Store + instance, and the calls into its `proxy_on_*` exports.

use crate::engine::{engine, Loaded};
use crate::state::{Callback, Effect, Restrict, VmState};
use crate::types::LogLevel;
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use wasmtime::{Func, Store, Val};

pub struct Vm {
    pub store: Store<VmState>,
    funcs: HashMap<&'static str, Option<Func>>,
    instance: wasmtime::Instance,
    /// Set once the VM trapped: no further `proxy_on_*` calls are made (Envoy's `isFailed()`).
    pub failed: bool,
    pub failed_at_ns: u64,
}

/// How a VM call ended.
#[derive(Debug)]
pub enum CallResult {
    Returned(i32),
    Trapped { message: String, function: &'static str },
    /// nginx: a hostcall crashed the worker process (`hostcall`: which one, `message`: why).
    Crashed { message: String, hostcall: String, function: &'static str },
}

impl Vm {
    pub fn instantiate(loaded: &Loaded, state: VmState) -> Result<Vm> {
        let mut store = Store::new(engine(), state);
        let instance = loaded.pre.instantiate(&mut store)?;
        let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| anyhow!("module exports no memory"))?;
        let alloc = instance.get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")?;
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(alloc);
        Ok(Vm { store, funcs: HashMap::new(), instance, failed: false, failed_at_ns: 0 })
    }

    pub fn state(&self) -> &VmState {
        self.store.data()
    }

    pub fn state_mut(&mut self) -> &mut VmState {
        self.store.data_mut()
    }

    fn func(&mut self, name: &'static str) -> Option<Func> {
        if let Some(f) = self.funcs.get(name) {
            return *f;
        }
        let f = self.instance.get_func(&mut self.store, name);
        self.funcs.insert(name, f);
        f
    }

    /// `_initialize` with cpp-host's restricted hostcalls.
    pub fn initialize(&mut self, now_ns: u64) -> CallResult {
        self.store.data_mut().restrict = Restrict::Initialize;
        let result = self.raw_call(None, 0, "_initialize", &[], now_ns);
        self.store.data_mut().restrict = Restrict::None;
        result
    }

    /// Calls `func(args)` as callback `callback` on context `ctx`. A failed VM is never called (returns 0).
    pub fn call(&mut self, callback: Callback, ctx: u32, func: &'static str, args: &[i32], now_ns: u64) -> CallResult {
        if self.failed {
            return CallResult::Returned(0);
        }
        self.raw_call(Some(callback), ctx, func, args, now_ns)
    }

    fn raw_call(&mut self, callback: Option<Callback>, ctx: u32, name: &'static str, args: &[i32], now_ns: u64) -> CallResult {
        let Some(func) = self.func(name) else {
            return CallResult::Returned(0);
        };
        {
            let state = self.store.data_mut();
            state.now_ns = now_ns;
            state.callback = callback;
            state.current_ctx = ctx;
            state.effective_ctx = ctx;
            state.host_failure = None;
            state.host_crash = None;
        }
        let logs_before = self.store.data().logs.len();
        let params: Vec<Val> = args.iter().map(|a| Val::I32(*a)).collect();
        let mut results = vec![Val::I32(0); func.ty(&self.store).results().len()];
        let outcome = func.call(&mut self.store, &params, &mut results);
        let state = self.store.data_mut();
        state.flush_stdio(true);
        state.callback = None;
        state.current_ctx = 0;
        state.effective_ctx = 0;
        state.call_response = None;
        state.call_status = (0, String::new());
        if let Some((hostcall, message)) = state.host_crash.take() {
            return CallResult::Crashed { message, hostcall, function: name };
        }
        match outcome {
            Ok(()) => CallResult::Returned(results.first().and_then(Val::i32).unwrap_or(0)),
            Err(error) => {
                let panic = state.logs[logs_before..]
                    .iter()
                    .rev()
                    .find(|(level, m)| *level == LogLevel::Critical || m.contains("panicked at"))
                    .map(|(_, m)| m.clone());
                let message = panic.or_else(|| state.host_failure.clone()).unwrap_or_else(|| format!("{error:#}"));
                CallResult::Trapped { message, function: name }
            }
        }
    }

    pub fn take_logs(&mut self) -> Vec<(LogLevel, String)> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.store.data_mut().effects)
    }
}
