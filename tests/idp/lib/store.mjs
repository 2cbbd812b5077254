// In-memory storage for oidc-provider models. Unlike the bundled MemoryAdapter (an LRU capped at 1000 entries),
// nothing is evicted before it expires, so a load test can never lose a grant or a rotated-out refresh token that
// reuse detection depends on. The store is also enumerable, which deprovisioning and back-channel logout need
// (find every grant and session of a user).

const nowSeconds = () => Math.floor(Date.now() / 1000);

export class Store {
  #entries = new Map(); // `${model}:${id}` -> { model, id, payload, expiresAt (ms) | Infinity }
  #sessionByUid = new Map();
  #sweeper;

  constructor() {
    this.#sweeper = setInterval(() => this.#sweep(), 10_000);
    this.#sweeper.unref();
  }

  close() {
    clearInterval(this.#sweeper);
  }

  adapterFactory() {
    return (model) => new ModelAdapter(this, model);
  }

  get(model, id) {
    const entry = this.#entries.get(`${model}:${id}`);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.delete(model, id);
      return undefined;
    }
    return entry.payload;
  }

  set(model, id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    this.#entries.set(`${model}:${id}`, { model, id, payload: structuredClone(payload), expiresAt });
    if (model === 'Session' && payload.uid) this.#sessionByUid.set(payload.uid, id);
  }

  delete(model, id) {
    const key = `${model}:${id}`;
    const entry = this.#entries.get(key);
    this.#entries.delete(key);
    if (entry?.model === 'Session' && entry.payload.uid) this.#sessionByUid.delete(entry.payload.uid);
  }

  sessionIdByUid(uid) {
    return this.#sessionByUid.get(uid);
  }

  // Live payloads of one model, optionally filtered.
  *all(model, predicate = () => true) {
    const now = Date.now();
    for (const entry of this.#entries.values()) {
      if (entry.model === model && entry.expiresAt > now && predicate(entry.payload)) {
        yield { id: entry.id, payload: entry.payload };
      }
    }
  }

  // Every token of the grant (access, refresh, code, ...), then the grant itself.
  revokeGrant(grantId) {
    let removed = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.payload.grantId === grantId && entry.model !== 'Session') {
        this.#entries.delete(key);
        removed += 1;
      }
    }
    this.delete('Grant', grantId);
    return removed;
  }

  revokeTokensOfGrant(model, grantId) {
    for (const [key, entry] of this.#entries) {
      if (entry.model === model && entry.payload.grantId === grantId) {
        this.#entries.delete(key);
      }
    }
  }

  size() {
    return this.#entries.size;
  }

  #sweep() {
    const now = Date.now();
    for (const entry of [...this.#entries.values()]) {
      if (entry.expiresAt <= now) this.delete(entry.model, entry.id);
    }
  }
}

class ModelAdapter {
  constructor(store, model) {
    this.store = store;
    this.model = model;
  }

  async upsert(id, payload, expiresIn) {
    this.store.set(this.model, id, payload, expiresIn);
  }

  async find(id) {
    const payload = this.store.get(this.model, id);
    return payload === undefined ? undefined : structuredClone(payload);
  }

  async findByUid(uid) {
    const id = this.store.sessionIdByUid(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    for (const { payload } of this.store.all(this.model, (p) => p.userCode === userCode)) {
      return structuredClone(payload);
    }
    return undefined;
  }

  async consume(id) {
    const payload = this.store.get(this.model, id);
    if (payload) payload.consumed = nowSeconds();
  }

  async destroy(id) {
    this.store.delete(this.model, id);
  }

  async revokeByGrantId(grantId) {
    this.store.revokeTokensOfGrant(this.model, grantId);
  }
}
