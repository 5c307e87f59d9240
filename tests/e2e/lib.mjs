// What the browser checks of tests/e2e/run.sh share: their settings from the environment, how
// Chromium is started, one PASS/FAIL line per check with the counts run.sh reads back, and
// axe-core run on a page.
import { readFileSync } from 'node:fs';

/// A setting run.sh passes in the environment; missing, the script cannot run.
export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run this through tests/e2e/run.sh)`);
  return v;
};

/// Debian's Chromium, headless, with nothing reaching out to the network by itself.
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/// One PASS/FAIL line per check. `check` runs one; an exception inside it is that check's
/// failure; it returns whether it passed, so a flow can stop once a step it needs has failed.
/// A check passes when its function returns true or nothing; a string or value is the reason.
export function checks() {
  const counts = { passed: 0, failed: 0 };
  function record(ok, name, detail) {
    if (ok) {
      counts.passed++;
      console.log(`PASS  ${name}`);
    } else {
      counts.failed++;
      console.log(`FAIL  ${name}${detail ? `\n${String(detail).split('\n').map((l) => `      ${l}`).join('\n')}` : ''}`);
    }
  }
  async function check(name, fn) {
    try {
      const r = await fn();
      const ok = r === true || r === undefined;
      record(ok, name, ok ? '' : typeof r === 'string' ? r : JSON.stringify(r, null, 2));
      return ok;
    } catch (e) {
      record(false, name, e && e.stack ? e.stack.split('\n').slice(0, 4).join('\n') : String(e));
      return false;
    }
  }
  return { counts, record, check };
}

/// axe-core on the page: true, or the violations in words. Evaluated through the debugging
/// protocol, not as a <script> tag: the pages' CSP allows no inline script, and axe is the
/// test's, not the page's.
export async function axe(page, axePath) {
  await page.evaluate(readFileSync(axePath, 'utf8'));
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary, html: n.html })),
    }));
  });
  if (res.length === 0) return true;
  return res.map((v) => [`${v.id} (${v.impact}): ${v.help}`,
    ...v.nodes.slice(0, 6).map((n) => `  target: ${n.target}\n    html: ${n.html.slice(0, 200)}\n    ${String(n.summary).replace(/\n/g, '\n    ')}`),
  ].join('\n')).join('\n');
}
