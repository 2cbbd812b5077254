//! The event loop: timed events (ticks, queue notifications, callout results and timeouts, upstream replies).

use super::callouts::Delivery;
use super::{Sim, StreamId};
use crate::clock::Event;
use crate::cluster::CalloutId;
use crate::state::Callback;

#[derive(Debug)]
pub(crate) enum EventKind {
    Tick { tick_gen: u64 },
    QueueReady { root: u32, queue_id: u32 },
    CalloutDeliver { id: CalloutId, delivery: Delivery },
    CalloutTimeout { id: CalloutId },
    UpstreamReply { stream: StreamId },
}

impl Sim {
    /// Runs everything due at or before `target` in time order, then sets the clock to `target`.
    pub(crate) fn run_until(&mut self, target: u64) {
        loop {
            self.pump();
            self.poll_real(false);
            let limit = if self.clock.is_real() { self.now_ns() } else { target };
            let waiting_real = !self.clock.is_real() && self.real_in_flight > 0;
            if waiting_real && self.events.next_due().is_none_or(|due| due > self.now_ns()) {
                // A real server answers "now" in virtual time: wait for it before time moves on.
                self.poll_real(true);
                continue;
            }
            if let Some(event) = self.events.pop_due(limit, &mut self.rng) {
                self.clock.set(event.due_ns);
                self.process(event);
                continue;
            }
            break;
        }
        self.clock.set(target);
    }

    fn process(&mut self, event: Event<(u64, EventKind)>) {
        let slot = event.slot;
        let (generation, kind) = event.kind;
        let current = self.slots.get(slot).map(|s| (s.generation, s.vm.failed, s.vref));
        let Some((slot_generation, failed, vref)) = current else { return };
        let live = slot_generation == generation && !failed;
        let label = self.time_label();
        match kind {
            EventKind::UpstreamReply { stream } => {
                self.event_log.push(format!("{label} upstream-reply stream#{} on {vref}", stream.0));
                let reply = self.streams[stream.0].request.upstream_reply.clone();
                self.upstream_replied(stream, &reply);
            }
            EventKind::Tick { tick_gen } => {
                if !live || self.slots[slot].tick.generation != tick_gen {
                    return;
                }
                self.event_log.push(format!("{label} tick {vref}"));
                let root = self.slots[slot].vm.state().root_id;
                let now = self.now_ns();
                let result = self.slots[slot].vm.call(Callback::Tick, root, "proxy_on_tick", &[root as i32], now);
                self.finish_call(slot, result);
                let tick = &self.slots[slot].tick;
                if tick.generation == tick_gen && tick.period_ms > 0 && !self.slots[slot].vm.failed {
                    let due = now + tick.period_ms as u64 * 1_000_000;
                    self.events.push(due, slot, (generation, EventKind::Tick { tick_gen }));
                }
            }
            EventKind::QueueReady { root, queue_id } => {
                if !live {
                    return;
                }
                self.event_log.push(format!("{label} queue-ready {vref} queue {queue_id}"));
                let now = self.now_ns();
                let args = [root as i32, queue_id as i32];
                let result = self.slots[slot].vm.call(Callback::QueueReady, root, "proxy_on_queue_ready", &args, now);
                self.finish_call(slot, result);
            }
            EventKind::CalloutDeliver { id, delivery } => self.deliver_callout(id, delivery),
            EventKind::CalloutTimeout { id } => {
                let delivery = self.timeout_delivery();
                if !self.callout_states[id.0].delivered {
                    self.event_log.push(format!("{label} callout-timeout #{}", id.0));
                }
                self.deliver_callout(id, delivery);
            }
        }
    }
}
