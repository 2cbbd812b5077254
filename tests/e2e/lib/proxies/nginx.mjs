// Real nginx with Kong's ngx_wasm_module (`make nginx`), configured from examples/nginx/nginx.conf itself: only the
// module path, worker count, ports, the IdP's host:port, the plugin configuration (the scenario's, with the example's
// `nginx` section) and the list of headers nginx must send only with vigil's value (the scenario's identity and
// session headers) are replaced, and the test's own logging is added (error log on stderr, an access log naming the
// worker pid, so "every worker" checks can count per worker).

import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { startProcess } from './process.mjs';

// A worker crash, a wasm trap, a panic inside the filter, vigil logging at error or critical level, an assertion.
export const NGINX_PROBLEMS = [
  /exited on signal/,
  /\[(emerg|alert|crit)\]/,
  /\[error\].*\[wasm\].*(vigil|panicked|trap)/,
  /wasm trap|panicked at|unreachable executed/i,
  /Assertion .* failed/,
];

export const NGINX_EXAMPLE = 'examples/nginx/nginx.conf';

export function nginxBin(root) {
  return process.env.NGINX_BIN ?? join(root, '.tools', 'nginx-wasm', 'sbin', 'nginx');
}

// The JSON inside `proxy_wasm vigil '...'`, as nginx hands it to the filter (nginx unescapes \\, \' and friends in
// quoted arguments), and the quoting that gets any JSON through unchanged.
const PROXY_WASM = /proxy_wasm vigil '((?:[^'\\]|\\.)*)';/s;
export const unquoteNginx = (s) => s.replace(/\\(.)/gs, (_, c) => ({ n: '\n', t: '\t', r: '\r' })[c] ?? c);
export const quoteNginx = (s) => s.replace(/\\/g, '\\\\').replace(/'/g, "\\'");

export function examplePluginConfig(root) {
  const text = readFileSync(join(root, NGINX_EXAMPLE), 'utf8');
  return JSON.parse(unquoteNginx(text.match(PROXY_WASM)[1]));
}

function replaceOnce(text, pattern, replacement, what) {
  if (!pattern.test(text)) throw new Error(`${NGINX_EXAMPLE}: no ${what} to replace`);
  return text.replace(pattern, replacement);
}

// examples/nginx/nginx.conf with this run's values. `pluginConfig` is the scenario's vigil configuration: its
// `idp.upstream` becomes 127.0.0.1:<idpPort> (nginx has no clusters) and the example's nginx-only keys are kept.
// `proxy_set_header NAME $http_NAME;` for every header vigil sets or blanks (see the example's comment).
function headerLines(config) {
  const names = ['authorization', 'cookie', config.downstream?.header ?? 'authorization',
    ...Object.keys(config.identity_headers ?? {}), ...Object.values(config.session_headers ?? {})];
  return [...new Set(names.map((n) => n.toLowerCase()))]
    .map((n) => `            proxy_set_header ${n} $http_${n.replace(/-/g, '_')};`).join('\n');
}

export function nginxConfig({ root, wasm, pluginConfig, port, waitPort, upstreamPort, idpPort, workers, accessLog }) {
  const example = examplePluginConfig(root);
  const exampleWait = example.nginx.wait_upstream;
  const config = {
    ...pluginConfig,
    nginx: { ...example.nginx, wait_upstream: `127.0.0.1:${waitPort}` },
    idp: { ...pluginConfig.idp, upstream: `127.0.0.1:${idpPort}` },
  };
  let text = readFileSync(join(root, NGINX_EXAMPLE), 'utf8');
  text = text.replaceAll(exampleWait, `127.0.0.1:${waitPort}`);
  text = replaceOnce(text, /( *# vigil-headers-begin\n)[\s\S]*?( *# vigil-headers-end)/, (_, begin, end) => `${begin}${headerLines(config)}\n${end}`, 'header list');
  text = replaceOnce(text, /module vigil \S+;/, `module vigil ${wasm};`, 'module path');
  text = replaceOnce(text, /worker_processes \d+;/, `worker_processes ${workers};`, 'worker_processes');
  text = replaceOnce(text, /listen \d+( reuseport)?;/, (_, reuse) => `listen 127.0.0.1:${port}${reuse ?? ''};`, 'public listen');
  text = replaceOnce(text, /server 127\.0\.0\.1:\d+;/, `server 127.0.0.1:${upstreamPort};`, 'upstream server');
  text = replaceOnce(text, PROXY_WASM, () => `proxy_wasm vigil '${quoteNginx(JSON.stringify(config))}';`, 'proxy_wasm');
  text = replaceOnce(text, /http \{\n/, `http {\n    log_format vigil_e2e '$pid $request_method $uri $status';\n    access_log ${accessLog} vigil_e2e;\n`, 'http block');
  return text;
}

// Requests answered per worker process so far, from the access log (`<pid> <method> <uri> <status>`).
function requestsPerWorker(accessLog) {
  let text = '';
  try { text = readFileSync(accessLog, 'utf8'); } catch { return {}; }
  const counts = {};
  for (const line of text.split('\n')) {
    const pid = line.split(' ')[0];
    if (pid) counts[pid] = (counts[pid] ?? 0) + 1;
  }
  return counts;
}

export async function startNginx({ root, wasm, pluginConfig, port, waitPort, upstreamPort, idpPort, workers, logFile, dir, name, env = {} }) {
  const prefix = join(dir, `${name}.nginx`);
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  // Workers run as nobody when the master is root: they must reach the temporary body files under the prefix.
  for (const d of [dir, prefix]) chmodSync(d, 0o755);
  const accessLog = join(prefix, 'logs', 'access.log');
  const configFile = join(prefix, 'nginx.conf');
  writeFileSync(configFile, nginxConfig({ root, wasm, pluginConfig, port, waitPort, upstreamPort, idpPort, workers, accessLog }));
  const args = ['-p', prefix, '-c', configFile, '-g', `daemon off; master_process on; pid ${join(prefix, 'nginx.pid')}; error_log stderr info;`];
  const proc = await startProcess({
    kind: 'nginx', bin: nginxBin(root), args, logFile, env,
    probe: async () => { await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) }); return true; },
    problems: NGINX_PROBLEMS,
  });
  return {
    ...proc,
    workers,
    configFile,
    // Every worker that answered at least one request, keyed by pid (nginx has no per-worker connection counter).
    connectionsPerWorker: async () => {
      const counts = requestsPerWorker(accessLog);
      return Object.fromEntries(Object.values(counts).map((n, i) => [i, n]));
    },
  };
}
