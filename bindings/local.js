// Opening a database in this realm (a Node process, a worker, or a window
// that keeps it itself): its storage picked and opened, a move to OPFS or a
// snapshot or `from` copy taken on the way, then the Database. open()
// (bindings/index.js) checks the options first; the database worker
// (bindings/worker.js) calls this directly, so its bundle holds none of the
// window's code.
import { loadCore } from './core.js';
import { Database } from './database.js';
import { FerryError, storageCode } from './errors.js';
import { openIndexedDB } from './storage/indexeddb.js';
import { openOpfs, opfsAvailable } from './storage/opfs.js';
import { openOpfsMovingIndexedDB, opfsHoldsDatabase } from './storage/move.js';
import { checkNotLost, markSupported } from './lost.js';
import { isNode, nodeImport } from './env.js';
import { fromFile } from './image.js';
import { snapshotFile } from './snapshot.js';

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
 * Opens database `opts.name` here (options as open() takes them, checked,
 * `storage` set) -> Promise<Database>.
 */
export async function openLocal(opts) {
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
