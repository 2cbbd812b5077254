//! HTTP callouts: dispatch to scripted/manual/real clusters, delivery as Envoy does (response, 504 at the timeout,
//! reset = 0 headers + get_status (11, "reset"), connect failure = 503), and manual answers.

use super::events::EventKind;
use super::Sim;
use crate::cluster::{CalloutId, CalloutReply, CalloutRequest, Cluster, ReplyKind};
use crate::headers::HeaderMap;
use crate::realhttp::{self, RealResult};
use crate::state::{CallResponse, Callback};
use crate::types::Profile;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct CalloutState {
    pub slot: usize,
    pub generation: u64,
    pub token: u32,
    pub manual: bool,
    pub answered: bool,
    pub delivered: bool,
    pub deadline_ns: Option<u64>,
}

#[derive(Clone, Debug)]
pub(crate) enum Delivery {
    Response { headers: HeaderMap, body: Vec<u8>, trailers: HeaderMap },
    /// The call failed before a response: `on_http_call_response(.., 0, 0, 0)`.
    Failure,
}

fn response(status: u16, headers: &[(String, String)], body: Vec<u8>, trailers: &[(String, String)]) -> Delivery {
    let mut map = HeaderMap::new();
    map.add(":status", status.to_string().as_bytes());
    for (k, v) in headers {
        map.add(k, v.as_bytes());
    }
    if !body.is_empty() && map.get("content-length").is_none() {
        map.add("content-length", body.len().to_string().as_bytes());
    }
    Delivery::Response { headers: map, body, trailers: HeaderMap::from_pairs(trailers.iter().map(|(k, v)| (k, v))) }
}

fn router_reply(status: u16, body: &str) -> Delivery {
    let headers = vec![("content-type".to_string(), "text/plain".to_string())];
    response(status, &headers, body.as_bytes().to_vec(), &[])
}

impl Sim {
    /// Envoy's router answers a timed-out callout with a 504 local reply, delivered as a success.
    pub(crate) fn timeout_delivery(&self) -> Delivery {
        match self.cfg.profile {
            Profile::Envoy => router_reply(504, "upstream request timeout"),
            Profile::Nginx => Delivery::Failure,
        }
    }

