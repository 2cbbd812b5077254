// The IdP's user directory. A disabled (deprovisioned) or deleted user is invisible to oidc-provider's findAccount,
// which makes /me answer 401 invalid_token and the login interaction answer access_denied.

export const DEFAULT_USERS = [
  { sub: 'alice', email: 'alice@example.test', email_verified: true, name: 'Alice Admin', groups: ['admins', 'staff'] },
  { sub: 'bob', email: 'bob@example.test', email_verified: true, name: 'Bob Staff', groups: ['staff'] },
  { sub: 'carol', email: 'carol@example.test', email_verified: false, name: 'Carol Guest', groups: [] },
];

const CLAIM_KEYS = ['email', 'email_verified', 'name', 'preferred_username', 'groups'];

export class UserDirectory {
  #users = new Map(); // sub -> { claims, enabled }

  constructor(users = DEFAULT_USERS) {
    for (const user of users) this.put(user);
  }

  put(user) {
    if (typeof user?.sub !== 'string' || user.sub === '') throw new TypeError('a user needs a non-empty string "sub"');
    const claims = { sub: user.sub, preferred_username: user.sub };
    for (const key of CLAIM_KEYS) if (key in user) claims[key] = structuredClone(user[key]);
    if (!Array.isArray(claims.groups)) claims.groups = [];
    const enabled = user.enabled !== false;
    this.#users.set(user.sub, { claims, enabled });
    return this.describe(user.sub);
  }

  // Only enabled users exist as far as the protocol is concerned.
  active(sub) {
    const user = this.#users.get(sub);
    return user?.enabled ? user.claims : undefined;
  }

  has(sub) {
    return this.#users.has(sub);
  }

  setEnabled(sub, enabled) {
    const user = this.#users.get(sub);
    if (!user) return false;
    user.enabled = enabled;
    return true;
  }

  setGroups(sub, groups) {
    const user = this.#users.get(sub);
    if (!user) return false;
    user.claims.groups = [...groups];
    return true;
  }

  setClaims(sub, claims) {
    const user = this.#users.get(sub);
    if (!user) return false;
    for (const key of CLAIM_KEYS) if (key in claims) user.claims[key] = structuredClone(claims[key]);
    return true;
  }

  delete(sub) {
    return this.#users.delete(sub);
  }

  describe(sub) {
    const user = this.#users.get(sub);
    return user ? { ...structuredClone(user.claims), enabled: user.enabled } : undefined;
  }

  list() {
    return [...this.#users.keys()].map((sub) => this.describe(sub));
  }
}
