// 'indexeddb' storage: every page is read at open; each commit becomes one
// readwrite transaction with strict durability, started after the previous
// commit's completed, and the API call that made the commit resolves only
// after its transaction completes.
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

// Commits are written one IndexedDB transaction at a time, each started only
// once the one before it has completed: separate transactions in flight
// together could abort one and commit the next, storing pages of different
// commits. A failed commit poisons the store: the commits queued behind it
// fail too, and so does every later one, until the database reloads what
// IndexedDB holds, which is then always exactly a prefix of the commits.
class IdbStore {
  constructor(idb, keys, values, size, faults) {
    this.idb = idb;
    this.keys = keys;
    this.values = values;
    this.loadedSize = size;
    this.lastSize = size;
    this.tail = Promise.resolve();   // settles once every commit handed over has
    this.inflight = 0;               // commits handed over and not yet settled
    this.failed = null;              // the first failure; once set, nothing more is written
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
    if (this.failed) throw this.failed;
    const batch = { blocks, size, shrink: size < this.lastSize, injected: null };
    this.lastSize = size;
    if (this.faults?.commit) {
      try { this.faults.commit('indexeddb'); } catch (e) { batch.injected = e; }
    }
    const write = () => (this.failed ? null : this.#write(batch).catch((e) => { this.failed = e; }));
    // Started at once when nothing is in flight (its transaction then exists
    // before anything can close the connection), else after what is.
    const done = this.inflight ? this.tail.then(write) : Promise.resolve(write());
    this.inflight++;
    this.tail = done.finally(() => { this.inflight--; });
  }
  #write({ blocks, size, shrink, injected }) {
    return new Promise((resolve, reject) => {
      const tx = this.idb.transaction(['pages', 'meta'], 'readwrite', { durability: 'strict' });
      tx.oncomplete = () => resolve();
      // A failed request aborts the transaction (its error event is left
      // uncancelled), so no commit is ever stored without one of its pages.
      tx.onabort = () => reject(injected || tx.error || new FerryError('io', 'IndexedDB transaction aborted'));
      try {
        const pages = tx.objectStore('pages');
        for (const b of blocks) pages.put(b.data, b.no);
        if (shrink) pages.delete(IDBKeyRange.lowerBound(Math.ceil(size / BLOCK)));
        tx.objectStore('meta').put(size, 'size');
        if (injected) tx.abort();
      } catch (e) {
        try { tx.abort(); } catch { /* already finished */ }
        reject(e);
      }
    });
  }
  /** Resolves when every commit handed over so far is durable; throws the first failure. */
  async flush() {
    await this.tail;
    if (this.failed) throw this.failed;
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
