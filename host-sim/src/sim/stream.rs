//! One HTTP stream through the filter, step by step, with Envoy's pause/continue, body buffering, local reply
//! re-entering the response path, and on_log → on_done → on_delete at the end.
//!
//! On nginx (ngx_wasm_module) the request side differs: `on_http_request_headers` always gets
//! `end_of_stream = false`; a request body is read in the content phase and delivered once, whole, with
//! `end_of_stream = true` (no body: no callback; trailers: none); a dispatch forces a pause and the request goes
//! on by itself after its last call (`callouts.rs`); a Pause without a call is never resumed; a local reply
//! sets its headers one by one in replace mode and gets a trailing newline; a trap in the request path is a
//! 500, in the response path the response goes through.

use super::events::EventKind;
use super::{Sim, StreamId};
use crate::headers::HeaderMap;
use crate::http::{Outcome, Reply, Request, UpstreamRequest};
use crate::nginx::headers::{self as ngx_headers, Mode};
use crate::nginx::proxy;
use crate::state::{Callback, Deferred, HttpData, StreamKind};
use crate::types::{FailurePolicy, Profile, VmRef};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    RequestHeaders,
    RequestBody(usize),
    RequestTrailers,
    Forward,
    AwaitUpstream,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    Complete,
    Log,
    Done,
}

#[derive(Clone, Debug)]
pub(crate) enum Pending {
    LocalReply { status: u16, headers: Vec<(String, Vec<u8>)>, body: Vec<u8> },
    Reset,
}

#[derive(Clone, Debug)]
pub(crate) struct ResponseSource {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: Option<HeaderMap>,
}

#[derive(Debug)]
pub(crate) struct StreamState {
    pub slot: usize,
    pub generation: u64,
    /// The VM the stream runs on (shown in Debug output of stuck streams).
    #[allow(dead_code)]
    pub vm: VmRef,
    pub ctx: u32,
    pub request: Request,
    pub step: Step,
    pub waiting: Option<StreamKind>,
    /// A continue that arrived during the very callback that then returned Pause.
    pub early_continue: Option<StreamKind>,
    pub pending: Option<Pending>,
    /// FAIL_OPEN after a trap: the filter is no longer called.
    pub bypass: bool,
    pub forwarded_body: Vec<u8>,
    pub upstream_request: Option<UpstreamRequest>,
    pub response: Option<ResponseSource>,
    pub response_out_body: Vec<u8>,
    pub local_replies: u32,
    pub outcome: Outcome,
    /// nginx semantics (see the module doc).
    pub nginx: bool,
    /// nginx: calls this request dispatched that are not answered yet.
    pub pending_calls: u32,
    /// nginx: a local reply sent from `on_http_response_headers` (status, body).
    pub override_response: Option<(u16, Vec<u8>)>,
    /// Envoy: the route holds the headers until the whole request is in (`SimConfig::buffered_paths`).
    pub buffered: bool,
    /// Envoy: the router opened the upstream request because the request headers went on while body or
    /// trailers were still to come (whatever the filter does later, a local reply then resets it).
    pub router_started: bool,
}

impl StreamState {
    /// The request headers went on (Envoy): with body or trailers still to come and no buffer filter on the
    /// route, the router opens the upstream request now.
    fn note_headers_released(&mut self) {
        if !self.nginx && !self.buffered && matches!(self.step, Step::RequestBody(_) | Step::RequestTrailers) {
            self.router_started = true;
        }
    }

    pub(crate) fn on_deferred(&mut self, action: Deferred) {
        if matches!(self.step, Step::Log | Step::Done) {
            return;
        }
        match action {
            // nginx: what goes on after a callback is decided by its return value and the pending calls.
            Deferred::Continue(..) if self.nginx => {}
            Deferred::OverrideResponse { status, body, .. } => self.override_response = Some((status, body)),
            Deferred::Continue(_, kind) => {
                if self.waiting == Some(kind) {
                    self.waiting = None;
                    if kind == StreamKind::Request {
                        self.note_headers_released();
                    }
                } else {
                    self.early_continue = Some(kind);
                }
            }
            Deferred::Close(..) => self.pending = Some(Pending::Reset),
            Deferred::LocalReply { status, headers, body, .. } => {
                if !matches!(self.pending, Some(Pending::LocalReply { .. })) {
                    self.pending = Some(Pending::LocalReply { status, headers, body });
                }
            }
        }
    }
}

