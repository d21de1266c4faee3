// The window runtime: the database runs in a dedicated worker of one writer
// tab; other tabs forward to it, take over when it closes, and all of them
// hear every change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, uniqueName, unwrap, gotoReady, sleep, sqliteShell } from './harness.js';

const PAGE = '/tests/browser/pages/shared.html';
const T = { timeout: 180_000 };

const openIn = async (page, name) => unwrap(await page.evaluate((n) => window.openDb(n), name));
const exec = async (page, sql, params) => unwrap(await page.evaluate(([s, p]) => window.run((db) => db.exec(s, p)), [sql, params]));
const query = async (page, sql, params) => unwrap(await page.evaluate(([s, p]) => window.run((db) => db.query(s, p)), [sql, params]));

test('window_open_should_run_the_database_in_a_worker_on_opfs', T, async () => {
  const b = await launch();
  try {
    const page = await b.newPage(PAGE);
    const name = uniqueName('shared_opfs');
    const st = await openIn(page, name);
    assert.equal(st.storage, 'opfs');
    assert.equal(st.writer, true);
    await exec(page, 'CREATE TABLE t(v)');
    await exec(page, 'INSERT INTO t VALUES (?)', [1]);
    const r = unwrap(await page.evaluate(() => window.run((db) => db.transaction(async (tx) => {
      await tx.exec('INSERT INTO t VALUES (2)');
      await tx.transaction(async (inner) => { await inner.exec('INSERT INTO t VALUES (3)'); throw new Error('inner'); }).catch(() => {});
      return (await tx.query('SELECT count(*) AS n FROM t'))[0].n;
    }))));
    assert.equal(r, 2);
    const bad = await page.evaluate(() => window.run((db) => db.exec('SELEC')));
    assert.equal(bad.error.code, 'sql');
    await gotoReady(page);
    await openIn(page, name);
    assert.deepEqual(await query(page, 'SELECT v FROM t ORDER BY v'), [{ v: 1 }, { v: 2 }]);
  } finally {
    await b.close();
  }
});

test('two_tabs_writing_at_once_should_land_every_write_once', T, async () => {
  const b = await launch();
  try {
    const name = uniqueName('shared_two');
    const p1 = await b.newPage(PAGE);
    const p2 = await b.newPage(PAGE);
    const s1 = await openIn(p1, name);
    const s2 = await openIn(p2, name);
    assert.equal(s1.writer, true);
    assert.equal(s2.writer, false);
    await exec(p1, 'CREATE TABLE t(tab TEXT, n INTEGER, PRIMARY KEY (tab, n))');
    const write = (page, tab) => page.evaluate(async (t) => window.run(async (db) => {
      await Promise.all(Array.from({ length: 150 }, (_, n) => db.exec('INSERT INTO t VALUES (?, ?)', [t, n])));
      await db.transaction(async (tx) => { await tx.exec('INSERT INTO t VALUES (?, ?)', [t, 1000]); });
      return true;
    }), tab);
    const [r1, r2] = await Promise.all([write(p1, 'one'), write(p2, 'two')]);
    unwrap(r1); unwrap(r2);
    for (const p of [p1, p2]) {
      assert.deepEqual(await query(p, 'SELECT tab, count(*) AS n FROM t GROUP BY tab ORDER BY tab'), [{ tab: 'one', n: 151 }, { tab: 'two', n: 151 }]);
    }
    // every tab hears every change, whichever tab made it
    await sleep(200);
    const heard = await p2.evaluate(() => window.changes.length);
    assert.ok(heard >= 302, `tab 2 heard ${heard} changes`);
  } finally {
    await b.close();
  }
});

test('closing_the_writer_tab_should_hand_over_without_losing_or_doubling_writes', T, async () => {
  const b = await launch();
  try {
    const name = uniqueName('shared_handover');
    const p1 = await b.newPage(PAGE);
    const p2 = await b.newPage(PAGE);
    await openIn(p1, name);
    await openIn(p2, name);
    await exec(p2, 'CREATE TABLE t(n INTEGER PRIMARY KEY)');
    // tab 2 keeps writing while the writer's tab closes
    const writes = p2.evaluate(() => window.run(async (db) => {
      const out = [];
      for (let n = 1; n <= 300; n++) out.push(db.exec('INSERT INTO t VALUES (?)', [n]).then(() => 'ok', (e) => e.code));
      return Promise.all(out);
    }));
    await sleep(30);
    await p1.close();
    const results = unwrap(await writes);
    const handedOver = await p2.evaluate(() => window.db.status().writer);
    assert.equal(handedOver, true, 'tab 2 did not take over');
    assert.deepEqual(results.filter((r) => r !== 'ok'), []);
    assert.deepEqual(await query(p2, 'SELECT count(*) AS n, min(n) AS lo, max(n) AS hi FROM t'), [{ n: 300, lo: 1, hi: 300 }]);
    const st = unwrap(await p2.evaluate(() => window.run(async (db) => db.status())));
    assert.equal(st.writer, true);
    // and the data outlives both tabs
    const p3 = await b.newPage(PAGE);
    await p2.close();
    await openIn(p3, name);
    assert.deepEqual(await query(p3, 'SELECT count(*) AS n FROM t'), [{ n: 300 }]);
  } finally {
    await b.close();
  }
});

