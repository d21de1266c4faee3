// 'indexeddb' storage: IndexedDB cannot be read synchronously (without JSPI
// or Asyncify), so every page is read at open and kept here, in JS memory
// outside the wasm heap; the core reads pages from here on demand through
// its bounded cache. The whole image must fit in memory: a database may
// grow to MAX_BYTES (1 GiB), and a commit past it fails with 'too_big'
// (use 'opfs' for more). Each commit becomes one readwrite transaction with
// strict durability, started after the previous commit's completed, and the
// API call that made the commit resolves only after its transaction completes.
import { FerryError, storageCode } from '../errors.js';
import { acquireWebLock } from './weblock.js';

const BLOCK = 4096;
export const MAX_BYTES = 1024 * 1024 * 1024;

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
  constructor(idb, keys, values, size, faults, maxBytes = MAX_BYTES) {
    this.idb = idb;
    this.pages = new Map();          // block number -> the last commit's 4096 bytes
    for (let k = 0; k < keys.length; k++) {
      const v = values[k];
      this.pages.set(keys[k], v instanceof Uint8Array ? v : new Uint8Array(v));
    }
    this.maxBytes = maxBytes;
    this.lastSize = size;
    this.tail = Promise.resolve();   // settles once every commit handed over has
    this.inflight = 0;               // commits handed over and not yet settled
    this.failed = null;              // the first failure; once set, nothing more is written
    this.faults = faults;
  }
  read(no) { return this.pages.get(no); }
  /** Takes a database given as bytes, a run of blocks at a time; the last run stores them all as one commit. */
  import(blocks, size, last) {
    if (this.lastSize !== 0) throw new FerryError('misuse', 'the store already holds a database');
    if (size > this.maxBytes) {
      throw new FerryError('too_big', `an IndexedDB database keeps its whole image in memory and may grow to ${this.maxBytes} bytes; the given database is ${size} (use storage 'opfs' for larger databases)`);
    }
    this.importing ??= [];
    for (const b of blocks) this.importing.push(b);
    if (!last) return;
    const all = this.importing;
    this.importing = null;
    this.commit(all, size);
  }
  size() { return this.lastSize; }
  commit(blocks, size) {
    if (this.failed) throw this.failed;
    if (size > this.maxBytes) {
      throw new FerryError('too_big', `an IndexedDB database keeps its whole image in memory and may grow to ${this.maxBytes} bytes; this commit needs ${size} (use storage 'opfs' for larger databases)`);
    }
    const batch = { blocks, size, shrink: size < this.lastSize, injected: null };
    this.lastSize = size;
    for (const b of blocks) this.pages.set(b.no, b.data);
    if (batch.shrink) for (const no of this.pages.keys()) if (no * BLOCK >= size) this.pages.delete(no);
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
    const store = new IdbStore(idb, keys, values, size || 0, opts.faults, Math.min(opts.maxIndexedDBBytes || MAX_BYTES, MAX_BYTES));
    const { handle, created, imported } = core.openJsStore(`indexeddb:${name}`, store, opts.cacheSize || 0, opts.fromFile);
    return {
      handle, kind: 'indexeddb', created, imported,
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
