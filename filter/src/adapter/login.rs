//! Login glue: the login endpoints (callback, logout, back-channel logout),
//! the reply to unauthenticated requests, and the IdP calls of the login
//! flows. Every decision is made by `crate::login`; this file performs the
//! hostcalls it asks for.
//!
//! Calls are dispatched from root callbacks only (ticks, queue wake-ups and
//! callout answers), like revalidations: a request that needs the IdP
//! pauses, its call waits in `outbox`, and the next root callback sends it.
//! The answer comes back to the root, which resumes the stream by its
//! context id, or skips it quietly when the client has gone. On nginx the
//! root cannot act on a stream: it parks the reply (`take_parked`), and a
//! call made from the root's call-response callback waits for the next tick.

use super::host::{self, CallResponse, ProxyStore};
use super::metrics::Metrics;
use crate::config::Config;
use crate::login::backchannel::{body_too_large, MAX_BODY_LEN};
use crate::login::fetch::FetchStep;
use crate::login::{
    authorize, backchannel_logout, logout, route, Callback, CallbackDone, CallbackStep, IdpRequest,
    LoginCallKind, LoginError, LoginRoute, LoginVm, RequestView,
};
use crate::reply::{LocalReply, Rejection};
use crate::revalidation::IdpAnswer;
use crate::token::Verifier;
use proxy_wasm::hostcalls;
use std::collections::HashMap;

/// What the request path does after `LoginGlue::on_request`.
pub enum Handled {
    /// A local reply was sent.
    Replied,
    /// A reply was sent and a call waits in the outbox (kick the root).
    RepliedAndQueued,
    /// The stream waits for an IdP answer (kick the root).
    WaitIdp,
    /// Let the body come (back-channel logout): `on_request_body` answers.
    ReadBody,
}

/// What `on_request_body` asks the stream to do.
pub enum BodyAction {
    /// Not a login body: pass it on.
    Continue,
    /// Keep buffering.
    Buffer,
    Replied,
}

enum Outgoing {
    Callback { context_id: u32, callback: Callback, call: IdpRequest },
    Revocation(IdpRequest),
}

/// A callback waiting for the answer to one of its calls.
struct PendingCallback {
    context_id: u32,
    callback: Callback,
    sent_ns: u64,
}

pub struct LoginGlue {
    vm: LoginVm,
    /// Callout token of this VM's discovery or JWKS fetch.
    fetch: Option<(u32, u64)>,
    callbacks: HashMap<u32, PendingCallback>,
    /// Revocation calls in flight (their answer is only logged).
    revocations: HashMap<u32, u64>,
    outbox: Vec<Outgoing>,
    /// Streams whose body is being read (back-channel logout), with their
    /// method (request headers are unreadable once the headers phase ended:
    /// Envoy answers BadArgument, on which the SDK panics).
    bodies: HashMap<u32, String>,
    /// nginx: replies for paused callbacks, sent by their own wait callback.
    parked: HashMap<u32, LocalReply>,
    /// nginx: a metadata fetch decided in a call-response callback.
    deferred_fetch: Option<IdpRequest>,
}

impl LoginGlue {
    /// `None` without a `login` section; `Err` names the problem.
    pub fn configure(cfg: &Config) -> Option<Result<LoginGlue, String>> {
        let vm = match LoginVm::new(cfg)? {
            Ok(vm) => vm,
            Err(e) => return Some(Err(format!("config key `login.signing_key`: {e}"))),
        };
        Some(Ok(LoginGlue {
            vm,
            fetch: None,
            callbacks: HashMap::new(),
            revocations: HashMap::new(),
            outbox: Vec::new(),
            bodies: HashMap::new(),
            parked: HashMap::new(),
            deferred_fetch: None,
        }))
    }

    // ---- request path ----------------------------------------------------

