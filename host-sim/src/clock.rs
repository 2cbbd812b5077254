//! The virtual clock (or the real one in serve mode) and the timed event queue. Events that are due at the same
//! instant on different VMs run in an order drawn from the seeded PRNG; each VM's own events stay FIFO, like a
//! thread's dispatcher.

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct Clock {
    virtual_ns: u64,
    real: bool,
}

impl Clock {
    pub fn virtual_at(start_ns: u64) -> Self {
        Clock { virtual_ns: start_ns, real: false }
    }

    pub fn real() -> Self {
        Clock { virtual_ns: 0, real: true }
    }

    pub fn is_real(&self) -> bool {
        self.real
    }

    pub fn now_ns(&self) -> u64 {
        if self.real {
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
        } else {
            self.virtual_ns
        }
    }

    /// Moves virtual time forward (never backwards; no-op on the real clock).
    pub fn set(&mut self, ns: u64) {
        if !self.real && ns > self.virtual_ns {
            self.virtual_ns = ns;
        }
    }
}

#[derive(Debug)]
pub struct Event<K> {
    pub due_ns: u64,
    pub seq: u64,
    pub slot: usize,
    pub kind: K,
}

#[derive(Debug)]
pub struct EventQueue<K> {
    events: Vec<Event<K>>,
    next_seq: u64,
}

impl<K> Default for EventQueue<K> {
    fn default() -> Self {
        EventQueue { events: Vec::new(), next_seq: 0 }
    }
}

impl<K> EventQueue<K> {
    pub fn push(&mut self, due_ns: u64, slot: usize, kind: K) {
        self.events.push(Event { due_ns, seq: self.next_seq, slot, kind });
        self.next_seq += 1;
    }

    pub fn next_due(&self) -> Option<u64> {
        self.events.iter().map(|e| e.due_ns).min()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }



    /// The next event due at or before `limit`: earliest instant first; among VMs with an event at that instant,
    /// one drawn from `rng`; within that VM, FIFO.
    pub fn pop_due(&mut self, limit: u64, rng: &mut ChaCha8Rng) -> Option<Event<K>> {
        let due = self.next_due().filter(|d| *d <= limit)?;
        let mut slots: Vec<usize> = self.events.iter().filter(|e| e.due_ns == due).map(|e| e.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        let slot = if slots.len() > 1 { slots[(rng.next_u32() as usize) % slots.len()] } else { slots[0] };
        let index = self
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.due_ns == due && e.slot == slot)
            .min_by_key(|(_, e)| e.seq)
            .map(|(i, _)| i)?;
        Some(self.events.remove(index))
    }
}
