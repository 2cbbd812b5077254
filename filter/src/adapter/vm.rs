//! VM-wide state and the entry points the contexts call: a request's
//! headers (`on_request`), a wake-up (`on_wake`: tick or queue), an IdP
//! answer (`on_call_response`) and, on nginx, a paused request's wait call
//! (`on_wait_answer`). Decisions come from the pure modules; this file only
//! performs the hostcalls they ask for.
//!
//! Envoy and nginx differ in who may act on a paused request (docs/design.md,
//! "Hosts"): on Envoy the root resumes or answers it through the effective
//! context; ngx_wasm_module has no effective context and lets a request act
//! only from its own callbacks, so there the root *parks* its answer and the
//! request, which keeps a wait call to the nginx wait location in flight,
//! performs it when that call comes back. The root also never dispatches from
//! its own call-response callback on nginx (a crash there): such calls wait
//! for the next tick.

use super::host::{self, CallResponse, ProxyStore};
use super::login::{BodyAction, Handled, LoginGlue};
use super::metrics::Metrics;
use crate::config::{self, Config};
use crate::login::RequestView;
use crate::metrics::Counter;
use crate::reply::Rejection;
use crate::revalidation::{
    admit, Admission, DenyReason, FollowerDecision, IdpAnswer, IdpCall, Job, JobContext, LeadTicket,
    NonFatalReason, Outcome, Settled, Step, ValidationTimes, VmIdentity, Waiter, Waiters,
};
use crate::token::extract::cookie_header_without;
use crate::token::{extract_token, DownstreamClaims, TokenCache, TokenError, Verifier};
use proxy_wasm::hostcalls;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

pub type SharedVm = Rc<RefCell<Vm>>;

/// What the HTTP context returns to the host.
pub enum RequestAction {
    Continue,
    /// Waiting for a revalidation.
    Pause,
    /// A local reply was sent (the host forces a stop anyway).
    Replied,
}

/// How a wait call (nginx) ended.
#[derive(Clone, Copy, Debug)]
pub enum WaitOutcome {
    /// The wait location answered (any status).
    Answered,
    /// No answer: `timed_out` when ngx_wasm_module reports `:dispatch_status: timeout`.
    Failed { timed_out: bool },
}

/// Failed wait calls in a row a request survives (connection resets when the
/// worker is short of connections).
const MAX_WAIT_FAILURES: u32 = 3;

/// Verified tokens kept per VM (bounded; entries die with their token).
const TOKEN_CACHE_CAPACITY: usize = 4096;

/// nginx: an answer the root decided for a paused request, performed by that
/// request's next wait-call callback (login replies are parked by `LoginGlue`).
struct Parked {
    waiter: Waiter,
    decision: FollowerDecision,
}

/// A revalidation this VM leads, waiting for its IdP answer.
struct RunningJob {
    job: Job,
    sent_ns: u64,
}

pub struct Vm {
    cfg: Config,
    verifier: Verifier,
    cache: TokenCache,
    identity: VmIdentity,
    waiters: Waiters,
    /// Jobs by the callout token of their pending IdP call.
    jobs: HashMap<u32, RunningJob>,
    /// Leases won by requests, to be run from the next root callback (so the
    /// callouts belong to the root context, not to a request).
    to_start: Vec<LeadTicket>,
    metrics: Metrics,
    /// With a `login` section: the login endpoints and their IdP calls.
    login: Option<LoginGlue>,
    /// Page loads waiting for a revalidation (with login): a denial sends
    /// them to the IdP instead of a 401.
    paused_pages: HashMap<u32, RequestView>,
    /// vigil's cookies (session, login state, legacy names), removed before the upstream.
    own_cookies: Vec<String>,
    /// nginx: answers waiting for their request's next wait-call callback.
    parked: HashMap<u32, Parked>,
    /// nginx: wait calls in flight (callout token -> the request's context),
    /// and each waiting request's last-resort deadline.
    wait_calls: HashMap<u32, u32>,
    wait_deadlines: HashMap<u32, u64>,
    /// nginx: failed wait calls in a row, by request.
    wait_failures: HashMap<u32, u32>,
    /// nginx: true while the root's call-response callback runs, when calls
    /// must wait for the next tick (`deferred_jobs`).
    in_root_answer: bool,
    deferred_jobs: Vec<(Job, IdpCall)>,
}