    /// Serves the login endpoints; `None` for an ordinary request.
    pub fn on_request(
        &mut self,
        cfg: &Config,
        verifier: &Verifier,
        context_id: u32,
        end_of_stream: bool,
        req: &RequestView,
        now: u64,
    ) -> Option<Handled> {
        let which = route(cfg, req)?;
        let store = ProxyStore;
        self.vm.provider.sync(&store, cfg);
        Some(match which {
            LoginRoute::Callback => self.start_callback(cfg, context_id, req, now),
            LoginRoute::Logout => {
                let done = logout(cfg, &self.vm.provider, verifier, &store, req, now);
                host::send_local(&done.reply);
                if done.ended.is_some() {
                    log::info!("vigil: logout ended a session");
                }
                match done.revocation {
                    Some(call) => {
                        self.outbox.push(Outgoing::Revocation(call));
                        Handled::RepliedAndQueued
                    }
                    None => Handled::Replied,
                }
            }
            // nginx always says "more to come" and never calls back for a
            // request without a body: decide from the headers whether one comes.
            LoginRoute::BackchannelLogout if end_of_stream || (cfg.nginx().is_some() && !body_follows(req)) => {
                self.finish_backchannel(cfg, &req.method, &[], now);
                Handled::Replied
            }
            LoginRoute::BackchannelLogout => {
                self.bodies.insert(context_id, req.method.clone());
                Handled::ReadBody
            }
        })
    }

    fn start_callback(&mut self, cfg: &Config, context_id: u32, req: &RequestView, now: u64) -> Handled {
        let Some(ctx) = self.vm.context(cfg) else {
            // Unreachable (routing needs a login section); never leave the
            // stream paused.
            host::send_local(&not_ready());
            return Handled::Replied;
        };
        match Callback::start(&ctx, &self.vm.provider, &ProxyStore, req, now) {
            Ok((callback, call)) => {
                self.outbox.push(Outgoing::Callback { context_id, callback, call });
                Handled::WaitIdp
            }
            Err(done) => {
                finish_callback(&done);
                Handled::Replied
            }
        }
    }

    /// The body of a back-channel logout (cumulative size, as Envoy
    /// re-delivers a buffered body).
    pub fn on_request_body(&mut self, cfg: &Config, context_id: u32, body_size: usize, end_of_stream: bool, now: u64) -> BodyAction {
        if !self.bodies.contains_key(&context_id) {
            return BodyAction::Continue;
        }
        if body_size > MAX_BODY_LEN {
            self.bodies.remove(&context_id);
            host::send_local(&body_too_large());
            return BodyAction::Replied;
        }
        if !end_of_stream {
            return BodyAction::Buffer;
        }
        let method = self.bodies.remove(&context_id).unwrap_or_default();
        let body = host::request_body(body_size);
        self.vm.provider.sync(&ProxyStore, cfg);
        self.finish_backchannel(cfg, &method, &body, now);
        BodyAction::Replied
    }

    fn finish_backchannel(&mut self, cfg: &Config, method: &str, body: &[u8], now: u64) {
        let done = backchannel_logout(cfg, &self.vm.provider, &ProxyStore, method, body, now);
        match &done.result {
            Ok(done) => log::info!("vigil: back-channel logout {}", done.describe()),
            Err(e) => log::info!("vigil: back-channel logout refused ({}): {}", e.code(), e.reason()),
        }
        host::send_local(&done.reply);
    }

    /// The reply to a request without a valid session: a page load goes to
    /// the IdP (503 before discovery), anything else gets `rejection`.
    pub fn unauthenticated(&mut self, cfg: &Config, req: &RequestView, rejection: Rejection, now: u64) -> LocalReply {
        let store = ProxyStore;
        if self.vm.provider.ready().is_none() {
            self.vm.provider.sync(&store, cfg);
        }
        let mut random = host::random_u64;
        authorize::unauthenticated(cfg, &self.vm.provider, &store, req, rejection, &mut random, now)
    }

    /// The client went away: forget its callback and body.
    pub fn forget_stream(&mut self, context_id: u32) {
        self.bodies.remove(&context_id);
        self.parked.remove(&context_id);
        self.callbacks.retain(|_, p| p.context_id != context_id);
        self.outbox.retain(|o| !matches!(o, Outgoing::Callback { context_id: c, .. } if *c == context_id));
    }