    fn connect_failure_delivery(&self) -> Delivery {
        match self.cfg.profile {
            Profile::Envoy => router_reply(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
            Profile::Nginx => Delivery::Failure,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dispatch_callout(
        &mut self,
        slot: usize,
        token: u32,
        cluster: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        trailers: Vec<(String, String)>,
        timeout_ms: u32,
    ) {
        let now = self.now_ns();
        let id = CalloutId(self.callouts.len());
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64));
        let deadline_ns = timeout.map(|t| now + t.as_nanos() as u64);
        let vref = self.slots[slot].vref;
        let generation = self.slots[slot].generation;
        let request = CalloutRequest { id, cluster: cluster.clone(), headers, body, trailers, timeout, vm: vref, token, at_ns: now };
        self.event_log.push(format!("{} callout #{} {vref} -> {cluster} {}", self.time_label(), id.0, request.path()));
        self.callouts.push(request);
        let target = self.cfg.clusters.get(&cluster).cloned();
        self.callout_states.push(CalloutState {
            slot,
            generation,
            token,
            manual: matches!(target, Some(Cluster::Manual)),
            answered: false,
            delivered: false,
            deadline_ns,
        });
        if let Some(deadline) = deadline_ns {
            self.events.push(deadline, slot, (generation, EventKind::CalloutTimeout { id }));
        }
        match target {
            Some(Cluster::Scripted(handler)) => {
                let reply = handler(&self.callouts[id.0]);
                self.schedule_reply(id, reply, now);
            }
            Some(Cluster::Manual) => {}
            Some(Cluster::Real(address)) => self.spawn_real(id, address, timeout),
            // Only reachable on nginx, where an unresolvable target yields a response with 0 headers.
            None => self.events.push(now, slot, (generation, EventKind::CalloutDeliver { id, delivery: Delivery::Failure })),
        }
    }

    fn schedule_reply(&mut self, id: CalloutId, reply: CalloutReply, from_ns: u64) {
        let delivery = match reply.kind {
            ReplyKind::NoAnswer => return,
            ReplyKind::Reset => Delivery::Failure,
            ReplyKind::ConnectFailure => self.connect_failure_delivery(),
            ReplyKind::Response { status, headers, body, trailers } => response(status, &headers, body, &trailers),
        };
        let state = &self.callout_states[id.0];
        let due = from_ns + reply.delay.as_nanos() as u64;
        if state.deadline_ns.is_some_and(|deadline| due >= deadline) {
            return;
        }
        let (slot, generation) = (state.slot, state.generation);
        self.events.push(due, slot, (generation, EventKind::CalloutDeliver { id, delivery }));
    }

    /// Answers a callout to a manual cluster; delivered after `reply`'s delay (unless the timeout comes first).
    pub fn answer(&mut self, id: CalloutId, reply: CalloutReply) {
        let state = self.callout_states.get_mut(id.0).unwrap_or_else(|| panic!("no callout {id:?}"));
        assert!(state.manual, "callout {id:?} went to a cluster that is not manual: {:?}", self.callouts[id.0]);
        assert!(!state.answered, "callout {id:?} was already answered");
        assert!(!state.delivered, "callout {id:?} already ended (timed out?) before it was answered");
        state.answered = true;
        let now = self.now_ns();
        self.schedule_reply(id, reply, now);
        self.run_until_idle();
    }

    pub(crate) fn deliver_callout(&mut self, id: CalloutId, delivery: Delivery) {
        let state = &mut self.callout_states[id.0];
        if state.delivered {
            return;
        }
        state.delivered = true;
        let (slot, generation, token) = (state.slot, state.generation, state.token);
        let Some(s) = self.slots.get(slot) else { return };
        if s.generation != generation || s.vm.failed {
            return;
        }
        let vref = s.vref;
        let root = s.vm.state().root_id;
        let (counts, response, status) = match delivery {
            Delivery::Response { headers, body, trailers } => {
                let counts = [headers.len() as i32, body.len() as i32, trailers.len() as i32];
                (counts, Some(CallResponse { headers, body, trailers }), (0, String::new()))
            }
            Delivery::Failure => ([0, 0, 0], None, (11, "reset".to_string())),
        };
        self.event_log.push(format!("{} callout-response #{} {vref} headers={}", self.time_label(), id.0, counts[0]));
        let now = self.now_ns();
        let vm = &mut self.slots[slot].vm;
        vm.state_mut().call_response = response;
        vm.state_mut().call_status = status;
        let args = [root as i32, token as i32, counts[0], counts[1], counts[2]];
        let result = vm.call(Callback::HttpCallResponse, root, "proxy_on_http_call_response", &args, now);
        self.finish_call(slot, result);
    }

    fn spawn_real(&mut self, id: CalloutId, address: String, timeout: Option<Duration>) {
        let request = self.callouts[id.0].clone();
        let tx = self.real_tx.clone();
        let waker = self.waker.clone();
        self.real_in_flight += 1;
        std::thread::spawn(move || {
            let result = realhttp::send(&address, &request.headers, &request.body, timeout);
            let _ = tx.send((id, result));
            if let Some(wake) = waker {
                wake();
            }
        });
    }

    /// Collects finished real callouts (blocking for one when `block`), delivered at the current time.
    pub(crate) fn poll_real(&mut self, block: bool) {
        if self.real_in_flight == 0 {
            return;
        }
        let first = if block { self.real_rx.recv().ok() } else { self.real_rx.try_recv().ok() };
        let mut next = first;
        while let Some((id, result)) = next {
            self.real_in_flight -= 1;
            let delivery = match result {
                RealResult::Response { status, headers, body } => response(status, &headers, body, &[]),
                RealResult::ConnectFailure(_) => self.connect_failure_delivery(),
                RealResult::Reset(_) => Delivery::Failure,
                RealResult::Timeout => self.timeout_delivery(),
            };
            let state = &self.callout_states[id.0];
            let (slot, generation) = (state.slot, state.generation);
            let now = self.now_ns();
            self.events.push(now, slot, (generation, EventKind::CalloutDeliver { id, delivery }));
            next = if self.real_in_flight > 0 { self.real_rx.try_recv().ok() } else { None };
        }
    }
}
