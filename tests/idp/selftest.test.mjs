// Self-test of the test IdP: it must behave like a real IdP where the end-to-end tests depend on it (rotation,
// reuse detection, deprovisioning, back-channel logout) and its control API must do what it says.
// Run: node --test tests/idp/selftest.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createPublicKey, verify as verifySignature } from 'node:crypto';
import { once } from 'node:events';

import { spawnReady } from './lib/spawn.mjs';
import { TestRp, control } from './lib/rp.mjs';
import { CookieJar, follow, login, request, confirmIdpLogout } from './login-client.mjs';

const PROVIDER = new URL('./provider.mjs', import.meta.url).pathname;
const ECHO = new URL('./echo-upstream.mjs', import.meta.url).pathname;
const REDIRECT_URI = 'http://127.0.0.1:9/rp-callback';
const POST_LOGOUT_URI = 'http://127.0.0.1:9/rp-logged-out';
const T = { timeout: 15_000 };

let idp;
let rp;
let ctl;
const logoutTokens = [];
let logoutWaiters = [];
let backchannelServer;

async function listenLoopback(server) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server.address().port;
}

// Resolves when `n` logout tokens have arrived, or rejects after the timeout.
function logoutTokensArrived(n, timeoutMs = 5000) {
  if (logoutTokens.length >= n) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${logoutTokens.length} of ${n} logout tokens arrived`)), timeoutMs);
    logoutWaiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
  });
}

// Polls `predicate` (every 10 ms) until it holds, or fails after the timeout.
async function waitFor(predicate, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => { setTimeout(resolve, 10); });
  }
}

function decodeJwt(jwt) {
  const [header, payload, signature] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url')),
    payload: JSON.parse(Buffer.from(payload, 'base64url')),
    signingInput: `${header}.${payload}`,
    signature: Buffer.from(signature, 'base64url'),
  };
}

async function newUser(sub, groups = ['staff']) {
  await control(ctl, 'POST', '/users', { sub, email: `${sub}@example.test`, email_verified: true, groups });
  return sub;
}

before(async () => {
  backchannelServer = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      logoutTokens.push(new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token'));
      res.writeHead(200).end();
      logoutWaiters = logoutWaiters.filter((w) => (logoutTokens.length >= w.n ? (w.resolve(), false) : true));
    });
  });
  const backchannelPort = await listenLoopback(backchannelServer);
  idp = await spawnReady(PROVIDER, [
    '--redirect-uri', REDIRECT_URI,
    '--post-logout-redirect-uri', POST_LOGOUT_URI,
    '--backchannel-logout-uri', `http://127.0.0.1:${backchannelPort}/backchannel-logout`,
  ]);
  ctl = idp.ready.control;
  rp = new TestRp({ issuer: idp.ready.issuer, redirectUri: REDIRECT_URI });
  await rp.discover();
});

after(async () => {
  await idp?.stop();
  backchannelServer?.close();
  backchannelServer?.closeAllConnections();
});

