// Fault injection in front of oidc-provider: the non-fatal failure classes a proxy must survive (5xx and other
// statuses, a server that never answers, a slow server, a connection reset), each limited to a path pattern and a
// number of requests. `delay` holds the request before oidc-provider sees it; `slow-answer` lets oidc-provider
// handle it at once (a refresh token is rotated) and holds only the answer: the client may give up on a request
// that took effect.

const KINDS = new Set(['status', 'hang', 'delay', 'slow-answer', 'reset']);

function globToRegExp(pattern) {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

export class FaultSpecError extends Error {}

function validate(spec) {
  if (typeof spec !== 'object' || spec === null) throw new FaultSpecError('a fault is a JSON object');
  const { path, kind } = spec;
  if (typeof path !== 'string' || !path.startsWith('/')) throw new FaultSpecError('"path" must be a pattern starting with "/" ("*" matches anything)');
  if (!KINDS.has(kind)) throw new FaultSpecError(`"kind" must be one of ${[...KINDS].join(', ')}`);
  const count = spec.count ?? 1;
  if (count !== 'forever' && !(Number.isInteger(count) && count >= 1)) throw new FaultSpecError('"count" must be an integer >= 1 or "forever"');
  if (spec.method !== undefined && typeof spec.method !== 'string') throw new FaultSpecError('"method" must be a string');
  const fault = { path, kind, count, method: spec.method?.toUpperCase(), remaining: count === 'forever' ? Infinity : count };
  if (kind === 'status') {
    if (!(Number.isInteger(spec.status) && spec.status >= 100 && spec.status <= 599)) throw new FaultSpecError('"status" must be an HTTP status code');
    fault.status = spec.status;
    fault.body = spec.body ?? '';
    fault.headers = spec.headers ?? {};
    if (typeof fault.headers !== 'object' || fault.headers === null) throw new FaultSpecError('"headers" must be an object');
  }
  if (kind === 'delay' || kind === 'slow-answer') {
    if (!(Number.isInteger(spec.ms) && spec.ms >= 0)) throw new FaultSpecError('"ms" must be an integer >= 0');
    fault.ms = spec.ms;
  }
  return fault;
}

export class FaultInjector {
  #faults = [];
  #nextId = 1;
  #hung = new Set();
  #onFire;

  constructor(onFire = () => {}) {
    this.#onFire = onFire;
  }

  add(spec) {
    const fault = validate(spec);
    fault.id = this.#nextId++;
    fault.fired = 0;
    fault.matcher = globToRegExp(fault.path);
    this.#faults.push(fault);
    return this.#describe(fault);
  }

  list() {
    return this.#faults.map((fault) => this.#describe(fault));
  }

  remove(id) {
    const before = this.#faults.length;
    this.#faults = this.#faults.filter((fault) => fault.id !== id);
    return this.#faults.length !== before;
  }

  // Requests already hanging stay hung (their clients' timeouts are what is under test).
  clear() {
    const removed = this.#faults.length;
    this.#faults = [];
    return removed;
  }

  hungCount() {
    return this.#hung.size;
  }

  // On shutdown only.
  releaseHung() {
    for (const socket of this.#hung) socket.destroy();
    this.#hung.clear();
  }

  // Resolves to true when the fault answered (or swallowed) the request; false to let the provider handle it.
  async intercept(req, res) {
    const pathname = new URL(req.url, 'http://placeholder').pathname;
    const fault = this.#faults.find((f) => f.remaining > 0 && f.matcher.test(pathname) && (!f.method || f.method === req.method));
    if (!fault) return false;
    fault.remaining -= 1;
    fault.fired += 1;
    if (fault.remaining === 0) this.remove(fault.id);
    this.#onFire(fault.kind);

    switch (fault.kind) {
      case 'delay':
        await new Promise((resolve) => { setTimeout(resolve, fault.ms); });
        return false;
      case 'slow-answer': {
        // Queue what oidc-provider writes and replay it `ms` after the request arrived.
        // The originals are put back first: ServerResponse.end calls this.writeHead itself.
        const releaseAt = Date.now() + fault.ms;
        const methods = ['writeHead', 'write', 'end'];
        const originals = Object.fromEntries(methods.map((m) => [m, res[m]]));
        const queued = [];
        const release = () => {
          Object.assign(res, originals);
          for (const [method, args] of queued) res[method](...args);
        };
        for (const method of methods) {
          res[method] = (...args) => {
            queued.push([method, args]);
            if (method === 'end') setTimeout(release, Math.max(0, releaseAt - Date.now()));
            return method === 'writeHead' ? res : true;
          };
        }
        return false;
      }
      case 'status': {
        req.resume();
        const json = typeof fault.body === 'object';
        const body = json ? JSON.stringify(fault.body) : String(fault.body);
        const headers = { 'content-type': json ? 'application/json' : 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...fault.headers };
        res.writeHead(fault.status, headers);
        res.end(body);
        return true;
      }
      case 'hang': {
        const { socket } = req;
        this.#hung.add(socket);
        socket.once('close', () => this.#hung.delete(socket));
        req.resume();
        return true;
      }
      case 'reset':
        // After the whole request arrived, so the client sees a reset of a sent request, not a refused write.
        req.once('end', () => req.socket.resetAndDestroy());
        req.resume();
        return true;
      default:
        return false;
    }
  }

  #describe(fault) {
    const { matcher, remaining, ...rest } = fault;
    return { ...rest, remaining: remaining === Infinity ? 'forever' : remaining };
  }
}
