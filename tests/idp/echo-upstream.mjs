#!/usr/bin/env node
// The upstream app behind the proxy in end-to-end tests and `make demo`: it answers every request with what it
// received (method, path, headers; JSON, or a small HTML page when the client prefers HTML), so a test can see
// which identity headers the proxy forwarded and that spoofed ones were stripped. It echoes the request body too, and
// keeps a log of every request it received: `GET /__echo/requests` (asked directly, not through the proxy) answers
// it, so a test can prove that the proxy did or did not start an upstream request.
// Usage: node echo-upstream.mjs [--port N]   (env ECHO_PORT; 0 or absent = a free port)
// Ready line on stdout: {"url":"http://127.0.0.1:PORT","port":PORT,"pid":PID}

import { createHash } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

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

function page(echo) {
  const rows = Object.entries(echo.headers)
    .map(([name, value]) => `<tr><td>${escapeHtml(name)}</td><td>${escapeHtml(value)}</td></tr>`)
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>echo upstream</title></head>
<body><h1>Hello from the upstream app</h1><p id="request">${escapeHtml(echo.method)} ${escapeHtml(echo.path)}</p>
<table id="headers"><tr><th>header</th><th>value</th></tr>
${rows}
</table></body></html>`;
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
