//! Probe filters built from source in host-sim/probes (by `make probes`, or here when missing or stale).

use host_sim::{Sim, SimBuilder};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                newest = newest.max(modified);
            }
        }
    }
    newest
}

/// Path of a probe's .wasm, building it first if it is missing or older than its sources.
pub fn probe(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let wasm = target.join("wasm32-wasip1/release").join(format!("{}.wasm", name.replace('-', "_")));
    let sources = workspace().join("host-sim/probes").join(name);
    let stale = match std::fs::metadata(&wasm).and_then(|m| m.modified()) {
        Ok(built) => built < newest_source(&sources),
        Err(_) => true,
    };
    if stale {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args(["build", "--release", "--target", "wasm32-wasip1", "-p", name])
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build probe {name}: {e}"));
        assert!(status.success(), "building probe {name} failed (try `make probes`)");
    }
    wasm
}

pub fn host_probe() -> SimBuilder {
    Sim::builder(probe("probe-host"))
}

/// Messages of the log lines containing `needle`, in order.
pub fn messages(sim: &Sim, needle: &str) -> Vec<String> {
    sim.logs_containing(needle).into_iter().map(|l| l.message.clone()).collect()
}
