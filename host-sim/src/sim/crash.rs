//! nginx worker crashes. Some hostcalls do not fail in ngx_wasm_module, they take the worker process down
//! (a NULL or freed request context: SIGSEGV; an assertion: SIGABRT). host-sim records each as a `HostCrash`,
//! logs it loudly, resets every stream of that worker (their clients see the connection close) and starts the
//! worker's VM afresh, as nginx's master respawns the worker. Shared data survives.
//!
//! A crash is a test failure unless the test takes it with `Sim::take_host_crashes`: a `Sim` dropped with
//! unacknowledged crashes panics.

use super::stream::Step;
use super::Sim;
use crate::http::Outcome;
use crate::types::{HostCrash, LogLevel};

impl Sim {
    pub(crate) fn crash_worker(&mut self, slot: usize, message: String, hostcall: String, function: &str) {
        let vref = self.slots[slot].vref;
        let now = self.now_ns();
        let crash = HostCrash { vm: vref, message: message.clone(), hostcall: hostcall.clone(), function: function.to_string(), at_ns: now };
        let line = format!("host-sim: HOST CRASH: the nginx worker of {vref} dies in {hostcall} (during {function}): {message}");
        eprintln!("{line}");
        self.push_log(vref, LogLevel::Critical, line);
        self.event_log.push(format!("{} host-crash {vref} in {hostcall}", self.time_label()));
        self.host_crashes.push(crash);
        // Every connection of that worker is closed.
        for (i, st) in self.streams.iter_mut().enumerate() {
            if st.slot == slot && st.step != Step::Done {
                st.outcome = Outcome::Reset;
                st.step = Step::Done;
                st.pending = None;
                st.waiting = None;
                self.finished.push(super::StreamId(i));
            }
        }
        for state in self.callout_states.iter_mut().filter(|s| s.slot == slot) {
            state.delivered = true;
        }
        let generation = self.slots[slot].generation + 1;
        if self.starting {
            // A worker that crashes while starting would crash again: leave it down.
            let vm = &mut self.slots[slot].vm;
            vm.failed = true;
            vm.failed_at_ns = now;
            self.slots[slot].generation = generation;
            return;
        }
        match self.new_slot(vref, generation) {
            Ok(fresh) => {
                self.slots[slot] = fresh;
                self.event_log.push(format!("{} respawn {vref} generation {generation}", self.time_label()));
                if let Err(e) = self.start_sequence(slot) {
                    let vm = &mut self.slots[slot].vm;
                    vm.failed = true;
                    vm.failed_at_ns = now;
                    self.push_log(vref, LogLevel::Error, format!("host-sim: the respawned worker {vref} did not start: {e}"));
                }
            }
            Err(e) => {
                self.slots[slot].vm.failed = true;
                self.push_log(vref, LogLevel::Error, format!("host-sim: cannot respawn {vref}: {e}"));
            }
        }
    }

    /// The worker crashes (nginx profile) no test has taken yet.
    pub fn host_crashes(&self) -> Vec<HostCrash> {
        self.host_crashes.clone()
    }

    /// Takes the crashes so far: a test that expects crashes takes them, so that dropping the `Sim` does not
    /// fail the test.
    pub fn take_host_crashes(&mut self) -> Vec<HostCrash> {
        std::mem::take(&mut self.host_crashes)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let unseen = &self.host_crashes;
        if self.cfg.panic_on_crash && !unseen.is_empty() && !std::thread::panicking() {
            let list: Vec<String> = unseen.iter().map(|c| format!("{} in {} ({}): {}", c.vm, c.hostcall, c.function, c.message)).collect();
            panic!(
                "host-sim: {} nginx worker crash(es) that no test took (Sim::take_host_crashes):\n  {}",
                unseen.len(),
                list.join("\n  ")
            );
        }
    }
}
