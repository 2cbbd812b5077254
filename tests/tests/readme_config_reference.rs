//! README.md's configuration reference lists exactly the keys the filter
//! accepts: every key in the generated JSON Schema (derived from the
//! configuration types the parser fills, `vigil::config::raw`) has a row,
//! and every key a row names exists. Booleans, integers and durations are
//! documented with those types. So the manual cannot drift from the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// What the schema says a key holds.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// An object with named keys (a section such as `idp`, or `login.signing_key`),
    /// or a list of such objects (`downstream.keys`).
    Container,
    Boolean,
    Integer,
    Duration,
    /// Strings, lists of strings, enums, maps.
    Other,
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    if let Some(reference) = node["$ref"].as_str() {
        let name = reference.trim_start_matches("#/$defs/");
        return resolve(root, &root["$defs"][name]);
    }
    if let Some(variants) = node["anyOf"].as_array() {
        if let Some(v) = variants.iter().find(|v| v["type"] != "null") {
            return resolve(root, v);
        }
    }
    node
}

fn has_type(node: &Value, ty: &str) -> bool {
    match &node["type"] {
        Value::String(t) => t == ty,
        Value::Array(ts) => ts.iter().any(|t| t == ty),
        _ => false,
    }
}

/// Every key path in the schema: `idp.client_id`, `downstream.keys[].kid`, ...
fn schema_keys(root: &Value, node: &Value, path: &str, out: &mut BTreeMap<String, Kind>) {
    let node = resolve(root, node);
    if let Some(props) = node["properties"].as_object() {
        if !path.is_empty() {
            out.insert(path.to_owned(), Kind::Container);
        }
        for (name, child) in props {
            let child_path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
            schema_keys(root, child, &child_path, out);
        }
        return;
    }
    if has_type(node, "array") {
        let items = resolve(root, &node["items"]);
        if items["properties"].is_object() {
            out.insert(path.to_owned(), Kind::Container);
            schema_keys(root, items, &format!("{path}[]"), out);
            return;
        }
    }
    let kind = if has_type(node, "boolean") {
        Kind::Boolean
    } else if has_type(node, "integer") {
        Kind::Integer
    } else if node["pattern"].as_str().is_some_and(|p| p.contains("ms|s|m|h")) {
        Kind::Duration
    } else {
        Kind::Other
    };
    out.insert(path.to_owned(), kind);
}

/// Cells of a Markdown table row, splitting on `|` but not on `\|`.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().expect("a cell").push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().expect("a cell").push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_owned()).collect()
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// (keys named in the first column, type column) for each row of the
/// tables in README.md's "Configuration reference" section.
fn readme_rows() -> Vec<(Vec<String>, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&path).expect("README.md");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Configuration reference"))
        .expect("README.md has a `## Configuration reference` section");
    section
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(cells)
        .filter(|c| c.len() >= 4 && c[0] != "key" && !c[0].starts_with("---"))
        .map(|c| (backticked(&c[0]), c[1].clone()))
        .collect()
}

fn schema() -> BTreeMap<String, Kind> {
    let root: Value =
        serde_json::from_str(&vigil::config::raw::json_schema()).expect("schema is JSON");
    let mut keys = BTreeMap::new();
    schema_keys(&root, &root, "", &mut keys);
    keys
}

#[test]
fn every_configuration_key_has_a_readme_row_and_every_row_names_a_key() {
    let schema = schema();
    let rows = readme_rows();
    assert!(rows.len() > 30, "found only {} rows", rows.len());
    let documented: BTreeSet<String> = rows.iter().flat_map(|(keys, _)| keys.clone()).collect();

    let missing: Vec<&String> = schema
        .iter()
        .filter(|(key, kind)| **kind != Kind::Container && !documented.contains(*key))
        .map(|(key, _)| key)
        .collect();
    assert!(missing.is_empty(), "keys the filter accepts but README.md does not document: {missing:?}");

    let unknown: Vec<&String> = documented.iter().filter(|k| !schema.contains_key(*k)).collect();
    assert!(unknown.is_empty(), "README.md documents keys the filter rejects: {unknown:?}");
}

#[test]
fn readme_types_match_the_schema_for_booleans_integers_and_durations() {
    let schema = schema();
    for (keys, ty) in readme_rows() {
        for key in &keys {
            let expected = match schema.get(key) {
                Some(Kind::Boolean) => "bool",
                Some(Kind::Integer) => "integer",
                Some(Kind::Duration) => "duration",
                _ => continue,
            };
            assert_eq!(ty, expected, "README.md type of `{key}`");
        }
    }
}

#[test]
fn the_table_parser_reads_escaped_pipes_and_several_keys_per_row() {
    let row = r"| `a.b`, `a.c` / `d` | string | `x\|y` | meaning |";
    let c = cells(row);
    assert_eq!(c.len(), 4);
    assert_eq!(backticked(&c[0]), ["a.b", "a.c", "d"]);
    assert_eq!(c[2], "`x|y`");
}
