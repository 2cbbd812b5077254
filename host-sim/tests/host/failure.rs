//! Failure policy after a trap: FAIL_CLOSED, FAIL_OPEN, FAIL_RELOAD.

use crate::common::host_probe;
use host_sim::{FailurePolicy, Outcome, Request, VmRef};
use std::time::Duration;

#[test]
fn fail_closed_answers_503_on_the_trapped_vm_only() {
    let mut sim = host_probe().workers(2).build().unwrap();
    let s = sim.send(0, Request::get("/trap"));
    assert_eq!(sim.outcome(s), Outcome::FailedVm(host_sim::Reply::new(503)));
    let traps = sim.traps();
    assert_eq!(traps.len(), 1);
    assert_eq!(traps[0].vm, VmRef::Worker(0));
    assert!(traps[0].message.contains("probe trap requested"), "{traps:?}");
    assert_eq!(traps[0].function, "proxy_on_request_headers");
    assert!(sim.vm_failed(0) && !sim.vm_failed(1) && !sim.vm_failed(sim.main_vm()));
    let later = sim.send(0, Request::get("/"));
    assert_eq!(sim.outcome(later).status(), Some(503));
    let other = sim.send(1, Request::get("/"));
    assert_eq!(sim.outcome(other).upstream_header("x-probe").as_deref(), Some("passed"));
}

#[test]
fn fail_open_bypasses_the_filter() {
    let mut sim = host_probe().failure_policy(FailurePolicy::FailOpen).build().unwrap();
    let s = sim.send(0, Request::get("/trap"));
    assert!(sim.outcome(s).is_forwarded(), "{:?}", sim.outcome(s));
    let later = sim.send(0, Request::get("/"));
    let outcome = sim.outcome(later);
    assert!(outcome.is_forwarded());
    assert_eq!(outcome.upstream_header("x-probe"), None, "the filter no longer runs");
}

#[test]
fn fail_reload_rebuilds_the_vm_after_the_backoff() {
    let mut sim = host_probe().failure_policy(FailurePolicy::FailReload).build().unwrap();
    sim.send(0, Request::get("/trap"));
    let early = sim.send(0, Request::get("/"));
    assert_eq!(sim.outcome(early).status(), Some(503));
    sim.advance(Duration::from_secs(1));
    let after = sim.send(0, Request::get("/"));
    assert_eq!(sim.outcome(after).upstream_header("x-probe").as_deref(), Some("passed"));
    assert!(!sim.vm_failed(0));
    assert_eq!(sim.context_id(after), 2, "a fresh VM starts its context ids again");
}

#[test]
fn a_failed_vm_stops_ticking() {
    let mut sim = host_probe().plugin_config("tick=10").build().unwrap();
    sim.advance(Duration::from_millis(10));
    let before = sim.logs_containing("tick at=").len();
    assert_eq!(before, 2, "worker 0 and main");
    sim.send(0, Request::get("/trap"));
    sim.advance(Duration::from_millis(10));
    let on_worker = sim.logs_containing("tick at=").iter().filter(|l| l.vm == VmRef::Worker(0)).count();
    assert_eq!(on_worker, 1);
}
