// Starting from the server's snapshot (open({ snapshot: true }); docs/PROTOCOL.md,
// Snapshots): a database that is not on this device yet is opened as a copy
// of the ready SQLite file GET <server>/snapshot gives, the same path as
// open({ from }) (image.js, core/db.c: checked, copied into the store as
// one import, the copy's client id dropped), and its first sync continues
// from the cursors the copy carries. Anything in the way (offline, a server
// without snapshots, a cut or damaged download) leaves the database to
// start empty and pull as before: a snapshot is only ever a shortcut.
import { isNode, nodeImport } from './env.js';
import { fromFile } from './image.js';

/** True when database `name` has nothing on this device in storage `kind` (false when that cannot be told). */
async function isNew(kind, opts) {
  try {
    if (kind === 'memory') return true;
    if (kind === 'file') {
      const [{ default: fs }, { default: path }] = await Promise.all([nodeImport('node:fs'), nodeImport('node:path')]);
      const abs = path.resolve(opts.path);
      return !fs.existsSync(abs) && !fs.existsSync(`${abs}-log`);
    }
    if (kind === 'opfs') {
      let dir;
      try {
        dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('ferry');
      } catch (e) {
        return e.name === 'NotFoundError';
      }
      for (const file of [`${opts.name}.db`, `${opts.name}.db-log`]) {
        try { await dir.getFileHandle(file); return false; } catch (e) { if (e.name !== 'NotFoundError') return false; }
      }
      return true;
    }
    if (kind === 'indexeddb') {
      const factory = opts.indexedDB || globalThis.indexedDB;
      if (typeof factory?.databases !== 'function') return false;
      return !(await factory.databases()).some((d) => d.name === `ferry:${opts.name}`);
    }
  } catch {
    return false;
  }
  return false;
}

/** A core file (image.js's shape) over Node file `p`, read only; close() removes the file. */
async function nodeTempFile(p) {
  const [{ default: fs }, { readAt }] = await Promise.all([nodeImport('node:fs'), nodeImport('./storage/node-file.js', import.meta.url)]);
  const fd = fs.openSync(p, 'r');
  const no = () => { throw new Error('a snapshot is only read'); };
  return {
    read(u8, off) { return readAt(fd, u8, off); },
    size: () => fs.fstatSync(fd).size,
    write: no, truncate: no, sync() {},
    close() { fs.closeSync(fd); fs.rmSync(p, { force: true }); },
  };
}

/** The reply's body into Node file `p` (removed again on failure), checked against its length and SHA-256. */
async function download(res, p) {
  const [{ default: fs }, { createHash }] = await Promise.all([nodeImport('node:fs'), nodeImport('node:crypto')]);
  const h = createHash('sha256');
  const fd = fs.openSync(p, 'w');
  let size = 0;
  const put = (chunk) => { fs.writeSync(fd, chunk); h.update(chunk); size += chunk.length; };
  try {
    // Into one buffer where the body lets us (a byte stream): a large
    // download leaves no trail of chunks for the collector (peak RSS).
    let reader = null;
    try { reader = res.body.getReader({ mode: 'byob' }); } catch { /* not a byte stream */ }
    if (reader) {
      let buf = new ArrayBuffer(1 << 20);
      for (;;) {
        const { done, value } = await reader.read(new Uint8Array(buf));
        if (done) break;
        put(value);
        buf = value.buffer;
      }
    } else {
      for await (const chunk of res.body) put(chunk);
    }
  } finally {
    fs.closeSync(fd);
  }
  const want = res.headers.get('x-ferry-snapshot-sha256');
  if (size !== Number(res.headers.get('content-length')) || (want && h.digest('hex') !== want)) {
    throw new Error(`the snapshot arrived damaged (${size} bytes)`);
  }
}

/**
 * The core file to open database opts.name from: the server's snapshot,
 * when the database is new on this device and the server has one; else
 * null. Never throws: what went wrong goes to opts.onSnapshotError, if any.
 */
export async function snapshotFile(kind, opts) {
  if (!opts.snapshot || !opts.server || opts.from !== undefined && opts.from !== null) return null;
  if (!(await isNew(kind, opts))) return null;
  let temp = null;
  try {
    const headers = { accept: 'application/vnd.sqlite3', ...(opts.headers ? await opts.headers() : {}) };
    const fetchFn = opts.fetch || globalThis.fetch.bind(globalThis);
    const res = await fetchFn(`${opts.server.replace(/\/+$/, '')}/snapshot`, {
      headers, cache: 'no-store', signal: AbortSignal.timeout(opts.syncTimeout ?? 60_000),
    });
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      if (res.status !== 404) opts.onSnapshotError?.(new Error(`GET snapshot: HTTP ${res.status}`));
      return null;
    }
    if (isNode && kind === 'file') {
      const [{ default: fs }, { default: path }, { alive }] = await Promise.all([
        nodeImport('node:fs'), nodeImport('node:path'), nodeImport('./storage/node-file.js', import.meta.url),
      ]);
      const abs = path.resolve(opts.path);
      // A download cut by a crash left its file: nothing refers to it.
      for (const name of fs.readdirSync(path.dirname(abs))) {
        const m = name.startsWith(`${path.basename(abs)}.snapshot-`) && /-(\d+)$/.exec(name);
        if (m && !alive(Number(m[1]))) fs.rmSync(path.join(path.dirname(abs), name), { force: true });
      }
      temp = `${abs}.snapshot-${process.pid}`;
      await download(res, temp);
      const file = await nodeTempFile(temp);
      temp = null;
      return file;
    }
    const blob = await res.blob();
    if (blob.size !== Number(res.headers.get('content-length'))) throw new Error(`the snapshot was cut at ${blob.size} bytes`);
    return fromFile(blob);
  } catch (e) {
    opts.onSnapshotError?.(e);
    return null;
  } finally {
    if (temp) (await nodeImport('node:fs')).default.rmSync(temp, { force: true });
  }
}
