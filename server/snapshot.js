// Snapshots (docs/PROTOCOL.md, "Snapshots"): a new device's first sync as
// one download of a ready SQLite file instead of a pull and an insert of
// every object. The file is made by ferry's own client: a database per user
// (userKeyOf) that pulls from this server's store as that user, through a
// fetch that calls the store in this process (no network, the pull's own
// access rules and filters). So it holds exactly what that user's pull gives,
// in the schema the client's core makes, with the cursors that continue it;
// the device that starts from it drops its client id and makes its own
// (core/db.c, open from a copy).
//
// Before each download the builder pulls what changed since its last one
// (nothing, when nothing did); when it changed, a new image is published:
// the builder's file, closed (a plain SQLite file), copied under a new name.
// A download in progress keeps reading the file it opened.
//
// The folders of all users together stay under a budget of bytes (the
// builder's database and the image, about twice what the user may see):
// after a build, the users whose snapshot was asked for longest ago lose
// theirs (never one building now), and their next download builds it anew.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { open } from '../bindings/index.js';
import { HttpError, checkPull, userKeyOf } from './requests.js';

const LOCAL = 'http://ferry-snapshot.invalid/sync';

/** A fetch Response of JSON: `body` a value, or its text already made (the store's pull replies). */
function reply(status, body) {
  const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return new Response(text, { status, headers: { 'content-type': 'application/json' } });
}

/**
 * The fetch a builder syncs through: GET /sync/model and POST /sync/pull of
 * `store` as `user`; anything else is refused (a builder never pushes, and
 * it downloads no files).
 */
function localFetch({ store, model, pageLimit, pageBytes }, user) {
  return async (url, init = {}) => {
    const route = new URL(url).pathname;
    try {
      if (route === '/sync/model') return reply(200, model);
      if (route === '/sync/pull' && init.method === 'POST') {
        const text = typeof init.body === 'string' ? init.body : new TextDecoder().decode(init.body);
        return reply(200, await store.pull(checkPull(JSON.parse(text), model), { user, pageLimit, pageBytes }));
      }
      return reply(404, { error: 'not_found', message: `a snapshot builder only pulls (${init.method || 'GET'} ${route})` });
    } catch (e) {
      if (e instanceof HttpError) return reply(e.status, { error: e.code, message: e.message });
      throw e;
    }
  };
}

async function sha256Of(file) {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk);
  return h.digest('hex');
}

/** Bytes of the files directly in `dir` (0 when it is gone). */
async function folderBytes(dir) {
  let total = 0;
  for (const name of await fsp.readdir(dir).catch(() => [])) {
    total += (await fsp.stat(path.join(dir, name)).catch(() => null))?.size ?? 0;
  }
  return total;
}

export const DEFAULT_SNAPSHOT_BYTES = 1024 ** 3;

/**
 * The snapshots of a server under `dir`. server: { store, model, pageLimit,
 * pageBytes }; maxBytes: what all users' folders may take together (the one
 * just built is kept whatever its size). image(user) -> { file, size,
 * sha256, handle } (handle: the image opened, a fs.promises FileHandle the
 * caller closes); close().
 */
export class Snapshots {
  #dir; #server; #maxBytes; #chains = new Map(); #evicting = new Map(); #images = new Map(); #used = new Map(); #closed = false;
  #folders = null;   // Promise of key -> { bytes, mtimeMs }: each user's folder, read from disk once, then kept up to date

  constructor(dir, server, { maxBytes = DEFAULT_SNAPSHOT_BYTES } = {}) {
    this.#dir = dir;
    this.#server = server;
    this.#maxBytes = maxBytes;
  }

