// Scenario 10: what only real Envoy can show. `envoy --mode validate` accepts every Envoy example; vigil's metrics
// appear in the admin /stats under the README's names; a configuration vigil rejects is refused by Envoy with
// vigil's one-line reason in its log; FAIL_CLOSED keeps a proxy whose vigil VM cannot start from serving at all,
// while FAIL_OPEN (documented as unsafe) serves requests unchecked.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

import { startStack, freePort, PROXY_KIND, ROOT, WASM } from '../lib/stack.mjs';
import { mustLogin, figure } from '../lib/session.mjs';
import { send, withCookie, withBearer, elapse, JSON_ACCEPT } from '../lib/http.mjs';
import { vigilConfig } from '../lib/config.mjs';
import { envoyValidate, wasmFilterOf } from '../lib/proxies/envoy.mjs';

// The probe filter of host-sim's own tests (make probes).
const PROBE_WASM = join(ROOT, 'target', 'wasm32-wasip1', 'release', 'probe_host.wasm');

const skip = PROXY_KIND === 'envoy' ? false
  : 'Envoy-specific: validate mode, the admin /stats and Envoy\'s own failure policy exist only in a real Envoy';

// The secrets the examples read from Envoy's environment (host_env_keys).
const EXAMPLE_ENV = { VIGIL_CLIENT_SECRET: 'example-client-secret', VIGIL_TOKEN_KEY: 'token-key-for-the-envoy-tests-0123456789abcdef' };

// The metric names of the README's "Metrics" section.
function readmeMetrics() {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split('\n## Metrics\n')[1].split('\n## ')[0];
  return [...section.matchAll(/^\| `(vigil\.[a-z_.]+)` \|/gm)].map((m) => m[1]);
}

