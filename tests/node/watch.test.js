// Live queries: db.watch re-runs a query once per commit that changed a
// table it reads (a local write, a pulled page), never for other tables, and
// reports failures as FerryError through the callback or the iterator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, FerryError } from '../../bindings/index.js';
import { startWorld } from './sync-helpers.js';

/** Collects a watcher's calls; next() resolves with the call after those seen so far. */
function recorder() {
  const calls = [];
  const waiters = [];
  const fn = (rows, error) => {
    calls.push({ rows, error });
    for (const w of waiters.splice(0)) {
      if (w.n <= calls.length) w.resolve(); else waiters.push(w);
    }
  };
  fn.calls = calls;
  fn.nth = (n) => (calls.length >= n ? Promise.resolve(calls[n - 1]) : new Promise((resolve) => {
    waiters.push({ n, resolve: () => resolve(calls[n - 1]) });
  }));
  return fn;
}

// Every re-run a commit causes is queued inside that commit's turn of the
// database's queue, so a query made after it returns only once they ran.
const settled = (db) => db.query('SELECT 1');

test('watch_calls_back_with_the_rows_then_once_per_commit_that_changes_a_table_it_reads', async () => {
  const db = await open({ name: 'watch-commit', storage: 'memory' });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE other(x)');
  const cb = recorder();
  const stop = db.watch('SELECT v FROM t ORDER BY id', [], cb);
  assert.deepEqual((await cb.nth(1)).rows, []);
  // Ten rows in one transaction: one re-run, not ten.
  await db.transaction(async (tx) => {
    for (let i = 0; i < 10; i++) await tx.exec('INSERT INTO t(v) VALUES (?)', [`r${i}`]);
  });
  await settled(db);
  assert.equal(cb.calls.length, 2);
  assert.equal(cb.calls[1].rows.length, 10);
  // A table the query does not read causes nothing; a rolled-back one neither.
  await db.exec('INSERT INTO other VALUES (1)');
  await db.transaction(async (tx) => { await tx.exec("INSERT INTO t(v) VALUES ('gone')"); throw new Error('no'); }).catch(() => {});
  await db.exec("UPDATE t SET v = 'changed' WHERE id = 1");
  await settled(db);
  assert.equal(cb.calls.length, 3);
  assert.equal(cb.calls[2].rows[0].v, 'changed');
  stop();
  await db.exec("DELETE FROM t");
  await settled(db);
  assert.equal(cb.calls.length, 3, 'no call after unsubscribe');
  await db.close();
});

test('watch_over_a_view_or_a_join_reruns_when_a_table_beneath_it_changes', async () => {
  const db = await open({ name: 'watch-view', storage: 'memory' });
  await db.exec(`CREATE TABLE a(id INTEGER PRIMARY KEY, name TEXT);
    CREATE TABLE b(id TEXT PRIMARY KEY, a_id INTEGER) WITHOUT ROWID;
    CREATE VIEW ab AS SELECT a.name, b.id FROM a JOIN b ON b.a_id = a.id;
    INSERT INTO a VALUES (1, 'one')`);
  const cb = recorder();
  db.watch('SELECT count(*) AS n FROM ab', cb);
  assert.equal((await cb.nth(1)).rows[0].n, 0);
  await db.exec("INSERT INTO b VALUES ('x', 1)");   // a WITHOUT ROWID table
  assert.equal((await cb.nth(2)).rows[0].n, 1);
  await db.exec('DELETE FROM a');
  assert.equal((await cb.nth(3)).rows[0].n, 0);
  await db.close();
});

