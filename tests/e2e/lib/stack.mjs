// One end-to-end stack on free loopback ports: the test IdP (tests/idp/provider.mjs), the echo upstream, and any
// number of proxies running dist/vigil.wasm (host-sim serve or real Envoy, see PROXY_KIND), each with its own OAuth
// client at the IdP. Every child is killed by `stop()`, and by a process exit handler if a test file dies before its
// hooks run. `stop()` fails the run when a proxy's log shows a trap, a panic, a crash or an error line the scenario
// did not announce with `proxy.expectLog(pattern)`.

import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { spawnReady } from '../../idp/lib/spawn.mjs';
import { control as controlCall } from '../../idp/lib/rp.mjs';
import { vigilConfig, clientFor, CLIENT_SECRET_ENV } from './config.mjs';
import { send, until, PAGE_ACCEPT } from './http.mjs';
import { track } from './proxies/process.mjs';
import { startHostSim } from './proxies/host-sim.mjs';
import { startEnvoy } from './proxies/envoy.mjs';
import { startNginx } from './proxies/nginx.mjs';

export const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const ARTIFACTS = join(ROOT, 'dist', 'e2e');
const IDP_SCRIPT = join(ROOT, 'tests', 'idp', 'provider.mjs');
const ECHO_SCRIPT = join(ROOT, 'tests', 'idp', 'echo-upstream.mjs');
export const WASM = process.env.VIGIL_WASM ?? join(ROOT, 'dist', 'vigil.wasm');

// Which proxy runs dist/vigil.wasm: `host-sim` (our own host, the default), `envoy` (the real Envoy binary, `make
// envoy`), `nginx` (real nginx + ngx_wasm_module, `make nginx`). `make e2e` runs the whole suite once per kind
// (E2E_PROXIES).
// `E2E_PROXY=nginx:2` runs the kind with 2 workers instead of 4 (E2E_RUN names the run in logs and figures).
const [kindArg, workersArg] = (process.env.E2E_PROXY ?? 'host-sim').split(':');
export const PROXY_KIND = kindArg;
export const WORKERS = Number(workersArg ?? 4);
export const E2E_RUN = workersArg ? `${kindArg}-${WORKERS}w` : kindArg;
const PROXY_KINDS = ['host-sim', 'envoy', 'nginx'];
if (!PROXY_KINDS.includes(PROXY_KIND) || !(WORKERS >= 1)) {
  throw new Error(`E2E_PROXY=${process.env.E2E_PROXY}: one of ${PROXY_KINDS.join(', ')}, optionally :<workers>`);
}

// A port that was free a moment ago (the proxy's port must be known before its config and client are written).
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

export class Stack {
  constructor(name) {
    this.name = name;
    this.proxies = new Map();
    this.running = [];
    this.kind = PROXY_KIND;
    this.stoppers = [];
    this.dir = mkdtempSync(join(tmpdir(), `vigil-e2e-${name}-`));
    this.logDir = join(ARTIFACTS, 'logs', E2E_RUN);
    mkdirSync(this.logDir, { recursive: true });
  }

  // `idpArgs`: extra provider.mjs options (e.g. ['--login-form']).
  async start({ idpArgs = [] } = {}) {
    const idp = await spawnReady(IDP_SCRIPT, idpArgs, { timeoutMs: 20_000 });
    this.stoppers.push(async () => {
      await idp.stop();
      writeFileSync(join(this.logDir, `${this.name}-idp.log`), idp.stderr());
    });
    track(idp.child);
    this.idp = idp.ready;
    this.issuer = idp.ready.issuer;
    const echo = await spawnReady(ECHO_SCRIPT, [], { timeoutMs: 20_000 });
    track(echo.child);
    this.stoppers.push(() => echo.stop());
    this.echo = echo.ready;
    this.startup = { idpMs: Math.round(idp.startupMs), echoMs: Math.round(echo.startupMs) };
    return this;
  }

