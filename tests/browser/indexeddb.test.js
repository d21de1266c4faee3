// ferry on IndexedDB in a window of headless Chromium: durability across a
// reload, storage choice, one writer per name, bad input and quota failures,
// and a 100,000-row transaction.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, gotoReady, uniqueName, windowApi, sqliteShell, WINDOW_PAGE } from './harness.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const T = { timeout: 90_000 };

/** Closes every key given, then deletes the IndexedDB database of name. */
async function cleanup(api, name, keys = ['a']) {
  for (const key of keys) await api.raw('close', { key });
  const r = await api.raw('destroy', { name });
  assert.equal(r.error, undefined, `cleanup of ${name}: ${r.error?.message}`);
}

test('indexeddb_commit_should_survive_page_reload', T, async () => {
  const name = uniqueName('idb_reload');
  const page = await browser.newPage(WINDOW_PAGE);
  let api = windowApi(page);
  try {
    const st = await api('open', { key: 'a', name, storage: 'indexeddb' });
    assert.equal(st.storage, 'indexeddb');
    await api('exec', { key: 'a', sql: 'CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, n REAL, b BLOB)' });
    await api('exec', { key: 'a', sql: 'INSERT INTO notes(body, n, b) VALUES (?, ?, ?)', params: ['first', 1.5, null] });
    await api('tx', {
      key: 'a',
      statements: [
        ['INSERT INTO notes(body, n, b) VALUES (?, ?, ?)', ['zweite — ünïcode', -2, null]],
        ['INSERT INTO notes(body, n, b) VALUES (:body, :n, x\'00ff10\')', { body: 'third', n: 3 }],
      ],
    });
    const want = await api('query', { key: 'a', sql: 'SELECT id, body, n, hex(b) AS b FROM notes ORDER BY id' });
    assert.equal(want.length, 3);

    // No close: the reload tears the page down with the database open.
    await gotoReady(page);
    api = windowApi(page);
    const st2 = await api('open', { key: 'a', name, storage: 'indexeddb', busyTimeout: 10_000 });
    assert.equal(st2.storage, 'indexeddb');
    const got = await api('query', { key: 'a', sql: 'SELECT id, body, n, hex(b) AS b FROM notes ORDER BY id' });
    assert.deepEqual(got, want);
    assert.deepEqual(got.map((r) => r.body), ['first', 'zweite — ünïcode', 'third']);
    assert.equal(got[2].b, '00FF10');
    const [ic] = await api('query', { key: 'a', sql: 'PRAGMA integrity_check' });
    assert.equal(Object.values(ic)[0], 'ok');
  } finally {
    await cleanup(api, name);
    await page.close();
  }
});

test('auto_storage_in_a_window_should_pick_indexeddb', T, async () => {
  const name = uniqueName('idb_auto');
  const page = await browser.newPage(WINDOW_PAGE);
  const api = windowApi(page);
  try {
    const st = await api('open', { key: 'a', name, storage: 'auto' });
    assert.equal(st.storage, 'indexeddb');
    await api('exec', { key: 'a', sql: 'CREATE TABLE t(v); INSERT INTO t VALUES (42)' });
    await api('close', { key: 'a' });
    // The same data is there when asked for IndexedDB by name.
    const st2 = await api('open', { key: 'a', name, storage: 'indexeddb' });
    assert.equal(st2.storage, 'indexeddb');
    assert.deepEqual(await api('query', { key: 'a', sql: 'SELECT v FROM t' }), [{ v: 42 }]);
    // OPFS is refused outside a dedicated worker, with a code.
    const r = await api.raw('open', { key: 'b', name: uniqueName('idb_no_opfs'), storage: 'opfs' });
    assert.equal(r.error?.name, 'FerryError');
    assert.equal(r.error?.code, 'unsupported');
  } finally {
    await cleanup(api, name);
    await page.close();
  }
});

test('indexeddb_second_open_in_another_tab_should_fail_busy', T, async () => {
  const name = uniqueName('idb_busy');
  const tab1 = await browser.newPage(WINDOW_PAGE);
  const tab2 = await browser.newPage(WINDOW_PAGE);
  const api1 = windowApi(tab1), api2 = windowApi(tab2);
  try {
    await api1('open', { key: 'a', name, storage: 'indexeddb' });
    await api1('exec', { key: 'a', sql: 'CREATE TABLE t(v); INSERT INTO t VALUES (1)' });

    const t0 = Date.now();
    const r = await api2.raw('open', { key: 'a', name, storage: 'indexeddb', busyTimeout: 300 });
    const waited = Date.now() - t0;
    assert.equal(r.error?.name, 'FerryError', JSON.stringify(r));
    assert.equal(r.error.code, 'busy');
    assert.ok(waited < 10_000, `busy after ${waited} ms`);

    // The first tab still writes; once it closes, the second tab gets in.
    await api1('exec', { key: 'a', sql: 'INSERT INTO t VALUES (2)' });
    await api1('close', { key: 'a' });
    const st = await api2('open', { key: 'a', name, storage: 'indexeddb', busyTimeout: 5000 });
    assert.equal(st.storage, 'indexeddb');
    assert.deepEqual(await api2('query', { key: 'a', sql: 'SELECT v FROM t ORDER BY v' }), [{ v: 1 }, { v: 2 }]);
  } finally {
    await api1.raw('close', { key: 'a' });
    await cleanup(api2, name);
    await tab1.close();
    await tab2.close();
  }
});

