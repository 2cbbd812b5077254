// Real Envoy (the official release binary, `make envoy`), configured from examples/envoy/envoy.yaml itself: only the
// ports, file paths, TLS to the IdP (plain http on loopback here) and the plugin configuration (the scenario's) are
// replaced, so the example stays what is tested. `--concurrency` workers, the V8 runtime, FAIL_CLOSED as shipped.

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

import { startProcess } from './process.mjs';

// A wasm trap or VM failure, a panic inside the filter, a crash, vigil logging at error or critical level.
export const ENVOY_PROBLEMS = [
  /\[(error|critical)\]\[wasm\]/,
  /Function: proxy_on_\w+ failed/,
  /wasm trap|Uncaught RuntimeError|panicked at/i,
  /Caught Segmentation fault|Backtrace \(use tools\/stack_decode|\[critical\]\[backtrace\]/,
];

export function envoyBin(root) {
  return process.env.ENVOY_BIN ?? join(root, '.tools', 'envoy-1.40.0', 'envoy', '_bin', 'envoy');
}

export const ENVOY_EXAMPLE = 'examples/envoy/envoy.yaml';

// The example's wasm filter entry (HttpConnectionManager → http_filters → envoy.filters.http.wasm).
export function wasmFilterOf(config) {
  const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  return hcm.http_filters.find((f) => f.name === 'envoy.filters.http.wasm').typed_config;
}

const loopbackCluster = (cluster, port) => ({
  ...cluster,
  type: 'STATIC',
  dns_lookup_family: undefined,
  transport_socket: undefined,
  load_assignment: {
    cluster_name: cluster.name,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
  },
});

// examples/envoy/envoy.yaml with this run's ports, module path and plugin configuration. `pluginConfig` is the
// object vigil gets (serialised as the example does: a StringValue). `edit(config)` may change more (the
// Envoy-specific checks use it for a failure policy or a broken module).
export function envoyConfig({ root, wasm, pluginConfig, port, adminPort, upstreamPort, idpPort, edit }) {
  const config = parse(readFileSync(join(root, ENVOY_EXAMPLE), 'utf8'));
  config.admin.address.socket_address.port_value = adminPort;
  const listener = config.static_resources.listeners[0];
  listener.address.socket_address = { address: '127.0.0.1', port_value: port };
  const wasmFilter = wasmFilterOf(config);
  wasmFilter.config.configuration.value = JSON.stringify(pluginConfig);
  wasmFilter.config.vm_config.code.local.filename = wasm;
  const ports = { backend: upstreamPort, idp: idpPort };
  config.static_resources.clusters = config.static_resources.clusters.map((c) => {
    if (!(c.name in ports)) throw new Error(`${ENVOY_EXAMPLE}: unexpected cluster ${c.name}`);
    return JSON.parse(JSON.stringify(loopbackCluster(c, ports[c.name])));
  });
  edit?.(config);
  return config;
}

// Per-worker downstream connection counts from the admin stats (listener.<addr>.worker_N.downstream_cx_total).
async function connectionsPerWorker(adminPort, port) {
  const res = await fetch(`http://127.0.0.1:${adminPort}/stats?format=json&filter=worker_\\d+\\.downstream_cx_total`);
  const { stats } = await res.json();
  const counts = {};
  for (const { name, value } of stats) {
    const m = name.match(/^listener\.127\.0\.0\.1_(\d+)\.worker_(\d+)\.downstream_cx_total$/);
    if (m && Number(m[1]) === port) counts[m[2]] = value;
  }
  return counts;
}

export async function startEnvoy({ root, wasm, pluginConfig, port, adminPort, upstreamPort, idpPort, workers, logFile, dir, name, env = {}, edit, ready = 'live' }) {
  const config = envoyConfig({ root, wasm, pluginConfig, port, adminPort, upstreamPort, idpPort, edit });
  const configFile = join(dir, `${name}.envoy.yaml`);
  writeFileSync(configFile, stringify(config));
  const args = ['-c', configFile, '--concurrency', String(workers), '--disable-hot-restart', '-l', 'info',
    '--log-format', '[%Y-%m-%d %T.%e][%t][%l][%n] %v'];
  const proc = await startProcess({
    kind: 'envoy', bin: envoyBin(root), args, logFile, env,
    probe: ready === 'live'
      ? async () => (await fetch(`http://127.0.0.1:${adminPort}/ready`)).status === 200
      : async () => (await fetch(`http://127.0.0.1:${adminPort}/server_info`)).ok,
    problems: ENVOY_PROBLEMS,
  });
  return {
    ...proc,
    workers,
    configFile,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    connectionsPerWorker: () => connectionsPerWorker(adminPort, port),
  };
}

// `envoy --mode validate` on a configuration file: { ok, status, output }. Validate mode starts the wasm VM and runs
// vigil's on_configure too, so the variables the plugin reads must be in `env`.
export function envoyValidate({ root, configFile, env = {} }) {
  const run = spawnSync(envoyBin(root), ['--mode', 'validate', '-c', configFile, '-l', 'info'], {
    env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000,
  });
  const output = `${run.stdout}${run.stderr}`;
  return { ok: run.status === 0 && /configuration '.*' OK/.test(output), status: run.status, output };
}
