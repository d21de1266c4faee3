// The device file store for 'indexeddb' storage: the function table of
// node-store.js over an IndexedDB database of its own, `ferry-files:<name>`.
// A file's bytes are chunk records (Blobs of CHUNK bytes, the last one
// shorter) keyed [id, index], where id names one sequence of chunks; which
// sequence is what is the small records of `partials` (name -> { id, size })
// and `blobs` (hash -> { id, size }). Every transaction that writes is
// strict (flushed before it completes) and keeps a partial's record and its
// chunks in step, so after a crash a partial holds exactly the bytes its
// record says. Commit moves the record from `partials` to `blobs` in one
// transaction without touching a chunk: a file is visible under its hash
// whole or not at all, at any size.
import { FerryError, storageCode } from '../errors.js';

const HASH = /^[0-9a-f]{64}$/;
const CHUNK = 1 << 20;
// Blobs, not ArrayBuffers: blob(hash) then composes the stored chunks
// without reading them, and a read brings one chunk into memory at a time.
const STORES = ['blobs', 'partials', 'chunks'];

function fail(e, what) {
  if (e instanceof FerryError) return e;
  const code = storageCode(e);
  return new FerryError(code, code === 'storage_full'
    ? `the device has no room left for ${what} (${e.message})`
    : `${what} failed in IndexedDB: ${e?.message || e}`, { cause: e });
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Deletes chunks [from, to) of `id`. Keys one by one, not a key range: a
 * factory passed in (fake-indexeddb in Node) comes without a global IDBKeyRange. */
function dropChunks(chunks, id, from, to) {
  for (let i = from; i < to; i++) chunks.delete([id, i]);
}
const count = (size) => Math.ceil(size / CHUNK);

function openIdb(factory, dbName) {
  return new Promise((resolve, reject) => {
    const req = factory.open(dbName, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      for (const s of STORES) if (!db.objectStoreNames.contains(s)) db.createObjectStore(s);
    };
    req.onsuccess = () => {
      const db = req.result;
      // A deletion of the store elsewhere (another worker's signOut) must not wait for this connection.
      db.onversionchange = () => db.close();
      resolve(db);
    };
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new FerryError('busy', `IndexedDB database ${dbName} is held by an older connection`));
  });
}