test('ready line and discovery: issuer byte-exact, userinfo at /me', T, async (t) => {
  const { issuer, port, control: controlUrl, client_id: clientId } = idp.ready;
  assert.equal(issuer, `http://127.0.0.1:${port}`);
  assert.match(controlUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(clientId, 'vigil');
  assert.equal(rp.metadata.issuer, issuer);
  assert.equal(rp.metadata.token_endpoint, `${issuer}/token`);
  assert.equal(rp.metadata.userinfo_endpoint, `${issuer}/me`);
  assert.equal(rp.metadata.revocation_endpoint, `${issuer}/token/revocation`);
  assert.equal(rp.metadata.backchannel_logout_supported, true);
  assert.ok(rp.metadata.end_session_endpoint);
  t.diagnostic(`startup to ready line: ${idp.startupMs.toFixed(0)} ms`);
});

test('code + PKCE login against the IdP, then /me serves the profile claims', T, async () => {
  const sub = await newUser('pkce-user', ['admins', 'staff']);
  const authorization = await rp.authorize({ loginHint: sub });
  assert.equal(authorization.error, null);
  assert.equal(authorization.state, authorization.expectedState);
  assert.equal(authorization.iss, idp.ready.issuer);
  assert.equal(authorization.hops.length, 3, 'auth -> interaction -> auth/<uid> -> callback');

  const tokens = await rp.exchange(authorization.code, authorization.verifier);
  assert.equal(tokens.status, 200);
  assert.ok(tokens.json.access_token && tokens.json.refresh_token && tokens.json.id_token);
  assert.equal(decodeJwt(tokens.json.id_token).payload.sub, sub);

  const replay = await rp.exchange(authorization.code, authorization.verifier);
  assert.equal(replay.status, 400);
  assert.equal(replay.json.error, 'invalid_grant');

  const me = await rp.userinfo(tokens.json.access_token);
  assert.equal(me.status, 401, 'a replayed code revokes the grant, including its access token');

  const again = await rp.login({ loginHint: sub });
  const me2 = await rp.userinfo(again.access_token);
  assert.equal(me2.status, 200);
  assert.deepEqual(me2.json, {
    sub, email: `${sub}@example.test`, email_verified: true, preferred_username: sub, groups: ['admins', 'staff'],
  });
});

test('wrong PKCE verifier and wrong client secret are refused', T, async () => {
  const sub = await newUser('pkce-wrong');
  const authorization = await rp.authorize({ loginHint: sub });
  const wrong = await rp.exchange(authorization.code, 'x'.repeat(43));
  assert.equal(wrong.status, 400);
  assert.equal(wrong.json.error, 'invalid_grant');
  const badClient = new TestRp({ issuer: rp.issuer, redirectUri: REDIRECT_URI, clientSecret: 'wrong' });
  badClient.metadata = rp.metadata;
  const refused = await badClient.refresh('whatever');
  assert.equal(refused.status, 401);
  assert.equal(refused.json.error, 'invalid_client');
});

test('refresh rotates; presenting the old refresh token is reuse: 400 invalid_grant and the grant dies', T, async () => {
  const sub = await newUser('rotation-user');
  const first = await rp.login({ loginHint: sub });
  const second = await rp.refresh(first.refresh_token);
  assert.equal(second.status, 200);
  assert.notEqual(second.json.refresh_token, first.refresh_token);
  assert.equal((await rp.userinfo(second.json.access_token)).status, 200);

  const reuse = await rp.refresh(first.refresh_token);
  assert.equal(reuse.status, 400);
  assert.equal(reuse.json.error, 'invalid_grant');

  const afterReuse = await rp.refresh(second.json.refresh_token);
  assert.equal(afterReuse.status, 400, 'the newest refresh token died with the grant');
  assert.equal(afterReuse.json.error, 'invalid_grant');
  assert.equal((await rp.userinfo(second.json.access_token)).status, 401);
});

test('the control API shows the latest refresh token issued to a client for a user', T, async () => {
  const sub = await newUser('issued-user');
  const path = `/users/${sub}/refresh-tokens/vigil`;
  assert.deepEqual(await control(ctl, 'GET', path), { clientId: 'vigil', sub, issued: 0, latest: null });
  const first = await rp.login({ loginHint: sub });
  assert.equal((await control(ctl, 'GET', path)).latest, first.refresh_token);
  const second = await rp.refresh(first.refresh_token);
  const issued = await control(ctl, 'GET', path);
  assert.equal(issued.issued, 2);
  assert.equal(issued.latest, second.json.refresh_token);
});

test('the timeline lists token and userinfo calls in arrival order', T, async () => {
  const sub = await newUser('timeline-user');
  await control(ctl, 'POST', '/counters/reset');
  const tokens = await rp.login({ loginHint: sub });
  await rp.refresh(tokens.refresh_token);
  await rp.userinfo(tokens.access_token);
  const timeline = await control(ctl, 'GET', '/timeline');
  assert.deepEqual(timeline.map((e) => [e.route, e.grantType, e.status]), [
    ['token', 'authorization_code', 200], ['token', 'refresh_token', 200], ['userinfo', undefined, 200],
  ]);
  assert.ok(timeline[0].at <= timeline[1].at && timeline[1].at <= timeline[2].at);
  assert.ok(Math.abs(timeline[2].at - Date.now()) < 5000);
});

test('slow-answer: the refresh takes effect at once, its answer comes late', T, async () => {
  const sub = await newUser('slow-answer-user');
  const tokens = await rp.login({ loginHint: sub });
  await control(ctl, 'POST', '/faults', { path: '/token', method: 'POST', kind: 'slow-answer', ms: 600 });
  const startedAt = performance.now();
  const late = rp.refresh(tokens.refresh_token);
  // Before the answer arrives, the old refresh token is already rotated out (presenting it again is reuse).
  const issuedPath = `/users/${sub}/refresh-tokens/vigil`;
  for (let i = 0; i < 100 && (await control(ctl, 'GET', issuedPath)).issued < 2; i += 1) await new Promise((r) => { setTimeout(r, 10); });
  assert.equal((await control(ctl, 'GET', issuedPath)).issued, 2, 'rotated before the answer');
  const answer = await late;
  assert.equal(answer.status, 200);
  assert.ok(performance.now() - startedAt >= 590, 'answered after the delay');
});

test('two parallel refreshes with one token: one wins, one loses, and the winner is revoked too', T, async () => {
  const sub = await newUser('parallel-user');
  const tokens = await rp.login({ loginHint: sub });
  const answers = await Promise.all([rp.refresh(tokens.refresh_token), rp.refresh(tokens.refresh_token)]);
  assert.deepEqual(answers.map((a) => a.status).sort(), [200, 400]);
  const winner = answers.find((a) => a.status === 200);
  assert.equal((await rp.refresh(winner.json.refresh_token)).status, 400);
});

test('offline_access needs prompt=consent; refreshWithoutOfflineAccess issues refresh tokens regardless', T, async () => {
  const sub = await newUser('offline-user');
  const noConsent = await rp.login({ loginHint: sub, prompt: null });
  assert.equal(noConsent.refresh_token, undefined);
  assert.ok(!noConsent.scope.split(' ').includes('offline_access'));

  const withConsent = await rp.login({ loginHint: sub, prompt: 'consent' });
  assert.ok(withConsent.refresh_token);

  await control(ctl, 'POST', '/settings', { refreshWithoutOfflineAccess: true });
  try {
    const always = await rp.login({ loginHint: sub, scope: 'openid email', prompt: null });
    assert.ok(always.refresh_token);
    assert.equal((await rp.refresh(always.refresh_token)).status, 200);
  } finally {
    await control(ctl, 'POST', '/settings', { refreshWithoutOfflineAccess: false });
  }
});

test('access-token TTL is settable at runtime', T, async () => {
  const sub = await newUser('ttl-user');
  const settings = await control(ctl, 'POST', '/settings', { accessTokenTTL: 2 });
  try {
    assert.equal(settings.accessTokenTTL, 2);
    const tokens = await rp.login({ loginHint: sub });
    assert.equal(tokens.expires_in, 2);
    assert.equal((await rp.refresh(tokens.refresh_token)).json.expires_in, 2);
  } finally {
    await control(ctl, 'POST', '/settings', { accessTokenTTL: 3600 });
  }
  await assert.rejects(control(ctl, 'POST', '/settings', { accessTokenTTL: 0 }), { status: 400 });
  await assert.rejects(control(ctl, 'POST', '/settings', { nonsense: 1 }), { status: 400 });
});

test('deprovision: /me 401 invalid_token, refresh 400 invalid_grant, login access_denied; enable restores', T, async () => {
  const sub = await newUser('deprovisioned-user');
  const tokens = await rp.login({ loginHint: sub });
  const outcome = await control(ctl, 'POST', `/users/${sub}/deprovision`);
  assert.equal(outcome.user.enabled, false);
  assert.equal(outcome.revokedGrants, 1);

  const me = await rp.userinfo(tokens.access_token);
  assert.equal(me.status, 401);
  assert.equal(me.json.error, 'invalid_token');
  assert.match(me.headers.get('www-authenticate'), /^Bearer .*error="invalid_token"/);

  const refreshed = await rp.refresh(tokens.refresh_token);
  assert.equal(refreshed.status, 400);
  assert.equal(refreshed.json.error, 'invalid_grant');

  const denied = await rp.authorize({ loginHint: sub });
  assert.equal(denied.error, 'access_denied');
  assert.equal(denied.code, null);

  await control(ctl, 'POST', `/users/${sub}/enable`);
  const back = await rp.login({ loginHint: sub });
  assert.equal((await rp.userinfo(back.access_token)).status, 200);
});

test('delete a user; change a user\'s groups; default user; unknown users', T, async () => {
  const sub = await newUser('groups-user', ['staff']);
  const tokens = await rp.login({ loginHint: sub });
  await control(ctl, 'PUT', `/users/${sub}/groups`, { groups: ['auditors'] });
  assert.deepEqual((await rp.userinfo(tokens.access_token)).json.groups, ['auditors']);

  await control(ctl, 'POST', '/default-user', { sub });
  try {
    const byDefault = await rp.login({});
    assert.equal((await rp.userinfo(byDefault.access_token)).json.sub, sub);
  } finally {
    await control(ctl, 'POST', '/default-user', { sub: 'alice' });
  }

  const deleted = await control(ctl, 'DELETE', `/users/${sub}`);
  assert.equal(deleted.deleted, sub);
  assert.equal((await rp.userinfo(tokens.access_token)).status, 401);
  assert.equal((await rp.authorize({ loginHint: sub })).error, 'access_denied');
  await assert.rejects(control(ctl, 'GET', `/users/${sub}`), { status: 404 });
  await assert.rejects(control(ctl, 'POST', '/users/nobody/deprovision'), { status: 404 });
});

test('login form (make demo): without login_hint the interaction shows a user picker; posting a user logs in', T, async () => {
  const sub = await newUser('form-user');
  await control(ctl, 'POST', '/settings', { loginForm: true });
  try {
    const jar = new CookieJar();
    const url = new URL(rp.metadata.authorization_endpoint);
    url.search = new URLSearchParams({ client_id: 'vigil', redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid' }).toString();
    const page = await follow(url.href, { jar });
    assert.equal(page.response.status, 200);
    assert.match(page.response.body, new RegExp(`<button name="user" value="${sub}">`));
    const action = /<form method="post" action="([^"]+)"/.exec(page.response.body)[1];
    const done = await follow(new URL(action, rp.issuer).href, {
      jar, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `user=${sub}`, stopAt: (u) => u.startsWith(REDIRECT_URI),
    });
    const code = new URL(done.stoppedAt).searchParams.get('code');
    assert.ok(code);
    const tokens = (await rp.exchange(code, undefined)).json;
    assert.equal((await rp.userinfo(tokens.access_token)).json.sub, sub);
  } finally {
    await control(ctl, 'POST', '/settings', { loginForm: false });
  }
});

test('revocation of the refresh token kills the grant (RFC 7009)', T, async () => {
  const sub = await newUser('revoked-user');
  const tokens = await rp.login({ loginHint: sub });
  assert.equal((await rp.revoke(tokens.refresh_token, 'refresh_token')).status, 200);
  assert.equal((await rp.refresh(tokens.refresh_token)).json.error, 'invalid_grant');
  assert.equal((await rp.userinfo(tokens.access_token)).status, 401);
});

test('back-channel logout for a user: a signed logout token reaches the client', T, async () => {
  const sub = await newUser('bcl-user');
  const tokens = await rp.login({ loginHint: sub });
  const before = logoutTokens.length;
  const outcome = await control(ctl, 'POST', `/users/${sub}/backchannel-logout`, {});
  assert.equal(outcome.sent, 1);
  assert.equal(outcome.ok, 1);
  await logoutTokensArrived(before + 1);

  const token = decodeJwt(logoutTokens[before]);
  assert.equal(token.payload.iss, idp.ready.issuer);
  assert.equal(token.payload.aud, 'vigil');
  assert.equal(token.payload.sub, sub);
  assert.ok(token.payload.sid);
  assert.deepEqual(token.payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
  assert.equal(token.payload.nonce, undefined);
  const jwks = await (await fetch(rp.metadata.jwks_uri, { signal: AbortSignal.timeout(5000) })).json();
  const jwk = jwks.keys.find((k) => k.kid === token.header.kid);
  assert.equal(token.header.alg, 'RS256');
  assert.ok(verifySignature('sha256', Buffer.from(token.signingInput), createPublicKey({ key: jwk, format: 'jwk' }), token.signature));
  assert.equal(token.payload.sid, decodeJwt(tokens.id_token).payload.sid);

  // Without revokeGrants the IdP keeps the grant (the RP is told; the IdP session is another matter).
  assert.equal((await rp.userinfo(tokens.access_token)).status, 200);
  const revoking = await control(ctl, 'POST', `/users/${sub}/backchannel-logout`, { revokeGrants: true, endSessions: true });
  assert.equal(revoking.revokedGrants, 1);
  assert.equal(revoking.endedSessions, 1);
  await logoutTokensArrived(before + 2);
  assert.equal((await rp.userinfo(tokens.access_token)).status, 401);
});

test('RP-initiated logout: confirmation form, back-channel logout, redirect to the registered URI', T, async () => {
  const sub = await newUser('rp-logout-user');
  const jar = new CookieJar();
  const authorization = await rp.authorize({ loginHint: sub, jar });
  const tokens = (await rp.exchange(authorization.code, authorization.verifier)).json;
  const before = logoutTokens.length;
  const url = new URL(rp.metadata.end_session_endpoint);
  url.searchParams.set('id_token_hint', tokens.id_token);
  url.searchParams.set('post_logout_redirect_uri', POST_LOGOUT_URI);
  const done = await confirmIdpLogout(url.href, { jar, stopAt: (u) => u.startsWith(POST_LOGOUT_URI) });
  assert.ok(done.stoppedAt.startsWith(POST_LOGOUT_URI));
  await logoutTokensArrived(before + 1);
  assert.equal(decodeJwt(logoutTokens[before]).payload.sub, sub);
});

test('faults: status with body, limited to a path and a count', T, async () => {
  const sub = await newUser('fault-status-user');
  const tokens = await rp.login({ loginHint: sub });
  const fault = await control(ctl, 'POST', '/faults', { path: '/token', kind: 'status', status: 503, body: { error: 'temporarily_unavailable' }, count: 2 });
  assert.equal(fault.remaining, 2);
  assert.equal((await rp.userinfo(tokens.access_token)).status, 200, 'other paths are untouched');
  for (let i = 0; i < 2; i += 1) {
    const refused = await rp.refresh(tokens.refresh_token);
    assert.equal(refused.status, 503);
    assert.deepEqual(refused.json, { error: 'temporarily_unavailable' });
  }
  const ok = await rp.refresh(tokens.refresh_token);
  assert.equal(ok.status, 200, 'a faulted request never reached the IdP, so the token was not consumed');
  assert.deepEqual(await control(ctl, 'GET', '/faults'), []);
});

test('faults: delay N ms, then the real answer', T, async () => {
  const sub = await newUser('fault-delay-user');
  const tokens = await rp.login({ loginHint: sub });
  await control(ctl, 'POST', '/faults', { path: '/me', kind: 'delay', ms: 300 });
  const started = performance.now();
  const me = await rp.userinfo(tokens.access_token);
  const elapsed = performance.now() - started;
  assert.equal(me.status, 200);
  assert.ok(elapsed >= 290, `answered after ${elapsed.toFixed(0)} ms`);
});

test('faults: hang never answers (the client times out); the next request is served', T, async () => {
  const sub = await newUser('fault-hang-user');
  const tokens = await rp.login({ loginHint: sub });
  await control(ctl, 'POST', '/faults', { path: '/m*', kind: 'hang', method: 'get' });
  await assert.rejects(rp.userinfo(tokens.access_token, { timeoutMs: 300 }), { name: 'TimeoutError' });
  assert.equal((await rp.userinfo(tokens.access_token)).status, 200);
});

test('faults: connection reset; "forever" until cleared; bad specs refused', T, async () => {
  const sub = await newUser('fault-reset-user');
  const tokens = await rp.login({ loginHint: sub });
  await control(ctl, 'POST', '/faults', { path: '/token', kind: 'reset', count: 'forever' });
  for (let i = 0; i < 2; i += 1) {
    await assert.rejects(rp.refresh(tokens.refresh_token), (err) => err.cause?.code === 'ECONNRESET' || err.cause?.code === 'UND_ERR_SOCKET');
  }
  const cleared = await control(ctl, 'DELETE', '/faults');
  assert.equal(cleared.removed, 1);
  assert.equal((await rp.refresh(tokens.refresh_token)).status, 200);

  await assert.rejects(control(ctl, 'POST', '/faults', { path: 'token', kind: 'reset' }), { status: 400 });
  await assert.rejects(control(ctl, 'POST', '/faults', { path: '/token', kind: 'explode' }), { status: 400 });
  await assert.rejects(control(ctl, 'POST', '/faults', { path: '/token', kind: 'status' }), { status: 400 });
  await assert.rejects(control(ctl, 'POST', '/faults', { path: '/token', kind: 'delay', ms: 5, count: 0 }), { status: 400 });
});

test('counters: token calls by grant type, refresh tokens presented twice, userinfo calls, faults', T, async () => {
  const sub = await newUser('counted-user');
  await control(ctl, 'POST', '/counters/reset');
  const tokens = await rp.login({ loginHint: sub });
  const rotated = await rp.refresh(tokens.refresh_token);
  await rp.userinfo(rotated.json.access_token);
  let counters = await control(ctl, 'GET', '/counters');
  assert.equal(counters.token.calls, 2);
  assert.equal(counters.token.byGrantType.authorization_code.ok, 1);
  assert.equal(counters.token.byGrantType.refresh_token.ok, 1);
  assert.deepEqual(counters.refreshTokens, { presented: 1, distinct: 1, reused: false, reusedTokens: 0, maxPresentations: 1 });
  assert.deepEqual(counters.userinfo, { calls: 1, ok: 1, errors: {} });

  await control(ctl, 'POST', '/faults', { path: '/token', kind: 'status', status: 500 });
  await rp.refresh(rotated.json.refresh_token); // swallowed by the fault: not seen by the IdP
  await rp.refresh(tokens.refresh_token); // reuse
  await rp.userinfo(rotated.json.access_token); // dead by now
  counters = await control(ctl, 'GET', '/counters');
  assert.equal(counters.token.byGrantType.refresh_token.calls, 2);
  assert.deepEqual(counters.token.byGrantType.refresh_token.errors, { invalid_grant: 1 });
  assert.equal(counters.refreshTokens.reused, true);
  assert.equal(counters.refreshTokens.maxPresentations, 2);
  assert.deepEqual(counters.userinfo, { calls: 2, ok: 1, errors: { invalid_token: 1 } });
  assert.deepEqual(counters.faults, { fired: 1, byKind: { status: 1 }, hungNow: 0 });
});

test('login-client: a scripted login through a relying party (stand-in for the proxy) with a cookie jar', T, async (t) => {
  const sub = await newUser('jar-user');
  const pending = new Map(); // state -> { verifier, returnTo }
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/callback') {
      const { verifier, returnTo } = pending.get(url.searchParams.get('state')) ?? {};
      if (url.searchParams.get('error')) return res.writeHead(403).end(url.searchParams.get('error'));
      const tokens = await proxyRp.exchange(url.searchParams.get('code'), verifier);
      const me = await proxyRp.userinfo(tokens.json.access_token);
      res.writeHead(302, { location: returnTo, 'set-cookie': `session=${me.json.sub}; Path=/; HttpOnly; SameSite=Lax` });
      return res.end();
    }
    // The IdP's own cookies (_session, _interaction) come along too: cookies are per host, not per port.
    const session = /(?:^|;\s*)session=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    if (session) return res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${session}`);
    const authorization = await proxyRp.authorizationRedirect(url.pathname);
    pending.set(authorization.state, authorization);
    return res.writeHead(302, { location: authorization.location }).end();
  });
  const port = await listenLoopback(server);
  t.after(() => { server.close(); server.closeAllConnections(); });
  const callback = `http://127.0.0.1:${port}/callback`;
  await control(ctl, 'POST', '/clients', {
    client_id: 'jar-proxy', client_secret: 'jar-secret', redirect_uris: [callback],
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
  });
  const proxyRp = new TestRp({ issuer: rp.issuer, clientId: 'jar-proxy', clientSecret: 'jar-secret', redirectUri: callback });
  proxyRp.metadata = rp.metadata;
  proxyRp.authorizationRedirect = async (returnTo) => {
    const { createHash, randomBytes } = await import('node:crypto');
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(8).toString('hex');
    const u = new URL(rp.metadata.authorization_endpoint);
    u.search = new URLSearchParams({
      client_id: 'jar-proxy', redirect_uri: callback, response_type: 'code', scope: 'openid email', state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    }).toString();
    return { verifier, state, returnTo, location: u.href };
  };

  const result = await login(`http://127.0.0.1:${port}/app/page`, { loginHint: sub });
  assert.equal(result.response.status, 200);
  assert.equal(result.response.body, `hello ${sub}`);
  assert.equal(result.response.url, `http://127.0.0.1:${port}/app/page`);
  assert.equal(result.cookies.session, sub);
  assert.equal(result.hops.length, 6, result.hops.map((h) => `${h.status} ${h.url}`).join('\n'));
  assert.ok(result.callbackUrl.startsWith(callback));
  assert.equal(result.callbackError, undefined);
  const cookie = result.jar.get(result.response.url, 'session');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Lax');

  await control(ctl, 'POST', `/users/${sub}/deprovision`);
  const denied = await login(`http://127.0.0.1:${port}/app/other`, { loginHint: sub });
  assert.equal(denied.callbackError, 'access_denied');
  assert.equal(denied.response.status, 403);
});

test('echo upstream reports method, path and headers; HTML for browsers', T, async () => {
  const echo = await spawnReady(ECHO);
  try {
    const json = await request(`${echo.ready.url}/a/b?c=1`, { headers: { accept: 'application/json', 'x-user': 'spoofed' } });
    const body = JSON.parse(json.body);
    assert.equal(body.method, 'GET');
    assert.equal(body.path, '/a/b?c=1');
    assert.equal(body.headers['x-user'], 'spoofed');
    const html = await request(`${echo.ready.url}/page`, { headers: { accept: 'text/html' } });
    assert.match(html.headers.get('content-type'), /^text\/html/);
    assert.match(html.body, /x-user|GET \/page/);
  } finally {
    assert.deepEqual(await echo.stop(), { code: 0, signal: null });
  }
});

test('echo upstream page: who is signed in, the session times and a log-out form first, every value escaped', T, async () => {
  const echo = await spawnReady(ECHO);
  try {
    const now = Math.floor(Date.now() / 1000);
    const headers = {
      accept: 'text/html',
      'x-user-sub': '<img src=x onerror=alert(1)>',
      'x-user-email': 'alice@example.test',
      'x-user-groups': 'staff,"admins"',
      'x-vigil-validated-at': String(now - 4),
      'x-vigil-revalidate-at': String(now + 56),
    };
    const { body } = await request(`${echo.ready.url}/app`, { headers });
    const identity = body.indexOf('id="identity"');
    assert.ok(identity !== -1 && identity < body.indexOf('id="headers"'), 'the identity panel comes before the header table');
    assert.ok(!body.includes('<img'), 'header values are escaped');
    assert.match(body, /id="subject"[^>]*>&#60;img src=x onerror=alert\(1\)&#62;</);
    assert.match(body, /id="email">alice@example\.test</);
    assert.match(body, /<span class="chip">staff<\/span> <span class="chip">&#34;admins&#34;<\/span>/);
    const utc = (s) => new Date(s * 1000).toISOString().replace('T', ' ').replace('.000Z', ' UTC');
    assert.match(body, new RegExp(`id="validated-at"><time [^>]*>${utc(now - 4)}</time> <span [^>]*>\\(\\d s ago\\)`));
    assert.match(body, new RegExp(`id="revalidate-at"><time [^>]*>${utc(now + 56)}</time> <span [^>]*>\\(in 5\\d s\\)`));
    assert.match(body, /<form id="logout" method="post" action="\/oauth2\/logout"><button type="submit">Log out<\/button><\/form>/);
    // Not through vigil: no identity, no log-out button; the JSON answer keeps its shape.
    const anonymous = await request(`${echo.ready.url}/app`, { headers: { accept: 'text/html' } });
    assert.match(anonymous.body, /Nobody is signed in/);
    assert.ok(!anonymous.body.includes('id="logout"'));
    const json = JSON.parse((await request(`${echo.ready.url}/app`, { headers: { ...headers, accept: 'application/json' } })).body);
    assert.deepEqual(Object.keys(json), ['method', 'path', 'headers', 'requests', 'bodyBytes', 'bodySha256', 'body']);
    assert.equal(json.headers['x-user-sub'], headers['x-user-sub']);
  } finally {
    assert.deepEqual(await echo.stop(), { code: 0, signal: null });
  }
});

test('SIGTERM stops the provider cleanly even with a request hanging', T, async () => {
  const other = await spawnReady(PROVIDER, ['--redirect-uri', REDIRECT_URI]);
  await control(other.ready.control, 'POST', '/faults', { path: '/*', kind: 'hang' });
  const hanging = fetch(`${other.ready.issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) }).catch((err) => err);
  await waitFor(async () => (await control(other.ready.control, 'GET', '/counters')).faults.hungNow === 1);
  const { hung } = await control(other.ready.control, 'DELETE', '/faults');
  assert.equal(hung, 1, 'clearing faults leaves hanging requests hanging');
  assert.deepEqual(await other.stop(), { code: 0, signal: null });
  assert.ok((await hanging) instanceof Error);
});
