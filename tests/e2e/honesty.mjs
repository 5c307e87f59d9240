// The honesty record in a browser (tests/e2e/run.sh): the promise record on the status page, a
// corrected update on its incident's page, and a postmortem written, previewed and published
// from the console with one overdue action item. Screenshots to $E2E_SHOTS (honesty-*.png);
// "<passed> <failed>" to $E2E_RESULTS.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { axe, checks, CHROMIUM_ARGS, env } from './lib.mjs';

const BASE = env('E2E_BASE');
const EMAIL = env('E2E_OPERATOR_EMAIL');
const PASSWORD = env('E2E_OPERATOR_PASSWORD');
const SHOTS = env('E2E_SHOTS');
const RESULTS = env('E2E_RESULTS');
const AXE = env('E2E_AXE');
const ID = env('E2E_HONESTY_ID');

const { counts, check } = checks();
const day = (offset) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);

  await check('honesty: the status page shows the promise record with one sentence per figure', async () => {
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    const record = page.locator('section.record');
    await record.waitFor();
    const text = await record.innerText();
    await record.screenshot({ path: join(SHOTS, 'honesty-record.png') });
    const want = ['How we kept our word', 'Updates on time', 'Estimates of the fix', 'First estimates', 'Alert to first post'];
    const missing = want.filter((w) => !text.includes(w));
    return missing.length === 0 || `missing: ${missing.join(', ')}\n${text}`;
  });

  await check('honesty: the corrected update keeps its words, marked "Corrected at"', async () => {
    await page.goto(`${BASE}/incidents/${ID}`, { waitUntil: 'load' });
    const c = page.locator('.correction').first();
    await c.waitFor();
    const text = await c.innerText();
    const original = await page.locator('.message.corrected').first().innerText();
    await page.locator('ol.timeline').first().screenshot({ path: join(SHOTS, 'honesty-correction.png') });
    return (text.includes('Corrected at') && text.includes('EU region') && original.includes('US region'))
      || `correction: ${text}\noriginal: ${original}`;
  });

  if (await check('honesty: the operator signs in', async () => {
    await page.goto(`${BASE}/admin/login`, { waitUntil: 'load' });
    await page.fill('#email', EMAIL);
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    return new URL(page.url()).pathname === '/admin' || `landed on ${page.url()}`;
  })) {
    await check('honesty: a postmortem is saved and previewed without the injected script', async () => {
      await page.goto(`${BASE}/admin/incidents/${ID}`, { waitUntil: 'load' });
      await page.fill('#pm-body', '## What happened\n\nA search index rebuild ran in the **EU region** during peak hours.<script>alert("x")</script>\n\n## Why it took 40 minutes\n\n- The rollback needed a full reindex\n- Our alert fired late\n\n<img src=x onerror="alert(1)">');
      await Promise.all([page.waitForNavigation(), page.click('#postmortem-form button[type=submit]')]);
      const preview = await page.locator('#pm-preview').innerHTML();
      await page.locator('#postmortem-section').screenshot({ path: join(SHOTS, 'honesty-postmortem-preview.png') });
      return (preview.includes('<h2>What happened</h2>') && !preview.includes('script') && !preview.includes('onerror'))
        || preview;
    });
    await check('honesty: action items are added (one due yesterday) and the postmortem published', async () => {
      for (const [text, owner, due] of [
        ['Alert on search latency above 2 s', 'Search team', day(-1)],
        ['Run index rebuilds outside peak hours', 'Platform team', day(30)],
      ]) {
        await page.fill('#action-text', text);
        await page.fill('#action-owner', owner);
        await page.fill('#action-due', due);
        await Promise.all([page.waitForNavigation(), page.click('#action-form button[type=submit]')]);
      }
      await Promise.all([page.waitForNavigation(), page.click('#postmortem-publish button[type=submit]')]);
      return (await page.locator('#postmortem-section').innerText()).includes('Published') || 'not published';
    });
  }

  await check('honesty: the incident page shows the published postmortem, the overdue item marked', async () => {
    // The public pages are rebuilt just after the commit: reload until it shows (10 s at most).
    const pm = page.locator('section.postmortem');
    for (let i = 0; i < 20; i++) {
      await page.goto(`${BASE}/incidents/${ID}`, { waitUntil: 'load' });
      if (await pm.count() > 0) break;
      await page.waitForTimeout(500);
    }
    await pm.waitFor();
    await page.screenshot({ path: join(SHOTS, 'honesty-incident.png'), fullPage: true });
    await pm.screenshot({ path: join(SHOTS, 'honesty-postmortem.png') });
    const overdue = await page.locator('.postmortem li.overdue').allInnerTexts();
    const html = await pm.innerHTML();
    return (overdue.length === 1 && overdue[0].includes('Alert on search latency') && !html.includes('<script'))
      || `overdue: ${JSON.stringify(overdue)}`;
  });
  await check('honesty: the incident page passes axe-core', () => axe(page, AXE));
  writeFileSync(join(SHOTS, 'honesty-incident.html'), await page.content());
} finally {
  await browser.close();
  writeFileSync(RESULTS, `${counts.passed} ${counts.failed}\n`);
}
