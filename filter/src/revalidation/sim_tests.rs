//! Simulations: several VMs sharing one MemoryStore, driven the way the
//! adapter drives the pure API (admit, Job, Waiters, queues, ticks), with a
//! seeded PRNG choosing arrival times and IdP latencies.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::Value;

use super::testing::{login_alice, seq_random, test_config, ScriptedIdp, SECOND};
use super::*;
use crate::config::Config;
use crate::session::{read_session, session_key};
use crate::store::MemoryStore;

const MS: u64 = 1_000_000;
const T0: u64 = 5_000 * SECOND;
const DUE: u64 = T0 + 61 * SECOND;

fn allow_all(_: &Value) -> Result<(), String> {
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Allowed(Option<NonFatalReason>),
    Denied(DenyReason),
}

enum Event {
    Arrive {
        vm: usize,
        context_id: u32,
    },
    IdpAnswer {
        vm: usize,
        job: usize,
        answer: IdpAnswer,
    },
    Queue {
        vm: usize,
        slot: u32,
    },
    Tick {
        vm: usize,
    },
}

struct Vm {
    id: VmIdentity,
    waiters: Waiters,
    jobs: Vec<Option<Job>>,
    alive: bool,
}

struct Sim {
    cfg: Config,
    store: MemoryStore,
    idp: ScriptedIdp,
    vms: Vec<Vm>,
    sid: String,
    now: u64,
    random: Box<dyn FnMut() -> u64>,
    events: Vec<(u64, u64, Event)>,
    order: u64,
    answers: BTreeMap<u32, Answer>,
    pending: usize,
    /// IdP latency range in ms, and whether it never answers.
    latency_ms: (u64, u64),
}

