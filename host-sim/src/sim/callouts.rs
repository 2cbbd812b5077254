//! HTTP callouts: dispatch to scripted/manual/real clusters, delivery as Envoy does (response, 504 at the timeout,
//! reset = 0 headers + get_status (11, "reset"), connect failure = 503), and manual answers.
//!
//! On nginx a callout belongs to the context that dispatched it: a request's calls are answered to that request
//! (and cancelled when it ends), a root's to the root. A failed call is answered with 0 headers and a map that
//! holds only `:dispatch_status`; a response adds `:dispatch_status: ok`. When a request's last pending call is
//! answered and its callback neither answered it nor dispatched again, nginx resumes it.

use super::events::EventKind;
use super::stream::Step;
use super::{Sim, StreamId};
use crate::cluster::{CalloutId, CalloutReply, CalloutRequest, Cluster, ReplyKind};
use crate::headers::HeaderMap;
use crate::realhttp::{self, RealResult};
use crate::state::{CallResponse, Callback};
use crate::types::{CallFailure, Profile};
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct CalloutState {
    pub slot: usize,
    pub generation: u64,
    pub token: u32,
    /// nginx: the request that dispatched it (`None`: the root).
    pub stream: Option<StreamId>,
    /// The call carried a request body.
    pub has_body: bool,
    pub manual: bool,
    pub answered: bool,
    pub delivered: bool,
    pub deadline_ns: Option<u64>,
}

#[derive(Clone, Debug)]
pub(crate) enum Delivery {
    Response { headers: HeaderMap, body: Vec<u8>, trailers: HeaderMap },
    /// The call failed before a response: `on_http_call_response(.., 0, 0, 0)`.
    Failure(CallFailure),
}

fn response(status: u16, headers: &[(String, String)], body: Vec<u8>, trailers: &[(String, String)], profile: Profile) -> Delivery {
    let mut map = HeaderMap::new();
    map.add(":status", status.to_string().as_bytes());
    for (k, v) in headers {
        map.add(k, v.as_bytes());
    }
    // An HTTP/1.1 server frames its answer; nginx's reader hands the filter what the server sent.
    if (!body.is_empty() || profile == Profile::Nginx) && map.get("content-length").is_none() {
        map.add("content-length", body.len().to_string().as_bytes());
    }
    Delivery::Response { headers: map, body, trailers: HeaderMap::from_pairs(trailers.iter().map(|(k, v)| (k, v))) }
}

fn router_reply(status: u16, body: &str) -> Delivery {
    let headers = vec![("content-type".to_string(), "text/plain".to_string())];
    response(status, &headers, body.as_bytes().to_vec(), &[], Profile::Envoy)
}

/// nginx: how a target nothing answers for fails: an IP address refuses, a name does not resolve.
fn unreachable(target: &str) -> CallFailure {
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    if target.starts_with("unix:") || host.parse::<std::net::IpAddr>().is_ok() {
        CallFailure::BrokenConnection
    } else {
        CallFailure::Resolver
    }
}

impl Sim {
    /// Envoy's router answers a timed-out callout with a 504 local reply, delivered as a success.
    pub(crate) fn timeout_delivery(&self) -> Delivery {
        match self.cfg.profile {
            Profile::Envoy => router_reply(504, "upstream request timeout"),
            Profile::Nginx => Delivery::Failure(CallFailure::Timeout),
        }
    }

