//! What happens after every VM call: logs are collected, a trap fails the VM, and the call's side effects
//! (deferred stream actions, callouts, queue notifications, tick periods) are applied — never re-entrantly.

use super::events::EventKind;
use super::Sim;
use crate::state::{Deferred, Effect};
use crate::types::{LogLevel, LogLine, Trap, VmRef};
use crate::vm::CallResult;

impl Sim {
    /// Returns the call's value, or None when it trapped (the VM is then failed).
    pub(crate) fn finish_call(&mut self, slot: usize, result: CallResult) -> Option<i32> {
        let vref = self.slots[slot].vref;
        for (level, message) in self.slots[slot].vm.take_logs() {
            self.push_log(vref, level, message);
        }
        let effects = self.slots[slot].vm.take_effects();
        let value = match result {
            CallResult::Returned(value) => Some(value),
            CallResult::Trapped { message, function } => {
                self.fail_vm(slot, message, function);
                None
            }
            CallResult::Crashed { message, hostcall, function } => {
                // The worker process died: none of the call's actions happen.
                self.crash_worker(slot, message, hostcall, function);
                return None;
            }
        };
        // Envoy runs the after-VM-call actions even when the call trapped (DeferAfterCallActions' destructor).
        for effect in effects {
            self.apply_effect(slot, effect);
        }
        value
    }

    pub(crate) fn push_log(&mut self, vm: VmRef, level: LogLevel, message: String) {
        if self.cfg.echo_logs {
            eprintln!("[{vm} {level:?}] {message}");
        }
        if self.cfg.retain_logs {
            self.logs.push(LogLine { vm, level, message, at_ns: self.now_ns() });
        }
    }

    pub(crate) fn time_label(&self) -> String {
        format!("t={}", self.now_ns())
    }

    pub(crate) fn fail_vm(&mut self, slot: usize, message: String, function: &str) {
        let now = self.now_ns();
        let vref = self.slots[slot].vref;
        let s = &mut self.slots[slot];
        s.vm.failed = true;
        s.vm.failed_at_ns = now;
        s.tick.generation += 1;
        s.tick.period_ms = 0;
        self.push_log(vref, LogLevel::Error, format!("host-sim: Wasm VM failed: Function: {function} failed: {message}"));
        self.event_log.push(format!("{} trap {vref} in {function}", self.time_label()));
        self.traps.push(Trap { vm: vref, message, function: function.to_string(), at_ns: now });
    }

    fn apply_effect(&mut self, slot: usize, effect: Effect) {
        let now = self.now_ns();
        match effect {
            Effect::Deferred(action) => self.apply_deferred(slot, action),
            Effect::Callout { token, ctx, cluster, headers, body, trailers, timeout_ms } => {
                self.dispatch_callout(slot, token, ctx, cluster, headers, body, trailers, timeout_ms)
            }
            Effect::QueueReady { target, root, generation, queue_id } => {
                if let Some(target_slot) = self.slots.iter().position(|s| s.vref == target && s.generation == generation) {
                    self.events.push(now, target_slot, (generation, EventKind::QueueReady { root, queue_id }));
                }
            }
            Effect::TickPeriod { period_ms } => {
                let generation = self.slots[slot].generation;
                let tick = &mut self.slots[slot].tick;
                tick.generation += 1;
                tick.period_ms = period_ms;
                if period_ms > 0 {
                    let tick_gen = tick.generation;
                    self.events.push(now + period_ms as u64 * 1_000_000, slot, (generation, EventKind::Tick { tick_gen }));
                }
            }
        }
    }

    fn apply_deferred(&mut self, slot: usize, action: Deferred) {
        let ctx = match &action {
            Deferred::Continue(ctx, _) | Deferred::Close(ctx, _) => *ctx,
            Deferred::LocalReply { ctx, .. } | Deferred::OverrideResponse { ctx, .. } => *ctx,
        };
        let Some(&sid) = self.slots[slot].streams.get(&ctx) else { return };
        self.streams[sid.0].on_deferred(action);
        self.runnable.push_back(sid);
    }

    /// Drives every stream that a deferred action or an event made runnable.
    pub(crate) fn pump(&mut self) {
        while let Some(sid) = self.runnable.pop_front() {
            self.drive(sid);
        }
    }
}
