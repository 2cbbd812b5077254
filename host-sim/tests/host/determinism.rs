//! The seed decides the order of simultaneous events across VMs, reproducibly.

use crate::common::host_probe;
use host_sim::{CalloutReply, Cluster, Request};
use std::time::Duration;

fn run(seed: u64) -> Vec<String> {
    let mut sim = host_probe()
        .workers(4)
        .seed(seed)
        .plugin_config("tick=10")
        .cluster("idp", Cluster::scripted(|_| CalloutReply::ok(200).after(Duration::from_millis(10))))
        .build()
        .unwrap();
    for vm in 0..4 {
        sim.send(vm, Request::get("/callout/idp"));
    }
    sim.advance(Duration::from_millis(30));
    sim.event_log().to_vec()
}

#[test]
fn the_same_seed_gives_the_same_event_order() {
    assert_eq!(run(7), run(7));
}

#[test]
fn different_seeds_explore_different_interleavings() {
    let first = run(1);
    assert!((2..10).any(|seed| run(seed) != first), "ten seeds gave one order");
}
