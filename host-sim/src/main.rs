//! `host-sim serve …`: run a proxy-wasm filter as a real HTTP/1.1 proxy. `host-sim check …`: load and start it.

use clap::{Parser, Subcommand, ValueEnum};
use host_sim::serve::{self, ServeConfig};
use host_sim::{FailurePolicy, Profile, Sim};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "host-sim", about = "A proxy-wasm host on wasmtime with Envoy's semantics (or nginx's: --profile nginx)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProfileArg {
    Envoy,
    Nginx,
}

// The names are Envoy's (FAIL_CLOSED, FAIL_OPEN, FAIL_RELOAD), hence the shared prefix.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    FailClosed,
    FailOpen,
    FailReload,
}

#[derive(clap::Args)]
struct Module {
    /// The filter module (.wasm, wasm32-wasip1, proxy-wasm ABI 0.2.1).
    #[arg(long)]
    wasm: PathBuf,
    /// Plugin configuration file (passed as-is to on_configure).
    #[arg(long)]
    config: Option<PathBuf>,
    /// VM configuration file (passed to on_vm_start).
    #[arg(long)]
    vm_config: Option<PathBuf>,
    #[arg(long, default_value = "")]
    vm_id: String,
    /// VM environment variable NAME=VALUE (repeatable).
    #[arg(long = "env", value_parser = parse_pair)]
    env: Vec<(String, String)>,
    /// Callout cluster NAME=HOST:PORT (repeatable).
    #[arg(long = "cluster", value_parser = parse_pair)]
    clusters: Vec<(String, String)>,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[arg(long, value_enum, default_value = "envoy")]
    profile: ProfileArg,
    #[arg(long, value_enum, default_value = "fail-closed")]
    failure_policy: PolicyArg,
    /// nginx: HOST:PORT=DELAY, a callout target that answers 504 after DELAY (10ms, 1s), as vigil's nginx wait
    /// location does (repeatable).
    #[arg(long = "wait-location", value_parser = parse_wait)]
    wait_locations: Vec<(String, std::time::Duration)>,
    /// nginx: NAME=VALUE, a `proxy_set_header` line of the location (VALUE: a literal or $http_<name>; repeatable).
    #[arg(long = "proxy-set-header", value_parser = parse_pair)]
    proxy_set_headers: Vec<(String, String)>,
    /// nginx: a `shm_queue` zone (repeatable).
    #[arg(long = "shm-queue")]
    shm_queues: Vec<String>,
    /// Envoy: a request path whose route runs Envoy's buffer filter after the wasm filter, so the router opens
    /// no upstream request before the whole request is in (repeatable; elsewhere it opens one as soon as the
    /// headers go on, and a local reply then resets it).
    #[arg(long = "buffered-path")]
    buffered_paths: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP/1.1 on --listen, through the filter, to --upstream.
    Serve {
        #[command(flatten)]
        module: Module,
        #[arg(long, default_value = "127.0.0.1:10000")]
        listen: SocketAddr,
        /// Where forwarded requests go (HOST:PORT, plain HTTP/1.1).
        #[arg(long)]
        upstream: String,
    },
    /// Load the module and run its start sequence (canary, main, workers); exit non-zero if rejected.
    Check {
        #[command(flatten)]
        module: Module,
    },
}

fn parse_wait(s: &str) -> Result<(String, std::time::Duration), String> {
    let (address, delay) = s.split_once('=').ok_or_else(|| format!("expected HOST:PORT=DELAY, got {s:?}"))?;
    let (digits, unit) = delay.split_at(delay.find(|c: char| !c.is_ascii_digit()).unwrap_or(delay.len()));
    let n: u64 = digits.parse().map_err(|_| format!("bad delay {delay:?} (10ms, 1s)"))?;
    let delay = match unit {
        "ms" => std::time::Duration::from_millis(n),
        "s" => std::time::Duration::from_secs(n),
        _ => return Err(format!("bad delay {delay:?} (10ms, 1s)")),
    };
    Ok((address.to_string(), delay))
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))
}

fn config(module: &Module, listen: SocketAddr, upstream: String) -> ServeConfig {
    ServeConfig {
        wasm: module.wasm.clone(),
        config: module.config.clone(),
        listen,
        upstream,
        clusters: module.clusters.clone(),
        workers: module.workers.max(1),
        profile: match module.profile {
            ProfileArg::Envoy => Profile::Envoy,
            ProfileArg::Nginx => Profile::Nginx,
        },
        env: module.env.clone(),
        vm_config: module.vm_config.clone(),
        vm_id: module.vm_id.clone(),
        failure_policy: match module.failure_policy {
            PolicyArg::FailClosed => FailurePolicy::FailClosed,
            PolicyArg::FailOpen => FailurePolicy::FailOpen,
            PolicyArg::FailReload => FailurePolicy::FailReload,
        },
        wait_locations: module.wait_locations.clone(),
        proxy_set_headers: module.proxy_set_headers.clone(),
        shm_queues: module.shm_queues.clone(),
        buffered_paths: module.buffered_paths.clone(),
    }
}

fn check(cfg: &ServeConfig) -> anyhow::Result<()> {
    if !cfg.wasm.exists() {
        anyhow::bail!("wasm file not found: {}", cfg.wasm.display());
    }
    let plugin_config = match &cfg.config {
        Some(p) => std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", p.display()))?,
        None => Vec::new(),
    };
    let mut builder = Sim::builder(&cfg.wasm).plugin_config(plugin_config).workers(cfg.workers).profile(cfg.profile).echo_logs(true);
    for name in &cfg.shm_queues {
        builder = builder.shm_queue(name.clone());
    }
    for (k, v) in &cfg.env {
        builder = builder.env(k.clone(), v.clone());
    }
    for (name, _) in &cfg.clusters {
        builder = builder.cluster(name.clone(), host_sim::Cluster::manual());
    }
    let sim = builder.build()?;
    println!("ok: {} started on {} workers + main (sha256 {})", cfg.wasm.display(), cfg.workers, sim.module_sha256());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { module, listen, upstream } => serve::run(config(&module, listen, upstream)),
        Command::Check { module } => check(&config(&module, SocketAddr::from(([127, 0, 0, 1], 0)), String::new())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("host-sim: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
