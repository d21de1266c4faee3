// The blob store interface: where the server keeps the bytes of file
// attributes, by SHA-256 (docs/PROTOCOL.md, Files). serveFile (files.js)
// speaks HTTP and checks who may read or write; a blob store only keeps
// bytes. ferry has two: FileBlobStore (a folder, the default) and
// PostgresBlobStore (rows of the server's PostgreSQL database, for several
// server processes without a shared folder); an app passes its own, e.g. one
// on object storage, as createSyncServer({ blobs }). server/README.md
// documents the contract; tests/node/blob-stores.test.js holds every
// implementation to it.
//
// A blob store is an object with these methods (all may be async):
//   size(hash)        -> the size of the stored blob `hash`, or null when it is not stored whole
//   received(hash, uploader) -> bytes of `uploader`'s partial upload of `hash` (0: none)
//   append(hash, size, offset, body, uploader) -> { received, complete }
//                     appends `body` (an async iterable of Uint8Array, the request) to
//                     `uploader`'s upload of `hash`, a file of `size` bytes, at `offset`.
//                     One uploader's partial upload never shows in another's. What arrived
//                     before a cut stays (a prefix; the client resumes after it). Once all
//                     `size` bytes are in, their SHA-256 must equal `hash` before the blob
//                     is stored; it is stored once however many upload it (complete: true).
//                     Throws BlobError: 'offset_mismatch' (extra.received: where it stands),
//                     'too_long' (bytes past `size`; none of this body counts), 'hash_mismatch'
//                     (the upload is dropped, it starts over), 'cut' (the body ended early).
//   read(hash, start, end) -> an async iterable (a Readable) of the stored blob's bytes
//                     [start, end], inclusive; a Promise of one is fine
//   list()            -> async iterable of { hash, at } of stored blobs (at: ms when stored)
//   remove(hash)      -> deletes a stored blob
//   sweep(before)     -> deletes partial uploads untouched since `before` (ms); -> how many
// The server never closes a store it was given; the app owns it.
import crypto from 'node:crypto';
import { FerryError } from '../bindings/errors.js';

export const DEFAULT_FILE_LIMIT = 1024 * 1024 * 1024;
export const DEFAULT_FILE_GRACE = 24 * 3600 * 1000;
export const HASH = /^[0-9a-f]{64}$/;

const METHODS = ['size', 'received', 'append', 'read', 'list', 'remove', 'sweep'];

/** What a blob store throws for an upload it refuses; `code` is one of those above. */
export class BlobError extends Error {
  constructor(code, message, extra) {
    super(message);
    this.name = 'BlobError';
    this.code = code;
    this.extra = extra;
  }
}

/** Throws FerryError 'misuse' unless `store` has every method of the interface. */
export function checkBlobStore(store) {
  const missing = store && typeof store === 'object' ? METHODS.filter((m) => typeof store[m] !== 'function') : METHODS;
  if (missing.length) throw new FerryError('misuse', `a blob store needs the methods ${METHODS.join(', ')}; missing: ${missing.join(', ')}`);
  return store;
}

/**
 * Deletes blobs stored longer than `grace` ms ago that no object references
 * (isReferenced(hash) -> boolean; forget(hash) runs after each), and partial
 * uploads untouched for `grace`. -> { blobs, partial } (how many went).
 */
export async function collectBlobs(store, isReferenced, { grace = DEFAULT_FILE_GRACE, now = Date.now(), forget = async () => {} } = {}) {
  let blobs = 0;
  for await (const { hash, at } of store.list()) {
    if (!HASH.test(hash) || now - at < grace || await isReferenced(hash)) continue;
    await store.remove(hash);
    await forget(hash);
    blobs++;
  }
  return { blobs, partial: await store.sweep(now - grace) };
}

/**
 * Runs appends of one upload (one key) one at a time within this process:
 * serial(locks, key, fn) -> fn's result, after every earlier call's for key.
 */
export async function serial(locks, key, fn) {
  const prev = locks.get(key) || Promise.resolve();
  const run = prev.catch(() => {}).then(fn);
  locks.set(key, run);
  try {
    return await run;
  } finally {
    if (locks.get(key) === run) locks.delete(key);
  }
}

/** Reads a body to its end without keeping it (a refused upload's bytes). */
export function drain(body) {
  if (typeof body?.resume === 'function') body.resume();
}

/**
 * The start of an append to an upload standing at `at` bytes: refuses an
 * append at another offset (BlobError 'offset_mismatch', the body drained),
 * and takes the SHA-256 of the bytes so far that this process kept in
 * `hashing` (key -> { sha, at, … }) if `same(kept)` says the upload is still
 * as this process left it; a fresh hash at 0. -> the running hash, or null
 * (the bytes are hashed from the store at the end).
 */
export function beginAppend(hashing, key, { hash, offset, at, body }, same) {
  if (offset !== at) {
    drain(body);
    throw new BlobError('offset_mismatch', `the upload of ${hash} stands at ${at} bytes, not ${offset}`, { received: at });
  }
  const kept = hashing.get(key);
  hashing.delete(key);
  if (at === 0) return { sha: crypto.createHash('sha256'), at: 0 };
  return kept && kept.at === at && same(kept) ? kept : null;
}

/** Whether `e`, thrown while reading a body, says the body ended early (the connection reset or aborted). */
export function isCut(e) {
  return e?.code === 'ECONNRESET' || /aborted/i.test(e?.message ?? '');
}

/** The BlobError 'cut' of an upload cut off once `received` of its bytes were kept. */
export function cutError(received) {
  return new BlobError('cut', `the upload was cut off after ${received} bytes; ask how much arrived (HEAD) and go on from there`);
}
