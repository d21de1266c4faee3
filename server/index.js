// ferry's reference sync server: createSyncServer() serves the model, push
// and pull of docs/PROTOCOL.md under /sync, with its data in SQLite through
// ferry's own core (file storage under dataDir).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../bindings/index.js';
import { FerryError } from '../bindings/errors.js';
import { validateModel, formatErrors } from './model.js';
import { SyncStore } from './store.js';
import { HttpError, checkPush, checkPull, checkVerify } from './requests.js';
import { staticFiles } from './static.js';
import { openPostgres } from './db-postgres.js';
import { postgres, sqlite } from './sql.js';
import { serveFile } from './files.js';
import { Snapshots, serveSnapshot, DEFAULT_SNAPSHOT_BYTES } from './snapshot.js';
import { checkBlobStore, collectBlobs, DEFAULT_FILE_LIMIT, DEFAULT_FILE_GRACE } from './blobs.js';
import { FileBlobStore } from './blob-files.js';
import { PostgresBlobStore } from './blob-postgres.js';

export { validateModel, compileWhere, formatErrors } from './model.js';
export { demoAuth, DEMO_USERS, DEMO_PASSWORD } from './auth.js';
export { BlobError } from './blobs.js';
export { FileBlobStore } from './blob-files.js';
export { PostgresBlobStore } from './blob-postgres.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BINDINGS = path.join(root, 'bindings');
export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;
export const DEFAULT_PAGE_LIMIT = 5000;
export const DEFAULT_PAGE_BYTES = 4 * 1024 * 1024;

/**
 * Reads a model: an object, or a path to a JSON file. Validates it and
 * returns the normalized model; throws FerryError 'model_invalid' listing
 * every error ("Entity: rule: message", one a line).
 */
export function loadModel(model) {
  let json = model;
  let where = 'the model';
  if (typeof model === 'string') {
    where = model;
    let text;
    try {
      text = fs.readFileSync(model, 'utf8');
    } catch (e) {
      throw new FerryError('not_found', `cannot read the model file ${model}: ${e.message}`, { cause: e });
    }
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new FerryError('model_invalid', `${model} is not valid JSON: ${e.message}`, { cause: e });
    }
  }
  const r = validateModel(json);
  if (!r.ok) {
    const err = new FerryError('model_invalid', `${where} cannot work offline (${r.errors.length} error${r.errors.length === 1 ? '' : 's'}):\n${formatErrors(r.errors)}`);
    err.errors = r.errors;
    throw err;
  }
  return r.model;
}

function sendJson(res, status, body, extraHeaders) {
  const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...extraHeaders,
  };
  res.writeHead(status, headers);
  res.end(text);
}

/** Reads a request body up to `limit` bytes; rejects with HttpError 413 past it (without reading the rest). */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, 'too_large', `the request body is ${declared} bytes; the limit is ${limit}`));
      return;
    }
    const chunks = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.pause();
        reject(new HttpError(413, 'too_large', `the request body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => { if (!done) { done = true; resolve(Buffer.concat(chunks, size)); } });
    req.on('error', (e) => { if (!done) { done = true; reject(e); } });
    req.on('aborted', () => { if (!done) { done = true; reject(new HttpError(400, 'bad_request', 'the request was aborted')); } });
  });
}

async function readJson(req, limit) {
  const buf = await readBody(req, limit);
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new HttpError(400, 'bad_request', `the body is not valid JSON: ${e.message}`);
  }
}

const ROUTE_KEY = /^(GET|POST|PUT|PATCH|DELETE) (\/[^\s?#]*)$/;

/** The routes option as path -> { METHOD: handler }; FerryError 'misuse' for a bad key or handler. */
function checkRoutes(routes) {
  const byPath = new Map();
  if (routes === null || routes === undefined) return byPath;
  if (typeof routes !== 'object') throw new FerryError('misuse', "routes is an object of 'METHOD /path': async (req, ctx) => ({ status, body })");
  for (const [key, fn] of Object.entries(routes)) {
    const m = ROUTE_KEY.exec(key);
    if (!m) throw new FerryError('misuse', `route '${key}' is not 'METHOD /path' (GET, POST, PUT, PATCH or DELETE)`);
    const [, method, route] = m;
    if (route === '/sync' || route.startsWith('/sync/')) throw new FerryError('misuse', `route '${key}': /sync is the sync protocol's`);
    if (typeof fn !== 'function') throw new FerryError('misuse', `route '${key}' needs a function`);
    if (!byPath.has(route)) byPath.set(route, {});
    byPath.get(route)[method] = fn;
  }
  return byPath;
}

