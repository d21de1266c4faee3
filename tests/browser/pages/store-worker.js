// A dedicated module worker driving the device file stores directly
// (bindings/files/opfs-store.js, idb-store.js): { id, op, args } in,
// { id, reply } out. File contents are described, never sent: byte i of a
// piece { seed, from, to } is a function of (seed, i), so the worker writes
// and checks any size chunk by chunk without holding a file in memory.
import { open, deleteDatabase } from '/bindings/index.js';
import { plainError } from './ops.js';

const stores = new Map();   // `${kind}:${name}` -> store
const hung = [];            // writers left open on purpose (a crash mid-partial)

function word(seed, j) {
  let z = (seed + Math.imul(j, 0x9e3779b9)) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Fills u8 with the bytes of `seed` from position `at`. */
function fill(u8, seed, at) {
  let j = -1, w = 0;
  for (let k = 0; k < u8.length; k++) {
    const i = at + k;
    if (i >>> 2 !== j) { j = i >>> 2; w = word(seed, j); }
    u8[k] = (w >>> ((i & 3) << 3)) & 255;
  }
  return u8;
}

/** Checker of bytes expected from `pieces` ([{ seed, from, to }], contiguous from 0), fed from `start`. */
function checker(pieces, start) {
  let at = start, bad = null;
  const scratch = new Uint8Array(1 << 20);
  return {
    feed(u8) {
      for (let off = 0; off < u8.length && bad === null;) {
        const p = pieces.find((q) => at >= q.from && at < q.to);
        if (!p) { bad = at; break; }
        const n = Math.min(u8.length - off, p.to - at, scratch.length);
        const want = fill(scratch.subarray(0, n), p.seed, at);
        for (let k = 0; k < n; k++) if (u8[off + k] !== want[k]) { bad = at + k; break; }
        off += n;
        at += n;
      }
    },
    get at() { return at; },
    get bad() { return bad; },
  };
}

async function storeOf(kind, name) {
  const key = `${kind}:${name}`;
  if (!stores.has(key)) {
    if (kind === 'opfs') stores.set(key, await (await import('/bindings/files/opfs-store.js')).opfsFileStore(name));
    else if (kind === 'indexeddb') stores.set(key, await (await import('/bindings/files/idb-store.js')).idbFileStore(name));
    else throw new Error(`no store kind ${kind}`);
  }
  return stores.get(key);
}

const channel = new MessageChannel();
const macrotask = () => new Promise((resolve) => { channel.port1.onmessage = () => resolve(); channel.port2.postMessage(0); });

// Write sizes vary so the stores see writes across their chunk boundaries.
const WRITES = [65536, 1, 300000, 4 << 20, 7, 1 << 20, 250000];

const ops = {
  /**
   * Writes bytes [offset, end) of `seed` to partial `part` (opened at
   * `offset`), in writes of `chunk` bytes (default: varied), syncs, closes
   * and, with `commit`, makes it file `commit`. With `hang`, writes `hang`
   * more bytes after the sync and leaves the writer open (for a crash). With
   * `progress`, it reports the bytes written after each write (as the
   * page's { type: 'committed', n }) and lets its event loop run, so that a
   * terminate() lands between two writes. With `fresh` (a prefix), the
   * partial is a new one from store.openNew(fresh), its name in the reply.
   */
  async write({ kind, name, part, seed, offset = 0, end, chunk, commit, hang = 0, progress = false, fresh }) {
    const store = await storeOf(kind, name);
    const t0 = performance.now();
    const w = fresh ? await store.openNew(fresh) : await store.openPartial(part, offset);
    if (fresh) part = w.part;
    let writes = 0;
    try {
      const buf = new Uint8Array(Math.max(chunk || 0, ...WRITES));
      for (let at = offset; at < end;) {
        const n = Math.min(end - at, chunk || WRITES[writes % WRITES.length]);
        await w.write(fill(buf.subarray(0, n), seed, at));
        at += n;
        writes++;
        if (progress) {
          postMessage({ type: 'committed', n: at });
          await macrotask();
        }
      }
      await w.sync();
      if (hang) {
        await w.write(fill(new Uint8Array(hang), seed, end));
        hung.push(w);
        return { writes, hung: true };
      }
    } finally {
      if (!hang) await w.close();
    }
    const wrote = performance.now() - t0;
    if (commit) await store.commit(part, commit);
    return { writes, part, ms: Math.round(performance.now() - t0), writeMs: Math.round(wrote) };
  },
  /**
   * Reads bytes [start, end) of file `hash` (or of partial `part`) via
   * 'read', 'readPartial', 'readInto' (in `into`-byte reads) or 'blob', and
   * checks them against `pieces`. -> { n, bad, maxChunk, ms }
   */
  async verify({ kind, name, hash, part, pieces, start = 0, end, via = 'read', into = 4 << 20 }) {
    const store = await storeOf(kind, name);
    const c = checker(pieces, start);
    let maxChunk = 0;
    const t0 = performance.now();
    if (via === 'read' || via === 'readPartial') {
      const it = via === 'read' ? store.read(hash, start, end) : store.readPartial(part, start, end);
      for await (const u8 of it) {
        if (!(u8 instanceof Uint8Array)) throw new Error('read yielded a non-Uint8Array');
        maxChunk = Math.max(maxChunk, u8.length);
        c.feed(u8);
      }
    } else if (via === 'readInto') {
      const target = new Uint8Array(into);
      for (let at = start; at < end;) {
        const n = await store.readInto(hash, at, target.subarray(0, Math.min(into, end - at)));
        if (n === 0) break;
        maxChunk = Math.max(maxChunk, n);
        c.feed(target.subarray(0, n));
        at += n;
      }
    } else if (via === 'blob') {
      const b = await store.blob(hash);
      if (!(b instanceof Blob)) return { blob: b === null ? null : typeof b };
      const reader = b.slice(start, end).stream().getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        maxChunk = Math.max(maxChunk, value.length);
        c.feed(value);
      }
      return { n: c.at - start, bad: c.bad, maxChunk, ms: Math.round(performance.now() - t0), size: b.size };
    } else {
      throw new Error(`no via ${via}`);
    }
    return { n: c.at - start, bad: c.bad, maxChunk, ms: Math.round(performance.now() - t0) };
  },
  /** readInto once: -> how many bytes it said it read. */
  async readInto({ kind, name, hash, start, length }) {
    return (await storeOf(kind, name)).readInto(hash, start, new Uint8Array(length));
  },
  /** store[method](...args), for the methods that return plain values. */
  async call({ kind, name, method, args = [] }) {
    const r = await (await storeOf(kind, name))[method](...args);
    if (method === 'destroy') stores.delete(`${kind}:${name}`);
    return r === undefined ? null : r;
  },
  /** The largest chunk record of an IndexedDB file store, and how many there are. */
  async idbChunks({ name }) {
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open(`ferry-files:${name}`);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    try {
      const all = await new Promise((resolve, reject) => {
        const req = db.transaction('chunks').objectStore('chunks').getAll();
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      return { count: all.length, max: Math.max(0, ...all.map((b) => b.size)), blobs: all.every((b) => b instanceof Blob) };
    } finally {
      db.close();
    }
  },
  /** Whether the store of `name` exists on the device (without creating it). */
  async exists({ kind, name }) {
    if (kind === 'indexeddb') return (await indexedDB.databases()).some((d) => d.name === `ferry-files:${name}`);
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('ferry', { create: true });
    for await (const n of dir.keys()) if (n === `${name}.files`) return true;
    return false;
  },
  async deleteDatabase({ name, storage }) { await deleteDatabase(name, { storage }); return true; },
  /** Opens database `name` on `storage`, asks db.files for its queue, then signs out or closes. */
  async database({ name, storage, signOut = false }) {
    const db = await open({ name, storage, worker: false });
    try {
      const status = await db.files.flush();
      return { storage: db.status().storage, status };
    } finally {
      if (signOut) await db.signOut();
      else await db.close();
    }
  },
};

self.onmessage = async (ev) => {
  const { id, op, args } = ev.data;
  let reply;
  try {
    const fn = ops[op];
    if (!fn) throw new Error(`unknown op '${op}'`);
    reply = { value: await fn(args || {}) };
  } catch (e) {
    reply = { error: plainError(e) };
  }
  postMessage({ id, reply });
};
postMessage({ type: 'ready' });
