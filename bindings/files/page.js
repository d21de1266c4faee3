// db.files.url() in a page: a same-origin URL that ferry's route in the
// service worker (service-worker/files.js, ferryRoutes()) answers from the device's file
// store, so <img src> and <video src> work offline. The service worker
// cannot read the database, so it asks whoever holds it: the database
// worker of the writer tab directly, over a port that tab handed it (a busy
// page does not hold the picture up), else an open page of the origin over
// postMessage. Either answers with a Blob (for OPFS a disk-backed File: no
// copy in memory).
import { FerryError } from '../errors.js';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const FILE_ROUTE = '__ferry/files/';

/**
 * The URL of entity.attribute of object `id` of database `name`, relative
 * to the page (so it is inside the service worker's scope wherever the app
 * is served). It names the attribute, not its bytes: after a new put the
 * URL stays the same and the worker serves the new bytes (no-store).
 */
export function fileUrl(name, entity, id, attribute) {
  if (typeof entity !== 'string' || typeof id !== 'string' || typeof attribute !== 'string') {
    throw new FerryError('type', 'files take (entity, id, attribute) as three strings');
  }
  if (!IDENT.test(entity) || !IDENT.test(attribute)) throw new FerryError('not_found', `${entity}.${attribute} is not a plain name`);
  const base = globalThis.document?.baseURI || globalThis.location?.href;
  if (!base) throw new FerryError('unsupported', 'db.files.url() needs a page served with ferry\'s service worker; in Node use db.files.get()');
  const path = [name, entity, id, attribute].map(encodeURIComponent).join('/');
  return new URL(`${FILE_ROUTE}${path}`, base).href;
}

const servers = new Map();   // database name -> { serve(entity, id, attribute) -> { blob, type, name, size }, port() }
let listening = false;

/**
 * The answer to the service worker's { type: 'ferry:file', entity, id,
 * attribute } from serve (null: no file): { ok: true, blob, type, name, size }
 * or { ok: false, code, message }. Never rejects.
 */
export async function fileReply(serve, msg) {
  try {
    const file = await serve(msg.entity, msg.id, msg.attribute);
    return file ? { ok: true, ...file } : { ok: false, code: 'empty', message: 'the attribute holds no file' };
  } catch (e) {
    return { ok: false, code: e?.code || 'error', message: e?.message || String(e) };
  }
}

async function answer(e) {
  const msg = e.data;
  if (msg?.type !== 'ferry:file') return;
  const port = e.ports?.[0];
  if (!port) return;
  const server = servers.get(msg.db);
  if (!server) { port.postMessage({ ok: false, code: 'no_db', message: `this page has no database '${msg.db}' open` }); return; }
  const reply = await fileReply(server.serve, msg);
  // The service worker has no port to the database's worker (it was restarted, or the writer changed): here is one.
  const direct = msg.wantPort ? server.port?.() : null;
  if (direct) port.postMessage({ ...reply, port: direct }, [direct]);
  else port.postMessage(reply);
}

/**
 * Lets the service worker ask this page for the files of database `name`;
 * port(), where given, makes a MessagePort on which the database's worker
 * answers the same requests (null when this tab does not hold it): the
 * service worker asks there first. -> unregister()
 */
export function serveFilesToWorker(name, serve, { port } = {}) {
  const sw = globalThis.navigator?.serviceWorker;
  if (!sw || typeof globalThis.document !== 'object') return () => {};
  const server = { serve, port };
  servers.set(name, server);
  if (!listening) {
    listening = true;
    sw.addEventListener('message', (e) => { answer(e).catch(() => {}); });
    sw.startMessages?.();
  }
  return () => { if (servers.get(name) === server) servers.delete(name); };
}
