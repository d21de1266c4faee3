// 'indexeddb' storage: every page is read at open; each commit becomes one
// readwrite transaction with strict durability, and the API call that made
// the commit resolves only after that transaction completes.
import { FerryError, storageCode } from '../errors.js';
import { acquireWebLock } from './weblock.js';

const BLOCK = 4096;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function openIdb(factory, dbName) {
  return new Promise((resolve, reject) => {
    const req = factory.open(dbName, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains('pages')) db.createObjectStore('pages');
      if (!db.objectStoreNames.contains('meta')) db.createObjectStore('meta');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new FerryError('busy', `IndexedDB database ${dbName} is held by an older connection`));
  });
}

class IdbStore {
  constructor(idb, keys, values, size, faults) {
    this.idb = idb;
    this.keys = keys;
    this.values = values;
    this.loadedSize = size;
    this.lastSize = size;
    this.pending = [];
    this.faults = faults;
  }
  count() { return this.keys.length; }
  block(k) {
    const v = this.values[k];
    return { no: this.keys[k], data: v instanceof Uint8Array ? v : new Uint8Array(v) };
  }
  size() { return this.loadedSize; }
  loaded() { this.keys = this.values = null; }   // the core holds the image now
  commit(blocks, size) {
    const tx = this.idb.transaction(['pages', 'meta'], 'readwrite', { durability: 'strict' });
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(tx.error || this.injected || new FerryError('io', 'IndexedDB transaction aborted'));
      tx.onerror = (ev) => ev.preventDefault();   // reported once, by onabort
    });
    this.pending.push(done);
    const pages = tx.objectStore('pages');
    for (const b of blocks) pages.put(b.data, b.no);
    if (size < this.lastSize) pages.delete(IDBKeyRange.lowerBound(Math.ceil(size / BLOCK)));
    tx.objectStore('meta').put(size, 'size');
    this.lastSize = size;
    if (this.faults?.commit) {
      try { this.faults.commit('indexeddb'); } catch (e) { this.injected = e; tx.abort(); }
    }
  }
  /** Resolves when every commit handed over so far is durable; throws the first failure. */
  async flush() {
    if (!this.pending.length) return;
    const all = this.pending;
    this.pending = [];
    await Promise.all(all);
  }
  close() { this.idb.close(); }
}

export async function openIndexedDB(core, name, opts = {}) {
  const factory = opts.indexedDB || globalThis.indexedDB;
  if (!factory) throw new FerryError('unsupported', 'IndexedDB is not available here; choose another storage');
  const lock = await acquireWebLock(`ferry:${name}`, opts.busyTimeout);
  let idb;
  try {
    idb = await openIdb(factory, `ferry:${name}`);
    const tx = idb.transaction(['pages', 'meta'], 'readonly');
    const [keys, values, size] = await Promise.all([
      request(tx.objectStore('pages').getAllKeys()),
      request(tx.objectStore('pages').getAll()),
      request(tx.objectStore('meta').get('size')),
    ]);
    const store = new IdbStore(idb, keys, values, size || 0, opts.faults);
    const created = keys.length === 0;
    const handle = core.openJsStore(`indexeddb:${name}`, store);
    store.loaded();
    return {
      handle, kind: 'indexeddb', created,
      flush: () => store.flush(),
      release: () => lock.release(),
    };
  } catch (e) {
    if (idb) idb.close();
    lock.release();
    if (e instanceof FerryError) throw e;
    throw new FerryError(storageCode(e), `cannot open IndexedDB database for '${name}': ${e.message}`, { cause: e });
  }
}
