#!/usr/bin/env node
// The upstream app behind the proxy in end-to-end tests and `make demo`: it answers every request with what it
// received (method, path, headers; JSON, or an HTML page when the client prefers HTML), so a test can see which
// identity headers the proxy forwarded and that spoofed ones were stripped. It echoes the request body too, and
// keeps a log of every request it received: `GET /__echo/requests` (asked directly, not through the proxy) answers
// it, so a test can prove that the proxy did or did not start an upstream request.
// The HTML page (what `make demo` shows) starts with who is signed in (subject, email, groups from vigil's identity
// headers), when vigil last validated the session and when the next revalidation is due (its session headers), and
// a log-out button (a form POSTing to vigil's logout path); the table of every header received follows. Header names
// and the logout path are those of the end-to-end and demo configuration, tests/e2e/lib/config.mjs.
// Usage: node echo-upstream.mjs [--port N]   (env ECHO_PORT; 0 or absent = a free port)
// Ready line on stdout: {"url":"http://127.0.0.1:PORT","port":PORT,"pid":PID}

import { createHash } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import { IDENTITY_HEADERS, SESSION_HEADERS, LOGOUT_PATH } from '../e2e/lib/config.mjs';

const { values } = parseArgs({ options: { port: { type: 'string' } }, strict: true });
const port = Number(values.port ?? process.env.ECHO_PORT ?? 0);
if (!Number.isInteger(port) || port < 0) {
  console.error('error: --port must be a non-negative integer');
  process.exit(2);
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function prefersHtml(accept = '') {
  const html = accept.indexOf('text/html');
  const json = accept.indexOf('application/json');
  return html !== -1 && (json === -1 || html < json);
}

// The header carrying `claim`, as the configuration maps it (header -> claim).
const identityHeader = (claim) => Object.keys(IDENTITY_HEADERS).find((h) => IDENTITY_HEADERS[h] === claim);
const SHOWN = {
  sub: identityHeader('sub'),
  email: identityHeader('email'),
  groups: identityHeader('groups'),
  validatedAt: SESSION_HEADERS.validated_at,
  revalidateAt: SESSION_HEADERS.revalidate_at,
};

// "42 s", "3 min 5 s", "2 h 4 min".
function span(seconds) {
  const s = Math.abs(Math.round(seconds));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// A session header's value (Unix seconds) as a table cell: the time in UTC, then how long ago or from now (kept
// current by the page's script). `past` and `future` are templates, `%` standing for the span. A value that is not
// Unix seconds is shown as received, escaped.
function timeCell(value, nowS, { past, future }) {
  if (value === undefined) return '<span class="muted">not sent</span>';
  if (!/^\d{1,12}$/.test(value)) return `${escapeHtml(value)} <span class="muted">(not Unix seconds)</span>`;
  const at = Number(value);
  const iso = new Date(at * 1000).toISOString();
  const utc = iso.replace('T', ' ').replace('.000Z', ' UTC');
  const delta = at - nowS;
  const relative = (delta > 0 ? future : past).replace('%', span(delta));
  return `<time datetime="${escapeHtml(iso)}">${escapeHtml(utc)}</time> ` +
    `<span class="relative" data-at="${at}" data-past="${escapeHtml(past)}" data-future="${escapeHtml(future)}">` +
    `(${escapeHtml(relative)})</span>`;
}

const notSent = '<span class="muted">not sent</span>';

function identityPanel(headers, nowS) {
  const sub = headers[SHOWN.sub];
  if (sub === undefined) {
    return `<section id="identity" class="card anonymous"><p>Nobody is signed in: this request carries no
<code>${escapeHtml(SHOWN.sub)}</code> header (it did not come through vigil, or vigil sends no identity headers).</p></section>`;
  }
  const groups = (headers[SHOWN.groups] ?? '').split(',').filter(Boolean);
  const chips = groups.length ? groups.map((g) => `<span class="chip">${escapeHtml(g)}</span>`).join(' ') : '<span class="muted">none</span>';
  const email = headers[SHOWN.email];
  const validated = timeCell(headers[SHOWN.validatedAt], nowS, { past: '% ago', future: 'in %' });
  const due = timeCell(headers[SHOWN.revalidateAt], nowS, { past: 'due now: the next request revalidates', future: 'in %' });
  return `<section id="identity" class="card">
<div><p class="label">Signed in as</p><p id="subject" class="subject">${escapeHtml(sub)}</p></div>
<form id="logout" method="post" action="${escapeHtml(LOGOUT_PATH)}"><button type="submit">Log out</button></form>
<table class="facts">
<tr><th>Subject</th><td id="sub">${escapeHtml(sub)}</td></tr>
<tr><th>Email</th><td id="email">${email === undefined ? notSent : escapeHtml(email)}</td></tr>
<tr><th>Groups</th><td id="groups">${chips}</td></tr>
<tr><th>Last validated</th><td id="validated-at">${validated}</td></tr>
<tr><th>Next revalidation due</th><td id="revalidate-at">${due}</td></tr>
</table>
<p class="muted small">From vigil's identity headers (<code>${escapeHtml(SHOWN.sub)}</code>, <code>${escapeHtml(SHOWN.email)}</code>,
<code>${escapeHtml(SHOWN.groups)}</code>) and session headers (<code>${escapeHtml(SHOWN.validatedAt)}</code>,
<code>${escapeHtml(SHOWN.revalidateAt)}</code>, Unix seconds), times in UTC. Reload to see a revalidation move them.</p>
</section>`;
}

// Keeps the "(… ago)" / "(in …)" notes current without a reload.
const TICK_SCRIPT = `<script>
(() => {
  const span = ${span.toString()};
  setInterval(() => {
    const now = Date.now() / 1000;
    for (const el of document.querySelectorAll('.relative[data-at]')) {
      const delta = Number(el.dataset.at) - now;
      el.textContent = '(' + (delta > 0 ? el.dataset.future : el.dataset.past).replace('%', span(delta)) + ')';
    }
  }, 1000);
})();
</script>`;

const STYLE = `<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1.5rem; color: #1d2430; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
h2 { font-size: 1.05rem; margin: 0 0 0.5rem; }
.card { border: 1px solid #c9d3e0; border-radius: 8px; padding: 1rem 1.25rem; background: #f5f8fc; margin-bottom: 1.5rem;
  display: grid; grid-template-columns: 1fr auto; gap: 0.25rem 1rem; }
.card.anonymous { display: block; background: #fff7e6; border-color: #f0c36d; }
.card > table, .card > p.small { grid-column: 1 / span 2; }
.label { margin: 0; color: #5a6678; font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.05em; }
.subject { margin: 0; font-size: 1.6rem; font-weight: 600; }
#logout { align-self: center; }
#logout button { font: inherit; padding: 0.45rem 1.1rem; border-radius: 6px; border: 1px solid #b42318; background: #d92d20;
  color: #fff; cursor: pointer; }
.facts { border-collapse: collapse; margin-top: 0.5rem; justify-self: start; }
.facts th { text-align: left; font-weight: 500; color: #5a6678; padding: 0.2rem 1.5rem 0.2rem 0; white-space: nowrap; }
.facts td { padding: 0.2rem 0; }
.chip { display: inline-block; background: #dde7f5; border-radius: 999px; padding: 0 0.6rem; }
.muted { color: #6b7687; }
.small { font-size: 0.85rem; margin: 0.75rem 0 0; }
#headers { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
#headers th, #headers td { text-align: left; border-bottom: 1px solid #e3e8ef; padding: 0.25rem 0.5rem; vertical-align: top; }
#headers td { font-family: ui-monospace, monospace; word-break: break-all; }
</style>`;

function page(echo) {
  const rows = Object.entries(echo.headers)
    .map(([name, value]) => `<tr><td>${escapeHtml(name)}</td><td>${escapeHtml(value)}</td></tr>`)
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>echo upstream</title>${STYLE}</head>
<body><h1>Hello from the upstream app</h1>
${identityPanel(echo.headers, Date.now() / 1000)}
<h2>The request as it reached the app</h2>
<p id="request">${escapeHtml(echo.method)} ${escapeHtml(echo.path)}</p>
<table id="headers"><tr><th>header</th><th>value</th></tr>
${rows}
</table>${TICK_SCRIPT}</body></html>`;
}

const LOG_PATH = '/__echo/requests';
const LOG_LIMIT = 1000;
const BODY_ECHO_LIMIT = 64 * 1024;
const log = [];
let requests = 0;
const server = http.createServer((req, res) => {
  if (req.url === LOG_PATH) {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(`${JSON.stringify({ requests, log })}\n`);
    return;
  }
  requests += 1;
  // Logged as soon as the headers arrive: a request the proxy starts and then abandons counts too.
  const entry = { method: req.method, path: req.url, complete: false };
  log.push(entry);
  if (log.length > LOG_LIMIT) log.shift();
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const bodySha256 = createHash('sha256').update(body).digest('hex');
    Object.assign(entry, { complete: true, bodyBytes: body.length, bodySha256 });
    const echo = {
      method: req.method, path: req.url, headers: req.headers, requests, bodyBytes: body.length, bodySha256,
      body: body.length <= BODY_ECHO_LIMIT ? body.toString('utf8') : undefined,
    };
    if (prefersHtml(req.headers.accept)) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(page(echo));
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(`${JSON.stringify(echo)}\n`);
    }
  });
});
server.keepAliveTimeout = 30_000;

const sockets = new Set();
server.on('connection', (socket) => {
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
});

function stop() {
  server.close(() => process.exit(0));
  for (const socket of sockets) socket.destroy();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${actual}`, port: actual, pid: process.pid })}\n`);
});
