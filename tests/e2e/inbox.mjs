// The inbox half of tests/e2e/run.sh: a second Candor listens to a stand-in Mastodon (this
// script's own HTTP server: /api/v2/instance, /api/v1/statuses, /api/v1/notifications with its
// Link header, /api/v1/statuses/:id/context). An incident is declared, customers reply and
// mention the account, an operator claims one conversation and answers it, claims another, and
// leaves two waiting; the inbox is screenshotted at 1,280 and 390 px with claimed, answered and
// waiting conversations, and the dashboard with its "waiting" flag. "<passed> <failed>" is
// written to $E2E_RESULTS; screenshots go to $E2E_SHOTS.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { axe, checks, CHROMIUM_ARGS, env } from './lib.mjs';

const BIN = env('E2E_BIN');
const CONFIG = env('E2E_CONFIG');
const TMP = env('E2E_TMP');
const SHOTS = env('E2E_SHOTS');
const RESULTS = env('E2E_RESULTS');
const AXE = env('E2E_AXE');
const OUT = env('E2E_OUT');
const EMAIL = 'inbox-operator@example.com';
const PASSWORD = `inbox-operator-password-${process.pid}`;
const { counts, check } = checks();
mkdirSync(SHOTS, { recursive: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () => new Promise((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});

// ---- the stand-in Mastodon ------------------------------------------------------------------
const masto = { notes: [], posted: [], ancestors: {} };
const acct = (a) => ({ id: `acc-${a}`, acct: a, username: a.split('@')[0], display_name: a.split('@')[0].replace(/^./, (c) => c.toUpperCase()), url: `https://far.example/@${a}` });
function mention(id, a, parent, html) {
  const at = new Date().toISOString();
  return { id: String(id), type: 'mention', created_at: at, account: acct(a),
    status: { id: `9${String(id).padStart(4, '0')}`, created_at: at, in_reply_to_id: parent, content: html,
      url: `https://far.example/@${a}/9${String(id).padStart(4, '0')}`, account: acct(a) } };
}
const mastoPort = await freePort();
const mastoBase = `http://127.0.0.1:${mastoPort}`;
const server = createServer((req, res) => {
  const u = new URL(req.url, mastoBase);
  const json = (code, v, headers = {}) => { res.writeHead(code, { 'content-type': 'application/json', 'x-ratelimit-limit': '300', 'x-ratelimit-remaining': '290', 'x-ratelimit-reset': new Date(Date.now() + 300_000).toISOString(), ...headers }); res.end(JSON.stringify(v)); };
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    if (u.pathname === '/api/v2/instance') return json(200, { configuration: { statuses: { max_characters: 500, characters_reserved_per_url: 23 } } });
    if (u.pathname === '/api/v1/statuses' && req.method === 'POST') {
      masto.posted.push(Object.fromEntries(new URLSearchParams(body)));
      const id = 1000 + masto.posted.length;
      return json(200, { id: String(id), url: `https://social.example/@acme/${id}` });
    }
    if (u.pathname === '/api/v1/notifications') {
      const min = u.searchParams.get('min_id');
      let page = masto.notes.filter((n) => min === null || Number(n.id) > Number(min)).slice(0, 40);
      page = page.reverse();
      const headers = page.length ? { link: `<${mastoBase}/api/v1/notifications?max_id=${page[page.length - 1].id}>; rel="next", <${mastoBase}/api/v1/notifications?min_id=${page[0].id}>; rel="prev"` } : {};
      return json(200, page, headers);
    }
    const ctx = u.pathname.match(/^\/api\/v1\/statuses\/(\d+)\/context$/);
    if (ctx) return json(200, { ancestors: (masto.ancestors[ctx[1]] || []).map((id) => ({ id })), descendants: [] });
    json(404, { error: 'Record not found' });
  });
});
await new Promise((r) => server.listen(mastoPort, '127.0.0.1', r));

// ---- a second Candor, listening to it -------------------------------------------------------
const port = await freePort();
const BASE = `http://127.0.0.1:${port}`;
let yaml = readFileSync(CONFIG, 'utf8')
  .replace(/url: "sqlite:\/\/[^"]*"/, `url: "sqlite://${TMP}/inbox.db"`)
  .replace(/public_url: "[^"]*"/, `public_url: "${BASE}"`)
  .replace('inbox:\n  channels: []', 'inbox:\n  channels: [masto]')
  .replace(/\n  poll_every: 60s/, '\n  poll_every: 1s')
  .replace(/\n  unclaimed_after: 15m/, '\n  unclaimed_after: 3s')
  .replace('\nchannels:\n', `\nchannels:\n  masto:\n    type: mastodon\n    instance: "${mastoBase}"\n    access_token: "e2e-masto-token"\n`);
