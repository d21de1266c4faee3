// 'file' storage in Node: durable across reopen, one writer across processes,
// and storage failures that never cost the last good commit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../../bindings/index.js';
import { rejection, tempDir } from './helpers.js';

const dir = tempDir('file');
let n = 0;
const freshPath = () => path.join(dir, `db${++n}`, 'app.db');

function errnoError(code) {
  const e = new Error(`${code}: injected`);
  e.code = code;
  return e;
}

test('file_commit_should_survive_close_and_reopen', async () => {
  const p = freshPath();
  let db = await open({ name: 'f', path: p });
  assert.equal(db.status().storage, 'file');
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  await db.transaction(async (tx) => {
    for (let i = 0; i < 10; i++) await tx.exec('INSERT INTO t(v) VALUES (?)', [`v${i}`]);
  });
  await db.close();
  db = await open({ name: 'f', storage: 'file', path: p });
  assert.deepEqual(await db.query('SELECT count(*) AS n FROM t'), [{ n: 10 }]);
  assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  await db.close();
  assert.ok(!fs.existsSync(`${p}-lock`), 'close releases the lock file');
});

test('file_open_in_another_process_should_be_busy', async () => {
  const p = freshPath();
  const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/hold-open.js', import.meta.url)), p],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
      child.on('exit', () => reject(new Error('holder exited')));
    });
    const e = await rejection(open({ name: 'f', storage: 'file', path: p }));
    assert.equal(e.code, 'busy');
    assert.match(e.message, new RegExp(`process ${child.pid}`));
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  // the holder died without closing: its lock is stale and is taken over
  const db = await open({ name: 'f', storage: 'file', path: p });
  assert.deepEqual(await db.query("SELECT name FROM sqlite_schema"), [{ name: 't' }]);
  await db.close();
});

/** Opens p with a file wrapper whose methods can be made to fail. */
async function openFaulty(p) {
  const faults = { main: {}, log: {} };
  const wrapFile = (f, which) => {
    const plan = faults[which];
    return {
      read: (u8, off) => f.read(u8, off),
      write(u8, off) {
        if (plan.tornWrite) {
          plan.tornWrite = false;
          f.write(u8.subarray(0, Math.floor(u8.length / 2)), off);
          throw errnoError('ENOSPC');
        }
        if (plan.write) { const e = plan.write; plan.write = null; throw e; }
        return f.write(u8, off);
      },
      size: () => f.size(),
      truncate: (s) => f.truncate(s),
      sync() {
        if (plan.sync) { const e = plan.sync; plan.sync = null; throw e; }
        return f.sync();
      },
      close: () => f.close(),
    };
  };
  const db = await open({ name: 'faulty', storage: 'file', path: p, wrapFile });
  return { db, faults };
}

test('full_disk_mid_commit_should_give_storage_full_and_keep_the_last_good_commit', async () => {
  const p = freshPath();
  const { db, faults } = await openFaulty(p);
  await db.exec('CREATE TABLE t(v)');
  await db.exec('INSERT INTO t VALUES (1)');
  faults.log.write = errnoError('ENOSPC');
  const e = await rejection(db.exec('INSERT INTO t VALUES (2)'));
  assert.equal(e.code, 'storage_full');
  assert.match(e.message, /ENOSPC/);
  assert.deepEqual(await db.query('SELECT v FROM t'), [{ v: 1 }]);
  // a torn record (half written, then the disk filled) is never replayed
  faults.log.tornWrite = true;
  const e2 = await rejection(db.transaction(async (tx) => {
    await tx.exec('INSERT INTO t VALUES (3)');
    await tx.exec('INSERT INTO t SELECT v + 10 FROM t');
  }));
  assert.equal(e2.code, 'storage_full');
  assert.deepEqual(await db.query('SELECT v FROM t'), [{ v: 1 }]);
  // the database keeps working afterwards
  await db.exec('INSERT INTO t VALUES (4)');
  await db.close();
  const again = await open({ name: 'faulty', storage: 'file', path: p });
  assert.deepEqual(await again.query('SELECT v FROM t ORDER BY v'), [{ v: 1 }, { v: 4 }]);
  assert.deepEqual(await again.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  await again.close();
});

test('failed_fsync_should_give_io_and_not_claim_the_commit', async () => {
  const p = freshPath();
  const { db, faults } = await openFaulty(p);
  await db.exec('CREATE TABLE t(v)');
  faults.log.sync = errnoError('EIO');
  const e = await rejection(db.exec('INSERT INTO t VALUES (1)'));
  assert.equal(e.code, 'io');
  assert.deepEqual(await db.query('SELECT count(*) AS n FROM t'), [{ n: 0 }]);
  await db.exec('INSERT INTO t VALUES (2)');
  assert.deepEqual(await db.query('SELECT v FROM t'), [{ v: 2 }]);
  await db.close();
});

test('garbage_database_file_should_fail_open_with_corrupt', async () => {
  const p = freshPath();
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, Buffer.alloc(8192, 0x5a));
  const e = await rejection(open({ name: 'bad', storage: 'file', path: p }));
  assert.equal(e.code, 'corrupt');
  assert.ok(!fs.existsSync(`${p}-lock`), 'a failed open releases its lock');
  assert.equal(fs.readFileSync(p).length, 8192, 'a failed open does not touch the file');
});

test('hundred_thousand_rows_in_one_transaction_should_round_trip_on_file', { timeout: 120_000 }, async () => {
  const p = freshPath();
  let db = await open({ name: 'big', storage: 'file', path: p });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score REAL)');
  await db.transaction(async (tx) => {
    for (let i = 1; i <= 100_000; i++) await tx.exec('INSERT INTO t VALUES (?, ?, ?)', [i, `name ${i}`, i / 2]);
  });
  await db.close();
  db = await open({ name: 'big', storage: 'file', path: p });
  assert.deepEqual(await db.query('SELECT count(*) AS n, sum(id) AS s, max(name) AS m FROM t'),
    [{ n: 100_000, s: 5_000_050_000, m: 'name 99999' }]);
  const rows = await db.query('SELECT * FROM t');
  assert.equal(rows.length, 100_000);
  assert.deepEqual(rows[41], { id: 42, name: 'name 42', score: 21 });
  await db.close();
});