/** The blob store the `blobs` option names (see createSyncServer). */
async function openBlobs(blobs, { dataDir, db, pg }) {
  if (blobs === 'files') return new FileBlobStore(path.join(dataDir, 'files'));
  if (blobs === 'postgres') {
    if (!pg) throw new FerryError('misuse', "blobs: 'postgres' keeps files in the PostgreSQL backend's database; it needs backend: { postgres: url }");
    return PostgresBlobStore.open(db);
  }
  if (typeof blobs === 'string') throw new FerryError('misuse', `blobs is 'files', 'postgres' or a blob store object, not '${blobs}'`);
  return checkBlobStore(blobs);
}

/**
 * Starts a sync server.
 * @param {object} options
 *   model        the model object, or a path to its JSON file (validated: FerryError 'model_invalid')
 *   dataDir      folder of the server's database (created; a fresh temp dir when omitted)
 *   port = 0, host = '127.0.0.1'
 *   static       folder served at '/' (with the repo's bindings/ at '/bindings/'), or null
 *   authenticate async (req) => user object | null (null: 401); default: anonymous {}
 *   authorize    async ({ user, entity, id, op, values, current }) => boolean (false: rejected 'forbidden')
 *   routes       more JSON routes: { 'POST /auth/sign-in': async (req, { json, fail, server }) => ({ status, body, headers }) };
 *                json() reads the body (bodyLimit), fail(status, code, message) makes an error to throw
 *   bodyLimit = 16 MiB, pageLimit = 5000 objects and pageBytes = 4 MiB (the largest page a pull returns;
 *                one object larger than pageBytes still goes, alone)
 *   seed         run on a new database: { Entity: [objects] } or async (server) => {}
 *   cors         null (default: same origin only), '*', or a list of allowed origins
 *   tombstoneHorizon = 90 days (ms): tombstones and unacknowledged results older than this are purged
 *                (at start and hourly; api.purge() runs it now); 0 keeps everything
 *   fileLimit = 1 GiB: the largest file (bytes) the server accepts (api.fileLimit may change it)
 *   fileGrace = 1 day (ms): unreferenced blobs and abandoned partial uploads older than this are
 *                collected (with the purge)
 *   backend      'sqlite' (default): ferry's SQLite under dataDir, one process; or
 *                { postgres: 'postgres://user@host:port/db', max = 10 }: PostgreSQL (several server
 *                processes may share it)
 *   blobs        where the bytes of files go: 'files' (default: the folder dataDir/files), 'postgres'
 *                (rows of the postgres backend's database: several processes need no shared folder),
 *                or a blob store of the app's (the interface in server/blobs.js and server/README.md;
 *                the app closes it)
 *   snapshots = true: GET /sync/snapshot gives a user a ready SQLite file of what they may see,
 *                for a new device's first sync (built under dataDir/snapshots by ferry's own client;
 *                docs/PROTOCOL.md, Snapshots); false answers it 404
 *   snapshotBytes = 1 GiB: what the snapshots of all users may take on disk together; past it the
 *                users asked for longest ago lose theirs (rebuilt at their next download)
 *   log          (message) => void for errors and migrations (default console.error)
 * @returns {Promise<{ url, port, close, db, model, store, write, remove, version }>}
 */
