// db.files.url() in a page: a same-origin URL that ferry's service worker
// (service-worker/sw.js, "Device files") answers from the device's file
// store, so <img src> and <video src> work offline. The worker cannot read
// the database, so it asks an open page of the origin over postMessage;
// the page that holds the database asks its files for the bytes and
// answers with a Blob (for OPFS a disk-backed File: no copy in memory).
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

const servers = new Map();   // database name -> serve(entity, id, attribute) -> { blob, type, name, size }
let listening = false;

function codeOf(e) {
  return { code: e?.code || 'error', message: e?.message || String(e) };
}

async function answer(e) {
  const msg = e.data;
  if (msg?.type !== 'ferry:file') return;
  const port = e.ports?.[0];
  if (!port) return;
  const serve = servers.get(msg.db);
  if (!serve) { port.postMessage({ ok: false, code: 'no_db', message: `this page has no database '${msg.db}' open` }); return; }
  try {
    const file = await serve(msg.entity, msg.id, msg.attribute);
    port.postMessage(file ? { ok: true, ...file } : { ok: false, code: 'empty', message: 'the attribute holds no file' });
  } catch (err) {
    port.postMessage({ ok: false, ...codeOf(err) });
  }
}

/** Lets the service worker ask this page for the files of database `name`. -> unregister() */
export function serveFilesToWorker(name, serve) {
  const sw = globalThis.navigator?.serviceWorker;
  if (!sw || typeof globalThis.document !== 'object') return () => {};
  servers.set(name, serve);
  if (!listening) {
    listening = true;
    sw.addEventListener('message', (e) => { answer(e).catch(() => {}); });
    sw.startMessages?.();
  }
  return () => { if (servers.get(name) === serve) servers.delete(name); };
}
