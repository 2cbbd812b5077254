//! The simulator's own thread: it owns every VM, runs the event loop on the real clock, and talks to the
//! async proxy through channels.

use super::ServeConfig;
use crate::cluster::Cluster;
use crate::http::{Outcome, Reply, Request};
use crate::realhttp::{self, RealResult};
use crate::sim::{Sim, StreamId};
use crate::types::VmRef;
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

pub enum Command {
    Request { worker: usize, request: Request, respond: tokio::sync::oneshot::Sender<Outcome> },
    Upstream { stream: StreamId, reply: Reply },
    Wake,
}

#[derive(Clone)]
pub struct EngineHandle {
    pub tx: Sender<Command>,
}

/// What the upstream's failure looks like to the client: Envoy's router answers 502/503/504 itself.
fn upstream_reply(result: RealResult) -> Reply {
    match result {
        RealResult::Response { status, headers, body } => {
            let headers = headers.into_iter().filter(|(k, _)| k != "content-length").collect();
            Reply { status, headers, body }
        }
        RealResult::ConnectFailure(e) => {
            Reply::new(502).with_header("content-type", "text/plain").with_body(format!("upstream unreachable: {e}"))
        }
        RealResult::Reset(e) => Reply::new(502).with_header("content-type", "text/plain").with_body(format!("upstream reset: {e}")),
        RealResult::Timeout => Reply::new(504).with_header("content-type", "text/plain").with_body("upstream request timeout"),
    }
}

pub fn spawn(cfg: &ServeConfig, plugin_config: Vec<u8>, vm_config: Vec<u8>) -> Result<EngineHandle> {
    let mut builder = Sim::builder(&cfg.wasm)
        .plugin_config(plugin_config)
        .vm_config(vm_config)
        .vm_id(cfg.vm_id.clone())
        .workers(cfg.workers)
        .profile(cfg.profile)
        .failure_policy(cfg.failure_policy)
        .real_clock(true)
        .external_upstream(true)
        .retain_logs(false)
        .echo_logs(true);
    for (name, value) in &cfg.env {
        builder = builder.env(name.clone(), value.clone());
    }
    for (name, address) in &cfg.clusters {
        builder = builder.cluster(name.clone(), Cluster::real(address.clone()));
    }
    // nginx: any other `host:port` target is called for real; wait locations answer 504 after their delay.
    builder = builder.real_targets(true).panic_on_host_crash(false);
    for (address, delay) in &cfg.wait_locations {
        let delay = *delay;
        let reply = move |_: &crate::cluster::CalloutRequest| {
            crate::cluster::CalloutReply::ok(504).header("content-type", "text/html").body("<html>504 Gateway Time-out</html>\n").after(delay)
        };
        builder = builder.cluster(address.clone(), Cluster::scripted(reply));
    }
    for (name, value) in &cfg.proxy_set_headers {
        builder = builder.proxy_set_header(name.clone(), value.clone());
    }
    for name in &cfg.shm_queues {
        builder = builder.shm_queue(name.clone());
    }
    for path in &cfg.buffered_paths {
        builder = builder.buffered_path(path.clone());
    }
    let (tx, rx) = mpsc::channel::<Command>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let upstream = cfg.upstream.clone();
    let loop_tx = tx.clone();
    std::thread::Builder::new().name("host-sim-engine".into()).spawn(move || {
        let mut sim = match builder.build() {
            Ok(sim) => sim,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        let wake_tx = loop_tx.clone();
        sim.set_waker(Arc::new(move || {
            let _ = wake_tx.send(Command::Wake);
        }));
        let _ = ready_tx.send(Ok(()));
        let mut waiting: HashMap<StreamId, tokio::sync::oneshot::Sender<Outcome>> = HashMap::new();
        loop {
            let wait = sim
                .next_due_ns()
                .map(|due| Duration::from_nanos(due.saturating_sub(sim.now_ns())))
                .unwrap_or(Duration::from_millis(200))
                .min(Duration::from_millis(200));
            match rx.recv_timeout(wait) {
                Ok(Command::Request { worker, request, respond }) => {
                    let stream = sim.start_stream(VmRef::Worker(worker), request);
                    waiting.insert(stream, respond);
                }
                Ok(Command::Upstream { stream, reply }) => sim.deliver_upstream(stream, reply),
                Ok(Command::Wake) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            sim.run_until_idle();
            for (stream, request) in sim.take_upstream_requests() {
                let tx = loop_tx.clone();
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let result = realhttp::send(&upstream, &request.headers, &request.body, Some(Duration::from_secs(60)));
                    let _ = tx.send(Command::Upstream { stream, reply: upstream_reply(result) });
                });
            }
            for stream in sim.take_finished() {
                // Envoy's router opened this request upstream before the filter answered it: it goes out, reset.
                if sim.upstream_opened_early(stream) {
                    let request = sim.request_of(stream).clone();
                    let upstream = upstream.clone();
                    std::thread::spawn(move || realhttp::send_head_then_reset(&upstream, &request));
                }
                if let Some(respond) = waiting.remove(&stream) {
                    let _ = respond.send(sim.outcome(stream));
                }
            }
        }
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(EngineHandle { tx }),
        Ok(Err(message)) => Err(anyhow!(message)),
        Err(_) => Err(anyhow!("the simulator thread ended while starting")),
    }
}
