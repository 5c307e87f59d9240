// Widths half of tests/e2e/run.sh: every console page and public page at 390 px and 1,280 px,
// with a 120-character title without spaces and an incident on every component, must not be
// wider than the viewport (document.documentElement.scrollWidth <= innerWidth); each is
// screenshot into $E2E_OUT/widths/; axe-core finds no violations on every console page; the
// console header fits one line at 1,280 px; the status page's "Get updates" form opens
// without scripts with tap targets of at least 44 px; and an incident a script declares through
// the API appears on the open dashboard within 2 s, without a reload. Same style as e2e.mjs:
// one PASS/FAIL line per check, "<passed> <failed>" written to $E2E_RESULTS.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { axe as axeOn, checks, CHROMIUM_ARGS, env } from './lib.mjs';

const BASE = env('E2E_BASE');
const EMAIL = env('E2E_ADMIN_EMAIL');
const PASSWORD = env('E2E_ADMIN_PASSWORD');
const TOKEN = env('E2E_TOKEN');
const LONG_ID = env('E2E_LONG_ID');
const WINDOW_ID = env('E2E_WINDOW_ID');
const AXE = env('E2E_AXE');
const OUT = env('E2E_OUT');
const RESULTS = env('E2E_RESULTS');
const SHOTS = join(OUT, 'widths');
const NAV_TIMEOUT = 15_000;

const WIDTHS = {
  390: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
  1280: { viewport: { width: 1280, height: 900 } },
};
const CONSOLE_PAGES = [
  ['dashboard', '/admin'],
  ['declare', '/admin/incidents/new'],
  ['incident', `/admin/incidents/${LONG_ID}`],
  ['maintenance-list', '/admin/maintenance'],
  ['maintenance-new', '/admin/maintenance/new'],
  ['maintenance', `/admin/maintenance/${WINDOW_ID}`],
  ['subscribers', '/admin/subscribers'],
  ['audit', '/admin/audit'],
];
const PUBLIC_PAGES = [
  ['status', '/'],
  ['incident', `/incidents/${LONG_ID}`],
  ['maintenance', `/incidents/${WINDOW_ID}`],
  ['history', '/history'],
  ['login', '/admin/login'],
];

const { counts, check, record } = checks();
const axe = (page) => axeOn(page, AXE);

// Whether the page is wider than the viewport it was given, and which elements stick out past
// its right edge. `innerWidth` alone is not enough: a mobile viewport grows to fit content that
// overflows, so the page is compared with the width the test set as well.
async function overflow(page, width) {
  return page.evaluate((want) => {
    const w = Math.min(window.innerWidth, want);
    const sw = document.documentElement.scrollWidth;
    if (sw <= w && window.innerWidth <= want) return true;
    const wide = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > w + 0.5)
      .filter((el) => !el.parentElement || el.parentElement.getBoundingClientRect().right <= w + 0.5)
      .slice(0, 6)
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.split(' ').join('.')}` : ''} right=${Math.round(el.getBoundingClientRect().right)}`);
    return `scrollWidth ${sw}, innerWidth ${window.innerWidth}, viewport ${want}; sticking out: ${wide.join(', ')}`;
  }, width);
}

async function signIn(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(NAV_TIMEOUT);
  await page.goto(`${BASE}/admin/login`, { waitUntil: 'load' });
  await page.fill('#email', EMAIL);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('main button[type=submit]')]);
  const at = new URL(page.url()).pathname;
  await page.close();
  if (at !== '/admin') throw new Error(`sign-in landed on ${at}`);
}

async function declare(title) {
  const r = await fetch(`${BASE}/api/v1/incidents`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ title, impact: 'critical', message: 'Declared by a script while the dashboard is open.', components: { api: 'major_outage' } }),
  });
  if (r.status !== 201) throw new Error(`declare answered ${r.status}: ${await r.text()}`);
  return (await r.json()).id;
}

