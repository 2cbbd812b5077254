//! Every example's plugin configuration, extracted as its proxy hands it
//! over, starts the release `dist/vigil.wasm` in host-sim: through the
//! canary, main-thread and worker VMs' on_vm_start/on_configure, with the
//! VM environment that proxy passes (the secrets) and that proxy's profile
//! (the nginx example on the nginx profile). A started filter then answers
//! an API request without a token with 401 and, once it has fetched the
//! IdP's discovery document, sends a browser to the IdP's login page, as
//! the example READMEs promise.
//! A configuration vigil refuses fails the start with one log line naming
//! the key, which is what the operator sees in the proxy's log.

#[path = "examples/nginx_conf.rs"]
mod nginx_conf;

#[path = "examples/extract.rs"]
#[allow(dead_code)]
mod extract;

use extract::{all_configurations, example_env, json, vm_env_names};
use host_sim::{
    CalloutReply, CalloutRequest, Cluster, Outcome, Profile, Request, Sim, SimBuilder, SimError,
};
use serde_json::Value;
use std::time::Duration;
use vigil_tests::vigil_wasm;

/// Worker VMs: the examples run `--concurrency 2` / `worker_processes 2`.
const WORKERS: usize = 2;

fn profile(example: &str) -> Profile {
    match example {
        "nginx" => Profile::Nginx,
        _ => Profile::Envoy,
    }
}

/// host-sim set up as the example's proxy would be: its profile, the
/// variables it passes to the VM, the IdP callout target it defines and,
/// for nginx, the `shm_queue` zones nginx.conf declares (ngx_wasm_module
/// traps when a filter registers a queue no zone declares).
fn proxy_for(example: &str, config: &[u8]) -> SimBuilder {
    let mut builder = proxy_without_env(example, config);
    for name in vm_env_names(example) {
        let value = example_env(&name)
            .unwrap_or_else(|| panic!("{example} passes {name}, which the tests have no value for"));
        builder = builder.env(name, value);
    }
    builder
}

/// The example's proxy with an empty VM environment.
fn proxy_without_env(example: &str, config: &[u8]) -> SimBuilder {
    let upstream = json(example, config)["idp"]["upstream"]
        .as_str()
        .expect("idp.upstream")
        .to_owned();
    let mut builder = Sim::builder(vigil_wasm())
        .plugin_config(config.to_vec())
        .workers(WORKERS)
        .profile(profile(example))
        .cluster(upstream, Cluster::manual());
    if example == "nginx" {
        for zone in nginx_shm_queues() {
            builder = builder.shm_queue(zone);
        }
    }
    builder
}

/// Names of the `shm_queue NAME SIZE;` zones in the nginx example's `wasm {}`.
fn nginx_shm_queues() -> Vec<String> {
    extract::nginx_statements()
        .into_iter()
        .filter(|s| s.context == ["wasm"] && s.args.first().map(String::as_str) == Some("shm_queue"))
        .filter_map(|s| s.args.get(1).cloned())
        .collect()
}

fn start(example: &str, config: &[u8]) -> Result<Sim, SimError> {
    proxy_for(example, config).build()
}

#[test]
fn every_example_starts_vigil_in_host_sim_and_answers_401_without_a_token() {
    for (example, config) in all_configurations() {
        let mut sim = start(example, &config)
            .unwrap_or_else(|e| panic!("{example}: vigil did not start: {e}"));
        assert!(sim.traps().is_empty(), "{example}: {:?}", sim.traps());
        let callouts_before = sim.callouts().len();
        for vm in 0..WORKERS {
            let stream = sim.send(vm, Request::get("/"));
            match sim.outcome(stream) {
                Outcome::LocalReply(reply) => assert_eq!(
                    reply.status,
                    401,
                    "{example}, worker {vm}\n{}",
                    sim.logs_text()
                ),
                other => panic!("{example}, worker {vm}: {other:?}\n{}", sim.logs_text()),
            }
        }
        assert_eq!(
            sim.callouts().len(),
            callouts_before,
            "{example}: a request without a token caused IdP traffic"
        );
    }
}

/// The start fails with ConfigRejected, and exactly one of the lines vigil
/// logged names `key`; that line is returned.
fn rejected_naming(example: &str, builder: SimBuilder, key: &str) -> String {
    match builder.build() {
        Ok(sim) => panic!(
            "{example}: accepted a configuration it should refuse ({key})\n{}",
            sim.logs_text()
        ),
        Err(SimError::ConfigRejected { logs, .. }) => {
            let naming: Vec<&String> = logs.iter().filter(|l| l.contains(key)).collect();
            assert_eq!(naming.len(), 1, "{example}: lines naming {key}: {logs:#?}");
            naming[0].clone()
        }
        Err(other) => panic!("{example}: expected a rejected configuration, got {other}"),
    }
}

fn with_change(example: &str, config: &[u8], change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value = json(example, config);
    change(&mut value);
    serde_json::to_vec(&value).expect("config to JSON")
}

