// Scenario 3: refresh-token rotation under load. The IdP's access tokens are short-lived (every revalidation
// refreshes) and it rotates refresh tokens with reuse detection on. Bursts of 500 concurrent requests, spread over
// the 4 workers, in several revalidation intervals: the IdP never sees a refresh token twice, the user is never
// logged out, and there is one refresh per interval in which requests arrived (a burst that lasts longer than an
// interval starts a second one in its tail; the IdP's timeline shows no two refreshes within one interval).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack } from '../lib/stack.mjs';
import { mustLogin, figure } from '../lib/session.mjs';
import { send, burst, withCookie, elapse } from '../lib/http.mjs';

const INTERVAL_MS = 1000;
const BURST = 500;
const ROUNDS = Number(process.env.E2E_ROTATION_ROUNDS ?? 4);

describe('scenario 3: rotation under load', () => {
  let stack;
  let proxy;
  before(async () => {
    // refresh_margin (30 s) > the access token lifetime (5 s): every revalidation refreshes.
    stack = await startStack('s3-rotation', { proxy: { overrides: { revalidate_interval: '1s', revalidate_timeout: '5s', refresh_margin: '30s' } } });
    await stack.control('POST', '/settings', { accessTokenTTL: 5 });
    proxy = stack.proxies.get('proxy');
  });
  after(() => stack?.stop());

  it(`${ROUNDS} bursts of ${BURST} concurrent requests: no refresh token reused, nobody logged out, one refresh per interval`, async (t) => {
    const session = await mustLogin(proxy, { user: 'alice' });
    const url = `${proxy.url}/api/load`;
    const headers = withCookie(session.token);
    await stack.control('POST', '/counters/reset');

    const rounds = [];
    let extraIntervals = 0;
    const startedAt = performance.now();
    for (let round = 0; round < ROUNDS; round += 1) {
      // A new interval has to begin: real time passes.
      await elapse(INTERVAL_MS + 50);
      const t0 = performance.now();
      const answers = await burst(url, BURST, { headers, timeoutMs: 30_000 });
      const ms = performance.now() - t0;
      const statuses = {};
      for (const res of answers) statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      const latencies = answers.map((r) => r.ms).sort((a, b) => a - b);
      rounds.push({ ms: Math.round(ms), statuses, p50_ms: Math.round(latencies[BURST >> 1]), max_ms: Math.round(latencies.at(-1)) });
      assert.deepEqual(statuses, { 200: BURST }, `round ${round}: ${JSON.stringify(statuses)}`);
      for (const res of answers) assert.equal(res.json.headers['x-user-sub'], 'alice');
      // A burst longer than an interval legitimately starts another revalidation in its own tail.
      extraIntervals += Math.floor(ms / INTERVAL_MS);
    }
    const elapsedMs = performance.now() - startedAt;

    const counters = await stack.counters();
    const refresh = counters.token.byGrantType.refresh_token ?? { calls: 0, ok: 0, errors: {} };
    // When each refresh reached the IdP: never two within one interval.
    const refreshes = (await stack.control('GET', '/timeline')).filter((e) => e.grantType === 'refresh_token').map((e) => e.at);
    const gaps = refreshes.slice(1).map((at, i) => Math.round(at - refreshes[i]));
    figure(t, 's3.rotation_under_load', {
      requests: BURST * ROUNDS,
      rounds: ROUNDS,
      interval_ms: INTERVAL_MS,
      elapsed_ms: Math.round(elapsedMs),
      intervals_with_requests: ROUNDS + extraIntervals,
      token_endpoint_calls: counters.token.calls,
      refresh_ok: refresh.ok,
      refresh_errors: refresh.errors,
      userinfo_calls: counters.userinfo.calls,
      refresh_tokens_presented: counters.refreshTokens.presented,
      refresh_token_reuse_count: counters.refreshTokens.reusedTokens,
      max_presentations: counters.refreshTokens.maxPresentations,
      min_gap_between_refreshes_ms: gaps.length ? Math.min(...gaps) : null,
      bursts: rounds,
    });

    assert.equal(counters.refreshTokens.reused, false, 'a refresh token was presented twice');
    assert.equal(counters.refreshTokens.reusedTokens, 0);
    assert.deepEqual(refresh.errors, {});
    assert.equal(refresh.ok, refresh.calls);
    assert.ok(refresh.calls >= ROUNDS, `${refresh.calls} refreshes for ${ROUNDS} intervals`);
    assert.ok(refresh.calls <= ROUNDS + extraIntervals, `${refresh.calls} refreshes for ${ROUNDS + extraIntervals} intervals with requests`);
    assert.equal(counters.token.calls, refresh.calls, 'the token endpoint saw only refreshes');
    for (const gap of gaps) assert.ok(gap >= INTERVAL_MS - 5, `two refreshes ${gap} ms apart: ${gaps.join(', ')}`);
    assert.equal(counters.userinfo.calls, refresh.calls, 'one userinfo per revalidation');

    // Still logged in, and the grant is alive at the IdP (reuse detection would have revoked it).
    const grants = await stack.control('GET', '/users/alice');
    assert.ok(grants.grants.length >= 1);
    await elapse(INTERVAL_MS + 50);
    const last = await send(url, { headers });
    assert.equal(last.status, 200, last.body);
    assert.deepEqual((await stack.counters()).token.errors, {});
  });
});
