#!/usr/bin/env node
// Starts the test IdP. Prints one JSON line on stdout when ready; everything else goes to stderr.
// Usage and the control API: tests/idp/README.md.

import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';

// oidc-provider prints notices with console.info; stdout is reserved for the ready line.
console.info = console.error;
console.log = console.error;

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'control-port': { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'client-auth': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'post-logout-redirect-uri': { type: 'string', multiple: true },
    'backchannel-logout-uri': { type: 'string' },
    'access-token-ttl': { type: 'string' },
    'refresh-token-ttl': { type: 'string' },
    'refresh-without-offline-access': { type: 'boolean' },
    'default-user': { type: 'string' },
    'login-form': { type: 'boolean' },
    users: { type: 'string' },
    keys: { type: 'string' },
    verbose: { type: 'boolean' },
  },
  strict: true,
});

const env = process.env;
const list = (s) => (s ?? '').split(/[\s,]+/).filter(Boolean);
const flag = (s) => s === '1' || s === 'true';
function integer(name, text) {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`error: --${name} must be a non-negative integer, got "${text}"`);
    process.exit(2);
  }
  return n;
}

const options = Object.fromEntries(Object.entries({
  port: integer('port', values.port ?? env.IDP_PORT),
  controlPort: integer('control-port', values['control-port'] ?? env.IDP_CONTROL_PORT),
  clientId: values['client-id'] ?? env.IDP_CLIENT_ID,
  clientSecret: values['client-secret'] ?? env.IDP_CLIENT_SECRET,
  clientAuth: values['client-auth'] ?? env.IDP_CLIENT_AUTH,
  redirectUris: values['redirect-uri'] ?? list(env.IDP_REDIRECT_URIS),
  postLogoutRedirectUris: values['post-logout-redirect-uri'] ?? list(env.IDP_POST_LOGOUT_REDIRECT_URIS),
  backchannelLogoutUri: values['backchannel-logout-uri'] ?? env.IDP_BACKCHANNEL_LOGOUT_URI,
  accessTokenTTL: integer('access-token-ttl', values['access-token-ttl'] ?? env.IDP_ACCESS_TOKEN_TTL),
  refreshTokenTTL: integer('refresh-token-ttl', values['refresh-token-ttl'] ?? env.IDP_REFRESH_TOKEN_TTL),
  refreshWithoutOfflineAccess: values['refresh-without-offline-access'] ?? flag(env.IDP_REFRESH_WITHOUT_OFFLINE_ACCESS),
  defaultUser: values['default-user'] ?? env.IDP_DEFAULT_USER,
  loginForm: values['login-form'] ?? flag(env.IDP_LOGIN_FORM),
  users: (values.users ?? env.IDP_USERS) ? JSON.parse(readFileSync(values.users ?? env.IDP_USERS, 'utf8')) : undefined,
  keysFile: values.keys ?? env.IDP_KEYS,
  verbose: values.verbose ?? flag(env.IDP_VERBOSE),
}).filter(([, v]) => v !== undefined && v !== ''));

const { startIdp } = await import('./lib/idp.mjs');
let idp;
try {
  idp = await startIdp(options);
} catch (err) {
  console.error(`error: the test IdP did not start: ${err.error_description ?? err.message}`);
  process.exit(1);
}

let stopping = false;
async function stop(signal) {
  if (stopping) process.exit(0);
  stopping = true;
  console.error(`[idp] ${signal}: stopping`);
  // A server that does not close in time must not keep the process (and a test harness) waiting.
  setTimeout(() => process.exit(0), 2000).unref();
  await idp.close();
  process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

process.stdout.write(`${JSON.stringify({
  issuer: idp.issuer,
  port: idp.port,
  control: idp.control,
  client_id: idp.clientId,
  pid: process.pid,
})}\n`);
