//! `make bench`: what vigil costs per request, measured on dist/vigil.wasm in
//! host-sim (wasmtime/cranelift, as Envoy's wasmtime runtime runs it).
//!
//! Wall-clock figures, so they belong here and not in tests. Each case runs
//! on one worker VM with a scripted IdP that answers instantly; the numbers
//! include host-sim's own cost of driving a stream (header maps, context
//! creation, on_log/on_done/on_delete), which the `baseline` line shows.

use host_sim::{Cluster, CalloutReply, Outcome, Request, Sim};
use jwt_simple::prelude::{Ed25519KeyPair, ES256KeyPair};
use serde_json::json;
use std::time::{Duration, Instant};
use vigil::token::{MintClaims, Signer};
use vigil_tests::fixture::{user, Fixture, Login, Options, SECOND_NS};
use vigil_tests::{vigil_wasm, AUDIENCE, ISSUER};

struct Figure {
    name: &'static str,
    per_request: Duration,
    requests: usize,
}

fn run(f: &mut Fixture, tokens: &[String], step: Duration) -> Duration {
    let started = Instant::now();
    for token in tokens {
        let s = f.get(0, token);
        if !step.is_zero() {
            f.advance(step);
        }
        if !matches!(f.sim.outcome(s), Outcome::Forwarded { .. }) {
            eprintln!("vigil-bench: a request was not forwarded: {:?}", f.sim.outcome(s));
            std::process::exit(1);
        }
    }
    started.elapsed() / tokens.len() as u32
}

fn fixture(patch: serde_json::Value) -> Fixture {
    Fixture::with(Options { workers: 1, config_patch: patch, ..Options::default() })
}

/// Tokens for `login`'s session, each with a distinct issue time (so none
/// is in the per-VM cache of verified tokens).
fn distinct_tokens(signer: &Signer, login: &Login, now_ns: u64, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let claims = MintClaims {
                iss: ISSUER.to_string(),
                aud: AUDIENCE.to_string(),
                sub: login.sub.clone(),
                sid: login.sid.clone(),
                iat_ns: now_ns - i as u64 * 1_000,
                exp_s: now_ns / SECOND_NS + 3600,
                extra: Default::default(),
            };
            signer.mint(&claims).unwrap_or_else(|e| panic!("mint: {e:?}"))
        })
        .collect()
}

fn asymmetric(name: &'static str, alg: &str, public_pem: String, signer: Signer, n: usize) -> Figure {
    let mut f = fixture(json!({
        "downstream": { "algorithms": [alg], "keys": [{ "kid": "a1", "alg": alg, "public_key": public_pem }] }
    }));
    let login = f.login(user("alice"));
    let tokens = distinct_tokens(&signer, &login, f.now_ns(), n);
    Figure { name, per_request: run(&mut f, &tokens, Duration::ZERO), requests: n }
}

fn baseline(n: usize) -> Figure {
    // The probe filter's pass-through path: what host-sim itself costs.
    let probe = vigil_tests::workspace_root().join("target/wasm32-wasip1/release/probe_host.wasm");
    let Ok(mut sim) = Sim::builder(&probe).cluster("idp", Cluster::scripted(|_| CalloutReply::ok(200))).build() else {
        return Figure { name: "baseline (probe filter; run `make probes`)", per_request: Duration::ZERO, requests: 0 };
    };
    let started = Instant::now();
    for _ in 0..n {
        let s = sim.send(0, Request::get("/"));
        let _ = sim.outcome(s);
    }
    Figure { name: "baseline: host-sim + a pass-through probe filter", per_request: started.elapsed() / n as u32, requests: n }
}

fn main() {
    let n = std::env::var("BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000usize);
    let mut figures = vec![baseline(n)];

    // Hot path: a fresh session and a token already verified on this VM.
    let mut f = fixture(json!({}));
    let login = f.login(user("alice"));
    let same: Vec<String> = vec![login.token.clone(); n];
    figures.push(Figure { name: "fresh session, cached token (HS256)", per_request: run(&mut f, &same, Duration::ZERO), requests: n });

    // First sight of each token: signature verification on every request.
    let hs = Signer::hs256(vigil_tests::HS_SECRET, Some("k1".into())).unwrap_or_else(|e| panic!("{e:?}"));
    let tokens = distinct_tokens(&hs, &login, f.now_ns(), n);
    figures.push(Figure { name: "fresh session, new token each time (HS256 verify)", per_request: run(&mut f, &tokens, Duration::ZERO), requests: n });

    let ed = Ed25519KeyPair::generate();
    let ed_signer = Signer::ed25519_pem(&ed.to_pem(), Some("a1".into())).unwrap_or_else(|e| panic!("{e:?}"));
    figures.push(asymmetric("fresh session, new token each time (EdDSA verify)", "EdDSA", ed.public_key().to_pem(), ed_signer, n / 5));
    let es = ES256KeyPair::generate();
    let es_pem = es.to_pem().unwrap_or_else(|e| panic!("{e:?}"));
    let es_public = es.public_key().to_pem().unwrap_or_else(|e| panic!("{e:?}"));
    let es_signer = Signer::es256_pem(&es_pem, Some("a1".into())).unwrap_or_else(|e| panic!("{e:?}"));
    figures.push(asymmetric("fresh session, new token each time (ES256 verify)", "ES256", es_public, es_signer, n / 10));

    // Every request due: lease, userinfo callout, result, resume.
    let mut f = fixture(json!({ "revalidate_interval": "1s", "poll_interval": "1s" }));
    f.idp.set_latency(Duration::ZERO);
    let login = f.login(user("alice"));
    let due: Vec<String> = vec![login.token.clone(); n / 5];
    f.advance(Duration::from_millis(1100));
    let per = run(&mut f, &due, Duration::from_millis(1100));
    figures.push(Figure { name: "due session: revalidation round trip (userinfo, instant IdP)", per_request: per, requests: due.len() });
    if f.idp.userinfo_calls() as usize != due.len() {
        eprintln!("vigil-bench: expected one userinfo call per request, got {}", f.idp.userinfo_calls());
        std::process::exit(1);
    }

    let size = std::fs::metadata(vigil_wasm()).map(|m| m.len()).unwrap_or(0);
    println!("vigil-bench: dist/vigil.wasm {size} bytes ({:.0} KiB)", size as f64 / 1024.0);
    println!("{:<66} {:>12} {:>9}", "case", "per request", "requests");
    for fig in &figures {
        println!("{:<66} {:>9.1} µs {:>9}", fig.name, fig.per_request.as_secs_f64() * 1e6, fig.requests);
    }
}