  control(method, path, body) {
    return controlCall(this.idp.control, method, path, body);
  }

  counters() {
    return this.control('GET', '/counters');
  }

  // Every request the echo upstream received so far (asked directly, not through a proxy): { requests, log }.
  async upstreamLog() {
    return (await fetch(`${this.echo.url}/__echo/requests`)).json();
  }

  // A `host-sim serve` proxy with its own client at the IdP. `overrides` go into the plugin configuration.
  async addProxy(name = 'proxy', { overrides = {}, scopes, workers = WORKERS } = {}) {
    const clientId = `vigil-${name}`;
    const clientSecret = `secret-${name}-${Math.random().toString(36).slice(2)}`;
    let lastError;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const config = vigilConfig({ proxyUrl: url, issuer: this.issuer, clientId, scopes, overrides });
      await this.control('POST', '/clients', clientFor({ proxyUrl: url, clientId, clientSecret }));
      try {
        const sim = await this.startProxy(name, { config, port, workers, env: { [CLIENT_SECRET_ENV]: clientSecret } });
        this.stoppers.push(() => sim.stop());
        this.running.push({ name, proc: sim });
        // Page loads get 503 until the filter has fetched the IdP's discovery document and JWKS (its first tick).
        await until(async () => (await send(`${url}/`, { headers: PAGE_ACCEPT })).status !== 503, {
          withinMs: 15_000, what: `${name}: login ready (discovery and JWKS fetched)`,
        });
        const proxy = { name, url, port, clientId, clientSecret, config, readyMs: Math.round(performance.now() - sim.startedAt), ...sim };
        this.proxies.set(name, proxy);
        return proxy;
      } catch (err) {
        lastError = err;
        // Someone took the port between freePort() and bind: try another one.
        if (!/Address already in use|AddrInUse/i.test(err.message)) throw err;
      }
    }
    throw lastError;
  }

  // One proxy process of this stack's kind, not yet registered at the IdP or waited on (addProxy does both).
  async startProxy(name, { config, port, workers = WORKERS, env = {}, edit, ready } = {}) {
    const common = { root: ROOT, wasm: WASM, port, workers, logFile: join(this.logDir, `${this.name}-${name}.log`), env };
    if (this.kind === 'envoy') {
      return startEnvoy({
        ...common, pluginConfig: config, adminPort: await freePort(), upstreamPort: this.echo.port,
        idpPort: this.idp.port, dir: this.dir, name, edit, ready,
      });
    }
    if (this.kind === 'nginx') {
      return startNginx({
        ...common, pluginConfig: config, waitPort: await freePort(), upstreamPort: this.echo.port,
        idpPort: this.idp.port, dir: this.dir, name,
      });
    }
    const configFile = join(this.dir, `${name}.json`);
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    return startHostSim({ ...common, configFile, upstreamPort: this.echo.port, idpPort: this.idp.port });
  }

  async stop() {
    const stoppers = this.stoppers.reverse();
    this.stoppers = [];
    await Promise.allSettled(stoppers.map((s) => s()));
    rmSync(this.dir, { recursive: true, force: true });
    const problems = this.running.flatMap(({ name, proc }) => proc.unexpectedProblems().map((l) => `${name}: ${l}`));
    this.running = [];
    if (problems.length) {
      throw new Error(`${this.kind}: the proxy log shows a trap, a crash or an unexpected error (logs in ${this.logDir}):\n${problems.slice(0, 20).join('\n')}`);
    }
  }
}

// Starts a stack with the proxies named in `proxies` (default: one named 'proxy', options `proxy`); on any failure
// everything started so far is stopped.
export async function startStack(name, { idpArgs, proxy = {}, proxies = { proxy } } = {}) {
  const stack = new Stack(name);
  try {
    await stack.start({ idpArgs });
    for (const [proxyName, options] of Object.entries(proxies)) await stack.addProxy(proxyName, options);
    return stack;
  } catch (err) {
    await stack.stop();
    throw err;
  }
}
