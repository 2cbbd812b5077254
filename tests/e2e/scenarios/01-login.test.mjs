// Scenario 1: login through the IdP's real authorization endpoint, callback, cookie; protected requests reach the
// upstream with the identity headers; identity headers sent by the client are stripped.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, PROXY_KIND } from '../lib/stack.mjs';
import { mustLogin, figure } from '../lib/session.mjs';
import { send, sendRaw, burstOverWorkers, withCookie, withBearer, JSON_ACCEPT, PAGE_ACCEPT } from '../lib/http.mjs';
import { CALLBACK_PATH, COOKIE_NAME, SESSION_HEADERS } from '../lib/config.mjs';

describe('scenario 1: login, cookie, identity headers', () => {
  let stack;
  let proxy;
  before(async () => {
    stack = await startStack('s1-login');
    proxy = stack.proxies.get('proxy');
  });
  after(() => stack?.stop());

  it('answers an API request without a session with 401 and no IdP traffic', async () => {
    const before = await stack.counters();
    const res = await send(`${proxy.url}/api/data`, { headers: JSON_ACCEPT });
    assert.equal(res.status, 401);
    assert.match(res.headers['www-authenticate'] ?? '', /^Bearer/);
    const after = await stack.counters();
    assert.equal(after.token.calls, before.token.calls);
    assert.equal(after.userinfo.calls, before.userinfo.calls);
  });

  it('redirects a page load to the authorization endpoint with PKCE S256, state and nonce', async () => {
    const res = await send(`${proxy.url}/app/home`, { headers: PAGE_ACCEPT });
    assert.ok([302, 303].includes(res.status), `status ${res.status}: ${res.body.slice(0, 200)}`);
    const location = new URL(res.headers.location);
    assert.equal(`${location.origin}${location.pathname}`, `${stack.issuer}/auth`);
    const q = location.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), proxy.clientId);
    assert.equal(q.get('redirect_uri'), `${proxy.url}${CALLBACK_PATH}`);
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.ok(q.get('code_challenge') && q.get('state') && q.get('nonce'));
    assert.ok(q.get('scope').split(' ').includes('openid'));
  });

  it('logs in through the real IdP and forwards the identity headers, never the spoofed ones', async (t) => {
    await stack.control('POST', '/counters/reset');
    const loginStartS = Math.floor(Date.now() / 1000);
    const session = await mustLogin(proxy, { user: 'alice', path: '/app/home?tab=1' });
    const { cookie } = session;
    assert.equal(cookie.httpOnly, true, 'the session cookie must be HttpOnly');
    assert.match(cookie.sameSite ?? '', /^lax$/i, 'the session cookie must be SameSite=Lax');
    assert.equal(cookie.path, '/');
    const hosts = session.hops.map((h) => new URL(h.url).origin);
    assert.ok(hosts.includes(stack.issuer), 'the login went through the IdP');
    const counters = await stack.counters();
    assert.equal(counters.token.byGrantType.authorization_code?.ok, 1, 'one code exchange');
    figure(t, 's1.login', { hops: session.hops.length, ms: Math.round(session.ms) });

    const spoofed = {
      'x-user-sub': 'mallory', 'x-user-email': 'mallory@evil.test', 'x-user-groups': 'admins',
      [SESSION_HEADERS.validated_at]: '9999999999', [SESSION_HEADERS.revalidate_at]: '9999999999',
    };
    for (const headers of [withCookie(session.token, spoofed), withBearer(session.token, spoofed)]) {
      const res = await send(`${proxy.url}/api/whoami`, { headers });
      assert.equal(res.status, 200, res.body);
      const seen = res.json.headers;
      assert.equal(seen['x-user-sub'], 'alice');
      assert.equal(seen['x-user-email'], 'alice@example.test');
      assert.deepEqual(seen['x-user-groups'].split(',').sort(), ['admins', 'staff']);
      assert.equal(res.json.path, '/api/whoami');
      // The session headers: the login (or a revalidation since, 1 s interval), and one interval later.
      const validated = Number(seen[SESSION_HEADERS.validated_at]);
      assert.ok(validated >= loginStartS && validated <= Date.now() / 1000, `validated at ${validated}, login at ${loginStartS}`);
      assert.equal(Number(seen[SESSION_HEADERS.revalidate_at]), validated + 1);
      assert.equal(seen.authorization, undefined, 'vigil\'s Bearer token never reaches the upstream');
      assert.ok(!(seen.cookie ?? '').includes(session.token), 'the session cookie never reaches the upstream');
    }

    // Two copies of a header vigil sets are refused: nginx could not be made to drop the second one.
    for (const name of ['x-user-sub', 'X-User-Sub']) {
      const res = await sendRaw(`${proxy.url}/api/whoami`, [
        ['cookie', `${COOKIE_NAME}=${session.token}`], ['accept', 'application/json'], ['x-user-sub', 'mallory'], [name, 'eve'],
      ]);
      assert.equal(res.status, 400, `${name}: ${res.status} ${res.body}`);
      assert.equal(res.json?.error, 'invalid_request');
    }

    // Cookies split over two lines: the session cookie never reaches the upstream. nginx could not be made to
    // forward the other cookies alone, so there such a request is refused (RFC 6265 allows one Cookie line).
    for (const lines of [[['cookie', 'a=1'], ['cookie', `${COOKIE_NAME}=${session.token}; b=2`]],
      [['cookie', `${COOKIE_NAME}=${session.token}`], ['cookie', 'b=2']]]) {
      const res = await sendRaw(`${proxy.url}/api/whoami`, [['accept', 'application/json'], ...lines]);
      if (PROXY_KIND === 'nginx') {
        assert.equal(res.status, 400, res.body);
        continue;
      }
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.headers['x-user-sub'], 'alice');
      assert.ok(!(res.json.headers.cookie ?? '').includes(session.token), `the upstream got ${res.json.headers.cookie}`);
      assert.match(res.json.headers.cookie ?? '', /b=2/);
    }
  });

  it('accepts the session on every worker', async () => {
    const session = await mustLogin(proxy, { user: 'bob' });
    // Fresh connections until every worker took some (at least two rounds over the 4 workers).
    const answers = await burstOverWorkers(proxy, `${proxy.url}/api/whoami`, { headers: withCookie(session.token) });
    for (const res of answers) {
      assert.equal(res.status, 200, res.body);
      assert.equal(res.json.headers['x-user-sub'], 'bob');
      assert.equal(res.json.headers['x-user-groups'], 'staff');
    }
  });

  it('refuses a forged or tampered token', async () => {
    const session = await mustLogin(proxy, { user: 'alice' });
    const [head, payload, signature] = session.token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = `${head}.${Buffer.from(JSON.stringify({ ...claims, sub: 'bob' })).toString('base64url')}.${signature}`;
    for (const token of [forged, 'not-a-jwt', `${session.token}x`]) {
      const res = await send(`${proxy.url}/api/whoami`, { headers: withCookie(token) });
      assert.equal(res.status, 401, `token ${token.slice(0, 20)}…: ${res.status}`);
    }
    assert.ok(!JSON.stringify(session.jar.all()).includes('mallory'));
    assert.ok(session.jar.get(session.startUrl, COOKIE_NAME));
  });
});
