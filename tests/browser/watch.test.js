// Live queries in the browser: a write in one tab reaches a db.watch in
// another (the tabs share one database worker), once per transaction, also
// after the writer's tab is gone; the demo's lists are live queries, so a
// pulled change shows without a reload; a sync aborted in a tab stops in the
// worker with nothing lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, uniqueName, unwrap } from './harness.js';
import { buildSite, startSite, launchBrowser, openSynced, removeTemps } from './pwa-helpers.js';

const PAGE = '/tests/browser/pages/shared.html';
const T = { timeout: 180_000 };

const openIn = async (page, name) => unwrap(await page.evaluate((n) => window.openDb(n), name));
const run = async (page, fn, arg) => unwrap(await page.evaluate(([f, a]) => window.run((db) => (0, eval)(f)(db, a)), [String(fn), arg]));

/** Starts a watcher in the page; its calls collect in window.watched. */
const watchIn = (page, sql) => page.evaluate((s) => {
  window.watched = [];
  window.stopWatch = window.db.watch(s, [], (rows, error) => window.watched.push(error ? { error: error.code } : { rows }));
}, sql);
const watched = (page) => page.evaluate(() => window.watched);
const until = (page, n) => page.waitForFunction((k) => window.watched.some((c) => c.rows?.[0]?.n === k), n, { timeout: 30_000 });

test('a_write_in_another_tab_reaches_a_watcher_once_per_transaction', T, async () => {
  const b = await launch();
  try {
    const name = uniqueName('watch_tabs');
    const writer = await b.newPage(PAGE);
    const other = await b.newPage(PAGE);
    assert.equal((await openIn(writer, name)).writer, true);
    assert.equal((await openIn(other, name)).writer, false);
    await run(writer, (db) => db.exec('CREATE TABLE t(v INTEGER); CREATE TABLE unrelated(x)'));
    for (const p of [writer, other]) await watchIn(p, 'SELECT count(*) AS n FROM t');
    for (const p of [writer, other]) await until(p, 0);
    // Five rows in one transaction from the tab that does not hold the database.
    await run(other, (db) => db.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) await tx.exec('INSERT INTO t VALUES (?)', [i]);
    }));
    for (const p of [writer, other]) await until(p, 5);
    // And one from the writer's tab, then a commit the query does not read.
    await run(writer, (db) => db.exec('INSERT INTO t VALUES (5)'));
    for (const p of [writer, other]) await until(p, 6);
    await run(writer, (db) => db.exec('INSERT INTO unrelated VALUES (1)'));
    // Replies come after the commit events sent before them: once these
    // queries answer, every re-run those commits caused has answered too.
    for (const p of [writer, other]) await run(p, (db) => db.query('SELECT 1'));
    for (const p of [writer, other]) {
      assert.deepEqual((await watched(p)).map((c) => c.rows[0].n), [0, 5, 6]);
    }
    // A query that does not prepare is an error the watcher gets, in either tab.
    await watchIn(other, 'SELECT nope FROM t');
    await other.waitForFunction(() => window.watched.length > 0, null, { timeout: 30_000 });
    assert.deepEqual(await watched(other), [{ error: 'sql' }]);
  } finally {
    await b.close();
  }
});

test('a_watcher_keeps_following_commits_after_the_writer_tab_closes', T, async () => {
  const b = await launch();
  try {
    const name = uniqueName('watch_handover');
    const first = await b.newPage(PAGE);
    const second = await b.newPage(PAGE);
    const third = await b.newPage(PAGE);
    assert.equal((await openIn(first, name)).writer, true);
    await openIn(second, name);
    await openIn(third, name);
    await run(first, (db) => db.exec('CREATE TABLE t(v INTEGER)'));
    await watchIn(second, 'SELECT count(*) AS n FROM t');
    await until(second, 0);
    await run(first, (db) => db.exec('INSERT INTO t VALUES (1)'));
    await until(second, 1);
    // The writer's tab goes: another tab starts a new worker, whose commits
    // are numbered afresh; the watcher must follow them all the same.
    await first.close();
    await run(third, (db) => db.exec('INSERT INTO t VALUES (2)'));
    await until(second, 2);
    await run(second, (db) => db.exec('INSERT INTO t VALUES (3)'));
    await until(second, 3);
    await run(third, (db) => db.exec('INSERT INTO t VALUES (4)'));
    await until(second, 4);
  } finally {
    await b.close();
  }
});

test('the_demo_list_shows_a_pulled_change_without_a_reload', T, async () => {
  const { dir } = await buildSite('watch');
  const site = await startSite({ web: dir });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await openSynced(page, `${site.url}/#customers`);
    await page.waitForSelector('#customer-list li:has-text("Ada Works")');
    // Another device's change reaches the server; this page learns it by a pull.
    await site.srv.write('Customer', [{ id: 'cust-new', name: 'Dora Pumps', active: true }]);
    await page.evaluate(() => window.db.sync());
    await page.waitForSelector('#customer-list li:has-text("Dora Pumps")', { timeout: 30_000 });
    // The visit form's customer choices are a live query too.
    await page.click('#tab-visits');
    await page.waitForSelector('#visit-form select[name=customer] option:has-text("Dora Pumps")', { state: 'attached', timeout: 30_000 });
    // A sync aborted from the page stops in the database's worker: the
    // change stays pending, and the next sync takes it.
    await page.evaluate(() => window.db.exec("UPDATE Visit SET note = 'after an abort' WHERE id = 'visit-1'"));
    const code = await page.evaluate(() => {
      const ctl = new AbortController();
      const p = window.db.sync({ signal: ctl.signal });
      ctl.abort();
      return p.then(() => 'completed', (e) => e.code);
    });
    assert.equal(code, 'aborted');
    assert.equal(await page.evaluate(() => window.db.status().pendingChanges), 1);
    await page.evaluate(() => window.db.sync());
    assert.equal(await page.evaluate(() => window.db.status().pendingChanges), 0);
    assert.deepEqual(await site.srv.db.query("SELECT note FROM Visit WHERE id = 'visit-1'"), [{ note: 'after an abort' }]);
  } finally {
    await browser.close();
    await site.close();
    await removeTemps();
  }
});
