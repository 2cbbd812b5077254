//! Start sequence, canary, per-VM context ids, rejected configuration, loading errors.

use crate::common::{host_probe, messages, probe};
use host_sim::{LogLevel, Request, Sim, SimBuilder, SimError, VmRef};

#[test]
fn start_sequence_runs_on_canary_main_and_each_worker_in_that_order() {
    let sim = host_probe().workers(2).plugin_config("a=1").build().unwrap();
    let starts: Vec<VmRef> = sim.logs_containing("on_configure config=a=1").iter().map(|l| l.vm).collect();
    assert_eq!(starts, vec![VmRef::Canary, VmRef::Main, VmRef::Worker(0), VmRef::Worker(1)]);
    assert_eq!(sim.logs_containing("on_vm_start").len(), 4);
}

#[test]
fn context_ids_are_per_vm_root_1_then_streams_from_2() {
    let mut sim = host_probe().workers(2).build().unwrap();
    let a = sim.send(0, Request::get("/"));
    let b = sim.send(0, Request::get("/"));
    let c = sim.send(1, Request::get("/"));
    assert_eq!((sim.context_id(a), sim.context_id(b), sim.context_id(c)), (2, 3, 2));
    assert_eq!(messages(&sim, "request_headers ctx=").len(), 3);
}

#[test]
fn plugin_configuration_is_readable_only_in_on_configure() {
    let mut sim = host_probe().plugin_config("x=y").build().unwrap();
    let s = sim.send(0, Request::get("/config"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "config=x=y late=false");
}

#[test]
fn a_false_on_configure_rejects_the_configuration_with_the_filter_log() {
    match host_probe().plugin_config("reject").build() {
        Err(SimError::ConfigRejected { vm, logs }) => {
            assert_eq!(vm, VmRef::Canary);
            assert!(logs.iter().any(|l| l.contains("rejecting configuration")), "{logs:?}");
        }
        other => panic!("expected ConfigRejected, got {other:?}"),
    }
}

#[test]
fn a_trap_while_starting_is_reported_with_the_panic_message() {
    match host_probe().plugin_config("trap_start").build() {
        Err(SimError::Trap { vm, message }) => {
            assert_eq!(vm, VmRef::Canary);
            assert!(message.contains("trap during on_configure"), "{message}");
        }
        other => panic!("expected Trap, got {other:?}"),
    }
}

#[test]
fn loading_fails_for_a_missing_file_a_non_wasm_file_and_an_unknown_import() {
    assert!(matches!(Sim::builder("/nonexistent/x.wasm").build(), Err(SimError::Load { .. })));
    let garbage = SimBuilder::from_bytes(b"not wasm".to_vec()).build();
    assert!(matches!(garbage, Err(SimError::Load { .. })), "{garbage:?}");
    // (module (import "env" "proxy_bogus" (func)))
    let mut module = b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x02\x13\x01\x03env\x0bproxy_bogus\0\0".to_vec();
    module.shrink_to_fit();
    match SimBuilder::from_bytes(module).build() {
        Err(SimError::Load { message, .. }) => assert!(message.contains("env.proxy_bogus"), "{message}"),
        other => panic!("expected a load error naming the import, got {other:?}"),
    }
}

#[test]
fn modules_compile_once_per_process() {
    let path = probe("probe-host");
    let started = std::time::Instant::now();
    for _ in 0..20 {
        host_probe().workers(2).build().unwrap();
    }
    assert!(started.elapsed().as_secs() < 30, "20 sims took {:?}", started.elapsed());
    assert!(host_sim::precompile(path).is_ok());
}

#[test]
fn logs_carry_vm_and_level() {
    let mut sim = host_probe().build().unwrap();
    sim.send(0, Request::get("/"));
    let line = sim.logs_containing("request_headers")[0];
    assert_eq!(line.vm, VmRef::Worker(0));
    assert_eq!(line.vm, 0usize);
    assert_eq!(line.level, LogLevel::Info);
}
