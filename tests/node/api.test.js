// The local API (README, Use) on memory storage: values, parameters,
// transactions, errors and events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, FerryError, codes } from '../../bindings/index.js';
import { rejection } from './helpers.js';

let n = 0;
const fresh = () => open({ name: `api${++n}`, storage: 'memory' });

test('exec_should_report_changes_and_last_insert_rowid', async () => {
  const db = await fresh();
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  const r = await db.exec('INSERT INTO t(v) VALUES (?), (?)', ['a', 'b']);
  assert.deepEqual(r, { changes: 2, lastInsertRowid: 2 });
  assert.deepEqual(await db.exec('UPDATE t SET v = v || v'), { changes: 2, lastInsertRowid: 2 });
  await db.close();
});

test('values_should_round_trip_with_their_types', async () => {
  const db = await fresh();
  await db.exec('CREATE TABLE v(a, b, c, d, e, f, g)');
  const blob = new Uint8Array([0, 1, 2, 255]);
  await db.exec('INSERT INTO v VALUES (?, ?, ?, ?, ?, ?, ?)',
    [null, true, 42, 1.25, 2n ** 62n, 'text é 日本', blob]);
  const [row] = await db.query('SELECT * FROM v');
  assert.deepEqual(row, { a: null, b: 1, c: 42, d: 1.25, e: 2n ** 62n, f: 'text é 日本', g: blob });
  const [big] = await db.query('SELECT 9007199254740993 AS x, -9007199254740993 AS y, 9007199254740991 AS z');
  assert.deepEqual(big, { x: 9007199254740993n, y: -9007199254740993n, z: 9007199254740991 });
  await db.close();
});

test('named_parameters_should_bind_with_or_without_prefix', async () => {
  const db = await fresh();
  const rows = await db.query('SELECT :a AS a, @b AS b, $c AS c', { a: 1, '@b': 'two', c: null });
  assert.deepEqual(rows, [{ a: 1, b: 'two', c: null }]);
  await db.close();
});

test('wrong_parameters_should_fail_with_stable_codes', async () => {
  const db = await fresh();
  for (const bad of [[{}], [undefined], [() => 1], [Symbol('s')], [new Date()]]) {
    const e = await rejection(db.query('SELECT ?', bad));
    assert.ok(e instanceof FerryError);
    assert.equal(e.code, codes.TYPE);
  }
  assert.equal((await rejection(db.query('SELECT ?', [2n ** 64n]))).code, 'range');
  assert.equal((await rejection(db.query('SELECT ?', []))).code, 'range');
  assert.equal((await rejection(db.query('SELECT ?', [1, 2]))).code, 'range');
  assert.equal((await rejection(db.query('SELECT :a', { b: 1 }))).code, 'range');
  assert.equal((await rejection(db.query('SELECT 1', 'nope'))).code, 'type');
  assert.equal((await rejection(db.query(42))).code, 'type');
  assert.equal((await rejection(db.exec('SELECT ?; SELECT ?', [1]))).code, 'misuse');
  // the database is still usable
  assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }]);
  await db.close();
});

test('invalid_sql_should_fail_with_sql_code_and_message', async () => {
  const db = await fresh();
  const e = await rejection(db.exec('SELEC 1'));
  assert.equal(e.code, 'sql');
  assert.match(e.message, /syntax error/);
  const e2 = await rejection(db.query('SELECT * FROM missing_table'));
  assert.equal(e2.code, 'sql');
  assert.match(e2.message, /no such table/);
  await db.exec('CREATE TABLE u(x UNIQUE NOT NULL)');
  await db.exec('INSERT INTO u VALUES (1)');
  assert.equal((await rejection(db.exec('INSERT INTO u VALUES (1)'))).code, 'constraint');
  assert.equal((await rejection(db.exec('INSERT INTO u VALUES (NULL)'))).code, 'constraint');
  await db.close();
});

test('transaction_should_commit_atomically_and_return_the_callback_value', async () => {
  const db = await fresh();
  await db.exec('CREATE TABLE t(v)');
  const r = await db.transaction(async (tx) => {
    await tx.exec('INSERT INTO t VALUES (1)');
    await tx.exec('INSERT INTO t VALUES (2)');
    return (await tx.query('SELECT count(*) AS n FROM t'))[0].n;
  });
  assert.equal(r, 2);
  assert.deepEqual(await db.query('SELECT count(*) AS n FROM t'), [{ n: 2 }]);
  await db.close();
});

test('transaction_should_roll_back_when_the_callback_throws', async () => {
  const db = await fresh();
  await db.exec('CREATE TABLE t(v)');
  await db.exec('INSERT INTO t VALUES (0)');
  const boom = new Error('boom');
  const e = await rejection(db.transaction(async (tx) => {
    await tx.exec('INSERT INTO t VALUES (1)');
    await tx.exec('CREATE TABLE other(x)');
    throw boom;
  }));
  assert.equal(e, boom);
  assert.deepEqual(await db.query('SELECT v FROM t'), [{ v: 0 }]);
  assert.deepEqual(await db.query("SELECT name FROM sqlite_schema WHERE name = 'other'"), []);
  // a failing statement inside also rolls back everything
  const e2 = await rejection(db.transaction(async (tx) => {
    await tx.exec('INSERT INTO t VALUES (1)');
    await tx.exec('INSERT INTO nowhere VALUES (1)');
  }));
  assert.equal(e2.code, 'sql');
  assert.deepEqual(await db.query('SELECT v FROM t'), [{ v: 0 }]);
  await db.close();
});

