//! The deployment examples under examples/ work as written: every YAML file
//! parses, each proxy's example carries the same vigil configuration (only
//! `idp.upstream`, as each proxy names the IdP differently, and nginx's
//! `wake_queues` differ), that
//! upstream is something the proxy can route to, and the secrets the
//! configuration reads from the environment are put there by the example.
//!
//! The configuration is extracted exactly as each proxy hands it to
//! on_configure: Envoy's StringValue verbatim, Istio's pluginConfig as JSON,
//! nginx's `proxy_wasm` argument after nginx's own unquoting.
//!
//! These tests read YAML as YAML 1.2. Kubernetes reads it as YAML 1.1, where
//! unquoted `0000…`, `yes` or `off` are not strings: tests/istio
//! (`make istio-test`) reads the Istio files the way Kubernetes does, checks
//! that every unquoted value reads the same under both, and validates every
//! object against Istio's CRD schemas.

#[path = "examples/nginx_conf.rs"]
mod nginx_conf;

#[path = "examples/extract.rs"]
#[allow(dead_code)]
mod extract;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use extract::{
    all_configurations, envoy_configuration, envoy_plugin, envoy_yaml, example_env,
    examples_dir, istio_configuration, json, k8s_object, nginx_configuration,
    vm_env_names, yaml_documents,
};

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            found.push(path);
        }
    }
}

fn upstream(config: &Value) -> &str {
    config["idp"]["upstream"].as_str().expect("idp.upstream")
}

/// Environment variables the configuration reads secrets from.
fn secret_env_names(example: &str, config: &Value) -> BTreeSet<String> {
    assert!(
        config["idp"].get("client_secret").is_none(),
        "{example}: inline client secret"
    );
    let mut names = BTreeSet::new();
    names.insert(
        config["idp"]["client_secret_env"]
            .as_str()
            .expect("client_secret_env")
            .to_owned(),
    );
    // Verification keys, and the key vigil's login signs its tokens with.
    let keys = config["downstream"]["keys"].as_array().cloned().unwrap_or_default();
    let signing = config["login"]["signing_key"].clone();
    for key in keys.iter().chain(std::iter::once(&signing)).filter(|k| k.is_object()) {
        for inline in ["secret", "private_key"] {
            assert!(key.get(inline).is_none(), "{example}: inline key material");
        }
        for env in ["secret_env", "private_key_env"] {
            if let Some(name) = key[env].as_str() {
                names.insert(name.to_owned());
            }
        }
    }
    assert!(names.len() >= 2, "{example}: client secret and token key from the environment");
    names
}

#[test]
fn every_yaml_file_under_examples_parses() {
    let mut files = Vec::new();
    yaml_files(&examples_dir(), &mut files);
    assert!(files.len() >= 4, "found only {files:?}");
    for path in files {
        let relative = path
            .strip_prefix(examples_dir())
            .expect("under examples")
            .to_string_lossy()
            .into_owned();
        let docs = yaml_documents(&relative);
        assert!(!docs.is_empty(), "{relative}: empty");
        for doc in &docs {
            assert!(doc.is_object(), "{relative}: a document is not a mapping");
            if relative.starts_with("istio/") {
                for field in ["apiVersion", "kind"] {
                    assert!(doc[field].is_string(), "{relative}: object without {field}");
                }
                assert!(
                    doc["metadata"]["name"].is_string(),
                    "{relative}: object without a name"
                );
            }
        }
    }
}

/// Keys that may differ between the examples, and why.
const PER_PROXY_KEYS: [(&str, &str); 3] = [
    ("idp.upstream", "each proxy names the IdP differently"),
    ("wake_queues", "nginx cannot host per-VM queues"),
    ("nginx", "nginx's control flow and wait location"),
];

#[test]
fn the_three_examples_share_one_configuration_except_per_proxy_keys() {
    let mut configs = all_configurations().into_iter().map(|(example, bytes)| {
        let mut config = json(example, &bytes);
        for (key, _) in PER_PROXY_KEYS {
            match key.split_once('.') {
                Some((section, field)) => config[section][field] = Value::Null,
                None => config[key] = Value::Null,
            }
        }
        (example, config)
    });
    let (first, reference) = configs.next().expect("three examples");
    for (example, config) in configs {
        assert_eq!(
            config, reference,
            "{example} differs from {first} beyond {PER_PROXY_KEYS:?}"
        );
    }
}

#[test]
fn only_the_nginx_example_selects_the_nginx_control_flow_without_queues() {
    for (example, bytes) in all_configurations() {
        let config = json(example, &bytes);
        let nginx = example == "nginx";
        // The `nginx` section turns the queues off (vigil refuses `wake_queues: true` with it).
        assert_eq!(config.get("nginx").is_some(), nginx, "{example}");
        let wake_queues = config["wake_queues"].as_bool().unwrap_or(!nginx);
        assert_eq!(wake_queues, !nginx, "{example}");
    }
}

#[test]
fn envoy_upstream_is_a_tls_cluster_for_the_idp() {
    let envoy = envoy_yaml();
    let config = json("envoy", &envoy_configuration());
    let authority = config["idp"]["authority"].as_str().expect("idp.authority");
    let clusters = envoy["static_resources"]["clusters"]
        .as_array()
        .expect("clusters");
    let cluster = clusters
        .iter()
        .find(|c| c["name"] == upstream(&config))
        .unwrap_or_else(|| panic!("no cluster named {}", upstream(&config)));
    let tls = &cluster["transport_socket"]["typed_config"];
    assert_eq!(tls["sni"], authority);
    assert!(
        tls["common_tls_context"]["validation_context"]["trusted_ca"]["filename"].is_string(),
        "without trusted_ca Envoy does not verify the IdP"
    );
    let plugin = envoy_plugin(&envoy);
    assert_eq!(plugin["failure_policy"], "FAIL_CLOSED");
    assert!(plugin["vm_config"]["code"]["local"]["filename"].is_string());
}

