// db.files on 'indexeddb' storage (fake-indexeddb in Node): the bytes go to
// the database's own IndexedDB file store (bindings/files/idb-store.js), in
// chunk records, and travel between two devices like on file storage; the
// store goes with signOut. The real browser stores: tests/browser/files-store.test.js.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { IDBFactory } from 'fake-indexeddb';
import { startWorld } from './sync-helpers.js';

const MODEL = { version: '1', entities: { Photo: { attributes: { caption: 'string', image: 'file' }, sync: 'all' } } };
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

let w;
after(async () => { await w?.stop(); });

function bytesOf(n, seed) {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 0xff; }
  return out;
}

/** The chunk records of a file store: { count, max } bytes. */
async function chunks(factory, name) {
  const db = await new Promise((resolve, reject) => {
    const req = factory.open(`ferry-files:${name}`);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  try {
    const all = await new Promise((resolve, reject) => {
      const req = db.transaction('chunks').objectStore('chunks').getAll();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return { count: all.length, max: Math.max(0, ...all.map((b) => b.size)) };
  } finally {
    db.close();
  }
}

test('files_on_indexeddb_storage_should_travel_between_devices_through_the_idb_file_store', { timeout: 60_000 }, async () => {
  w = await startWorld('files-idb', { model: MODEL });
  const fa = new IDBFactory(), fb = new IDBFactory();
  const a = await w.client('a', { storage: 'indexeddb', indexedDB: fa });
  const b = await w.client('b', { storage: 'indexeddb', indexedDB: fb });
  await a.sync();
  await a.exec("INSERT INTO Photo(id, caption) VALUES ('p1', 'meter')");
  const bytes = bytesOf(3 * 1024 * 1024 + 17, 5);
  const ref = await a.files.put('Photo', 'p1', 'image', bytes, { type: 'image/jpeg', name: 'meter.jpg' });
  assert.equal(ref.hash, sha(bytes));
  assert.deepEqual(await a.files.get('Photo', 'p1', 'image'), bytes);
  assert.deepEqual(await chunks(fa, 'a'), { count: 4, max: 1024 * 1024 }, 'the bytes are in 1 MiB chunk records');
  await a.sync();
  await a.files.flush();
  await b.sync();
  await b.files.flush();
  assert.deepEqual(await b.files.get('Photo', 'p1', 'image'), bytes);
  assert.deepEqual(await b.syncErrors(), []);

  const names = async (f) => (await f.databases()).map((d) => d.name).sort();
  assert.deepEqual(await names(fb), ['ferry-files:b', 'ferry:b']);
  await b.signOut();
  assert.deepEqual(await names(fb), [], 'signOut deletes the file store with the database');
});