test('nested_transaction_should_join_the_outer_one', async () => {
  const db = await fresh();
  await db.exec('CREATE TABLE t(v)');
  await db.transaction(async (tx) => {
    await tx.exec('INSERT INTO t VALUES (1)');
    await tx.transaction(async (inner) => { await inner.exec('INSERT INTO t VALUES (2)'); });
    // an inner failure undoes only the inner part when the outer catches it
    await tx.transaction(async (inner) => {
      await inner.exec('INSERT INTO t VALUES (3)');
      throw new Error('inner');
    }).catch(() => {});
  });
  assert.deepEqual(await db.query('SELECT v FROM t ORDER BY v'), [{ v: 1 }, { v: 2 }]);
  // and an inner failure that escapes rolls back the whole transaction
  await rejection(db.transaction(async (tx) => {
    await tx.exec('INSERT INTO t VALUES (4)');
    await tx.transaction(async () => { throw new Error('escapes'); });
  }));
  assert.deepEqual(await db.query('SELECT count(*) AS n FROM t'), [{ n: 2 }]);
  await db.close();
});

test('calls_should_run_in_the_order_made', async () => {
  const db = await fresh();
  await db.exec('CREATE TABLE t(v)');
  const all = [];
  for (let i = 0; i < 50; i++) all.push(db.exec('INSERT INTO t VALUES (?)', [i]));
  all.push(db.transaction(async (tx) => tx.exec('INSERT INTO t VALUES (50)')));
  await Promise.all(all);
  const rows = await db.query('SELECT v FROM t ORDER BY rowid');
  assert.deepEqual(rows.map((r) => r.v), [...Array(51).keys()]);
  await db.close();
});

test('change_event_should_fire_after_committed_writes_only', async () => {
  const db = await fresh();
  const seen = [];
  db.on('change', (e) => seen.push(e.changes));
  await db.exec('CREATE TABLE t(v)');
  await db.exec('INSERT INTO t VALUES (1), (2)');
  await db.query('SELECT * FROM t');
  await rejection(db.transaction(async (tx) => { await tx.exec('INSERT INTO t VALUES (3)'); throw new Error('x'); }));
  await db.transaction(async (tx) => { await tx.exec('INSERT INTO t VALUES (4)'); });
  assert.deepEqual(seen, [2, 1]);
  assert.throws(() => db.on('nope', () => {}), (e) => e.code === 'misuse');
  await db.close();
});

test('closed_database_should_refuse_calls_with_closed_code', async () => {
  const db = await fresh();
  await db.close();
  assert.equal((await rejection(db.exec('SELECT 1'))).code, 'closed');
  assert.equal((await rejection(db.query('SELECT 1'))).code, 'closed');
  assert.equal((await rejection(db.transaction(async () => {}))).code, 'closed');
  await db.close(); // a second close is harmless
});

test('open_should_reject_bad_options_clearly', async () => {
  assert.equal((await rejection(open({ storage: 'memory' }))).code, 'misuse');
  assert.equal((await rejection(open({ name: 'a/b', storage: 'memory' }))).code, 'misuse');
  assert.equal((await rejection(open({ name: 'ok', storage: 'floppy' }))).code, 'misuse');
  assert.equal((await rejection(open({ name: 'ok', storage: 'opfs' }))).code, 'unsupported');
  assert.equal((await rejection(open({ name: 'ok', storage: 'file' }))).code, 'misuse');
});

test('auto_storage_in_node_should_pick_file_with_a_path_else_memory', async () => {
  const mem = await open({ name: 'auto1' });
  assert.equal(mem.status().storage, 'memory');
  await mem.close();
});

test('second_open_of_the_same_name_should_be_busy', async () => {
  const a = await open({ name: 'same', storage: 'memory' });
  assert.equal((await rejection(open({ name: 'same', storage: 'memory' }))).code, 'busy');
  await a.close();
  const b = await open({ name: 'same', storage: 'memory' });
  await b.close();
});

test('statement_cache_should_not_leak_state_between_calls', async () => {
  const db = await fresh();
  await db.exec('CREATE TABLE t(a, b)');
  for (let i = 0; i < 100; i++) await db.exec('INSERT INTO t VALUES (?, ?)', [i, `s${i}`]);
  // many distinct statements evict cached ones; results stay right
  for (let i = 0; i < 60; i++) {
    const rows = await db.query(`SELECT b FROM t WHERE a = ? -- ${i % 40}`, [i]);
    assert.deepEqual(rows, [{ b: `s${i}` }]);
  }
  await db.close();
});
