// `host-sim serve`: dist/vigil.wasm in our own proxy-wasm host (Envoy profile), `workers` VMs, the real clock.
// A connection is pinned to one worker VM, round robin, so N fresh connections land on N consecutive workers.

import { join } from 'node:path';

import { startProcess } from './process.mjs';

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
