// Deleting a database's stored state: what signOut() does after its last
// sync, and deleteDatabase() for apps that manage per-user databases
// themselves. A database that is open anywhere (this page, another tab, a
// worker, another process) is not deleted: the call fails with 'busy'.
import { FerryError, storageCode } from './errors.js';
import { acquireWebLock } from './storage/weblock.js';
import { clearMark } from './lost.js';
import { movingMarker } from './storage/opfs.js';
import { isNode, nodeImport } from './env.js';


function idbDelete(factory, dbName) {
  return new Promise((resolve, reject) => {
    const req = factory.deleteDatabase(dbName);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(req.error);
    // Every ferry connection is closed before this runs, and new ones wait
    // for the lock held here: a blocked delete means someone else holds it.
    req.onblocked = () => reject(new FerryError('busy', `IndexedDB database ${dbName} is open elsewhere; close it there first`));
  });
}

/**
 * Deletes the IndexedDB databases of database `name` (its pages and its
 * device file store) and nothing else: the page's record that it exists
 * stays (bindings/storage/move.js, after moving it to OPFS). -> false
 * where there is no IndexedDB.
 */
export async function deleteIndexedDBStores(name, opts = {}) {
  const factory = opts.indexedDB || globalThis.indexedDB;
  if (!factory) return false;
  const lock = await acquireWebLock(`ferry:${name}`, opts.busyTimeout ?? 2000);
  try {
    await idbDelete(factory, `ferry:${name}`);
    // The device file store (bindings/files/idb-store.js) goes with it; its
    // connections close when asked to.
    await idbDelete(factory, `ferry-files:${name}`);
  } finally {
    lock.release();
  }
  return true;
}

async function deleteOpfs(name) {
  const getDirectory = globalThis.navigator?.storage?.getDirectory;
  if (typeof getDirectory !== 'function') return false;
  const root = await navigator.storage.getDirectory();
  let dir;
  try {
    dir = await root.getDirectoryHandle('ferry');
  } catch (e) {
    if (e.name === 'NotFoundError') return true;
    throw e;
  }
  // The log first: a main file without its log is a consistent older state
  // (the log only adds commits), never a mix.
  for (const file of [`${name}.db-log`, `${name}.db`, movingMarker(name)]) {
    try {
      await dir.removeEntry(file);
    } catch (e) {
      if (e.name !== 'NotFoundError') throw e;
    }
  }
  // The device file store (bindings/files/opfs-store.js) goes with it.
  try {
    await dir.removeEntry(`${name}.files`, { recursive: true });
  } catch (e) {
    if (e.name !== 'NotFoundError') throw e;
  }
  return true;
}

async function deleteFile(name, filePath) {
  if (typeof filePath !== 'string' || !filePath) {
    throw new FerryError('misuse', "deleting a 'file' database needs its path (deleteDatabase(name, { storage: 'file', path }))");
  }
  const [{ default: fs }, { default: path }, { acquireLock }] = await Promise.all([
    nodeImport('node:fs'), nodeImport('node:path'), nodeImport('./storage/node-file.js', import.meta.url),
  ]);
  const abs = path.resolve(filePath);
  const lock = acquireLock(`${abs}-lock`, abs);
  try {
    fs.rmSync(`${abs}-log`, { force: true });
    fs.rmSync(abs, { force: true });
    // The device file store (bindings/files/node-store.js) goes with it.
    fs.rmSync(`${abs}.files`, { recursive: true, force: true });
  } finally {
    lock.release();
  }
  return true;
}

/**
 * Deletes one storage's copy of database `name`. kind: 'opfs' | 'indexeddb' |
 * 'file' | 'memory' ('memory' holds nothing once closed).
 */
export async function deleteStorage(kind, name, opts = {}) {
  try {
    switch (kind) {
      case 'memory': return;
      case 'file': await deleteFile(name, opts.path); return;
      case 'indexeddb': await deleteIndexedDBStores(name, opts); return;
      case 'opfs': await deleteOpfs(name); return;
      default: throw new FerryError('misuse', `unknown storage '${kind}'`);
    }
  } catch (e) {
    if (e instanceof FerryError) throw e;
    const code = storageCode(e);
    throw new FerryError(code, code === 'busy'
      ? `database '${name}' is open in another tab or worker; close it there first`
      : `cannot delete the ${kind} storage of '${name}': ${e.message}`, { cause: e });
  }
}

/**
 * Deletes database `name` from the device, with its unsynced changes: its
 * storage ('auto': every browser storage that may hold it, OPFS and
 * IndexedDB; in Node 'file' at `path`) and the page's record of it, so that
 * open() afterwards starts a new, empty database (with a new client id)
 * rather than reporting 'storage_lost'. Fails with 'busy' while the
 * database is open anywhere. To keep unsynced changes, use db.signOut().
 */
export async function deleteDatabase(name, opts = {}) {
  if (typeof opts !== 'object' || opts === null) throw new FerryError('misuse', 'deleteDatabase(name, { storage, path }) takes an options object');
  const { storage = 'auto' } = opts;
  if (storage === 'auto') {
    if (isNode) {
      if (opts.path) await deleteStorage('file', name, opts);
    } else {
      // The tabs' writer lock first: no tab may open it while it goes.
      const writer = globalThis.document ? await acquireWebLock(`ferry-writer:${name}`, opts.busyTimeout ?? 2000) : null;
      try {
        await deleteStorage('opfs', name, opts);
        await deleteStorage('indexeddb', name, opts);
      } finally {
        writer?.release();
      }
    }
  } else {
    await deleteStorage(storage, name, opts);
  }
  clearMark(name);
}
