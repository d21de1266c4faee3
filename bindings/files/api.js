// db.files (README, Files): file bytes in the device's file store, their
// references in the rows, and the transfer queue that moves the bytes.
import { FerryError, storageCode } from '../errors.js';
import { createHasher, digestWhole, WHOLE_LIMIT } from './hash.js';
import { FileQueue } from './queue.js';
import { fileUrl, serveFilesToWorker } from './page.js';
import { isNode, nodeImport } from '../env.js';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** The name prefix of an empty partial marking a file evicted on purpose (bindings/storage/move.js copies them). */
export const EVICTED = 'evicted-';
// The code of an upload the app gave up on (discardSyncError).
export const DISCARDED = 'discarded';
const q = (name) => `"${name}"`;

const isBlob = (data) => !!data && typeof data.arrayBuffer === 'function' && typeof data.size === 'number';

async function* chunksOf(data) {
  if (data instanceof Uint8Array) { yield data; return; }
  if (data instanceof ArrayBuffer) { yield new Uint8Array(data); return; }
  if (data && typeof data.stream === 'function' && typeof data.size === 'number') data = data.stream();   // Blob / File
  if (data && typeof data.getReader === 'function') {
    const reader = data.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }
  if (data && (typeof data[Symbol.asyncIterator] === 'function' || typeof data[Symbol.iterator] === 'function')) {
    yield* data;
    return;
  }
  throw new FerryError('type', 'files.put() takes a Uint8Array, a Blob, a ReadableStream or an async iterable of Uint8Array');
}

/** The device file store of the database: beside its file, in its OPFS directory, or in an IndexedDB database of its own. */
async function openStore(kind, path, { name, indexedDB } = {}) {
  if (kind === 'file') {
    const { nodeFileStore, fileStoreDir } = await nodeImport('./node-store.js', import.meta.url);
    return nodeFileStore(fileStoreDir(path));
  }
  if (kind === 'memory') {
    const { memoryFileStore } = await import('./memory-store.js');
    return memoryFileStore();
  }
  if (kind === 'opfs') {
    const { opfsFileStore } = await import('./opfs-store.js');
    return opfsFileStore(name);
  }
  if (kind === 'indexeddb') {
    const { idbFileStore } = await import('./idb-store.js');
    return idbFileStore(name, { indexedDB });
  }
  return null;
}

/**
 * db gives: core (fileRef, sha256), query(sql, params), transaction(fn),
 * engine(fn) (runs fn(CoreSync) in the call queue, durable after), emit,
 * kind (storage), path, name.
 */
export class Files {
  #db; #opts; #store = null; #queue = null; #ready; #puts = 0; #putting = 0; #unserve = () => {}; #used = new Map(); #asked = new Set(); #evicted = new Set();