    fn connect_failure_delivery(&self) -> Delivery {
        match self.cfg.profile {
            Profile::Envoy => router_reply(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
            Profile::Nginx => Delivery::Failure(CallFailure::BrokenConnection),
        }
    }

    /// A failure as the profile reports it; `None` for a timeout on Envoy (the deadline answers it).
    fn failure_delivery(&self, failure: CallFailure) -> Option<Delivery> {
        match (self.cfg.profile, failure) {
            (Profile::Nginx, f) => Some(Delivery::Failure(f)),
            (Profile::Envoy, CallFailure::Timeout) => None,
            (Profile::Envoy, CallFailure::BrokenConnection | CallFailure::Reader) => Some(Delivery::Failure(CallFailure::BrokenConnection)),
            (Profile::Envoy, CallFailure::TlsHandshake | CallFailure::Resolver) => Some(self.connect_failure_delivery()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dispatch_callout(
        &mut self,
        slot: usize,
        token: u32,
        ctx: u32,
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
        let stream = match self.cfg.profile {
            Profile::Nginx => self.slots[slot].streams.get(&ctx).copied(),
            Profile::Envoy => None,
        };
        if let Some(sid) = stream {
            self.streams[sid.0].pending_calls += 1;
        }
        let has_body = !body.is_empty();
        let request = CalloutRequest { id, cluster: cluster.clone(), headers, body, trailers, timeout, vm: vref, token, at_ns: now };
        self.event_log.push(format!("{} callout #{} {vref} -> {cluster} {}", self.time_label(), id.0, request.path()));
        self.callouts.push(request);
        let mut target = self.cfg.clusters.get(&cluster).cloned();
        if target.is_none() && self.cfg.profile == Profile::Nginx && self.cfg.real_targets {
            target = Some(Cluster::Real(cluster.clone()));
        }
        self.callout_states.push(CalloutState {
            slot,
            generation,
            token,
            stream,
            has_body,
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
            // Only reachable on nginx: nothing answers for this target.
            None => {
                let delivery = Delivery::Failure(unreachable(&cluster));
                self.events.push(now, slot, (generation, EventKind::CalloutDeliver { id, delivery }));
            }
        }
    }

    fn schedule_reply(&mut self, id: CalloutId, reply: CalloutReply, from_ns: u64) {
        let profile = self.cfg.profile;
        let delivery = match reply.kind {
            ReplyKind::NoAnswer => return,
            ReplyKind::Reset => Delivery::Failure(CallFailure::BrokenConnection),
            ReplyKind::ConnectFailure => self.connect_failure_delivery(),
            ReplyKind::Fail(failure) => match self.failure_delivery(failure) {
                Some(delivery) => delivery,
                None => return,
            },
            ReplyKind::Response { status, headers, body, trailers } => response(status, &headers, body, &trailers, profile),
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

    /// What the filter's call-response callback sees: (header count, body size, trailer count) and the maps.
    fn call_response(&self, delivery: Delivery) -> ([i32; 3], Option<CallResponse>, (u32, String)) {
        let nginx = self.cfg.profile == Profile::Nginx;
        match delivery {
            Delivery::Response { headers, body, trailers } => {
                // nginx counts the response's headers, not its `:status`, and has no trailers.
                let counts = if nginx {
                    [headers.iter().filter(|(k, _)| !k.starts_with(':')).count() as i32, body.len() as i32, 0]
                } else {
                    [headers.len() as i32, body.len() as i32, trailers.len() as i32]
                };
                let dispatch_status = nginx.then(|| "ok".to_string());
                (counts, Some(CallResponse { headers, body, trailers, dispatch_status }), (0, String::new()))
            }
            Delivery::Failure(failure) if nginx => {
                let map = CallResponse { dispatch_status: Some(failure.dispatch_status().to_string()), ..CallResponse::default() };
                ([0, 0, 0], Some(map), (0, String::new()))
            }
            Delivery::Failure(_) => ([0, 0, 0], None, (11, "reset".to_string())),
        }
    }

    pub(crate) fn deliver_callout(&mut self, id: CalloutId, delivery: Delivery) {
        let state = &mut self.callout_states[id.0];
        if state.delivered {
            return;
        }
        state.delivered = true;
        let (slot, generation, token, stream, has_body) = (state.slot, state.generation, state.token, state.stream, state.has_body);
        if let Some(sid) = stream {
            return self.deliver_to_stream(sid, generation, token, has_body, delivery);
        }
        let Some(s) = self.slots.get(slot) else { return };
        if s.generation != generation || s.vm.failed {
            return;
        }
        let vref = s.vref;
        let root = s.vm.state().root_id;
        let timed_out = matches!(delivery, Delivery::Failure(CallFailure::Timeout));
        let (counts, response, status) = self.call_response(delivery);
        self.event_log.push(format!("{} callout-response #{} {vref} headers={}{}", self.time_label(), id.0, counts[0], if timed_out { " timeout" } else { "" }));
        let now = self.now_ns();
        let vm = &mut self.slots[slot].vm;
        vm.state_mut().call_response = response;
        vm.state_mut().call_status = status;
        let args = [root as i32, token as i32, counts[0], counts[1], counts[2]];
        let result = vm.call(Callback::HttpCallResponse, root, "proxy_on_http_call_response", &args, now);
        self.finish_call(slot, result);
    }

    /// nginx: the answer to a request's own call, on that request's context.
    fn deliver_to_stream(&mut self, sid: StreamId, generation: u64, token: u32, has_body: bool, delivery: Delivery) {
        let st = &mut self.streams[sid.0];
        if matches!(st.step, Step::Log | Step::Done) {
            return;
        }
        st.pending_calls = st.pending_calls.saturating_sub(1);
        let slot = st.slot;
        let current = self.slots.get(slot).map(|s| (s.generation, s.vm.failed));
        if current != Some((generation, false)) {
            // The instance trapped since: nginx cannot resume the request on it ("failed resuming after dispatch").
            self.fail_stream_now(sid);
            return;
        }
        let timed_out = matches!(delivery, Delivery::Failure(CallFailure::Timeout));
        let (counts, response, status) = self.call_response(delivery);
        let ctx = self.streams[sid.0].ctx;
        let vref = self.slots[slot].vref;
        self.event_log.push(format!(
            "{} callout-response stream#{} {vref} headers={}{}",
            self.time_label(),
            sid.0,
            counts[0],
            if timed_out { " timeout" } else { "" }
        ));
        let root = self.slots[slot].vm.state().root_id;
        {
            let state = self.slots[slot].vm.state_mut();
            state.call_response = response;
            state.call_status = status;
            if let Some(http) = state.streams.get_mut(&ctx) {
                http.consecutive_timeouts = if timed_out { http.consecutive_timeouts + 1 } else { 0 };
                http.timed_out_with_body = timed_out && (http.timed_out_with_body || has_body);
            }
        }
        let args = [root as i32, token as i32, counts[0], counts[1], counts[2]];
        if self.call_stream(sid, Callback::HttpCallResponse, "proxy_on_http_call_response", &args).is_none() {
            return;
        }
        self.nginx_after_call_response(sid);
    }

    /// nginx: after a request's call-response callback. A local reply cancels the request's other calls; with
    /// no call left pending, nginx resumes the request whatever the callback did.
    fn nginx_after_call_response(&mut self, sid: StreamId) {
        let st = &mut self.streams[sid.0];
        if matches!(st.step, Step::Log | Step::Done) {
            return;
        }
        if st.pending.is_some() {
            self.runnable.push_back(sid);
            return;
        }
        if st.pending_calls == 0 {
            st.waiting = None;
            st.early_continue = None;
            self.runnable.push_back(sid);
        }
    }

    /// nginx: the calls a request still has pending are cancelled (local reply, end of the request).
    pub(crate) fn cancel_stream_calls(&mut self, sid: StreamId) {
        for state in self.callout_states.iter_mut().filter(|s| s.stream == Some(sid)) {
            state.delivered = true;
        }
        self.streams[sid.0].pending_calls = 0;
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
            let profile = self.cfg.profile;
            let delivery = match result {
                RealResult::Response { status, headers, body } => response(status, &headers, body, &[], profile),
                RealResult::ConnectFailure(m) if profile == Profile::Nginx && m.starts_with("cannot resolve") => {
                    Delivery::Failure(CallFailure::Resolver)
                }
                RealResult::ConnectFailure(_) => self.connect_failure_delivery(),
                RealResult::Reset(_) => Delivery::Failure(CallFailure::BrokenConnection),
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
