//! Every test README.md cites as evidence exists. The manual backs its
//! claims (the comparison table, the decision table, the security notes,
//! the memory figures) with test names; this keeps those names from going
//! stale when tests are renamed or removed.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    vigil_tests::workspace_root()
}

fn rust_sources(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

/// Backticked snake_case names with at least four words: how README.md
/// cites tests (`a_removed_group_is_fatal`). Configuration keys are
/// excluded (`post_logout_redirect_uri` is a key, not a test).
fn cited_tests(readme: &str, schema: &str) -> Vec<String> {
    let mut names: Vec<String> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        .filter(|t| t.split('_').count() >= 4)
        .filter(|t| !schema.contains(&format!("\"{t}\"")))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_test_the_readme_cites_exists() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let schema = vigil::config::raw::json_schema();
    let cited = cited_tests(&readme, &schema);
    assert!(cited.len() >= 20, "README.md cites only {cited:?}");

    let mut sources = Vec::new();
    for dir in ["tests/tests", "tests/src", "filter/src", "host-sim/tests"] {
        rust_sources(&root().join(dir), &mut sources);
    }
    let missing: Vec<&String> = cited
        .iter()
        .filter(|name| !sources.iter().any(|s| s.contains(&format!("fn {name}("))))
        .collect();
    assert!(missing.is_empty(), "README.md cites tests that do not exist: {missing:?}");
}
