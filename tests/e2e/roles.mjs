// Roles and sign-in throttling in a real browser, the team's half of tests/e2e/run.sh:
//   - a responder signs in, runs the dashboard and the audit log, and is refused the admins'
//     pages (operators, API tokens, subscribers), which the navigation does not offer;
//   - an admin adds an operator (temporary password shown once), creates a token with one
//     scope, filters the audit log; screenshots at 390 and 1,280 px, axe-core on each page,
//     and no page wider than the window;
//   - lock-out: 50 parallel wrong passwords for one account from one client (told apart by
//     X-Forwarded-For; run.sh makes Candor trust 127.0.0.1 as a proxy) get at most 5 password
//     checks, while a colleague behind the same proxy signs in normally; a refused attempt says
//     when to try again; the admin sees the attempts, unlocks the account from the console and
//     its owner signs in from the flooded client at once.
// Same style as console.mjs: one PASS/FAIL line per check, "<passed> <failed>" to $E2E_RESULTS.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { axe as axeOn, checks, CHROMIUM_ARGS, env } from './lib.mjs';

const BASE = env('E2E_BASE');
const RESPONDER = env('E2E_OPERATOR_EMAIL');
const RESPONDER_PASSWORD = env('E2E_OPERATOR_PASSWORD');
const ADMIN = env('E2E_ADMIN_EMAIL');
const ADMIN_PASSWORD = env('E2E_ADMIN_PASSWORD');
const SHOTS = env('E2E_SHOTS');
const RESULTS = env('E2E_RESULTS');
const OUT = env('E2E_OUT');
const AXE = env('E2E_AXE');
const NAV_TIMEOUT = 15_000;
const { counts, check } = checks();
const axe = (page) => axeOn(page, AXE);

async function fits(page) {
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  return scroll <= inner || `the page is ${scroll} px wide in a ${inner} px window`;
}

// A browser context for one client behind the proxy.
async function client(browser, ip, width = 1280) {
  const context = await browser.newContext({
    viewport: { width, height: 900 },
    extraHTTPHeaders: { 'X-Forwarded-For': ip },
  });
  const page = await context.newPage();
  page.setDefaultTimeout(NAV_TIMEOUT);
  return { context, page };
}

async function signIn(page, email, password) {
  await page.goto(`${BASE}/admin/login`, { waitUntil: 'load' });
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  return new URL(page.url()).pathname === '/admin' || `landed on ${page.url()}`;
}