test('watch_as_an_async_iterator_yields_each_result_and_unsubscribes_when_the_loop_breaks', async () => {
  const db = await open({ name: 'watch-iter', storage: 'memory' });
  await db.exec('CREATE TABLE t(v INTEGER)');
  const seen = [];
  const live = db.watch('SELECT sum(v) AS s FROM t', []);
  const writer = (async () => {
    for (let i = 1; i <= 3; i++) await db.exec('INSERT INTO t VALUES (?)', [i]);
  })();
  for await (const rows of live) {
    seen.push(rows[0].s);
    if (rows[0].s === 6) break;
  }
  await writer;
  assert.equal(seen[0] === null || seen[0] >= 1, true);
  assert.equal(seen.at(-1), 6);
  // Values only grow: each one is a committed state, none is repeated.
  assert.deepEqual([...new Set(seen)], seen);
  // After the break no commit runs the query again (counted at the real snapshot call).
  let runs = 0;
  const snapshot = db.snapshot.bind(db);
  db.snapshot = (...args) => { runs++; return snapshot(...args); };
  await db.exec('INSERT INTO t VALUES (0)');
  await settled(db);
  assert.equal(runs, 0);
  const cb = recorder();
  db.watch('SELECT count(*) AS n FROM t', cb);
  await cb.nth(1);
  await db.exec('INSERT INTO t VALUES (4)');
  await cb.nth(2);
  await db.close();
});

test('closing_the_database_ends_its_live_queries', async () => {
  const db = await open({ name: 'watch-close', storage: 'memory' });
  await db.exec('CREATE TABLE t(v)');
  const it = db.watch('SELECT count(*) AS n FROM t')[Symbol.asyncIterator]();
  assert.equal((await it.next()).value[0].n, 0);
  const waiting = it.next();
  await db.close();
  assert.deepEqual(await waiting, { value: undefined, done: true });
  assert.throws(() => db.watch('SELECT 1', () => {}), (e) => e.code === 'closed');
});

test('watch_reports_sql_that_does_not_prepare_or_that_writes_as_a_ferry_error', async () => {
  const db = await open({ name: 'watch-errors', storage: 'memory' });
  await db.exec('CREATE TABLE t(v)');
  const cb = recorder();
  db.watch('SELECT nope FROM t', [], cb);
  const { rows, error } = await cb.nth(1);
  assert.equal(rows, undefined);
  assert.ok(error instanceof FerryError);
  assert.equal(error.code, 'sql');
  const w = recorder();
  db.watch('DELETE FROM t', [], w);
  assert.equal((await w.nth(1)).error.code, 'misuse');
  const bad = db.watch('SELECT v FROM t WHERE v = ?', ['a', 'b']);
  await assert.rejects(bad[Symbol.asyncIterator]().next(), (e) => e instanceof FerryError && e.code === 'range');
  assert.throws(() => db.watch(42, [], () => {}), (e) => e.code === 'type');
  // The database goes on working after all of it.
  await db.exec('INSERT INTO t VALUES (1)');
  await settled(db);
  assert.equal(cb.calls.length, 1);
  await db.close();
});

test('a_pulled_page_reaches_a_watcher_once_per_page', async () => {
  const w = await startWorld('watch-pull', { server: { pageLimit: 10 } });
  try {
    const a = await w.client('a');
    const b = await w.client('b');
    await a.sync();
    await b.sync();
    const cb = recorder();
    b.watch('SELECT id, name FROM Customer ORDER BY id', [], cb);
    await cb.nth(1);
    await a.transaction(async (tx) => {
      for (let i = 0; i < 25; i++) await tx.exec('INSERT INTO Customer(id, name) VALUES (?, ?)', [`c${String(i).padStart(2, '0')}`, `n${i}`]);
    });
    await a.sync();
    const r = await b.sync();
    assert.equal(r.pulled, 25);
    await settled(b);
    // Three pages of at most 10: three commits that changed Customer.
    assert.equal(cb.calls.length, 4);
    assert.deepEqual(cb.calls.map((c) => c.rows.length), [0, 10, 20, 25]);
    // A sync that pulls nothing changes no table the query reads.
    await b.sync();
    await settled(b);
    assert.equal(cb.calls.length, 4);
  } finally {
    await w.stop();
  }
});
