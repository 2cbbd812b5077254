// The test IdP: oidc-provider on 127.0.0.1 behind a fault-injecting front, plus a loopback-only control server.

import http from 'node:http';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

import { Store } from './store.mjs';
import { UserDirectory, DEFAULT_USERS } from './users.mjs';
import { Counters } from './counters.mjs';
import { FaultInjector } from './faults.mjs';
import { interactionHandler } from './interaction.mjs';
import { controlHandler } from './control.mjs';
import { Accounts } from './accounts.mjs';

const HOST = '127.0.0.1';

export const DEFAULTS = {
  port: 0,
  controlPort: 0,
  clientId: 'vigil',
  clientSecret: 'vigil-test-secret',
  clientAuth: 'client_secret_basic',
  redirectUris: [],
  postLogoutRedirectUris: [],
  backchannelLogoutUri: undefined,
  accessTokenTTL: 3600,
  refreshTokenTTL: 14 * 24 * 3600,
  refreshWithoutOfflineAccess: false,
  defaultUser: 'alice',
  loginForm: false,
  users: DEFAULT_USERS,
  keysFile: new URL('../keys/test-signing-keys.jwks.json', import.meta.url),
  verbose: false,
};

// Used when none is given, so the client still validates; tests that play the RP never need it to listen.
const PLACEHOLDER_REDIRECT_URI = 'http://127.0.0.1/vigil-callback-not-configured';

const listen = (server, port) => new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, HOST, () => {
    server.off('error', reject);
    resolve(server.address().port);
  });
});

function trackSockets(server) {
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return () => { for (const socket of sockets) socket.destroy(); };
}

export function clientMetadata(options) {
  const redirectUris = options.redirectUris.length ? options.redirectUris : [PLACEHOLDER_REDIRECT_URI];
  const metadata = {
    client_id: options.clientId,
    client_secret: options.clientSecret,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: options.postLogoutRedirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: options.clientAuth,
  };
  if (options.backchannelLogoutUri) {
    metadata.backchannel_logout_uri = options.backchannelLogoutUri;
    metadata.backchannel_logout_session_required = true;
  }
  return metadata;
}

function providerConfiguration({ store, users, settings, jwks }) {
  return {
    adapter: store.adapterFactory(),
    jwks,
    cookies: { keys: ['vigil-test-idp-cookie-key'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'groups'],
      groups: ['groups'],
    },
    async findAccount(_ctx, sub) {
      const claims = users.active(sub);
      if (!claims) return undefined;
      return { accountId: sub, claims: async () => structuredClone(claims) };
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      introspection: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    // Always rotate, so presenting a rotated-out refresh token is detected as reuse (and revokes the grant).
    rotateRefreshToken: true,
    async issueRefreshToken(_ctx, client, code) {
      return client.grantTypeAllowed('refresh_token')
        && (settings.refreshWithoutOfflineAccess || code.scopes.has('offline_access'));
    },
    ttl: {
      AccessToken: () => settings.accessTokenTTL,
      RefreshToken: () => settings.refreshTokenTTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // oidc-provider's SSRF guard refuses loopback targets; back-channel logout goes to the proxy on 127.0.0.1.
    fetch: (url, options) => {
      const { dispatcher, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
    clientBasedCORS: () => false,
  };
}

function routeCounters(counters) {
  return async function count(ctx, next) {
    const at = performance.timeOrigin + performance.now();
    await next();
    const route = ctx.oidc?.route;
    if (!route) return;
    if (route === 'token' || route === 'userinfo') {
      counters.onTimeline(route, { at, grantType: ctx.oidc.params?.grant_type, status: ctx.status });
    }
    const error = typeof ctx.body === 'object' && ctx.body !== null && !Buffer.isBuffer(ctx.body) ? ctx.body.error : undefined;
    if (route === 'token') {
      const params = ctx.oidc.params ?? {};
      counters.onToken({ grantType: params.grant_type, refreshToken: params.refresh_token, status: ctx.status, error });
      const issued = ctx.status === 200 && typeof ctx.body === 'object' && ctx.body !== null ? ctx.body.refresh_token : undefined;
      if (typeof issued === 'string') {
        counters.onRefreshIssued({ clientId: ctx.oidc.client?.clientId, sub: ctx.oidc.entities?.Grant?.accountId, refreshToken: issued });
      }
    } else {
      counters.onRoute(route, ctx.status, error);
    }
  };
}

export async function startIdp(overrides = {}) {
  const options = { ...DEFAULTS, ...overrides };
  const settings = {
    accessTokenTTL: options.accessTokenTTL,
    refreshTokenTTL: options.refreshTokenTTL,
    refreshWithoutOfflineAccess: options.refreshWithoutOfflineAccess,
    defaultUser: options.defaultUser,
    loginForm: options.loginForm,
  };
  const jwks = JSON.parse(readFileSync(options.keysFile, 'utf8'));
  const store = new Store();
  const users = new UserDirectory(options.users);
  const counters = new Counters();
  const faults = new FaultInjector((kind) => counters.onFault(kind));
  const log = options.verbose ? (...args) => console.error('[idp]', ...args) : () => {};

  const front = http.createServer();
  const port = await listen(front, options.port);
  const issuer = `http://${HOST}:${port}`;

  const provider = new Provider(issuer, providerConfiguration({ store, users, settings, jwks }));
  provider.use(routeCounters(counters));
  provider.on('server_error', (_ctx, err) => console.error('[idp] server_error', err));
  provider.on('backchannel.error', (_ctx, err) => log('backchannel.error', err.message));

  const accounts = new Accounts({ provider, store, users, counters });
  await accounts.registerClient(clientMetadata(options));

  const interaction = interactionHandler({ provider, users, settings });
  const providerCallback = provider.callback();
  front.on('request', async (req, res) => {
    try {
      log(req.method, req.url);
      if (await faults.intercept(req, res)) return;
      if (req.url.startsWith('/interaction/')) await interaction(req, res);
      else providerCallback(req, res);
    } catch (err) {
      log('front error', err);
      if (!res.headersSent) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: err.error ?? 'invalid_request', error_description: err.message }));
      }
    }
  });
  const dropFrontSockets = trackSockets(front);

  const control = http.createServer(controlHandler({ accounts, users, settings, counters, faults, store }));
  const controlPort = await listen(control, options.controlPort);
  const dropControlSockets = trackSockets(control);

  async function close() {
    faults.releaseHung();
    const closed = Promise.all([front, control].map((s) => new Promise((resolve) => { s.close(() => resolve()); })));
    dropFrontSockets();
    dropControlSockets();
    await closed;
    store.close();
  }

  return {
    issuer,
    port,
    control: `http://${HOST}:${controlPort}`,
    clientId: options.clientId,
    provider,
    accounts,
    close,
  };
}
