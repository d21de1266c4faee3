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
