// Requests to the proxy on a fresh TCP connection each: host-sim pins a connection to one worker VM, round robin,
// so N fresh connections opened together land on N consecutive workers (all of them once N >= workers).

import http from 'node:http';

export const JSON_ACCEPT = { accept: 'application/json' };
export const PAGE_ACCEPT = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' };

// → { status, headers, body, json, ms }. Rejects only on a network error or after `timeoutMs`.
export function send(url, { method = 'GET', headers = {}, body, timeoutMs = 10_000 } = {}) {
  const startedAt = performance.now();
  return new Promise((resolveResponse, reject) => {
    const req = http.request(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolveResponse({ status: res.statusCode, headers: res.headers, body: text, json, ms: performance.now() - startedAt });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

// A request with its header lines exactly as given (repeated names included), on a fresh connection.
export function sendRaw(url, lines, { method = 'GET', timeoutMs = 10_000 } = {}) {
  const { host } = new URL(url);
  return send(url, { method, timeoutMs, headers: [['host', host], ...lines].flat() });
}

export const withCookie = (value, headers = {}) => ({ ...JSON_ACCEPT, ...headers, cookie: `vigil_session=${value}` });
export const withBearer = (value, headers = {}) => ({ ...JSON_ACCEPT, ...headers, authorization: `Bearer ${value}` });

// `count` requests at once, each on its own connection.
export function burst(url, count, options) {
  return Promise.all(Array.from({ length: count }, () => send(url, options)));
}

// Real time that has to pass (a revalidation interval), not a synchronisation: resolves after `ms`.
export const elapse = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves once `probe()` returns a truthy value, checking every `everyMs`; rejects after `withinMs`.
export async function until(probe, { withinMs = 5000, everyMs = 20, what = 'condition' } = {}) {
  const deadline = performance.now() + withinMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`${what} not reached within ${withinMs} ms`);
    await elapse(everyMs);
  }
}

// Bursts of `perWorker × workers` fresh connections until every worker of `proxy` took at least one (host-sim's
// round robin: the first burst; real Envoy: the kernel spreads connections, so the proxy's per-worker connection
// counters decide). Every answer is returned, for the caller to check; fails if a worker got none in `maxRounds`.
export async function burstOverWorkers(proxy, url, { perWorker = 2, maxRounds = 10, ...options } = {}) {
  const count = proxy.workers * perWorker;
  const before = await proxy.connectionsPerWorker();
  const answers = await burst(url, count, options);
  if (before === null) return answers;
  for (let round = 1; ; round += 1) {
    const after = await proxy.connectionsPerWorker();
    const missed = Array.from({ length: proxy.workers }, (_, w) => w).filter((w) => !((after[w] ?? 0) > (before[w] ?? 0)));
    if (missed.length === 0) return answers;
    if (round >= maxRounds) throw new Error(`workers ${missed.join(', ')} took no connection in ${round} bursts of ${count}`);
    answers.push(...await burst(url, count, options));
  }
}

// A request whose headers go out first and whose body follows in `chunks`, `gapMs` apart: the proxy has acted on the
// headers (and, were it to, started the upstream request) before any of the body arrives.
export function sendInParts(url, { method = 'POST', headers = {}, chunks = [], gapMs = 150, timeoutMs = 10_000 } = {}) {
  const startedAt = performance.now();
  return new Promise((resolveResponse, reject) => {
    const req = http.request(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolveResponse({ status: res.statusCode, headers: res.headers, body: text, json, ms: performance.now() - startedAt });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    // The proxy may answer (and close) before the whole body is written: that is an answer, not an error.
    req.on('error', (err) => { if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err); });
    req.flushHeaders();
    (async () => {
      for (const chunk of chunks) {
        await elapse(gapMs);
        if (req.destroyed) return;
        req.write(chunk);
      }
      req.end();
    })();
  });
}
