// The transfer queue: uploads and downloads of file bytes, on their own,
// never inside a sync run. What must survive a crash is in the database:
// the upload queue is _ferry_files (written by the capture triggers with
// the reference, cleared through the core's ferry_files_* when the server
// has the bytes), and a download is due for every referenced hash the file
// store lacks, so both are found again after a restart. What is only about
// the I/O (order, backoff, offsets) lives here: the server says after any
// failure how many bytes it holds, and a partial download says it itself.
import { FerryError } from '../errors.js';
import { createHasher } from './hash.js';
import { FileTransport } from './transport.js';

export const CHUNK = 4 * 1024 * 1024;

const sleep = (ms, signal) => new Promise((resolve) => {
  const stop = () => { clearTimeout(t); resolve(); };
  const t = setTimeout(() => { signal?.removeEventListener('abort', stop); resolve(); }, ms);
  signal?.addEventListener('abort', stop, { once: true });
});

// A failure to wait out (the network, the server's 5xx, a busy lock):
// tried again with backoff, never a file's error.
class Transient extends Error {}
// A failure of this file alone, for syncErrors(): { code, message }.
class FileFailure extends Error {
  constructor(code, message) { super(message); this.code = code; }
}
// Not possible yet (the bytes are not uploaded, the object not pushed):
// the file waits for the next kick (a sync, a put, a get).
class NotYet extends Error {}

function transient(res, what) {
  return new Transient(res.status ? `${what}: HTTP ${res.status}` : (res.error || what));
}

/**
 * host gives: uploads() -> [{ hash, size, entity, id, attribute, code, ready }],
 * downloads() -> [{ hash, size, entity, id, attribute }] (referenced, not stored),
 * uploaded(hash), fail(hash, code, message), emit(event, detail), gc(),
 * core (the wasm core: the SHA-256 where node:crypto is not).
 */
export class FileQueue {
  #store; #host; #opts; #transport; #abort = new AbortController();
  #dirty = false; #loop = null; #closed = false;
  #wanted = new Map();          // hash -> ref: lazy downloads asked for by get()
  #downloadErrors = new Map();  // hash -> { code, message, entity, id, attribute }
  #items = new Map();           // `${dir}:${hash}` -> { direction, hash, size, done }
  #counts = { uploads: 0, downloads: 0, failed: 0 };

  constructor(store, host, opts) {
    this.#store = store;
    this.#host = host;
    this.#opts = opts;
    this.#transport = opts.server && opts.fileTransfers !== false ? new FileTransport(opts) : null;
  }