  /** Builds or refreshes `user`'s image, one build per user at a time, and opens it (before a newer one can remove it). */
  image(user) {
    if (this.#closed) return Promise.reject(new HttpError(503, 'closing', 'the server is closing'));
    const key = crypto.createHash('sha256').update(userKeyOf(user)).digest('hex').slice(0, 32);
    this.#used.set(key, Date.now());
    const run = (this.#chains.get(key) || this.#evicting.get(key) || Promise.resolve()).catch(() => {}).then(async () => {
      const image = await this.#build(key, user);
      const handle = await fsp.open(image.file);
      await this.#evict(key).catch(() => {});
      return { ...image, handle };
    });
    const tail = run.finally(() => { if (this.#chains.get(key) === tail) this.#chains.delete(key); });
    tail.catch(() => {});
    this.#chains.set(key, tail);
    return run;
  }

  async #build(key, user) {
    const dir = path.join(this.#dir, key);
    await fsp.mkdir(dir, { recursive: true });
    const dbPath = path.join(dir, 'builder.db');
    const db = await open({
      name: `snapshot-${key}`, storage: 'file', path: dbPath, worker: false,
      server: LOCAL, fetch: localFetch(this.#server, user), syncOnOpen: false, fileTransfers: false,
    });
    let state;
    try {
      const r = await db.sync();
      if (r.error) throw new Error(`the snapshot's pull failed: ${r.error.code || ''} ${r.error.message || r.error}`);
      const [cursors] = await db.query("SELECT group_concat(entity || '=' || cursor, ',') AS c FROM (SELECT entity, cursor FROM _ferry_cursor ORDER BY entity)");
      const [meta] = await db.query("SELECT value FROM _ferry_meta WHERE key = 'model'");
      state = `${cursors?.c ?? ''}|${crypto.createHash('sha256').update(String(meta?.value ?? '')).digest('hex')}`;
    } finally {
      await db.close();   // checkpointed: dbPath is a plain SQLite file now
    }
    const last = this.#images.get(key);
    if (last && last.state === state && fs.existsSync(last.file)) return last;
    const file = path.join(dir, `image-${Date.now()}-${crypto.randomBytes(4).toString('hex')}.sqlite`);
    await fsp.copyFile(dbPath, `${file}.tmp`);
    await fsp.rename(`${file}.tmp`, file);
    const image = { file, size: (await fsp.stat(file)).size, sha256: await sha256Of(file), state };
    this.#images.set(key, image);
    // Older images go; a download still reading one keeps its open file.
    for (const name of await fsp.readdir(dir)) {
      if (name.startsWith('image-') && path.join(dir, name) !== file) await fsp.rm(path.join(dir, name), { force: true });
    }
    return image;
  }

  /** key -> { bytes, mtimeMs } of every user's folder on disk (those of earlier processes too). */
  async #scan() {
    const folders = new Map();
    for (const ent of await fsp.readdir(this.#dir, { withFileTypes: true }).catch(() => [])) {
      if (!ent.isDirectory()) continue;
      const dir = path.join(this.#dir, ent.name);
      folders.set(ent.name, { bytes: await folderBytes(dir), mtimeMs: (await fsp.stat(dir).catch(() => null))?.mtimeMs ?? 0 });
    }
    return folders;
  }

  /**
   * Removes the folders of the users asked for longest ago (those of an
   * earlier process by their folder's time) until all fit in maxBytes,
   * keeping `keep` (just built: its size is read again) and any user whose
   * build runs. The disk is scanned once per process; a download reading an
   * image that goes keeps its open file.
   */
  async #evict(keep) {
    this.#folders ??= this.#scan();
    const folders = await this.#folders;
    folders.set(keep, { bytes: await folderBytes(path.join(this.#dir, keep)), mtimeMs: Date.now() });
    let total = 0;
    for (const f of folders.values()) total += f.bytes;
    if (total <= this.#maxBytes) return;
    const order = [...folders].map(([key, f]) => ({ key, bytes: f.bytes, used: this.#used.get(key) ?? f.mtimeMs }))
      .sort((a, b) => a.used - b.used);
    for (const f of order) {
      if (total <= this.#maxBytes) break;
      if (f.key === keep || this.#chains.has(f.key)) continue;
      // A download asked for meanwhile waits for the removal, then builds anew.
      const gone = fsp.rm(path.join(this.#dir, f.key), { recursive: true, force: true });
      this.#evicting.set(f.key, gone);
      folders.delete(f.key);
      this.#images.delete(f.key);
      if (this.#used.get(f.key) === f.used) this.#used.delete(f.key);
      try {
        await gone;
      } finally {
        this.#evicting.delete(f.key);
      }
      total -= f.bytes;
    }
  }

  async close() {
    this.#closed = true;
    await Promise.allSettled([...this.#chains.values()]);
  }
}

/** Answers GET (or HEAD) /sync/snapshot for `user` with their image. */
export async function serveSnapshot(req, res, { snapshots, user, headers = {} }) {
  const image = await snapshots.image(user);
  if (req.method === 'HEAD') await image.handle.close();
  const stream = req.method === 'HEAD' ? null : image.handle.createReadStream();   // closes the handle at its end
  res.writeHead(200, {
    ...headers,
    'content-type': 'application/vnd.sqlite3',
    'content-length': String(image.size),
    'x-ferry-snapshot-sha256': image.sha256,
    'cache-control': 'no-store',
  });
  if (!stream) { res.end(); return; }
  await new Promise((resolve) => {
    stream.on('error', () => { res.destroy(); resolve(); });
    res.on('close', () => { stream.destroy(); resolve(); });
    stream.pipe(res);
  });
}
