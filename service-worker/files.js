// db.files.url(): <scope>…/__ferry/files/<db>/<entity>/<id>/<attribute>,
// answered from the device's file store. The bytes live in the store ferry's
// database worker owns, and a service worker cannot query the database to
// learn which bytes an attribute references, so this route asks whoever
// holds the database: its worker directly, over the port the writer tab
// handed over ({ type: 'ferry:files-port', db }, or with a page's answer),
// so a busy page does not hold the picture up; else the page that made the
// request, then any other, over a MessageChannel. The answer is a Blob (on
// OPFS a disk-backed File: no copy in memory), served whole or as one byte
// range (206/416), never cached. A file not on the device yet is downloaded
// meanwhile (504 after 30 s); no open page holds that database: 503.
// The page side is ferry's bindings (bindings/files/page.js): open() wires it.
import { Route } from 'workbox-routing';
import { ask } from './clients.js';

export const FILE_ROUTE = /\/__ferry\/files\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)$/;
const FILE_WAIT_MS = 30000;   // a file not on the device yet is downloaded meanwhile
// A database worker acknowledges a request at once; one that does not within
// this is gone (its tab closed or reloaded), and a page is asked instead
// (a new writer tab hands over its port at once: this is the rare case).
const FILE_ACK_MS = 2000;

const filePorts = new Map();   // database name -> { port, waiting: Map(rid -> { ack(), done(reply) }) }
let nextRid = 1;

/** Takes `port` to the database worker of `db` (from its writer tab), in place of any older one. */
function adoptFilePort(db, port) {
  if (!port) return;
  filePorts.get(db)?.port.close();
  const entry = { port, waiting: new Map() };
  port.onmessage = (e) => {
    const w = entry.waiting.get(e.data?.rid);
    if (!w) return;
    if (e.data.ack) { w.ack(); return; }
    entry.waiting.delete(e.data.rid);
    w.done(e.data);
  };
  filePorts.set(db, entry);
}

function dropFilePort(db, entry) {
  if (!entry || filePorts.get(db) !== entry) return;
  filePorts.delete(db);
  entry.port.close();
  for (const w of entry.waiting.values()) w.done(null);
}

/** The database worker's reply to `msg`, or null when there is no port to it or it does not answer (then a page is asked). */
function askDatabaseWorker(db, msg) {
  const entry = filePorts.get(db);
  if (!entry) return Promise.resolve(null);
  return new Promise((resolve) => {
    const rid = nextRid++;
    const timers = [];
    const done = (reply) => { timers.forEach(clearTimeout); entry.waiting.delete(rid); resolve(reply); };
    timers.push(setTimeout(() => dropFilePort(db, entry), FILE_ACK_MS));
    entry.waiting.set(rid, { ack: () => clearTimeout(timers[0]), done });
    timers.push(setTimeout(() => done(null), FILE_WAIT_MS + 5000));
    entry.port.postMessage({ ...msg, rid });
  });
}

/** Asks the page that made the request, then any other, for the file (and for a port to its database worker, when there is none). */
async function askPages(clientId, msg) {
  const all = await self.clients.matchAll({ type: 'window' });
  all.sort((a, b) => (b.id === clientId) - (a.id === clientId));
  let reply = null;
  for (const client of all) {
    try {
      reply = await ask(client, { ...msg, wantPort: !filePorts.has(msg.db) }, FILE_WAIT_MS + 5000);
    } catch {
      continue;   // that page did not answer
    }
    if (reply.ok || reply.code !== 'no_db') break;
  }
  return reply;
}

function plain(status, text) {
  return new Response(text, { status, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' } });
}

/** [start, end] (inclusive) of a single "bytes=" range over `size` bytes; null: the whole; 'bad': unsatisfiable. */
export function rangeOf(header, size) {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;   // not one range we read: the whole file, as RFC 9110 allows
  let start, end;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start > end || start >= size ? 'bad' : [start, end];
}

/** The response to a file URL request; `names` is [db, entity, id, attribute]. */
async function deviceFile(request, clientId, [db, entity, id, attribute]) {
  const msg = { type: 'ferry:file', db, entity, id, attribute };
  let reply = await askDatabaseWorker(db, msg);
  if (reply?.code === 'no_db') { dropFilePort(db, filePorts.get(db)); reply = null; }
  if (!reply) reply = await askPages(clientId, msg);
  if (reply?.port) adoptFilePort(db, reply.port);
  if (!reply || reply.code === 'no_db') return plain(503, `no open page holds the database ${db}`);
  if (!reply.ok) {
    const status = reply.code === 'file_pending' ? 504 : reply.code === 'empty' || reply.code === 'not_found' ? 404 : 502;
    return plain(status, `${reply.code}: ${reply.message}`);
  }
  const blob = reply.blob;
  const type = reply.type || 'application/octet-stream';
  const headers = { 'content-type': type, 'accept-ranges': 'bytes', 'cache-control': 'no-store' };
  const range = rangeOf(request.headers.get('range'), blob.size);
  if (range === 'bad') return new Response(null, { status: 416, headers: { ...headers, 'content-range': `bytes */${blob.size}` } });
  if (!range) return new Response(blob, { status: 200, headers: { ...headers, 'content-length': String(blob.size) } });
  const [start, end] = range;
  return new Response(blob.slice(start, end + 1, type), {
    status: 206,
    headers: { ...headers, 'content-range': `bytes ${start}-${end}/${blob.size}`, 'content-length': String(end - start + 1) },
  });
}

/**
 * The Workbox Route for file URLs (same-origin GETs, navigations included),
 * and the listener that takes a writer tab's port to its database worker.
 * Register it before any route that could match the same URLs.
 */
export function deviceFilesRoute() {
  self.addEventListener('message', (event) => {
    const msg = event.data;
    if (msg?.type === 'ferry:files-port' && typeof msg.db === 'string') adoptFilePort(msg.db, event.ports[0]);
  });
  return new Route(({ url }) => {
    if (url.origin !== self.location.origin) return false;
    const m = FILE_ROUTE.exec(url.pathname);
    return m ? { names: m.slice(1).map(decodeURIComponent) } : false;
  }, {
    handle: ({ request, event, params }) => deviceFile(request, event?.clientId, params.names),
  });
}
