// The control API: JSON over HTTP on a separate loopback port. Routes are listed in tests/idp/README.md.

import { FaultSpecError } from './faults.mjs';

const MAX_BODY = 1 << 20;

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const isLoopback = (address) => address === '::1' || /^(::ffff:)?127\./.test(address ?? '');

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
}

const found = (value, what) => {
  if (value === undefined) throw new HttpError(404, `no such ${what}`);
  return value;
};

const SETTING_CHECKS = {
  accessTokenTTL: (v) => Number.isInteger(v) && v >= 1,
  refreshTokenTTL: (v) => Number.isInteger(v) && v >= 1,
  refreshWithoutOfflineAccess: (v) => typeof v === 'boolean',
  defaultUser: (v) => typeof v === 'string' && v !== '',
  loginForm: (v) => typeof v === 'boolean',
};

function updateSettings(settings, patch) {
  for (const [key, value] of Object.entries(patch)) {
    const check = SETTING_CHECKS[key];
    if (!check) throw new HttpError(400, `unknown setting "${key}"`);
    if (!check(value)) throw new HttpError(400, `invalid value for "${key}"`);
  }
  Object.assign(settings, patch);
  return { ...settings };
}

export function controlHandler({ accounts, users, settings, counters, faults }) {
  const withHung = (snapshot) => ({ ...snapshot, faults: { ...snapshot.faults, hungNow: faults.hungCount() } });
  const routes = [
    ['GET', /^\/health$/, () => ({ ok: true })],
    ['GET', /^\/counters$/, () => withHung(counters.snapshot())],
    ['POST', /^\/counters\/reset$/, () => { counters.reset(); return withHung(counters.snapshot()); }],
    ['GET', /^\/timeline$/, () => counters.timeline],
    ['GET', /^\/settings$/, () => ({ ...settings })],
    ['POST', /^\/settings$/, (_m, body) => updateSettings(settings, body)],
    ['POST', /^\/default-user$/, (_m, body) => updateSettings(settings, { defaultUser: body.sub })],
    ['GET', /^\/users$/, () => users.list()],
    ['POST', /^\/users$/, (_m, body) => { try { return users.put(body); } catch (err) { throw new HttpError(400, err.message); } }],
    ['GET', /^\/users\/([^/]+)$/, ([sub]) => found(accounts.describe(sub), 'user')],
    ['DELETE', /^\/users\/([^/]+)$/, ([sub]) => found(accounts.delete(sub), 'user')],
    ['PATCH', /^\/users\/([^/]+)$/, ([sub], body) => { found(users.setClaims(sub, body) || undefined, 'user'); return users.describe(sub); }],
    ['POST', /^\/users\/([^/]+)\/deprovision$/, ([sub]) => found(accounts.deprovision(sub), 'user')],
    ['POST', /^\/users\/([^/]+)\/enable$/, ([sub]) => found(accounts.enable(sub), 'user')],
    ['POST', /^\/users\/([^/]+)\/revoke-grants$/, ([sub]) => { found(users.describe(sub), 'user'); return { revokedGrants: accounts.revokeGrants(sub) }; }],
    ['PUT', /^\/users\/([^/]+)\/groups$/, ([sub], body) => {
      if (!Array.isArray(body.groups) || !body.groups.every((g) => typeof g === 'string')) throw new HttpError(400, '"groups" must be an array of strings');
      found(users.setGroups(sub, body.groups) || undefined, 'user');
      return users.describe(sub);
    }],
    ['POST', /^\/users\/([^/]+)\/backchannel-logout$/, ([sub], body) => {
      found(users.describe(sub), 'user');
      return accounts.backchannelLogout(sub, { endSessions: body.endSessions === true, revokeGrants: body.revokeGrants === true });
    }],
    ['GET', /^\/users\/([^/]+)\/refresh-tokens\/([^/]+)$/, ([sub, clientId]) => counters.issuedRefreshTokens(clientId, sub)],
    ['GET', /^\/clients\/([^/]+)$/, ([id]) => found(accounts.client(id), 'client')],
    ['POST', /^\/clients$/, async (_m, body) => {
      try {
        return await accounts.registerClient(body);
      } catch (err) {
        throw new HttpError(400, err.error_description ?? err.message);
      }
    }],
    ['GET', /^\/faults$/, () => faults.list()],
    ['POST', /^\/faults$/, (_m, body) => faults.add(body)],
    ['DELETE', /^\/faults$/, () => ({ removed: faults.clear(), hung: faults.hungCount() })],
    ['DELETE', /^\/faults\/(\d+)$/, ([id]) => found(faults.remove(Number(id)) ? { removed: 1 } : undefined, 'fault')],
  ];

  return async function handle(req, res) {
    const reply = (status, value) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(`${JSON.stringify(value)}\n`);
    };
    try {
      if (!isLoopback(req.socket.remoteAddress)) throw new HttpError(403, 'loopback only');
      const { pathname } = new URL(req.url, 'http://control');
      let pathMatched = false;
      for (const [method, pattern, action] of routes) {
        const match = pattern.exec(pathname);
        if (!match) continue;
        pathMatched = true;
        if (method !== req.method) continue;
        const body = req.method === 'GET' || req.method === 'DELETE' ? {} : await readJson(req);
        const captures = match.slice(1).map(decodeURIComponent);
        reply(200, await action(captures, body));
        return;
      }
      throw new HttpError(pathMatched ? 405 : 404, pathMatched ? 'method not allowed' : 'no such control route');
    } catch (err) {
      if (err instanceof FaultSpecError) reply(400, { error: err.message });
      else if (err instanceof HttpError) reply(err.status, { error: err.message });
      else {
        console.error('[idp control]', err);
        reply(500, { error: err.message });
      }
    }
  };
}