describe('scenario 10: real Envoy only', { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack('s10-envoy', { proxy: { overrides: { revalidate_interval: '1s' } } });
  });
  after(() => stack?.stop());

  it('envoy --mode validate accepts every Envoy example (only the module path changed)', () => {
    const dir = join(ROOT, 'examples', 'envoy');
    const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
    assert.ok(files.length >= 1);
    for (const file of files) {
      const config = parse(readFileSync(join(dir, file), 'utf8'));
      wasmFilterOf(config).config.vm_config.code.local.filename = WASM;
      const configFile = join(stack.dir, `validate-${file}`);
      writeFileSync(configFile, stringify(config));
      const result = envoyValidate({ root: ROOT, configFile, env: EXAMPLE_ENV });
      assert.ok(result.ok, `${file}: envoy --mode validate exited ${result.status}\n${result.output.split('\n').slice(-15).join('\n')}`);
    }
  });

  it("vigil's metrics appear in the admin /stats under the README's names", async (t) => {
    const proxy = stack.proxies.get('proxy');
    const session = await mustLogin(proxy, { user: 'alice' });
    await send(`${proxy.url}/api/whoami`, { headers: withBearer('not-a-jwt') });
    await elapse(1050);
    assert.equal((await send(`${proxy.url}/api/whoami`, { headers: withCookie(session.token) })).status, 200);
    const res = await fetch(`${proxy.adminUrl}/stats?format=json&filter=vigil`);
    const { stats } = await res.json();
    const names = new Map(stats.filter((s) => 'value' in s).map((s) => [s.name, s.value]));
    const documented = readmeMetrics();
    assert.ok(documented.length >= 10, `the README lists ${documented.length} metrics`);
    const missing = documented.filter((m) => !names.has(`wasmcustom.${m}`));
    assert.deepEqual(missing, [], `not in Envoy's /stats as wasmcustom.<name>: ${missing.join(', ')}`);
    assert.ok(names.get('wasmcustom.vigil.token_invalid') >= 1, 'token_invalid counted the forged token');
    assert.ok(names.get('wasmcustom.vigil.revalidation.succeeded') >= 1, 'revalidation.succeeded counted');
    // The histogram has no single value; it is listed under histograms.
    const histograms = (await (await fetch(`${proxy.adminUrl}/stats?filter=vigil.idp.latency_ms`)).text());
    assert.match(histograms, /wasmcustom\.vigil\.idp\.latency_ms/);
    figure(t, 's10.metrics', { documented: documented.length, in_envoy: documented.length - missing.length });
  });

  async function startBroken(name, { config, failurePolicy }) {
    const port = await freePort();
    return stack.startProxy(name, {
      config, port, env: {},
      edit: (envoy) => { wasmFilterOf(envoy).config.failure_policy = failurePolicy; },
    });
  }

  const rejected = (url) => vigilConfig({ proxyUrl: url, issuer: stack.issuer, clientId: 'broken', overrides: { revalidate_intervall: '1s' } });

  it('a configuration vigil rejects is refused by Envoy, with vigil\'s one-line reason in its log (FAIL_CLOSED)', async (t) => {
    const startedAt = performance.now();
    await assert.rejects(startBroken('bad-config', { config: rejected('http://127.0.0.1:1'), failurePolicy: 'FAIL_CLOSED' }), /exited \(1\) before it was ready/);
    const log = readFileSync(join(stack.logDir, `${stack.name}-bad-config.log`), 'utf8').split('\n');
    const reasons = log.filter((l) => /vigil: rejected configuration: /.test(l));
    assert.equal(reasons.length, 1, `one reason line, got:\n${reasons.join('\n')}`);
    assert.match(reasons[0], /\[error\]\[wasm\].*unknown config key `revalidate_intervall`|\[error\]\[wasm\].*revalidate_intervall/);
    assert.ok(log.some((l) => /Plugin configured to fail closed failed to load/.test(l)), 'Envoy names its failure policy');
    figure(t, 's10.config_rejected', { ms_to_exit: Math.round(performance.now() - startedAt), reason: reasons[0].replace(/^.*wasm log [^:]*: /, '') });
  });

  it('a static Envoy refuses to start on a rejected configuration whatever the failure policy (FAIL_OPEN too)', async () => {
    await assert.rejects(startBroken('fail-open', { config: rejected('http://127.0.0.1:1'), failurePolicy: 'FAIL_OPEN' }), /exited \(1\) before it was ready/);
    const log = readFileSync(join(stack.logDir, `${stack.name}-fail-open.log`), 'utf8');
    assert.match(log, /vigil: rejected configuration: /);
    assert.match(log, /Unable to create Wasm plugin vigil/);
  });

  // A VM that traps while serving (the probe filter panics on /trap; vigil itself never does): under FAIL_CLOSED,
  // Envoy answers every later request of that worker itself, and none reaches the upstream.
  it('FAIL_CLOSED: after the VM failed, requests are refused and never reach the upstream', async (t) => {
    const port = await freePort();
    const proc = await stack.startProxy('trap', {
      config: {}, port, workers: 1,
      edit: (envoy) => {
        const wasm = wasmFilterOf(envoy).config;
        wasm.vm_config.code.local.filename = PROBE_WASM;
        wasm.configuration.value = '';
        wasm.failure_policy = 'FAIL_CLOSED';
      },
    });
    proc.expectLog(/probe trap requested|Function: proxy_on_request_headers failed|Wasm VM failed|wasm trap|panicked at/i);
    const url = `http://127.0.0.1:${port}`;
    const before = (await stack.upstreamLog()).log.length;
    const first = await send(`${url}/pass/before`);
    assert.equal(first.status, 200, 'the probe passes requests before it traps');
    const trapped = await send(`${url}/trap`);
    const after = [];
    for (let i = 0; i < 3; i += 1) after.push(await send(`${url}/pass/after-${i}`));
    await proc.stop();
    const seen = (await stack.upstreamLog()).log.slice(before).map((r) => r.path);
    assert.deepEqual(seen, ['/pass/before'], `the upstream saw ${seen.join(', ')}`);
    for (const res of after) assert.equal(res.status, 503, `after the trap: ${res.status} ${res.body}`);
    figure(t, 's10.fail_closed_after_trap', { trap_status: trapped.status, later_status: after[0].status, later_body: after[0].body.slice(0, 80) });
  });
});