fn reply_from(headers: &HeaderMap, body: Vec<u8>) -> Reply {
    let status = headers.get_str(":status").and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = headers.to_string_pairs().into_iter().filter(|(k, _)| !k.starts_with(':')).collect();
    Reply { status, headers, body }
}

pub(crate) fn response_source(reply: &Reply) -> ResponseSource {
    let mut headers = HeaderMap::new();
    headers.add(":status", reply.status.to_string().as_bytes());
    for (k, v) in &reply.headers {
        headers.add(k, v.as_bytes());
    }
    if !reply.body.is_empty() && headers.get("content-length").is_none() {
        headers.add("content-length", reply.body.len().to_string().as_bytes());
    }
    ResponseSource { headers, body: reply.body.clone(), trailers: None }
}

impl Sim {
    fn http(&mut self, sid: StreamId) -> &mut HttpData {
        let (slot, ctx) = (self.streams[sid.0].slot, self.streams[sid.0].ctx);
        self.slots[slot].vm.state_mut().streams.entry(ctx).or_default()
    }

    pub(crate) fn failed_reply(&self) -> Reply {
        // Envoy's failStream: 503 "wasm_fail_stream"; ngx_wasm_module answers 500.
        match self.cfg.profile {
            Profile::Envoy => Reply::new(503),
            Profile::Nginx => Reply::new(500),
        }
    }

