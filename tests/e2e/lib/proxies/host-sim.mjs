// `host-sim serve`: dist/vigil.wasm in our own proxy-wasm host (Envoy profile), `workers` VMs, the real clock.
// A connection is pinned to one worker VM, round robin, so N fresh connections land on N consecutive workers.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

import { startProcess } from './process.mjs';
import { ENVOY_EXAMPLE } from './envoy.mjs';

// The routes of the Envoy example that run Envoy's buffer filter (after vigil): host-sim models them, so the
// host-sim run behaves like the Envoy one (the router opens no upstream request for them before the body is in).
export function bufferedPaths(root) {
  const config = parse(readFileSync(join(root, ENVOY_EXAMPLE), 'utf8'));
  const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  return hcm.route_config.virtual_hosts.flatMap((vh) => vh.routes)
    .filter((r) => r.match?.path && r.typed_per_filter_config?.['envoy.filters.http.buffer'])
    .map((r) => r.match.path);
}

// A filter log line at error or critical level, a VM failure (trap), a panic.
export const HOST_SIM_PROBLEMS = [/^\[\S+ (Error|Critical)\]/, /Wasm VM failed/, /panicked/];

export function hostSimBin(root) {
  return process.env.HOST_SIM_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug', 'host-sim');
}

export async function startHostSim({ root, wasm, configFile, port, upstreamPort, idpPort, workers, logFile, env = {} }) {
  const args = [
    'serve', '--wasm', wasm, '--config', configFile,
    '--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${upstreamPort}`,
    '--cluster', `idp=127.0.0.1:${idpPort}`,
    '--workers', String(workers), '--profile', 'envoy',
    ...bufferedPaths(root).flatMap((path) => ['--buffered-path', path]),
    ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
  ];
  const proc = await startProcess({
    kind: 'host-sim serve', bin: hostSimBin(root), args, logFile,
    ready: (line) => line.startsWith('listening on '),
    problems: HOST_SIM_PROBLEMS,
  });
  // host-sim spreads fresh connections round robin: every worker is reached by `workers` of them.
  return { ...proc, workers, connectionsPerWorker: async () => null };
}
