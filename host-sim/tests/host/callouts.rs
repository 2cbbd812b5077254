//! HTTP callouts: validation, tokens, scripted/manual/real clusters, timeout, reset, connect failure.

use crate::common::{host_probe, messages};
use host_sim::{CalloutReply, Cluster, Request};
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn callouts_are_validated_like_envoy() {
    let mut sim = host_probe().cluster("idp", Cluster::manual()).build().unwrap();
    let s = sim.send(0, Request::get("/dispatch-no-authority/idp"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "dispatch failed BadArgument");
    let s = sim.send(0, Request::get("/callout/unknown"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "dispatch failed BadArgument");
    let s = sim.send(0, Request::get("/callout/idp").header("x-timeout-ms", "3000000000"));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "dispatch failed BadArgument", "timeout > INT32_MAX");
    assert!(sim.callouts().is_empty());
}

#[test]
fn tokens_go_4_8_12_per_vm_and_results_arrive_later() {
    let mut sim = host_probe()
        .workers(2)
        .cluster("idp", Cluster::scripted(|_| CalloutReply::ok(200).body("hi").after(Duration::from_millis(5))))
        .build()
        .unwrap();
    let a = sim.send(0, Request::get("/callout/idp"));
    let b = sim.send(0, Request::get("/callout/idp"));
    let c = sim.send(1, Request::get("/callout/idp"));
    assert_eq!(messages(&sim, "dispatched"), vec!["dispatched token=4", "dispatched token=8", "dispatched token=4"]);
    assert!(sim.outcome(a).is_paused());
    let req = &sim.callouts()[0];
    assert_eq!((req.cluster.as_str(), req.method(), req.path(), req.body_str().as_str()), ("idp", "GET", "/probe", "ping"));
    assert_eq!(req.header(":authority"), Some("probe.example"));
    assert_eq!(req.timeout, Some(Duration::from_secs(1)));
    sim.advance(Duration::from_millis(5));
    for s in [a, b, c] {
        assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "callout status=200 headers=2 body=hi");
    }
}

#[test]
fn a_timeout_answers_504_at_the_timeouts_virtual_time() {
    let mut sim = host_probe().cluster("idp", Cluster::manual()).build().unwrap();
    let s = sim.send(0, Request::get("/callout/idp").header("x-timeout-ms", "500"));
    assert_eq!(sim.pending_callouts().len(), 1);
    sim.advance(Duration::from_millis(499));
    assert!(sim.outcome(s).is_paused());
    sim.advance(Duration::from_millis(1));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "callout status=504 headers=3 body=upstream request timeout");
    assert!(sim.pending_callouts().is_empty());
    let at = sim.logs_containing("callout_response")[0].at_ns;
    assert_eq!(at, sim.callouts()[0].at_ns + 500_000_000);
}

#[test]
fn no_answer_ends_only_by_the_timeout() {
    let mut sim = host_probe().cluster("idp", Cluster::scripted(|_| CalloutReply::no_answer())).build().unwrap();
    let s = sim.send(0, Request::get("/callout/idp"));
    sim.advance(Duration::from_millis(999));
    assert!(sim.outcome(s).is_paused());
    sim.advance(Duration::from_millis(1));
    assert!(sim.outcome(s).reply().unwrap().body_str().starts_with("callout status=504"));
}

#[test]
fn a_reset_has_zero_headers_and_get_status_reset() {
    let mut sim = host_probe().cluster("idp", Cluster::scripted(|_| CalloutReply::reset().after(Duration::from_millis(3)))).build().unwrap();
    let s = sim.send(0, Request::get("/callout/idp").header("x-get-status", "1"));
    sim.advance(Duration::from_millis(3));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "callout status= headers=0 body=");
    assert_eq!(messages(&sim, "get_status"), vec!["callout failed get_status=11 reset"]);
}

#[test]
fn a_connect_failure_is_a_503_from_the_router() {
    let mut sim = host_probe().cluster("idp", Cluster::scripted(|_| CalloutReply::connect_failure())).build().unwrap();
    let s = sim.send(0, Request::get("/callout/idp"));
    assert!(sim.outcome(s).reply().unwrap().body_str().starts_with("callout status=503 headers=3 body=upstream connect error"));
}

#[test]
fn manual_callouts_wait_for_the_test_and_outlive_their_stream() {
    let mut sim = host_probe().cluster("idp", Cluster::manual()).build().unwrap();
    let s = sim.send(0, Request::get("/callout/idp"));
    let id = sim.pending_callouts()[0];
    assert_eq!(sim.callout(id).path(), "/probe");
    sim.abandon(s);
    sim.answer(id, CalloutReply::ok(200).header("x", "1"));
    // Delivered to the root (the SDK drops it: its context is gone) without a trap.
    assert_eq!(messages(&sim, "callout_response").len(), 0);
    assert!(sim.traps().is_empty());
    let s = sim.send(0, Request::get("/callout/idp"));
    let id = sim.pending_callouts()[0];
    sim.answer(id, CalloutReply::ok(201).body("x").after(Duration::from_millis(20)));
    assert!(sim.outcome(s).is_paused());
    sim.advance(Duration::from_millis(20));
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "callout status=201 headers=2 body=x");
}

#[test]
fn real_clusters_are_reached_over_http_on_loopback() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 4096];
        let mut request = Vec::new();
        while !request.ends_with(b"ping") {
            let n = socket.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
        }
        socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nx-real: yes\r\n\r\nreal").unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    let mut sim = host_probe().cluster("idp", Cluster::real(address)).build().unwrap();
    let s = sim.send(0, Request::get("/callout/idp"));
    let seen = server.join().unwrap();
    assert!(seen.starts_with("GET /probe HTTP/1.1\r\n"), "{seen}");
    assert!(seen.contains("host: probe.example"), "{seen}");
    assert_eq!(sim.outcome(s).reply().unwrap().body_str(), "callout status=200 headers=3 body=real");
}