    /// Creates the stream on the VM and runs `proxy_on_context_create`; the request path runs on the next pump.
    pub fn start_stream(&mut self, vm: VmRef, request: Request) -> StreamId {
        let slot = self.slot_of(vm);
        self.maybe_reload(slot);
        let sid = StreamId(self.streams.len());
        let failed = self.slots[slot].vm.failed;
        let ctx = self.slots[slot].vm.state_mut().alloc_context_id();
        let generation = self.slots[slot].generation;
        let mut state = StreamState {
            slot,
            generation,
            vm,
            ctx,
            request,
            step: Step::RequestHeaders,
            waiting: None,
            early_continue: None,
            pending: None,
            bypass: false,
            forwarded_body: Vec::new(),
            upstream_request: None,
            response: None,
            response_out_body: Vec::new(),
            local_replies: 0,
            outcome: Outcome::Paused,
            nginx: self.cfg.profile == Profile::Nginx,
            pending_calls: 0,
            override_response: None,
            buffered: false,
            router_started: false,
        };
        let path = state.request.path.split('?').next().unwrap_or_default();
        state.buffered = self.cfg.buffered_paths.iter().any(|p| p == path);
        if failed {
            match self.cfg.policy {
                FailurePolicy::FailOpen => state.bypass = true,
                FailurePolicy::FailClosed | FailurePolicy::FailReload => {
                    state.step = Step::Done;
                    state.outcome = Outcome::FailedVm(self.failed_reply());
                    self.streams.push(state);
                    self.finished.push(sid);
                    return sid;
                }
            }
        }
        let mut pairs = state.request.header_pairs();
        if state.nginx && !pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            // nginx keeps the client's Host line in `headers_in` (`:authority` is read from it).
            let at = pairs.iter().take_while(|(k, _)| k.starts_with(':')).count();
            pairs.insert(at, ("host".to_string(), state.request.authority.clone()));
        }
        let framed = pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding"));
        let body_len: usize = state.request.body_chunks.iter().map(Vec::len).sum();
        if state.nginx && !framed && body_len > 0 {
            // An HTTP/1.1 client frames its body: one chunk as Content-Length, several as chunked.
            match state.request.body_chunks.len() {
                1 => pairs.push(("content-length".to_string(), body_len.to_string())),
                _ => pairs.push(("transfer-encoding".to_string(), "chunked".to_string())),
            }
        }
        let mut headers = HeaderMap::from_pairs(pairs);
        for (name, value) in &state.request.raw_headers {
            headers.add(name, value);
        }
        if state.nginx {
            ngx_headers::init_request(&mut headers);
        }
        self.streams.push(state);
        self.slots[slot].streams.insert(ctx, sid);
        self.http(sid).request_headers = headers;
        let root = self.slots[slot].vm.state().root_id as i32;
        if self.call_stream(sid, Callback::ContextCreate, "proxy_on_context_create", &[ctx as i32, root]).is_some() {
            self.runnable.push_back(sid);
        }
        sid
    }

    pub(crate) fn abandon_stream(&mut self, sid: StreamId) {
        let st = &mut self.streams[sid.0];
        if matches!(st.step, Step::Log | Step::Done) {
            return;
        }
        st.outcome = Outcome::Reset;
        st.pending = None;
        st.waiting = None;
        st.step = Step::Log;
        self.event_log.push(format!("{} abandon stream#{}", self.time_label(), sid.0));
        self.runnable.push_back(sid);
    }

    /// Calls a stream callback; None when the stream ended because the VM is (or just became) failed.
    pub(crate) fn call_stream(&mut self, sid: StreamId, callback: Callback, func: &'static str, args: &[i32]) -> Option<i32> {
        let (slot, ctx, generation) = (self.streams[sid.0].slot, self.streams[sid.0].ctx, self.streams[sid.0].generation);
        if self.streams[sid.0].bypass {
            return Some(0);
        }
        if self.slots[slot].vm.failed || self.slots[slot].generation != generation {
            return self.fail_stream(sid);
        }
        let now = self.now_ns();
        let result = self.slots[slot].vm.call(callback, ctx, func, args, now);
        match self.finish_call(slot, result) {
            Some(value) => Some(value),
            // The worker crashed: every stream of it is already reset.
            None if self.streams[sid.0].step == Step::Done => None,
            None if self.cfg.profile == Profile::Nginx
                && matches!(callback, Callback::ResponseHeaders | Callback::ResponseBody | Callback::ResponseTrailers) =>
            {
                // ngx_wasm_module: a trap in the response path lets the response through.
                let st = &mut self.streams[sid.0];
                st.bypass = true;
                st.waiting = None;
                st.pending = None;
                Some(0)
            }
            None if self.cfg.profile == Profile::Nginx => self.fail_stream_now(sid),
            None => self.fail_stream(sid),
        }
    }

    /// nginx: the request fails with 500 (a trap, or an instance that trapped under it); its calls are cancelled.
    pub(crate) fn fail_stream_now(&mut self, sid: StreamId) -> Option<i32> {
        self.cancel_stream_calls(sid);
        let reply = self.failed_reply();
        let st = &mut self.streams[sid.0];
        st.outcome = Outcome::FailedVm(reply);
        st.step = Step::Done;
        st.pending = None;
        st.waiting = None;
        let (slot, ctx, generation) = (st.slot, st.ctx, st.generation);
        if self.slots[slot].generation == generation {
            self.slots[slot].vm.state_mut().streams.remove(&ctx);
            self.slots[slot].streams.remove(&ctx);
        }
        self.finished.push(sid);
        None
    }

    fn fail_stream(&mut self, sid: StreamId) -> Option<i32> {
        if self.cfg.policy == FailurePolicy::FailOpen {
            let st = &mut self.streams[sid.0];
            st.bypass = true;
            st.waiting = None;
            st.pending = None;
            return Some(0);
        }
        let reply = self.failed_reply();
        let st = &mut self.streams[sid.0];
        st.outcome = Outcome::FailedVm(reply);
        st.step = Step::Done;
        let (slot, ctx) = (st.slot, st.ctx);
        self.slots[slot].vm.state_mut().streams.remove(&ctx);
        self.slots[slot].streams.remove(&ctx);
        self.finished.push(sid);
        None
    }

    /// After a callback returned: Continue releases the phase's maps, Pause waits for continue_stream.
    fn after_action(&mut self, sid: StreamId, action: i32, kind: StreamKind) {
        let proceed = action == 0 || self.streams[sid.0].early_continue.take() == Some(kind);
        if proceed {
            let http = self.http(sid);
            match kind {
                StreamKind::Request => {
                    http.request_headers_live = false;
                    http.request_trailers_live = false;
                }
                StreamKind::Response => {
                    http.response_headers_live = false;
                    http.response_trailers_live = false;
                }
            }
        } else {
            self.streams[sid.0].waiting = Some(kind);
        }
    }

    pub(crate) fn drive(&mut self, sid: StreamId) {
        loop {
            let st = &mut self.streams[sid.0];
            if st.step == Step::Done {
                return;
            }
            if let Some(pending) = st.pending.take() {
                self.apply_pending(sid, pending);
                continue;
            }
            if st.waiting.is_some() && st.step != Step::Log {
                return;
            }
            let step = st.step;
            match step {
                Step::RequestHeaders => self.request_headers(sid),
                Step::RequestBody(i) => self.request_body(sid, i),
                Step::RequestTrailers => self.request_trailers(sid),
                Step::Forward => self.forward(sid),
                Step::AwaitUpstream => return,
                Step::ResponseHeaders => self.response_headers(sid),
                Step::ResponseBody => self.response_body(sid),
                Step::ResponseTrailers => self.response_trailers(sid),
                Step::Complete => self.complete(sid),
                Step::Log => self.finish_stream(sid),
                Step::Done => return,
            }
        }
    }

    fn request_headers(&mut self, sid: StreamId) {
        let st = &self.streams[sid.0];
        if st.nginx {
            return self.request_headers_nginx(sid);
        }
        let eos = st.request.body_chunks.is_empty() && st.request.trailers.is_empty();
        let next = if !st.request.body_chunks.is_empty() {
            Step::RequestBody(0)
        } else if !st.request.trailers.is_empty() {
            Step::RequestTrailers
        } else {
            Step::Forward
        };
        let ctx = st.ctx as i32;
        let http = self.http(sid);
        http.request_headers_live = true;
        let n = http.request_headers.len() as i32;
        let Some(action) = self.call_stream(sid, Callback::RequestHeaders, "proxy_on_request_headers", &[ctx, n, eos as i32]) else {
            return;
        };
        self.streams[sid.0].step = next;
        self.after_action(sid, action, StreamKind::Request);
        if self.streams[sid.0].waiting.is_none() {
            self.streams[sid.0].note_headers_released();
        }
    }

    /// nginx: `on_http_request_headers(n, false)`; next the body callback (if a body came) or the upstream.
    fn request_headers_nginx(&mut self, sid: StreamId) {
        let st = &self.streams[sid.0];
        let has_body = st.request.body_chunks.iter().any(|c| !c.is_empty());
        let next = if has_body { Step::RequestBody(0) } else { Step::Forward };
        let ctx = st.ctx as i32;
        let n = self.http(sid).request_headers.all_entries().iter().filter(|e| !e.key.starts_with(':')).count() as i32;
        let Some(action) = self.call_stream(sid, Callback::RequestHeaders, "proxy_on_request_headers", &[ctx, n, 0]) else {
            return;
        };
        self.streams[sid.0].step = next;
        self.nginx_after_request_step(sid, action);
    }

    /// nginx: `on_http_request_body(whole size, true)`, once, in the content phase.
    fn request_body_nginx(&mut self, sid: StreamId) {
        let st = &self.streams[sid.0];
        let body: Vec<u8> = st.request.body_chunks.concat();
        let ctx = st.ctx as i32;
        let http = self.http(sid);
        http.request_body = body;
        http.request_body_live = true;
        let size = http.request_body.len() as i32;
        let Some(action) = self.call_stream(sid, Callback::RequestBody, "proxy_on_request_body", &[ctx, size, 1]) else {
            return;
        };
        self.streams[sid.0].step = Step::Forward;
        self.nginx_after_request_step(sid, action);
    }

    /// nginx: a request step ended. A dispatch forces a pause (the last answer resumes it); a Pause without a
    /// call is never resumed (nothing can act on this request but its own callbacks).
    fn nginx_after_request_step(&mut self, sid: StreamId, action: i32) {
        let st = &mut self.streams[sid.0];
        st.early_continue = None;
        if st.pending.is_some() {
            return;
        }
        if st.pending_calls > 0 || action != 0 {
            st.waiting = Some(StreamKind::Request);
        }
    }

    fn request_body(&mut self, sid: StreamId, i: usize) {
        if self.streams[sid.0].nginx {
            return self.request_body_nginx(sid);
        }
        let st = &self.streams[sid.0];
        let chunk = st.request.body_chunks[i].clone();
        let last = i + 1 == st.request.body_chunks.len();
        let has_trailers = !st.request.trailers.is_empty();
        let eos = last && !has_trailers;
        let next = match (last, has_trailers) {
            (false, _) => Step::RequestBody(i + 1),
            (true, true) => Step::RequestTrailers,
            (true, false) => Step::Forward,
        };
        let ctx = st.ctx as i32;
        let http = self.http(sid);
        http.request_body.extend_from_slice(&chunk);
        http.request_body_live = true;
        http.request_trailers_creatable = eos;
        let size = http.request_body.len() as i32;
        let Some(action) = self.call_stream(sid, Callback::RequestBody, "proxy_on_request_body", &[ctx, size, eos as i32]) else {
            return;
        };
        self.streams[sid.0].step = next;
        if action == 0 || self.streams[sid.0].early_continue.take() == Some(StreamKind::Request) {
            let http = self.http(sid);
            let body = std::mem::take(&mut http.request_body);
            http.request_body_live = false;
            http.request_trailers_creatable = false;
            self.streams[sid.0].forwarded_body.extend_from_slice(&body);
        } else if eos {
            self.streams[sid.0].waiting = Some(StreamKind::Request);
        }
    }

    fn request_trailers(&mut self, sid: StreamId) {
        let st = &self.streams[sid.0];
        let trailers = HeaderMap::from_pairs(st.request.trailers.clone());
        let ctx = st.ctx as i32;
        let n = trailers.len() as i32;
        let http = self.http(sid);
        http.request_trailers = Some(trailers);
        http.request_trailers_live = true;
        let Some(action) = self.call_stream(sid, Callback::RequestTrailers, "proxy_on_request_trailers", &[ctx, n]) else {
            return;
        };
        self.streams[sid.0].step = Step::Forward;
        self.after_action(sid, action, StreamKind::Request);
    }

    fn forward(&mut self, sid: StreamId) {
        let http = self.http(sid);
        let rest = std::mem::take(&mut http.request_body);
        http.request_headers_live = false;
        http.request_body_live = false;
        http.request_trailers_live = false;
        http.request_trailers_creatable = false;
        let headers = http.request_headers.to_string_pairs();
        let headers = match self.cfg.profile {
            Profile::Envoy => headers,
            // What nginx's proxy module sends: hidden entries too, and the location's proxy_set_header lines.
            Profile::Nginx => {
                let (slot, ctx) = (self.streams[sid.0].slot, self.streams[sid.0].ctx);
                let map = &self.slots[slot].vm.state().streams[&ctx].request_headers;
                proxy::upstream_headers(map, &self.cfg.proxy_set_headers)
            }
        };
        let http = self.http(sid);
        let trailers = http.request_trailers.as_ref().map(HeaderMap::to_string_pairs).unwrap_or_default();
        let st = &mut self.streams[sid.0];
        st.forwarded_body.extend_from_slice(&rest);
        let upstream = UpstreamRequest { headers, body: st.forwarded_body.clone(), trailers };
        st.upstream_request = Some(upstream.clone());
        st.step = Step::AwaitUpstream;
        let slot = st.slot;
        if self.cfg.external_upstream {
            self.upstream_out.push((sid, upstream));
        } else {
            let now = self.now_ns();
            let generation = self.slots[slot].generation;
            self.events.push(now, slot, (generation, EventKind::UpstreamReply { stream: sid }));
        }
    }

    /// The upstream answered a forwarded request: the response path starts.
    pub(crate) fn upstream_replied(&mut self, sid: StreamId, reply: &Reply) {
        let st = &mut self.streams[sid.0];
        if st.step != Step::AwaitUpstream {
            return;
        }
        st.response = Some(response_source(reply));
        st.step = Step::ResponseHeaders;
        self.runnable.push_back(sid);
    }

    fn response_headers(&mut self, sid: StreamId) {
        let st = &self.streams[sid.0];
        let Some(src) = st.response.clone() else { return };
        let eos = src.body.is_empty() && src.trailers.is_none();
        let next = if !src.body.is_empty() {
            Step::ResponseBody
        } else if src.trailers.is_some() {
            Step::ResponseTrailers
        } else {
            Step::Complete
        };
        let ctx = st.ctx as i32;
        let nginx = st.nginx;
        let n = src.headers.len() as i32;
        let http = self.http(sid);
        http.response_headers = Some(src.headers);
        http.response_headers_live = true;
        http.response_started = true;
        let eos = eos && !nginx;
        let Some(action) = self.call_stream(sid, Callback::ResponseHeaders, "proxy_on_response_headers", &[ctx, n, eos as i32]) else {
            return;
        };
        self.streams[sid.0].step = next;
        if let Some((status, body)) = self.streams[sid.0].override_response.take() {
            self.override_response(sid, status, body);
        }
        self.after_action(sid, action, StreamKind::Response);
    }

    fn response_body(&mut self, sid: StreamId) {
        let st = &self.streams[sid.0];
        let Some(src) = st.response.clone() else { return };
        let eos = src.trailers.is_none();
        let ctx = st.ctx as i32;
        let http = self.http(sid);
        http.response_body.extend_from_slice(&src.body);
        http.response_body_live = true;
        http.response_body_started = true;
        http.response_trailers_creatable = eos;
        let size = http.response_body.len() as i32;
        let Some(action) = self.call_stream(sid, Callback::ResponseBody, "proxy_on_response_body", &[ctx, size, eos as i32]) else {
            return;
        };
        self.streams[sid.0].step = if eos { Step::Complete } else { Step::ResponseTrailers };
        if action == 0 || self.streams[sid.0].early_continue.take() == Some(StreamKind::Response) {
            let http = self.http(sid);
            let body = std::mem::take(&mut http.response_body);
            http.response_body_live = false;
            http.response_trailers_creatable = false;
            self.streams[sid.0].response_out_body.extend_from_slice(&body);
        } else if eos {
            self.streams[sid.0].waiting = Some(StreamKind::Response);
        }
    }

    fn response_trailers(&mut self, sid: StreamId) {
        let st = &self.streams[sid.0];
        let Some(trailers) = st.response.as_ref().and_then(|r| r.trailers.clone()) else {
            self.streams[sid.0].step = Step::Complete;
            return;
        };
        let ctx = st.ctx as i32;
        let n = trailers.len() as i32;
        let http = self.http(sid);
        http.response_trailers = Some(trailers);
        http.response_trailers_live = true;
        let Some(action) = self.call_stream(sid, Callback::ResponseTrailers, "proxy_on_response_trailers", &[ctx, n]) else {
            return;
        };
        self.streams[sid.0].step = Step::Complete;
        self.after_action(sid, action, StreamKind::Response);
    }

    fn complete(&mut self, sid: StreamId) {
        let http = self.http(sid);
        let rest = std::mem::take(&mut http.response_body);
        http.response_headers_live = false;
        http.response_body_live = false;
        http.response_trailers_live = false;
        let headers = http.response_headers.clone().unwrap_or_default();
        let st = &mut self.streams[sid.0];
        st.response_out_body.extend_from_slice(&rest);
        let reply = reply_from(&headers, std::mem::take(&mut st.response_out_body));
        st.outcome = match (st.local_replies > 0, st.upstream_request.clone()) {
            (false, Some(upstream_request)) => Outcome::Forwarded { upstream_request, reply },
            _ => Outcome::LocalReply(reply),
        };
        st.step = Step::Log;
    }

    fn apply_pending(&mut self, sid: StreamId, pending: Pending) {
        let st = &mut self.streams[sid.0];
        st.waiting = None;
        st.early_continue = None;
        match pending {
            Pending::Reset => {
                st.outcome = Outcome::Reset;
                st.step = Step::Log;
            }
            Pending::LocalReply { status, headers, body } if st.nginx => self.local_reply_nginx(sid, status, headers, body),
            Pending::LocalReply { status, headers, body } => {
                let mut map = HeaderMap::new();
                map.add(":status", status.to_string().as_bytes());
                for (k, v) in &headers {
                    map.add(k, v);
                }
                if !body.is_empty() {
                    if map.get("content-type").is_none() {
                        map.add("content-type", b"text/plain");
                    }
                    map.replace("content-length", body.len().to_string().as_bytes());
                }
                if st.local_replies > 0 {
                    // A local reply sent from the local reply's own response path replaces it without re-entry.
                    st.outcome = Outcome::LocalReply(reply_from(&map, body));
                    st.step = Step::Log;
                    return;
                }
                st.local_replies += 1;
                st.response = Some(super::stream::ResponseSource { headers: map, body, trailers: None });
                st.response_out_body.clear();
                st.step = Step::ResponseHeaders;
                let http = self.http(sid);
                http.request_headers_live = false;
                http.request_body_live = false;
                http.request_trailers_live = false;
                http.request_trailers_creatable = false;
                http.response_headers = None;
                http.response_body.clear();
            }
        }
    }

    /// Access log, then the filter's destruction: on_log, on_done, on_delete (Envoy's HCM order).
    fn finish_stream(&mut self, sid: StreamId) {
        if self.streams[sid.0].nginx {
            // ngx_wasm_module cancels a request's pending calls when the request ends.
            self.cancel_stream_calls(sid);
        }
        let (slot, ctx, generation, bypass) = {
            let st = &self.streams[sid.0];
            (st.slot, st.ctx, st.generation, st.bypass)
        };
        if self.slots[slot].generation == generation {
            let http = self.http(sid);
            http.log_phase = true;
            http.request_headers_live = false;
            http.request_body_live = false;
            http.response_headers_live = false;
            http.response_body_live = false;
        }
        if !bypass && self.slots[slot].generation == generation {
            for (callback, func) in [
                (Callback::Log, "proxy_on_log"),
                (Callback::Done, "proxy_on_done"),
                (Callback::Delete, "proxy_on_delete"),
            ] {
                let now = self.now_ns();
                let result = self.slots[slot].vm.call(callback, ctx, func, &[ctx as i32], now);
                self.finish_call(slot, result);
            }
        }
        if self.slots[slot].generation == generation {
            self.slots[slot].vm.state_mut().streams.remove(&ctx);
            self.slots[slot].streams.remove(&ctx);
        }
        let st = &mut self.streams[sid.0];
        st.step = Step::Done;
        st.pending = None;
        self.finished.push(sid);
    }
}

