#!/usr/bin/env node
// Runs dist/vigil.wasm in real Envoy (`make envoy`) with a configuration generated from examples/envoy/envoy.yaml, as
// the e2e suite does; used by `DEMO_PROXY=envoy make demo`. Prints `listening on 127.0.0.1:PORT` once Envoy is ready,
// writes Envoy's log to --log, and stops Envoy on SIGINT/SIGTERM.
// Usage: node run-envoy.mjs --config vigil.json --port N --upstream-port N --idp-port N --log FILE
//          [--workers 4] [--admin-port N] [--env NAME=VALUE ...]

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { startEnvoy } from './lib/proxies/envoy.mjs';
import { ROOT, WASM, freePort } from './lib/stack.mjs';

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    port: { type: 'string' },
    'upstream-port': { type: 'string' },
    'idp-port': { type: 'string' },
    'admin-port': { type: 'string' },
    workers: { type: 'string', default: '4' },
    log: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
  },
  strict: true,
});
for (const key of ['config', 'port', 'upstream-port', 'idp-port', 'log']) {
  if (!values[key]) {
    console.error(`error: --${key} is required`);
    process.exit(2);
  }
}
const env = Object.fromEntries(values.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const port = Number(values.port);
const envoy = await startEnvoy({
  root: ROOT, wasm: WASM, name: 'envoy', dir: mkdtempSync(join(tmpdir(), 'vigil-envoy-')),
  pluginConfig: JSON.parse(readFileSync(values.config, 'utf8')),
  port, adminPort: Number(values['admin-port'] ?? await freePort()),
  upstreamPort: Number(values['upstream-port']), idpPort: Number(values['idp-port']),
  workers: Number(values.workers), logFile: values.log, env,
});
console.log(`listening on 127.0.0.1:${port} (envoy, admin ${envoy.adminUrl})`);
const stop = async () => { await envoy.stop(); process.exit(0); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
envoy.child.once('exit', (code, signal) => {
  console.error(`envoy exited (${code ?? signal}); see ${values.log}`);
  process.exit(1);
});
