// 'opfs' storage: the core's log store over two OPFS files through
// synchronous access handles (dedicated workers only). A handle is exclusive,
// so a second writer anywhere in the origin is refused by the browser itself.
import { FerryError, storageCode } from '../errors.js';

/** The marker file of a move from IndexedDB under way (bindings/storage/move.js), beside the database's files in `ferry/`. */
export const movingMarker = (name) => `${name}.db-moving`;

export function opfsAvailable() {
  return typeof globalThis.FileSystemFileHandle === 'function'
    && typeof globalThis.FileSystemFileHandle.prototype.createSyncAccessHandle === 'function'
    && typeof globalThis.navigator?.storage?.getDirectory === 'function'
    && typeof globalThis.DedicatedWorkerGlobalScope === 'function'
    && globalThis instanceof globalThis.DedicatedWorkerGlobalScope;
}

function handleFile(h) {
  return {
    read(u8, off) { return h.read(u8, { at: off }); },
    write(u8, off) {
      const n = h.write(u8, { at: off });
      if (n !== u8.length) throw new FerryError('storage_full', `OPFS wrote ${n} of ${u8.length} bytes`);
    },
    size() { return h.getSize(); },
    truncate(n) { h.truncate(n); },
    sync() { h.flush(); },
    close() { h.close(); },
  };
}

async function syncHandle(dir, fileName, deadline) {
  const fh = await dir.getFileHandle(fileName, { create: true });
  for (;;) {
    try {
      return await fh.createSyncAccessHandle();
    } catch (e) {
      // A worker that just closed (or a reloaded page's old worker) may
      // still hold the handle for a moment.
      if (e.name !== 'NoModificationAllowedError' || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

export async function openOpfs(core, name, opts = {}) {
  if (!opfsAvailable()) {
    throw new FerryError('unsupported', "storage 'opfs' needs a dedicated worker with OPFS sync access handles");
  }
  const deadline = Date.now() + (opts.busyTimeout ?? 2000);
  let main, log;
  try {
    const root = await navigator.storage.getDirectory();
    const dir = await root.getDirectoryHandle('ferry', { create: true });
    main = await syncHandle(dir, `${name}.db`, deadline);
    log = await syncHandle(dir, `${name}.db-log`, deadline);
  } catch (e) {
    main?.close();
    const code = storageCode(e);
    throw new FerryError(code, code === 'busy'
      ? `database '${name}' is open in another tab or worker; close it there or wait`
      : `cannot open OPFS files for '${name}': ${e.message}`, { cause: e });
  }
  const wrap = opts.wrapFile || ((f) => f);
  const { handle, created, imported } = core.openFiles(`opfs:${name}`, wrap(handleFile(main), 'main'), wrap(handleFile(log), 'log'),
    0, opts.cacheSize || 0, opts.fromFile, opts.move === true);
  return { handle, kind: 'opfs', created, imported, release() {} };
}
