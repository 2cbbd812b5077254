//! The nginx (ngx_wasm_module) profile's differences from Envoy.

use crate::common::{host_probe, messages};
use host_sim::{Cluster, CalloutReply, Profile, Request};

/// The probe registers queue "q"; nginx.conf must declare it.
fn nginx() -> host_sim::SimBuilder {
    host_probe().profile(Profile::Nginx).shm_queue("q")
}

#[test]
fn registering_an_undeclared_queue_traps_on_nginx() {
    let result = host_probe().profile(Profile::Nginx).shm_queue("other").build();
    match result {
        Err(host_sim::SimError::Trap { message, .. }) => assert!(message.contains("could not find queue"), "{message}"),
        other => panic!("expected a start trap, got {other:?}"),
    }
    // Envoy creates any queue on registration.
    assert!(host_probe().build().is_ok());
}

#[test]
fn no_queue_notifications_on_nginx() {
    let mut sim = nginx().workers(2).build().unwrap();
    let s = sim.send(0, Request::get("/enqueue/a"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "enqueue Ok(())");
    assert!(sim.logs_containing("queue_ready").is_empty());
    assert_eq!(sim.queue_len("q"), Some(1));
}

#[test]
fn resolve_shared_queue_is_unsupported_and_fails_the_request() {
    let mut sim = nginx().build().unwrap();
    let s = sim.send(0, Request::get("/resolve"));
    assert_eq!(sim.outcome(s).status(), Some(500));
    assert!(sim.traps()[0].message.contains("proxy_resolve_shared_queue"));
}

#[test]
fn remove_deletes_the_key_on_nginx() {
    let mut sim = nginx().shared_data("k", "v").build().unwrap();
    let s = sim.send(0, Request::get("/remove/k"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "removed=Ok(()) value=None cas=false");
    assert_eq!(sim.shared_data().key_count(), 0);
}

#[test]
fn callout_tokens_start_at_0_and_targets_are_host_port() {
    let mut sim = nginx().cluster("idp.local:8443", Cluster::scripted(|_| CalloutReply::ok(200))).build().unwrap();
    sim.send(0, Request::get("/callout/idp.local:8443"));
    sim.send(0, Request::get("/callout/idp.local:8443"));
    assert_eq!(messages(&sim, "dispatched"), vec!["dispatched token=0", "dispatched token=1"]);
    // An unknown target is not rejected at dispatch: it yields a response with 0 headers.
    let s = sim.send(0, Request::get("/callout/nowhere:1"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "callout status= headers=0 body=");
}

#[test]
fn root_context_ids_are_large_numbers() {
    let mut sim = nginx().build().unwrap();
    let s = sim.send(0, Request::get("/"));
    assert!(sim.context_id(s) > 1_000_000);
}

#[test]
fn get_status_is_unsupported_on_nginx() {
    let mut sim = nginx().cluster("idp:1", Cluster::scripted(|_| CalloutReply::reset())).build().unwrap();
    sim.send(0, Request::get("/callout/idp:1").header("x-get-status", "1"));
    assert!(sim.traps()[0].message.contains("proxy_get_status"), "{:?}", sim.traps());
}