  /** Something changed (a sync ended, a put, a get): run a pass soon. */
  kick() {
    if (this.#closed || !this.#transport) return this.#loop || Promise.resolve();
    this.#dirty = true;
    if (!this.#loop) {
      this.#loop = this.#run().finally(() => { this.#loop = null; });
    }
    return this.#loop;
  }

  /** Resolves when no transfer can make progress now (all done, failed, or waiting for a push or the server). */
  async flush() {
    await this.kick();
    while (this.#loop) await this.#loop;
  }

  want(ref) {
    if (!this.#wanted.has(ref.hash)) this.#wanted.set(ref.hash, ref);
    this.kick();
  }

  downloadErrors() { return [...this.#downloadErrors.values()]; }
  retryDownload(hash) { return this.#downloadErrors.delete(hash); }

  status() {
    let bytesDone = 0, bytesTotal = 0;
    for (const it of this.#items.values()) { bytesDone += it.done; bytesTotal += it.size; }
    return { ...this.#counts, active: this.#items.size, bytesDone, bytesTotal };
  }

  async close() {
    this.#closed = true;
    this.#abort.abort();
    await this.#loop?.catch(() => {});
  }

  async #run() {
    while (this.#dirty && !this.#closed) {
      this.#dirty = false;
      try {
        await Promise.all([this.#uploads(), this.#downloads()]);
        await this.#host.gc();
      } catch (e) {
        // The database closed or its storage failed; the next kick tries again.
        if (!this.#closed) this.#host.emit('progress', { error: e });
      }
    }
  }

  async #uploads() {
    const rows = await this.#host.uploads();
    this.#counts.uploads = rows.filter((r) => !r.code).length;
    this.#counts.failed = rows.filter((r) => r.code).length + this.#downloadErrors.size;
    for (const row of rows) {
      if (this.#closed) return;
      if (row.code || !row.ready) continue;
      await this.#transfer('upload', row, (it) => this.#upload(it), async (f) => {
        await this.#host.fail(row.hash, f.code, f.message);
      });
      if (!this.#closed) this.#counts.uploads = (await this.#host.uploads()).filter((r) => !r.code).length;
    }
  }

  async #downloads() {
    const due = new Map();
    for (const r of await this.#host.downloads()) due.set(r.hash, r);
    for (const [hash, ref] of this.#wanted) {
      if (due.has(hash)) continue;
      if (await this.#store.has(hash)) this.#wanted.delete(hash);
      else due.set(hash, ref);
    }
    // A file no longer referenced is no longer a failure either.
    for (const hash of this.#downloadErrors.keys()) if (!due.has(hash)) this.#downloadErrors.delete(hash);
    this.#counts.downloads = [...due.keys()].filter((h) => !this.#downloadErrors.has(h)).length;
    for (const ref of due.values()) {
      if (this.#closed) return;
      if (this.#downloadErrors.has(ref.hash)) continue;
      await this.#transfer('download', ref, (it) => this.#download(it), async (f) => {
        this.#downloadErrors.set(ref.hash, { hash: ref.hash, code: f.code, message: f.message, entity: ref.entity, id: ref.id, attribute: ref.attribute });
        this.#counts.failed++;
      });
      if (await this.#store.has(ref.hash).catch(() => false)) {
        this.#wanted.delete(ref.hash);
        this.#counts.downloads = Math.max(0, this.#counts.downloads - 1);
      }
    }
  }

  /** Runs one file's transfer with retries: transient failures back off (and reset when bytes moved), a file failure is recorded. */
  async #transfer(direction, ref, fn, onFailure) {
    const item = { direction, hash: ref.hash, size: ref.size, done: 0, entity: ref.entity, id: ref.id, attribute: ref.attribute };
    const key = `${direction}:${ref.hash}`;
    this.#items.set(key, item);
    const retries = this.#opts.fileRetries ?? 8;
    try {
      for (let attempt = 0; !this.#closed; attempt++) {
        const before = item.done;
        try {
          await fn(item);
          return;
        } catch (e) {
          if (this.#closed) return;
          if (e instanceof FileFailure) { await onFailure(e); this.#host.emit('progress', { ...item, error: e.code }); return; }
          if (e instanceof NotYet) return;
          if (!(e instanceof Transient)) throw e;
          if (item.done > before) attempt = 0;
          if (attempt >= retries) return;   // parked until the next kick
          await sleep(Math.min(5000, (this.#opts.fileBackoff ?? 50) * 2 ** attempt), this.#abort.signal);
        }
      }
    } finally {
      this.#items.delete(key);
    }
  }

  #progress(item, done) {
    item.done = done;
    this.#host.emit('progress', { direction: item.direction, hash: item.hash, entity: item.entity, id: item.id, attribute: item.attribute, bytesDone: done, bytesTotal: item.size });
  }

  // ---- uploads ----------------------------------------------------------------

  /** Where the server's copy stands: { complete } or { offset }. */
  async #probe(hash) {
    const t = this.#transport;
    const h = await t.head(hash, this.#abort.signal);
    if (h.status === 200) return { complete: true };
    if (h.status === 404 && h.received !== null) return { offset: h.received };
    if (h.status !== 404) throw transient(h, 'HEAD');
    // No reader of the object may see it (an upload-only entity): an empty
    // PUT at 0 asks with write access instead.
    const p = await t.put(hash, 0, new Uint8Array(0), this.#abort.signal);
    if (p.status === 200) return p.body.complete ? { complete: true } : { offset: p.body.received };
    if (p.status === 409) return { offset: p.body.received };
    if (p.status === 404) throw new FileFailure('forbidden', p.body.message || `the server accepts no bytes for ${hash} from this user`);
    if (p.status === 413) throw new FileFailure('too_big', p.body.message || 'the file is larger than the server accepts');
    throw transient(p, 'PUT');
  }

  async #upload(item) {
    const { hash, size } = item;
    if (!(await this.#store.has(hash))) {
      const h = await this.#transport.head(hash, this.#abort.signal);
      if (h.status === 200) { await this.#host.uploaded(hash); return; }
      throw new FileFailure('not_found', `the bytes of ${hash} are not on this device (the reference was written without db.files.put)`);
    }
    let where = await this.#probe(hash);
    let restarted = false;
    // One buffer for all the chunks of this upload: a PUT's reply comes after its body was read, so the next
    // chunk may reuse it, and a large file does not leave a trail of chunk-sized garbage behind.
    const buffer = new Uint8Array(Math.min(size, this.#opts.fileChunk ?? CHUNK));
    while (!where.complete) {
      let offset = where.offset;
      this.#progress(item, offset);
      const bytes = await this.#readRange(hash, offset, Math.min(size, offset + (this.#opts.fileChunk ?? CHUNK)), buffer);
      const r = await this.#transport.put(hash, offset, bytes, this.#abort.signal);
      if (r.status === 200) {
        where = r.body.complete ? { complete: true } : { offset: r.body.received };
        if (!r.body.complete && r.body.received <= offset && bytes.length > 0) throw new Transient('the server kept none of the chunk');
        continue;
      }
      if (r.status === 409) { where = await this.#probe(hash); continue; }
      if (r.status === 422) {
        if (restarted) throw new FileFailure('corrupt', r.body.message || `the bytes of ${hash} do not hash right on the server`);
        restarted = true;
        where = { offset: 0 };
        continue;
      }
      if (r.status === 413) throw new FileFailure('too_big', r.body.message || 'the file is larger than the server accepts');
      if (r.status === 404) throw new FileFailure('forbidden', r.body.message || `the server accepts no bytes for ${hash} from this user`);
      if (r.status === 401 || r.status === 403) throw new NotYet();
      // A cut or a 5xx: the server keeps what arrived; probe again after the backoff.
      throw transient(r, 'PUT');
    }
    this.#progress(item, size);
    await this.#host.uploaded(hash);
  }

  async #readRange(hash, start, end, buffer) {
    const out = buffer ? buffer.subarray(0, end - start) : new Uint8Array(end - start);
    let at = 0;
    if (this.#store.readInto) at = await this.#store.readInto(hash, start, out);   // no chunk copies on the way
    else for await (const c of this.#store.read(hash, start, end)) { out.set(c, at); at += c.length; }
    if (at !== out.length) throw new FileFailure('corrupt', `the local copy of ${hash} is shorter than its reference says`);
    return out;
  }

  // ---- downloads --------------------------------------------------------------

  async #download(item, again = false) {
    const { hash, size } = item;
    const store = this.#store;
    if (await store.has(hash)) return;
    let have = await store.partialSize(hash);
    if (have > size) { await store.removePartial(hash); have = 0; }
    let h = await createHasher(this.#host.core);
    // A hasher in the core holds wasm memory: every way out closes it (after digest(), a no-op).
    try {
      if (have > 0) for await (const c of store.readPartial(hash, 0, have)) h.update(c);
      const res = await this.#transport.get(hash, have, this.#abort.signal);
      if (!res.status) throw transient(res, 'GET');
      if (res.status === 404) {
        const body = await FileTransport.json(res);
        if (body.error === 'file_pending') throw new NotYet();
        throw new FileFailure('forbidden', body.message || `the server serves ${hash} to no object this user may read`);
      }
      if (res.status === 416) { await store.removePartial(hash); throw new Transient('the partial download is past the file'); }
      if (res.status === 401 || res.status === 403) { await res.body?.cancel().catch(() => {}); throw new NotYet(); }
      if (res.status !== 200 && res.status !== 206) { await res.body?.cancel().catch(() => {}); throw transient(res, 'GET'); }
      let from = have;
      if (res.status === 200 && have > 0) { from = 0; h.close(); h = await createHasher(this.#host.core); }
      if (res.status === 206 && !new RegExp(`^bytes ${have}-`).test(res.headers.get('content-range') || '')) {
        await res.body?.cancel().catch(() => {});
        throw new Transient('the server answered another range');
      }
      const w = await store.openPartial(hash, from);
      let done = from;
      try {
        try {
          for await (const chunk of res.body) {
            if (done + chunk.length > size) throw new FileFailure('corrupt', `the server sent more than the ${size} bytes of ${hash}`);
            await w.write(chunk);
            h.update(chunk);
            done += chunk.length;
            this.#progress(item, done);
          }
        } catch (e) {
          if (e instanceof FileFailure) throw e;
          await w.sync().catch(() => {});
          throw new Transient(`the download of ${hash} was cut at ${done} bytes`);
        }
        await w.sync();
      } finally {
        await w.close();
      }
      if (done < size) throw new Transient(`the download of ${hash} stopped at ${done} of ${size} bytes`);
      if (h.digest() !== hash) {
        await store.removePartial(hash);
        if (again) throw new FileFailure('corrupt', `the bytes downloaded for ${hash} do not hash to it`);
        return this.#download(item, true);
      }
    } finally {
      h.close();
    }
    await store.commit(hash, hash);
  }
}

export { FileFailure };
