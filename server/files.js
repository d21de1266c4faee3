// The server's blob store: the bytes of file attributes, by SHA-256, on disk
// under dataDir/files (docs/PROTOCOL.md, Files). Bytes are streamed to and
// from disk, never held whole in memory. An upload appends to a partial file
// at the offset the client says; the client asks how much arrived (HEAD)
// and continues from there after a cut. Once all `size` bytes are in, their
// SHA-256 is checked before the blob becomes visible under its hash.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { HttpError, userKeyOf } from './store.js';

export const DEFAULT_FILE_LIMIT = 1024 * 1024 * 1024;
export const DEFAULT_FILE_GRACE = 24 * 3600 * 1000;
const HASH = /^[0-9a-f]{64}$/;

export class BlobStore {
  /**
   * @param {string} dir  the store's folder (created)
   * @param {object} [options] fileLimit: the largest file accepted (bytes)
   */
  constructor(dir, { fileLimit = DEFAULT_FILE_LIMIT } = {}) {
    this.dir = dir;
    this.fileLimit = fileLimit;
    this.blobs = path.join(dir, 'blobs');
    this.partial = path.join(dir, 'partial');
    fs.mkdirSync(this.blobs, { recursive: true });
    fs.mkdirSync(this.partial, { recursive: true });
    this.locks = new Map();   // partial upload's name -> the append in progress
    // partial upload's name -> { sha, at, ino, mtimeMs }: the SHA-256 of its first `at` bytes, as this
    // process wrote them, while its appends come in order (see #append).
    this.hashing = new Map();
  }

  blobPath(hash) { return path.join(this.blobs, hash.slice(0, 2), hash); }
  /** Each uploader has a partial file of their own: one user's upload never shows in another's. */
  partialName(hash, uploader) { return `${hash}.${crypto.createHash('sha256').update(String(uploader)).digest('hex').slice(0, 16)}`; }
  partialPath(hash, uploader) { return path.join(this.partial, this.partialName(hash, uploader)); }

  /** Whether the blob `hash` is stored whole. */
  async has(hash) {
    try {
      await fsp.stat(this.blobPath(hash));
      return true;
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
      return false;
    }
  }