impl Vm {
    /// Parse the configuration and set up this VM's queue and metrics.
    /// `Err` is the one log line naming the problem.
    pub fn configure(bytes: &[u8]) -> Result<Vm, String> {
        let cfg = config::parse(bytes, &|name| std::env::var(name).ok()).map_err(|e| e.to_string())?;
        host::set_nginx(cfg.nginx().is_some());
        let login = LoginGlue::configure(&cfg).transpose()?;
        let uid = host::random_u64().ok_or("the host's random source (WASI random_get) failed")?;
        let uid = format!("{uid:016x}");
        let queue_token = if cfg.wake_queues {
            let queue_name = format!("{}q:{}", cfg.shared_data_prefix, uid);
            let token = hostcalls::register_shared_queue(&queue_name)
                .map_err(|status| format!("cannot register shared queue {queue_name}: {status:?}"))?;
            Some(token)
        } else {
            None
        };
        Ok(Vm {
            verifier: Verifier::new(&cfg.downstream),
            cache: TokenCache::new(TOKEN_CACHE_CAPACITY),
            identity: VmIdentity { uid, queue_token },
            waiters: Waiters::new(),
            jobs: HashMap::new(),
            to_start: Vec::new(),
            metrics: Metrics::define(),
            login,
            paused_pages: HashMap::new(),
            parked: HashMap::new(),
            wait_calls: HashMap::new(),
            wait_deadlines: HashMap::new(),
            wait_failures: HashMap::new(),
            in_root_answer: false,
            deferred_jobs: Vec::new(),
            own_cookies: crate::login::cookies::own_cookie_names(&cfg),
            cfg,
        })
    }

    pub fn poll_interval(&self) -> Duration {
        self.cfg.poll_interval
    }

    // ---- request path --------------------------------------------------

    pub fn on_request(&mut self, context_id: u32, end_of_stream: bool) -> RequestAction {
        match self.request(context_id, end_of_stream) {
            RequestAction::Pause if self.cfg.nginx().is_some() => self.begin_wait(context_id),
            action => action,
        }
    }

