//! The SDK's http_auth_random pattern, written with no knowledge of host-sim, behaves as in Envoy.

use crate::common::probe;
use host_sim::{CalloutReply, Cluster, Outcome, Request, Sim};

fn sim_answering(byte: u8) -> Sim {
    Sim::builder(probe("probe-auth-random"))
        .cluster("httpbin", Cluster::scripted(move |_| CalloutReply::ok(200).body(vec![byte])))
        .build()
        .unwrap()
}

#[test]
fn an_even_byte_resumes_the_request() {
    let mut sim = sim_answering(2);
    let s = sim.send(0, Request::get("/"));
    let outcome = sim.outcome(s);
    assert!(outcome.is_forwarded(), "{outcome:?}\n{}", sim.logs_text());
    assert_eq!(outcome.reply().unwrap().header("powered-by"), Some("proxy-wasm"));
    assert_eq!(sim.callouts()[0].path(), "/bytes/1");
    assert_eq!(sim.logs_containing("Access granted.").len(), 1);
}

#[test]
fn an_odd_byte_answers_403_through_the_response_path() {
    let mut sim = sim_answering(1);
    let s = sim.send(0, Request::get("/"));
    let Outcome::LocalReply(reply) = sim.outcome(s) else { panic!("{:?}", sim.outcome(s)) };
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body_str(), "Access forbidden.\n");
    assert_eq!(reply.header_values("powered-by"), vec!["proxy-wasm"]);
    assert!(sim.traps().is_empty());
}

#[test]
fn the_request_waits_paused_for_the_callout() {
    let mut sim = Sim::builder(probe("probe-auth-random")).cluster("httpbin", Cluster::manual()).build().unwrap();
    let s = sim.send(0, Request::get("/"));
    assert!(sim.outcome(s).is_paused());
    let id = sim.pending_callouts()[0];
    sim.answer(id, CalloutReply::ok(200).body(vec![4]));
    assert!(sim.outcome(s).is_forwarded());
}
