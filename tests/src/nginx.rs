//! Running vigil's black-box tests on host-sim's nginx profile as on the Envoy one: the configuration vigil
//! needs there (the example's `nginx` section, the IdP as `host:port`) and what `examples/nginx/nginx.conf`
//! gives it (the wait location, and `proxy_set_header NAME $http_NAME;` for every header vigil sets or
//! blanks, so a blanked header is dropped as real nginx drops it).

use host_sim::{CalloutReply, CalloutRequest, Cluster, Profile, ShmEviction, Sim, SimBuilder};
use serde_json::{json, Value};
use std::time::Duration;

/// The IdP's callout target on nginx (no clusters there: `host:port`).
pub const IDP_NGINX_TARGET: &str = "idp.test:443";
/// `nginx.wait_upstream` / `nginx.wait_path`, as in the nginx example.
pub const WAIT_UPSTREAM: &str = "127.0.0.1:8081";
pub const WAIT_PATH: &str = "/_vigil/wait";

/// The IdP's callout target on `profile`.
pub fn idp_target(profile: Profile) -> &'static str {
    match profile {
        Profile::Envoy => crate::IDP_CLUSTER,
        Profile::Nginx => IDP_NGINX_TARGET,
    }
}

/// vigil's configuration for `profile`: on nginx, the `nginx` section and `idp.upstream` as `host:port`.
pub fn config_for(profile: Profile, config: Value) -> Value {
    match profile {
        Profile::Envoy => config,
        Profile::Nginx => crate::merge(
            config,
            json!({
                "nginx": { "wait_upstream": WAIT_UPSTREAM, "wait_path": WAIT_PATH },
                "idp": { "upstream": IDP_NGINX_TARGET }
            }),
        ),
    }
}

/// `poll_interval` of a configuration (vigil's default when absent or not parsable).
fn poll_interval(config: &Value) -> Duration {
    vigil::config::parse(config.to_string().as_bytes(), &|_| None).map(|c| c.poll_interval).unwrap_or(Duration::from_millis(50))
}

/// The header names nginx must send only with vigil's value: its credential, its cookies, the identity and
/// session headers (the e2e harness writes the same list into nginx.conf).
fn vigil_headers(config: &Value) -> Vec<String> {
    let mut names = vec!["authorization".to_string(), "cookie".to_string()];
    if let Some(header) = config.pointer("/downstream/header").and_then(Value::as_str) {
        names.push(header.to_ascii_lowercase());
    }
    if let Some(map) = config.get("identity_headers").and_then(Value::as_object) {
        names.extend(map.keys().map(|k| k.to_ascii_lowercase()));
    }
    if let Some(map) = config.get("session_headers").and_then(Value::as_object) {
        names.extend(map.values().filter_map(Value::as_str).map(str::to_ascii_lowercase));
    }
    let mut unique = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    unique
}

/// A sim for `config` (already `config_for(profile, ..)`) on `profile`, with the IdP behind `idp` and, on
/// nginx, the example's shared-data zone, wait location (a 504 after `poll_interval`, as `proxy_read_timeout`
/// gives) and `proxy_set_header` lines.
pub fn builder(builder: SimBuilder, profile: Profile, config: &Value, idp: Cluster) -> SimBuilder {
    let builder = builder.profile(profile).plugin_config(config.to_string()).cluster(idp_target(profile), idp);
    if profile == Profile::Envoy {
        return builder;
    }
    let poll = poll_interval(config);
    let wait = move |_: &CalloutRequest| {
        CalloutReply::ok(504).header("content-type", "text/html").body("<html>504 Gateway Time-out</html>\n").after(poll)
    };
    // The example's `shm_kv * 64m eviction=none;` (vigil's keys have no `ns/` prefix).
    let mut builder = builder.cluster(WAIT_UPSTREAM, Cluster::scripted(wait)).shm_kv("*", Some(64 << 20), ShmEviction::None);
    for name in vigil_headers(config) {
        builder = builder.proxy_set_header(name.clone(), format!("$http_{}", name.replace('-', "_")));
    }
    builder
}

/// Whether a callout is a paused request's wait call (nginx), not IdP traffic.
pub fn is_wait_call(call: &CalloutRequest) -> bool {
    call.cluster == WAIT_UPSTREAM
}

/// The callouts to the IdP (wait calls left out).
pub fn idp_callouts(sim: &Sim) -> Vec<CalloutRequest> {
    sim.callouts().iter().filter(|c| !is_wait_call(c)).cloned().collect()
}

/// Generates, for each `fn name(profile: Profile) { .. }`, a module `name` with the tests `envoy` and
/// `nginx` running it on each profile. `nginx_known_bug("why")` before a `fn` marks its nginx test ignored: a
/// difference vigil has on nginx that a test shows and a fix must remove (run it with `--ignored`).
#[macro_export]
macro_rules! on_both_profiles {
    () => {};
    ($(#[$meta:meta])* fn $name:ident($profile:ident: Profile) $body:block $($rest:tt)*) => {
        $(#[$meta])*
        fn $name($profile: host_sim::Profile) $body

        mod $name {
            #[test]
            fn envoy() {
                super::$name(host_sim::Profile::Envoy)
            }

            #[test]
            fn nginx() {
                super::$name(host_sim::Profile::Nginx)
            }
        }

        $crate::on_both_profiles!($($rest)*);
    };
    (nginx_known_bug($reason:literal) $(#[$meta:meta])* fn $name:ident($profile:ident: Profile) $body:block $($rest:tt)*) => {
        $(#[$meta])*
        fn $name($profile: host_sim::Profile) $body

        mod $name {
            #[test]
            fn envoy() {
                super::$name(host_sim::Profile::Envoy)
            }

            #[test]
            #[ignore = $reason]
            fn nginx() {
                super::$name(host_sim::Profile::Nginx)
            }
        }

        $crate::on_both_profiles!($($rest)*);
    };
}
