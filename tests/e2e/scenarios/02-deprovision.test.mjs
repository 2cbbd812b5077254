// Scenario 2: deprovisioning at the IdP. With a 1 s revalidation interval, the user's requests are denied within
// the interval plus one IdP round trip; re-enabled, the user logs in again and gets access back.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack } from '../lib/stack.mjs';
import { mustLogin, login, figure } from '../lib/session.mjs';
import { send, burstOverWorkers, withCookie, elapse } from '../lib/http.mjs';

const INTERVAL_MS = 1000;
// One IdP round trip (refresh + userinfo) on a loaded 2-core machine, with the proxy's own latency.
const ROUND_TRIP_BOUND_MS = 500;
const POLL_MS = 25;

describe('scenario 2: deprovision at the IdP', () => {
  let stack;
  let proxy;
  before(async () => {
    stack = await startStack('s2-deprovision', { proxy: { overrides: { revalidate_interval: '1s' } } });
    proxy = stack.proxies.get('proxy');
  });
  after(() => stack?.stop());

  it('denies the user within one interval plus one IdP round trip, then lets them back in after re-enabling', async (t) => {
    const session = await mustLogin(proxy, { user: 'alice' });
    const url = `${proxy.url}/api/whoami`;
    const headers = withCookie(session.token);

    // Start right after a successful revalidation, the worst case: the whole interval has to run out again.
    await elapse(INTERVAL_MS + 50);
    const before = await stack.counters();
    const revalidated = await send(url, { headers });
    assert.equal(revalidated.status, 200, revalidated.body);
    const after = await stack.counters();
    assert.equal(after.userinfo.ok, before.userinfo.ok + 1, 'that request revalidated the session');
    const validatedAt = performance.now();

    const deprovision = await stack.control('POST', '/users/alice/deprovision');
    assert.equal(deprovision.user.enabled, false);
    const deprovisionedAt = performance.now();

    // Poll (every worker in turn: one fresh connection per request) until the first denial.
    let denied;
    let polls = 0;
    while (!denied) {
      const res = await send(url, { headers });
      polls += 1;
      if (res.status === 401) denied = res;
      else assert.equal(res.status, 200, res.body);
      const waited = performance.now() - deprovisionedAt;
      assert.ok(waited < INTERVAL_MS + ROUND_TRIP_BOUND_MS + 1000, `still allowed ${Math.round(waited)} ms after deprovisioning`);
      if (!denied) await elapse(POLL_MS);
    }
    const deniedAt = performance.now();
    const delayMs = deniedAt - deprovisionedAt;
    const sinceValidationMs = deniedAt - validatedAt;
    const counters = await stack.counters();
    figure(t, 's2.deprovision_to_deny', {
      interval_ms: INTERVAL_MS,
      delay_ms: Math.round(delayMs),
      since_last_validation_ms: Math.round(sinceValidationMs),
      last_request_ms: Math.round(denied.ms),
      polls,
      userinfo_errors: counters.userinfo.errors,
      token_errors: counters.token.errors,
    });
    assert.ok(delayMs <= INTERVAL_MS + ROUND_TRIP_BOUND_MS, `denied after ${Math.round(delayMs)} ms`);

    // Every worker denies from now on, with no further IdP traffic.
    const denials = await burstOverWorkers(proxy, url, { headers });
    for (const res of denials) assert.equal(res.status, 401, res.body);

    // Deprovisioned users cannot log in again.
    const refused = await login(proxy, { user: 'alice' });
    assert.equal(refused.callbackError, 'access_denied');
    assert.notEqual(refused.response.status, 200);

    await stack.control('POST', '/users/alice/enable');
    const again = await mustLogin(proxy, { user: 'alice' });
    const res = await send(url, { headers: withCookie(again.token) });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.json.headers['x-user-sub'], 'alice');
    // The old token stays dead.
    assert.equal((await send(url, { headers })).status, 401);
  });
});