  /** { complete: true, size } for a stored blob, else { complete: false, received } (bytes of this uploader's partial upload). */
  async stat(hash, uploader = '') {
    try {
      return { complete: true, size: (await fsp.stat(this.blobPath(hash))).size };
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    return { complete: false, received: await this.received(hash, uploader) };
  }

  /** The bytes of this uploader's partial upload of `hash` (0: none). */
  async received(hash, uploader) {
    try {
      return (await fsp.stat(this.partialPath(hash, uploader))).size;
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
      return 0;
    }
  }

  /**
   * Appends the bytes of `body` (a readable stream) to `uploader`'s upload of
   * `hash` (a file of `size` bytes) at `offset`. One uploader's uploads of
   * one hash run one at a time. -> { received, complete } (complete: the
   * bytes arrived whole and hashed right; they are stored once, however
   * many upload them). HttpError 409 offset_mismatch (with received) when
   * offset is not where the upload stands, 413 too_large past the file
   * limit, 400 bad_request for bytes beyond size, 422 hash_mismatch when the
   * bytes do not hash to `hash` (the upload starts over).
   */
  async append(hash, size, offset, body, uploader = '') {
    const name = this.partialName(hash, uploader);
    const prev = this.locks.get(name) || Promise.resolve();
    const run = prev.catch(() => {}).then(() => this.#append(hash, size, offset, body, uploader));
    this.locks.set(name, run);
    try {
      return await run;
    } finally {
      if (this.locks.get(name) === run) this.locks.delete(name);
    }
  }

  async #append(hash, size, offset, body, uploader) {
    if (size > this.fileLimit) { body.resume(); throw new HttpError(413, 'too_large', `the file is ${size} bytes; the limit is ${this.fileLimit}`); }
    const key = this.partialName(hash, uploader);
    const file = path.join(this.partial, key);
    const before = await fsp.stat(file).catch((e) => { if (e.code === 'ENOENT') return null; throw e; });
    const at = before ? before.size : 0;
    if (offset !== at) {
      body.resume();
      throw new HttpError(409, 'offset_mismatch', `the upload of ${hash} stands at ${at} bytes, not ${offset}`, { received: at });
    }
    // The hash is taken as the bytes are written, and carried from one append
    // to the next while the partial file is as this process left it (the
    // same file, size and mtime); anything else (a restart, a cut, an error,
    // a short write) drops it, and the file is hashed from disk at the end.
    let running = this.hashing.get(key);
    this.hashing.delete(key);
    if (at === 0) running = { sha: crypto.createHash('sha256'), at: 0 };
    else if (!running || running.at !== at || running.ino !== before.ino || running.mtimeMs !== before.mtimeMs) running = null;
    const handle = await fsp.open(file, 'a');
    let written = 0;
    let after = null;
    try {
      for await (const chunk of body) {
        if (offset + written + chunk.length > size) throw new HttpError(400, 'bad_request', `the bytes run past the file's size of ${size}`);
        const w = handle.write(chunk);
        running?.sha.update(chunk);   // while the write runs on the thread pool
        const { bytesWritten } = await w;
        if (bytesWritten !== chunk.length) running = null;
        else if (running) running.at += chunk.length;
        written += chunk.length;
      }
      await handle.sync();
      if (running) after = await handle.stat();
    } catch (e) {
      if (e instanceof HttpError) {
        await handle.truncate(offset).catch(() => {});   // a body that does not fit the file: none of it counts
      } else {
        await handle.sync().catch(() => {});   // a cut: what arrived is a prefix of the file, the client resumes after it
        if (e.code === 'ECONNRESET' || /aborted/i.test(e.message)) {
          throw new HttpError(400, 'bad_request', `the upload was cut off after ${offset + written} bytes; ask how much arrived (HEAD) and go on from there`);
        }
      }
      throw e;
    } finally {
      await handle.close();
    }
    const received = offset + written;
    const hashed = running && after && running.at === received && after.size === received;
    if (received < size) {
      if (hashed) this.hashing.set(key, { sha: running.sha, at: received, ino: after.ino, mtimeMs: after.mtimeMs });
      return { received, complete: false };
    }
    const got = hashed ? running.sha.digest('hex') : await hashFile(file);
    if (got !== hash) {
      await fsp.rm(file, { force: true });
      throw new HttpError(422, 'hash_mismatch', `the ${size} bytes received hash to ${got}, not ${hash}; upload them again from 0`);
    }
    if (await this.has(hash)) {
      await fsp.rm(file, { force: true });   // another upload stored these bytes first
    } else {
      const dest = this.blobPath(hash);
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      await fsp.rename(file, dest);
      await syncDir(path.dirname(dest));
    }
    return { received, complete: true };
  }

  /** A read stream of a stored blob's bytes [start, end] (inclusive). */
  read(hash, start, end) {
    return fs.createReadStream(this.blobPath(hash), { start, end });
  }

  /**
   * Deletes blobs that no object references and partial uploads, once older
   * than `grace` ms. -> { blobs, partial } (how many went).
   */
  async collect(isReferenced, { grace = DEFAULT_FILE_GRACE, now = Date.now(), forget = async () => {} } = {}) {
    const out = { blobs: 0, partial: 0 };
    for (const sub of await fsp.readdir(this.blobs)) {
      for (const name of await fsp.readdir(path.join(this.blobs, sub)).catch(() => [])) {
        const file = path.join(this.blobs, sub, name);
        if (!HASH.test(name)) continue;
        const st = await fsp.stat(file).catch(() => null);
        if (!st || now - st.mtimeMs < grace || await isReferenced(name)) continue;
        await fsp.rm(file, { force: true });
        await forget(name);
        out.blobs++;
      }
    }
    for (const name of await fsp.readdir(this.partial)) {
      const file = path.join(this.partial, name);
      const st = await fsp.stat(file).catch(() => null);
      if (!st || now - st.mtimeMs < grace || this.locks.has(name)) continue;
      await fsp.rm(file, { force: true });
      this.hashing.delete(name);
      out.partial++;
    }
    return out;
  }
}

async function hashFile(file) {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk);
  return h.digest('hex');
}