/** The store of database `name` (created); opts.indexedDB replaces the global factory. */
export async function idbFileStore(name, opts = {}) {
  const factory = opts.indexedDB || globalThis.indexedDB;
  if (!factory) throw new FerryError('unsupported', 'IndexedDB is not available here');
  const dbName = `ferry-files:${name}`;
  let idb;
  try {
    idb = await openIdb(factory, dbName);
  } catch (e) {
    throw fail(e, `opening the file store of '${name}'`);
  }

  /**
   * fn(stores) in one transaction; -> what fn resolved to, once the
   * transaction completed. A throw in fn aborts the transaction.
   */
  const tx = (mode, what, fn) => new Promise((resolve, reject) => {
    let t, result, thrown = null;
    try {
      t = idb.transaction(STORES, mode, mode === 'readwrite' ? { durability: 'strict' } : undefined);
    } catch (e) {
      reject(fail(e, what));
      return;
    }
    t.oncomplete = () => resolve(result);
    t.onabort = () => reject(fail(thrown || t.error || new DOMException('the transaction was aborted', 'AbortError'), what));
    const stores = Object.fromEntries(STORES.map((s) => [s, t.objectStore(s)]));
    Promise.resolve().then(() => fn(stores)).then((r) => { result = r; }, (e) => {
      thrown = e;
      try { t.abort(); } catch { /* finished already */ }
    });
  });

  const record = async (store, key) => (await tx('readonly', `reading ${key}`, (s) => request(s[store].get(key)))) ?? null;
  const mustRecord = async (store, key) => {
    const r = HASH.test(key) || store === 'partials' ? await record(store, key) : null;
    if (!r) throw new FerryError('not_found', `${store === 'blobs' ? key : `partial ${key}`} is not in the file store`);
    return r;
  };
  const chunk = async (id, i, what) => {
    const b = await tx('readonly', what, (s) => request(s.chunks.get([id, i])));
    if (!b) throw new FerryError('corrupt', `chunk ${i} of ${what} is missing from IndexedDB`);
    return b;
  };

  /** Chunks of the file that `rec` describes, bytes [start, end), one stored chunk in memory at a time. */
  async function* readRec(rec, start, end, what) {
    end = Math.min(end, rec.size);
    for (let at = start; at < end;) {
      const i = Math.floor(at / CHUNK);
      const b = await chunk(rec.id, i, what);
      const to = Math.min(end, (i + 1) * CHUNK);
      const piece = new Uint8Array(await b.slice(at - i * CHUNK, to - i * CHUNK).arrayBuffer());
      if (piece.length !== to - at) throw new FerryError('corrupt', `chunk ${i} of ${what} is shorter than its record says`);
      at = to;
      yield piece;
    }
  }

  return {
    kind: 'indexeddb',
    async has(hash) { return HASH.test(hash) && (await record('blobs', hash)) !== null; },
    async size(hash) { return HASH.test(hash) ? (await record('blobs', hash))?.size ?? null : null; },
    async partialSize(part) { return (await record('partials', part))?.size ?? 0; },

    /**
     * A writer of partial `part` truncated to `offset` (at most its size):
     * write(u8) appends, sync() makes what was written durable, close().
     * Full chunks are stored as they fill; the last, unfilled one is held in
     * memory and stored by sync() and close().
     */
    async openPartial(part, offset = 0) {
      let rec, tail = new Uint8Array(CHUNK), fill = 0;
      try {
        // The bytes before the offset in the chunk it falls in become the
        // writer's tail; they are read first, outside the writing transaction
        // (a Blob is read asynchronously, which would end it).
        const prev = await record('partials', part);
        const size = prev ? Math.min(offset, prev.size) : 0;
        if (size % CHUNK) {
          const b = await chunk(prev.id, Math.floor(size / CHUNK), `partial ${part}`);
          const head = new Uint8Array(await b.slice(0, size % CHUNK).arrayBuffer());
          tail.set(head);
          fill = head.length;
        }
        rec = { id: prev?.id ?? crypto.randomUUID(), size };
        await tx('readwrite', `opening the partial file ${part}`, async (s) => {
          const now = await request(s.partials.get(part));
          if ((now?.id ?? null) !== (prev?.id ?? null) || (now && now.size < size)) {
            throw new FerryError('busy', `the partial file ${part} changed while it was opened`);
          }
          const keep = Math.floor(size / CHUNK);
          if (now) dropChunks(s.chunks, rec.id, keep + (fill ? 1 : 0), count(now.size));
          if (fill) s.chunks.put(new Blob([tail.subarray(0, fill)]), [rec.id, keep]);
          s.partials.put(rec, part);
        });
      } catch (e) {
        throw fail(e, `opening the partial file ${part}`);
      }
      let index = Math.floor(rec.size / CHUNK);
      let stored = fill;   // bytes of the tail already in IndexedDB
      let open = true;

      // Stores chunk `i` (bytes) and the partial's new size together, if the partial is still this writer's.
      const store = (i, bytes, size) => tx('readwrite', `writing ${part}`, async (s) => {
        const now = await request(s.partials.get(part));
        if (!now || now.id !== rec.id) throw new FerryError('not_found', `the partial file ${part} was removed while it was written`);
        s.chunks.put(new Blob([bytes]), [rec.id, i]);
        s.partials.put({ id: rec.id, size }, part);
      });
      const flushTail = async () => {
        if (fill === stored) return;
        await store(index, tail.subarray(0, fill), index * CHUNK + fill);
        stored = fill;
      };

      return {
        async write(u8) {
          if (!open) throw new FerryError('misuse', `the writer of ${part} is closed`);
          for (let at = 0; at < u8.length;) {
            if (fill === 0 && u8.length - at >= CHUNK) {
              // A whole chunk straight from the caller's bytes (the Blob copies them).
              await store(index, u8.subarray(at, at + CHUNK), (index + 1) * CHUNK);
              at += CHUNK;
              index++;
              continue;
            }
            const n = Math.min(CHUNK - fill, u8.length - at);
            tail.set(u8.subarray(at, at + n), fill);
            fill += n;
            at += n;
            if (fill === CHUNK) {
              await store(index, tail, (index + 1) * CHUNK);
              index++;
              fill = stored = 0;
            }
          }
        },
        async sync() { await flushTail(); },
        async close() {
          if (!open) return;
          open = false;
          // What was written stays, as in a file; a failure here only means
          // the partial holds fewer bytes, which its record says.
          await flushTail().catch(() => {});
          tail = null;
        },
      };
    },

    /** Makes partial `part` (checked and synced by the caller) the file `hash`, in one transaction. */
    async commit(part, hash) {
      if (!HASH.test(hash)) throw new FerryError('misuse', `${hash} is not a SHA-256 hex hash`);
      await tx('readwrite', `committing ${part} as ${hash}`, async (s) => {
        const p = await request(s.partials.get(part));
        if (!p) throw new FerryError('not_found', `there is no partial file ${part}`);
        s.partials.delete(part);
        if (await request(s.blobs.get(hash))) { dropChunks(s.chunks, p.id, 0, count(p.size)); return; }   // the same bytes are here already
        s.blobs.put(p, hash);
      });
    },
    async removePartial(part) {
      await tx('readwrite', `removing ${part}`, async (s) => {
        const p = await request(s.partials.get(part));
        if (!p) return;
        s.partials.delete(part);
        dropChunks(s.chunks, p.id, 0, count(p.size));
      });
    },
    async remove(hash) {
      await tx('readwrite', `removing ${hash}`, async (s) => {
        const b = await request(s.blobs.get(hash));
        if (!b) return;
        s.blobs.delete(hash);
        dropChunks(s.chunks, b.id, 0, count(b.size));
      });
    },
    async list() { return (await tx('readonly', 'listing files', (s) => request(s.blobs.getAllKeys()))).filter((k) => HASH.test(k)); },
    listPartials() { return tx('readonly', 'listing partial files', (s) => request(s.partials.getAllKeys())); },
    /** Chunks (Uint8Array) of file `hash`, bytes [start, end). */
    async* read(hash, start, end) { yield* readRec(await mustRecord('blobs', hash), start, end, hash); },
    /** Fills `target` with the bytes of file `hash` from `start`; -> how many it read (fewer at the end). */
    async readInto(hash, start, target) {
      let done = 0;
      for await (const c of readRec(await mustRecord('blobs', hash), start, start + target.length, hash)) {
        target.set(c, done);
        done += c.length;
      }
      return done;
    },
    async* readPartial(part, start, end) { yield* readRec(await mustRecord('partials', part), start, end, `partial ${part}`); },
    /**
     * The complete file `hash` as a Blob composed of its stored chunk Blobs
     * (no bytes are read for it), null when it is not here.
     */
    async blob(hash) {
      if (!HASH.test(hash)) return null;
      return tx('readonly', `reading ${hash}`, async (s) => {
        const b = await request(s.blobs.get(hash));
        if (!b) return null;
        const parts = await Promise.all(Array.from({ length: count(b.size) }, (_, i) => request(s.chunks.get([b.id, i]))));
        if (parts.some((c) => !(c instanceof Blob))) throw new FerryError('corrupt', `a chunk of ${hash} is missing from IndexedDB`);
        const whole = new Blob(parts);
        if (whole.size !== b.size) throw new FerryError('corrupt', `the chunks of ${hash} hold ${whole.size} of ${b.size} bytes`);
        return whole;
      });
    },
    /** Deletes the whole store (the database is being deleted). */
    async destroy() {
      idb.close();
      await new Promise((resolve, reject) => {
        const req = factory.deleteDatabase(dbName);
        req.onsuccess = () => resolve();
        req.onerror = () => reject(fail(req.error, `deleting the file store of '${name}'`));
        // Other connections close on versionchange; one that does not is a live store elsewhere.
        req.onblocked = () => reject(new FerryError('busy', `the file store of '${name}' is open elsewhere; close it there first`));
      });
    },
  };
}
