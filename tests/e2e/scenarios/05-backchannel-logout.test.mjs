// Scenario 5: OIDC back-channel logout sent by the IdP. The user's next request is denied on every worker at once,
// with no revalidation involved (the interval is an hour).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack } from '../lib/stack.mjs';
import { mustLogin, figure } from '../lib/session.mjs';
import { send, burst, burstOverWorkers, withCookie } from '../lib/http.mjs';
import { BACKCHANNEL_PATH } from '../lib/config.mjs';

describe('scenario 5: back-channel logout', () => {
  let stack;
  let proxy;
  before(async () => {
    stack = await startStack('s5-backchannel', { proxy: { overrides: { revalidate_interval: '1h' } } });
    proxy = stack.proxies.get('proxy');
  });
  after(() => stack?.stop());

  it('denies the logged-out user on every worker at once, and leaves other users alone', async (t) => {
    const alice = await mustLogin(proxy, { user: 'alice' });
    const bob = await mustLogin(proxy, { user: 'bob' });
    const url = `${proxy.url}/api/whoami`;
    for (const res of await burst(url, 8, { headers: withCookie(alice.token) })) assert.equal(res.status, 200, res.body);

    const before = await stack.counters();
    const startedAt = performance.now();
    const logout = await stack.control('POST', '/users/alice/backchannel-logout');
    const ms = performance.now() - startedAt;
    assert.equal(logout.ok, 1, JSON.stringify(logout));
    assert.equal(logout.results[0].clientId, proxy.clientId);

    // Fresh connections until every worker took some (at least twice the 4 workers).
    const answers = await burstOverWorkers(proxy, url, { headers: withCookie(alice.token) });
    for (const res of answers) assert.equal(res.status, 401, res.body);
    for (const res of await burst(url, 4, { headers: withCookie(bob.token) })) assert.equal(res.status, 200, res.body);

    const after = await stack.counters();
    assert.equal(after.token.calls, before.token.calls, 'no refresh was involved');
    assert.equal(after.userinfo.calls, before.userinfo.calls, 'no userinfo call was involved');
    figure(t, 's5.backchannel_logout', { delivery_ms: Math.round(ms), denied_on_workers: answers.length });

    // Alice can log in again afterwards.
    const again = await mustLogin(proxy, { user: 'alice' });
    assert.equal((await send(url, { headers: withCookie(again.token) })).status, 200);
  });

  it('refuses an unsigned logout token', async () => {
    const forged = await send(`${proxy.url}${BACKCHANNEL_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'logout_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.',
    });
    assert.ok(forged.status >= 400 && forged.status < 500, `${forged.status} ${forged.body}`);
    const bob = await mustLogin(proxy, { user: 'bob' });
    assert.equal((await send(`${proxy.url}/api/whoami`, { headers: withCookie(bob.token) })).status, 200);
  });
});
