// 'indexeddb' storage in Node through fake-indexeddb (the only IndexedDB
// Node has); the browser suites run the same paths on Chromium's.
import 'fake-indexeddb/auto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from '../../bindings/index.js';
import { namedError, rejection } from './helpers.js';

test('indexeddb_commit_should_survive_close_and_reopen', async () => {
  let db = await open({ name: 'idb1', storage: 'indexeddb' });
  assert.equal(db.status().storage, 'indexeddb');
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  await db.exec('INSERT INTO t(v) VALUES (randomblob(10000))');
  await db.exec('INSERT INTO t(v) VALUES (?)', [new Uint8Array([7, 7, 7])]);
  await db.close();
  db = await open({ name: 'idb1', storage: 'indexeddb' });
  assert.deepEqual(await db.query('SELECT count(*) AS n, max(length(v)) AS l FROM t'), [{ n: 2, l: 10000 }]);
  assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  await db.close();
});

test('indexeddb_should_shrink_when_the_database_shrinks', async () => {
  let db = await open({ name: 'idb2', storage: 'indexeddb' });
  await db.exec('CREATE TABLE t(v BLOB)');
  await db.exec('INSERT INTO t SELECT randomblob(4000) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4)');
  await db.exec('DELETE FROM t');
  await db.exec('VACUUM');
  await db.close();
  db = await open({ name: 'idb2', storage: 'indexeddb' });
  assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  assert.deepEqual(await db.query('SELECT count(*) AS n FROM t'), [{ n: 0 }]);
  const [{ page_count: pages }] = await db.query('PRAGMA page_count');
  assert.ok(pages <= 3, `vacuumed database has ${pages} pages`);
  await db.close();
});

test('quota_error_in_indexeddb_should_give_storage_full_and_keep_the_last_good_commit', async () => {
  const faults = { failNext: false, commit() { if (this.failNext) { this.failNext = false; throw namedError('QuotaExceededError'); } } };
  const db = await open({ name: 'idb3', storage: 'indexeddb', faults });
  await db.exec('CREATE TABLE t(v)');
  await db.exec('INSERT INTO t VALUES (1)');
  faults.failNext = true;
  const e = await rejection(db.exec('INSERT INTO t VALUES (2)'));
  assert.equal(e.code, 'storage_full');
  // memory never runs ahead of storage: the failed commit is gone here too
  assert.deepEqual(await db.query('SELECT v FROM t'), [{ v: 1 }]);
  faults.failNext = true;
  const e2 = await rejection(db.transaction(async (tx) => {
    await tx.exec('INSERT INTO t VALUES (3)');
    await tx.exec('CREATE TABLE u(x)');
  }));
  assert.equal(e2.code, 'storage_full');
  assert.deepEqual(await db.query("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'u'"), [{ n: 0 }]);
  await db.exec('INSERT INTO t VALUES (4)');
  await db.close();
  const again = await open({ name: 'idb3', storage: 'indexeddb' });
  assert.deepEqual(await again.query('SELECT v FROM t ORDER BY v'), [{ v: 1 }, { v: 4 }]);
  await again.close();
});

test('hundred_thousand_rows_in_one_transaction_should_round_trip_on_indexeddb', { timeout: 120_000 }, async () => {
  let db = await open({ name: 'idb4', storage: 'indexeddb' });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)');
  await db.transaction(async (tx) => {
    for (let i = 1; i <= 100_000; i++) await tx.exec('INSERT INTO t VALUES (?, ?)', [i, `n${i}`]);
  });
  await db.close();
  db = await open({ name: 'idb4', storage: 'indexeddb' });
  assert.deepEqual(await db.query('SELECT count(*) AS n, sum(id) AS s FROM t'), [{ n: 100_000, s: 5_000_050_000 }]);
  await db.close();
});

test('second_open_of_an_open_indexeddb_database_should_be_busy', async () => {
  const a = await open({ name: 'idb5', storage: 'indexeddb' });
  assert.equal((await rejection(open({ name: 'idb5', storage: 'indexeddb' }))).code, 'busy');
  await a.close();
});

// ---- faults inside IndexedDB itself -----------------------------------------
// Armed by the tests below: the Nth readwrite transaction from now is aborted
// after its requests are queued (as a quota failure at commit time would),
// or one of its puts fails as a request.
const idbFault = { abortAt: 0, failPutAt: 0, seen: 0 };
const idbTransaction = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function (...args) {
  const tx = idbTransaction.apply(this, args);
  if (tx.mode !== 'readwrite' || !(idbFault.abortAt || idbFault.failPutAt)) return tx;
  const n = ++idbFault.seen;
  if (n === idbFault.abortAt) queueMicrotask(() => { try { tx.abort(); } catch { /* already finished */ } });
  if (n === idbFault.failPutAt) {
    // add() of a key that is there fails asynchronously with ConstraintError.
    const objectStore = tx.objectStore.bind(tx);
    tx.objectStore = (name) => {
      const store = objectStore(name);
      if (name === 'pages') store.put = (value, key) => store.add(value, key);
      return store;
    };
  }
  return tx;
};
function armIdbFault(f) { Object.assign(idbFault, { abortAt: 0, failPutAt: 0, seen: 0 }, f); }

/** Every table's name and rows, in a comparable form. */
async function image(db) {
  const out = {};
  for (const { name } of await db.query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")) {
    const rows = await db.query(`SELECT CASE WHEN typeof(v) = 'blob' THEN 'blob ' || length(v) ELSE v END AS v FROM "${name}" ORDER BY rowid`);
    out[name] = rows.map((r) => r.v);
  }
  return out;
}