    fn request(&mut self, context_id: u32, end_of_stream: bool) -> RequestAction {
        let now = host::now_ns();
        // Spoofed identity and session headers go first, whatever happens next
        // (any case, `_` for `-`: see `identity::spoofed_headers`).
        let identity = self.cfg.identity_headers.iter().map(|h| h.header.as_str());
        let configured: Vec<&str> = identity.chain(self.cfg.session_headers.names()).collect();
        let names = host::request_header_names();
        // Two copies of a header vigil sets, or cookies split over several
        // lines on nginx: refused. A client has no use for them, and
        // ngx_wasm_module replaces or blanks only one copy, so nginx would send
        // the other beside vigil's value.
        if let Some(name) = crate::identity::repeated_header(&configured, &names).or_else(|| repeated_cookie_lines(&names)) {
            log::debug!("vigil: refused a request with two {name} headers");
            send_reply(&Rejection::BadRequest("a header vigil sets appears more than once"));
            return RequestAction::Replied;
        }
        for name in crate::identity::spoofed_headers(configured.into_iter(), &names) {
            let _ = host::remove_request_header(&name);
        }
        // With login, the request is read once: routing and the reply to a
        // request without a session (redirect or 401) need it.
        let view = self.login.as_ref().map(|_| host::request_view());
        if let (Some(login), Some(req)) = (self.login.as_mut(), view.as_ref()) {
            if let Some(handled) = login.on_request(&self.cfg, &self.verifier, context_id, end_of_stream, req, now) {
                return match handled {
                    Handled::Replied => RequestAction::Replied,
                    Handled::RepliedAndQueued => {
                        self.kick();
                        RequestAction::Replied
                    }
                    Handled::WaitIdp => {
                        self.kick();
                        RequestAction::Pause
                    }
                    Handled::ReadBody => RequestAction::Continue,
                };
            }
        }
        let claims = match self.verified_claims(now) {
            Ok(claims) => claims,
            Err(rejection) => {
                self.metrics.bump(Counter::TokenInvalid);
                log::debug!("vigil: rejected request: {}", rejection.reason());
                self.reject(view.as_ref(), rejection, now);
                return RequestAction::Replied;
            }
        };
        let store = ProxyStore;
        match admit(&self.cfg, &store, &self.identity, &claims.sub, &claims.sid, claims.iat_ns, now) {
            Admission::Allow { claims: session_claims, times, warning } => {
                match warning {
                    Some(reason) => self.note_allowed_despite(reason),
                    None => self.metrics.bump(Counter::Skipped),
                }
                let identity = session_claims.unwrap_or_else(|| claims.to_value());
                self.set_upstream_headers(&identity, &times);
                RequestAction::Continue
            }
            Admission::Deny(reason) => {
                self.count_denial(reason);
                self.reject(view.as_ref(), rejection_for(reason), now);
                RequestAction::Replied
            }
            Admission::Lead(ticket) => {
                self.waiters.add(ticket.slot, waiter(context_id, &ticket.nonce, &claims.sub, ticket.seq_seen, ticket.deadline_ns));
                self.to_start.push(ticket);
                self.remember_page(context_id, view);
                self.kick();
                RequestAction::Pause
            }
            Admission::Follow(ticket) => {
                self.metrics.bump(Counter::Coalesced);
                self.waiters.add(ticket.slot, waiter(context_id, &ticket.nonce, &claims.sub, ticket.seq_seen, ticket.deadline_ns));
                self.remember_page(context_id, view);
                RequestAction::Pause
            }
        }
    }

    /// Token from the request, verified (cached per VM).
    fn verified_claims(&mut self, now: u64) -> Result<DownstreamClaims, Rejection> {
        let authorization = host::request_header(&self.cfg.downstream.header);
        let (cookie, _) = host::request_cookies();
        let authorization = match authorization.as_deref().map(std::str::from_utf8) {
            Some(Err(_)) => return Err(Rejection::InvalidToken(TokenError::MalformedHeader.reason())),
            Some(Ok(value)) => Some(value),
            None => None,
        };
        let cookie = cookie.as_deref();
        let token = match extract_token(authorization, cookie, &self.cfg.downstream.cookie_name) {
            Ok(Some(token)) => token,
            Ok(None) => return Err(Rejection::InvalidToken("missing token")),
            Err(e) => return Err(e.rejection()),
        };
        if let Some(claims) = self.cache.get(&token, now) {
            return Ok(claims);
        }
        let claims = self.verifier.verify(&token, now).map_err(|e| Rejection::InvalidToken(e.reason()))?;
        self.cache.insert(&token, claims.clone(), now);
        Ok(claims)
    }

    /// The request is allowed: the upstream gets the identity and session
    /// headers and never vigil's own credential (its Bearer header or session
    /// cookies), which it has no use for and which would let it act as the user.
    fn set_upstream_headers(&self, claims: &Value, times: &ValidationTimes) {
        if host::request_header(&self.cfg.downstream.header).is_some() {
            let _ = host::remove_request_header(&self.cfg.downstream.header);
        }
        // Every cookie line counts: a session cookie in a second line must not
        // slip past to the upstream.
        if let (Some(cookie), lines) = host::request_cookies() {
            let names: Vec<&str> = self.own_cookies.iter().map(String::as_str).collect();
            match cookie_header_without(&cookie, &names) {
                Some(kept) if kept == cookie && lines == 1 => {}
                kept => {
                    let _ = host::replace_all_request_lines("cookie", kept.as_deref());
                }
            }
        }
        for (name, value) in crate::identity::identity_headers(&self.cfg.identity_headers, claims) {
            let _ = host::set_request_header(&name, &value);
        }
        for (name, value) in crate::identity::session_headers(&self.cfg.session_headers, times) {
            let _ = host::set_request_header(&name, &value);
        }
    }

