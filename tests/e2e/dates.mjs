// Dates half of tests/e2e/run.sh: an incident whose estimate lies past midnight (site zone UTC)
// and a maintenance window 3 days ahead, read by people in New York and in Tokyo. Every time on
// the page must carry its day in the reader's zone, in one 24-hour format, and the date must be
// written whenever the reader's day differs from the site's. Screenshots into $E2E_OUT.
// Prints one PASS/FAIL line per check and writes "<passed> <failed>" to $E2E_RESULTS.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this through tests/e2e/run.sh)`);
  return v;
};
const BASE = env('E2E_BASE');
const OUT = env('E2E_OUT');
const RESULTS = env('E2E_RESULTS');
const DATED_ID = env('E2E_DATED_ID');
const MAINTENANCE_ID = env('E2E_MAINTENANCE_ID');
const FIRST_ETA = new Date(env('E2E_FIRST_ETA'));
const REVISED_ETA = new Date(env('E2E_REVISED_ETA'));
const WINDOW_START = new Date(env('E2E_WINDOW_START'));
const WINDOW_END = new Date(env('E2E_WINDOW_END'));

let passed = 0;
let failed = 0;
async function check(name, fn) {
  let r;
  try { r = await fn(); } catch (e) { r = e && e.stack ? e.stack.split('\n').slice(0, 4).join('\n') : String(e); }
  if (r === true || r === undefined) { passed++; console.log(`PASS  ${name}`); } else {
    failed++;
    console.log(`FAIL  ${name}\n${String(r).split('\n').map((l) => `      ${l}`).join('\n')}`);
  }
}

// The calendar day of `d` in `zone`, as the page writes it ("Wed 2 Dec"), and its day number.
function day(d, zone) {
  const p = {};
  for (const x of new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }).formatToParts(d)) p[x.type] = x.value;
  return { text: `${p.weekday} ${p.day} ${p.month}`, key: `${p.year}-${p.month}-${p.day}` };
}
// Hours and minutes of `d` in `zone`, 24-hour.
function hm(d, zone) {
  return new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d);
}

// One format everywhere: "14:30 UTC today" / "Tue 24 Nov, 14:30 UTC" (a year when it is not this
// one), a window "Tue 24 Nov, 02:00–04:00 UTC" or "... to ...". Never AM/PM.
const ZONE = '[A-Z]{2,5}(?:[+-]\\d{1,2}(?::?\\d{2})?)?';
const ONE = `(?:\\d\\d:\\d\\d ${ZONE} (?:today|yesterday|tomorrow)|[A-Z][a-z]{2} \\d{1,2} [A-Z][a-z]{2}(?: \\d{4})?, \\d\\d:\\d\\d ${ZONE})`;
const SPAN = `(?:\\d\\d:\\d\\d–\\d\\d:\\d\\d ${ZONE} (?:today|yesterday|tomorrow)|[A-Z][a-z]{2} \\d{1,2} [A-Z][a-z]{2}(?: \\d{4})?, \\d\\d:\\d\\d–\\d\\d:\\d\\d ${ZONE}|${ONE} to ${ONE})`;
const FORMAT = new RegExp(`^(?:${ONE}|${SPAN})$`);

