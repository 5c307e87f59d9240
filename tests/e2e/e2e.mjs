// Browser half of tests/e2e/run.sh: drives Debian's Chromium with playwright-core (no browser
// download) against a Candor that run.sh started and seeded. Prints one PASS/FAIL line per
// check and writes "<passed> <failed>" to $E2E_RESULTS for run.sh's summary.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this through tests/e2e/run.sh)`);
  return v;
};
const BASE = env('E2E_BASE');
const ACTIVE_ID = env('E2E_ACTIVE_ID');
const ACTIVE_TITLE = env('E2E_ACTIVE_TITLE');
const RESOLVED_TITLE = env('E2E_RESOLVED_TITLE');
const OUT = env('E2E_OUT');
const AXE = env('E2E_AXE');
const RESULTS = env('E2E_RESULTS');
// The seeded active incident is major with a partial outage: Statuspage's "Partial System Outage".
const BANNER = process.env.E2E_BANNER || 'Partial System Outage';

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const DESKTOP = { viewport: { width: 1280, height: 900 } };
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
const NAV_TIMEOUT = 15_000;

let passed = 0;
let failed = 0;
const failures = [];

function record(ok, name, detail) {
  if (ok) {
    passed++;
    console.log(`PASS  ${name}`);
  } else {
    failed++;
    failures.push(name);
    console.log(`FAIL  ${name}${detail ? `\n${indent(detail)}` : ''}`);
  }
}
const notes = new Set();
function noteOnce(msg) {
  if (!notes.has(msg)) { notes.add(msg); console.log(`NOTE  ${msg}`); }
}
const indent = (s) => String(s).split('\n').map((l) => `      ${l}`).join('\n');

// Runs one check; an exception inside it is that check's failure, not the run's end.
async function check(name, fn) {
  try {
    const r = await fn();
    if (r === true || r === undefined) record(true, name);
    else record(false, name, typeof r === 'string' ? r : JSON.stringify(r, null, 2));
  } catch (e) {
    record(false, name, e && e.stack ? e.stack.split('\n').slice(0, 4).join('\n') : String(e));
  }
}

// A page with its console errors and uncaught exceptions collected.
async function open(context, path) {
  const page = await context.newPage();
  page.setDefaultTimeout(NAV_TIMEOUT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const where = m.location() && m.location().url ? new URL(m.location().url) : null;
    // Browsers ask for /favicon.ico on their own and the pages declare no icon: noted, not failed.
    if (where && where.pathname === '/favicon.ico') {
      noteOnce(`GET /favicon.ico is a 404 (the pages declare no icon, so browsers ask for it): ${m.text()}`);
      return;
    }
    errors.push(`console.error: ${m.text()}${where ? ` (${where.pathname}${where.search})` : ''}`);
  });
  const resp = await page.goto(BASE + path, { waitUntil: 'load', timeout: NAV_TIMEOUT });
  return { page, resp, errors };
}

async function visibleText(page, selector) {
  const loc = page.locator(selector);
  const n = await loc.count();
  if (n === 0) return { ok: false, why: `no element matches ${selector}` };
  for (let i = 0; i < n; i++) {
    if (!(await loc.nth(i).isVisible())) return { ok: false, why: `${selector} #${i} is not visible` };
  }
  return { ok: true, texts: await loc.allInnerTexts() };
}

async function expectVisibleText(page, text) {
  const loc = page.getByText(text, { exact: false });
  const n = await loc.count();
  if (n === 0) return `"${text}" is nowhere on the page`;
  for (let i = 0; i < n; i++) if (await loc.nth(i).isVisible()) return true;
  return `"${text}" is on the page but not visible`;
}

async function axe(page) {
  // Evaluated through the debugging protocol, not as a <script> tag: the pages' CSP allows no
  // inline script, and axe is the test's, not the page's.
  await page.evaluate(readFileSync(AXE, 'utf8'));
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary, html: n.html })),
    }));
  });
  if (res.length === 0) return true;
  return res
    .map((v) => [
      `${v.id} (${v.impact}): ${v.help}`,
      ...v.nodes.slice(0, 8).map((n) => `  target: ${n.target}\n    html: ${n.html.slice(0, 200)}\n    ${String(n.summary).replace(/\n/g, '\n    ')}`),
      ...(v.nodes.length > 8 ? [`  ... and ${v.nodes.length - 8} more`] : []),
    ].join('\n'))
    .join('\n');
}

const components = (await (await fetch(`${BASE}/api/v1/components`)).json()).components;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: CHROMIUM_ARGS,
  timeout: 60_000,
});

