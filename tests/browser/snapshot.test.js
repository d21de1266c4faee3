// A new database in the browser starts from the server's snapshot (open({
// snapshot: true })): downloaded as a Blob, read in place by the worker,
// copied into OPFS or IndexedDB in one step; after a reload it is there and
// it syncs on from the snapshot's cursors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launch, gotoReady, uniqueName, workerApi, ROOT, WORKER_PAGE } from './harness.js';
import { createSyncServer } from '../../server/index.js';

const MODEL = { version: '1', entities: { Item: { attributes: { name: 'string', qty: 'integer' }, sync: 'all' } } };
let browser, srv, dataDir;
before(async () => {
  browser = await launch();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-snapshot-browser-'));
  srv = await createSyncServer({ model: MODEL, dataDir, static: ROOT, log: () => {} });
  await srv.write('Item', Array.from({ length: 5000 }, (_, i) => ({ id: `i${i}`, name: `item ${i} ✓`, qty: i })));
});
after(async () => {
  await browser?.close();
  await srv?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const T = { timeout: 90_000 };

for (const storage of ['opfs', 'indexeddb']) {
  test(`a_new_${storage}_database_should_start_from_the_snapshot_and_keep_it_after_a_reload`, T, async () => {
    const name = uniqueName(`snap_${storage}`);
    const page = await browser.context.newPage();
    await gotoReady(page, `${srv.url}${WORKER_PAGE}`);
    let api = await workerApi(page, 'w1');
    const open = () => api('open', { key: 'a', name, storage, server: `${srv.url}/sync`, snapshot: true, busyTimeout: 10_000 });
    try {
      await open();
      const errors = (await api('faultState', { key: 'a' })).snapshotErrors;
      assert.deepEqual(errors, [], 'the snapshot was used');
      assert.deepEqual(await api('query', { key: 'a', sql: 'SELECT count(*) AS n, sum(qty) AS s FROM Item' }), [{ n: 5000, s: 4999 * 5000 / 2 }]);
      assert.equal((await api('sync', { key: 'a' })).pulled, 0, 'nothing left to pull');
      await srv.write('Item', [{ id: 'i1', name: 'changed', qty: -1 }]);
      await gotoReady(page, `${srv.url}${WORKER_PAGE}`);
      api = await workerApi(page, 'w1');
      await open();
      assert.deepEqual(await api('query', { key: 'a', sql: 'SELECT count(*) AS n FROM Item' }), [{ n: 5000 }], 'kept across the reload, not taken again');
      assert.equal((await api('sync', { key: 'a' })).pulled, 1);
      assert.deepEqual(await api('query', { key: 'a', sql: "SELECT name FROM Item WHERE id = 'i1'" }), [{ name: 'changed' }]);
    } finally {
      await api('close', { key: 'a' }).catch(() => {});
      await api('destroy', { name }).catch(() => {});
      await page.close();
      await srv.write('Item', [{ id: 'i1', name: 'item 1 ✓', qty: 1 }]);
    }
  });
}
