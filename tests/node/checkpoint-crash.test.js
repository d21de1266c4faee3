// A checkpoint (the commit log folded into the database file) and an
// import (open({ from })) survive a SIGKILL at any of their calls: no
// committed transaction is lost, none is torn, an import is all or nothing,
// and the next close leaves a plain SQLite file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../../bindings/index.js';
import { tempDir, runAndKill } from './helpers.js';

const child = fileURLToPath(new URL('./fixtures/checkpoint-child.js', import.meta.url));
const KILLS = 40;
const HOWS = ['before', 'after', 'torn'];

function shell(file, sql) {
  return JSON.parse(execFileSync('sqlite3', ['-readonly', '-json', file, sql], { encoding: 'utf8' }) || '[]');
}

test('sigkill_at_any_checkpoint_call_should_lose_no_committed_transaction_and_leave_a_plain_file_after_close', { timeout: 600_000 }, async () => {
  const dbPath = path.join(tempDir('ckpt-kill'), 'ckpt.db');
  let maxSeen = 0;
  const kills = { before: 0, after: 0, torn: 0 };
  for (let i = 0; i < KILLS; i++) {
    const how = HOWS[i % HOWS.length];
    // The failsafe delay only ends a child that never reached its call.
    const resolved = await runAndKill([child, 'commit', dbPath, String(1 + Math.floor(Math.random() * 300)), how], 20_000);
    kills[how]++;
    const db = await open({ name: 'ckpt', storage: 'file', path: dbPath });
    try {
      assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }], `kill ${i} (${how})`);
      const [{ k, rows, nums }] = await db.query(
        'SELECT coalesce(max(n), 0) AS k, count(*) AS rows, count(DISTINCT n) AS nums FROM t');
      // A kill while the writer sets up (the main file takes blocks ahead of
      // a checkpoint from the first commits on) can come before its counter
      // row is committed; then no transaction resolved either.
      const counter = (await db.query('SELECT n FROM counter WHERE id = 1'))[0]?.n ?? 0;
      assert.ok(k >= resolved, `kill ${i} (${how}): ${resolved} resolved but only ${k} stored`);
      assert.equal(nums, k, `kill ${i} (${how}): the numbers are not a prefix`);
      assert.equal(rows, 2 * k, `kill ${i} (${how}): a transaction is torn`);
      assert.equal(counter, k, `kill ${i} (${how}): the counter disagrees with the rows`);
      maxSeen = Math.max(maxSeen, k);
      await db.transaction(async (tx) => {
        await tx.exec('DELETE FROM t');
        await tx.exec('UPDATE counter SET n = 0');
      });
      await db.exec("INSERT INTO t VALUES (0, 0, 'checked')");
    } finally {
      await db.close();
    }
    // Closed by ferry, the file is whole for any SQLite.
    assert.deepEqual(shell(dbPath, 'PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
    assert.deepEqual(shell(dbPath, 'SELECT count(*) AS n FROM t'), [{ n: 1 }]);
    const db2 = await open({ name: 'ckpt', storage: 'file', path: dbPath });
    await db2.exec('DELETE FROM t');
    await db2.close();
  }
  assert.ok(maxSeen > 0, 'the writer never committed anything');
});

/** Runs the import child; resolves to the calls it made if it lived, or null when it killed itself. */
function importChild(dbPath, source, killAt, how) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, 'import', dbPath, source, String(killAt), how], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(null);
      else if (code === 0 && /^imported (\d+)/.test(out)) resolve(Number(/^imported (\d+)/.exec(out)[1]));
      else reject(new Error(`import child failed (${code}): ${err}`));
    });
  });
}

test('sigkill_at_any_call_of_an_import_should_leave_the_new_database_empty_or_a_whole_copy', { timeout: 600_000 }, async () => {
  const dir = tempDir('import-kill');
  const source = path.join(dir, 'source.db');
  const src = await open({ name: 'src', storage: 'file', path: source });
  await src.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)');
  await src.exec('WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 600) INSERT INTO t SELECT i, randomblob(700) FROM c');
  const [want] = await src.query('SELECT count(*) AS n, sum(length(pad)) AS bytes FROM t');
  await src.close();
  let empty = 0, whole = 0;
  for (const how of HOWS) {
    for (let killAt = 1; ; killAt++) {
      assert.ok(killAt < 200, 'the import never finished');
      const dbPath = path.join(dir, `copy-${how}-${killAt}.db`);
      const lived = await importChild(dbPath, source, killAt, how);
      const db = await open({ name: 'copy', storage: 'file', path: dbPath });
      try {
        const tables = (await db.query("SELECT count(*) AS n FROM sqlite_schema WHERE name = 't'"))[0].n;
        if (tables) {
          assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }], `${how} ${killAt}`);
          assert.deepEqual(await db.query('SELECT count(*) AS n, sum(length(pad)) AS bytes FROM t'), [want], `${how} ${killAt}`);
          whole++;
        } else {
          assert.equal(lived, null, `${how} ${killAt}: an import that finished is there`);
          assert.equal(db.status().created, true, `${how} ${killAt}: a partial import is not a database`);
          empty++;
        }
      } finally {
        await db.close();
      }
      fs.rmSync(dbPath, { force: true });
      fs.rmSync(`${dbPath}-log`, { force: true });
      if (lived !== null) break;
    }
  }
  assert.ok(empty > 0 && whole > 0, `kills left ${empty} empty and ${whole} whole copies`);
});
