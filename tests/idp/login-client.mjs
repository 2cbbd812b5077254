// A browser-less user agent for scripted logins: a cookie jar and manual redirect following, so a test sees (and
// can stop at) every hop: proxy -> IdP /auth -> /interaction -> /auth/<uid> -> proxy callback -> original page.

import http from 'node:http';

const DEFAULT_TIMEOUT_MS = 5000;
// What a browser sends on a top-level navigation (following redirects, submitting a form).
const NAVIGATION_HEADERS = { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
const DEFAULT_MAX_HOPS = 20;

// Cookies by name, domain (host only: ports do not isolate cookies) and path.
export class CookieJar {
  #cookies = new Map(); // `${domain};${path};${name}` -> { name, value, domain, path, expiresAt, httpOnly, sameSite, secure }

  store(url, setCookieHeaders) {
    const { hostname, pathname } = new URL(url);
    for (const header of setCookieHeaders) {
      const [pair, ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cookie = {
        name: pair.slice(0, eq).trim(),
        value: pair.slice(eq + 1).trim(),
        domain: hostname,
        path: pathname.slice(0, pathname.lastIndexOf('/') + 1) || '/',
        expiresAt: Infinity,
        httpOnly: false,
        secure: false,
        sameSite: undefined,
      };
      for (const attribute of attributes) {
        const [rawKey, ...rest] = attribute.split('=');
        const key = rawKey.trim().toLowerCase();
        const value = rest.join('=').trim();
        if (key === 'path' && value.startsWith('/')) cookie.path = value;
        else if (key === 'domain' && value) cookie.domain = value.replace(/^\./, '').toLowerCase();
        else if (key === 'max-age') cookie.expiresAt = Date.now() + Number(value) * 1000;
        else if (key === 'expires' && cookie.expiresAt === Infinity) cookie.expiresAt = Date.parse(value) || Infinity;
        else if (key === 'httponly') cookie.httpOnly = true;
        else if (key === 'secure') cookie.secure = true;
        else if (key === 'samesite') cookie.sameSite = value;
      }
      const key = `${cookie.domain};${cookie.path};${cookie.name}`;
      if (cookie.expiresAt <= Date.now()) this.#cookies.delete(key);
      else this.#cookies.set(key, cookie);
    }
  }

  // Cookies a request to `url` would carry (secure cookies only over https).
  matching(url) {
    const { hostname, pathname, protocol } = new URL(url);
    const now = Date.now();
    return [...this.#cookies.values()].filter((c) => c.expiresAt > now
      && (hostname === c.domain || hostname.endsWith(`.${c.domain}`))
      && (pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      && (!c.secure || protocol === 'https:'));
  }

  header(url) {
    return this.matching(url).map((c) => `${c.name}=${c.value}`).join('; ');
  }

  get(url, name) {
    return this.matching(url).find((c) => c.name === name);
  }

  // name -> value for `url`, or every cookie when no url is given.
  toObject(url) {
    const cookies = url ? this.matching(url) : [...this.#cookies.values()];
    return Object.fromEntries(cookies.map((c) => [c.name, c.value]));
  }

  all() {
    return [...this.#cookies.values()].map((c) => ({ ...c }));
  }

  clear() {
    this.#cookies.clear();
  }
}

// node:http rather than fetch: fetch forces `Sec-Fetch-Mode: cors`, and a proxy that redirects only browser
// navigations to the IdP (Sec-Fetch-Mode absent or `navigate`) would then never redirect this user agent.
// One connection per request, as a test of a multi-worker proxy wants. Headers come back as a fetch `Headers`.
function send(url, { method, headers, body, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const received = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2) received.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        resolve({ status: res.statusCode, headers: received, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`login-client: no answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => { clearTimeout(timer); reject(err); });
    req.end(body);
  });
}

// One request with the jar: sends matching cookies, stores Set-Cookie, never follows redirects.
export async function request(url, { jar = new CookieJar(), method = 'GET', headers = {}, body, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const sent = { accept: 'text/html,application/json;q=0.9,*/*;q=0.8', ...headers };
  const cookie = jar.header(url);
  if (cookie) sent.cookie = cookie;
  if (body !== undefined && body !== null) sent['content-length'] = Buffer.byteLength(body);
  const response = await send(url, { method, headers: sent, body, timeoutMs });
  jar.store(url, response.headers.getSetCookie());
  const location = response.headers.get('location');
  return {
    url,
    status: response.status,
    headers: response.headers,
    body: response.text,
    location: location ? new URL(location, url).href : undefined,
  };
}

// Follows redirects (GET after 301/302/303, method kept on 307/308) until a non-redirect answer, or until
// `stopAt(url)` says the next URL must not be requested (e.g. an RP callback nobody listens on).
// `rewrite(url)` may change a URL before it is requested (e.g. add login_hint to the authorization request).
// Every hop carries the Sec-Fetch-* headers of a browser navigation unless `headers` overrides them.
export async function follow(startUrl, {
  jar = new CookieJar(), method = 'GET', headers = {}, body, maxHops = DEFAULT_MAX_HOPS,
  timeoutMs = DEFAULT_TIMEOUT_MS, rewrite = (u) => u, stopAt = () => false,
} = {}) {
  const deadline = Date.now() + timeoutMs;
  const hops = [];
  let url = rewrite(startUrl);
  let next = { method, body };
  for (let i = 0; i <= maxHops; i += 1) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new Error(`login-client: timed out after ${hops.length} hops at ${url}`);
    const response = await request(url, { jar, method: next.method, headers: { ...NAVIGATION_HEADERS, ...headers }, body: next.body, timeoutMs: remaining });
    hops.push({ method: next.method, url, status: response.status, location: response.location });
    if (!(response.status >= 300 && response.status < 400 && response.location)) {
      return { response, hops, jar, stoppedAt: undefined };
    }
    if (![307, 308].includes(response.status)) next = { method: 'GET', body: undefined };
    url = rewrite(response.location);
    if (stopAt(url)) return { response, hops, jar, stoppedAt: url };
  }
  throw new Error(`login-client: more than ${maxHops} redirects from ${startUrl}`);
}

// Adds login_hint (the test IdP logs that user in) to the authorization request on its way to the IdP.
export function withLoginHint(loginHint, authorizationPath = '/auth') {
  return (url) => {
    const u = new URL(url);
    if (loginHint && u.pathname === authorizationPath && u.searchParams.has('client_id') && !u.searchParams.has('login_hint')) {
      u.searchParams.set('login_hint', loginHint);
      return u.href;
    }
    return url;
  };
}

// A full login through the proxy: start at a protected URL on the proxy, end where the proxy finally sends the
// user (normally the original page). Returns the final response, every hop, and the jar with the session cookie.
// `callbackError` is set when the IdP answered the proxy's callback with an error (e.g. access_denied).
export async function login(startUrl, { jar = new CookieJar(), loginHint, authorizationPath = '/auth', ...rest } = {}) {
  const result = await follow(startUrl, { jar, rewrite: withLoginHint(loginHint, authorizationPath), ...rest });
  const callbackHop = result.hops.find((hop) => {
    const u = new URL(hop.url);
    return u.searchParams.has('state') && (u.searchParams.has('code') || u.searchParams.has('error'));
  });
  const callbackUrl = callbackHop ? new URL(callbackHop.url) : undefined;
  return {
    ...result,
    cookies: jar.toObject(startUrl),
    callbackUrl: callbackUrl?.href,
    callbackError: callbackUrl?.searchParams.get('error') ?? undefined,
  };
}

// RP-initiated logout at the IdP shows a confirmation form (xsrf); this submits it as a user clicking "Yes".
export async function confirmIdpLogout(endSessionUrl, { jar = new CookieJar(), timeoutMs = DEFAULT_TIMEOUT_MS, ...rest } = {}) {
  const page = await request(endSessionUrl, { jar, timeoutMs });
  const action = /<form[^>]*action="([^"]+)"/.exec(page.body)?.[1];
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.body)?.[1];
  if (!action || !xsrf) throw new Error(`login-client: no logout form at ${endSessionUrl} (status ${page.status})`);
  return follow(new URL(action, endSessionUrl).href, {
    jar, method: 'POST', timeoutMs, ...rest,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
  });
}
