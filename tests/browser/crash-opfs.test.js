// Crash on OPFS: a dedicated worker commits numbered single-row transactions
// in a loop and is terminated (worker.terminate()) at a random moment; a new
// worker reopens and finds an intact database holding exactly rows 1..k, with
// k at least the last commit the dead worker reported as resolved.
//
// Rounds cycle through three kinds of kill. Chromium ends a terminated worker
// gracefully at its next task boundary, and forcibly only after a grace
// period (about 2 s) when the worker never returns to its event loop:
//  - 'between': the loop yields a macrotask after each commit, so
//    terminate() takes the worker at the random moment, between two commits
//    (a tight bound on k);
//  - 'mid': the loop never yields, so the worker is killed by V8's forced
//    termination wherever it is, typically inside a commit's log writes;
//  - 'renderer': the renderer process running page and worker crashes
//    (DevTools Page.crash) at the random moment, mid-commit or not; a new
//    page then opens the database.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, uniqueName, unwrap, workerApi, sleep, WORKER_PAGE } from './harness.js';

const ROUNDS = Number(process.env.FERRY_CRASH_ROUNDS || 24);
const MAX_DELAY_MS = 300;
const verbose = !!process.env.FERRY_TEST_VERBOSE;

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** Checks the numbered rows; returns k. */
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

test(`opfs_commits_should_survive_worker_termination_as_an_exact_prefix_${ROUNDS}_rounds`, { timeout: 170_000 }, async () => {
  const name = uniqueName('opfs_crash');
  let page = await browser.newPage(WORKER_PAGE);
  const t0 = Date.now();
  let k = 0, lastResolved = 0, total = 0;
  const beyond = { between: 0, mid: 0, renderer: 0 }, kills = { between: 0, mid: 0, renderer: 0 };
  try {
    let w = await workerApi(page, 'w0');
    await w('open', { key: 'a', name, storage: 'opfs' });
    await w('setup', { key: 'a' });
    await w('close', { key: 'a' });
    await w.terminate();

    const MODES = ['between', 'mid', 'renderer'];
    let mode = null;
    for (let round = 1; round <= ROUNDS; round++) {
      const wid = `w${round}`;
      const r0 = Date.now();
      w = await workerApi(page, wid);
      // The dead worker's sync access handles may take a moment to go.
      await w('open', { key: 'a', name, storage: 'opfs', busyTimeout: 15_000 });
      const c = await w('check', { key: 'a' });
      k = assertPrefix(c, lastResolved, round);
      if (mode && k > lastResolved) beyond[mode]++;   // commits that resolved but whose report the page never got
      if (verbose) console.log(`# round ${round} (after ${mode}): reopen+check ${Date.now() - r0} ms, k ${k}, last resolved ${lastResolved}`);

      mode = MODES[(round - 1) % MODES.length];
      kills[mode]++;
      // Skewed towards short delays, so kills land in the first commits too.
      const delayMs = Math.floor(Math.random() ** 2 * MAX_DELAY_MS);
      let r;
      if (mode === 'renderer') {
        const cdp = await page.context().newCDPSession(page);
        unwrap(await w.raw('loop', { key: 'a', start: k + 1, yieldEach: true }));
        await sleep(delayMs);
        r = await page.evaluate((id) => window.heard(id), wid);   // commits after this are unreported
        const crashed = page.waitForEvent('crash', { timeout: 10_000 });
        cdp.send('Page.crash').catch(() => {});   // never answers: the renderer is gone
        await crashed;
        await page.close();
        page = await browser.newPage(WORKER_PAGE);
      } else {
        r = unwrap(await page.evaluate((a) => window.crashRound(a),
          { wid, key: 'a', start: k + 1, delayMs, yieldEach: mode === 'between' }));
      }
      assert.equal(r.loopError, null, `round ${round}: the loop failed before the kill: ${JSON.stringify(r.loopError)}`);
      lastResolved = Math.max(lastResolved, r.lastCommitted);
      total += r.reports;
    }

    w = await workerApi(page, 'final');
    await w('open', { key: 'a', name, storage: 'opfs', busyTimeout: 15_000 });
    k = assertPrefix(await w('check', { key: 'a' }), lastResolved, 'final');
    if (k > lastResolved) beyond[mode]++;
    // The database keeps working after all that.
    await w('commit', { key: 'a', n: k + 1 });
    assertPrefix(await w('check', { key: 'a' }), k + 1, 'after');
    await w('close', { key: 'a' });
    await w.terminate();
    console.log(`# opfs crash: ${ROUNDS} kills, ${k} rows, ${total} commits reported; rows beyond the last report after `
      + Object.keys(kills).map((m) => `${beyond[m]} of ${kills[m]} '${m}'`).join(', ') + ` kills; ${Date.now() - t0} ms`);
  } finally {
    const c = await workerApi(page, 'cleanup');
    await c.raw('destroy', { name });
    await page.close();
  }
});
