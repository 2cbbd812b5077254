// Logging a user in through the proxy with the scripted user agent, and recording the figures the issue asks for.

import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { login as scriptedLogin, CookieJar } from '../../idp/login-client.mjs';
import { COOKIE_NAME, CALLBACK_PATH } from './config.mjs';
import { ARTIFACTS, E2E_RUN } from './stack.mjs';

// Protected page → IdP /auth → interaction → callback → original page. Returns the session cookie and the hops.
export async function login(proxy, { user = 'alice', path = '/app/home?tab=1', jar = new CookieJar() } = {}) {
  const startUrl = `${proxy.url}${path}`;
  const startedAt = performance.now();
  const result = await scriptedLogin(startUrl, { jar, loginHint: user, timeoutMs: 10_000 });
  const ms = performance.now() - startedAt;
  const cookie = jar.get(startUrl, COOKIE_NAME);
  return { ...result, startUrl, cookie, token: cookie?.value, jar, ms };
}

// A login that must succeed and land back on the original page.
export async function mustLogin(proxy, options) {
  const session = await login(proxy, options);
  const hops = session.hops.map((h) => `${h.status} ${h.method} ${h.url}`).join('\n');
  assert.equal(session.callbackError, undefined, `the IdP answered the callback with an error\n${hops}`);
  assert.ok(session.callbackUrl?.startsWith(`${proxy.url}${CALLBACK_PATH}`), `no callback hop\n${hops}`);
  assert.equal(session.response.status, 200, `login did not end on a 200 page: ${session.response.status} ${session.response.body.slice(0, 300)}\n${hops}`);
  assert.equal(session.hops.at(-1).url, session.startUrl, `login did not return to the original page\n${hops}`);
  assert.ok(session.token, `no ${COOKIE_NAME} cookie after login\n${hops}`);
  return session;
}

// One line per figure in dist/e2e/figures.jsonl (printed by `make e2e`), and a diagnostic in the test output.
export function figure(t, name, values) {
  mkdirSync(ARTIFACTS, { recursive: true });
  appendFileSync(join(ARTIFACTS, 'figures.jsonl'), `${JSON.stringify({ name, proxy: E2E_RUN, ...values })}\n`);
  t.diagnostic(`${name} (${E2E_RUN}): ${JSON.stringify(values)}`);
}
