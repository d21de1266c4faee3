// The device file store for 'opfs' storage: the function table of
// node-store.js over the OPFS directory `ferry/<name>.files/`, with complete
// files under `blobs/<hash>` and transfers in progress under
// `partial/<name>`. Partials are written through a sync access handle
// (dedicated workers only), whose flush() is the durability point; a file
// becomes visible under its hash only by FileSystemFileHandle.move() of its
// flushed partial, so `blobs/` holds whole files or none. Reads go through
// File snapshots (getFile()), which are disk-backed and work in any context,
// so a service worker can serve blob(hash) without copying it into memory.
import { FerryError, storageCode } from '../errors.js';

const HASH = /^[0-9a-f]{64}$/;
const READ_CHUNK = 1 << 20;
// A worker that was terminated (a reload, a crash) keeps its handles for a
// moment after it is gone: how long a new one waits for them.
const BUSY_WAIT = 5000;

export function opfsStoreAvailable() {
  return typeof globalThis.navigator?.storage?.getDirectory === 'function'
    && typeof globalThis.FileSystemFileHandle?.prototype?.move === 'function';
}

function fail(e, what) {
  if (e instanceof FerryError) return e;
  const code = storageCode(e);
  return new FerryError(code, code === 'storage_full'
    ? `the device has no room left for ${what} (${e.message})`
    : `${what} failed in OPFS: ${e?.message || e}`, { cause: e });
}