#[test]
fn a_misspelt_key_in_any_example_is_refused_with_one_line_naming_it() {
    for (example, config) in all_configurations() {
        let broken = with_change(example, &config, |c| {
            c["revalidate_intervall"] = Value::from("60s");
        });
        let line = rejected_naming(example, proxy_for(example, &broken), "revalidate_intervall");
        assert!(line.contains("vigil"), "{example}: {line}");

        let nested = with_change(example, &config, |c| {
            c["idp"]["client_secret_envv"] = Value::from("X");
        });
        rejected_naming(example, proxy_for(example, &nested), "idp.client_secret_envv");
    }
}

#[test]
fn a_wrong_value_in_any_example_is_refused_with_one_line_naming_the_key() {
    for (example, config) in all_configurations() {
        let bad_duration = with_change(example, &config, |c| {
            c["revalidate_timeout"] = Value::from("10 seconds");
        });
        rejected_naming(example, proxy_for(example, &bad_duration), "revalidate_timeout");

        let wrong_type = with_change(example, &config, |c| {
            c["max_sessions"] = Value::from("many");
        });
        rejected_naming(example, proxy_for(example, &wrong_type), "max_sessions");
    }
}

#[test]
fn an_example_started_without_its_secret_variables_is_refused_without_leaking_them() {
    for (example, config) in all_configurations() {
        let builder = proxy_without_env(example, &config);
        let line = rejected_naming(example, builder, "secret_env");
        assert!(
            line.contains("VIGIL_CLIENT_SECRET") || line.contains("VIGIL_TOKEN_KEY"),
            "{example}: the line names the missing variable: {line}"
        );
    }
    // With the variables set, nothing logged carries their values.
    for (example, config) in all_configurations() {
        let sim = start(example, &config).unwrap_or_else(|e| panic!("{example}: {e}"));
        let logs = sim.logs_text();
        for name in vm_env_names(example) {
            let value = example_env(&name).unwrap_or_default();
            assert!(!logs.contains(&value), "{example}: {name}'s value logged");
        }
    }
}

/// The IdP of the examples (`https://idp.example.com`): a scripted discovery
/// document naming it; its JWKS is the test OpenID provider's; any other
/// path is a 404.
fn example_idp(req: &CalloutRequest) -> CalloutReply {
    let base = "https://idp.example.com";
    let json = |body: Value| {
        CalloutReply::ok(200)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .after(Duration::from_millis(5))
    };
    match req.path().split('?').next().unwrap_or_default() {
        "/.well-known/openid-configuration" => json(serde_json::json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/oauth2/token"),
            "userinfo_endpoint": format!("{base}/oauth2/userinfo"),
            "jwks_uri": format!("{base}/jwks"),
            "end_session_endpoint": format!("{base}/logout"),
            "revocation_endpoint": format!("{base}/revoke"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"]
        })),
        _ => CalloutReply::ok(404).after(Duration::from_millis(5)),
    }
}

fn idp_with_keys() -> impl Fn(&CalloutRequest) -> CalloutReply + Send + Sync + 'static {
    let keys = vigil_tests::oidc::ScriptedOidc::new().handler();
    move |req: &CalloutRequest| {
        if req.path() == vigil_tests::oidc::JWKS_PATH {
            keys(req)
        } else {
            example_idp(req)
        }
    }
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[test]
fn every_example_sends_a_browser_without_a_session_to_the_idp_login() {
    for (example, config) in all_configurations() {
        let upstream = json(example, &config)["idp"]["upstream"]
            .as_str()
            .expect("idp.upstream")
            .to_owned();
        let mut sim = proxy_for(example, &config)
            .cluster(upstream, Cluster::scripted(idp_with_keys()))
            .build()
            .unwrap_or_else(|e| panic!("{example}: vigil did not start: {e}"));
        // Discovery and the JWKS are fetched on the first ticks.
        sim.advance(Duration::from_secs(2));
        let paths: Vec<String> = sim.callouts().iter().map(|c| c.path().to_owned()).collect();
        assert!(
            paths.iter().any(|p| p == "/.well-known/openid-configuration"),
            "{example}: callouts {paths:?}\n{}",
            sim.logs_text()
        );
        let navigation = Request::get("/app?x=1")
            .header("accept", "text/html")
            .header("sec-fetch-mode", "navigate");
        for vm in 0..WORKERS {
            let stream = sim.send(vm, navigation.clone());
            let Outcome::LocalReply(reply) = sim.outcome(stream) else {
                panic!("{example}, worker {vm}: {:?}\n{}", sim.outcome(stream), sim.logs_text())
            };
            assert_eq!(reply.status, 302, "{example}, worker {vm}\n{}", sim.logs_text());
            let location = reply.header("location").expect("location").to_owned();
            assert!(
                location.starts_with("https://idp.example.com/authorize?"),
                "{example}: {location}"
            );
            assert_eq!(query_param(&location, "client_id").as_deref(), Some("vigil-demo"));
            assert_eq!(
                query_param(&location, "redirect_uri").as_deref(),
                Some("https://app.example.com/oauth2/callback")
            );
            assert_eq!(query_param(&location, "code_challenge_method").as_deref(), Some("S256"));
        }
        assert!(sim.traps().is_empty(), "{example}: {:?}", sim.traps());
    }
}
