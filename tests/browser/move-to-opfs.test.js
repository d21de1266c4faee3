// A database that IndexedDB holds (storage 'auto' where OPFS could not be
// used, or 'indexeddb' named) moves to OPFS the first time 'auto' opens it
// where OPFS works: rows, pending changes, the client id, pull cursors and
// the device's files come along, and IndexedDB no longer holds it. Before,
// that open found OPFS empty and the data stayed behind, read by nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launch, gotoReady, uniqueName, workerApi, windowApi, ROOT, WORKER_PAGE, WINDOW_PAGE } from './harness.js';
import { createSyncServer } from '../../server/index.js';

const MODEL = { version: '1', entities: { Item: { attributes: { name: 'string', photo: 'file' }, sync: 'all' } } };
let browser, srv, dataDir;
before(async () => {
  browser = await launch();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-move-browser-'));
  srv = await createSyncServer({ model: MODEL, dataDir, static: ROOT, log: () => {} });
  await srv.write('Item', [{ id: 'from-server', name: 'pulled before the move' }]);
});
after(async () => {
  await browser?.close();
  await srv?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const T = { timeout: 120_000 };
const idbNames = (page) => page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));

test('an_indexeddb_database_should_move_to_opfs_with_its_changes_client_id_and_files', T, async () => {
  const name = uniqueName('move');
  const other = uniqueName('move_other');
  const page = await browser.context.newPage();
  await gotoReady(page, `${srv.url}${WORKER_PAGE}`);
  const api = await workerApi(page, 'w1');
  const server = `${srv.url}/sync`;
  try {
    await api('open', { key: 'a', name, storage: 'indexeddb', server, busyTimeout: 10_000 });
    assert.equal((await api('sync', { key: 'a' })).error, null);
    await api('exec', { key: 'a', sql: "INSERT INTO Item(id, name) VALUES ('synced', 'pushed before the move')" });
    assert.equal((await api('sync', { key: 'a' })).error, null);
    // What only this device has: a row, a change to a pulled row, and a file's bytes.
    await api('exec', { key: 'a', sql: "INSERT INTO Item(id, name) VALUES ('pending', 'written before the move ✓')" });
    await api('exec', { key: 'a', sql: "UPDATE Item SET name = 'changed before the move' WHERE id = 'from-server'" });
    await api('filePut', { key: 'a', entity: 'Item', id: 'pending', attribute: 'photo', text: 'bytes only this device has' });
    const before = await api('status', { key: 'a' });
    assert.equal(before.storage, 'indexeddb');
    assert.ok(before.pendingChanges >= 2, `pending ${before.pendingChanges}`);
    const rows = await api('query', { key: 'a', sql: 'SELECT id, name, photo FROM Item ORDER BY id' });
    await api('close', { key: 'a' });
    assert.ok((await idbNames(page)).includes(`ferry:${name}`));

    await api('open', { key: 'b', name, storage: 'auto', server, busyTimeout: 10_000 });
    const after = await api('status', { key: 'b' });
    assert.equal(after.storage, 'opfs');
    assert.equal(after.created, false, 'the database was there, not a new one');
    assert.equal(after.clientId, before.clientId, 'the same device, the same client id');
    assert.equal(after.pendingChanges, before.pendingChanges);
    assert.equal(after.modelVersion, before.modelVersion);
    assert.deepEqual(await api('query', { key: 'b', sql: 'SELECT id, name, photo FROM Item ORDER BY id' }), rows);
    assert.equal(await api('fileText', { key: 'b', entity: 'Item', id: 'pending', attribute: 'photo' }), 'bytes only this device has');
    const left = (await idbNames(page)).filter((n) => n === `ferry:${name}` || n === `ferry-files:${name}`);
    assert.deepEqual(left, [], 'IndexedDB no longer holds it');

    // The moved database syncs on as the same device: its pending changes go, nothing is pulled twice.
    const s = await api('sync', { key: 'b' });
    assert.equal(s.error, null);
    assert.ok(s.pushed >= 2, `pushed ${s.pushed}`);
    // Its cursors came along: only the pushed changes come back, not the rows it had pulled.
    assert.ok(s.pulled <= s.pushed, `pulled ${s.pulled}, pushed ${s.pushed}`);
    assert.equal((await api('filesFlush', { key: 'b' })).failed, 0);
    await api('close', { key: 'b' });

    // Another device gets all of it, the file's bytes included.
    await api('open', { key: 'c', name: other, storage: 'opfs', server, busyTimeout: 10_000 });
    assert.equal((await api('sync', { key: 'c' })).error, null);
    assert.deepEqual(await api('query', { key: 'c', sql: 'SELECT id, name FROM Item ORDER BY id' }),
      rows.map(({ id, name: n }) => ({ id, name: n })));
    await api('fileText', { key: 'c', entity: 'Item', id: 'pending', attribute: 'photo' }).catch(() => {});
    await api('filesFlush', { key: 'c' });
    assert.equal(await api('fileText', { key: 'c', entity: 'Item', id: 'pending', attribute: 'photo' }), 'bytes only this device has');
    await api('close', { key: 'c' });

    // The next open finds it on OPFS as it left it.
    await api('open', { key: 'd', name, storage: 'auto', server, busyTimeout: 10_000 });
    assert.equal((await api('status', { key: 'd' })).pendingChanges, 0);
    assert.equal((await api('query', { key: 'd', sql: 'SELECT count(*) AS n FROM Item' }))[0].n, 3);
    await api('close', { key: 'd' });

    // A window without the worker cannot use OPFS: it is told so, not that the data is lost.
    const win = await browser.context.newPage();
    try {
      await gotoReady(win, `${srv.url}${WINDOW_PAGE}`);
      const r = await windowApi(win).raw('open', { key: 'w', name, storage: 'auto', worker: false });
      assert.equal(r.error?.code, 'unsupported', JSON.stringify(r));
      assert.match(r.error.message, /is on OPFS/);
    } finally {
      await win.close();
    }
  } finally {
    for (const key of ['a', 'b', 'c', 'd']) await api('close', { key }).catch(() => {});
    await api('destroy', { name }).catch(() => {});
    await api('destroy', { name: other }).catch(() => {});
    await page.close();
  }
});