impl Sim {
    /// nginx: the stashed local reply is flushed in the content phase: pending calls cancelled, request body
    /// discarded, each header set in replace mode (of two `set-cookie` only the last stays), a newline appended
    /// to a body; then the response path runs as for any response.
    fn local_reply_nginx(&mut self, sid: StreamId, status: u16, headers: Vec<(String, Vec<u8>)>, body: Vec<u8>) {
        self.cancel_stream_calls(sid);
        let mut map = HeaderMap::new();
        map.add(":status", status.to_string().as_bytes());
        for (k, v) in &headers {
            ngx_headers::write(&mut map, k, v, Mode::Set);
        }
        let mut body = body;
        if !body.is_empty() {
            body.push(b'\n');
            if map.get("content-type").is_none() {
                map.add("content-type", b"text/plain");
            }
        }
        ngx_headers::write(&mut map, "content-length", body.len().to_string().as_bytes(), Mode::Set);
        let st = &mut self.streams[sid.0];
        st.local_replies += 1;
        st.response = Some(ResponseSource { headers: map, body, trailers: None });
        st.response_out_body.clear();
        st.step = Step::ResponseHeaders;
        let http = self.http(sid);
        http.local_reply_stashed = false;
        http.request_body_live = false;
        http.response_headers = None;
        http.response_body.clear();
    }

    /// nginx: a local reply from `on_http_response_headers` replaces only the status and the body (plus a
    /// newline); the headers already produced, Content-Length included, stay.
    fn override_response(&mut self, sid: StreamId, status: u16, mut body: Vec<u8>) {
        if !body.is_empty() {
            body.push(b'\n');
        }
        let http = self.http(sid);
        if let Some(map) = http.response_headers.as_mut() {
            map.replace(":status", status.to_string().as_bytes());
        }
        let st = &mut self.streams[sid.0];
        if let Some(src) = st.response.as_mut() {
            src.body = body;
        }
        if st.step == Step::Complete && st.response.as_ref().is_some_and(|r| !r.body.is_empty()) {
            st.step = Step::ResponseBody;
        }
    }
}
