// One end-to-end stack on free loopback ports: the test IdP (tests/idp/provider.mjs), the echo upstream, and any
// number of `host-sim serve` proxies running dist/vigil.wasm, each with its own OAuth client at the IdP.
// Every child is killed by `stop()`, and by a process exit handler if a test file dies before its hooks run.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { spawnReady } from '../../idp/lib/spawn.mjs';
import { control as controlCall } from '../../idp/lib/rp.mjs';
import { vigilConfig, clientFor, CLIENT_SECRET_ENV } from './config.mjs';
import { send, until, PAGE_ACCEPT } from './http.mjs';

export const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const ARTIFACTS = join(ROOT, 'dist', 'e2e');
const IDP_SCRIPT = join(ROOT, 'tests', 'idp', 'provider.mjs');
const ECHO_SCRIPT = join(ROOT, 'tests', 'idp', 'echo-upstream.mjs');
export const HOST_SIM = process.env.HOST_SIM_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target'), 'debug', 'host-sim');
export const WASM = process.env.VIGIL_WASM ?? join(ROOT, 'dist', 'vigil.wasm');

const live = new Set();
process.on('exit', () => { for (const child of live) child.kill('SIGKILL'); });
function track(child) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
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

async function stopChild(child, timeoutMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

// `host-sim serve`; resolves once it printed `listening on ADDR`. Its stderr (the filter's log) goes to `logFile`
// and is kept in memory so tests can wait for a log line.
async function startHostSim({ configFile, port, upstream, idpPort, workers, logFile, env = {}, timeoutMs = 60_000 }) {
  const args = [
    'serve', '--wasm', WASM, '--config', configFile,
    '--listen', `127.0.0.1:${port}`, '--upstream', upstream,
    '--cluster', `idp=127.0.0.1:${idpPort}`,
    '--workers', String(workers), '--profile', 'envoy',
    ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
  ];
  const child = track(spawn(HOST_SIM, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  const log = createWriteStream(logFile);
  const lines = [];
  const waiters = new Set();
  createInterface({ input: child.stderr }).on('line', (line) => {
    log.write(`${line}\n`);
    lines.push(line);
    for (const waiter of waiters) waiter(line);
  });
  child.once('exit', () => log.end());
  const startedAt = performance.now();
  await new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => fail(`no "listening on" within ${timeoutMs} ms`), timeoutMs);
    function fail(why) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`host-sim serve: ${why}\n--- log (${logFile}) ---\n${lines.slice(-40).join('\n')}`));
    }
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
    child.once('error', (err) => fail(err.message));
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('listening on ')) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolveReady();
      }
    });
  });
  return {
    child,
    startedAt,
    startupMs: performance.now() - startedAt,
    // Log lines so far (the filter's log and host-sim's own), oldest first.
    lines,
    // Resolves with the first log line from now on that matches, rejects after `timeoutMs`.
    waitForLog(pattern, waitMs = 5000) {
      return new Promise((resolveLine, reject) => {
        const timer = setTimeout(() => { waiters.delete(waiter); reject(new Error(`no log line matching ${pattern} within ${waitMs} ms`)); }, waitMs);
        function waiter(line) {
          if (!pattern.test(line)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolveLine(line);
        }
        waiters.add(waiter);
      });
    },
    stop: () => stopChild(child),
  };
}

export class Stack {
  constructor(name) {
    this.name = name;
    this.proxies = new Map();
    this.stoppers = [];
    this.dir = mkdtempSync(join(tmpdir(), `vigil-e2e-${name}-`));
    this.logDir = join(ARTIFACTS, 'logs');
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

  // A `host-sim serve` proxy with its own client at the IdP. `overrides` go into the plugin configuration.
  async addProxy(name = 'proxy', { overrides = {}, scopes, workers = 4 } = {}) {
    const clientId = `vigil-${name}`;
    const clientSecret = `secret-${name}-${Math.random().toString(36).slice(2)}`;
    let lastError;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const config = vigilConfig({ proxyUrl: url, issuer: this.issuer, clientId, scopes, overrides });
      const configFile = join(this.dir, `${name}.json`);
      writeFileSync(configFile, JSON.stringify(config, null, 2));
      await this.control('POST', '/clients', clientFor({ proxyUrl: url, clientId, clientSecret }));
      try {
        const sim = await startHostSim({
          configFile, port, workers,
          upstream: `127.0.0.1:${this.echo.port}`,
          idpPort: this.idp.port,
          logFile: join(this.logDir, `${this.name}-${name}.log`),
          env: { [CLIENT_SECRET_ENV]: clientSecret },
        });
        this.stoppers.push(() => sim.stop());
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

  async stop() {
    const stoppers = this.stoppers.reverse();
    this.stoppers = [];
    await Promise.allSettled(stoppers.map((s) => s()));
    rmSync(this.dir, { recursive: true, force: true });
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
