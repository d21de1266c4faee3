// ferry: offline-first data for progressive web apps (ES module entry).
import { loadCore } from './core.js';
import { Database } from './database.js';
import { FerryError, codes, storageCode } from './errors.js';
import { openIndexedDB } from './storage/indexeddb.js';
import { openOpfs, opfsAvailable } from './storage/opfs.js';
import { openOpfsMovingIndexedDB, opfsHoldsDatabase } from './storage/move.js';
import { SharedDatabase, sharedAvailable } from './shared.js';
import { checkNotLost, markSupported } from './lost.js';
import { deleteDatabase as deleteStored } from './delete.js';
import { isNode, nodeImport } from './env.js';
import { checkFrom, fromFile } from './image.js';
import { snapshotFile } from './snapshot.js';

// Options holding functions or objects that cannot be sent to a worker keep
// the database in the calling window.
const LOCAL_ONLY = ['faults', 'wrapFile', 'indexedDB', 'fetch'];

export { FerryError, codes };

const STORAGES = new Set(['auto', 'opfs', 'indexeddb', 'memory', 'file']);
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

function pickStorage(opts) {
  if (opts.storage !== 'auto') return opts.storage;
  if (isNode) return opts.path ? 'file' : 'memory';
  if (opfsAvailable()) return 'opfs';
  if (globalThis.indexedDB) return 'indexeddb';
  return 'memory';
}

async function openStorage(core, kind, opts) {
  const { name } = opts;
  switch (kind) {
    case 'memory': {
      const { handle, created, imported } = core.openMemory(`memory:${name}`, opts.fromFile);
      return { handle, kind, created, imported };
    }
    case 'file': {
      if (!isNode) throw new FerryError('unsupported', "storage 'file' is for Node; use 'opfs' or 'indexeddb' in a browser");
      const { openFileStorage } = await nodeImport('./storage/node-file.js', import.meta.url);
      return openFileStorage(core, name, opts.path, opts);
    }
    case 'indexeddb':
      return openIndexedDB(core, name, opts);
    case 'opfs':
      return openOpfs(core, name, opts);
  }
  throw new FerryError('misuse', `unknown storage '${kind}'`);
}

/**
 * Deletes database `name` and everything it holds from the device (see
 * bindings/delete.js): options storage ('auto' by default), path ('file'),
 * busyTimeout. Fails with 'busy' while it is open anywhere. Pending changes
 * go with it: db.signOut() syncs them first.
 */
export async function deleteDatabase(name, options = {}) {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new FerryError('misuse', `deleteDatabase() needs a database name of 1-128 letters, digits, '_', '.' or '-' (got ${JSON.stringify(name)})`);
  }
  if (options?.storage !== undefined && !STORAGES.has(options.storage)) {
    throw new FerryError('misuse', `unknown storage '${options.storage}'; use ${[...STORAGES].join(', ')}`);
  }
  return deleteStored(name, options);
}

/**
 * Opens (or creates) the database `name` on the device.
 * @param {object} options name, storage ('auto'|'opfs'|'indexeddb'|'memory'|'file'),
 *   path (file storage), server, fetch, headers, busyTimeout (ms to wait for another writer),
 *   cacheSize (bytes of database pages kept in memory; default 4 MiB; 'memory' storage ignores it),
 *   worker (default true: in a window, run the database in a dedicated worker shared by all tabs),
 *   from (the bytes of a SQLite file, e.g. from db.export(): a database that does not exist yet starts as a copy of it)
 *   snapshot (default false; with server: a database that is not on this device yet starts as a copy of
 *     the server's snapshot of what this user may see, one download instead of a pull of every object;
 *     offline or without one it starts empty and pulls), onSnapshotError (why a snapshot was not used)
 *   fileTransfers (default true; false: this database never moves file bytes to or from the server)
 * @returns {Promise<Database>}
 */
export async function open(options = {}) {
  if (typeof options !== 'object' || options === null) throw new FerryError('misuse', 'open() takes an options object');
  const opts = { storage: 'auto', ...options };
  if (typeof opts.name !== 'string' || !NAME.test(opts.name)) {
    throw new FerryError('misuse', `open() needs a name of 1-128 letters, digits, '_', '.' or '-' (got ${JSON.stringify(opts.name)})`);
  }
  if (!STORAGES.has(opts.storage)) {
    throw new FerryError('misuse', `unknown storage '${opts.storage}'; use ${[...STORAGES].join(', ')}`);
  }
  if (opts.cacheSize !== undefined && !(Number.isSafeInteger(opts.cacheSize) && opts.cacheSize >= 0)) {
    throw new FerryError('misuse', `open() option cacheSize is a number of bytes >= 0 (got ${String(opts.cacheSize)})`);
  }
  checkFrom(opts.from);
  if (opts.storage !== 'memory' && opts.worker !== false && sharedAvailable()
      && !LOCAL_ONLY.some((k) => opts[k] !== undefined)) {
    return checkNotLost(await new SharedDatabase(opts).start(), opts);
  }
  const core = await loadCore();
  const kind = pickStorage(opts);
  // 'auto' where OPFS works: a database that IndexedDB holds moves to OPFS first.
  let storage = kind === 'opfs' && opts.storage === 'auto' ? await openOpfsMovingIndexedDB(core, opts) : null;
  if (!storage) {
    const snapshot = await snapshotFile(kind, opts);
    try {
      storage = await openStorage(core, kind, { ...opts, fromFile: snapshot ?? await fromFile(opts.from) });
    } catch (e) {
      // A snapshot the core refuses (damaged, not a database, a store that cannot
      // start from bytes) is not used: the database starts empty and pulls.
      if (!snapshot) throw e;
      opts.onSnapshotError?.(e);
      storage = await openStorage(core, kind, { ...opts, fromFile: null });
    }
  }
  // 'auto' where OPFS cannot be used (a window with worker: false) must not
  // take a database a worker moved to OPFS for a new or a lost one.
  if (kind === 'indexeddb' && opts.storage === 'auto' && storage.created && await opfsHoldsDatabase(opts.name)) {
    core.close(storage.handle);
    storage.release?.();
    throw new FerryError('unsupported', `database '${opts.name}' is on OPFS (an open in a worker moved it there), which only a dedicated worker can use: `
      + 'open it with worker: true (the default in windows) or in a worker');
  }
  storage.name = opts.name;
  // A reload after a failed commit finds the database the first open made.
  const reopen = async () => Object.assign(await openStorage(core, kind, { ...opts, fromFile: null }), { name: opts.name });
  let db;
  try {
    // An import is durable before open() resolves, as a commit is.
    if (storage.imported) {
      await storage.flush?.().catch((e) => {
        throw e instanceof FerryError ? e : new FerryError(storageCode(e), `the copy given as from did not reach storage: ${e?.message || e}`, { cause: e });
      });
    }
    db = new Database(core, storage, reopen, opts);
  } catch (e) {
    core.close(storage.handle);
    storage.release?.();
    throw e;
  }
  return markSupported() ? checkNotLost(db, opts) : db;
}
