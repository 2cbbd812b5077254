// A real browser (headless Chromium from Debian's `chromium` package, driven by playwright-core) goes through the
// flow as a user: protected page → IdP login page → picks a user → back on the original page with an HttpOnly,
// SameSite=Lax session cookie → the user is deprovisioned → the next navigation ends on the IdP's login page.
// Screenshots go to dist/e2e/.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { startStack, ARTIFACTS, E2E_RUN } from '../lib/stack.mjs';
import { figure } from '../lib/session.mjs';
import { elapse } from '../lib/http.mjs';
import { COOKIE_NAME } from '../lib/config.mjs';

const INTERVAL_MS = 1000;
const CHROMIUM = process.env.CHROMIUM_BIN || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
// `make e2e` installs chromium and sets E2E_REQUIRE_BROWSER: there a missing browser fails instead of skipping.
const skip = !CHROMIUM && !process.env.E2E_REQUIRE_BROWSER ? 'chromium is not installed (make e2e installs it)' : false;

describe('a real browser', { skip }, () => {
  let stack;
  let proxy;
  let browser;
  before(async () => {
    assert.ok(CHROMIUM, 'chromium is not installed (apt-get install chromium)');
    stack = await startStack('browser', { idpArgs: ['--login-form'], proxy: { overrides: { revalidate_interval: '1s' } } });
    proxy = stack.proxies.get('proxy');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Root in a container: no user namespaces for the sandbox.
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
      timeout: 30_000,
    });
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('logs in through the IdP, keeps an HttpOnly SameSite cookie, and is sent back to the login once deprovisioned', async (t) => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const target = `${proxy.url}/app/dashboard?from=browser`;
    const startedAt = performance.now();

    await page.goto(target);
    assert.ok(page.url().startsWith(`${stack.issuer}/interaction/`), `expected the IdP's login page, got ${page.url()}`);
    await page.getByRole('heading', { name: /sign in as/ }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, `browser-${E2E_RUN}-1-idp-login.png`) });

    await Promise.all([page.waitForURL(target), page.locator('button[value="alice"]').click()]);
    const loginMs = performance.now() - startedAt;
    await page.getByRole('heading', { name: 'Hello from the upstream app' }).waitFor();
    const sub = await page.locator('#headers tr', { hasText: 'x-user-sub' }).locator('td').nth(1).textContent();
    assert.equal(sub, 'alice');
    // Above the table: who is signed in, the session's validation times, a log-out button.
    assert.equal(await page.locator('#identity #subject').textContent(), 'alice');
    assert.match(await page.locator('#identity #validated-at').textContent(), / UTC \(\d+ s ago\)$/);
    await page.locator('#identity #logout button', { hasText: 'Log out' }).waitFor();

    const cookie = (await context.cookies(proxy.url)).find((c) => c.name === COOKIE_NAME);
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.ok(!(await page.evaluate(() => document.cookie)).includes(COOKIE_NAME), 'scripts cannot read the session cookie');
    await page.screenshot({ path: join(ARTIFACTS, `browser-${E2E_RUN}-2-logged-in.png`), fullPage: true });

    await stack.control('POST', '/users/alice/deprovision');
    // The proxy notices at its next revalidation: one interval.
    await elapse(INTERVAL_MS + 100);
    // The page load whose revalidation finds the user gone is sent to the IdP, which shows its login page.
    const navigation = await page.goto(target);
    assert.ok(page.url().startsWith(`${stack.issuer}/interaction/`),
      `expected the IdP's login page, got ${navigation.status()} at ${page.url()}: ${(await navigation.text()).slice(0, 300)}`);
    await page.getByRole('heading', { name: /sign in as/ }).waitFor();
    assert.equal(await page.locator('button[value="alice"]').count(), 0, 'a deprovisioned user is not offered');
    const screenshot = join(ARTIFACTS, `browser-${E2E_RUN}-final.png`);
    await page.screenshot({ path: screenshot });
    figure(t, 'browser', { login_ms: Math.round(loginMs), chromium: browser.version(), screenshot });
    await context.close();
  });
});