async function times(page) {
  return page.locator('time[data-local]').evaluateAll((els) => els.map((e) => ({
    text: e.textContent.trim(), datetime: e.getAttribute('datetime'), end: e.getAttribute('data-end'), title: e.getAttribute('title'),
  })));
}
const find = (list, d, end) => list.find((t) => new Date(t.datetime).getTime() === d.getTime()
  && (end ? t.end && new Date(t.end).getTime() === end.getTime() : !t.end));

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true, timeout: 60_000,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  // ------------------------------------------------------------ the site's own words (no script)
  {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, javaScriptEnabled: false, timezoneId: 'UTC', locale: 'en-US' });
    const page = await ctx.newPage();
    await page.goto(`${BASE}/`, { waitUntil: 'load' });
    const text = await page.locator('main').innerText();
    const today = day(new Date(), 'UTC').key;
    const etaWord = day(REVISED_ETA, 'UTC').key === today ? 'today' : 'tomorrow';
    await check('no-JS /: the revised estimate past midnight says which day', () =>
      text.includes(`We expect this fixed by ${hm(REVISED_ETA, 'UTC')} UTC ${etaWord}.`) || text);
    await check('no-JS /: the first estimate and the revision are told, with their day', () =>
      text.includes(`First estimated ${hm(FIRST_ETA, 'UTC')} UTC ${etaWord}, revised once.`) || text);
    await check('no-JS /: the future window reads "Scheduled for <date>, 02:00–04:00 UTC" and names what goes under maintenance', () =>
      (text.includes(`Scheduled for ${day(WINDOW_START, 'UTC').text}, 02:00–04:00 UTC`)
        && text.includes('Will be under maintenance: Public API')) || text);
    await page.goto(`${BASE}/incidents/${MAINTENANCE_ID}`, { waitUntil: 'load' });
    const m = await page.locator('main').innerText();
    await check('no-JS window page: planned work, no "none impact", no "began", no "(operational)"', () =>
      (m.includes('Planned maintenance · Scheduled') && !/none impact|began|\(operational\)/.test(m)) || m);
    await page.goto(`${BASE}/history`, { waitUntil: 'load' });
    const h = await times(page);
    await check('no-JS /history: every time carries its date', () =>
      (h.length > 0 && h.every((t) => /^[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2}(?: \d{4})?, \d\d:\d\d UTC$/.test(t.text)))
        || JSON.stringify(h.map((t) => t.text)));
    await ctx.close();
  }

  // ------------------------------------------------------------ readers in two zones
  for (const [zone, label] of [['America/New_York', 'new-york'], ['Asia/Tokyo', 'tokyo']]) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: zone, locale: 'en-US' });
    for (const [path, shot] of [['/', 'status'], [`/incidents/${DATED_ID}`, 'incident'], [`/incidents/${MAINTENANCE_ID}`, 'maintenance']]) {
      const page = await ctx.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${BASE}${path}`, { waitUntil: 'load' });
      await page.screenshot({ path: join(OUT, `dates-${label}-${shot}.png`), fullPage: true });
      const list = await times(page);
      await check(`${zone} ${path}: every time is in one 24-hour format with its day, no AM/PM`, () => {
        const bad = list.filter((t) => !FORMAT.test(t.text) || /\b(AM|PM)\b/.test(t.text));
        return (list.length > 0 && bad.length === 0) || `not in the format: ${JSON.stringify(bad.map((t) => t.text))}`;
      });
      await check(`${zone} ${path}: the site's own wording is kept as each time's title`, () =>
        list.every((t) => t.title && / UTC\b/.test(t.title)) || JSON.stringify(list.slice(0, 3)));
      await check(`${zone} ${path}: no script errors`, () => errors.length === 0 || errors.join('\n'));
      // Where the reader's day differs from the site's, the date must be written out.
      const dated = (t, d) => {
        if (!t) return 'the time is not on the page';
        const differs = day(d, zone).key !== day(d, 'UTC').key;
        if (!t.text.includes(hm(d, zone))) return `"${t.text}" does not say ${hm(d, zone)}`;
        if (differs && !t.text.startsWith(day(d, zone).text)) return `"${t.text}" lacks the reader's date ${day(d, zone).text}`;
        return true;
      };
      if (shot !== 'maintenance') {
        await check(`${zone} ${path}: the revised estimate reads in the reader's zone with the reader's date`, () =>
          dated(find(list, REVISED_ETA), REVISED_ETA));
        await check(`${zone} ${path}: the first estimate too`, () => dated(find(list, FIRST_ETA), FIRST_ETA));
      }
      if (shot !== 'incident') {
        await check(`${zone} ${path}: the window reads as one span, with the reader's date`, () =>
          dated(find(list, WINDOW_START, WINDOW_END), WINDOW_START));
      }
      await page.close();
    }
    await ctx.close();
  }
} catch (e) {
  failed++;
  console.log(`FAIL  dates.mjs stopped early\n${e && e.stack ? e.stack : e}`);
} finally {
  await browser.close().catch(() => {});
  writeFileSync(RESULTS, `${passed} ${failed}\n`);
}
process.exit(failed ? 1 : 0);
