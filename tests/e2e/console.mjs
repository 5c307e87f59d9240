// Console half of tests/e2e/run.sh: an operator signs in, declares an incident with an ETA
// (seeing the channel preview and the calibration hint), sees it on the public page, revises
// the ETA and resolves it. Same style as e2e.mjs: one PASS/FAIL line per check, and
// "<passed> <failed>" written to $E2E_RESULTS. Screenshots go to $E2E_SHOTS.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { checks, CHROMIUM_ARGS, env } from './lib.mjs';

const BASE = env('E2E_BASE');
const EMAIL = env('E2E_OPERATOR_EMAIL');
const PASSWORD = env('E2E_OPERATOR_PASSWORD');
const ACTIVE_TITLE = env('E2E_ACTIVE_TITLE');
const SHOTS = env('E2E_SHOTS');
const RESULTS = env('E2E_RESULTS');
const OUT = env('E2E_OUT');
const TITLE = 'Checkout payments failing';
const NAV_TIMEOUT = 15_000;

const { counts, check } = checks();

mkdirSync(SHOTS, { recursive: true });

// Saves a console page's HTML as the server sends it (with this session's cookie), for run.sh's
// HTML checker.
async function saveRaw(context, name, path) {
  const resp = await context.request.get(`${BASE}${path}`);
  if (resp.status() !== 200) throw new Error(`GET ${path} answered ${resp.status()}`);
  writeFileSync(join(OUT, `console-${name}`), await resp.text());
}
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(NAV_TIMEOUT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('favicon')) errors.push(m.text()); });

  const flow = async () => {
    if (!await check('console: /admin without a session leads to the sign-in form', async () => {
      await page.goto(`${BASE}/admin`, { waitUntil: 'load' });
      return new URL(page.url()).pathname === '/admin/login' || `landed on ${page.url()}`;
    })) return;

    await check('console: the sign-in page saved for the HTML checker', () => saveRaw(context, 'login.html', '/admin/login'));
    if (!await check('console: signs in and sees the dashboard with the open incident', async () => {
      await page.fill('#email', EMAIL);
      await page.fill('#password', PASSWORD);
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      if (new URL(page.url()).pathname !== '/admin') return `landed on ${page.url()}`;
      await page.getByRole('heading', { name: 'Open incidents' }).waitFor();
      return (await page.locator('section.incident h2').allInnerTexts()).some((t) => t.includes(ACTIVE_TITLE))
        || 'the seeded active incident is not listed';
    })) return;
    await check('console: the dashboard counts down to the promised update', async () => {
      await page.waitForFunction(() => /^(in|overdue by) /.test(document.querySelector('[data-countdown]')?.textContent || ''));
    });
    await page.screenshot({ path: join(SHOTS, 'console-dashboard.png'), fullPage: true });
    await check('console: dashboard, declare form and audit log saved for the HTML checker', async () => {
      await saveRaw(context, 'dashboard.html', '/admin');
      await saveRaw(context, 'declare.html', '/admin/incidents/new');
      await saveRaw(context, 'audit.html', '/admin/audit');
    });

    if (!await check('console: the declare form opens', async () => {
      await Promise.all([page.waitForNavigation(), page.click('a.btn[href="/admin/incidents/new"]')]);
      await page.getByRole('heading', { name: 'Declare an incident' }).waitFor();
    })) return;
    await page.fill('#title', TITLE);
    await page.selectOption('#impact', 'major');
    await page.selectOption('#c-api', 'partial_outage');
    await page.fill('#message', 'Some card payments fail at checkout. Retrying usually works; we are on it.');
    await page.check('input[name=eta_mode][value=in]');
    await page.fill('#eta_in', '1h');
    await page.fill('#next_update_in', '20m');

    await check('console: the preview shows what the log channel will publish, with its length', async () => {
      const box = page.locator('#previews .preview[data-channel="log"]');
      await box.locator('pre', { hasText: TITLE }).waitFor();
      const text = await box.locator('pre').innerText();
      const count = await box.locator('.count').innerText();
      if (!text.includes('We expect this fixed by')) return `preview text: ${text}`;
      return count.startsWith(`${[...text].length} `) || `counter "${count}" for ${[...text].length} characters`;
    });
    await check('console: the calibration hint says what history says', async () => {
      await page.locator('#calibration', { hasText: 'past major incidents' }).waitFor();
      const hint = await page.locator('#calibration').innerText();
      return /half were resolved within|becomes/.test(hint) || `hint: ${hint}`;
    });
    await page.screenshot({ path: join(SHOTS, 'console-declare.png'), fullPage: true });

    let incidentPath = '';
    if (!await check('console: "Declare and publish" opens the new incident', async () => {
      await Promise.all([page.waitForNavigation(), page.click('button[value=declare]')]);
      incidentPath = new URL(page.url()).pathname;
      if (!/^\/admin\/incidents\/\d+$/.test(incidentPath)) return `landed on ${page.url()}`;
      await page.getByRole('heading', { name: TITLE }).waitFor();
    })) return;
    const id = incidentPath.split('/').pop();

    await check(`public: /incidents/${id} and / show the new incident`, async () => {
      const pub = await context.newPage();
      try {
        // The page is rebuilt just after the commit, and browsers may keep `/` for its
        // max-age (10 s, then stale-while-revalidate): poll by time, long enough for both.
        const until = Date.now() + 25000;
        while (Date.now() < until) {
          await pub.goto(`${BASE}/`, { waitUntil: 'load' });
          if ((await pub.locator('main').innerText()).includes(TITLE)) break;
          await pub.waitForTimeout(250);
        }
        await pub.getByText(TITLE).first().waitFor();
        await pub.goto(`${BASE}/incidents/${id}`, { waitUntil: 'load' });
        return (await pub.locator('main').innerText()).includes('Some card payments fail') || 'incident page lacks the message';
      } finally {
        await pub.close();
      }
    });

    await page.screenshot({ path: join(SHOTS, 'console-incident-open.png'), fullPage: true });
    await check('console: the incident page saved for the HTML checker', () => saveRaw(context, 'incident.html', incidentPath));
    await check('console: revising the ETA with a reason posts an update and records the revision', async () => {
      await page.check('input[name=eta_mode][value=in]');
      await page.fill('#eta_in', '2h');
      await page.fill('#eta_reason', 'The payment provider needs longer to fail over');
      await page.fill('#message', 'We found the cause: a failing payment provider region. Failing over now.');
      await page.selectOption('#status', 'identified');
      await Promise.all([page.waitForNavigation(), page.click('#update-form button[type=submit]')]);
      const revisions = await page.locator('#revisions').innerText();
      return revisions.includes('The payment provider needs longer to fail over') || `revisions: ${revisions}`;
    });

    await check('console: resolving closes the incident', async () => {
      await page.fill('#resolve-message', 'Payments work again; the provider region is healthy.');
      await Promise.all([page.waitForNavigation(), page.click('#resolve-form button[type=submit]')]);
      const meta = await page.locator('section.incident .meta').innerText();
      return meta.includes('resolved') || `meta: ${meta}`;
    });
    await page.screenshot({ path: join(SHOTS, 'console-incident.png'), fullPage: true });

    await check('console: the audit log names the operator for each action', async () => {
      await page.goto(`${BASE}/admin/audit`, { waitUntil: 'load' });
      const audit = await page.locator('#audit').innerText();
      const missing = ['incident.declare', 'incident.update', 'incident.resolve', 'console.sign_in']
        .filter((a) => !audit.includes(a));
      if (!audit.includes(EMAIL)) missing.push(EMAIL);
      return missing.length === 0 || `missing: ${missing.join(', ')}`;
    });

    // Maintenance: schedule a window from the console form (no script needed), then cancel it.
    let windowPath = '';
    await check('console: a maintenance window is scheduled from the console', async () => {
      await page.goto(`${BASE}/admin/maintenance`, { waitUntil: 'load' });
      await Promise.all([page.waitForNavigation(), page.click('a.btn[href="/admin/maintenance/new"]')]);
      const start = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 11) + '02:00';
      await page.fill('#title', 'Database upgrade');
      await page.check('input[name=component][value=api]');
      await page.fill('#starts_at', start);
      await page.fill('#duration', '2h');
      await Promise.all([page.waitForNavigation(), page.click('#window-form button[value=check]')]);
      await page.locator('#warnings').waitFor();
      await Promise.all([page.waitForNavigation(), page.click('#window-form button[value=schedule]')]);
      windowPath = new URL(page.url()).pathname;
      if (!/^\/admin\/maintenance\/\d+$/.test(windowPath)) return `landed on ${page.url()}`;
      await page.screenshot({ path: join(SHOTS, 'console-maintenance.png'), fullPage: true });
      await saveRaw(context, 'maintenance.html', windowPath);
      await saveRaw(context, 'maintenance-list.html', '/admin/maintenance');
      await saveRaw(context, 'maintenance-new.html', '/admin/maintenance/new');
    });
    if (windowPath) {
      await check('console: cancelling the window announces it', async () => {
        await Promise.all([page.waitForNavigation(), page.click('#cancel-form button[type=submit]')]);
        const status = await page.locator('#window-status').innerText();
        return status.includes('Cancelled') || `status: ${status}`;
      });
    }

    await check('console: signing out ends the session', async () => {
      await Promise.all([page.waitForNavigation(), page.click('header nav button[type=submit]')]);
      await page.goto(`${BASE}/admin`, { waitUntil: 'load' });
      return new URL(page.url()).pathname === '/admin/login' || `landed on ${page.url()}`;
    });
  };
  await flow();
  await check('console: no console errors or uncaught exceptions', () => errors.length === 0 || errors.join('\n'));
} finally {
  await browser.close();
  writeFileSync(RESULTS, `${counts.passed} ${counts.failed}\n`);
}
