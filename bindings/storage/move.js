// Moving a database from IndexedDB to OPFS. `storage: 'auto'` keeps a
// database in IndexedDB where OPFS cannot be used (a window opened with
// `worker: false`, a browser without sync access handles), and on OPFS where
// it can: without a move, the first 'auto' open where OPFS works would find
// OPFS empty and the data the device holds, its pending changes among them,
// would stay behind in IndexedDB where nothing reads it any more.
//
// The move runs inside open(), in the database's worker, when OPFS holds no
// database of that name and IndexedDB does:
//   1. a marker file `ferry/<name>.db-moving` is made in OPFS, and the
//      IndexedDB database read as one SQLite file (the export path);
//   2. the device's files (bindings/files/idb-store.js) are copied into the
//      OPFS file store, each whole under its hash or not at all;
//   3. the database becomes the OPFS database in one atomic import that
//      keeps its sync client id: it is the same device, whose pending
//      changes, mutation ids and pull cursors go on;
//   4. only then are the IndexedDB databases deleted, and the marker.
// A crash before 3 ends leaves OPFS empty and the next open moves again
// (files already copied are kept); after it, OPFS holds the database and
// the next open, finding the marker beside it, deletes the IndexedDB copy.
// An open of a database already on OPFS looks only at OPFS.
import { openIndexedDB } from './indexeddb.js';
import { openOpfs, movingMarker } from './opfs.js';
import { exportImage, fromFile } from '../image.js';
import { deleteIndexedDBStores } from '../delete.js';
import { EVICTED } from '../files/api.js';

const LOG_HEADER = 64;        // bytes of a commit log that holds no commit (core/store_log.c)

const ferryDir = async (create = false) => (await navigator.storage.getDirectory()).getDirectoryHandle('ferry', { create });

/** Deletes the IndexedDB copy of `name` a move cut after its import left behind (its marker is in OPFS). Never rejects. */
async function removeMovedCopy(name, opts) {
  try {
    const dir = await ferryDir();
    await dir.getFileHandle(movingMarker(name));   // NotFoundError: no move was cut
    await deleteIndexedDBStores(name, opts);
    await dir.removeEntry(movingMarker(name));
  } catch { /* no marker, or a copy left behind: only space, the next open tries again */ }
}

/** Whether IndexedDB holds a database `dbName` (without creating one). */
async function idbExists(factory, dbName) {
  if (typeof factory?.databases !== 'function') return false;
  try {
    return (await factory.databases()).some((d) => d.name === dbName);
  } catch {
    return false;
  }
}

async function copyFiles(factory, name) {
  if (!await idbExists(factory, `ferry-files:${name}`)) return;
  const [{ idbFileStore }, { opfsFileStore }] = await Promise.all([
    import('../files/idb-store.js'), import('../files/opfs-store.js'),
  ]);
  const from = await idbFileStore(name, { indexedDB: factory });
  const to = await opfsFileStore(name);
  try {
    for (const hash of await from.list()) {
      if (await to.has(hash)) continue;
      // A put's temporary name: a crash mid-copy leaves a partial the next start removes.
      const part = `put-move-${hash}`;
      const w = await to.openPartial(part, 0);
      try {
        for await (const chunk of from.read(hash, 0, Infinity)) await w.write(chunk);
        await w.sync();
      } finally {
        await w.close();
      }
      await to.commit(part, hash);
    }
    for (const part of await from.listPartials()) {
      if (!part.startsWith(EVICTED)) continue;
      const w = await to.openPartial(part, 0);
      await w.close();
    }
  } finally {
    await from.close?.();
    await to.close?.();
  }
}

/**
 * Opens database `opts.name` on OPFS for storage 'auto', first moving it
 * there from IndexedDB when OPFS has none and IndexedDB has one -> the OPFS
 * storage (as openOpfs gives; after a move `created` is false), or null when
 * OPFS has no database and IndexedDB none to move (the caller opens OPFS as
 * usual).
 */
export async function openOpfsMovingIndexedDB(core, opts) {
  const { name } = opts;
  const factory = opts.indexedDB || globalThis.indexedDB;
  // OPFS first: a database already there (every open but the first) never
  // touches IndexedDB, whose first call in a browser session costs ~50 ms.
  const target = await openOpfs(core, name, { ...opts, fromFile: null });
  if (!target.created) {
    // The IndexedDB copy of a move cut short after its import goes, off the open's path.
    removeMovedCopy(name, opts);
    return target;
  }
  core.close(target.handle);
  if (!await idbExists(factory, `ferry:${name}`)) return null;
  const src = await openIndexedDB(core, name, { ...opts, fromFile: null });
  let image;
  try {
    if (src.created) return null;       // an empty IndexedDB database: nothing to move
    await (await ferryDir(true)).getFileHandle(movingMarker(name), { create: true });
    image = exportImage(core, src.handle);
  } finally {
    core.close(src.handle);
    src.release();
  }
  await copyFiles(factory, name);
  const moved = await openOpfs(core, name, { ...opts, fromFile: await fromFile(image), move: true });
  if (!moved.imported) return moved;
  await removeMovedCopy(name, opts);
  // Not a new database: the same one, on another store.
  return Object.assign(moved, { created: false });
}

/**
 * Whether OPFS holds database `name` (its files hold a commit). Reads only
 * sizes, so it works where OPFS cannot be written synchronously (a
 * window): there, 'auto' opens IndexedDB, and a database a worker has moved
 * to OPFS must not pass for a lost one.
 */
export async function opfsHoldsDatabase(name) {
  if (typeof globalThis.navigator?.storage?.getDirectory !== 'function') return false;
  try {
    const dir = await ferryDir();
    for (const [file, header] of [[`${name}.db`, 0], [`${name}.db-log`, LOG_HEADER]]) {
      const fh = await dir.getFileHandle(file).catch(() => null);
      if (fh && (await fh.getFile()).size > header) return true;
    }
  } catch { /* no ferry directory: nothing there */ }
  return false;
}