  constructor(db, opts) {
    this.#db = db;
    this.#opts = opts;
    this.#ready = (async () => {
      this.#store = await openStore(db.kind, db.path, opts);
      if (!this.#store) return;
      // A put cut by a crash left its bytes under a temporary name: nothing references them.
      for (const name of await this.#store.listPartials()) {
        // (A handle a terminated worker still holds can keep one a while: it goes at the next start.)
        if (name.startsWith('put-')) await this.#store.removePartial(name).catch(() => {});
        else if (name.startsWith(EVICTED)) this.#evicted.add(name.slice(EVICTED.length));
      }
      this.#queue = new FileQueue(this.#store, this.#host(), opts);
      // A database open in the page itself (not in ferry's worker) answers the service worker here.
      if (db.name) this.#unserve = serveFilesToWorker(db.name, (entity, id, attribute) => this.serve(entity, id, attribute));
    })();
    this.#ready.catch(() => {});
  }

  async #need() {
    await this.#ready;
    if (!this.#store) throw new FerryError('unsupported', `files are not available on '${this.#db.kind}' storage`);
  }

  /** The model this database holds, or null before its first sync; rejects when the database cannot be read (closing). */
  async #model() {
    const [row] = await this.#db.query("SELECT value FROM _ferry_meta WHERE key = 'model'");
    return row ? JSON.parse(row.value) : null;
  }

  async #fileAttr(entity, id, attribute) {
    if (typeof entity !== 'string' || typeof id !== 'string' || typeof attribute !== 'string') {
      throw new FerryError('type', 'files take (entity, id, attribute) as three strings');
    }
    const model = await this.#model().catch(() => null);
    const e = model?.entities?.[entity];
    if (!e) throw new FerryError('not_found', model ? `the model has no entity ${entity}` : 'this database has no model yet: sync once first');
    if (e.attributes?.[attribute] !== 'file') throw new FerryError('not_found', `${entity}.${attribute} is not a file attribute of the model`);
    if (!IDENT.test(entity) || !IDENT.test(attribute)) throw new FerryError('not_found', `${entity}.${attribute} is not a plain name`);
    return e;
  }

  /** Every file attribute of the model: [{ entity, attribute, downloads }]; null before the first sync. */
  async #fileColumns() {
    const model = await this.#model();
    if (!model) return null;
    const out = [];
    for (const [entity, e] of Object.entries(model.entities || {})) {
      // A lazy entity's files come when db.files.get asks for them, not at sync.
      const downloads = (e.sync === 'all' || (e.sync && typeof e.sync === 'object')) && e.files !== 'lazy';
      for (const [attribute, type] of Object.entries(e.attributes || {})) {
        if (type === 'file' && IDENT.test(entity) && IDENT.test(attribute)) out.push({ entity, attribute, downloads });
      }
    }
    return out;
  }

  #host() {
    const db = this.#db;
    return {
      uploads: async () => {
        const rows = await db.query(
          'SELECT f.hash, f.size, f.entity, f.oid AS id, f.attr AS attribute, f.code, f.message, '
          + 'EXISTS(SELECT 1 FROM _ferry_outbox o WHERE o.entity = f.entity AND o.oid = f.oid) '
          + 'OR EXISTS(SELECT 1 FROM _ferry_errors e WHERE e.entity = f.entity AND e.oid = f.oid) AS waiting '
          + 'FROM _ferry_files f WHERE f.code IS NOT ? ORDER BY f.at, f.hash', [DISCARDED]).catch(() => []);
        // An upload waits until its object's row is on the server: the
        // server accepts bytes only for a hash an object references.
        return rows.map((r) => ({ ...r, ready: !r.waiting }));
      },
      downloads: async () => {
        const out = [];
        // Files evicted under the budget come back when asked for (get, url), not at sync.
        const seen = new Set(this.#evicted);
        for (const c of (await this.#fileColumns().catch(() => null)) || []) {
          if (!c.downloads) continue;
          const rows = await db.query(`SELECT id, ${q(c.attribute)} AS ref FROM ${q(c.entity)} WHERE ${q(c.attribute)} IS NOT NULL`).catch(() => []);
          for (const r of rows) {
            let ref;
            try { ref = JSON.parse(r.ref); } catch { continue; }
            if (seen.has(ref.hash)) continue;
            seen.add(ref.hash);
            if (!(await this.#store.has(ref.hash))) out.push({ ...ref, entity: c.entity, id: r.id, attribute: c.attribute });
          }
        }
        return out;
      },
      uploaded: (hash) => db.engine((e) => e.fileUploaded(hash)),
      fail: (hash, code, message) => db.engine((e) => e.fileFailed(hash, code, message)).then(() => db.emit('syncerror', { file: hash, code })),
      emit: (event, detail) => db.emit(event, detail),
      gc: () => this.#gc(),
      core: db.core,
    };
  }

  /**
   * Deletes local bytes nothing references and no upload needs. It removes
   * only what it proved unneeded: any query that fails (the database is
   * closing, a table is not there yet) or a model not known yet keeps
   * everything, so a pending upload's bytes are never collected by mistake.
   */
  async #gc() {
    const gen = this.#puts;
    if (this.#putting) return;
    const keep = new Set();
    const uploads = new Set();   // hashes an upload row names: never evicted
    try {
      const columns = await this.#fileColumns();
      if (!columns) return;
      for (const { entity, attribute } of columns) {
        const rows = await this.#db.query(`SELECT DISTINCT json_extract(${q(attribute)}, '$.hash') AS h FROM ${q(entity)} WHERE ${q(attribute)} IS NOT NULL`);
        for (const r of rows) keep.add(r.h);
      }
      // A discarded upload keeps its bytes while a row still references
      // them (a push may arm it again); after that its row goes too.
      for (const r of await this.#db.query('SELECT hash, code FROM _ferry_files')) {
        if (r.code === DISCARDED && !keep.has(r.hash)) await this.#db.engine((x) => x.fileUploaded(r.hash));
        else { keep.add(r.hash); uploads.add(r.hash); }
      }
    } catch {
      return;
    }
    if (gen !== this.#puts || this.#putting) return;   // a put began meanwhile: its bytes may not be referenced yet
    for (const hash of await this.#store.list()) if (!keep.has(hash)) await this.#store.remove(hash);
    await this.#evict(uploads);
  }

  async #unevict(hash) {
    if (!this.#evicted.delete(hash)) return;
    await this.#store.removePartial(`${EVICTED}${hash}`);
  }

  #touch(hash) {
    this.#used.delete(hash);
    this.#used.set(hash, Date.now());   // a Map keeps insertion order: oldest use first
  }

  /**
   * Keeps the downloaded files within the `fileBudget` option (bytes):
   * the least recently used go first, and come back when get or url asks
   * for them. A file an upload still needs is never evicted, nor one a put
   * is writing, nor one a get asked for and has not had yet; files used
   * this session go after the ones not used since the database opened.
   */
  async #evict(uploads) {
    const budget = this.#opts.fileBudget;
    if (!(budget >= 0)) return;
    const sizes = new Map();
    let total = 0;
    for (const hash of await this.#store.list()) {
      const n = (await this.#store.size(hash)) ?? 0;
      sizes.set(hash, n);
      total += n;
    }
    if (total <= budget) return;
    const order = [...sizes.keys()].filter((h) => !this.#used.has(h)).concat([...this.#used.keys()].filter((h) => sizes.has(h)));
    for (const hash of order) {
      if (total <= budget) break;
      if (uploads.has(hash) || this.#asked.has(hash) || this.#putting) continue;
      // A marker among the partials (`evicted-<hash>`) keeps it evicted across a restart.
      const w = await this.#store.openPartial(`${EVICTED}${hash}`, 0);
      await w.close();
      this.#evicted.add(hash);
      await this.#store.remove(hash);
      this.#used.delete(hash);
      total -= sizes.get(hash);
      this.#db.emit('progress', { direction: 'evict', hash, bytesTotal: sizes.get(hash) });
    }
  }

  /**
   * Streams `data` into the device's file store while hashing it, makes it
   * durable, then in one transaction sets entity.attribute of object `id`
   * to its reference (a captured change; its upload is queued with it).
   * -> the reference { hash, size, type, name }.
   */
  async put(entity, id, attribute, data, { type = '', name = '' } = {}) {
    const reading = isBlob(data) && data.size <= WHOLE_LIMIT ? data.arrayBuffer() : null;
    reading?.catch(() => {});   // a put refused by the checks below leaves no unhandled rejection
    await this.#need();
    await this.#fileAttr(entity, id, attribute);
    // Checks type and name before any byte is written.
    this.#db.core.fileRef({ hash: '0'.repeat(64), size: 0, type, name });
    this.#puts++;
    this.#putting++;
    const store = this.#store;
    let temp = null;
    let hasher = null;
    try {
      // A photo-sized file held whole (bytes, or a Blob read at once) is
      // hashed whole: in browsers WebCrypto is many times faster than the
      // wasm's incremental hash, which streams and larger files still take.
      // Reading a photo's Blob is the longest step: it began before the checks.
      let whole = null;
      let wholeHash = null;
      let size = 0;
      try {
        let w;
        if (store.openNew) {
          // OPFS opens a sync access handle ahead of the put that needs it.
          w = await store.openNew('put-');
          temp = w.part;
        } else {
          temp = `put-${globalThis.crypto.randomUUID()}`;
          w = await store.openPartial(temp, 0);
        }
        try {
          whole = reading ? new Uint8Array(await reading) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
          if (!(whole instanceof Uint8Array) || whole.length > WHOLE_LIMIT) whole = null;
          wholeHash = whole ? digestWhole(whole).catch(() => null) : null;   // beside the write and the sync
          if (!whole) hasher = await createHasher(this.#db.core);
          for await (const chunk of whole ? [whole] : chunksOf(data)) {
            if (!(chunk instanceof Uint8Array)) throw new FerryError('type', 'a file stream must yield Uint8Array chunks');
            await w.write(chunk);
            hasher?.update(chunk);
            size += chunk.length;
          }
          await w.sync();
        } finally {
          await w.close();
        }
      } catch (e) {
        if (temp) await store.removePartial(temp).catch(() => {});
        if (e instanceof FerryError) throw e;
        const code = storageCode(e);
        throw new FerryError(code === 'storage_full' ? 'storage_full' : 'io', `the file could not be stored on the device (${e?.message || e}); nothing was changed`, { cause: e });
      }
      let hash = whole ? await wholeHash : null;
      if (!hash) {   // no WebCrypto here: the incremental hash, over the same bytes
        if (!hasher) { hasher = await createHasher(this.#db.core); hasher.update(whole); }
        hash = hasher.digest();
      }
      await store.commit(temp, hash);
      await this.#unevict(hash);
      this.#touch(hash);
      const ref = JSON.parse(this.#db.core.fileRef({ hash, size, type, name }));
      await this.#db.transaction(async (tx) => {
        const r = await tx.exec(`UPDATE ${q(entity)} SET ${q(attribute)} = ? WHERE id = ?`, [JSON.stringify(ref), id]);
        if (r.changes === 0) throw new FerryError('not_found', `there is no ${entity} ${id}; insert the object first`);
      });
      return ref;
    } finally {
      hasher?.close();   // a failed put's hasher holds a wasm handle in browsers; after digest() a no-op
      this.#putting--;
      this.#queue?.kick();
      store.prepare?.('put-');   // the next put's partial, opened while nothing waits for it
    }
  }

  /**
   * The bytes of entity.attribute of object `id`: a Uint8Array (with
   * { stream: true } a ReadableStream of chunks), null when it holds no file,
   * FerryError 'file_pending' when the bytes are not on the device yet
   * (their download is queued).
   */
  async get(entity, id, attribute, { stream = false } = {}) {
    return (await this.#read(entity, id, attribute, stream))?.data ?? null;
  }

  /** get()'s work: { ref, data } of entity.attribute of `id`, null when it holds no file. */
  async #read(entity, id, attribute, stream) {
    await this.#need();
    await this.#fileAttr(entity, id, attribute);
    const [row] = await this.#db.query(`SELECT ${q(attribute)} AS ref FROM ${q(entity)} WHERE id = ?`, [id]);
    if (!row) throw new FerryError('not_found', `there is no ${entity} ${id}`);
    if (row.ref === null) return null;
    const ref = JSON.parse(row.ref);
    // In browsers a Blob (OPFS: backed by the file itself), looked up once; Node gets bytes from any store.
    const blob = this.#store.blob && !isNode ? await this.#store.blob(ref.hash) : undefined;
    if (blob === null || (blob === undefined && !(await this.#store.has(ref.hash)))) {
      await this.#unevict(ref.hash);
      this.#asked.add(ref.hash);   // kept, whatever the budget, until a get has had it
      this.#queue.want({ ...ref, entity, id, attribute });
      throw new FerryError('file_pending', `the bytes of ${entity}.${attribute} of ${id} (${ref.name || ref.hash}) are not on this device yet; they are being downloaded`);
    }
    this.#touch(ref.hash);
    this.#asked.delete(ref.hash);
    if (blob) {
      return { ref, data: stream ? blob.stream() : blob.slice(0, blob.size, ref.type) };
    }
    const it = this.#store.read(ref.hash, 0, ref.size);
    if (stream) return { ref, data: ReadableStream.from(it) };
    const out = new Uint8Array(ref.size);
    let at = 0;
    for await (const c of it) { out.set(c, at); at += c.length; }
    if (at !== ref.size) throw new FerryError('corrupt', `the local copy of ${ref.hash} holds ${at} of ${ref.size} bytes`);
    return { ref, data: out };
  }

  /**
   * What the service worker serves for db.files.url(): { blob, type, name,
   * size } of entity.attribute of `id` (a Blob where the store gives one,
   * else the bytes), null when it holds no file. A file not on the device
   * yet is asked for and waited for up to `wait` ms, then 'file_pending'.
   */
  async serve(entity, id, attribute, { wait = 30_000 } = {}) {
    const deadline = Date.now() + wait;
    for (;;) {
      try {
        const file = await this.#read(entity, id, attribute, false);
        if (!file) return null;
        const { ref, data } = file;
        return { blob: data, type: ref.type, name: ref.name, size: ref.size };
      } catch (e) {
        if (e?.code !== 'file_pending' || Date.now() >= deadline) throw e;
        const failed = this.#queue?.downloadErrors().find((d) => d.entity === entity && d.id === id && d.attribute === attribute);
        if (failed) throw new FerryError(failed.code, failed.message);
        await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))));
      }
    }
  }

  /** A same-origin URL for entity.attribute of `id`, served by ferry's service worker from this device (files/page.js). */
  url(entity, id, attribute) {
    return fileUrl(this.#db.name, entity, id, attribute);
  }

  /** Sets entity.attribute of `id` to null; its bytes go once nothing references them and no upload needs them. */
  async remove(entity, id, attribute) {
    await this.#need();
    await this.#fileAttr(entity, id, attribute);
    const r = await this.#db.transaction((tx) => tx.exec(`UPDATE ${q(entity)} SET ${q(attribute)} = NULL WHERE id = ?`, [id]));
    if (r.changes === 0) throw new FerryError('not_found', `there is no ${entity} ${id}`);
    await this.#gc();
  }

  /** { uploads, downloads, failed, active, bytesDone, bytesTotal } of the transfer queue. */
  status() {
    return this.#queue ? this.#queue.status() : { uploads: 0, downloads: 0, failed: 0, active: 0, bytesDone: 0, bytesTotal: 0 };
  }

  /** Resolves when the queue cannot make progress now: everything moved, failed, or waits for a push or the server. */
  async flush() {
    await this.#need();
    await this.#queue.flush();
    return this.status();
  }

  /** File failures for syncErrors(): [{ entity, id, kind: 'file', attribute, hash, code, reason, at }]. */
  async errors() {
    await this.#ready;
    const rows = await this.#db.query('SELECT hash, entity, oid, attr, code, message, at FROM _ferry_files WHERE code IS NOT NULL AND code != ?', [DISCARDED]).catch(() => []);
    const out = rows.map((r) => ({ entity: r.entity, id: r.oid, kind: 'file', direction: 'upload', attribute: r.attr, hash: r.hash, code: r.code, reason: r.message, at: r.at }));
    for (const d of this.#queue?.downloadErrors() || []) {
      out.push({ entity: d.entity, id: d.id, kind: 'file', direction: 'download', attribute: d.attribute, hash: d.hash, code: d.code, reason: d.message, at: null });
    }
    return out;
  }

  /**
   * retrySyncError / discardSyncError of an object's file errors: retry tries
   * its failed transfers again; discard stops trying to upload them (the
   * reference stays, the bytes stay on this device while it references
   * them). -> how many file errors of the object there were (0: none).
   */
  async resolve(how, entity, id) {
    const mine = (await this.errors()).filter((e) => e.entity === entity && e.id === id);
    for (const e of mine) {
      if (e.direction === 'download') this.#queue?.retryDownload(e.hash);
      // Discarded uploads stay as rows (out of syncErrors): a later applied
      // push of the object arms them again (core/sync/push_results.c).
      else await this.#db.engine((x) => (how === 'retry' ? x.fileRetry(e.hash) : x.fileFailed(e.hash, DISCARDED, 'discarded by the app')));
    }
    if (mine.length) this.kick();
    return mine.length;
  }

  kick() { this.#ready.then(() => this.#queue?.kick()).catch(() => {}); }

  async close() {
    await this.#ready.catch(() => {});
    this.#unserve();
    await this.#queue?.close();
    await this.#store?.close?.();
  }

  async destroy() {
    await this.#ready.catch(() => {});
    await this.#store?.destroy();
  }
}
