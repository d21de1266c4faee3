import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from '../../bindings/index.js';

test('hundred_thousand_rows_in_one_transaction_should_round_trip_in_memory', { timeout: 120_000 }, async () => {
  const db = await open({ name: 'mem-big', storage: 'memory' });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)');
  await db.transaction(async (tx) => {
    for (let i = 1; i <= 100_000; i++) await tx.exec('INSERT INTO t VALUES (?, ?)', [i, `n${i}`]);
  });
  assert.deepEqual(await db.query('SELECT count(*) AS n, sum(id) AS s FROM t'), [{ n: 100_000, s: 5_000_050_000 }]);
  assert.equal((await db.query('SELECT * FROM t')).length, 100_000);
  await db.close();
});