// A worker terminated at a random moment of the move, then a new worker
// opening the database: it is whole wherever the kill fell (still in
// IndexedDB, moved on this open, or on OPFS already), with the same rows,
// pending changes, client id and files, and IndexedDB no longer holds it
// (a copy a kill left behind is deleted by this open). FERRY_SEED replays a run.
test('a_move_to_opfs_killed_at_any_moment_should_lose_nothing', { timeout: 300_000 }, async () => {
  const seed = Number(process.env.FERRY_SEED) || 20261207;
  console.log(`# move kill seed ${seed} (FERRY_SEED=${seed} replays it)`);
  let x = seed >>> 0;
  const random = () => {   // mulberry32
    x = (x + 0x6d2b79f5) >>> 0;
    let t = x;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const page = await browser.context.newPage();
  await gotoReady(page, `${srv.url}${WORKER_PAGE}`);
  const server = `${srv.url}/sync`;
  const ROWS = 3000;
  for (let round = 0; round < 8; round++) {
    const name = uniqueName(`move_kill${round}`);
    let api = await workerApi(page, `k${round}a`);
    await api('open', { key: 'a', name, storage: 'indexeddb', server, busyTimeout: 10_000 });
    assert.equal((await api('sync', { key: 'a' })).error, null);
    await api('exec', {
      key: 'a',
      sql: `WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${ROWS}) INSERT INTO Item(id, name) SELECT 'r' || i, printf('%.900d', i) FROM c`,
    });
    const big = 'x'.repeat(600_000);
    for (const id of ['r1', 'r2']) await api('filePut', { key: 'a', entity: 'Item', id, attribute: 'photo', text: `${id} ${big}` });
    const want = await api('status', { key: 'a' });
    const digest = "SELECT count(*) AS n, sum(length(name)) AS s, count(photo) AS f FROM Item WHERE id LIKE 'r%'";
    const rows = await api('query', { key: 'a', sql: digest });
    await api('close', { key: 'a' });
    await api.terminate();

    api = await workerApi(page, `k${round}b`);
    const delay = Math.floor(random() * 400);
    const opening = api.raw('open', { key: 'b', name, storage: 'auto', server, busyTimeout: 10_000 });
    await new Promise((r) => setTimeout(r, delay));
    await api.terminate();
    await opening.catch(() => {});

    api = await workerApi(page, `k${round}c`);
    const where = `round ${round}, kill after ${delay} ms (seed ${seed})`;
    try {
      await api('open', { key: 'c', name, storage: 'auto', server, busyTimeout: 10_000 });
      const got = await api('status', { key: 'c' });
      assert.equal(got.storage, 'opfs', where);
      assert.equal(got.clientId, want.clientId, where);
      assert.equal(got.pendingChanges, want.pendingChanges, where);
      assert.deepEqual(await api('query', { key: 'c', sql: digest }), rows, where);
      for (const id of ['r1', 'r2']) {
        assert.equal(await api('fileText', { key: 'c', entity: 'Item', id, attribute: 'photo' }), `${id} ${big}`, `${where}: file of ${id}`);
      }
      const [ic] = await api('query', { key: 'c', sql: 'PRAGMA integrity_check' });
      assert.equal(Object.values(ic)[0], 'ok', where);
      // A copy a kill left behind goes in the background of this open.
      for (let i = 0; i < 100 && (await idbNames(page)).includes(`ferry:${name}`); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(!(await idbNames(page)).includes(`ferry:${name}`), `${where}: the IndexedDB copy is gone`);
    } finally {
      await api('close', { key: 'c' }).catch(() => {});
      await api('destroy', { name }).catch(() => {});
      await api.terminate();
    }
  }
  await page.close();
});
