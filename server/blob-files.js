// The folder blob store (the default): the bytes of file attributes, by
// SHA-256, under dataDir/files, streamed to and from disk, never held whole
// in memory. The interface it implements is in blobs.js. An upload appends
// to a partial file of its uploader's at the offset the client says; once
// all `size` bytes are in, their SHA-256 is checked and the file is renamed
// to its hash. Several processes may share the folder (one machine or a
// shared file system): the rename is atomic, and a process's running hash
// vouches only for a partial file as it left it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { BlobError, HASH, beginAppend, cutError, isCut, serial, drain } from './blobs.js';

export class FileBlobStore {
  /** @param {string} dir  the store's folder (created) */
  constructor(dir) {
    this.dir = dir;
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

  async size(hash) {
    const st = await statOrNull(this.blobPath(hash));
    return st ? st.size : null;
  }

  async received(hash, uploader) {
    const st = await statOrNull(this.partialPath(hash, uploader));
    return st ? st.size : 0;
  }

  append(hash, size, offset, body, uploader = '') {
    const key = this.partialName(hash, uploader);
    return serial(this.locks, key, () => this.#append(hash, size, offset, body, key));
  }

  /** `key`: the partial upload's name (partialName). */
  async #append(hash, size, offset, body, key) {
    const file = path.join(this.partial, key);
    const before = await statOrNull(file);
    const at = before ? before.size : 0;
    // The hash is taken as the bytes are written, and carried from one append
    // to the next while the partial file is as this process left it (the
    // same file, size and mtime); anything else (a restart, a cut, an error,
    // a short write) drops it, and the file is hashed from disk at the end.
    let running = beginAppend(this.hashing, key, { hash, offset, at, body }, (kept) => kept.ino === before.ino && kept.mtimeMs === before.mtimeMs);
    const handle = await fsp.open(file, 'a');
    let written = 0;
    let after = null;
    try {
      for await (const chunk of body) {
        if (offset + written + chunk.length > size) throw new BlobError('too_long', `the bytes run past the file's size of ${size}`);
        const w = handle.write(chunk);
        running?.sha.update(chunk);   // while the write runs on the thread pool
        const { bytesWritten } = await w;
        if (bytesWritten !== chunk.length) running = null;
        else if (running) running.at += chunk.length;
        written += chunk.length;
      }
      // Only the whole file is made durable (before it becomes a blob): the
      // client trusts `received` only to send the next bytes, and a tail a
      // crash lost shows as a shorter file (409, it resends from there) or
      // fails the hash at the end (it starts over). Nothing acknowledged as
      // stored is ever lost, and a 100 MB upload does not wait for 25 fsyncs.
      if (offset + written === size) await handle.sync();
      if (running) after = await handle.stat();
    } catch (e) {
      if (e instanceof BlobError) {
        await handle.truncate(offset).catch(() => {});   // a body that does not fit the file: none of it counts
        drain(body);
        throw e;
      }
      // A cut: what arrived is a prefix of the file, the client resumes after it.
      throw isCut(e) ? cutError(offset + written) : e;
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
      throw new BlobError('hash_mismatch', `the ${size} bytes received hash to ${got}, not ${hash}; upload them again from 0`);
    }
    if ((await this.size(hash)) !== null) {
      await fsp.rm(file, { force: true });   // another upload stored these bytes first
    } else {
      const dest = this.blobPath(hash);
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      await fsp.rename(file, dest);
      await syncDir(path.dirname(dest));
    }
    return { received, complete: true };
  }

  read(hash, start, end) {
    return fs.createReadStream(this.blobPath(hash), { start, end });
  }

  async* list() {
    for (const sub of await fsp.readdir(this.blobs)) {
      for (const name of await fsp.readdir(path.join(this.blobs, sub)).catch(() => [])) {
        if (!HASH.test(name)) continue;
        const st = await statOrNull(path.join(this.blobs, sub, name));
        if (st) yield { hash: name, at: st.mtimeMs };
      }
    }
  }

  async remove(hash) {
    await fsp.rm(this.blobPath(hash), { force: true });
  }

  async sweep(before) {
    let n = 0;
    for (const name of await fsp.readdir(this.partial)) {
      const file = path.join(this.partial, name);
      const st = await statOrNull(file);
      if (!st || st.mtimeMs >= before || this.locks.has(name)) continue;
      await fsp.rm(file, { force: true });
      this.hashing.delete(name);
      n++;
    }
    return n;
  }
}

async function statOrNull(file) {
  try {
    return await fsp.stat(file);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
    return null;
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
