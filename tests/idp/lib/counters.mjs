// What the IdP saw, for assertions such as "no refresh token was ever presented twice" (which reuse detection would
// punish by revoking the grant). Only requests that reached oidc-provider are counted here; requests swallowed by an
// injected fault are counted under `faults`.

import { createHash } from 'node:crypto';

const TIMELINE_MAX = 10_000;

const fingerprint = (token) => createHash('sha256').update(token).digest('base64url');

const outcome = () => ({ calls: 0, ok: 0, errors: {} });

function record(bucket, status, error) {
  bucket.calls += 1;
  if (status >= 200 && status < 300) bucket.ok += 1;
  else {
    const code = error ?? `http_${status}`;
    bucket.errors[code] = (bucket.errors[code] ?? 0) + 1;
  }
}

export class Counters {
  constructor() {
    this.reset();
  }

  reset() {
    this.token = { ...outcome(), byGrantType: {} };
    this.userinfo = outcome();
    this.revocation = outcome();
    this.introspection = outcome();
    this.authorization = { calls: 0 };
    this.endSession = { calls: 0 };
    this.backchannelLogout = { sent: 0, ok: 0, failed: 0 };
    this.faults = { fired: 0, byKind: {} };
    this.refreshSeen = new Map(); // fingerprint -> times presented
    this.refreshPresented = 0;
    this.issuedRefresh = new Map(); // `${clientId} ${sub}` -> { count, latest }
    this.timeline = []; // token and userinfo calls in arrival order, for tests that check their spacing
  }

  // `at`: epoch milliseconds (sub-millisecond precision) when the request reached oidc-provider.
  onTimeline(route, { at, grantType, status }) {
    if (this.timeline.length >= TIMELINE_MAX) this.timeline.shift();
    this.timeline.push(grantType ? { route, at, grantType, status } : { route, at, status });
  }

  // The refresh tokens the token endpoint handed out, so an end-to-end test can replay the one a proxy holds (e.g.
  // after logout, to prove it was revoked). Test IdP only: a real IdP never shows a token to a third party.
  onRefreshIssued({ clientId, sub, refreshToken }) {
    const key = `${clientId} ${sub}`;
    const entry = this.issuedRefresh.get(key) ?? { count: 0, latest: undefined };
    entry.count += 1;
    entry.latest = refreshToken;
    this.issuedRefresh.set(key, entry);
  }

  issuedRefreshTokens(clientId, sub) {
    const entry = this.issuedRefresh.get(`${clientId} ${sub}`);
    return { clientId, sub, issued: entry?.count ?? 0, latest: entry?.latest ?? null };
  }

  onToken({ grantType, refreshToken, status, error }) {
    record(this.token, status, error);
    const type = grantType ?? 'unknown';
    this.token.byGrantType[type] ??= outcome();
    record(this.token.byGrantType[type], status, error);
    if (type === 'refresh_token' && typeof refreshToken === 'string') {
      const key = fingerprint(refreshToken);
      this.refreshSeen.set(key, (this.refreshSeen.get(key) ?? 0) + 1);
      this.refreshPresented += 1;
    }
  }

  onRoute(route, status, error) {
    if (route === 'userinfo') record(this.userinfo, status, error);
    else if (route === 'revocation') record(this.revocation, status, error);
    else if (route === 'introspection') record(this.introspection, status, error);
    else if (route === 'authorization' || route === 'resume') this.authorization.calls += 1;
    else if (route === 'end_session' || route === 'end_session_confirm') this.endSession.calls += 1;
  }

  onFault(kind) {
    this.faults.fired += 1;
    this.faults.byKind[kind] = (this.faults.byKind[kind] ?? 0) + 1;
  }

  snapshot() {
    let maxPresentations = 0;
    let reusedTokens = 0;
    for (const times of this.refreshSeen.values()) {
      maxPresentations = Math.max(maxPresentations, times);
      if (times > 1) reusedTokens += 1;
    }
    return structuredClone({
      token: this.token,
      refreshTokens: {
        presented: this.refreshPresented,
        distinct: this.refreshSeen.size,
        reused: reusedTokens > 0,
        reusedTokens,
        maxPresentations,
      },
      userinfo: this.userinfo,
      revocation: this.revocation,
      introspection: this.introspection,
      authorization: this.authorization,
      endSession: this.endSession,
      backchannelLogout: this.backchannelLogout,
      faults: this.faults,
    });
  }
}