test('indexeddb_invalid_sql_should_reject_with_code_sql_and_keep_database_usable', T, async () => {
  const name = uniqueName('idb_sql');
  const page = await browser.newPage(WINDOW_PAGE);
  const api = windowApi(page);
  try {
    await api('open', { key: 'a', name, storage: 'indexeddb' });
    await api('exec', { key: 'a', sql: 'CREATE TABLE t(v INTEGER NOT NULL)' });
    await api('exec', { key: 'a', sql: 'INSERT INTO t VALUES (1)' });

    for (const sql of ['SELEC 1', 'INSERT INTO missing VALUES (1)', 'SELECT * FROM t WHERE']) {
      const r = await api.raw('query', { key: 'a', sql });
      assert.equal(r.error?.name, 'FerryError', `${sql}: ${JSON.stringify(r)}`);
      assert.equal(r.error.code, 'sql', sql);
      assert.ok(r.error.message.length > 0);
    }
    // Inside a transaction the bad statement rolls the whole transaction back.
    const r = await api.raw('tx', { key: 'a', statements: [['INSERT INTO t VALUES (2)'], ['INSERT INTO nowhere VALUES (3)']] });
    assert.equal(r.error?.code, 'sql');
    const c = await api.raw('exec', { key: 'a', sql: 'INSERT INTO t VALUES (NULL)' });
    assert.equal(c.error?.code, 'constraint');

    await api('exec', { key: 'a', sql: 'INSERT INTO t VALUES (4)' });
    assert.deepEqual(await api('query', { key: 'a', sql: 'SELECT v FROM t ORDER BY v' }), [{ v: 1 }, { v: 4 }]);
  } finally {
    await cleanup(api, name);
    await page.close();
  }
});

test('indexeddb_quota_failure_should_reject_storage_full_and_keep_last_good_commit', T, async () => {
  const name = uniqueName('idb_quota');
  const page = await browser.newPage(WINDOW_PAGE);
  let api = windowApi(page);
  const rows = async () => (await api('query', { key: 'a', sql: 'SELECT v FROM t ORDER BY v' })).map((r) => r.v);
  try {
    await api('open', { key: 'a', name, storage: 'indexeddb', faults: true });
    await api('exec', { key: 'a', sql: 'CREATE TABLE t(v INTEGER PRIMARY KEY, pad BLOB)' });
    await api('exec', { key: 'a', sql: 'INSERT INTO t VALUES (1, zeroblob(100))' });

    // A transaction whose IndexedDB commit is aborted (quota).
    await api('fault', { key: 'a', commitFail: 1 });
    const r1 = await api.raw('tx', {
      key: 'a',
      statements: [['INSERT INTO t VALUES (2, zeroblob(9000))'], ['INSERT INTO t VALUES (3, NULL)']],
    });
    assert.equal(r1.error?.name, 'FerryError', JSON.stringify(r1));
    assert.equal(r1.error.code, 'storage_full');
    assert.equal((await api('faultState', { key: 'a' })).injected, 1);
    assert.deepEqual(await rows(), [1], 'after a failed commit the database holds the last good one');

    // A single exec whose commit fails the same way.
    await api('fault', { key: 'a', commitFail: 1 });
    const r2 = await api.raw('exec', { key: 'a', sql: 'INSERT INTO t VALUES (4, NULL)' });
    assert.equal(r2.error?.code, 'storage_full', JSON.stringify(r2));
    assert.deepEqual(await rows(), [1]);

    // Still usable: the next commit goes through.
    await api('exec', { key: 'a', sql: 'INSERT INTO t VALUES (5, zeroblob(5000))' });
    assert.deepEqual(await rows(), [1, 5]);

    await gotoReady(page);
    api = windowApi(page);
    await api('open', { key: 'a', name, storage: 'indexeddb', busyTimeout: 10_000 });
    assert.deepEqual(await rows(), [1, 5], 'after a reload: exactly the good commits');
    const [ic] = await api('query', { key: 'a', sql: 'PRAGMA integrity_check' });
    assert.equal(Object.values(ic)[0], 'ok');
  } finally {
    await cleanup(api, name);
    await page.close();
  }
});