test('ten_reloads_in_a_row_should_reopen_the_database_each_time', T, async () => {
  const b = await launch();
  try {
    const name = uniqueName('shared_reload');
    const page = await b.newPage(PAGE);
    await openIn(page, name);
    await exec(page, 'CREATE TABLE t(n INTEGER)');
    for (let i = 1; i <= 10; i++) {
      await gotoReady(page);
      await openIn(page, name);
      await exec(page, 'INSERT INTO t VALUES (?)', [i]);
    }
    assert.deepEqual(await query(page, 'SELECT count(*) AS n, sum(n) AS s FROM t'), [{ n: 10, s: 55 }]);
  } finally {
    await b.close();
  }
});

test('evicted_storage_should_be_reported_not_replaced_by_an_empty_database', T, async () => {
  const b = await launch();
  try {
    const name = uniqueName('shared_evicted');
    const page = await b.newPage(PAGE);
    await openIn(page, name);
    await exec(page, 'CREATE TABLE t(v)');
    await exec(page, 'INSERT INTO t VALUES (1)');
    unwrap(await page.evaluate(() => window.run((db) => db.close())));
    // What an eviction leaves: the page's storage without the database files.
    await page.evaluate(async (n) => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('ferry');
      await dir.removeEntry(`${n}.db`);
      await dir.removeEntry(`${n}.db-log`);
    }, name);
    await gotoReady(page);
    const lost = await page.evaluate((n) => window.openDb(n), name);
    assert.equal(lost.error?.code, 'storage_lost', JSON.stringify(lost));
    assert.match(lost.error.message, /recreate/);
    // The app decides to start again.
    await gotoReady(page);
    unwrap(await page.evaluate((n) => window.openDb(n, { recreate: true }), name));
    assert.deepEqual(await query(page, "SELECT count(*) AS n FROM sqlite_schema WHERE name = 't'"), [{ n: 0 }]);
  } finally {
    await b.close();
  }
});

test('sign_out_from_any_tab_should_close_every_tab_and_leave_nothing_stored', T, async () => {
  const b = await launch();
  try {
    const name = uniqueName('shared_signout');
    const p1 = await b.newPage(PAGE);
    const p2 = await b.newPage(PAGE);
    assert.equal((await openIn(p1, name)).writer, true);
    assert.equal((await openIn(p2, name)).writer, false);
    for (const p of [p1, p2]) await p.evaluate(() => { window.signedOut = 0; window.db.on('signout', () => { window.signedOut++; }); });
    await exec(p1, 'CREATE TABLE t(v)');
    await exec(p2, 'INSERT INTO t VALUES (1)');
    const files = (page) => page.evaluate(async (n) => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('ferry', { create: true });
      const out = [];
      for await (const k of dir.keys()) if (k.startsWith(`${n}.`)) out.push(k);
      return out.sort();
    }, name);
    // With its file store (<name>.files/), made once db.files is ready.
    assert.deepEqual((await files(p1)).filter((f) => f !== `${name}.files`), [`${name}.db`, `${name}.db-log`]);
    // While it is open, it cannot be deleted from under the tabs.
    const busy = await p1.evaluate(async (n) => {
      const { deleteDatabase } = await import('/bindings/index.js');
      try { await deleteDatabase(n, { busyTimeout: 200 }); return 'deleted'; } catch (e) { return e.code; }
    }, name);
    assert.equal(busy, 'busy');

    // The tab that is not the writer signs out: the writer's worker does it.
    unwrap(await p2.evaluate(() => window.run((db) => db.signOut())));
    for (const p of [p1, p2]) {
      await p.waitForFunction(() => window.signedOut === 1 && window.db.status().closed, null, { timeout: 10_000 });
      assert.equal((await p.evaluate(() => window.run((db) => db.query('SELECT 1')))).error.code, 'closed');
    }
    await sleep(500);
    assert.deepEqual(await files(p1), [], 'no tab brought the database back');
    // Opened again, it is new and empty (not 'storage_lost').
    await openIn(p1, name);
    assert.deepEqual(await query(p1, "SELECT name FROM sqlite_schema WHERE name = 't'"), []);
  } finally {
    await b.close();
  }
});

test('window_export_should_hand_the_workers_blob_to_the_tab_and_from_should_start_a_copy_in_the_worker', T, async () => {
  const b = await launch();
  try {
    const page = await b.newPage(PAGE);
    const name = uniqueName('shared_export');
    await openIn(page, name);
    await exec(page, 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    await exec(page, "INSERT INTO t(v) VALUES ('one'), ('two'), ('three')");
    const ex = unwrap(await page.evaluate(() => window.run(async (db) => {
      window.exported = await db.export();
      const u8 = new Uint8Array(await window.exported.arrayBuffer());
      let s = '';
      for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
      return { blob: window.exported instanceof Blob, base64: btoa(s) };
    })));
    assert.equal(ex.blob, true);
    assert.deepEqual(sqliteShell(ex.base64, 'SELECT v FROM t ORDER BY id'), [{ v: 'one' }, { v: 'two' }, { v: 'three' }]);
    await page.evaluate(() => window.db.close());
    const copy = uniqueName('shared_copy');
    const st = unwrap(await page.evaluate((n) => window.openDb(n, { from: window.exported }), copy));
    assert.equal(st.created, true);
    assert.equal(st.storage, 'opfs');
    assert.deepEqual(await query(page, 'SELECT v FROM t ORDER BY id'), [{ v: 'one' }, { v: 'two' }, { v: 'three' }]);
  } finally {
    await b.close();
  }
});