writeFileSync(join(TMP, 'inbox.yaml'), yaml);
const CONF = ['--config', join(TMP, 'inbox.yaml')];
const token = spawnSync(BIN, [...CONF, 'token', 'create', '--name', 'inbox-e2e'], { encoding: 'utf8' }).stdout.trim().split('\n').pop();
spawnSync(BIN, [...CONF, 'operator', 'add', '--email', EMAIL, '--role', 'responder'], { input: `${PASSWORD}\n`, encoding: 'utf8' });
const candor = spawn(BIN, [...CONF, 'serve', '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
let candorLog = '';
candor.stderr.on('data', (d) => { candorLog += d; });
const api = async (method, path, body) => {
  const r = await fetch(`${BASE}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
};
const until = async (what, fn, ms = 15_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
};

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
try {
  await until('Candor to be ready', async () => (await fetch(`${BASE}/readyz`).catch(() => ({ status: 0 }))).status === 200);
  const incident = await api('POST', '/api/v1/incidents', { title: 'Elevated API error rates', impact: 'major',
    message: 'About 20% of API requests fail with 502. We are looking into it.', components: { api: 'partial_outage' }, eta_in: '45m' });
  const id = incident.id;
  await until('the incident posted to Mastodon', () => masto.posted.length >= 1);
  masto.notes.push(mention(10, 'ann@far.example', '1001', '<p><span class="h-card"><a href="https://social.example/@acme" class="u-url mention">@<span>acme</span></a></span> still getting 502s from Frankfurt, is my data safe?</p>'));
  masto.notes.push(mention(11, 'bob', '1001', '<p>Same here, our checkout is down. &lt;script&gt;alert("x")&lt;/script&gt; (pasted from our logs)</p>'));
  masto.notes.push(mention(12, 'carol@else.example', null, '<p>@acme is the API down? Nothing on my side changed.</p>'));
  masto.notes.push(mention(13, 'dave@mastodon.example', '90011', '<p>+1, since 14:02 UTC<br>three regions affected</p>'));
  masto.ancestors['90013'] = ['1001', '90011'];

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('dialog', (d) => { errors.push(`a dialog opened: ${d.message()}`); d.dismiss(); });
  const inbox = `${BASE}/admin/incidents/${id}/inbox`;

  await check('inbox: signs in', async () => {
    await page.goto(`${BASE}/admin/login`);
    await page.fill('#email', EMAIL);
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    return new URL(page.url()).pathname === '/admin' || `landed on ${page.url()}`;
  });
  await check('inbox: four customers appear, one card each', async () => {
    await until('four conversations', async () => {
      await page.goto(inbox);
      return (await page.locator('section.conversation').count()) === 4;
    });
  });
  await check('inbox: claims Ann and answers her in her thread', async () => {
    const ann = page.locator('section.conversation', { hasText: '@ann@far.example' });
    await Promise.all([page.waitForNavigation(), ann.getByRole('button', { name: 'Claim' }).click()]);
    const again = page.locator('section.conversation', { hasText: '@ann@far.example' });
    await again.locator('textarea').fill("You're right, and we're sorry: Frankfurt is affected and your data is safe. We'll tell you here when it's fixed.");
    await Promise.all([page.waitForNavigation(), again.getByRole('button', { name: 'Send answer' }).click()]);
    await until('the answer posted', () => masto.posted.some((p) => p.in_reply_to_id === '90010'));
    const p = masto.posted.find((x) => x.in_reply_to_id === '90010');
    return p.status.startsWith('@ann@far.example You') || JSON.stringify(p);
  });
  await check('inbox: claims Bob without answering yet', async () => {
    const bob = page.locator('section.conversation', { hasText: '@bob on' });
    await Promise.all([page.waitForNavigation(), bob.getByRole('button', { name: 'Claim' }).click()]);
  });
  await check('inbox: answered, claimed and waiting conversations are shown as such', async () => {
    await until('the answer delivered', async () => {
      await page.goto(inbox);
      return (await page.locator('li.from-answer .state-delivered').count()) === 1;
    });
    const states = await page.locator('section.conversation').evaluateAll((s) => s.map((e) => e.dataset.state));
    return JSON.stringify(states.sort()) === JSON.stringify(['answered', 'claimed', 'waiting', 'waiting']) || states;
  });
  await check('inbox: customers\' words are text, never markup', async () => {
    const text = await page.locator('section.conversation', { hasText: '@bob on' }).innerText();
    return (text.includes('<script>alert("x")</script>') && errors.length === 0) || { text, errors };
  });
  await check('inbox: the waiting conversations are flagged', async () => {
    await until('the flag', async () => { await page.goto(inbox); return (await page.locator('section.conversation.is-overdue').count()) === 2; });
  });
  await page.screenshot({ path: join(SHOTS, 'inbox.png'), fullPage: true });
  await check('inbox: the page saved for the HTML checker', async () => {
    const resp = await context.request.get(inbox);
    if (resp.status() !== 200) return `GET ${inbox} answered ${resp.status()}`;
    writeFileSync(join(OUT, 'console-inbox.html'), await resp.text());
  });
  await check('inbox: axe-core finds no violations', () => axe(page, AXE));
  await check('inbox: no sideways scrolling at 390 px', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(inbox);
    await page.screenshot({ path: join(SHOTS, 'inbox-phone.png'), fullPage: true });
    return await page.evaluate(() => document.documentElement.scrollWidth <= 390) || 'wider than the viewport';
  });
  await page.setViewportSize({ width: 1280, height: 900 });
  await check('dashboard: the incident shows customers waiting', async () => {
    await page.goto(`${BASE}/admin`);
    const flag = await page.locator('[data-inbox-waiting]').innerText();
    await page.screenshot({ path: join(SHOTS, 'inbox-dashboard.png'), fullPage: true });
    return flag.includes('2 customers waiting') || flag;
  });
} catch (e) {
  counts.failed++;
  console.log(`FAIL  inbox: ${e.stack || e}\n${candorLog.split('\n').slice(-20).join('\n')}`);
} finally {
  if (counts.failed) console.log(candorLog.split('\n').filter((l) => /ERROR|WARN/.test(l)).slice(-10).join('\n'));
  await browser.close();
  candor.kill('SIGTERM');
  server.close();
  writeFileSync(RESULTS, `${counts.passed} ${counts.failed}\n`);
}
