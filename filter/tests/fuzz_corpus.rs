//! The fuzz corpora as ordinary regression tests (issue 14): every file in
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the
//! same checking function as the cargo-fuzz target (`fuzz/checks/`), so CI
//! covers them on stable without libFuzzer. A file in
//! `fuzz/regressions/<target>/` whose name starts with `open-` is a bug
//! found by fuzzing and not fixed yet: it must still fail its check (once
//! the filter is fixed, drop the `open-` prefix and it guards the fix).
//!
//! `VIGIL_FUZZ_WRITE_SEEDS=1 cargo test -p vigil-filter --test fuzz_corpus
//! write_seeds -- --ignored` (re)writes the hand-made seeds as
//! `fuzz/corpus/<target>/seed-<name>`.

// A test: a failed expectation panics.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[path = "../../fuzz/checks/mod.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn passes(check: checks::Check, data: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| check(data))).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn replay(target: &str) {
    let (_, check) = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let mut failures = Vec::new();
    for (name, data) in checks::seeds(target) {
        if let Err(message) = passes(*check, &data) {
            failures.push(format!("seed {name}: {message}"));
        }
    }
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).expect("readable corpus file");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let outcome = passes(*check, &data);
        match (name.starts_with("open-"), outcome) {
            (false, Err(message)) => failures.push(format!("{}: {message}", path.display())),
            (true, Ok(())) => failures.push(format!(
                "{} passes now: the bug is fixed, drop the `open-` prefix",
                path.display()
            )),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{target}:\n{}", failures.join("\n"));
}

#[test]
fn downstream_token_corpus() {
    replay("downstream_token");
}

#[test]
fn cookies_headers_corpus() {
    replay("cookies_headers");
}

#[test]
fn config_corpus() {
    replay("config");
}

#[test]
fn idp_answers_corpus() {
    replay("idp_answers");
}

#[test]
fn records_corpus() {
    replay("records");
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run with VIGIL_FUZZ_WRITE_SEEDS=1"]
fn write_seeds() {
    if std::env::var_os("VIGIL_FUZZ_WRITE_SEEDS").is_none() {
        return;
    }
    for (target, _) in checks::TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        for (name, data) in checks::seeds(target) {
            std::fs::write(dir.join(format!("seed-{name}")), data).expect("seed written");
        }
    }
}