    /// Refuse a request without a valid session: with login, a page load
    /// is sent to the IdP; otherwise the rejection's 401.
    fn reject(&mut self, view: Option<&RequestView>, rejection: Rejection, now: u64) {
        match (self.login.as_mut(), view) {
            (Some(login), Some(req)) => host::send_local(&login.unauthenticated(&self.cfg, req, rejection, now)),
            _ => send_reply(&rejection),
        }
    }

    fn remember_page(&mut self, context_id: u32, view: Option<RequestView>) {
        if let Some(view) = view.filter(RequestView::is_page_load) {
            self.paused_pages.insert(context_id, view);
        }
    }

    /// A request body chunk (`body_size` is cumulative while buffering).
    pub fn on_request_body(&mut self, context_id: u32, body_size: usize, end_of_stream: bool) -> BodyAction {
        let now = host::now_ns();
        match self.login.as_mut() {
            Some(login) => login.on_request_body(&self.cfg, context_id, body_size, end_of_stream, now),
            None => BodyAction::Continue,
        }
    }

    /// Forget a request whose stream is gone.
    pub fn forget_stream(&mut self, context_id: u32) {
        self.parked.remove(&context_id);
        self.wait_deadlines.remove(&context_id);
        self.wait_failures.remove(&context_id);
        self.wait_calls.retain(|_, c| *c != context_id);
        self.waiters.remove(context_id);
        self.paused_pages.remove(&context_id);
        if let Some(login) = self.login.as_mut() {
            login.forget_stream(context_id);
        }
    }

    // ---- wake-ups --------------------------------------------------------

    /// Ask this VM's root to run soon: an async queue notification on Envoy;
    /// on hosts without notifications (nginx) the next tick does it.
    fn kick(&self) {
        if let Some(queue) = self.identity.queue_token {
            let _ = hostcalls::enqueue_shared_queue(queue, Some(b"k"));
        }
    }

    /// A tick (`queue = None`) or a queue notification: start the jobs won by
    /// requests, then re-read the record of every slot with waiters.
    pub fn on_wake(&mut self, queue: Option<u32>) {
        // Drain this VM's own queue (ticks too: nginx never notifies). The
        // messages only say "something changed"; the records say what.
        let _ = queue;
        if let Some(queue) = self.identity.queue_token {
            while let Ok(Some(_)) = hostcalls::dequeue_shared_queue(queue) {}
        }
        let now = host::now_ns();
        if let Some(login) = self.login.as_mut() {
            login.on_wake(&self.cfg, &self.identity.uid, &self.metrics, now);
        }
        for (job, call) in std::mem::take(&mut self.deferred_jobs) {
            self.drive(job, Step::Call(call), now);
        }
        for ticket in std::mem::take(&mut self.to_start) {
            self.start_job(ticket, now);
        }
        if !self.waiters.is_empty() {
            let settled = self.waiters.settle_all(&self.cfg, &ProxyStore, &self.identity, now);
            self.apply(settled, now);
        }
    }

    /// Answer settled waiters and start the jobs of leases taken over.
    fn apply(&mut self, settled: Settled, now: u64) {
        for (waiter, decision) in settled.answers {
            self.answer_waiter(&waiter, decision);
        }
        for ticket in settled.takeovers {
            self.start_job(ticket, now);
        }
    }

    fn answer_waiter(&mut self, waiter: &Waiter, decision: FollowerDecision) {
        if self.cfg.nginx().is_some() {
            // Only the request's own callback may act on it there.
            self.parked.insert(waiter.context_id, Parked { waiter: waiter.clone(), decision });
            return;
        }
        // The stream may be gone (client left): skip it quietly.
        if hostcalls::set_effective_context(waiter.context_id).is_err() {
            self.paused_pages.remove(&waiter.context_id);
            return;
        }
        self.perform_answer(waiter, decision);
    }