mkdirSync(SHOTS, { recursive: true });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  for (const [width, options] of Object.entries(WIDTHS)) {
    const anon = await browser.newContext(options);
    for (const [name, path] of PUBLIC_PAGES) {
      const page = await anon.newPage();
      page.setDefaultTimeout(NAV_TIMEOUT);
      await check(`widths ${width}px public ${path}: no sideways scrolling`, async () => {
        const r = await page.goto(`${BASE}${path}`, { waitUntil: 'load' });
        if (r.status() !== 200) return `answered ${r.status()}`;
        await page.screenshot({ path: join(SHOTS, `public-${name}-${width}.png`), fullPage: true });
        return overflow(page, Number(width));
      });
      await page.close();
    }
    await anon.close();

    const context = await browser.newContext(options);
    if (!await check(`widths ${width}px: an admin signs in`, () => signIn(context))) {
      await context.close();
      continue;
    }
    for (const [name, path] of CONSOLE_PAGES) {
      const page = await context.newPage();
      page.setDefaultTimeout(NAV_TIMEOUT);
      const errors = [];
      page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
      page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('favicon')) errors.push(m.text()); });
      const loaded = await check(`widths ${width}px console ${path}: no sideways scrolling`, async () => {
        const r = await page.goto(`${BASE}${path}`, { waitUntil: 'load' });
        if (r.status() !== 200) return `answered ${r.status()}`;
        await page.screenshot({ path: join(SHOTS, `console-${name}-${width}.png`), fullPage: true });
        return overflow(page, Number(width));
      });
      if (loaded) {
        await check(`widths ${width}px console ${path}: axe finds no violations`, () => axe(page));
        await check(`widths ${width}px console ${path}: no script errors`, () => errors.length === 0 || errors.join('\n'));
      }
      if (loaded && path === '/admin') {
        await check(`widths ${width}px console: the header names the console and the site`, async () => {
          const text = await page.locator('header.console a.brand').innerText();
          return text.includes('Candor console') || `brand reads "${text}"`;
        });
        if (width === '1280') {
          await check('widths 1280px console: the header fits one line', async () => {
            const spread = await page.evaluate(() => {
              // One line: the vertical middles of every link, button and the operator's name
              // are within a few pixels of each other.
              const items = [...document.querySelectorAll('header.console a, header.console button, header.console .who span')];
              const mids = items.map((el) => { const r = el.getBoundingClientRect(); return (r.top + r.bottom) / 2; });
              return Math.max(...mids) - Math.min(...mids);
            });
            return spread < 12 || `the header's items span ${Math.round(spread)} px vertically: it wrapped`;
          });
        }
      }
      await page.close();
    }

    if (width === '1280') {
      const page = await context.newPage();
      page.setDefaultTimeout(NAV_TIMEOUT);
      await page.goto(`${BASE}/admin`, { waitUntil: 'load' });
      await check('live: an incident a script declares appears on the open dashboard within 2 s', async () => {
        const id = await declare(`Declared by a script ${Date.now()}`);
        // The assertion's bound, not a sleep: waitForSelector returns as soon as it is there.
        await page.waitForSelector(`#live [data-incident="${id}"]`, { timeout: 2000 });
        return new URL(page.url()).pathname === '/admin' || `the page moved to ${page.url()}`;
      });
      await check('live: the most urgent incident stays on top after the swap', async () => {
        const first = await page.locator('#live section.incident').first().getAttribute('class');
        return /is-overdue|impact-critical/.test(first) || `first card is "${first}"`;
      });
      await page.close();
    }
    await context.close();
  }

  // Without scripts: the "Get updates" control opens the form; tap targets of at least 44 px.
  const noscript = await browser.newContext({ ...WIDTHS[390], javaScriptEnabled: false });
  const page = await noscript.newPage();
  page.setDefaultTimeout(NAV_TIMEOUT);
  await page.goto(`${BASE}/`, { waitUntil: 'load' });
  const hasForm = await page.locator('details.get-updates').count();
  if (hasForm) {
    await check('subscribe: "Get updates" opens the form without scripts, near the top', async () => {
      const summary = page.locator('details.get-updates > summary');
      const top = (await summary.boundingBox()).y;
      if (top > 600) return `"Get updates" is ${Math.round(top)} px down the page`;
      await summary.click();
      await page.locator('#sub-email').waitFor({ state: 'visible' });
      await page.screenshot({ path: join(SHOTS, 'public-status-subscribe-390.png'), fullPage: false });
      return true;
    });
    await check('subscribe: tap targets are at least 44 px tall, labels visible', async () => {
      const small = [];
      for (const sel of ['details.get-updates > summary', '#sub-email', 'form.subscribe button', 'form.subscribe label.check']) {
        const loc = page.locator(sel);
        for (let i = 0; i < await loc.count(); i++) {
          const b = await loc.nth(i).boundingBox();
          if (!b || b.height < 44) small.push(`${sel}[${i}] ${b ? Math.round(b.height) : 'hidden'} px`);
        }
      }
      if (!(await page.locator('label[for=sub-email]').isVisible())) small.push('the email label is not visible');
      return small.length === 0 || small.join('\n');
    });
  } else {
    record(false, 'subscribe: the status page has no "Get updates" form (no email channel in the e2e config?)');
  }
  await noscript.close();
} finally {
  await browser.close();
  writeFileSync(RESULTS, `${counts.passed} ${counts.failed}\n`);
}
