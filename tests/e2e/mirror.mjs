// A mirror whose heartbeat is old, in a browser (run by tests/mirror/check.py against nginx
// serving the mirror's directory, with Candor stopped): the banner says how old the page is,
// a fresh heartbeat hides it, and without scripts the page is still the page. Screenshots to
// $E2E_SHOTS (mirror-*.png); "<passed> <failed>" to $E2E_RESULTS.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { checks, CHROMIUM_ARGS, env } from './lib.mjs';

const BASE = env('E2E_BASE');
const SHOTS = env('E2E_SHOTS');
const RESULTS = env('E2E_RESULTS');
const DIR = env('E2E_MIRROR_DIR');

const { counts, check } = checks();
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);

  await check('mirror: an old heartbeat shows the staleness banner', async () => {
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    const banner = page.locator('#heartbeat-banner');
    await banner.waitFor({ state: 'visible' });
    const text = await banner.innerText();
    await page.screenshot({ path: join(SHOTS, 'mirror-stale.png') });
    return /last updated 1[45] minutes ago; we may be having trouble updating it/.test(text) || text;
  });

  await check('mirror: the banner shows on an incident page too', async () => {
    await page.goto(`${BASE}/incidents/1`, { waitUntil: 'load' });
    await page.locator('#heartbeat-banner').waitFor({ state: 'visible' });
    await page.screenshot({ path: join(SHOTS, 'mirror-stale-incident.png') });
  });

  await check('mirror: a fresh heartbeat hides the banner', async () => {
    writeFileSync(join(DIR, 'heartbeat.json'), JSON.stringify({ updated_at: new Date().toISOString().slice(0, 19) + 'Z', revision: 2 }));
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    // The script has run once the heartbeat was fetched: wait for that response, then look.
    await page.waitForResponse((r) => r.url().endsWith('/heartbeat.json')).catch(() => {});
    await page.waitForTimeout(300);
    return !(await page.locator('#heartbeat-banner').isVisible()) || 'banner visible with a fresh heartbeat';
  });

  await check('mirror: without scripts the page still reads (no banner, the status is there)', async () => {
    const noJs = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 390, height: 844 } });
    const p = await noJs.newPage();
    await p.goto(`${BASE}/`, { waitUntil: 'load' });
    const h1 = await p.locator('h1').first().innerText();
    const hidden = !(await p.locator('#heartbeat-banner').isVisible());
    await p.screenshot({ path: join(SHOTS, 'mirror-no-script.png'), fullPage: true });
    await noJs.close();
    return (h1.length > 0 && hidden) || `h1 ${h1}, banner hidden ${hidden}`;
  });

  await check('mirror: links work without server-side routing (incident page, history month)', async () => {
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    await Promise.all([page.waitForNavigation(), page.locator('footer a', { hasText: 'Incident history' }).click()]);
    const title = await page.locator('h1').first().innerText();
    return title.startsWith('Incident history') || `landed on ${page.url()}: ${title}`;
  });
} finally {
  await browser.close();
  writeFileSync(RESULTS, `${counts.passed} ${counts.failed}`);
}