/** fn(), tried again while another (or a just-terminated) worker holds the file. */
async function unlocked(fn) {
  const deadline = Date.now() + BUSY_WAIT;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (e?.name !== 'NoModificationAllowedError' || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

async function fileOf(dir, name) {
  try {
    return await dir.getFileHandle(name);
  } catch (e) {
    if (e.name === 'NotFoundError' || e.name === 'TypeError') return null;   // TypeError: not a valid entry name
    throw e;
  }
}

async function removeEntry(dir, name) {
  try {
    await unlocked(() => dir.removeEntry(name));
  } catch (e) {
    if (e.name !== 'NotFoundError') throw e;
  }
}

async function* readFile(file, start, end) {
  for (let at = start; at < Math.min(end, file.size); at += READ_CHUNK) {
    yield new Uint8Array(await file.slice(at, Math.min(end, at + READ_CHUNK)).arrayBuffer());
  }
}

async function names(dir) {
  const out = [];
  for await (const name of dir.keys()) out.push(name);
  return out;
}

/** The store of database `name` (its directories created). */
export async function opfsFileStore(name) {
  if (!opfsStoreAvailable()) throw new FerryError('unsupported', 'files on OPFS need navigator.storage.getDirectory() and FileSystemFileHandle.move()');
  let ferry, root, blobs, partial;
  try {
    ferry = await (await navigator.storage.getDirectory()).getDirectoryHandle('ferry', { create: true });
    root = await ferry.getDirectoryHandle(`${name}.files`, { create: true });
    blobs = await root.getDirectoryHandle('blobs', { create: true });
    partial = await root.getDirectoryHandle('partial', { create: true });
  } catch (e) {
    throw fail(e, `opening the file store of '${name}'`);
  }
  const fileOfHash = async (hash) => {
    const fh = HASH.test(hash) ? await fileOf(blobs, hash) : null;
    return fh ? fh.getFile() : null;
  };
  // The partials openNew handed out: their commit needs no lookup.
  const opened = new Map();
  let spare = null;   // { prefix, opening: Promise of an openHandle() result }: openNew's next
  let closed = false;
  /** -> { part, fh, h, offset }: a sync access handle on partial `part` truncated to `offset`. */
  const openHandle = async (part, offset) => {
    if (typeof FileSystemFileHandle.prototype.createSyncAccessHandle !== 'function') {
      throw new FerryError('unsupported', 'writing files to OPFS needs a dedicated worker (sync access handles)');
    }
    let h;
    try {
      const fh = await partial.getFileHandle(part, { create: true });
      h = await unlocked(() => fh.createSyncAccessHandle());
      h.truncate(offset);
      return { part, fh, h, offset };
    } catch (e) {
      h?.close();
      throw fail(e, `opening the partial file ${part}`);
    }
  };
  const writer = ({ part, h, offset }) => {
    let at = offset;
    let open = true;
    return {
      part,
      async write(u8) {
        try {
          const n = h.write(u8, { at });
          at += n;
          if (n !== u8.length) throw new FerryError('storage_full', `OPFS wrote ${n} of ${u8.length} bytes of ${part}: the device is full`);
        } catch (e) {
          throw fail(e, `writing ${part}`);
        }
      },
      async sync() {
        try { h.flush(); } catch (e) { throw fail(e, `syncing ${part}`); }
      },
      async close() {
        if (open) { open = false; h.close(); }
      },
    };
  };
  const must = async (file, what) => {
    if (!file) throw new FerryError('not_found', `${what} is not in the file store`);
    return file;
  };
  return {
    kind: 'opfs',
    async has(hash) { return (await fileOfHash(hash)) !== null; },
    async size(hash) { return (await fileOfHash(hash))?.size ?? null; },
    async partialSize(part) {
      const fh = await fileOf(partial, part);
      return fh ? (await unlocked(() => fh.getFile())).size : 0;
    },
    /** A writer of partial `part` truncated to `offset`: write(u8) appends, sync(), close(). */
    async openPartial(part, offset = 0) {
      return writer(await openHandle(part, offset));
    },
    /**
     * A writer (as openPartial's) of a new empty partial named `prefix` and a
     * random suffix, in writer.part: the one prepare(prefix) opened ahead, if
     * there is one.
     */
    async openNew(prefix) {
      const ahead = spare?.prefix === prefix ? spare.opening : null;
      spare = null;
      const got = (ahead && await ahead.catch(() => null)) || await openHandle(`${prefix}${crypto.randomUUID()}`, 0);
      opened.set(got.part, got.fh);
      return writer(got);
    },
    /**
     * Opens the next openNew(prefix)'s handle now, in the background (opening
     * a sync access handle can take as long as writing a photo). It is an
     * empty partial like any other: a restart sees it, and the caller's
     * cleanup of `prefix` partials removes it; close() removes it too.
     */
    prepare(prefix) {
      if (closed || spare) return;
      spare = { prefix, opening: openHandle(`${prefix}${crypto.randomUUID()}`, 0) };
      spare.opening.catch(() => {});
    },
    /** Makes partial `part` (checked and synced by the caller, its writer closed) the file `hash`; when that file is here already, it stays and the partial goes. */
    async commit(part, hash) {
      if (!HASH.test(hash)) throw new FerryError('misuse', `${hash} is not a SHA-256 hex hash`);
      try {
        const fh = opened.get(part) || await fileOf(partial, part);
        if (!fh) throw new FerryError('not_found', `there is no partial file ${part}`);
        // The same bytes are there already (a put and a download raced):
        // replacing them would break a reader's File snapshot of them.
        if (await fileOf(blobs, hash)) { await removeEntry(partial, part); return; }
        await unlocked(() => fh.move(blobs, hash));
      } catch (e) {
        throw fail(e, `committing ${part} as ${hash}`);
      } finally {
        opened.delete(part);
      }
    },
    async removePartial(part) { opened.delete(part); await removeEntry(partial, part); },
    async remove(hash) { if (HASH.test(hash)) await removeEntry(blobs, hash); },
    async list() { return (await names(blobs)).filter((n) => HASH.test(n)); },
    listPartials() { return names(partial); },
    /** Chunks (Uint8Array) of file `hash`, bytes [start, end). */
    async* read(hash, start, end) { yield* readFile(await must(await fileOfHash(hash), hash), start, end); },
    /** Fills `target` with the bytes of file `hash` from `start`; -> how many it read (fewer at the end). */
    async readInto(hash, start, target) {
      const file = await must(await fileOfHash(hash), hash);
      const bytes = new Uint8Array(await file.slice(start, start + target.length).arrayBuffer());
      target.set(bytes);
      return bytes.length;
    },
    async* readPartial(part, start, end) {
      const fh = await fileOf(partial, part);
      yield* readFile(await must(fh && await unlocked(() => fh.getFile()), `partial ${part}`), start, end);
    },
    /** The complete file `hash` as a disk-backed Blob (a File snapshot), null when it is not here. */
    blob(hash) { return fileOfHash(hash); },
    /** Closes the handle opened ahead (its empty partial goes); the store stays usable, opening handles as it needs them. */
    async close() {
      closed = true;
      const s = spare;
      spare = null;
      const got = s && await s.opening.catch(() => null);
      if (got) { got.h.close(); await removeEntry(partial, got.part).catch(() => {}); }
    },
    /** Deletes the whole store (the database is being deleted). */
    async destroy() {
      await this.close();
      try {
        await unlocked(() => ferry.removeEntry(`${name}.files`, { recursive: true }));
      } catch (e) {
        if (e.name !== 'NotFoundError') throw fail(e, `deleting the file store of '${name}'`);
      }
    },
  };
}
