// A proxy process under test: its log (stderr, and stdout where the proxy logs there) goes to a file and is kept in
// memory, so a test can wait for a log line and the harness can refuse a run whose log shows a trap, a panic, a crash or
// an unexpected error line. Shared by every proxy kind (host-sim, envoy).

import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

const live = new Set();
process.on('exit', () => { for (const child of live) child.kill('SIGKILL'); });

export function track(child) {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

export async function stopChild(child, timeoutMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

// Spawns `bin args`, following its log. `ready(line)` is tested on every log line and stdout line; alternatively
// `probe()` is polled. Resolves once ready, rejects (and kills the child) if it exits first or after `timeoutMs`.
// `problems` are the log patterns that fail a run unless a scenario expects them (see `unexpectedProblems`).
export async function startProcess({ kind, bin, args, env, logFile, ready, probe, problems, timeoutMs = 60_000 }) {
  const child = track(spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
  const log = createWriteStream(logFile);
  const lines = [];
  const waiters = new Set();
  let readyResolve;
  const readySeen = new Promise((r) => { readyResolve = r; });
  const onLine = (line) => {
    log.write(`${line}\n`);
    lines.push(line);
    if (ready?.(line)) readyResolve();
    for (const waiter of waiters) waiter(line);
  };
  createInterface({ input: child.stderr }).on('line', onLine);
  createInterface({ input: child.stdout }).on('line', onLine);
  child.once('exit', () => log.end());
  const startedAt = performance.now();
  await new Promise((resolveReady, reject) => {
    let done = false;
    const timer = setTimeout(() => fail(`not ready within ${timeoutMs} ms`), timeoutMs);
    function fail(why) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${kind}: ${why}\n--- log (${logFile}) ---\n${lines.slice(-40).join('\n')}`));
    }
    function ok() {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.removeListener('exit', onExit);
      resolveReady();
    }
    const onExit = (code, signal) => fail(`exited (${code ?? signal}) before it was ready`);
    child.once('exit', onExit);
    child.once('error', (err) => fail(err.message));
    if (ready) readySeen.then(ok);
    if (probe) {
      (async () => {
        while (!done) {
          try { if (await probe()) { ok(); return; } } catch { /* not up yet */ }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
    }
  });
  return {
    kind,
    child,
    startedAt,
    startupMs: performance.now() - startedAt,
    // Log lines so far, oldest first.
    lines,
    // Log patterns a scenario expects: they do not fail the run.
    expected: [],
    expectLog(...patterns) { this.expected.push(...patterns); },
    // The log lines that fail a run: a trap, a panic, a crash, an error the scenario did not announce.
    unexpectedProblems() {
      return lines.filter((line) => problems.some((p) => p.test(line)) && !this.expected.some((p) => p.test(line)));
    },
    // Resolves with the first log line from now on that matches, rejects after `waitMs`.
    waitForLog(pattern, waitMs = 5000) {
      return new Promise((resolveLine, reject) => {
        const timer = setTimeout(() => { waiters.delete(waiter); reject(new Error(`no log line matching ${pattern} within ${waitMs} ms`)); }, waitMs);
        function waiter(line) {
          if (!pattern.test(line)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolveLine(line);
        }
        waiters.add(waiter);
      });
    },
    stop: () => stopChild(child),
  };
}
