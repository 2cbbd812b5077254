// Scenario 6: logout through the proxy. A GET of the logout path only shows a confirmation page (a form that POSTs
// back: a cross-site link cannot log anyone out); its POST logs out. The refresh token is revoked at the IdP (the
// test replays it and the IdP refuses), the cookie is cleared, the old downstream token is rejected, and the browser
// goes on to the IdP's end_session_endpoint, then back to the post-logout page.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack } from '../lib/stack.mjs';
import { mustLogin, figure } from '../lib/session.mjs';
import { send, burstOverWorkers, until, withCookie, withBearer, PAGE_ACCEPT } from '../lib/http.mjs';
import { request, confirmIdpLogout } from '../../idp/login-client.mjs';
import { TestRp } from '../../idp/lib/rp.mjs';
import { LOGOUT_PATH, COOKIE_NAME } from '../lib/config.mjs';

describe('scenario 6: logout', () => {
  let stack;
  let proxy;
  before(async () => {
    stack = await startStack('s6-logout', { proxy: { overrides: { revalidate_interval: '1h' } } });
    proxy = stack.proxies.get('proxy');
  });
  after(() => stack?.stop());

  it('revokes the refresh token, clears the cookie and kills the downstream token', async (t) => {
    const session = await mustLogin(proxy, { user: 'alice' });
    const issued = await stack.control('GET', `/users/alice/refresh-tokens/${proxy.clientId}`);
    assert.equal(issued.issued, 1, 'the login got a refresh token (offline_access + prompt=consent)');
    const before = await stack.counters();

    // The GET: a confirmation page whose form POSTs to the logout path; nothing ends yet.
    const page = await request(`${proxy.url}${LOGOUT_PATH}`, { jar: session.jar });
    assert.equal(page.status, 200, page.body.slice(0, 200));
    const action = /<form method="post" action="([^"]+)"/.exec(page.body)?.[1];
    assert.equal(action, LOGOUT_PATH, 'the confirmation form posts to the logout path');
    assert.equal(session.jar.get(proxy.url, COOKIE_NAME)?.value, session.token, 'the GET keeps the cookie');
    assert.equal((await send(`${proxy.url}/api/whoami`, { headers: withCookie(session.token) })).status, 200, 'still logged in');

    // The form's POST, as a browser sends it from that page.
    const startedAt = performance.now();
    const res = await request(new URL(action, proxy.url).href, {
      jar: session.jar,
      method: 'POST',
      headers: { origin: proxy.url, 'sec-fetch-site': 'same-origin', 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    const ms = performance.now() - startedAt;
    assert.ok([302, 303].includes(res.status), `${res.status} ${res.body.slice(0, 200)}`);
    const location = new URL(res.location);
    const discovery = await (await fetch(`${stack.issuer}/.well-known/openid-configuration`)).json();
    assert.equal(`${location.origin}${location.pathname}`, discovery.end_session_endpoint);
    assert.equal(location.searchParams.get('client_id'), proxy.clientId);
    assert.equal(location.searchParams.get('post_logout_redirect_uri'), `${proxy.url}/`);
    // The login's ID token as id_token_hint: the IdP knows whose session ends.
    const hint = location.searchParams.get('id_token_hint');
    assert.ok(hint, 'id_token_hint is sent');
    const hinted = JSON.parse(Buffer.from(hint.split('.')[1], 'base64url').toString());
    assert.equal(hinted.sub, 'alice');
    assert.equal(hinted.aud, proxy.clientId);
    assert.equal(hinted.iss, stack.issuer);
    const cleared = res.headers.getSetCookie().find((c) => c.startsWith(`${COOKIE_NAME}=`));
    assert.ok(cleared, 'the logout answer clears the session cookie');
    assert.match(cleared, /max-age=0|expires=thu, 01 jan 1970/i);
    assert.equal(session.jar.get(proxy.url, COOKIE_NAME), undefined, 'the cookie is gone from the jar');

    // The revocation is sent after the reply, from the root: at once on Envoy (a queue wake-up), at the next tick
    // (poll_interval) on nginx.
    const after = await until(async () => {
      const now = await stack.counters();
      return now.revocation.ok > before.revocation.ok && now;
    }, { withinMs: 2000, what: 'the RFC 7009 revocation at the IdP' });
    assert.equal(after.revocation.ok, before.revocation.ok + 1, 'one RFC 7009 revocation at the IdP');

    // The refresh token the proxy held is dead at the IdP.
    const rp = new TestRp({ issuer: stack.issuer, clientId: proxy.clientId, clientSecret: proxy.clientSecret });
    await rp.discover();
    const replay = await rp.refresh(issued.latest);
    assert.equal(replay.status, 400);
    assert.equal(replay.json.error, 'invalid_grant');

    // The old downstream token is refused, as cookie and as bearer, on every worker.
    for (const headers of [withCookie(session.token), withBearer(session.token)]) {
      for (const res of await burstOverWorkers(proxy, `${proxy.url}/api/whoami`, { headers })) assert.equal(res.status, 401, res.body);
    }
    // A page load with it goes back to the login.
    const reload = await send(`${proxy.url}/app/home`, { headers: { ...PAGE_ACCEPT, cookie: `${COOKIE_NAME}=${session.token}` } });
    assert.ok([302, 303].includes(reload.status), `${reload.status}`);
    assert.ok(reload.headers.location.startsWith(discovery.authorization_endpoint));

    // The IdP's confirmation, then back to the post-logout page, which (no session) leads to the login again.
    const confirmed = await confirmIdpLogout(res.location, {
      jar: session.jar,
      stopAt: (u) => u.startsWith(discovery.authorization_endpoint),
    });
    const visited = confirmed.hops.map((h) => h.url);
    assert.ok(visited.includes(`${proxy.url}/`), `did not return to the post-logout page: ${visited.join(' → ')}`);
    figure(t, 's6.logout', { logout_ms: Math.round(ms) });
  });
});
