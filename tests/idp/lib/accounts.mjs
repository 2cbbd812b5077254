// Administrative actions on users and clients that go beyond what oidc-provider exposes: they read and edit the
// provider's storage directly, the way an IdP admin console would.

export class Accounts {
  constructor({ provider, store, users, counters }) {
    this.provider = provider;
    this.store = store;
    this.users = users;
    this.counters = counters;
  }

  // Clients live in storage (not in the static `clients` configuration) so they can be replaced at runtime, e.g.
  // once the proxy's ephemeral callback port is known.
  async registerClient(metadata) {
    await this.provider.Client.validate(metadata);
    this.store.set('Client', metadata.client_id, metadata);
    return this.client(metadata.client_id);
  }

  client(clientId) {
    const metadata = this.store.get('Client', clientId);
    if (!metadata) return undefined;
    const { client_secret: _secret, ...visible } = metadata;
    return visible;
  }

  grantIds(sub) {
    return [...this.store.all('Grant', (g) => g.accountId === sub)].map(({ id }) => id);
  }

  sessions(sub) {
    return [...this.store.all('Session', (s) => s.accountId === sub)];
  }

  describe(sub) {
    const user = this.users.describe(sub);
    if (!user) return undefined;
    return { user, grants: this.grantIds(sub), sessions: this.sessions(sub).length };
  }

  revokeGrants(sub) {
    const grantIds = this.grantIds(sub);
    for (const grantId of grantIds) this.store.revokeGrant(grantId);
    return grantIds.length;
  }

  endSessions(sub) {
    const sessions = this.sessions(sub);
    for (const { id } of sessions) this.store.delete('Session', id);
    return sessions.length;
  }

  // Deprovisioning: findAccount stops finding the user, and every grant (so every refresh and access token) and
  // IdP session of the user dies.
  deprovision(sub) {
    if (!this.users.setEnabled(sub, false)) return undefined;
    return { user: this.users.describe(sub), revokedGrants: this.revokeGrants(sub), endedSessions: this.endSessions(sub) };
  }

  enable(sub) {
    if (!this.users.setEnabled(sub, true)) return undefined;
    return { user: this.users.describe(sub) };
  }

  delete(sub) {
    if (!this.users.has(sub)) return undefined;
    const revokedGrants = this.revokeGrants(sub);
    const endedSessions = this.endSessions(sub);
    this.users.delete(sub);
    return { deleted: sub, revokedGrants, endedSessions };
  }

  // One logout token per (session, client with a backchannel_logout_uri); when the user has no IdP session left, one
  // sid-less token per client holding a grant of the user.
  async backchannelLogout(sub, { endSessions = false, revokeGrants = false } = {}) {
    const targets = [];
    for (const { payload } of this.sessions(sub)) {
      for (const [clientId, authorization] of Object.entries(payload.authorizations ?? {})) {
        targets.push({ clientId, sid: authorization.sid });
      }
    }
    if (targets.length === 0) {
      const clientIds = new Set([...this.store.all('Grant', (g) => g.accountId === sub)].map(({ payload }) => payload.clientId));
      for (const clientId of clientIds) targets.push({ clientId, sid: undefined });
    }

    const results = await Promise.all(targets.map(async ({ clientId, sid }) => {
      const client = await this.provider.Client.find(clientId);
      if (!client?.backchannelLogoutUri) return { clientId, sid, ok: false, error: 'client has no backchannel_logout_uri' };
      this.counters.backchannelLogout.sent += 1;
      try {
        await client.backchannelLogout(sub, sid);
        this.counters.backchannelLogout.ok += 1;
        return { clientId, sid, ok: true };
      } catch (err) {
        this.counters.backchannelLogout.failed += 1;
        return { clientId, sid, ok: false, error: err.message };
      }
    }));

    const outcome = {
      sent: results.filter((r) => r.error !== 'client has no backchannel_logout_uri').length,
      ok: results.filter((r) => r.ok).length,
      results,
    };
    if (revokeGrants) outcome.revokedGrants = this.revokeGrants(sub);
    if (endSessions) outcome.endedSessions = this.endSessions(sub);
    return outcome;
  }
}
