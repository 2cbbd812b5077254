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

/// Markdown link targets `](path)` that are files of this repository.
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split('#').next().unwrap_or_default().to_owned())
        .filter(|t| !t.is_empty() && !t.contains("://"))
        .collect()
}

#[test]
fn every_relative_link_in_the_manuals_points_at_a_file() {
    let manuals = [
        "README.md",
        "host-sim/README.md",
        "packaging/README.md",
        "examples/envoy/README.md",
        "examples/istio/README.md",
        "examples/nginx/README.md",
    ];
    for manual in manuals {
        let path = root().join(manual);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{manual}: {e}"));
        let dir = path.parent().expect("a directory");
        for link in relative_links(&text) {
            assert!(dir.join(&link).exists(), "{manual} links to {link}, which does not exist");
        }
    }
}

/// Every `` `make <target>` `` in README.md is a target of the Makefile or mk/*.mk.
#[test]
fn every_make_target_the_readme_names_exists() {
    let mut makefiles = vec![std::fs::read_to_string(root().join("Makefile")).expect("Makefile")];
    for entry in std::fs::read_dir(root().join("mk")).expect("mk/").flatten() {
        makefiles.push(std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    let defined = |target: &str| {
        makefiles.iter().any(|m| m.lines().any(|l| l.starts_with(&format!("{target}:"))))
    };
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut named: Vec<&str> = readme
        .split("`make ")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).next())
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        .collect();
    named.sort_unstable();
    named.dedup();
    for target in named {
        assert!(defined(target), "README.md names `make {target}`, which no makefile defines");
    }
}
