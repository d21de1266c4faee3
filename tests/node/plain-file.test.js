// A plain SQLite file at rest (issue 11): a closed 'file' database, and the
// bytes of db.export(), are SQLite files that a SQLite which is not ferry's
// (Debian's sqlite3 shell) reads; open({ from }) starts a separate database
// from such bytes, and refuses bytes that are not one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { open } from '../../bindings/index.js';
import { rejection, tempDir } from './helpers.js';
import { startWorld } from './sync-helpers.js';

/** Rows of one statement run by the sqlite3 shell on `file` ([] for none). */
function shell(file, sql, { readonly = true } = {}) {
  let out;
  try {
    out = execFileSync('sqlite3', [...(readonly ? ['-readonly'] : []), '-json', file, sql], { encoding: 'utf8' });
  } catch (e) {
    if (e.code === 'ENOENT') throw new Error('these tests need the sqlite3 shell (scripts/deps.sh installs it)');
    throw new Error(`sqlite3 failed on ${path.basename(file)}: ${e.stderr || e.message}`);
  }
  return out.trim() ? JSON.parse(out) : [];
}

async function filled(dbPath, rows = 200, extra = {}) {
  const db = await open({ name: 'plain', storage: 'file', path: dbPath, ...extra });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB)');
  await db.exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${rows})
                 INSERT INTO t SELECT i, 'row ' || i, randomblob(500) FROM c`);
  return db;
}

const SUMMARY = "SELECT count(*) AS n, sum(id) AS ids, max(v) AS top, sum(length(b)) AS bytes FROM t";

test('closed_file_database_should_be_a_plain_sqlite_file_that_the_sqlite3_shell_reads_and_writes', async () => {
  const dbPath = path.join(tempDir('plain-close'), 'app.db');
  const db = await filled(dbPath);
  const want = await db.query(SUMMARY);
  assert.equal(fs.statSync(dbPath).size, 0, 'before the close the commits are in the log only');
  await db.close();
  assert.equal(fs.statSync(`${dbPath}-log`).size, 64, 'the log keeps only its header');
  assert.deepEqual(shell(dbPath, 'PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  assert.deepEqual(shell(dbPath, SUMMARY), want);
  // Another SQLite may write it while ferry has it closed; ferry reads that.
  shell(dbPath, 'CREATE TABLE outside(x); INSERT INTO outside VALUES (42)', { readonly: false });
  const again = await open({ name: 'plain', storage: 'file', path: dbPath });
  try {
    assert.deepEqual(await again.query('SELECT x FROM outside'), [{ x: 42 }]);
    assert.deepEqual(await again.query(SUMMARY), want);
  } finally {
    await again.close();
  }
});

test('export_should_give_a_sqlite_file_that_the_sqlite3_shell_reads_with_the_same_rows', async () => {
  const dir = tempDir('plain-export');
  const db = await filled(path.join(dir, 'app.db'), 3000);
  try {
    await db.exec("UPDATE t SET v = 'changed' WHERE id = 7");
    const bytes = await db.export();
    assert.ok(bytes instanceof Uint8Array);
    const [{ page_count: pages }] = await db.query('PRAGMA page_count');
    assert.equal(bytes.length, pages * 4096);
    const copy = path.join(dir, 'export.sqlite');
    fs.writeFileSync(copy, bytes);
    assert.deepEqual(shell(copy, 'PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
    assert.deepEqual(shell(copy, SUMMARY), await db.query(SUMMARY));
    assert.deepEqual(shell(copy, 'SELECT v FROM t WHERE id = 7'), [{ v: 'changed' }]);
    // An open transaction's writes are not in it: export waits for its end.
    let inside;
    const tx = db.transaction(async (t) => {
      await t.exec("UPDATE t SET v = 'in the transaction' WHERE id = 8");
      inside = db.export();
      await new Promise((r) => setTimeout(r, 20));
    });
    await tx;
    fs.writeFileSync(copy, await inside);
    assert.deepEqual(shell(copy, 'SELECT v FROM t WHERE id = 8'), [{ v: 'in the transaction' }]);
  } finally {
    await db.close();
  }
});

test('database_opened_from_an_export_should_hold_the_same_rows_and_ignore_from_once_it_exists', async () => {
  const dir = tempDir('plain-from');
  const src = await filled(path.join(dir, 'a.db'), 1000);
  const bytes = await src.export();
  const want = await src.query(SUMMARY);
  await src.close();
  for (const storage of ['file', 'memory']) {
    const opts = { name: `copy-${storage}`, storage, path: path.join(dir, 'copy.db') };
    const copy = await open({ ...opts, from: bytes });
    assert.equal(copy.status().created, true);
    assert.deepEqual(await copy.query(SUMMARY), want);
    assert.deepEqual(await copy.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
    await copy.exec("INSERT INTO t(v) VALUES ('only in the copy')");
    await copy.close();
    if (storage === 'memory') continue;
    // The copy is a plain file of its own too.
    assert.equal(shell(opts.path, 'SELECT count(*) AS n FROM t')[0].n, 1001);
    const reopened = await open({ ...opts, from: new Uint8Array(10) });
    assert.equal(reopened.status().created, false, 'an existing database ignores from');
    assert.equal((await reopened.query('SELECT count(*) AS n FROM t'))[0].n, 1001);
    await reopened.close();
  }
  // The blob and ArrayBuffer forms are the same bytes.
  for (const from of [new Blob([bytes]), bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)]) {
    const copy = await open({ name: 'copy-forms', storage: 'memory', from });
    assert.deepEqual(await copy.query(SUMMARY), want);
    await copy.close();
  }
});

test('from_bytes_that_are_not_a_whole_sqlite_database_should_fail_with_not_a_database_and_store_nothing', async () => {
  const dir = tempDir('plain-bad');
  const src = await filled(path.join(dir, 'a.db'), 2000);
  const bytes = await src.export();
  await src.close();
  const junk = new Uint8Array(64 * 1024).map((_, i) => (i * 131) & 0xff);
  const pageCut = bytes.subarray(0, Math.floor(bytes.length / 4096 / 2) * 4096);
  const damaged = bytes.slice();
  damaged.fill(0x5a, 5 * 4096, 6 * 4096);
  const cases = { junk, header: bytes.subarray(0, 100), 'cut mid-page': bytes.subarray(0, bytes.length - 1000), 'cut at a page': pageCut, damaged };
  for (const [what, from] of Object.entries(cases)) {
    const dbPath = path.join(dir, `bad-${what.replace(/\W/g, '-')}.db`);
    const e = await rejection(open({ name: 'bad', storage: 'file', path: dbPath, from }));
    assert.equal(e.code, 'not_a_database', `${what}: ${e.message}`);
    assert.ok(!fs.existsSync(`${dbPath}-lock`), `${what}: a failed open releases its lock`);
    const after = await open({ name: 'bad', storage: 'file', path: dbPath });
    assert.equal(after.status().created, true, `${what}: nothing was stored`);
    assert.deepEqual(await after.query('SELECT count(*) AS n FROM sqlite_schema'), [{ n: 0 }]);
    await after.close();
    const mem = await rejection(open({ name: 'bad', storage: 'memory', from }));
    assert.equal(mem.code, 'not_a_database', `${what} (memory): ${mem.message}`);
  }
  for (const from of ['SQLite format 3', 42, { length: 4096 }]) {
    assert.equal((await rejection(open({ name: 'bad', storage: 'memory', from }))).code, 'type');
  }
});

test('a_failed_checkpoint_at_close_should_lose_nothing_and_the_next_close_should_fold_the_log', async () => {
  const dbPath = path.join(tempDir('plain-ckfail'), 'app.db');
  let failMain = false;
  const wrapFile = (f, which) => ({
    ...f,
    read: (u8, off) => f.read(u8, off),
    write(u8, off) {
      if (which === 'main' && failMain) throw Object.assign(new Error('no space left'), { code: 'ENOSPC' });
      return f.write(u8, off);
    },
    size: () => f.size(), truncate: (n) => f.truncate(n), sync: () => f.sync(), close: () => f.close(),
  });
  const db = await filled(dbPath, 300, { wrapFile });
  const want = await db.query(SUMMARY);
  failMain = true;
  await db.close();
  assert.ok(fs.statSync(`${dbPath}-log`).size > 64, 'the commits stay in the log');
  const again = await open({ name: 'plain', storage: 'file', path: dbPath });
  assert.deepEqual(await again.query(SUMMARY), want);
  assert.deepEqual(await again.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
  await again.close();
  assert.equal(fs.statSync(`${dbPath}-log`).size, 64);
  assert.deepEqual(shell(dbPath, SUMMARY), want);
});

test('a_copy_should_sync_on_under_a_client_id_of_its_own_so_the_server_keeps_both_devices_changes', async () => {
  const w = await startWorld('plain-copy');
  try {
    const a = await w.client('a');
    await a.sync();
    await a.exec("INSERT INTO Customer(id, name) VALUES ('c1', 'Ada')");
    await a.sync();
    await a.exec("UPDATE Customer SET name = 'Ada (pending)' WHERE id = 'c1'");
    const bytes = await a.export();
    const b = await w.client('b', { from: bytes });
    assert.equal(b.status().created, true);
    assert.notEqual(b.status().clientId, a.status().clientId);
    assert.match(b.status().clientId, /^c-[0-9a-f]{32}$/);
    assert.equal(b.status().pendingChanges, 1, 'the copy holds the pending change it was made with');
    assert.deepEqual(await b.query("SELECT name FROM Customer WHERE id = 'c1'"), [{ name: 'Ada (pending)' }]);
    // Each device's next change: under one client id they would take the same mutation id.
    await a.exec("INSERT INTO Customer(id, name) VALUES ('c2', 'from a')");
    await b.exec("INSERT INTO Customer(id, name) VALUES ('c3', 'from b')");
    await a.sync();
    const rb = await b.sync();
    assert.equal(rb.errors?.length ?? 0, 0);
    await a.sync();
    const server = await w.srv.db.query("SELECT id, name FROM Customer WHERE id IN ('c2', 'c3') ORDER BY id");
    assert.deepEqual(server, [{ id: 'c2', name: 'from a' }, { id: 'c3', name: 'from b' }]);
    for (const d of [a, b]) {
      assert.deepEqual(await d.query("SELECT id FROM Customer WHERE id IN ('c2', 'c3') ORDER BY id"), [{ id: 'c2' }, { id: 'c3' }]);
      assert.equal(d.status().pendingChanges, 0);
    }
  } finally {
    await w.stop();
  }
});
