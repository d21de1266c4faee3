// ferry on OPFS in dedicated module workers of headless Chromium: durability
// across a reload (new worker), storage choice, one writer per name, bad
// input and quota failures on the commit log, and a 100,000-row transaction.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, gotoReady, uniqueName, workerApi, sqliteShell, WORKER_PAGE } from './harness.js';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const T = { timeout: 90_000 };
// A new worker may open while the old one's sync access handles are still
// being released (reload, terminate): give it time.
const REOPEN = 10_000;

/** Closes the given keys in api's worker, then deletes name's OPFS files from a fresh worker. */
async function cleanup(page, api, name, keys = ['a']) {
  if (api) for (const key of keys) await api.raw('close', { key });
  const wid = `cleanup-${Math.random().toString(36).slice(2)}`;
  const w = await workerApi(page, wid);
  const r = await w.raw('destroy', { name });
  await w.terminate();
  assert.equal(r.error, undefined, `cleanup of ${name}: ${r.error?.message}`);
}

test('opfs_database_a_hundred_times_its_cache_should_read_back_after_reloads', T, async () => {
  // Pages are read on demand from the OPFS files through a 32 KiB cache:
  // from the main file after a checkpoint, from the commit log (through its
  // index) for the commits after it, each time in a new worker.
  const name = uniqueName('opfs_paged');
  const page = await browser.newPage(WORKER_PAGE);
  let api = await workerApi(page, 'w1');
  const DIGEST = 'SELECT count(*) AS n, sum(id * length(v)) AS s, sum(unicode(substr(v, 900))) AS u FROM t';
  const reopen = async () => {
    await gotoReady(page);
    api = await workerApi(page, 'w1');
    await api('open', { key: 'a', name, storage: 'opfs', cacheSize: 32 * 1024, busyTimeout: REOPEN });
  };
  try {
    await api('open', { key: 'a', name, storage: 'opfs', cacheSize: 32 * 1024 });
    await api('exec', { key: 'a', sql: 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)' });
    await api('exec', {
      key: 'a',
      sql: "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000) INSERT INTO t SELECT i, printf('%.1000d', i * 7919) FROM c",
    });
    const [{ page_count: pages }] = await api('query', { key: 'a', sql: 'PRAGMA page_count' });
    assert.ok(pages * 4096 > 100 * 32 * 1024, `only ${pages} pages`);
    await reopen();
    await api('exec', { key: 'a', sql: "UPDATE t SET v = printf('%.1000d', id * 3) WHERE id % 50 = 0" });
    const want = await api('query', { key: 'a', sql: DIGEST });
    assert.equal(want[0].n, 5000);
    await reopen();
    assert.deepEqual(await api('query', { key: 'a', sql: DIGEST }), want);
    const [ic] = await api('query', { key: 'a', sql: 'PRAGMA integrity_check' });
    assert.equal(Object.values(ic)[0], 'ok');
  } finally {
    await cleanup(page, api, name);
    await page.close();
  }
});

test('opfs_commit_should_survive_page_reload', T, async () => {
  const name = uniqueName('opfs_reload');
  const page = await browser.newPage(WORKER_PAGE);
  let api = await workerApi(page, 'w1');
  try {
    assert.deepEqual(await api('where'), { worker: true });
    const st = await api('open', { key: 'a', name, storage: 'opfs' });
    assert.equal(st.storage, 'opfs');
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

    // No close: the reload ends the worker with the database open.
    await gotoReady(page);
    api = await workerApi(page, 'w1');
    const st2 = await api('open', { key: 'a', name, storage: 'opfs', busyTimeout: REOPEN });
    assert.equal(st2.storage, 'opfs');
    const got = await api('query', { key: 'a', sql: 'SELECT id, body, n, hex(b) AS b FROM notes ORDER BY id' });
    assert.deepEqual(got, want);
    assert.deepEqual(got.map((r) => r.body), ['first', 'zweite — ünïcode', 'third']);
    assert.equal(got[2].b, '00FF10');
    const [ic] = await api('query', { key: 'a', sql: 'PRAGMA integrity_check' });
    assert.equal(Object.values(ic)[0], 'ok');
  } finally {
    await cleanup(page, api, name);
    await page.close();
  }
});

test('auto_storage_in_a_worker_should_pick_opfs', T, async () => {
  const name = uniqueName('opfs_auto');
  const page = await browser.newPage(WORKER_PAGE);
  const api = await workerApi(page, 'w1');
  try {
    const st = await api('open', { key: 'a', name, storage: 'auto' });
    assert.equal(st.storage, 'opfs');
    await api('exec', { key: 'a', sql: 'CREATE TABLE t(v); INSERT INTO t VALUES (42)' });
    await api('close', { key: 'a' });
    // The same data is there when asked for OPFS by name, in another worker.
    const other = await workerApi(page, 'w2');
    const st2 = await other('open', { key: 'a', name, storage: 'opfs', busyTimeout: REOPEN });
    assert.equal(st2.storage, 'opfs');
    assert.deepEqual(await other('query', { key: 'a', sql: 'SELECT v FROM t' }), [{ v: 42 }]);
    await other('close', { key: 'a' });
  } finally {
    await cleanup(page, api, name);
    await page.close();
  }
});

test('opfs_second_open_in_another_worker_should_fail_busy', T, async () => {
  const name = uniqueName('opfs_busy');
  const page = await browser.newPage(WORKER_PAGE);
  const w1 = await workerApi(page, 'w1');
  const w2 = await workerApi(page, 'w2');
  try {
    await w1('open', { key: 'a', name, storage: 'opfs' });
    await w1('exec', { key: 'a', sql: 'CREATE TABLE t(v); INSERT INTO t VALUES (1)' });

    const t0 = Date.now();
    const r = await w2.raw('open', { key: 'a', name, storage: 'opfs', busyTimeout: 300 });
    const waited = Date.now() - t0;
    assert.equal(r.error?.name, 'FerryError', JSON.stringify(r));
    assert.equal(r.error.code, 'busy');
    assert.ok(waited < 10_000, `busy after ${waited} ms`);

    // The first worker still writes; once it closes, the second gets in.
    await w1('exec', { key: 'a', sql: 'INSERT INTO t VALUES (2)' });
    await w1('close', { key: 'a' });
    const st = await w2('open', { key: 'a', name, storage: 'opfs', busyTimeout: REOPEN });
    assert.equal(st.storage, 'opfs');
    assert.deepEqual(await w2('query', { key: 'a', sql: 'SELECT v FROM t ORDER BY v' }), [{ v: 1 }, { v: 2 }]);
  } finally {
    await w1.raw('close', { key: 'a' });
    await cleanup(page, w2, name);
    await page.close();
  }
});

test('opfs_invalid_sql_should_reject_with_code_sql_and_keep_database_usable', T, async () => {
  const name = uniqueName('opfs_sql');
  const page = await browser.newPage(WORKER_PAGE);
  const api = await workerApi(page, 'w1');
  try {
    await api('open', { key: 'a', name, storage: 'opfs' });
    await api('exec', { key: 'a', sql: 'CREATE TABLE t(v INTEGER NOT NULL)' });
    await api('exec', { key: 'a', sql: 'INSERT INTO t VALUES (1)' });
    for (const sql of ['SELEC 1', 'INSERT INTO missing VALUES (1)', 'SELECT * FROM t WHERE']) {
      const r = await api.raw('query', { key: 'a', sql });
      assert.equal(r.error?.name, 'FerryError', `${sql}: ${JSON.stringify(r)}`);
      assert.equal(r.error.code, 'sql', sql);
    }
    const r = await api.raw('tx', { key: 'a', statements: [['INSERT INTO t VALUES (2)'], ['INSERT INTO nowhere VALUES (3)']] });
    assert.equal(r.error?.code, 'sql');
    await api('exec', { key: 'a', sql: 'INSERT INTO t VALUES (4)' });
    assert.deepEqual(await api('query', { key: 'a', sql: 'SELECT v FROM t ORDER BY v' }), [{ v: 1 }, { v: 4 }]);
  } finally {
    await cleanup(page, api, name);
    await page.close();
  }
});

for (const torn of [false, 'half', 'zeros']) {
  const what = { false: 'log_write', half: 'torn_log_write', zeros: 'torn_zero_filled_log_write' }[torn];
  test(`opfs_quota_failure_on_${what}_should_reject_storage_full_and_keep_last_good_commit`, T, async () => {
    const name = uniqueName(`opfs_quota_${torn || 'plain'}`);
    const page = await browser.newPage(WORKER_PAGE);
    let api = await workerApi(page, 'w1');
    const rows = async () => (await api('query', { key: 'a', sql: 'SELECT v FROM t ORDER BY v' })).map((r) => r.v);
    try {
      await api('open', { key: 'a', name, storage: 'opfs', faults: true });
      await api('exec', { key: 'a', sql: 'CREATE TABLE t(v INTEGER PRIMARY KEY, pad BLOB)' });
      await api('exec', { key: 'a', sql: 'INSERT INTO t VALUES (1, zeroblob(100))' });

      // The next write to the commit log throws QuotaExceededError (after
      // writing part of its bytes when torn).
      await api('fault', { key: 'a', logWriteFail: 1, torn });
      const r1 = await api.raw('tx', {
        key: 'a',
        statements: [['INSERT INTO t VALUES (2, zeroblob(9000))'], ['INSERT INTO t VALUES (3, NULL)']],
      });
      assert.equal(r1.error?.name, 'FerryError', JSON.stringify(r1));
      assert.equal(r1.error.code, 'storage_full', JSON.stringify(r1));
      assert.equal((await api('faultState', { key: 'a' })).injected, 1);
      assert.deepEqual(await rows(), [1], 'after a failed commit the database holds the last good one');

      await api('fault', { key: 'a', logWriteFail: 1, torn });
      const r2 = await api.raw('exec', { key: 'a', sql: 'INSERT INTO t VALUES (4, NULL)' });
      assert.equal(r2.error?.code, 'storage_full', JSON.stringify(r2));
      assert.deepEqual(await rows(), [1]);

      await api('exec', { key: 'a', sql: 'INSERT INTO t VALUES (5, zeroblob(5000))' });
      assert.deepEqual(await rows(), [1, 5]);

      // Reopen in a new worker after a reload.
      await gotoReady(page);
      api = await workerApi(page, 'w1');
      await api('open', { key: 'a', name, storage: 'opfs', busyTimeout: REOPEN });
      assert.deepEqual(await rows(), [1, 5], 'after reopening: exactly the good commits');
      const [ic] = await api('query', { key: 'a', sql: 'PRAGMA integrity_check' });
      assert.equal(Object.values(ic)[0], 'ok');
    } finally {
      await cleanup(page, api, name);
      await page.close();
    }
  });
}

for (const torn of ['half', 'zeros']) {
  test(`opfs_failed_commit_with_${torn === 'half' ? 'torn' : 'zero_filled'}_log_record_should_be_absent_after_reopen`, T, async () => {
    // The failed commit's partial record is the last thing in the log when
    // the worker ends: replay must recognise and drop it.
    const name = uniqueName(`opfs_quota_last_${torn}`);
    const page = await browser.newPage(WORKER_PAGE);
    let api = await workerApi(page, 'w1');
    try {
      await api('open', { key: 'a', name, storage: 'opfs', faults: true });
      await api('exec', { key: 'a', sql: 'CREATE TABLE t(v INTEGER PRIMARY KEY, pad BLOB)' });
      await api('exec', { key: 'a', sql: 'INSERT INTO t VALUES (1, zeroblob(3000))' });
      await api('fault', { key: 'a', logWriteFail: 1, torn });
      const r = await api.raw('tx', {
        key: 'a',
        statements: [['INSERT INTO t VALUES (2, zeroblob(20000))'], ['DELETE FROM t WHERE v = 1']],
      });
      assert.equal(r.error?.code, 'storage_full', JSON.stringify(r));
      await api.terminate();
      api = await workerApi(page, 'w2');
      await api('open', { key: 'a', name, storage: 'opfs', busyTimeout: REOPEN });
      assert.deepEqual(await api('query', { key: 'a', sql: 'SELECT v, length(pad) AS n FROM t' }), [{ v: 1, n: 3000 }]);
      const [ic] = await api('query', { key: 'a', sql: 'PRAGMA integrity_check' });
      assert.equal(Object.values(ic)[0], 'ok');
      // And the log goes on from there.
      await api('exec', { key: 'a', sql: 'INSERT INTO t VALUES (3, NULL)' });
      await api.terminate();
      api = await workerApi(page, 'w3');
      await api('open', { key: 'a', name, storage: 'opfs', busyTimeout: REOPEN });
      assert.deepEqual(await api('query', { key: 'a', sql: 'SELECT v FROM t ORDER BY v' }), [{ v: 1 }, { v: 3 }]);
    } finally {
      await cleanup(page, api, name);
      await page.close();
    }
  });
}

test('opfs_should_store_100000_rows_in_one_transaction_and_survive_reload', T, async () => {
  const name = uniqueName('opfs_size');
  const N = 100_000;
  const want = { count: N, sum: N * (N + 1) / 2, rows: N, wrong: 0 };
  const page = await browser.newPage(WORKER_PAGE);
  let api = await workerApi(page, 'w1');
  try {
    await api('open', { key: 'a', name, storage: 'opfs' });
    const { ms } = await api('bulk', { key: 'a', n: N });
    const r0 = Date.now();
    const a = await api('bulkCheck', { key: 'a' });
    console.log(`# opfs: ${N} rows written in one transaction in ${ms} ms, read back in ${Date.now() - r0} ms`);
    assert.deepEqual({ count: a.count, sum: a.sum, rows: a.rows, wrong: a.wrong }, want);
    assert.equal(a.xsum, want.sum / 8);

    await gotoReady(page);
    api = await workerApi(page, 'w1');
    await api('open', { key: 'a', name, storage: 'opfs', busyTimeout: REOPEN });
    const b = await api('bulkCheck', { key: 'a' });
    assert.deepEqual(b, a);
  } finally {
    await cleanup(page, api, name);
    await page.close();
  }
});

test('closed_opfs_database_and_its_export_should_be_sqlite_files_another_sqlite_reads_and_start_copies', T, async () => {
  const name = uniqueName('opfs_plain');
  const copy = uniqueName('opfs_copy');
  const page = await browser.newPage(WORKER_PAGE);
  let api = await workerApi(page, 'w1');
  const SUMMARY = 'SELECT count(*) AS n, sum(id) AS ids, sum(length(v)) AS bytes FROM t';
  try {
    await api('open', { key: 'a', name, storage: 'opfs' });
    await api('exec', { key: 'a', sql: 'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)' });
    await api('exec', { key: 'a', sql: 'WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 400) INSERT INTO t SELECT i, randomblob(300) FROM c' });
    const want = await api('query', { key: 'a', sql: SUMMARY });
    const [{ page_count: pages }] = await api('query', { key: 'a', sql: 'PRAGMA page_count' });
    const ex = await api('exportBlob', { key: 'a' });
    assert.deepEqual(ex, { blob: true, size: pages * 4096, type: 'application/vnd.sqlite3' });
    await api('close', { key: 'a' });
    // The OPFS file itself, after close(): a plain SQLite file, the log only its header.
    const files = await api('opfsFiles', { name });
    assert.equal(files.logSize, 64);
    assert.deepEqual(sqliteShell(files.main, 'PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
    assert.deepEqual(sqliteShell(files.main, SUMMARY), want);
    assert.deepEqual(sqliteShell(await api('savedBase64'), SUMMARY), want);
    // A copy from the Blob (read in place in the worker), and from its bytes.
    for (const from of ['saved', 'savedBytes']) {
      const st = await api('open', { key: 'b', name: copy, storage: 'opfs', from, busyTimeout: REOPEN });
      assert.equal(st.created, true, from);
      assert.deepEqual(await api('query', { key: 'b', sql: SUMMARY }), want, from);
      await cleanup(page, api, copy, ['b']);
    }
    const bad = await api.raw('open', { key: 'b', name: copy, storage: 'opfs', from: 'junk', busyTimeout: REOPEN });
    assert.equal(bad.error?.code, 'not_a_database');
    await api('open', { key: 'b', name: copy, storage: 'opfs', busyTimeout: REOPEN });
    assert.deepEqual(await api('query', { key: 'b', sql: 'SELECT count(*) AS n FROM sqlite_schema' }), [{ n: 0 }]);
    await cleanup(page, api, copy, ['b']);
  } finally {
    await cleanup(page, api, name);
    await page.close();
  }
});