    // ---- root callbacks ----------------------------------------------------

    /// Every tick or wake-up: drive the metadata fetch, send queued calls.
    pub fn on_wake(&mut self, cfg: &Config, vm_uid: &str, metrics: &Metrics, now: u64) {
        if let Some(call) = self.deferred_fetch.take() {
            self.dispatch_fetch(cfg, vm_uid, call, false, now);
        }
        if let Some(call) = self.vm.tick(cfg, &ProxyStore, vm_uid, now) {
            self.dispatch_fetch(cfg, vm_uid, call, false, now);
        }
        for outgoing in std::mem::take(&mut self.outbox) {
            match outgoing {
                Outgoing::Callback { context_id, callback, call } => {
                    self.send_callback_call(cfg, metrics, context_id, callback, call, false, now)
                }
                Outgoing::Revocation(call) => match dispatch(cfg, &call) {
                    Ok(token) => {
                        self.revocations.insert(token, now);
                    }
                    Err(()) => log::warn!("vigil: refresh token revocation not sent (the host refused the call)"),
                },
            }
        }
    }

    /// An IdP answer; `false` when the token is not a login call. With
    /// `defer`, a next call waits for the next tick (nginx, see the module doc).
    #[allow(clippy::too_many_arguments)]
    pub fn on_call_response(
        &mut self,
        cfg: &Config,
        vm_uid: &str,
        metrics: &Metrics,
        token: u32,
        response: Option<CallResponse>,
        defer: bool,
        now: u64,
    ) -> bool {
        if self.fetch.is_some_and(|(t, _)| t == token) {
            let sent = self.fetch.take().map_or(now, |(_, sent)| sent);
            metrics.idp_latency_ms(now.saturating_sub(sent) / 1_000_000);
            let step = self.vm.on_fetch_answer(cfg, &ProxyStore, vm_uid, now, &answer_of(response));
            self.after_fetch(cfg, vm_uid, step, defer, now);
            return true;
        }
        if let Some(sent) = self.revocations.remove(&token) {
            metrics.idp_latency_ms(now.saturating_sub(sent) / 1_000_000);
            match response.map(|r| r.status) {
                Some(200) => log::info!("vigil: refresh token revoked at the IdP"),
                Some(status) => log::warn!("vigil: the IdP answered the refresh token revocation with {status}"),
                None => log::warn!("vigil: the refresh token revocation failed (reset)"),
            }
            return true;
        }
        let Some(PendingCallback { context_id, mut callback, sent_ns }) = self.callbacks.remove(&token) else {
            return false;
        };
        metrics.idp_latency_ms(now.saturating_sub(sent_ns) / 1_000_000);
        let step = self.callback_answer(cfg, &mut callback, &answer_of(response), now);
        self.after_callback(cfg, metrics, context_id, callback, step, defer, now);
        true
    }

    /// nginx: the reply the root decided for a paused callback request.
    pub fn take_parked(&mut self, context_id: u32) -> Option<LocalReply> {
        self.parked.remove(&context_id)
    }

    fn callback_answer(&self, cfg: &Config, callback: &mut Callback, answer: &IdpAnswer, now: u64) -> Option<CallbackStep> {
        let ctx = self.vm.context(cfg)?;
        let mut random = host::random_u64;
        Some(callback.on_answer(&ctx, &self.vm.provider, &ProxyStore, answer, &mut random, now))
    }