    /// Resume or answer `waiter`'s request; the current context must be its own.
    fn perform_answer(&mut self, waiter: &Waiter, decision: FollowerDecision) {
        let page = self.paused_pages.remove(&waiter.context_id);
        match decision {
            FollowerDecision::Resume { claims, times, warning } => {
                if let Some(reason) = warning {
                    self.note_allowed_despite(reason);
                }
                let identity = claims.unwrap_or_else(|| serde_json::json!({ "sub": waiter.sub }));
                self.set_upstream_headers(&identity, &times);
                let _ = hostcalls::resume_http_request();
            }
            FollowerDecision::Deny(reason) => {
                self.count_denial(reason);
                self.reject(page.as_ref(), rejection_for(reason), host::now_ns());
            }
            FollowerDecision::Timeout(verdict) => {
                self.metrics.bump(Counter::Timeouts);
                if let Some(page) = page {
                    self.paused_pages.insert(waiter.context_id, page);
                }
                self.perform_answer(waiter, verdict.into());
            }
            // Not produced for answers; kept waiting by `Waiters`.
            FollowerDecision::KeepWaiting | FollowerDecision::TakeOver(_) => {}
        }
    }

    // ---- the revalidation jobs this VM leads -------------------------------

    fn start_job(&mut self, ticket: LeadTicket, now: u64) {
        self.metrics.bump(Counter::Started);
        let (job, step) = {
            let rule_check = rule_check(&self.cfg);
            let ctx = JobContext { cfg: &self.cfg, vm: &self.identity, rule_check: &rule_check };
            Job::start(&ctx, ticket, &ProxyStore, now)
        };
        self.drive(job, step, now);
    }

    /// An IdP answer delivered to the root context.
    pub fn on_call_response(&mut self, token: u32, response: Option<CallResponse>) {
        self.in_root_answer = true;
        self.root_call_response(token, response);
        self.in_root_answer = false;
    }

    fn root_call_response(&mut self, token: u32, response: Option<CallResponse>) {
        let now = host::now_ns();
        let Some(RunningJob { mut job, sent_ns }) = self.jobs.remove(&token) else {
            let defer = self.defer_calls();
            if let Some(login) = self.login.as_mut() {
                login.on_call_response(&self.cfg, &self.identity.uid, &self.metrics, token, response, defer, now);
            }
            return;
        };
        self.metrics.idp_latency_ms(now.saturating_sub(sent_ns) / 1_000_000);
        let answer = match response {
            Some(r) => IdpAnswer::Response { status: r.status, headers: r.headers, body: r.body },
            None => IdpAnswer::Reset,
        };
        let step = {
            let rule_check = rule_check(&self.cfg);
            let ctx = JobContext { cfg: &self.cfg, vm: &self.identity, rule_check: &rule_check };
            job.on_answer(&ctx, &ProxyStore, now, answer)
        };
        self.drive(job, step, now);
    }

    /// Perform the job's next call, or publish its result.
    fn drive(&mut self, mut job: Job, mut step: Step, now: u64) {
        loop {
            match step {
                Step::Call(call) if self.defer_calls() => {
                    self.deferred_jobs.push((job, call));
                    return;
                }
                Step::Call(call) => match self.dispatch(&call) {
                    Ok(token) => {
                        self.jobs.insert(token, RunningJob { job, sent_ns: now });
                        return;
                    }
                    Err(()) => {
                        // The host refused the call (unknown cluster...):
                        // the IdP is unreachable, a non-fatal failure.
                        let rule_check = rule_check(&self.cfg);
                        let ctx = JobContext { cfg: &self.cfg, vm: &self.identity, rule_check: &rule_check };
                        step = job.on_answer(&ctx, &ProxyStore, now, IdpAnswer::Unreachable);
                    }
                },
                Step::Finished(finished) => {
                    self.count_outcome(finished.outcome, finished.refreshed);
                    // The result is in shared data: answer local waiters,
                    // then wake the other VMs that wait on this slot.
                    let settled = self.waiters.settle_slot(&self.cfg, &ProxyStore, &self.identity, finished.slot, now);
                    self.apply(settled, now);
                    let message = finished.slot.to_string();
                    for queue in finished.wake_queues {
                        if Some(queue) != self.identity.queue_token {
                            let _ = hostcalls::enqueue_shared_queue(queue, Some(message.as_bytes()));
                        }
                    }
                    return;
                }
            }
        }
    }