async function syncDir(dir) {
  const d = await fsp.open(dir, 'r').catch(() => null);
  if (!d) return;
  try { await d.sync(); } catch { /* not every file system syncs directories */ } finally { await d.close(); }
}

/** Parses `bytes=a-b` (one range) against size: { start, end } or null (whole), HttpError 416 when unsatisfiable. */
function parseRange(header, size) {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start;
  let end;
  if (m[1] === '') {
    const n = Number(m[2]);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!Number.isSafeInteger(start) || start >= size || end < start) {
    throw new HttpError(416, 'bad_range', `the range ${header} is outside the file's ${size} bytes`, { size });
  }
  return { start, end };
}

/**
 * Serves /sync/files/<hash> for an authenticated user:
 *   GET, HEAD  the bytes (Range: bytes=a-b gives 206) of a file the user may
 *              read an object of; HEAD of a file not (fully) uploaded yet says
 *              404 with x-ferry-received
 *   PUT ?offset=<n>  appends the body at offset n to the upload of a file the
 *              user may write an object of; -> { received, complete }
 * A file no object the user may read (or write) references is 404, whether
 * or not its bytes exist, so a hash reveals nothing.
 */
export async function serveFile(req, res, { hash, user, store, blobs, sendJson, headers }) {
  if (!HASH.test(hash)) throw new HttpError(404, 'not_found', 'a file is named by its SHA-256 in 64 lowercase hex digits');
  const write = req.method === 'PUT';
  if (!write && req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', 'files take GET, HEAD and PUT');
  const uploader = userKeyOf(user);
  const readRef = await store.fileAccess(hash, user, 'read');
  const writeRef = readRef && !write ? null : await store.fileAccess(hash, user, 'write');
  const ref = readRef || writeRef;
  if (!ref || (write && !writeRef)) {
    req.resume();
    throw new HttpError(404, 'not_found', `no object you may ${write ? 'write' : 'read'} references the file ${hash}`);
  }
  if (write) {
    const offset = Number(new URL(req.url, 'http://x').searchParams.get('offset') ?? 0);
    if (!Number.isSafeInteger(offset) || offset < 0) { req.resume(); throw new HttpError(400, 'bad_request', 'offset is a number of bytes'); }
    // Bytes this user may already read need not go up again; anyone else proves they hold them by sending them.
    if (readRef && await blobs.has(hash)) {
      req.resume();
      sendJson(res, 200, { hash, size: ref.size, received: ref.size, complete: true }, headers);
      return;
    }
    const r = await blobs.append(hash, ref.size, offset, req, uploader);
    if (r.complete) await store.addFileHolder(hash, user);
    sendJson(res, 200, { hash, size: ref.size, ...r }, headers);
    return;
  }
  // Without read access the user sees only their own upload, never whether the bytes exist.
  const st = readRef ? await blobs.stat(hash, uploader) : { complete: false, received: await blobs.received(hash, uploader) };
  if (!st.complete) {
    res.writeHead(404, { ...headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-ferry-received': String(st.received) });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: 'file_pending', message: `the file ${hash} has not been uploaded yet`, received: st.received }));
    return;
  }
  const range = parseRange(req.headers.range, st.size);
  const start = range ? range.start : 0;
  const end = range ? range.end : st.size - 1;
  const head = {
    ...headers,
    'content-type': ref.type || 'application/octet-stream',
    'content-length': String(st.size === 0 ? 0 : end - start + 1),
    'accept-ranges': 'bytes',
    etag: `"${hash}"`,
    // Private: the bytes belong to objects this user may read.
    'cache-control': 'private, max-age=31536000, immutable',
  };
  if (range) head['content-range'] = `bytes ${start}-${end}/${st.size}`;
  res.writeHead(range ? 206 : 200, head);
  if (req.method === 'HEAD') { res.end(); return; }
  if (st.size > 0) await pipeline(blobs.read(hash, start, end), res);
  else res.end();
  // Served to the end: this user holds the bytes now, and a reference they copy shares them.
  if (end === st.size - 1 || st.size === 0) await store.addFileHolder(hash, user);
}
