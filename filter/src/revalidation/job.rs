//! One revalidation run by the lease holder: refresh when needed, userinfo,
//! rules, and the final cas write. The adapter performs the calls the job
//! asks for (on the root context) and feeds the answers back; it then wakes
//! local waiters (`Waiters::settle_slot`) and enqueues the slot number on
//! every queue in `Finished::wake_queues`.
//!
//! Order of writes: a refresh answer is stored as soon as it arrives (the
//! old refresh token is dead at the IdP from that moment); the result is
//! written before anyone is woken; a fatal result revokes the subject before
//! the session is marked dead.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use super::admission::{LeadTicket, VmIdentity};
use super::classify::{
    classify_token_answer, classify_userinfo_answer, Class, FatalReason, IdpAnswer, NonFatalReason,
    TokenGrant,
};
use super::policy::nanos;
use crate::config::{ClientAuth, Config, FailurePolicy};
use crate::session::{
    read_session, revoke_subject, session_key, update_session, Change, Failure, Session,
    SessionError,
};
use crate::store::SharedStore;

/// The authorization rules check on fresh userinfo claims
/// (`rules::check_rules` wrapped by the adapter); `Err` carries a
/// secret-free description for the log.
pub type RuleCheck<'a> = dyn Fn(&Value) -> Result<(), String> + 'a;

/// What the job needs from its surroundings on every step.
pub struct JobContext<'a> {
    pub cfg: &'a Config,
    pub vm: &'a VmIdentity,
    pub rule_check: &'a RuleCheck<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Refresh,
    Userinfo,
}

/// One `dispatch_http_call` to `cfg.idp.upstream`. Debug omits headers and
/// body (they carry the client secret and tokens).
#[derive(Clone, PartialEq, Eq)]
pub struct IdpCall {
    pub kind: CallKind,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The job's remaining budget.
    pub timeout: Duration,
}

impl std::fmt::Debug for IdpCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpCall")
            .field("kind", &self.kind)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Fatal(FatalReason),
    /// Under `allow` recorded as a failure; under `deny` the subject was
    /// revoked and the session ended.
    NonFatal(NonFatalReason),
    /// The lease was taken over or the session ended meanwhile: nothing was
    /// written except rotated tokens; the current holder answers.
    LeaseLost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub outcome: Outcome,
    pub slot: u32,
    /// Queue tokens of other VMs with waiters: enqueue the slot number
    /// (decimal) on each.
    pub wake_queues: Vec<u32>,
    /// A refresh happened in this run (metrics).
    pub refreshed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Call(IdpCall),
    Finished(Finished),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Waiting for the token endpoint; the refresh token sent.
    Refresh {
        sent: String,
    },
    /// Waiting for userinfo; the access token sent.
    Userinfo {
        sent: String,
    },
    Done,
}

/// The state of one run. Debug prints no token.
#[derive(Clone)]
pub struct Job {
    ticket: LeadTicket,
    phase: Phase,
    /// The rotation race guard retries at most once per run.
    retried: bool,
    refreshed: bool,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = match self.phase {
            Phase::Refresh { .. } => "refresh",
            Phase::Userinfo { .. } => "userinfo",
            Phase::Done => "done",
        };
        f.debug_struct("Job")
            .field("slot", &self.ticket.slot)
            .field("job", &self.ticket.job)
            .field("phase", &phase)
            .finish()
    }
}

impl Job {
    /// Starts the run for a lease just taken (`Admission::Lead` or
    /// `FollowerDecision::TakeOver`).
    pub fn start(
        ctx: &JobContext,
        ticket: LeadTicket,
        store: &dyn SharedStore,
        now_ns: u64,
    ) -> (Job, Step) {
        let mut job = Job {
            ticket,
            phase: Phase::Done,
            retried: false,
            refreshed: false,
        };
        let step = match job.read_own(ctx, store, now_ns) {
            None => job.finish(Outcome::LeaseLost, Vec::new()),
            Some(_) if now_ns >= job.ticket.deadline_ns => {
                job.finish_non_fatal(ctx, store, NonFatalReason::Timeout, now_ns)
            }
            Some(record) => job.plan(ctx, store, &record, now_ns),
        };
        (job, step)
    }

    pub fn slot(&self) -> u32 {
        self.ticket.slot
    }

    pub fn ticket(&self) -> &LeadTicket {
        &self.ticket
    }

    /// Which call the job waits for (`None` once finished).
    pub fn waiting_for(&self) -> Option<CallKind> {
        match self.phase {
            Phase::Refresh { .. } => Some(CallKind::Refresh),
            Phase::Userinfo { .. } => Some(CallKind::Userinfo),
            Phase::Done => None,
        }
    }