try {
  // ---------------------------------------------------------------- desktop: content
  const desktop = await browser.newContext({ ...DESKTOP, timezoneId: 'UTC', locale: 'en-US' });
  {
    const { page, resp, errors } = await open(desktop, '/');
    await check('desktop /: answers 200', () => resp.status() === 200 || `status ${resp.status()}`);
    await page.screenshot({ path: join(OUT, 'status-desktop.png'), fullPage: true });

    await check(`desktop /: banner says "${BANNER}"`, async () => {
      const v = await visibleText(page, '.banner h1');
      if (!v.ok) return v.why;
      return v.texts[0].trim() === BANNER || `banner says "${v.texts[0].trim()}"`;
    });
    await check('desktop /: active incident title is visible under "Active incidents"', async () => {
      const t = page.locator('section[aria-labelledby="active-h"] article.incident h3', { hasText: ACTIVE_TITLE });
      return (await t.count()) === 1 && (await t.isVisible()) || 'not found or not visible';
    });
    await check('desktop /: "We expect this fixed by" is visible', () => expectVisibleText(page, 'We expect this fixed by'));
    await check('desktop /: "Next update by" is visible', () => expectVisibleText(page, 'Next update by'));
    await check('desktop /: the estimate is shown as revised once', () => expectVisibleText(page, 'revised once'));
    await check('desktop /: every component name is visible', async () => {
      const names = await page.locator('.cname').allInnerTexts();
      const missing = components.filter((c) => !names.map((n) => n.trim()).includes(c.name));
      if (missing.length) return `missing: ${missing.map((c) => c.name).join(', ')} (page has ${names.join(', ')})`;
      for (const c of components) {
        if (!(await page.locator('.cname', { hasText: c.name }).first().isVisible())) return `${c.name} not visible`;
      }
      return true;
    });
    await check('desktop /: one visible day bar (.bar) per component, each with days', async () => {
      const bars = page.locator('.bar');
      const n = await bars.count();
      if (n !== components.length) return `${n} bars for ${components.length} components`;
      for (let i = 0; i < n; i++) {
        const bar = bars.nth(i);
        if (!(await bar.isVisible())) return `bar #${i} not visible`;
        const box = await bar.boundingBox();
        const days = await bar.locator(':scope > *').count();
        if (days < 7) return `bar #${i} has ${days} days`;
        if (!box || box.width < 200 || box.height < 8) return `bar #${i} is ${JSON.stringify(box)}`;
      }
      return true;
    });
    await check("desktop /: today's day of the affected components links to the active incident", async () => {
      const links = page.locator(`.bar a[href="/incidents/${ACTIVE_ID}"]`);
      return (await links.count()) >= 2 || `${await links.count()} bar links to /incidents/${ACTIVE_ID}`;
    });
    await check('desktop /: resolved incident is listed under "Past incidents"', async () => {
      const t = page.locator('section[aria-labelledby="past-h"]').getByRole('link', { name: RESOLVED_TITLE });
      return (await t.count()) === 1 && (await t.isVisible()) || 'not found or not visible';
    });
    await check('desktop /: no console errors or uncaught exceptions', () => errors.length === 0 || errors.join('\n'));

    await check('keyboard /: the first Tab reaches "Skip to content", shown on screen', async () => {
      await page.reload({ waitUntil: 'load' });
      await page.keyboard.press('Tab');
      const f = await page.evaluate(() => {
        const el = document.activeElement;
        const r = el.getBoundingClientRect();
        return { tag: el.tagName, text: el.textContent.trim(), href: el.getAttribute('href'), x: r.left, y: r.top, w: r.width, h: r.height };
      });
      if (f.text !== 'Skip to content') return `first Tab focused <${f.tag.toLowerCase()}> "${f.text}"`;
      if (f.x < 0 || f.y < 0 || f.w < 1 || f.h < 1 || f.x > 1280) return `focused skip link is off screen: ${JSON.stringify(f)}`;
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => location.hash === '#main', null, { timeout: 3000 });
      return true;
    });
    await page.close();
  }
  {
    const { page, resp, errors } = await open(desktop, `/incidents/${ACTIVE_ID}`);
    await check(`desktop /incidents/${ACTIVE_ID}: answers 200`, () => resp.status() === 200 || `status ${resp.status()}`);
    await page.screenshot({ path: join(OUT, 'incident-desktop.png'), fullPage: true });
    await check(`desktop /incidents/${ACTIVE_ID}: title, estimate, next update and both updates are visible`, async () => {
      for (const t of [ACTIVE_TITLE, 'We expect this fixed by', 'Next update by', 'About 20% of API requests fail', 'A bad deploy']) {
        const r = await expectVisibleText(page, t);
        if (r !== true) return r;
      }
      return true;
    });
    await check(`desktop /incidents/${ACTIVE_ID}: no console errors`, () => errors.length === 0 || errors.join('\n'));
    await page.close();
  }
  await desktop.close();

  // ---------------------------------------------------------------- phone
  const phone = await browser.newContext({ ...PHONE, timezoneId: 'UTC', locale: 'en-US' });
  {
    const { page } = await open(phone, '/');
    await page.screenshot({ path: join(OUT, 'status-phone.png'), fullPage: true });
    await check('phone /: no horizontal scrolling at 390 px', async () => {
      const w = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
      return w.scroll <= w.client || `page is ${w.scroll} px wide in a ${w.client} px viewport`;
    });
    await check('phone /: banner, active incident, estimate and bars are visible', async () => {
      for (const t of [BANNER, ACTIVE_TITLE, 'We expect this fixed by', 'Next update by']) {
        const r = await expectVisibleText(page, t);
        if (r !== true) return r;
      }
      const bars = page.locator('.bar');
      if ((await bars.count()) !== components.length) return `${await bars.count()} bars`;
      for (let i = 0; i < components.length; i++) if (!(await bars.nth(i).isVisible())) return `bar #${i} not visible`;
      return true;
    });
    await page.close();
    const p2 = await open(phone, `/incidents/${ACTIVE_ID}`);
    await p2.page.screenshot({ path: join(OUT, 'incident-phone.png'), fullPage: true });
    await p2.page.close();
  }
  await phone.close();

  // ---------------------------------------------------------------- accessibility (axe-core)
  for (const [label, opts] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const ctx = await browser.newContext({ ...opts, timezoneId: 'UTC', locale: 'en-US' });
    for (const path of ['/', `/incidents/${ACTIVE_ID}`, '/history', '/incidents/999999']) {
      await check(`axe ${label} ${path}: no violations`, async () => {
        const { page } = await open(ctx, path);
        try { return await axe(page); } finally { await page.close(); }
      });
    }
    await ctx.close();
  }

  // ---------------------------------------------------------------- without JavaScript
  let utcDatetimes = null;
  {
    const ctx = await browser.newContext({ ...DESKTOP, javaScriptEnabled: false, timezoneId: 'Europe/Berlin', locale: 'en-US' });
    const { page } = await open(ctx, '/');
    await check('no-JS /: the active incident, its estimate and next update are shown', async () => {
      for (const t of [ACTIVE_TITLE, 'We expect this fixed by', 'Next update by']) {
        const r = await expectVisibleText(page, t);
        if (r !== true) return r;
      }
      return true;
    });
    await check('no-JS /: every <time> reads in UTC with its day ("14:30 UTC today", "Tue 24 Nov, 14:30 UTC")', async () => {
      const times = await page.locator('time').evaluateAll((els) => els.map((e) => ({ text: e.textContent.trim(), datetime: e.getAttribute('datetime') })));
      if (times.length === 0) return 'no <time> elements';
      const bad = times.filter((t) => !/ UTC( (today|yesterday|tomorrow))?$/.test(t.text));
      const eta = await page.locator('p.eta time').count();
      if (eta === 0) return 'the estimate has no <time>';
      return bad.length === 0 || `not in UTC: ${bad.map((t) => `"${t.text}"`).join(', ')}`;
    });
    utcDatetimes = await page.locator('time[data-local]').evaluateAll((els) => els.map((e) => ({ text: e.textContent.trim(), datetime: e.getAttribute('datetime') })));
    await ctx.close();
  }

  // ---------------------------------------------------------------- local time (Europe/Berlin)
  {
    const ctx = await browser.newContext({ ...DESKTOP, timezoneId: 'Europe/Berlin', locale: 'en-US' });
    const { page, errors } = await open(ctx, '/');
    await check('Berlin /: <time data-local> are rewritten to local time, datetime unchanged', async () => {
      const times = await page.locator('time[data-local]').evaluateAll((els) => els.map((e) => ({ text: e.textContent.trim(), datetime: e.getAttribute('datetime'), title: e.getAttribute('title') })));
      if (times.length === 0) return 'no <time data-local> elements';
      const still = times.filter((t) => / UTC( |$)/.test(t.text));
      if (still.length) return `still in UTC: ${still.map((t) => `"${t.text}"`).join(', ')}`;
      if (utcDatetimes.length !== times.length) return `${times.length} times with JS, ${utcDatetimes.length} without`;
      const changed = times.filter((t, i) => t.datetime !== utcDatetimes[i].datetime);
      if (changed.length) return `datetime changed: ${JSON.stringify(changed)}`;
      const noTitle = times.filter((t, i) => t.title !== utcDatetimes[i].text);
      if (noTitle.length) return `the UTC text is not kept as title: ${JSON.stringify(noTitle.slice(0, 3))}`;
      return true;
    });
    await check('Berlin /: no console errors', () => errors.length === 0 || errors.join('\n'));
    await page.screenshot({ path: join(OUT, 'status-berlin.png'), fullPage: true });
    // Times written as plain text (not <time data-local>) stay in UTC next to localised ones.
    const plain = await page.locator('main').evaluate((main) => {
      const out = [];
      const walk = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
      for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        if (n.parentElement.closest('time[data-local]')) continue;
        const m = n.textContent.match(/[^.]*\b\d{1,2}:\d{2}\s*UTC\b[^.]*/g);
        if (m) out.push(...m.map((x) => x.trim()));
      }
      return out;
    });
    for (const t of plain) noteOnce(`Berlin /: a time outside <time data-local> stays in UTC beside localised ones: "${t}"`);
    await ctx.close();
  }
} catch (e) {
  record(false, 'browser run stopped early', e && e.stack ? e.stack : String(e));
} finally {
  await browser.close().catch(() => {});
  writeFileSync(RESULTS, `${passed} ${failed}\n`);
}
if (notes.size) {
  console.log(`\nnotes (not counted as failures):\n${[...notes].map((n) => `  - ${n}`).join('\n')}`);
}
if (failures.length) {
  console.log(`\nbrowser checks failed:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
}
process.exit(failed ? 1 : 0);