    fn dispatch(&self, call: &IdpCall) -> Result<u32, ()> {
        match host::dispatch(&self.cfg.idp.upstream, &call.headers, &call.body, call.timeout) {
            Ok(token) => Ok(token),
            Err(status) => {
                log::warn!("vigil: the host refused the IdP call to {}: {status:?}", self.cfg.idp.upstream);
                Err(())
            }
        }
    }

    /// On nginx a call made from the root's own call-response callback crashes
    /// the worker: such calls wait for the next tick.
    fn defer_calls(&self) -> bool {
        self.in_root_answer && self.cfg.nginx().is_some()
    }

    // ---- nginx: paused requests wait on their own calls ---------------------

    /// A request paused on nginx: keep one wait call in flight, so its own
    /// callback runs again (and ngx_wasm_module does not resume it by itself,
    /// which it does after a request's last call).
    fn begin_wait(&mut self, context_id: u32) -> RequestAction {
        // The last resort if no answer is ever parked: the longest a login
        // callback or a revalidation can take, plus slack.
        let bound = self.cfg.revalidate_timeout.saturating_mul(2) + Duration::from_secs(1);
        let deadline = host::now_ns().saturating_add(u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX));
        self.wait_deadlines.insert(context_id, deadline);
        match self.send_wait_call(context_id) {
            Ok(()) => RequestAction::Pause,
            Err(()) => {
                self.abandon_wait(context_id);
                RequestAction::Replied
            }
        }
    }

    fn send_wait_call(&mut self, context_id: u32) -> Result<(), ()> {
        let Some(nginx) = self.cfg.nginx() else { return Err(()) };
        let headers = [
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), nginx.wait_path.clone()),
            (":authority".to_string(), nginx.wait_upstream.clone()),
        ];
        // The wait location answers after about poll_interval; the timeout only
        // guards against a location that never answers.
        let timeout = self.cfg.poll_interval.saturating_mul(4) + Duration::from_secs(1);
        match host::dispatch(&nginx.wait_upstream, &headers, &[], timeout) {
            Ok(token) => {
                self.wait_calls.insert(token, context_id);
                Ok(())
            }
            Err(status) => {
                log::error!("vigil: cannot call the nginx wait location {}{}: {status:?}", nginx.wait_upstream, nginx.wait_path);
                Err(())
            }
        }
    }

    /// A request that can wait no longer: 503, and forget it.
    fn abandon_wait(&mut self, context_id: u32) {
        self.forget_stream(context_id);
        send_reply(&Rejection::Unavailable("waiting for the identity provider failed"));
    }

    /// A wait call came back to its request (`false`: not a wait call). The
    /// request performs what the root parked for it, else waits once more.
    pub fn on_wait_answer(&mut self, context_id: u32, token: u32, outcome: WaitOutcome) -> bool {
        if self.wait_calls.remove(&token).is_none() {
            return false;
        }
        let failures = match outcome {
            WaitOutcome::Answered => {
                self.wait_failures.remove(&context_id);
                0
            }
            WaitOutcome::Failed { .. } => {
                let n = self.wait_failures.entry(context_id).or_insert(0);
                *n += 1;
                *n
            }
        };
        if let Some(Parked { waiter, decision }) = self.parked.remove(&context_id) {
            self.wait_deadlines.remove(&context_id);
            self.perform_answer(&waiter, decision);
            return true;
        }
        if let Some(reply) = self.login.as_mut().and_then(|login| login.take_parked(context_id)) {
            self.wait_deadlines.remove(&context_id);
            host::send_local(&reply);
            return true;
        }
        let overdue = self.wait_deadlines.get(&context_id).is_none_or(|d| host::now_ns() >= *d);
        // A wait call that failed (connection reset under load) is tried again,
        // a few times; one that timed out is not: after two timed-out calls in a
        // row ngx_wasm_module aborts the worker on a local reply.
        let give_up = match outcome {
            WaitOutcome::Failed { timed_out: true } => true,
            WaitOutcome::Failed { timed_out: false } => failures > MAX_WAIT_FAILURES,
            WaitOutcome::Answered => false,
        };
        if give_up {
            log::error!("vigil: the nginx wait location failed {failures} time(s) in a row; check nginx.wait_upstream, the wait location and worker_connections");
        }
        if give_up || overdue || self.send_wait_call(context_id).is_err() {
            self.abandon_wait(context_id);
        }
        true
    }

    // ---- metrics and logs ------------------------------------------------

    fn count_outcome(&self, outcome: Outcome, refreshed: bool) {
        if refreshed {
            self.metrics.bump(Counter::Refreshes);
        }
        match outcome {
            Outcome::Success => self.metrics.bump(Counter::Succeeded),
            Outcome::Fatal(reason) => {
                self.metrics.bump(Counter::Fatal);
                self.metrics.bump(Counter::Revocations);
                log::warn!("vigil: revalidation fatal ({}): subject revoked, session ended", reason.as_str());
            }
            Outcome::NonFatal(reason) => {
                if reason == NonFatalReason::Timeout {
                    self.metrics.bump(Counter::Timeouts);
                }
                // Under `deny` the job revoked the subject: its waiters then see
                // the session ended, so the denial is counted here, once.
                if self.cfg.on_failure == config::FailurePolicy::Deny {
                    self.metrics.bump(Counter::NonFatalDenied);
                    self.metrics.bump(Counter::Revocations);
                }
                log::warn!("vigil: revalidation non-fatal failure ({})", reason.as_str());
            }
            Outcome::LeaseLost => log::info!("vigil: revalidation lease lost; the current holder answers"),
        }
    }

    fn note_allowed_despite(&self, reason: NonFatalReason) {
        self.metrics.bump(Counter::NonFatalAllowed);
        log::warn!("vigil: allowing request despite a non-fatal revalidation failure ({})", reason.as_str());
    }

    fn count_denial(&self, reason: DenyReason) {
        let counter = match reason {
            DenyReason::Revoked | DenyReason::SessionEnded => Counter::Revoked,
            DenyReason::NoSession => Counter::NoSession,
            DenyReason::Stale | DenyReason::Failed(_) => Counter::NonFatalDenied,
        };
        self.metrics.bump(counter);
    }
}

