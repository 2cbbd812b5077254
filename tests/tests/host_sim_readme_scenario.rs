//! The scenario host-sim/README.md shows under "Writing a scenario", run as
//! written (the SDK's http_auth_random probe, built by `make probes`), so the
//! manual's example cannot rot.

use host_sim::{CalloutReply, Cluster, Outcome, Profile, Request, Sim};
use std::path::PathBuf;
use std::time::Duration;

fn probe_auth_random() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| vigil_tests::workspace_root().join("target"));
    let wasm = target.join("wasm32-wasip1/release/probe_auth_random.wasm");
    if !wasm.exists() {
        // `make test` builds the probes first; a bare `cargo test` builds it here.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(vigil_tests::workspace_root())
            .args(["build", "--release", "--target", "wasm32-wasip1", "-p", "probe-auth-random"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building probe-auth-random failed (try `make probes`)");
    }
    wasm
}

#[test]
fn the_readme_scenario_runs_as_written() -> Result<(), host_sim::SimError> {
    let mut sim = Sim::builder(probe_auth_random())
        .plugin_config(r#"{}"#)
        .env("NAME", "value")
        .workers(2)
        .profile(Profile::Envoy)
        .seed(7)
        .cluster(
            "httpbin",
            Cluster::scripted(|_req| CalloutReply::ok(200).body(vec![1]).after(Duration::from_millis(5))),
        )
        .build()?;
    let s = sim.send(0, Request::get("/"));
    assert!(sim.outcome(s).is_paused());
    sim.advance(Duration::from_millis(5));
    match sim.outcome(s) {
        Outcome::LocalReply(reply) => assert_eq!(reply.status, 403),
        other => panic!("{other:?}\n{}", sim.logs_text()),
    }
    Ok(())
}
