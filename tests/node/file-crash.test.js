// A committed transaction survives SIGKILL; an interrupted one leaves no trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../../bindings/index.js';
import { tempDir, runAndKill } from './helpers.js';

const child = fileURLToPath(new URL('./fixtures/commit-loop.js', import.meta.url));
const KILLS = 50;

/** Starts the writer, kills it `delayMs` after it is ready, returns the last resolved number. */
const killWriter = (dbPath, delayMs) => runAndKill([child, dbPath, String(64 * 1024)], delayMs);

test('file_commits_should_survive_sigkill_as_an_exact_prefix', { timeout: 600_000 }, async () => {
  const dbPath = path.join(tempDir('crash'), 'crash.db');
  let maxSeen = 0;
  for (let i = 0; i < KILLS; i++) {
    const delay = 20 + Math.floor(Math.random() * 250);
    const resolved = await killWriter(dbPath, delay);
    const db = await open({ name: 'crash', storage: 'file', path: dbPath });
    try {
      assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
      const [{ k, rows, nums }] = await db.query(
        'SELECT coalesce(max(n), 0) AS k, count(*) AS rows, count(DISTINCT n) AS nums FROM t');
      const [{ n: counter }] = await db.query('SELECT n FROM counter WHERE id = 1');
      // every transaction whose call resolved is there ...
      assert.ok(k >= resolved, `kill ${i}: ${resolved} resolved but only ${k} stored`);
      // ... as an exact prefix 1..k of whole transactions
      assert.equal(nums, k, `kill ${i}: numbers are not a prefix`);
      assert.equal(rows, 3 * k, `kill ${i}: a transaction is torn`);
      assert.equal(counter, k, `kill ${i}: counter disagrees with rows`);
      maxSeen = Math.max(maxSeen, k);
      // the next writer numbers from 1 again
      await db.transaction(async (tx) => {
        await tx.exec('DELETE FROM t');
        await tx.exec('UPDATE counter SET n = 0');
      });
    } finally {
      await db.close();
    }
  }
  assert.ok(maxSeen > 0, 'the writer never committed anything');
});
