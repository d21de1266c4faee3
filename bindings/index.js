// ferry: offline-first data for progressive web apps (ES module entry).
import { FerryError, codes } from './errors.js';
import { SharedDatabase, sharedAvailable } from './shared.js';
import { checkNotLost } from './lost.js';
import { deleteDatabase as deleteStored } from './delete.js';
import { checkFrom } from './image.js';
import { openLocal } from './local.js';

// Options holding functions or objects that cannot be sent to a worker keep
// the database in the calling window.
const LOCAL_ONLY = ['faults', 'wrapFile', 'indexedDB', 'fetch'];

export { FerryError, codes };

const STORAGES = new Set(['auto', 'opfs', 'indexeddb', 'memory', 'file']);
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

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
  return openLocal(opts);
}
