//! Reads the deployment examples under examples/ back the way each proxy
//! does: Envoy's StringValue verbatim, Istio's pluginConfig as JSON, nginx's
//! `proxy_wasm` argument after nginx's own unquoting; and the environment
//! variables each proxy hands to the VM. Shared by examples.rs (static
//! checks) and examples_in_host.rs (the configurations in host-sim).
//!
//! Include with `#[path = "examples/nginx_conf.rs"] mod nginx_conf;` and
//! `#[path = "examples/extract.rs"] mod extract;` at the test crate root.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::nginx_conf;

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

pub fn read(relative: &str) -> String {
    let path = examples_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// All documents of a (multi-document) YAML file, as JSON values.
pub fn yaml_documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{relative}: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The Kubernetes object of a given kind in an Istio example file.
pub fn k8s_object(relative: &str, kind: &str) -> Value {
    yaml_documents(relative)
        .into_iter()
        .find(|doc| doc["kind"] == kind)
        .unwrap_or_else(|| panic!("{relative}: no {kind}"))
}

/// The first object (depth first) whose "name" is `name`.
pub fn find_named<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) if map.get("name").and_then(Value::as_str) == Some(name) => Some(value),
        Value::Object(map) => map.values().find_map(|v| find_named(v, name)),
        Value::Array(items) => items.iter().find_map(|v| find_named(v, name)),
        _ => None,
    }
}

pub fn envoy_yaml() -> Value {
    yaml_documents("envoy/envoy.yaml").remove(0)
}

/// `typed_config.config` of the envoy.filters.http.wasm filter.
pub fn envoy_plugin(envoy: &Value) -> &Value {
    let filter = find_named(envoy, "envoy.filters.http.wasm").expect("envoy.yaml: no wasm filter");
    &filter["typed_config"]["config"]
}

/// The bytes Envoy hands to on_configure.
pub fn envoy_configuration() -> Vec<u8> {
    let envoy = envoy_yaml();
    let configuration = &envoy_plugin(&envoy)["configuration"];
    assert_eq!(
        configuration["@type"], "type.googleapis.com/google.protobuf.StringValue",
        "a StringValue reaches the plugin unwrapped"
    );
    configuration["value"]
        .as_str()
        .expect("configuration.value")
        .as_bytes()
        .to_vec()
}

/// The bytes Istio hands to on_configure: pluginConfig serialized as JSON.
pub fn istio_configuration() -> Vec<u8> {
    let plugin = k8s_object("istio/wasmplugin.yaml", "WasmPlugin");
    serde_json::to_vec(&plugin["spec"]["pluginConfig"]).expect("pluginConfig to JSON")
}

pub fn nginx_statements() -> Vec<nginx_conf::Statement> {
    nginx_conf::statements(&read("nginx/nginx.conf"))
}

/// The bytes nginx hands to on_configure: the `proxy_wasm vigil` argument.
pub fn nginx_configuration() -> Vec<u8> {
    let statements = nginx_statements();
    let directive = statements
        .iter()
        .find(|s| s.args.first().map(String::as_str) == Some("proxy_wasm"))
        .expect("nginx.conf: no proxy_wasm directive");
    assert_eq!(directive.args.get(1).map(String::as_str), Some("vigil"));
    directive
        .args
        .get(2)
        .expect("proxy_wasm has a configuration")
        .as_bytes()
        .to_vec()
}

/// (example, configuration bytes) for the three proxies.
pub fn all_configurations() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("envoy", envoy_configuration()),
        ("istio", istio_configuration()),
        ("nginx", nginx_configuration()),
    ]
}

pub fn json(example: &str, bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{example}: configuration is not JSON: {e}"))
}

fn strings(values: &Value, what: &str) -> BTreeSet<String> {
    values
        .as_array()
        .unwrap_or_else(|| panic!("{what} is not a list"))
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Names of the environment variables the example's proxy passes to the VM:
/// Envoy's `host_env_keys`, Istio's `vmConfig.env` (`valueFrom: HOST`),
/// nginx's top-level `env` directives.
pub fn vm_env_names(example: &str) -> BTreeSet<String> {
    match example {
        "envoy" => strings(
            &envoy_plugin(&envoy_yaml())["vm_config"]["environment_variables"]["host_env_keys"],
            "host_env_keys",
        ),
        "istio" => {
            let plugin = k8s_object("istio/wasmplugin.yaml", "WasmPlugin");
            plugin["spec"]["vmConfig"]["env"]
                .as_array()
                .expect("vmConfig.env")
                .iter()
                .filter(|e| e["valueFrom"] == "HOST")
                .filter_map(|e| e["name"].as_str().map(str::to_owned))
                .collect()
        }
        "nginx" => nginx_statements()
            .into_iter()
            .filter(|s| s.context.is_empty() && s.args.first().map(String::as_str) == Some("env"))
            .filter_map(|s| s.args.get(1).cloned())
            .collect(),
        other => panic!("no example {other}"),
    }
}

/// Values for the secrets the examples read by name (what an operator puts
/// in the proxy's environment; the token key is at least 32 bytes).
pub fn example_env(name: &str) -> Option<String> {
    match name {
        "VIGIL_CLIENT_SECRET" => Some("client-secret-for-the-example-tests".to_owned()),
        "VIGIL_TOKEN_KEY" => Some("token-key-for-the-example-tests-0123456789abcdef".to_owned()),
        _ => None,
    }
}
