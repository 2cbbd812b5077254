// A minimal relying party for tests that talk to the IdP directly: code + PKCE login, code exchange, refresh,
// userinfo, revocation. Every call is bounded by a timeout.

import { createHash, randomBytes } from 'node:crypto';

import { follow, CookieJar } from '../login-client.mjs';

const TIMEOUT_MS = 5000;
const random = () => randomBytes(16).toString('base64url');

export class TestRp {
  constructor({ issuer, clientId = 'vigil', clientSecret = 'vigil-test-secret', redirectUri }) {
    this.issuer = issuer;
    this.clientId = clientId;
    this.clientSecret = clientSecret;
    this.redirectUri = redirectUri;
  }

  async discover() {
    const response = await fetch(`${this.issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    this.metadata = await response.json();
    return this.metadata;
  }

  // Follows the authorization request through the scripted interaction up to the redirect to our callback.
  async authorize({ loginHint, scope = 'openid email profile groups offline_access', prompt = 'consent', jar = new CookieJar() } = {}) {
    const verifier = randomBytes(32).toString('base64url');
    const state = random();
    const nonce = random();
    const url = new URL(this.metadata.authorization_endpoint);
    const params = {
      client_id: this.clientId, redirect_uri: this.redirectUri, response_type: 'code', scope, state, nonce,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    };
    if (loginHint) params.login_hint = loginHint;
    if (prompt) params.prompt = prompt;
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    const result = await follow(url.href, { jar, stopAt: (u) => u.startsWith(this.redirectUri) });
    if (!result.stoppedAt) throw new Error(`authorization did not reach the callback: ${result.response.status} ${result.response.body.slice(0, 200)}`);
    const callback = new URL(result.stoppedAt);
    return {
      code: callback.searchParams.get('code'),
      error: callback.searchParams.get('error'),
      state: callback.searchParams.get('state'),
      iss: callback.searchParams.get('iss'),
      expectedState: state,
      verifier,
      hops: result.hops,
      jar,
    };
  }

  async #tokenRequest(params) {
    const response = await fetch(this.metadata.token_endpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${this.clientId}:${this.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined)),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    return { status: response.status, headers: response.headers, json: await response.json().catch(() => undefined) };
  }

  exchange(code, verifier) {
    return this.#tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: this.redirectUri, code_verifier: verifier });
  }

  refresh(refreshToken) {
    return this.#tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  async login(options) {
    const authorization = await this.authorize(options);
    if (!authorization.code) throw new Error(`login failed: ${authorization.error}`);
    const tokens = await this.exchange(authorization.code, authorization.verifier);
    if (tokens.status !== 200) throw new Error(`code exchange failed: ${tokens.status} ${JSON.stringify(tokens.json)}`);
    return tokens.json;
  }

  async userinfo(accessToken, { timeoutMs = TIMEOUT_MS } = {}) {
    const response = await fetch(this.metadata.userinfo_endpoint, {
      headers: { authorization: `Bearer ${accessToken}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: response.status, headers: response.headers, json: await response.json().catch(() => undefined) };
  }

  async revoke(token, hint) {
    const response = await fetch(this.metadata.revocation_endpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${this.clientId}:${this.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams(hint ? { token, token_type_hint: hint } : { token }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    return { status: response.status };
  }
}

export async function control(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const json = await response.json();
  if (!response.ok) {
    const err = new Error(`control ${method} ${path}: ${response.status} ${json.error}`);
    err.status = response.status;
    throw err;
  }
  return json;
}
