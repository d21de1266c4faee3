// The device file store for 'file' storage (Node): a directory beside the
// database, `<db path>.files/`, holding complete files under `blobs/<hash>`
// and transfers in progress under `partial/<name>`. A file becomes visible
// under its hash only by a rename after its bytes were checked and synced,
// so a crash leaves either the whole file or none of it in `blobs/`.
// The same function table is what an OPFS or IndexedDB store implements.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

const HASH = /^[0-9a-f]{64}$/;
const READ_CHUNK = 1 << 20;

async function syncDir(dir) {
  const d = await fsp.open(dir, 'r').catch(() => null);
  if (!d) return;
  try { await d.sync(); } catch { /* not every file system syncs directories */ } finally { await d.close(); }
}

async function sizeOf(p) {
  try { return (await fsp.stat(p)).size; } catch (e) { if (e.code === 'ENOENT') return null; throw e; }
}

async function* readFile(p, start, end) {
  const fh = await fsp.open(p, 'r');
  try {
    for (let at = start; at < end;) {
      const buf = new Uint8Array(Math.min(READ_CHUNK, end - at));
      const { bytesRead } = await fh.read(buf, 0, buf.length, at);
      if (bytesRead === 0) break;
      at += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** The store under `root` (created). */
export function nodeFileStore(root) {
  const blobs = path.join(root, 'blobs');
  const partial = path.join(root, 'partial');
  fs.mkdirSync(blobs, { recursive: true });
  fs.mkdirSync(partial, { recursive: true });
  const blob = (hash) => path.join(blobs, hash);
  const part = (name) => path.join(partial, name);
  return {
    kind: 'file',
    root,
    async has(hash) { return (await sizeOf(blob(hash))) !== null; },
    size(hash) { return sizeOf(blob(hash)); },
    async partialSize(name) { return (await sizeOf(part(name))) ?? 0; },
    /** A writer of partial `name` truncated to `offset`: write(u8) appends, sync(), close(). */
    async openPartial(name, offset = 0) {
      const fh = await fsp.open(part(name), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
      let at = offset;
      try { await fh.truncate(offset); } catch (e) { await fh.close(); throw e; }
      return {
        async write(u8) {
          for (let done = 0; done < u8.length;) {
            const { bytesWritten } = await fh.write(u8, done, u8.length - done, at);
            done += bytesWritten;
            at += bytesWritten;
          }
        },
        sync() { return fh.datasync(); },
        close() { return fh.close(); },
      };
    },
    /** Makes partial `name` (checked and synced by the caller) the file `hash`; when that file is here already, it stays and the partial goes. */
    async commit(name, hash) {
      if ((await sizeOf(blob(hash))) !== null) { await fsp.rm(part(name), { force: true }); return; }
      await fsp.rename(part(name), blob(hash));
      await syncDir(blobs);
    },
    removePartial(name) { return fsp.rm(part(name), { force: true }); },
    remove(hash) { return fsp.rm(blob(hash), { force: true }); },
    async list() { return (await fsp.readdir(blobs)).filter((n) => HASH.test(n)); },
    listPartials() { return fsp.readdir(partial); },
    /** Chunks (Uint8Array) of file `hash`, bytes [start, end). */
    read(hash, start, end) { return readFile(blob(hash), start, end); },
    /** Fills `target` with the bytes of file `hash` from `start`; -> how many it read (fewer at the end). */
    async readInto(hash, start, target) {
      const fh = await fsp.open(blob(hash), 'r');
      try {
        let done = 0;
        while (done < target.length) {
          const { bytesRead } = await fh.read(target, done, target.length - done, start + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return done;
      } finally {
        await fh.close();
      }
    },
    readPartial(name, start, end) { return readFile(part(name), start, end); },
    /** Deletes the whole store (the database is being deleted). */
    destroy() { return fsp.rm(root, { recursive: true, force: true }); },
  };
}

/** Where the file store of the database at `dbPath` lives. */
export function fileStoreDir(dbPath) {
  return `${path.resolve(dbPath)}.files`;
}
