// The ES module also loads in a (module) service worker, where ferry picks
// IndexedDB and keeps data across service worker restarts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, uniqueName, unwrap } from './harness.js';

test('ferry_should_run_inside_a_module_service_worker_on_indexeddb', { timeout: 120_000 }, async () => {
  const b = await launch();
  try {
    const page = await b.newPage('/tests/browser/pages/sw.html');
    const name = uniqueName('sw');
    const q = async (sql, params) => unwrap(await page.evaluate(([n, s, p]) => window.swQuery(n, s, p), [name, sql, params]));
    await q('CREATE TABLE t(v)');
    await q('INSERT INTO t VALUES (?) RETURNING v', [42]);
    const r = await q('SELECT v FROM t');
    assert.deepEqual(r.rows, [{ v: 42 }]);
    assert.equal(r.storage, 'indexeddb');
  } finally {
    await b.close();
  }
});