export async function createSyncServer(options = {}) {
  const {
    port = 0, host = '127.0.0.1', authenticate = null, authorize = null,
    bodyLimit = DEFAULT_BODY_LIMIT, pageLimit = DEFAULT_PAGE_LIMIT, pageBytes = DEFAULT_PAGE_BYTES, seed = null, cors = null,
    log = (m) => console.error(m), tombstoneHorizon = 90 * 24 * 3600 * 1000,
    fileLimit = DEFAULT_FILE_LIMIT, fileGrace = DEFAULT_FILE_GRACE, snapshotBytes = DEFAULT_SNAPSHOT_BYTES,
  } = options;
  if (!Number.isSafeInteger(fileLimit) || fileLimit < 0) throw new FerryError('misuse', 'fileLimit is a number of bytes');
  if (!Number.isSafeInteger(snapshotBytes) || snapshotBytes < 0) throw new FerryError('misuse', 'snapshotBytes is a number of bytes');
  if (options.model === undefined) throw new FerryError('misuse', 'createSyncServer() needs a model (an object or a path to its JSON file)');
  if (!Number.isSafeInteger(pageLimit) || pageLimit < 1) throw new FerryError('misuse', 'pageLimit must be a positive integer');
  if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1) throw new FerryError('misuse', 'bodyLimit must be a positive integer');
  const model = loadModel(options.model);
  const extraRoutes = checkRoutes(options.routes);
  let dataDir = options.dataDir;
  let tempData = false;
  if (!dataDir) {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-server-'));
    tempData = true;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const backend = options.backend ?? 'sqlite';
  const pgUrl = typeof backend === 'object' && backend !== null ? backend.postgres : undefined;
  if (backend !== 'sqlite' && typeof pgUrl !== 'string') {
    throw new FerryError('misuse', "backend is 'sqlite' or { postgres: 'postgres://user@host:port/database' }");
  }
  const db = pgUrl
    ? await openPostgres(pgUrl, { max: backend.max })
    : await open({ name: 'server', storage: 'file', path: path.join(dataDir, 'server.db') });
  let store;
  let blobs;
  try {
    store = await SyncStore.open(db, model, { log, sql: pgUrl ? postgres : sqlite });
    blobs = await openBlobs(options.blobs ?? 'files', { dataDir, db, pg: !!pgUrl });
  } catch (e) {
    await store?.close().catch(() => {});
    await db.close().catch(() => {});
    if (tempData) fs.rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const snapshots = options.snapshots === false ? null
    : new Snapshots(path.join(dataDir, 'snapshots'), { store, model, pageLimit, pageBytes }, { maxBytes: snapshotBytes });
  const api = {
    db, model, store, dataDir, blobs, fileLimit,
    /** Server-side upserts: write('Customer', [{ id, name, … }]) -> { version } */
    write: (entity, objects, opts) => store.write(entity, objects, opts),
    /** Server-side deletes: remove('Customer', ['id1']) -> { version } */
    remove: (entity, ids, opts) => store.remove(entity, ids, opts),
    /** The highest version given to any change so far. */
    version: () => store.version(),
    /** Purges what is older than the tombstone horizon now. -> { purged, tombstones } */
    purge: async (opts = {}) => {
      const r = await store.purge({ horizon: tombstoneHorizon, ...opts });
      r.files = await collectBlobs(blobs, (hash) => store.fileReferenced(hash), {
        grace: fileGrace, now: opts.now, forget: (hash) => store.forgetFile(hash),
      });
      return r;
    },
  };
  if (!Number.isFinite(tombstoneHorizon) || tombstoneHorizon < 0) throw new FerryError('misuse', 'tombstoneHorizon is a number of milliseconds (0: never purge)');

  // Seed an empty database (no change was ever made to it).
  if (seed && (await store.version()) === 0) {
    try {
      if (typeof seed === 'function') {
        await seed(api);
      } else {
        for (const [entity, objects] of Object.entries(seed)) await store.write(entity, objects);
      }
    } catch (e) {
      await db.close().catch(() => {});
      if (tempData) fs.rmSync(dataDir, { recursive: true, force: true });
      throw e;
    }
  }

  const serveStatic = options.static ? staticFiles({ '/': options.static, '/bindings/': BINDINGS }) : null;
  const allowOrigin = (req) => {
    if (!cors) return null;
    const origin = req.headers.origin;
    if (cors === '*') return '*';
    if (origin && (Array.isArray(cors) ? cors : [cors]).includes(origin)) return origin;
    return null;
  };

  const corsOf = (req) => {
    const origin = allowOrigin(req);
    return origin ? { 'access-control-allow-origin': origin, vary: 'origin' } : {};
  };

  async function handle(req, res) {
    let route;
    try {
      route = new URL(req.url, 'http://localhost').pathname;
    } catch {
      throw new HttpError(400, 'bad_request', 'the request URL does not parse');
    }
    const origin = allowOrigin(req);
    const corsHeaders = corsOf(req);
    if (route === '/sync' || route.startsWith('/sync/')) {
      const file = /^\/sync\/files\/([^/]*)$/.exec(route);
      if (req.method === 'OPTIONS' && origin) {
        res.writeHead(204, {
          ...corsHeaders,
          'access-control-allow-methods': file ? 'GET, HEAD, PUT' : 'GET, POST',
          'access-control-expose-headers': 'content-range, x-ferry-received, x-ferry-snapshot-sha256',
          'access-control-allow-headers': req.headers['access-control-request-headers'] || 'content-type',
          'access-control-max-age': '600',
        });
        res.end();
        return;
      }
      if (file) {
        const user = authenticate ? await authenticate(req) : {};
        if (user === null || user === undefined || user === false) {
          req.resume();
          throw new HttpError(401, 'unauthenticated', 'the request has no valid credentials');
        }
        await serveFile(req, res, { hash: file[1], user, store, blobs, fileLimit: api.fileLimit, sendJson, headers: corsHeaders });
        return;
      }
      const routes = { '/sync/model': 'GET', '/sync/push': 'POST', '/sync/pull': 'POST', '/sync/verify': 'POST', '/sync/snapshot': 'GET' };
      const method = routes[route];
      if (!method) throw new HttpError(404, 'not_found', `no sync route ${route}; use GET /sync/model, POST /sync/push, POST /sync/pull, POST /sync/verify, GET /sync/snapshot`);
      if (req.method !== method && !(method === 'GET' && req.method === 'HEAD')) {
        throw new HttpError(405, 'method_not_allowed', `${route} takes ${method}`);
      }
      const user = authenticate ? await authenticate(req) : {};
      if (user === null || user === undefined || user === false) {
        throw new HttpError(401, 'unauthenticated', 'the request has no valid credentials');
      }
      if (route === '/sync/model') {
        sendJson(res, 200, model, corsHeaders);
        return;
      }
      if (route === '/sync/snapshot') {
        if (!snapshots) throw new HttpError(404, 'not_found', 'this server makes no snapshots (snapshots: false)');
        await serveSnapshot(req, res, { snapshots, user, headers: corsHeaders });
        return;
      }
      const body = await readJson(req, bodyLimit);
      if (route === '/sync/push') {
        const reply = await store.push(checkPush(body), { user, authorize });
        sendJson(res, 200, reply, corsHeaders);
      } else if (route === '/sync/verify') {
        sendJson(res, 200, await store.verify(checkVerify(body, model), { user }), corsHeaders);
      } else {
        const reply = await store.pull(checkPull(body, model), { user, pageLimit, pageBytes });
        sendJson(res, 200, reply, corsHeaders);
      }
      return;
    }
    const extra = extraRoutes.get(route);
    if (extra) {
      const methods = Object.keys(extra);
      if (req.method === 'OPTIONS' && origin) {
        res.writeHead(204, {
          ...corsHeaders,
          'access-control-allow-methods': methods.join(', '),
          'access-control-allow-headers': req.headers['access-control-request-headers'] || 'content-type',
          'access-control-max-age': '600',
        });
        res.end();
        return;
      }
      const fn = extra[req.method] || (req.method === 'HEAD' ? extra.GET : undefined);
      if (!fn) {
        const e = new HttpError(405, 'method_not_allowed', `${route} takes ${methods.join(', ')}`);
        e.allow = methods.join(', ');
        throw e;
      }
      const out = await fn(req, {
        json: () => readJson(req, bodyLimit),
        fail: (status, code, message) => new HttpError(status, code, message),
        server: api,
      });
      // sendJson marks every reply no-store: tokens and the like must never sit in a cache.
      sendJson(res, out?.status ?? 200, out?.body ?? null, { ...corsHeaders, ...out?.headers, 'cache-control': 'no-store' });
      return;
    }
    if (serveStatic && (req.method === 'GET' || req.method === 'HEAD')) {
      serveStatic(req, res, () => sendJson(res, 404, { error: 'not_found', message: `no file at ${route}` }));
      return;
    }
    throw new HttpError(404, 'not_found', `nothing at ${req.method} ${route}`);
  }

  const sockets = new Set();
  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      let status = 500;
      let body = { error: 'internal', message: 'the server failed; see its log' };
      let headers = corsOf(req);
      if (e instanceof HttpError) {
        status = e.status;
        body = { error: e.code, message: e.message, ...e.extra };
      } else {
        log(`ferry-server: ${req.method} ${req.url} failed: ${e?.stack || e}`);
      }
      if (status === 413) headers.connection = 'close';
      if (status === 405) headers.allow = e.allow || (req.url.endsWith('/model') ? 'GET' : /\/sync\/files\//.test(req.url) ? 'GET, HEAD, PUT' : 'POST');
      if (res.headersSent) { res.destroy(); return; }
      sendJson(res, status, body, headers);
      if (status === 413) {
        // Do not read the rest of an oversized body: close once the reply is
        // out. Closing a socket with unread bytes resets it, and a reset that
        // reaches the client before it read the reply loses the reply
        // ("fetch failed" instead of 413, seen under load with 50 ms): give
        // it a second; the kernel's buffers bound what it can send meanwhile.
        res.on('finish', () => setTimeout(() => req.socket?.destroy(), 1000).unref());
      }
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  try {
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => { server.off('error', reject); resolve(); });
    });
  } catch (e) {
    await db.close().catch(() => {});
    if (tempData) fs.rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const actualPort = server.address().port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;

  let purgeTimer = null;
  if (tombstoneHorizon > 0) {
    const purge = () => api.purge().catch((e) => log(`ferry-server: purge failed: ${e?.message || e}`));
    await purge();
    purgeTimer = setInterval(purge, 3600 * 1000);
    purgeTimer.unref();
  }
  let closing = null;
  api.url = `http://${shownHost}:${actualPort}`;
  api.port = actualPort;
  api.server = server;
  api.close = () => {
    if (!closing) {
      closing = (async () => {
        clearInterval(purgeTimer);
        await new Promise((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections?.();
          setTimeout(() => { for (const s of sockets) s.destroy(); }, 200).unref();
        });
        await snapshots?.close();
        await store.close();
        await db.close();
        if (tempData) fs.rmSync(dataDir, { recursive: true, force: true });
      })();
    }
    return closing;
  };
  return api;
}
