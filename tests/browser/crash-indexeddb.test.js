// Crash on IndexedDB: a page commits numbered single-row transactions in a
// loop, reporting each resolved commit on its console; the test closes the
// page at a random moment, opens a new page in the same browser profile and
// finds an intact database holding exactly rows 1..k, with k at least the
// last commit the closed page reported as resolved.
//
// Rounds alternate between two ways of ending the page: page.close() (the tab
// is closed: its document goes, open IndexedDB transactions are aborted) and
// a renderer crash through the DevTools protocol (Page.crash: the process
// dies wherever it is), followed by page.close().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, uniqueName, windowApi, sleep, WINDOW_PAGE } from './harness.js';

const ROUNDS = Number(process.env.FERRY_CRASH_ROUNDS_IDB || 16);
const MAX_DELAY_MS = 400;
const verbose = !!process.env.FERRY_TEST_VERBOSE;

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

function assertPrefix(c, lastResolved, round) {
  const where = `round ${round}: ${JSON.stringify(c)}, last resolved ${lastResolved}`;
  assert.equal(c.integrity, 'ok', where);
  assert.equal(c.count, c.max, `rows are not exactly 1..max (${where})`);
  if (c.count > 0) assert.equal(c.min, 1, where);
  assert.equal(c.last, c.max, `the counter row and the rows disagree (${where})`);
  assert.equal(c.badPad, 0, `row payloads damaged (${where})`);
  assert.ok(c.max >= lastResolved, `a resolved commit was lost (${where})`);
  return c.max;
}

/** Opens a page with the database open under key 'a'. */
async function openPage(name) {
  const page = await browser.newPage(WINDOW_PAGE);
  const api = windowApi(page);
  // The closed page's lock and connection go away asynchronously.
  await api('open', { key: 'a', name, storage: 'indexeddb', busyTimeout: 15_000 });
  return { page, api };
}

test(`indexeddb_commits_should_survive_page_close_as_an_exact_prefix_${ROUNDS}_rounds`, { timeout: 150_000 }, async () => {
  const name = uniqueName('idb_crash');
  const t0 = Date.now();
  let k = 0, lastResolved = 0, total = 0, beyond = 0;
  let { page, api } = await openPage(name);
  try {
    await api('setup', { key: 'a' });
    for (let round = 1; round <= ROUNDS; round++) {
      const c = await api('check', { key: 'a' });
      k = assertPrefix(c, lastResolved, round);
      if (k > lastResolved) beyond++;
      if (verbose) console.log(`# round ${round}: k ${k}, last resolved ${lastResolved}`);

      let heard = 0, loopError = null;
      page.on('console', (m) => {
        const text = m.text();
        const got = /^ferry:committed (\d+)$/.exec(text);
        if (got) heard = Math.max(heard, Number(got[1]));
        else if (text.startsWith('ferry:loop-error ')) loopError = text;
      });
      const mode = round % 2 ? 'close' : 'crash';
      const cdp = mode === 'crash' ? await page.context().newCDPSession(page) : null;
      await api('loop', { key: 'a', start: k + 1 });
      await sleep(Math.floor(Math.random() ** 2 * MAX_DELAY_MS));
      if (cdp) {
        const crashed = page.waitForEvent('crash', { timeout: 10_000 });
        cdp.send('Page.crash').catch(() => {});   // never answers: the renderer is gone
        await crashed;
      }
      await page.close();   // no beforeunload, no ferry close: the page just goes
      assert.equal(loopError, null, `round ${round}: the loop failed before the close`);
      lastResolved = Math.max(lastResolved, heard);
      total += heard > k ? heard - k : 0;

      ({ page, api } = await openPage(name));
    }
    k = assertPrefix(await api('check', { key: 'a' }), lastResolved, 'final');
    if (k > lastResolved) beyond++;
    await api('commit', { key: 'a', n: k + 1 });
    assertPrefix(await api('check', { key: 'a' }), k + 1, 'after');
    console.log(`# indexeddb crash: ${ROUNDS} page ends (${Math.ceil(ROUNDS / 2)} close, ${Math.floor(ROUNDS / 2)} renderer crash), ${k} rows, ${total} commits reported; `
      + `rows beyond the last report after ${beyond} of ${ROUNDS + 1} reopens; ${Date.now() - t0} ms`);
  } finally {
    await api.raw('close', { key: 'a' });
    await api.raw('destroy', { name });
    await page.close();
  }
});
