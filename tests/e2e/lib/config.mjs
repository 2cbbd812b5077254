// The plugin configuration the end-to-end tests and `make demo` give to dist/vigil.wasm: vigil's own login against
// the test IdP, with a fresh Ed25519 key signing the downstream tokens. Keys follow the README's config reference.

import { generateKeyPairSync } from 'node:crypto';

export const CALLBACK_PATH = '/oauth2/callback';
export const LOGOUT_PATH = '/oauth2/logout';
export const BACKCHANNEL_PATH = '/oauth2/backchannel-logout';
export const COOKIE_NAME = 'vigil_session';
export const CLIENT_SECRET_ENV = 'VIGIL_CLIENT_SECRET';

export const IDENTITY_HEADERS = {
  'x-user-sub': 'sub',
  'x-user-email': 'email',
  'x-user-groups': 'groups',
};

// When vigil last validated the session and when the next revalidation is due (Unix seconds).
export const SESSION_HEADERS = {
  validated_at: 'x-vigil-validated-at',
  revalidate_at: 'x-vigil-revalidate-at',
};

export function signingKey() {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { kid: 'e2e', alg: 'EdDSA', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) };
}

// `proxyUrl` is where host-sim listens (http://127.0.0.1:PORT), `issuer` the IdP's issuer. `overrides` are merged
// into the top level; `login` and `idp` overrides are merged into their sections.
export function vigilConfig({ proxyUrl, issuer, clientId, scopes, overrides = {} }) {
  const { login = {}, idp = {}, ...top } = overrides;
  return {
    revalidate_interval: '1s',
    revalidate_timeout: '1s',
    on_failure: 'allow',
    idp: {
      upstream: 'idp',
      issuer,
      token_endpoint: `${issuer}/token`,
      userinfo_endpoint: `${issuer}/me`,
      client_id: clientId,
      client_secret_env: CLIENT_SECRET_ENV,
      ...idp,
    },
    downstream: {
      issuer: proxyUrl,
      audience: 'vigil-e2e',
      cookie_name: COOKIE_NAME,
    },
    identity_headers: IDENTITY_HEADERS,
    session_headers: SESSION_HEADERS,
    login: {
      redirect_uri: `${proxyUrl}${CALLBACK_PATH}`,
      scopes: scopes ?? ['openid', 'profile', 'email', 'groups', 'offline_access'],
      logout_path: LOGOUT_PATH,
      post_logout_redirect_uri: `${proxyUrl}/`,
      backchannel_logout_path: BACKCHANNEL_PATH,
      signing_key: signingKey(),
      cookie_secure: false,
      token_claims: ['email'],
      ...login,
    },
    ...top,
  };
}

// The client the IdP must know for one proxy.
export function clientFor({ proxyUrl, clientId, clientSecret }) {
  return {
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [`${proxyUrl}${CALLBACK_PATH}`],
    post_logout_redirect_uris: [`${proxyUrl}/`],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    backchannel_logout_uri: `${proxyUrl}${BACKCHANNEL_PATH}`,
    backchannel_logout_session_required: true,
  };
}
