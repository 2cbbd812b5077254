//! Hostcall semantics: headers, bodies, clock, environment, randomness, metrics.

use crate::common::{host_probe, messages};
use host_sim::{Outcome, Reply, Request};
use std::time::Duration;

#[test]
fn request_headers_are_a_lower_cased_multimap() {
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(
        0,
        Request::get("/set-headers").header("x-multi", "1").header("x-remove-me", "z").header("X-Upper", "v"),
    );
    let outcome = sim.outcome(s);
    let upstream = outcome.upstream_request().unwrap();
    assert_eq!(upstream.header("x-added"), Some("yes"));
    assert_eq!(upstream.header_values("x-multi"), vec!["1", "2"]);
    assert_eq!(upstream.header("x-remove-me"), None);
    assert!(upstream.headers.iter().any(|(k, v)| k == "x-upper" && v == "v"));
    assert_eq!(messages(&sim, "first x-multi"), vec!["first x-multi=Some(\"1\")"]);
}

#[test]
fn forwarded_requests_run_the_response_path() {
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(0, Request::get("/").upstream_reply(Reply::new(201).with_body("made")));
    let outcome = sim.outcome(s);
    assert_eq!(outcome.upstream_header("x-probe").as_deref(), Some("passed"));
    let reply = outcome.reply().unwrap();
    assert_eq!((reply.status, reply.header("x-probe-response"), reply.body_str().as_str()), (201, Some("201"), "made"));
    assert!(!messages(&sim, "response_body ctx=2 size=4 eos=true").is_empty());
}

#[test]
fn paused_bodies_are_buffered_and_redelivered_with_cumulative_sizes() {
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(0, Request::post("/body").body("hel").body("lo"));
    assert_eq!(sim.outcome(s).upstream_request().unwrap().body, b"HELLO");
    assert_eq!(messages(&sim, "request_body"), vec!["request_body size=3 eos=false", "request_body size=5 eos=true"]);
}

#[test]
fn the_module_reads_the_virtual_clock_through_proxy_and_wasi() {
    let mut sim = host_probe().start_time_ns(1_000_000_000_000).build().unwrap();
    let s = sim.send(0, Request::get("/time"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "host=1000000000000 wasi=1000000000000");
    sim.advance(Duration::from_millis(1500));
    let s = sim.send(0, Request::get("/time"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "host=1001500000000 wasi=1001500000000");
    assert_eq!(sim.now_ns(), 1_001_500_000_000);
}

#[test]
fn environment_comes_from_the_vm_configuration() {
    let mut sim = host_probe().env("PROBE_ENV", "hello").build().unwrap();
    let s = sim.send(0, Request::get("/env"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "env=Some(\"hello\")");
}

#[test]
fn random_get_follows_the_seed() {
    let body = |seed| {
        let mut sim = host_probe().seed(seed).build().unwrap();
        let s = sim.send(0, Request::get("/random"));
        sim.outcome(s).reply().unwrap().body_str()
    };
    assert_eq!(body(1), body(1));
    assert_ne!(body(1), body(2));
}

#[test]
fn metrics_follow_envoy_ids_and_rules_and_are_shared_across_vms() {
    let mut sim = host_probe().workers(2).build().unwrap();
    // Counter ids 4, 8…; gauge 5, 9…; histogram 6, 10… (per VM).
    assert!(!messages(&sim, "counter=Some(4) gauge=Some(5) histogram=Some(6)").is_empty());
    sim.send(0, Request::get("/"));
    sim.send(1, Request::get("/"));
    let s = sim.send(0, Request::get("/metrics"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "negative=Some(Err(BadArgument)) total=Some(Ok(3))");
    assert_eq!(sim.metric("probe_requests"), Some(3));
    assert_eq!(sim.metric_on(0, "probe_requests"), Some(2));
    assert_eq!(sim.metric_on(1, "probe_requests"), Some(1));
    assert_eq!(sim.metric("probe_gauge"), Some(42));
    assert_eq!(sim.metric_samples("probe_latency"), vec![7]);
    assert_eq!(sim.metric("nope"), None);
}

#[test]
fn reset_by_the_filter_still_logs_and_deletes_the_context() {
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(0, Request::get("/reset"));
    assert_eq!(sim.outcome(s), Outcome::Reset);
    assert_eq!(messages(&sim, "ctx=2").iter().filter(|m| m.starts_with("on_")).count(), 3);
}

#[test]
fn request_trailers_follow_the_body_and_are_a_writable_map() {
    let mut sim = host_probe().build().unwrap();
    let request = Request::post("/trailers").body("abc").trailer("X-Checksum", "c1");
    let s = sim.send(0, request);
    let upstream = sim.outcome(s).upstream_request().unwrap().clone();
    assert!(upstream.trailers.iter().any(|(k, v)| k == "x-checksum" && v == "c1"), "{:?}", upstream.trailers);
    assert!(upstream.trailers.iter().any(|(k, v)| k == "x-probe-trailer" && v == "added"), "{:?}", upstream.trailers);
    let order: Vec<String> = sim
        .logs()
        .iter()
        .map(|l| l.message.clone())
        .filter(|m| m.starts_with("request_body") || m.starts_with("request_trailers"))
        .collect();
    // With trailers the body's last chunk is not end_of_stream: the trailers end the request.
    assert_eq!(order, vec!["request_body size=3 eos=false", "request_trailers count=1 x-checksum=Some(\"c1\")"]);
}

/// Envoy's router opens the upstream request as soon as the request headers go on, body or not; a filter
/// that then answers locally from the body callback resets a request the upstream already saw (checked in
/// real Envoy 1.40: tests/e2e/scenarios/09-request-bodies.test.mjs). Envoy's buffer filter after the wasm
/// filter on that route holds the headers back until the whole request is in, and no upstream request starts.
#[test]
fn the_router_opens_the_upstream_request_when_headers_go_on_unless_the_route_buffers() {
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(0, Request::post("/body-local").body("hel").body("lo"));
    assert_eq!(sim.outcome(s).reply().unwrap().status, 403);
    assert!(sim.upstream_opened_early(s), "the headers went on before the body: the router started");

    let mut sim = host_probe().buffered_path("/body-local").build().unwrap();
    let s = sim.send(0, Request::post("/body-local?x=1").body("hel").body("lo"));
    assert_eq!(sim.outcome(s).reply().unwrap().status, 403);
    assert!(!sim.upstream_opened_early(s), "the buffer filter held the headers until the local reply");

    // Nothing more to come (no body), or forwarded whole: no request was opened early and abandoned.
    let mut sim = host_probe().build().unwrap();
    let s = sim.send(0, Request::get("/local/403"));
    assert!(!sim.upstream_opened_early(s));
    let s = sim.send(0, Request::post("/body").body("hel").body("lo"));
    assert_eq!(sim.outcome(s).upstream_request().unwrap().body, b"HELLO");
    assert!(!sim.upstream_opened_early(s));
}
