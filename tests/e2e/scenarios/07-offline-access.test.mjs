// Scenario 7: `offline_access` with `prompt=consent` yields a refresh token (OIDC Core §11; the IdP drops
// offline_access otherwise); without a refresh token, a session whose upstream access token expired must log in
// again.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack } from '../lib/stack.mjs';
import { mustLogin, figure } from '../lib/session.mjs';
import { send, withCookie, elapse, PAGE_ACCEPT } from '../lib/http.mjs';

const ACCESS_TOKEN_TTL_S = 3;
// The IdP's lifetimes have whole-second granularity: a second of slack.
const EXPIRY_SLACK_MS = 1000;

describe('scenario 7: offline_access and sessions without a refresh token', () => {
  let stack;
  before(async () => {
    stack = await startStack('s7-offline', {
      proxies: {
        offline: { overrides: { revalidate_interval: '1s', refresh_margin: '1s' } },
        online: { overrides: { revalidate_interval: '1s', refresh_margin: '1s' }, scopes: ['openid', 'profile', 'email', 'groups'] },
      },
    });
    await stack.control('POST', '/settings', { accessTokenTTL: ACCESS_TOKEN_TTL_S });
  });
  after(() => stack?.stop());

  it('offline_access + prompt=consent: a refresh token, and the session outlives the access token', async () => {
    const proxy = stack.proxies.get('offline');
    const session = await mustLogin(proxy, { user: 'alice' });
    const authorize = new URL(session.hops.find((h) => h.url.startsWith(`${stack.issuer}/auth?`)).url);
    assert.ok(authorize.searchParams.get('scope').split(' ').includes('offline_access'));
    assert.equal(authorize.searchParams.get('prompt'), 'consent');
    assert.equal((await stack.control('GET', `/users/alice/refresh-tokens/${proxy.clientId}`)).issued, 1);

    await elapse(ACCESS_TOKEN_TTL_S * 1000 + EXPIRY_SLACK_MS);
    const res = await send(`${proxy.url}/api/whoami`, { headers: withCookie(session.token) });
    assert.equal(res.status, 200, res.body);
    assert.equal((await stack.control('GET', `/users/alice/refresh-tokens/${proxy.clientId}`)).issued, 2, 'the revalidation refreshed');
  });

  it('no offline_access: no refresh token, and once the access token expired the user logs in again', async (t) => {
    const proxy = stack.proxies.get('online');
    const session = await mustLogin(proxy, { user: 'bob' });
    const authorize = new URL(session.hops.find((h) => h.url.startsWith(`${stack.issuer}/auth?`)).url);
    assert.ok(!authorize.searchParams.get('scope').split(' ').includes('offline_access'));
    assert.equal((await stack.control('GET', `/users/bob/refresh-tokens/${proxy.clientId}`)).issued, 0);
    const url = `${proxy.url}/api/whoami`;
    const headers = withCookie(session.token);

    // Within the access token's lifetime, revalidation works with userinfo alone.
    await elapse(1050);
    assert.equal((await send(url, { headers })).status, 200);

    await elapse(ACCESS_TOKEN_TTL_S * 1000 + EXPIRY_SLACK_MS);
    const before = await stack.counters();
    const expired = await send(url, { headers });
    assert.equal(expired.status, 401, expired.body);
    const after = await stack.counters();
    assert.equal(after.token.calls, before.token.calls, 'no refresh was attempted');
    const page = await send(`${proxy.url}/app/home`, { headers: { ...PAGE_ACCEPT, cookie: `vigil_session=${session.token}` } });
    assert.ok([302, 303].includes(page.status), `a page load goes back to the login, got ${page.status}`);
    assert.ok(page.headers.location.startsWith(`${stack.issuer}/auth?`));

    const again = await mustLogin(proxy, { user: 'bob' });
    assert.equal((await send(url, { headers: withCookie(again.token) })).status, 200);
    figure(t, 's7.offline_access', { access_token_ttl_s: ACCESS_TOKEN_TTL_S, expired_status: expired.status });
  });
});