impl Sim {
    fn new(seed: u64, vms: usize, access_expires_ns: u64) -> Self {
        let cfg = test_config();
        let store = MemoryStore::new();
        let mut random = seq_random(seed);
        let created = login_alice(&store, &cfg, &mut random, access_expires_ns, T0);
        let vms = (0..vms)
            .map(|i| Vm {
                id: VmIdentity {
                    uid: format!("{:016x}", random()),
                    queue_token: Some(100 + i as u32),
                },
                waiters: Waiters::new(),
                jobs: Vec::new(),
                alive: true,
            })
            .collect();
        Self {
            cfg,
            store,
            idp: ScriptedIdp::new("alice", "rt-0", "at-0"),
            vms,
            sid: created.sid,
            now: T0,
            random: Box::new(random),
            events: Vec::new(),
            order: 0,
            answers: BTreeMap::new(),
            pending: 0,
            latency_ms: (2, 30),
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        (self.random)() % n.max(1)
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.order += 1;
        // A random tie-break interleaves same-instant events differently per seed.
        let tie = (self.random)() >> 32 << 20 | self.order;
        self.events.push((at, tie, event));
    }

    fn arrive(&mut self, vm: usize, context_id: u32, at: u64) {
        self.pending += 1;
        self.schedule(at, Event::Arrive { vm, context_id });
    }

    /// `count` requests on random VMs of `vms`, at random times in
    /// `[start, start + spread)`.
    fn arrive_many(&mut self, count: u32, vms: std::ops::Range<usize>, start: u64, spread: u64) {
        for context_id in 0..count {
            let vm = vms.start + self.below((vms.end - vms.start) as u64) as usize;
            let at = start + self.below(spread);
            self.arrive(vm, context_id, at);
        }
    }

    fn answer(&mut self, context_id: u32, answer: Answer) {
        let previous = self.answers.insert(context_id, answer);
        assert!(previous.is_none(), "request {context_id} answered twice");
        self.pending -= 1;
    }

    fn verdict_answer(verdict: Verdict) -> Answer {
        match verdict {
            Verdict::Allow { warning, .. } => Answer::Allowed(warning),
            Verdict::Deny(reason) => Answer::Denied(reason),
        }
    }

    fn ctx<'a>(cfg: &'a Config, vm: &'a VmIdentity) -> JobContext<'a> {
        JobContext {
            cfg,
            vm,
            rule_check: &allow_all,
        }
    }

    fn start_job(&mut self, vm: usize, ticket: LeadTicket) {
        let (job, step) = Job::start(
            &Self::ctx(&self.cfg, &self.vms[vm].id),
            ticket,
            &self.store,
            self.now,
        );
        self.vms[vm].jobs.push(Some(job));
        let index = self.vms[vm].jobs.len() - 1;
        self.on_step(vm, index, step);
    }

    fn on_step(&mut self, vm: usize, job: usize, step: Step) {
        match step {
            Step::Call(call) => {
                let answer = self.idp.answer(&call);
                let (low, high) = self.latency_ms;
                let latency = (low + self.below(high - low + 1)) * MS;
                let budget = u64::try_from(call.timeout.as_nanos()).unwrap();
                let (at, answer) = if latency >= budget {
                    (self.now + budget, IdpAnswer::Timeout)
                } else {
                    (self.now + latency, answer)
                };
                self.schedule(at, Event::IdpAnswer { vm, job, answer });
            }
            Step::Finished(finished) => {
                self.vms[vm].jobs[job] = None;
                for queue in finished.wake_queues {
                    let target = self
                        .vms
                        .iter()
                        .position(|v| v.id.queue_token == Some(queue))
                        .unwrap();
                    let delay = self.below(MS);
                    self.schedule(
                        self.now + delay,
                        Event::Queue {
                            vm: target,
                            slot: finished.slot,
                        },
                    );
                }
                self.settle(vm, Some(finished.slot));
            }
        }
    }

    fn settle(&mut self, vm: usize, slot: Option<u32>) {
        let v = &mut self.vms[vm];
        let settled = match slot {
            Some(slot) => v
                .waiters
                .settle_slot(&self.cfg, &self.store, &v.id, slot, self.now),
            None => v
                .waiters
                .settle_all(&self.cfg, &self.store, &v.id, self.now),
        };
        for (waiter, decision) in settled.answers {
            let answer = match decision {
                FollowerDecision::Resume { warning, .. } => Answer::Allowed(warning),
                FollowerDecision::Deny(reason) => Answer::Denied(reason),
                FollowerDecision::Timeout(verdict) => Self::verdict_answer(verdict),
                other => panic!("not an answer: {other:?}"),
            };
            self.answer(waiter.context_id, answer);
        }
        for ticket in settled.takeovers {
            self.start_job(vm, ticket);
        }
    }

    fn on_arrive(&mut self, vm: usize, context_id: u32) {
        let admission = admit(
            &self.cfg,
            &self.store,
            &self.vms[vm].id,
            "alice",
            &self.sid,
            T0,
            self.now,
        );
        let waiter = |nonce: String, seq_seen, deadline_ns| Waiter {
            context_id,
            nonce,
            sub: "alice".into(),
            seq_seen,
            deadline_ns,
        };
        match admission {
            Admission::Allow { warning, .. } => self.answer(context_id, Answer::Allowed(warning)),
            Admission::Deny(reason) => self.answer(context_id, Answer::Denied(reason)),
            Admission::Follow(t) => {
                self.vms[vm]
                    .waiters
                    .add(t.slot, waiter(t.nonce, t.seq_seen, t.deadline_ns));
            }
            Admission::Lead(t) => {
                let w = waiter(t.nonce.clone(), t.seq_seen, t.deadline_ns);
                self.vms[vm].waiters.add(t.slot, w);
                self.start_job(vm, t);
            }
        }
    }

    /// Runs until every request is answered (ticks keep the VMs polling).
    fn run(&mut self) {
        for vm in 0..self.vms.len() {
            let phase = self.below(self.cfg.poll_interval.as_nanos() as u64);
            self.schedule(self.now + phase, Event::Tick { vm });
        }
        let mut steps = 0;
        while self.pending > 0
            || self
                .events
                .iter()
                .any(|(_, _, e)| matches!(e, Event::Arrive { .. }))
        {
            steps += 1;
            assert!(steps < 1_000_000, "simulation does not converge");
            let next = (0..self.events.len())
                .min_by_key(|i| (self.events[*i].0, self.events[*i].1))
                .unwrap();
            let (at, _, event) = self.events.swap_remove(next);
            self.now = self.now.max(at);
            match event {
                Event::Arrive { vm, context_id } => self.on_arrive(vm, context_id),
                Event::IdpAnswer { vm, job, answer } => {
                    if !self.vms[vm].alive {
                        continue;
                    }
                    let Some(mut j) = self.vms[vm].jobs[job].take() else {
                        continue;
                    };
                    let step = j.on_answer(
                        &Self::ctx(&self.cfg, &self.vms[vm].id),
                        &self.store,
                        self.now,
                        answer,
                    );
                    self.vms[vm].jobs[job] = Some(j);
                    self.on_step(vm, job, step);
                }
                Event::Queue { vm, slot } => {
                    if self.vms[vm].alive {
                        self.settle(vm, Some(slot));
                    }
                }
                Event::Tick { vm } => {
                    if self.vms[vm].alive {
                        self.settle(vm, None);
                        let period = self.cfg.poll_interval.as_nanos() as u64;
                        self.schedule(self.now + period, Event::Tick { vm });
                    }
                }
            }
        }
    }

    fn record(&self) -> crate::session::Session {
        let slot: u32 = self.sid.split_once('.').unwrap().0.parse().unwrap();
        read_session(&self.store, &session_key("vigil:", slot))
            .unwrap()
            .0
    }
}

#[test]
fn two_hundred_concurrent_requests_over_four_vms_make_one_refresh_and_one_userinfo() {
    for seed in 1..=20 {
        // The access token is expiring, so the revalidation must refresh.
        let mut sim = Sim::new(seed, 4, DUE + 5 * SECOND);
        sim.arrive_many(200, 0..4, DUE, 60 * MS);
        sim.run();
        assert_eq!(
            (sim.idp.refresh_calls, sim.idp.userinfo_calls),
            (1, 1),
            "seed {seed}"
        );
        assert!(!sim.idp.grant_revoked);
        assert_eq!(sim.answers.len(), 200);
        assert!(
            sim.answers.values().all(|a| *a == Answer::Allowed(None)),
            "seed {seed}: {:?}",
            sim.answers
        );
        let record = sim.record();
        assert_eq!((record.seq, record.lease.is_none()), (1, true));
        assert_eq!(record.refresh_token.as_deref(), Some("rt-1"));
        assert!(sim.vms.iter().all(|v| v.waiters.is_empty()));
    }
}

#[test]
fn without_the_lease_four_vms_would_present_the_refresh_token_twice() {
    // Control experiment: the scripted IdP does punish a second redemption.
    let mut idp = ScriptedIdp::new("alice", "rt-0", "at-0");
    let call = IdpCall {
        kind: CallKind::Refresh,
        headers: vec![],
        body: b"grant_type=refresh_token&refresh_token=rt-0".to_vec(),
        timeout: std::time::Duration::from_secs(1),
    };
    assert!(matches!(
        idp.answer(&call),
        IdpAnswer::Response { status: 200, .. }
    ));
    assert!(matches!(
        idp.answer(&call),
        IdpAnswer::Response { status: 400, .. }
    ));
    assert!(idp.grant_revoked);
}

#[test]
fn a_dead_leaders_lease_is_taken_over_after_its_deadline() {
    for seed in 1..=5 {
        let mut sim = Sim::new(100 + seed, 4, DUE + 5 * SECOND);
        sim.now = DUE;
        // VM 0 takes the lease and crashes before its call leaves.
        assert!(matches!(
            admit(
                &sim.cfg,
                &sim.store,
                &sim.vms[0].id,
                "alice",
                &sim.sid,
                T0,
                DUE
            ),
            Admission::Lead(_)
        ));
        sim.vms[0].alive = false;
        sim.arrive_many(40, 1..4, DUE + SECOND, SECOND);
        sim.run();
        assert_eq!(
            (sim.idp.refresh_calls, sim.idp.userinfo_calls),
            (1, 1),
            "seed {seed}"
        );
        assert_eq!(sim.answers.len(), 40);
        assert!(
            sim.answers.values().all(|a| *a == Answer::Allowed(None)),
            "{:?}",
            sim.answers
        );
        let record = sim.record();
        assert!(record.validated_ns >= DUE + 10 * SECOND + 50 * MS);
        assert_eq!((record.seq, record.lease), (1, None));
    }
}

#[test]
fn a_hanging_idp_answers_every_waiter_by_its_deadline_under_allow() {
    let mut sim = Sim::new(7, 4, DUE + 600 * SECOND);
    sim.latency_ms = (20_000, 20_000);
    sim.arrive_many(50, 0..4, DUE, 100 * MS);
    sim.run();
    assert_eq!(sim.idp.userinfo_calls, 1);
    assert!(sim
        .answers
        .values()
        .all(|a| *a == Answer::Allowed(Some(NonFatalReason::Timeout))));
    assert!(sim.now <= DUE + 100 * MS + 10 * SECOND + 50 * MS);
    assert_eq!(sim.record().failure.unwrap().class, "timeout");
}

#[test]
fn rotation_race_after_a_takeover_is_retried_not_revoked() {
    // VM 0's refresh is redeemed at the IdP but its answer is late (past the
    // lease deadline and the refresh hold: a stalled VM); VM 1 takes over and presents
    // the same refresh token, getting invalid_grant from an IdP that rejects
    // stale tokens.
    let mut sim = Sim::new(42, 2, DUE);
    sim.idp.reuse_detection = false;
    sim.now = DUE;
    let ticket = match admit(
        &sim.cfg,
        &sim.store,
        &sim.vms[0].id,
        "alice",
        &sim.sid,
        T0,
        DUE,
    ) {
        Admission::Lead(t) => t,
        other => panic!("{other:?}"),
    };
    let (cfg, store) = (sim.cfg.clone(), &sim.store);
    let (vm0, vm1) = (sim.vms[0].id.clone(), sim.vms[1].id.clone());
    let (mut job0, step) = Job::start(&Sim::ctx(&cfg, &vm0), ticket, store, DUE);
    let Step::Call(call0) = step else { panic!() };
    let late_answer = sim.idp.answer(&call0);

    // The refresh hold keeps the lease one more timeout past the deadline.
    let held_until = DUE + 20 * SECOND;
    let early = follower_decision(&cfg, store, &vm1, sim.sid.split_once('.').unwrap().0.parse().unwrap(), sim.sid.split_once('.').unwrap().1, "alice", 0, held_until + SECOND, held_until - MS);
    assert!(matches!(early, FollowerDecision::KeepWaiting), "no takeover while the refresh may still answer: {early:?}");
    let takeover_at = held_until + 50 * MS;
    let nonce = sim.sid.split_once('.').unwrap().1.to_owned();
    let slot: u32 = sim.sid.split_once('.').unwrap().0.parse().unwrap();
    let decision = follower_decision(
        &cfg,
        store,
        &vm1,
        slot,
        &nonce,
        "alice",
        0,
        takeover_at + SECOND,
        takeover_at,
    );
    let FollowerDecision::TakeOver(ticket1) = decision else {
        panic!("{decision:?}")
    };
    let (mut job1, step) = Job::start(&Sim::ctx(&cfg, &vm1), ticket1, store, takeover_at);
    let Step::Call(call1) = step else { panic!() };
    let stale = sim.idp.answer(&call1);

    let step = job0.on_answer(&Sim::ctx(&cfg, &vm0), store, takeover_at + MS, late_answer);
    assert!(matches!(
        step,
        Step::Finished(Finished {
            outcome: Outcome::LeaseLost,
            ..
        })
    ));
    assert_eq!(
        sim.record().refresh_token.as_deref(),
        Some("rt-1"),
        "late rotation kept"
    );

    let step = job1.on_answer(&Sim::ctx(&cfg, &vm1), store, takeover_at + 2 * MS, stale);
    let Step::Call(retry) = step else {
        panic!("{step:?}")
    };
    assert_eq!(
        retry.kind,
        CallKind::Userinfo,
        "stored access token is fresh: no second refresh"
    );
    let answer = sim.idp.answer(&retry);
    let step = job1.on_answer(&Sim::ctx(&cfg, &vm1), store, takeover_at + 3 * MS, answer);
    assert!(
        matches!(
            step,
            Step::Finished(Finished {
                outcome: Outcome::Success,
                ..
            })
        ),
        "{step:?}"
    );
    assert!(!crate::session::is_revoked(store, &cfg, "alice", T0));
}