    #[allow(clippy::too_many_arguments)]
    fn send_callback_call(&mut self, cfg: &Config, metrics: &Metrics, context_id: u32, mut callback: Callback, call: IdpRequest, defer: bool, now: u64) {
        if defer {
            self.outbox.push(Outgoing::Callback { context_id, callback, call });
            return;
        }
        match dispatch(cfg, &call) {
            Ok(token) => {
                self.callbacks.insert(token, PendingCallback { context_id, callback, sent_ns: now });
            }
            Err(()) => {
                let step = self.callback_answer(cfg, &mut callback, &IdpAnswer::Unreachable, now);
                self.after_callback(cfg, metrics, context_id, callback, step, defer, now);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn after_callback(&mut self, cfg: &Config, metrics: &Metrics, context_id: u32, callback: Callback, step: Option<CallbackStep>, defer: bool, now: u64) {
        let reply = match step {
            Some(CallbackStep::Call(call)) => {
                return self.send_callback_call(cfg, metrics, context_id, callback, call, defer, now)
            }
            Some(CallbackStep::Done(done)) => {
                log_callback(&done);
                done.reply
            }
            None => not_ready(),
        };
        if cfg.nginx().is_some() {
            // Sent by the request's own wait callback (the root cannot act on it).
            self.parked.insert(context_id, reply);
        } else if hostcalls::set_effective_context(context_id).is_ok() {
            host::send_local(&reply);
        }
        // else: the stream is gone (client left), skip it quietly.
    }

    fn dispatch_fetch(&mut self, cfg: &Config, vm_uid: &str, call: IdpRequest, defer: bool, now: u64) {
        if defer {
            self.deferred_fetch = Some(call);
            return;
        }
        match dispatch(cfg, &call) {
            Ok(token) => self.fetch = Some((token, now)),
            Err(()) => {
                let step = self.vm.on_fetch_answer(cfg, &ProxyStore, vm_uid, now, &IdpAnswer::Unreachable);
                self.after_fetch(cfg, vm_uid, step, defer, now);
            }
        }
    }

    fn after_fetch(&mut self, cfg: &Config, vm_uid: &str, step: FetchStep, defer: bool, now: u64) {
        match step {
            FetchStep::Call(call) => self.dispatch_fetch(cfg, vm_uid, call, defer, now),
            FetchStep::Done => {}
            FetchStep::Failed(failure) if failure.first_of_streak => {
                let what = match failure.kind {
                    LoginCallKind::Discovery => "discovery document",
                    _ => "JWKS",
                };
                log::warn!(
                    "vigil: fetching the IdP's {what} failed ({}); retrying in {}s",
                    failure.reason,
                    failure.retry_in_ns.div_ceil(1_000_000_000)
                );
            }
            FetchStep::Failed(_) => {}
        }
    }
}

/// Log (code and static reason only) and send a callback's reply.
fn finish_callback(done: &CallbackDone) {
    log_callback(done);
    host::send_local(&done.reply);
}

fn log_callback(done: &CallbackDone) {
    match &done.result {
        Ok(logged_in) => {
            if logged_in.evicted {
                log::warn!("vigil: login evicted the least recently validated session (max_sessions is full)");
            }
            log::info!("vigil: login completed (session slot {})", logged_in.slot);
        }
        Err(e) => log::info!("vigil: login refused ({}): {}", e.code(), e.reason()),
    }
}

/// Whether a body follows these request headers (a length over 0, or chunked).
fn body_follows(req: &RequestView) -> bool {
    req.headers.iter().any(|(name, value)| {
        (name.eq_ignore_ascii_case("content-length") && value.trim() != "0")
            || name.eq_ignore_ascii_case("transfer-encoding")
    })
}

fn not_ready() -> LocalReply {
    LoginError::NotReady { retry_after_s: 1 }.to_page()
}

fn dispatch(cfg: &Config, call: &IdpRequest) -> Result<u32, ()> {
    host::dispatch(&cfg.idp.upstream, &call.headers, &call.body, call.timeout).map_err(|status| {
        log::warn!("vigil: the host refused the IdP call to {}: {status:?}", cfg.idp.upstream);
    })
}

fn answer_of(response: Option<CallResponse>) -> IdpAnswer {
    match response {
        Some(r) => IdpAnswer::Response { status: r.status, headers: r.headers, body: r.body },
        None => IdpAnswer::Reset,
    }
}