// One commit each, touching different pages (schema, new tables, leaves).
const SCRIPT = ['CREATE TABLE a(v)', 'INSERT INTO a VALUES (1)', 'CREATE TABLE b(v)', 'INSERT INTO b VALUES (1)',
  'INSERT INTO a VALUES (2)', 'CREATE TABLE c(v)', 'INSERT INTO b VALUES (2)', 'INSERT INTO c VALUES (1)',
  'INSERT INTO a VALUES (zeroblob(5000))', 'DROP TABLE b', 'INSERT INTO c VALUES (2)'];

test('a_failed_indexeddb_commit_should_fail_the_commits_queued_behind_it_and_leave_an_exact_prefix', async () => {
  // The state after each prefix of the script, one commit at a time.
  const ref = await open({ name: 'idb-prefix-ref', storage: 'memory' });
  await ref.exec('CREATE TABLE base(v); INSERT INTO base VALUES (0)');
  const prefixes = [await image(ref)];
  for (const sql of SCRIPT) {
    await ref.exec(sql);
    prefixes.push(await image(ref));
  }
  await ref.close();
  for (let k = 1; k <= SCRIPT.length; k++) {
    const name = `idb-prefix-${k}`;
    let db = await open({ name, storage: 'indexeddb' });
    await db.exec('CREATE TABLE base(v); INSERT INTO base VALUES (0)');
    // One call, many commits: they are all handed to IndexedDB before the
    // first of them completes. The kth fails.
    armIdbFault({ abortAt: k });
    const e = await rejection(db.exec(SCRIPT.join('; ')));
    armIdbFault({});
    assert.equal(e.code, 'io', `commit ${k}: ${e.message}`);
    // Neither memory nor storage keeps anything from the failed commit on.
    assert.deepEqual(await image(db), prefixes[k - 1], `commit ${k} failed: the open database`);
    await db.exec('INSERT INTO base VALUES (1)');
    await db.close();
    db = await open({ name, storage: 'indexeddb' });
    assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }], `commit ${k} failed: reopened`);
    const want = { ...prefixes[k - 1], base: [0, 1] };
    assert.deepEqual(await image(db), want, `commit ${k} failed: reopened, exactly the commits before it and the one after recovery`);
    await db.close();
  }
});

test('a_failed_request_inside_an_indexeddb_commit_should_fail_the_whole_commit', async () => {
  let db = await open({ name: 'idb-request', storage: 'indexeddb' });
  await db.exec('CREATE TABLE t(v); INSERT INTO t VALUES (1)');
  armIdbFault({ failPutAt: 1 });
  const e = await rejection(db.exec('INSERT INTO t VALUES (2)'));
  armIdbFault({});
  assert.equal(e.code, 'io', e.message);
  assert.deepEqual(await db.query('SELECT v FROM t'), [{ v: 1 }]);
  await db.close();
  db = await open({ name: 'idb-request', storage: 'indexeddb' });
  assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  assert.deepEqual(await db.query('SELECT v FROM t'), [{ v: 1 }]);
  await db.close();
});

test('indexeddb_commit_past_the_size_limit_should_fail_too_big_and_keep_the_last_commit', async () => {
  // IndexedDB keeps the whole image in JS memory, so its size is capped
  // (1 GiB; lowered here so that the test stays small).
  let db = await open({ name: 'idb-limit', storage: 'indexeddb', maxIndexedDBBytes: 256 * 1024 });
  await db.exec('CREATE TABLE t(v BLOB)');
  await db.exec('INSERT INTO t VALUES (randomblob(100000))');
  const err = await rejection(db.exec('INSERT INTO t VALUES (randomblob(300000))'));
  assert.equal(err.code, 'too_big');
  assert.match(err.message, /opfs/);
  assert.deepEqual(await db.query('SELECT count(*) AS n FROM t'), [{ n: 1 }]);
  await db.exec('INSERT INTO t VALUES (randomblob(1000))');
  await db.close();
  db = await open({ name: 'idb-limit', storage: 'indexeddb' });
  assert.deepEqual(await db.query('SELECT count(*) AS n FROM t'), [{ n: 2 }]);
  assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  await db.close();
});

test('indexeddb_database_should_start_from_an_export_in_one_commit_and_export_the_same_rows', async () => {
  const src = await open({ name: 'idb-src', storage: 'memory' });
  await src.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  await src.exec('WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 700) INSERT INTO t SELECT i, randomblob(900) FROM c');
  const bytes = await src.export();
  const want = await src.query('SELECT count(*) AS n, sum(length(v)) AS l FROM t');
  await src.close();
  let db = await open({ name: 'idb-from', storage: 'indexeddb', from: bytes });
  assert.equal(db.status().created, true);
  assert.deepEqual(await db.query('SELECT count(*) AS n, sum(length(v)) AS l FROM t'), want);
  await db.close();
  db = await open({ name: 'idb-from', storage: 'indexeddb', from: bytes });
  assert.equal(db.status().created, false, 'an existing database ignores from');
  assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  const again = await db.export();
  assert.equal(again.length, bytes.length);
  await db.close();
  const copy = await open({ name: 'idb-copy', storage: 'memory', from: again });
  assert.deepEqual(await copy.query('SELECT count(*) AS n, sum(length(v)) AS l FROM t'), want);
  await copy.close();
  // Past the store's limit nothing is taken.
  const e = await rejection(open({ name: 'idb-from-big', storage: 'indexeddb', from: bytes, maxIndexedDBBytes: 256 * 1024 }));
  assert.equal(e.code, 'too_big');
  db = await open({ name: 'idb-from-big', storage: 'indexeddb' });
  assert.equal(db.status().created, true);
  await db.close();
});
