// Scenario 9: request bodies. The back-channel logout path reads its body without ever starting an upstream request
// (the echo upstream's request log proves it; Envoy's router would otherwise open one as soon as the headers
// continued), a bodyless GET to it is 405 and goes nowhere; a request body that arrives while the request is paused
// behind a revalidation reaches the upstream whole.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

import { startStack } from '../lib/stack.mjs';
import { mustLogin, figure } from '../lib/session.mjs';
import { send, sendInParts, withCookie, elapse } from '../lib/http.mjs';
import { BACKCHANNEL_PATH } from '../lib/config.mjs';

const INTERVAL_MS = 1000;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('scenario 9: request bodies', () => {
  let stack;
  let proxy;
  before(async () => {
    stack = await startStack('s9-bodies', { proxy: { overrides: { revalidate_interval: '1s', refresh_margin: '2h' } } });
    proxy = stack.proxies.get('proxy');
  });
  after(() => stack?.stop());

  async function upstreamRequestsTo(path, run) {
    const before = (await stack.upstreamLog()).log.length;
    const result = await run();
    // Anything the proxy started upstream has had time to arrive: the echo answers at once, and the proxy's answer
    // came after the whole body was sent.
    await elapse(200);
    const seen = (await stack.upstreamLog()).log.slice(before).filter((r) => r.path.startsWith(path));
    return { result, seen };
  }

  it('the back-channel logout path never starts an upstream request, whatever the method and body', async () => {
    const cases = [
      { label: 'POST, body after the headers', run: () => sendInParts(`${proxy.url}${BACKCHANNEL_PATH}`, {
        headers: { ...FORM, 'content-length': String('logout_token=not.a.jwt'.length) }, chunks: ['logout_token=', 'not.a.jwt'],
      }), status: 400 },
      { label: 'POST, chunked body', run: () => sendInParts(`${proxy.url}${BACKCHANNEL_PATH}`, {
        headers: FORM, chunks: ['logout_token=eyJhbGciOiJub25lIn0', '.eyJzdWIiOiJib2IifQ.'],
      }), status: 400 },
      { label: 'POST, no body', run: () => send(`${proxy.url}${BACKCHANNEL_PATH}`, { method: 'POST', headers: FORM }), status: 400 },
      { label: 'GET', run: () => send(`${proxy.url}${BACKCHANNEL_PATH}`), status: 405 },
      { label: 'POST, 40 KiB body', run: () => sendInParts(`${proxy.url}${BACKCHANNEL_PATH}`, {
        headers: FORM, chunks: [`logout_token=${'a'.repeat(20 * 1024)}`, 'a'.repeat(20 * 1024)],
      }), status: 413 },
    ];
    for (const { label, run, status } of cases) {
      const { result, seen } = await upstreamRequestsTo(BACKCHANNEL_PATH, run);
      assert.equal(result.status, status, `${label}: ${result.status} ${result.body}`);
      assert.deepEqual(seen, [], `${label}: the upstream saw ${JSON.stringify(seen)}`);
    }
  });

  it('a body sent while its request waits for a revalidation reaches the upstream whole', async (t) => {
    const session = await mustLogin(proxy, { user: 'alice' });
    const body = randomBytes(192 * 1024).toString('base64');
    const sha256 = createHash('sha256').update(body).digest('hex');
    const parts = [body.slice(0, 1000), body.slice(1000, 100_000), body.slice(100_000)];
    await elapse(INTERVAL_MS + 50);
    // Hold the revalidation for a while, so the body arrives while the request is paused.
    const fault = await stack.control('POST', '/faults', { path: '/me', kind: 'delay', ms: 300, count: 1 });
    try {
      const before = await stack.counters();
      const res = await sendInParts(`${proxy.url}/api/upload`, {
        headers: { ...withCookie(session.token), 'content-type': 'text/plain', 'content-length': String(body.length) },
        chunks: parts, gapMs: 100,
      });
      const after = await stack.counters();
      assert.equal(res.status, 200, res.body.slice(0, 300));
      assert.equal(after.userinfo.calls, before.userinfo.calls + 1, 'the request waited for a revalidation');
      assert.equal(res.json.bodyBytes, body.length);
      assert.equal(res.json.bodySha256, sha256);
      assert.equal(res.json.headers['x-user-sub'], 'alice');
      figure(t, 's9.paused_body', { bytes: body.length, ms: Math.round(res.ms) });
    } finally {
      await stack.control('DELETE', `/faults/${fault.id}`).catch(() => {});
    }
  });
});