mkdirSync(SHOTS, { recursive: true });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  // ------------------------------------------------------------------ a responder's walk
  const r = await client(browser, '198.51.100.10');
  if (await check('roles: the responder signs in', () => signIn(r.page, RESPONDER, RESPONDER_PASSWORD))) {
    await check('roles: the responder\'s navigation offers no admin pages', async () => {
      const links = await r.page.locator('nav a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      const admin = links.filter((h) => ['/admin/operators', '/admin/tokens', '/admin/subscribers'].includes(h));
      return admin.length === 0 || `offered: ${admin.join(', ')}`;
    });
    await check('roles: the responder reads the audit log', async () => {
      const resp = await r.page.goto(`${BASE}/admin/audit`);
      return resp.status() === 200 || `status ${resp.status()}`;
    });
    for (const path of ['/admin/operators', '/admin/tokens', '/admin/subscribers']) {
      await check(`roles: the responder is refused ${path} (403, "Admins only")`, async () => {
        const resp = await r.page.goto(`${BASE}${path}`);
        if (resp.status() !== 403) return `status ${resp.status()}`;
        return (await r.page.locator('h1').innerText()).includes('Admins only') || 'no "Admins only" heading';
      });
    }
    await r.page.screenshot({ path: join(SHOTS, 'roles-responder-refused.png'), fullPage: true });
    await check('roles: axe on the "Admins only" page: no violations', () => axe(r.page));
  }

  // ------------------------------------------------------------------ an admin's walk
  const a = await client(browser, '198.51.100.11');
  let newPassword = '';
  if (await check('roles: the admin signs in', () => signIn(a.page, ADMIN, ADMIN_PASSWORD))) {
    await check('roles: the admin adds an operator and sees the temporary password once', async () => {
      await a.page.goto(`${BASE}/admin/operators`);
      await a.page.fill('#new-email', 'cy@e2e.example.com');
      await a.page.selectOption('#new-role', 'responder');
      await Promise.all([a.page.waitForNavigation(), a.page.click('form[action="/admin/operators/new"] button[type=submit]')]);
      newPassword = await a.page.inputValue('#secret');
      await a.page.screenshot({ path: join(SHOTS, 'roles-operator-added.png'), fullPage: true });
      return newPassword.length >= 20 || `password "${newPassword}"`;
    });
    await check('roles: axe on the page showing a new password once: no violations', () => axe(a.page));
    await check('roles: the admin creates a token with one scope', async () => {
      await a.page.goto(`${BASE}/admin/tokens`);
      await a.page.fill('#token-name', 'alertmanager-e2e');
      for (const box of await a.page.locator('input[name=scope]').all()) await box.uncheck();
      await a.page.check('input[name=scope][value="alerts:write"]');
      await Promise.all([a.page.waitForNavigation(), a.page.click('form[action="/admin/tokens/new"] button[type=submit]')]);
      const token = await a.page.inputValue('#secret');
      const resp = await a.context.request.get(`${BASE}/api/v1/subscribers`, { headers: { Authorization: `Bearer ${token}` } });
      return resp.status() === 403 || `an alerts:write token listing subscribers got ${resp.status()}`;
    });
    await check('roles: the audit log filters by who', async () => {
      await a.page.goto(`${BASE}/admin/audit?actor=${encodeURIComponent(`operator:${ADMIN}`)}`);
      const actions = await a.page.locator('ol.audit > li').evaluateAll((ls) => ls.map((l) => l.dataset.action));
      return (actions.includes('operator.add') && actions.includes('token.create')) || `actions: ${actions.join(', ')}`;
    });
    for (const width of [390, 1280]) {
      await a.page.setViewportSize({ width, height: 900 });
      for (const [name, path] of [['operators', '/admin/operators'], ['tokens', '/admin/tokens'], ['audit', '/admin/audit']]) {
        await a.page.goto(`${BASE}${path}`);
        await check(`roles: ${path} fits ${width} px`, () => fits(a.page));
        await a.page.screenshot({ path: join(SHOTS, `roles-${name}-${width}.png`), fullPage: true });
        if (width === 1280) await check(`roles: axe ${path}: no violations`, () => axe(a.page));
      }
    }
    await a.page.setViewportSize({ width: 1280, height: 900 });
    for (const [name, path] of [['operators', '/admin/operators'], ['tokens', '/admin/tokens'], ['subscribers', '/admin/subscribers']]) {
      const resp = await a.context.request.get(`${BASE}${path}`);
      writeFileSync(join(OUT, `console-${name}.html`), await resp.text());
    }
  }

  // ------------------------------------------------------------------ lock-out cases
  const attacker = await client(browser, '203.0.113.66');
  await attacker.page.goto(`${BASE}/admin/login`);
  const csrf = await attacker.page.inputValue('input[name=csrf]');
  const colleague = await client(browser, '198.51.100.12');
  let refusal = null;
  await check('lock-out: 50 parallel wrong passwords get at most 5 checks; a colleague signs in meanwhile', async () => {
    const flood = Array.from({ length: 50 }, (_, i) => attacker.context.request.post(`${BASE}/admin/login`, {
      form: { email: 'cy@e2e.example.com', password: `wrong ${i}`, csrf },
      maxRedirects: 0,
    }).then(async (resp) => {
      if (resp.status() === 429 && !refusal) {
        refusal = { retryAfter: resp.headers()['retry-after'], body: await resp.text() };
      }
      return resp.status();
    }));
    const [codes, colleagueIn] = await Promise.all([Promise.all(flood), signIn(colleague.page, RESPONDER, RESPONDER_PASSWORD)]);
    const checked = codes.filter((c) => c === 401).length;
    const slowed = codes.filter((c) => c === 429).length;
    if (colleagueIn !== true) return `the colleague: ${colleagueIn}`;
    if (checked + slowed !== 50) return `statuses: ${codes.join(' ')}`;
    return (checked >= 1 && checked <= 5) || `${checked} passwords checked: ${codes.join(' ')}`;
  });
  await check('lock-out: a refused attempt says when to try again (429, Retry-After)', async () => {
    if (!refusal) return 'no attempt was refused';
    if (!(Number(refusal.retryAfter) >= 1)) return `Retry-After: ${refusal.retryAfter}`;
    return refusal.body.includes('Try again in') || 'the page does not say when to try again';
  });
  await check('lock-out: the admin sees the attempts, unlocks the account from the console, and its owner signs in', async () => {
    await a.page.goto(`${BASE}/admin/operators`);
    const row = a.page.locator('tr[data-operator="cy@e2e.example.com"]');
    const attempts = Number(await row.locator('[data-failed]').getAttribute('data-failed'));
    if (!(attempts >= 1 && attempts <= 5)) return `the row counts ${attempts} attempts`;
    await a.page.screenshot({ path: join(SHOTS, 'roles-attempts-before-unlock.png'), fullPage: true });
    await Promise.all([a.page.waitForNavigation(), row.locator('form[action$="/unlock"] button').click()]);
    if (await row.locator('[data-failed]').count() !== 0) return 'the attempts are still counted after the unlock';
    return signIn(attacker.page, 'cy@e2e.example.com', newPassword);
  });
} finally {
  await browser.close();
  writeFileSync(RESULTS, `${counts.passed} ${counts.failed}\n`);
}
console.log(`roles: ${counts.passed} passed, ${counts.failed} failed`);
process.exit(counts.failed === 0 ? 0 : 1);