#[test]
fn istio_upstream_is_the_service_entry_cluster_with_tls_origination() {
    let config = json("istio", &istio_configuration());
    let service_entry = k8s_object("istio/idp-egress.yaml", "ServiceEntry");
    let rule = k8s_object("istio/idp-egress.yaml", "DestinationRule");
    let host = service_entry["spec"]["hosts"][0]
        .as_str()
        .expect("ServiceEntry host");
    let port = service_entry["spec"]["ports"][0]["number"]
        .as_u64()
        .expect("ServiceEntry port");
    assert_eq!(upstream(&config), format!("outbound|{port}||{host}"));
    assert_eq!(
        service_entry["spec"]["ports"][0]["protocol"], "HTTP",
        "TLS pass-through (HTTPS) would carry the plain callouts unencrypted"
    );
    assert_eq!(rule["spec"]["host"], host);
    let tls = rule["spec"]["trafficPolicy"]["portLevelSettings"]
        .as_array()
        .expect("portLevelSettings")
        .iter()
        .find(|s| s["port"]["number"].as_u64() == Some(port))
        .map(|s| &s["tls"])
        .expect("TLS settings for the IdP port");
    assert_eq!(tls["mode"], "SIMPLE");
    assert_eq!(tls["sni"], host);

    let plugin = k8s_object("istio/wasmplugin.yaml", "WasmPlugin");
    let spec = &plugin["spec"];
    assert!(spec["url"]
        .as_str()
        .is_some_and(|u| u.starts_with("oci://")));
    let sha = spec["sha256"].as_str().expect("sha256");
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "sha256 {sha}"
    );
    assert_eq!(spec["phase"], "AUTHN");
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
}

#[test]
fn nginx_upstream_is_host_and_port_with_shared_memory_declared() {
    let config = json("nginx", &nginx_configuration());
    let (host, port) = upstream(&config).rsplit_once(':').expect("host:port");
    assert!(port.parse::<u16>().is_ok(), "port {port}");
    assert_eq!(config["idp"]["authority"], host);

    let statements = extract::nginx_statements();
    let in_wasm_block = |name: &str| {
        statements
            .iter()
            .find(|s| s.context == ["wasm"] && s.args.first().map(String::as_str) == Some(name))
            .map(|s| s.args.clone())
    };
    let module = in_wasm_block("module").expect("wasm {{ module ... }}");
    assert_eq!(module.get(1).map(String::as_str), Some("vigil"));
    let kv = in_wasm_block("shm_kv").expect("wasm {{ shm_kv ... }}");
    assert_eq!(
        kv.get(1).map(String::as_str),
        Some("*"),
        "vigil's keys fall into the default zone"
    );
    // vigil registers no queue there (wake_queues: false), so declaring one
    // would only suggest it does.
    assert!(
        in_wasm_block("shm_queue").is_none(),
        "wasm {{ shm_queue ... }} declared, but vigil's queues are per VM"
    );
}

#[test]
fn secrets_come_from_variables_each_proxy_passes_to_the_vm() {
    for (example, bytes) in all_configurations() {
        let names = secret_env_names(example, &json(example, &bytes));
        let passed = vm_env_names(example);
        assert!(
            names.is_subset(&passed),
            "{example} passes {passed:?} to the VM, the configuration needs {names:?}"
        );
    }
    // Istio copies the variables from the istio-proxy container, which gets
    // them from the Secret.
    let names = secret_env_names("istio", &json("istio", &istio_configuration()));
    let deployment = k8s_object("istio/client-secret.yaml", "Deployment");
    let proxy = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .expect("an istio-proxy container override");
    let from_secret: BTreeSet<String> = proxy["env"]
        .as_array()
        .expect("istio-proxy env")
        .iter()
        .filter(|e| e["valueFrom"]["secretKeyRef"]["name"].is_string())
        .filter_map(|e| e["name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        names.is_subset(&from_secret),
        "istio-proxy gets {from_secret:?}, needs {names:?}"
    );
}

#[test]
fn every_example_configuration_is_accepted_by_the_filter() {
    for (example, bytes) in all_configurations() {
        let config = vigil::config::parse(&bytes, &example_env)
            .unwrap_or_else(|e| panic!("{example}: vigil rejects its configuration: {e}"));
        let expected_upstream = json(example, &bytes)["idp"]["upstream"]
            .as_str()
            .map(str::to_owned);
        assert_eq!(Some(config.idp.upstream), expected_upstream, "{example}");
    }
}

#[test]
fn example_configurations_need_their_secret_variables() {
    // Without the variables the proxies pass, vigil must refuse to start
    // rather than run with an empty secret.
    for (example, bytes) in all_configurations() {
        let error = vigil::config::parse(&bytes, &|_| None)
            .err()
            .unwrap_or_else(|| panic!("{example}: accepted without its secret variables"));
        assert!(error.key().contains("secret_env"), "{example}: {error}");
    }
}

#[test]
fn every_example_configuration_matches_the_generated_schema() {
    let schema: Value =
        serde_json::from_str(&vigil::config::raw::json_schema()).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for (example, bytes) in all_configurations() {
        let instance = json(example, &bytes);
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{example}: {errors:#?}");
    }
    // The schema is not vacuous: it rejects what the parser rejects.
    let mut wrong = json("envoy", &envoy_configuration());
    wrong["revalidate_intervall"] = Value::from("60s");
    assert!(
        !validator.is_valid(&wrong),
        "unknown key accepted by the schema"
    );
}