    /// Feeds the answer to the call last returned. An answer at or after the
    /// deadline counts as `Timeout` (a refresh it carries is still stored).
    pub fn on_answer(
        &mut self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        now_ns: u64,
        answer: IdpAnswer,
    ) -> Step {
        let late = now_ns >= self.ticket.deadline_ns;
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Done => self.finish(Outcome::LeaseLost, Vec::new()),
            Phase::Refresh { sent } => {
                let class = classify_token_answer(&answer);
                if late {
                    if let Class::Ok(grant) = &class {
                        let _ = self.store_grant(ctx, store, grant, now_ns);
                    }
                    return self.finish_non_fatal(ctx, store, NonFatalReason::Timeout, now_ns);
                }
                self.on_refresh(ctx, store, now_ns, &sent, class)
            }
            Phase::Userinfo { sent } => {
                if late {
                    return self.finish_non_fatal(ctx, store, NonFatalReason::Timeout, now_ns);
                }
                let class = classify_userinfo_answer(&answer, &self.ticket.sub);
                self.on_userinfo(ctx, store, now_ns, &sent, class)
            }
        }
    }

    fn on_refresh(
        &mut self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        now_ns: u64,
        sent: &str,
        class: Class<TokenGrant>,
    ) -> Step {
        match class {
            Class::Ok(grant) => match self.store_grant(ctx, store, &grant, now_ns) {
                Ok(true) => {
                    self.refreshed = true;
                    self.userinfo_call(ctx, grant.access_token, now_ns)
                }
                Ok(false) => self.finish(Outcome::LeaseLost, Vec::new()),
                Err(reason) => self.finish_non_fatal(ctx, store, reason, now_ns),
            },
            Class::Fatal(FatalReason::InvalidGrant) => {
                // The rotation race: another VM redeemed and stored a newer
                // refresh token since this one was read.
                let changed = |r: &Session| r.refresh_token.as_deref() != Some(sent);
                self.retry_if_changed(ctx, store, now_ns, changed)
                    .unwrap_or_else(|| {
                        self.finish_fatal(ctx, store, FatalReason::InvalidGrant, now_ns)
                    })
            }
            Class::Fatal(reason) => self.finish_fatal(ctx, store, reason, now_ns),
            Class::NonFatal(reason) => self.finish_non_fatal(ctx, store, reason, now_ns),
        }
    }

    fn on_userinfo(
        &mut self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        now_ns: u64,
        sent: &str,
        class: Class<Value>,
    ) -> Step {
        match class {
            Class::Ok(claims) => match (ctx.rule_check)(&claims) {
                Ok(()) => self.finish_success(ctx, store, claims, now_ns),
                Err(_) => self.finish_fatal(ctx, store, FatalReason::RuleViolation, now_ns),
            },
            Class::Fatal(
                reason @ (FatalReason::UserinfoUnauthorized | FatalReason::UserinfoForbidden),
            ) => {
                // Same race for access tokens: IdPs may revoke the old access
                // token when another VM refreshed.
                let changed = |r: &Session| r.access_token != sent;
                self.retry_if_changed(ctx, store, now_ns, changed)
                    .unwrap_or_else(|| self.finish_fatal(ctx, store, reason, now_ns))
            }
            Class::Fatal(reason) => self.finish_fatal(ctx, store, reason, now_ns),
            Class::NonFatal(reason) => self.finish_non_fatal(ctx, store, reason, now_ns),
        }
    }

    /// Re-plans from the stored record once per run when `changed` says the
    /// credential this job sent is no longer the stored one.
    fn retry_if_changed(
        &mut self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        now_ns: u64,
        changed: impl Fn(&Session) -> bool,
    ) -> Option<Step> {
        if self.retried {
            return None;
        }
        let Some(record) = self.read_own(ctx, store, now_ns) else {
            return Some(self.finish(Outcome::LeaseLost, Vec::new()));
        };
        if !changed(&record) {
            return None;
        }
        self.retried = true;
        Some(self.plan(ctx, store, &record, now_ns))
    }

    /// Refresh if the access token is (nearly) expired and a refresh token
    /// exists; fatal if expired without one; else userinfo.
    fn plan(
        &mut self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        record: &Session,
        now_ns: u64,
    ) -> Step {
        let margin = nanos(ctx.cfg.refresh_margin);
        if record.access_expires_ns <= now_ns.saturating_add(margin) {
            if let Some(refresh_token) = record.refresh_token.clone() {
                let late_window = match self.hold_for_refresh(ctx, store, now_ns) {
                    Ok(true) => ctx.cfg.revalidate_timeout,
                    Ok(false) => return self.finish(Outcome::LeaseLost, Vec::new()),
                    // Not recorded: the call must end by the deadline, as a
                    // takeover may follow it.
                    Err(_) => Duration::ZERO,
                };
                return self.refresh_call(ctx, refresh_token, now_ns, late_window);
            }
            if record.access_expires_ns <= now_ns {
                return self.finish_fatal(ctx, store, FatalReason::NoRefreshToken, now_ns);
            }
        }
        self.userinfo_call(ctx, record.access_token.clone(), now_ns)
    }

    /// The refresh call may answer up to one more `revalidate_timeout` after
    /// the deadline: waiters are answered at the deadline, but a late answer
    /// still carries the rotated refresh token, and dropping it would make
    /// the next attempt present a spent token (the IdP would revoke the
    /// grant: a healthy user logged out). The lease is held meanwhile.
    fn hold_for_refresh(
        &self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        now_ns: u64,
    ) -> Result<bool, SessionError> {
        let hold = self
            .ticket
            .deadline_ns
            .saturating_add(nanos(ctx.cfg.revalidate_timeout));
        update_session(store, &self.key(ctx), |current| {
            let Some(mut record) = current.filter(|r| self.owns(ctx, r, now_ns)) else {
                return Change::Keep(false);
            };
            if let Some(lease) = record.lease.as_mut() {
                lease.hold_ns = hold;
            }
            Change::Write(record, true)
        })
    }

    fn remaining(&self, now_ns: u64) -> Duration {
        Duration::from_nanos(self.ticket.deadline_ns.saturating_sub(now_ns))
            .max(Duration::from_millis(1))
    }

    fn refresh_call(
        &mut self,
        ctx: &JobContext,
        refresh_token: String,
        now_ns: u64,
        late_window: Duration,
    ) -> Step {
        let idp = &ctx.cfg.idp;
        let endpoint = &idp.token_endpoint;
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token");
        form.append_pair("refresh_token", &refresh_token);
        let mut headers = pseudo_headers("POST", endpoint);
        headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        headers.push(("accept".into(), "application/json".into()));
        match idp.client_auth {
            ClientAuth::SecretBasic => {
                // RFC 6749 §2.3.1: each part form-url-encoded, then Basic.
                let user: String =
                    form_urlencoded::byte_serialize(idp.client_id.as_bytes()).collect();
                let pass: String =
                    form_urlencoded::byte_serialize(idp.client_secret.as_bytes()).collect();
                let basic = STANDARD.encode(format!("{user}:{pass}"));
                headers.push(("authorization".into(), format!("Basic {basic}")));
            }
            ClientAuth::SecretPost => {
                form.append_pair("client_id", &idp.client_id);
                form.append_pair("client_secret", &idp.client_secret);
            }
        }
        let body = form.finish().into_bytes();
        self.phase = Phase::Refresh {
            sent: refresh_token,
        };
        Step::Call(IdpCall {
            kind: CallKind::Refresh,
            headers,
            body,
            timeout: self.remaining(now_ns) + late_window,
        })
    }

    fn userinfo_call(&mut self, ctx: &JobContext, access_token: String, now_ns: u64) -> Step {
        let mut headers = pseudo_headers("GET", &ctx.cfg.idp.userinfo_endpoint);
        headers.push(("accept".into(), "application/json".into()));
        headers.push(("authorization".into(), format!("Bearer {access_token}")));
        self.phase = Phase::Userinfo { sent: access_token };
        Step::Call(IdpCall {
            kind: CallKind::Userinfo,
            headers,
            body: Vec::new(),
            timeout: self.remaining(now_ns),
        })
    }

    fn key(&self, ctx: &JobContext) -> String {
        session_key(&ctx.cfg.shared_data_prefix, self.ticket.slot)
    }

    fn owns(&self, ctx: &JobContext, record: &Session, now_ns: u64) -> bool {
        record.is_usable(now_ns)
            && record.nonce == self.ticket.nonce
            && record
                .lease
                .as_ref()
                .is_some_and(|l| l.is_held_by(&ctx.vm.uid, self.ticket.job))
    }

    /// The record, if this run still holds its lease.
    fn read_own(&self, ctx: &JobContext, store: &dyn SharedStore, now_ns: u64) -> Option<Session> {
        read_session(store, &self.key(ctx))
            .map(|(r, _)| r)
            .filter(|r| self.owns(ctx, r, now_ns))
    }

    /// Stores a refresh answer. Tokens are the truth whoever holds the lease,
    /// so only the session's identity is checked. `Ok(still leading)`.
    fn store_grant(
        &self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        grant: &TokenGrant,
        now_ns: u64,
    ) -> Result<bool, NonFatalReason> {
        let expires_ns = match grant.expires_in_s {
            Some(seconds) => now_ns.saturating_add(seconds.saturating_mul(1_000_000_000)),
            // Unknown lifetime: refresh again at the next revalidation.
            None => now_ns.saturating_add(nanos(ctx.cfg.revalidate_interval)),
        };
        update_session(store, &self.key(ctx), |current| {
            let Some(mut record) =
                current.filter(|r| r.is_usable(now_ns) && r.nonce == self.ticket.nonce)
            else {
                return Change::Keep(false);
            };
            let leading = self.owns(ctx, &record, now_ns);
            record.access_token = grant.access_token.clone();
            record.access_expires_ns = expires_ns;
            if let Some(rotated) = &grant.refresh_token {
                record.refresh_token = Some(rotated.clone());
            }
            Change::Write(record, leading)
        })
        .map_err(|_| NonFatalReason::StoreContention)
    }

    fn finish(&mut self, outcome: Outcome, wake_queues: Vec<u32>) -> Step {
        self.phase = Phase::Done;
        Step::Finished(Finished {
            outcome,
            slot: self.ticket.slot,
            wake_queues,
            refreshed: self.refreshed,
        })
    }

    /// Writes the result if this run still holds the lease: `write` edits
    /// the record; seq advances and the lease is released. Returns the
    /// waiters' queues, or `None` when the lease was lost.
    fn write_result(
        &self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        now_ns: u64,
        write: impl Fn(&mut Session),
    ) -> Result<Option<Vec<u32>>, NonFatalReason> {
        update_session(store, &self.key(ctx), |current| {
            let Some(mut record) = current.filter(|r| self.owns(ctx, r, now_ns)) else {
                return Change::Keep(None);
            };
            let mut queues = record.lease.take().map(|l| l.waiters).unwrap_or_default();
            queues.retain(|q| Some(*q) != ctx.vm.queue_token);
            record.attempt_ns = now_ns;
            record.seq = record.seq.wrapping_add(1);
            write(&mut record);
            Change::Write(record, Some(queues))
        })
        .map_err(|_| NonFatalReason::StoreContention)
    }

    fn finish_written(
        &mut self,
        outcome: Outcome,
        written: Result<Option<Vec<u32>>, NonFatalReason>,
    ) -> Step {
        match written {
            Ok(Some(queues)) => self.finish(outcome, queues),
            Ok(None) => self.finish(Outcome::LeaseLost, Vec::new()),
            // The lease stays until its deadline; waiters time out or take over.
            Err(_) => self.finish(outcome, Vec::new()),
        }
    }

    fn finish_success(
        &mut self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        claims: Value,
        now_ns: u64,
    ) -> Step {
        let written = self.write_result(ctx, store, now_ns, |record| {
            record.validated_ns = now_ns;
            record.failure = None;
            record.claims = Some(claims.clone());
        });
        self.finish_written(Outcome::Success, written)
    }

    fn finish_non_fatal(
        &mut self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        reason: NonFatalReason,
        now_ns: u64,
    ) -> Step {
        if ctx.cfg.on_failure == FailurePolicy::Deny {
            return self.end_session(
                ctx,
                store,
                reason.as_str(),
                Outcome::NonFatal(reason),
                now_ns,
            );
        }
        let written = self.write_result(ctx, store, now_ns, |record| {
            record.failure = Some(Failure {
                class: reason.as_str().to_owned(),
                at_ns: now_ns,
            });
        });
        self.finish_written(Outcome::NonFatal(reason), written)
    }

    fn finish_fatal(
        &mut self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        reason: FatalReason,
        now_ns: u64,
    ) -> Step {
        self.end_session(ctx, store, reason.as_str(), Outcome::Fatal(reason), now_ns)
    }

    /// Revokes the subject, then marks the session dead. A failed revocation
    /// still ends the session (its tokens then find no session: 401).
    fn end_session(
        &mut self,
        ctx: &JobContext,
        store: &dyn SharedStore,
        class: &str,
        outcome: Outcome,
        now_ns: u64,
    ) -> Step {
        if self.read_own(ctx, store, now_ns).is_none() {
            return self.finish(Outcome::LeaseLost, Vec::new());
        }
        let _ = revoke_subject(store, ctx.cfg, &self.ticket.sub, now_ns);
        let written = self.write_result(ctx, store, now_ns, |record| record.kill(class, now_ns));
        self.finish_written(outcome, written)
    }
}

fn pseudo_headers(method: &str, endpoint: &crate::config::Endpoint) -> Vec<(String, String)> {
    vec![
        (":method".into(), method.into()),
        (":path".into(), endpoint.path.clone()),
        (":authority".into(), endpoint.authority.clone()),
        (":scheme".into(), endpoint.scheme.clone()),
    ]
}
