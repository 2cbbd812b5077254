//! Stream lifecycle: local reply re-entering the response path, on_log → on_done → on_delete, BadArgument after
//! resume, abandon, no re-entrant callbacks.

use crate::common::{host_probe, messages};
use host_sim::{Outcome, Request};

#[test]
fn local_reply_reenters_on_response_headers_on_the_same_context() {
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(0, Request::get("/local/418"));
    let Outcome::LocalReply(reply) = sim.outcome(s) else { panic!("{:?}", sim.outcome(s)) };
    assert_eq!(reply.status, 418);
    assert_eq!(reply.header("x-probe-local"), Some("1"));
    assert_eq!(reply.header("x-probe-response"), Some("418"), "set by on_response_headers of the same context");
    assert_eq!(reply.body_str(), "local body");
    assert_eq!(messages(&sim, "response_headers"), vec!["response_headers ctx=2 status=418 eos=false"]);
    assert_eq!(messages(&sim, "response_body"), vec!["response_body ctx=2 size=10 eos=true"]);
    assert!(sim.traps().is_empty());
}

#[test]
fn streams_end_with_on_log_then_on_done_then_on_delete() {
    let mut sim = host_probe().build().unwrap();
    sim.send(0, Request::get("/"));
    let ends: Vec<String> = messages(&sim, "ctx=2").into_iter().filter(|m| m.starts_with("on_")).collect();
    assert_eq!(ends, vec!["on_log ctx=2", "on_done ctx=2", "on_delete ctx=2"]);
}

#[test]
fn request_headers_answer_bad_argument_after_resume_so_the_sdk_panics() {
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(0, Request::get("/resume-then-read"));
    assert_eq!(sim.outcome(s).status(), Some(503));
    let traps = sim.traps();
    assert_eq!(traps.len(), 1);
    assert!(traps[0].message.contains("unexpected status: 2"), "{traps:?}");
}

#[test]
fn request_headers_answer_bad_argument_in_the_response_phase() {
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(0, Request::get("/late-read"));
    assert!(matches!(sim.outcome(s), Outcome::FailedVm(_)));
    assert!(sim.traps()[0].message.contains("unexpected status: 2"));
    assert_eq!(sim.traps()[0].function, "proxy_on_response_headers");
}

#[test]
fn request_headers_stay_writable_while_paused_until_resume() {
    let mut sim = host_probe().cluster("idp", host_sim::Cluster::scripted(|_| host_sim::CalloutReply::ok(204))).build().unwrap();
    let s = sim.send(0, Request::get("/callout-resume/idp"));
    assert_eq!(sim.outcome(s).upstream_header("x-callout-status").as_deref(), Some("204"));
}

#[test]
fn reading_request_headers_after_resume_in_a_callout_response_traps() {
    let mut sim = host_probe().cluster("idp", host_sim::Cluster::scripted(|_| host_sim::CalloutReply::ok(200))).build().unwrap();
    let s = sim.send(0, Request::get("/callout-resume-read/idp"));
    assert!(sim.traps()[0].message.contains("unexpected status: 2"), "{:?}", sim.traps());
    // The deferred resume still runs (after-VM-call actions survive the trap); the stream's next callback then
    // finds the VM failed and fails closed.
    assert_eq!(sim.outcome(s).status(), Some(503));
}

#[test]
fn an_abandoned_stream_is_torn_down_like_envoy_does() {
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(0, Request::get("/pause"));
    assert!(sim.outcome(s).is_paused());
    sim.abandon(s);
    assert_eq!(sim.outcome(s), Outcome::Reset);
    let ends: Vec<String> = messages(&sim, "ctx=2").into_iter().filter(|m| m.starts_with("on_")).collect();
    assert_eq!(ends, vec!["on_log ctx=2", "on_done ctx=2", "on_delete ctx=2"]);
}

#[test]
fn queue_notifications_are_never_reentrant() {
    // One worker: it is the last registrant, so its own enqueue notifies itself — after the call returns.
    let mut sim = host_probe().workers(1).build().unwrap();
    let s = sim.send(0, Request::get("/enqueue/x"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "enqueue Ok(())");
    assert!(sim.traps().is_empty(), "{:?}", sim.traps());
    let order: Vec<String> = sim
        .logs_on(0)
        .iter()
        .map(|l| l.message.clone())
        .filter(|m| m.starts_with("request_headers") || m.starts_with("queue_ready") || m.starts_with("on_delete"))
        .collect();
    assert_eq!(order[0], "request_headers ctx=2 path=/enqueue/x eos=true");
    assert!(order.contains(&"queue_ready queue=1 item=Some(\"x\")".to_string()), "{order:?}");
}