test('indexeddb_failed_commit_should_be_absent_after_reload', T, async () => {
  // The failed commit is the last thing that happened before the reload.
  const name = uniqueName('idb_quota_last');
  const page = await browser.newPage(WINDOW_PAGE);
  let api = windowApi(page);
  try {
    await api('open', { key: 'a', name, storage: 'indexeddb', faults: true });
    await api('exec', { key: 'a', sql: 'CREATE TABLE t(v INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)' });
    await api('fault', { key: 'a', commitFail: 1 });
    const r = await api.raw('tx', { key: 'a', statements: [['INSERT INTO t VALUES (2)'], ['DELETE FROM t WHERE v = 1']] });
    assert.equal(r.error?.code, 'storage_full', JSON.stringify(r));
    await gotoReady(page);
    api = windowApi(page);
    await api('open', { key: 'a', name, storage: 'indexeddb', busyTimeout: 10_000 });
    assert.deepEqual(await api('query', { key: 'a', sql: 'SELECT v FROM t' }), [{ v: 1 }]);
  } finally {
    await cleanup(api, name);
    await page.close();
  }
});

test('indexeddb_should_store_100000_rows_in_one_transaction_and_survive_reload', T, async () => {
  const name = uniqueName('idb_size');
  const N = 100_000;
  const want = { count: N, sum: N * (N + 1) / 2, rows: N, wrong: 0 };
  const page = await browser.newPage(WINDOW_PAGE);
  let api = windowApi(page);
  try {
    await api('open', { key: 'a', name, storage: 'indexeddb' });
    const { ms } = await api('bulk', { key: 'a', n: N });
    const r0 = Date.now();
    const a = await api('bulkCheck', { key: 'a' });
    console.log(`# indexeddb: ${N} rows written in one transaction in ${ms} ms, read back in ${Date.now() - r0} ms`);
    assert.deepEqual({ count: a.count, sum: a.sum, rows: a.rows, wrong: a.wrong }, want);
    assert.equal(a.xsum, want.sum / 8);

    await gotoReady(page);
    api = windowApi(page);
    await api('open', { key: 'a', name, storage: 'indexeddb', busyTimeout: 10_000 });
    const b = await api('bulkCheck', { key: 'a' });
    assert.deepEqual(b, a);
  } finally {
    await cleanup(api, name);
    await page.close();
  }
});

test('indexeddb_export_should_be_a_sqlite_file_another_sqlite_reads_and_start_a_copy', T, async () => {
  const name = uniqueName('idb_plain');
  const copy = uniqueName('idb_copy');
  const page = await browser.newPage(WINDOW_PAGE);
  const api = windowApi(page);
  const SUMMARY = 'SELECT count(*) AS n, sum(id) AS ids, sum(length(v)) AS bytes FROM t';
  try {
    await api('open', { key: 'a', name, storage: 'indexeddb' });
    await api('exec', { key: 'a', sql: 'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)' });
    await api('exec', { key: 'a', sql: 'WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400) INSERT INTO t SELECT i, randomblob(300) FROM c' });
    const want = await api('query', { key: 'a', sql: SUMMARY });
    const ex = await api('exportBlob', { key: 'a' });
    assert.equal(ex.blob, true);
    assert.deepEqual(sqliteShell(await api('savedBase64'), 'PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
    assert.deepEqual(sqliteShell(await api('savedBase64'), SUMMARY), want);
    const st = await api('open', { key: 'b', name: copy, storage: 'indexeddb', from: 'saved' });
    assert.equal(st.created, true);
    assert.deepEqual(await api('query', { key: 'b', sql: SUMMARY }), want);
    await api('close', { key: 'b' });
    await gotoReady(page);
    await api('open', { key: 'b', name: copy, storage: 'indexeddb', from: 'junk' });
    assert.equal((await api('status', { key: 'b' })).created, false, 'an existing database ignores from');
    assert.deepEqual(await api('query', { key: 'b', sql: SUMMARY }), want);
    assert.deepEqual(await api('query', { key: 'b', sql: 'PRAGMA integrity_check' }), [{ integrity_check: 'ok' }]);
    await api('close', { key: 'b' });
    const bad = await api.raw('open', { key: 'c', name: uniqueName('idb_bad'), storage: 'indexeddb', from: 'junk' });
    assert.equal(bad.error?.code, 'not_a_database');
  } finally {
    await cleanup(api, copy, ['b']);
    await cleanup(api, name);
    await page.close();
  }
});
