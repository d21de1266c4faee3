// /sync/files/<hash>: the HTTP side of files (docs/PROTOCOL.md, Files): who
// may read or write a file's bytes, ranges, and the upload's answers. The
// bytes themselves are the blob store's (blobs.js: the interface; a folder
// by default). The client asks how much of an upload arrived (HEAD) and
// continues from there after a cut.
import { pipeline } from 'node:stream/promises';
import { BlobError, HASH, drain } from './blobs.js';
import { HttpError, userKeyOf } from './requests.js';

/** A blob store's refusal code -> the protocol's [status, error] for it. */
const BLOB_REPLY = {
  offset_mismatch: [409, 'offset_mismatch'], hash_mismatch: [422, 'hash_mismatch'], too_long: [400, 'bad_request'], cut: [400, 'bad_request'],
};

/** A blob store's refusal as the HTTP answer the protocol gives for it (anything else stays an internal error). */
function httpOf(e) {
  const reply = e instanceof BlobError && BLOB_REPLY[e.code];
  return reply ? new HttpError(reply[0], reply[1], e.message, e.extra) : e;
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
export async function serveFile(req, res, { hash, user, store, blobs, fileLimit, sendJson, headers }) {
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
    if (readRef && (await blobs.size(hash)) !== null) {
      req.resume();
      sendJson(res, 200, { hash, size: ref.size, received: ref.size, complete: true }, headers);
      return;
    }
    if (ref.size > fileLimit) { drain(req); throw new HttpError(413, 'too_large', `the file is ${ref.size} bytes; the limit is ${fileLimit}`); }
    let r;
    try {
      r = await blobs.append(hash, ref.size, offset, req, uploader);
    } catch (e) {
      throw httpOf(e);
    }
    if (r.complete) await store.addFileHolder(hash, user);
    sendJson(res, 200, { hash, size: ref.size, ...r }, headers);
    return;
  }
  // Without read access the user sees only their own upload, never whether the bytes exist.
  const size = readRef ? await blobs.size(hash) : null;
  if (size === null) {
    const received = await blobs.received(hash, uploader);
    res.writeHead(404, { ...headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-ferry-received': String(received) });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: 'file_pending', message: `the file ${hash} has not been uploaded yet`, received }));
    return;
  }
  const range = parseRange(req.headers.range, size);
  const start = range ? range.start : 0;
  const end = range ? range.end : size - 1;
  const head = {
    ...headers,
    'content-type': ref.type || 'application/octet-stream',
    'content-length': String(size === 0 ? 0 : end - start + 1),
    'accept-ranges': 'bytes',
    etag: `"${hash}"`,
    // Private: the bytes belong to objects this user may read.
    'cache-control': 'private, max-age=31536000, immutable',
  };
  if (range) head['content-range'] = `bytes ${start}-${end}/${size}`;
  res.writeHead(range ? 206 : 200, head);
  if (req.method === 'HEAD') { res.end(); return; }
  if (size > 0) await pipeline(await blobs.read(hash, start, end), res);
  else res.end();
  // Served to the end: this user holds the bytes now, and a reference they copy shares them.
  if (end === size - 1 || size === 0) await store.addFileHolder(hash, user);
}
