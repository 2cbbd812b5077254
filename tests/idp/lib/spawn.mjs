// Starts one of the node services (provider.mjs, echo-upstream.mjs) as a child process and waits for its JSON ready
// line, bounded by a timeout.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export async function spawnReady(script, args = [], { timeoutMs = 10_000, env = {} } = {}) {
  const startedAt = performance.now();
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-20_000); });
  const lines = createInterface({ input: child.stdout });

  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${script}: no ready line within ${timeoutMs} ms`)), timeoutMs);
    function fail(err) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n--- stderr ---\n${stderr}`));
    }
    child.once('exit', (code, signal) => fail(new Error(`${script}: exited (${code ?? signal}) before it was ready`)));
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line);
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(parsed);
      } catch {
        // not the ready line
      }
    });
  });

  async function stop({ signal = 'SIGTERM', timeoutMs: stopTimeoutMs = 5000 } = {}) {
    if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
    const exited = once(child, 'exit');
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
    const [code, sig] = await exited;
    clearTimeout(timer);
    return { code, signal: sig };
  }

  return { child, ready, startupMs: performance.now() - startedAt, stop, stderr: () => stderr };
}