/// nginx: `Some("cookie")` when the request splits its cookies over several
/// lines (RFC 6265 forbids it for HTTP/1.1; nginx joins HTTP/2's): nginx could
/// not be made to forward vigil's filtered cookies alone (`host::replace_all_request_lines`).
fn repeated_cookie_lines(names: &[String]) -> Option<&'static str> {
    let lines = names.iter().filter(|n| n.eq_ignore_ascii_case("cookie")).count();
    (host::is_nginx() && lines > 1).then_some("cookie")
}

fn waiter(context_id: u32, nonce: &str, sub: &str, seq_seen: u64, deadline_ns: u64) -> Waiter {
    Waiter { context_id, nonce: nonce.to_string(), sub: sub.to_string(), seq_seen, deadline_ns }
}

fn rule_check(cfg: &Config) -> impl Fn(&Value) -> Result<(), String> + '_ {
    move |claims: &Value| crate::rules::check_rules(&cfg.rules, claims).map_err(|v| v.reason().to_string())
}

fn rejection_for(reason: DenyReason) -> Rejection {
    match reason {
        DenyReason::Revoked => Rejection::Revoked,
        DenyReason::NoSession => Rejection::NoSession,
        DenyReason::SessionEnded => Rejection::SessionEnded("the identity provider ended the session"),
        DenyReason::Stale => Rejection::RevalidationFailed("the session could not be revalidated for too long"),
        DenyReason::Failed(reason) => Rejection::RevalidationFailed(reason.as_str()),
    }
}

fn send_reply(rejection: &Rejection) {
    host::send_local(&rejection.to_reply());
}
