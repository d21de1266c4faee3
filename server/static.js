// Static files for the demo PWA: web/ at '/' (its service worker, built
// into it, at '/sw.js'), the ES module at '/bindings/'; a mount may also be
// a single file. Text and wasm go out
// compressed (brotli, else gzip) with an ETag per encoding, so a first visit
// moves a third of the bytes and a revalidation none.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { promisify } from 'node:util';

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);

export const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.webmanifest', '.wasm', '.svg', '.txt', '.map']);
const MIN_COMPRESS = 1024;             // smaller bodies gain less than the header costs
const MAX_COMPRESS = 16 * 1024 * 1024; // larger ones go out as they are
const CACHE_BYTES = 64 * 1024 * 1024;  // compressed copies kept, least recently used first out

/** Compressed copies by file and encoding, valid while the file's size and mtime are unchanged. */
function compressedCache() {
  const entries = new Map();   // key -> { stamp, body (a promise until done) }
  let bytes = 0;
  return async function get(file, stamp, enc, raw) {
    const key = `${enc}\0${file}`;
    const hit = entries.get(key);
    if (hit && hit.stamp === stamp) {
      entries.delete(key); entries.set(key, hit);   // most recently used last
      return hit.body;
    }
    if (hit) { entries.delete(key); if (Buffer.isBuffer(hit.body)) bytes -= hit.body.length; }
    // Brotli at quality 9: about a fifth of the time of 11 for a few percent more bytes.
    const pending = enc === 'br'
      ? brotli(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 9, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length } })
      : gzip(raw, { level: 9 });
    const entry = { stamp, body: pending };
    entries.set(key, entry);
    try {
      entry.body = await pending;
    } catch (e) {
      entries.delete(key);
      throw e;
    }
    if (entries.get(key) === entry) {
      bytes += entry.body.length;
      for (const [k, v] of entries) {
        if (bytes <= CACHE_BYTES) break;
        if (!Buffer.isBuffer(v.body)) continue;
        entries.delete(k); bytes -= v.body.length;
      }
    }
    return entry.body;
  };
}

/** The encoding to send for an Accept-Encoding header: 'br', 'gzip' or null. */
function pickEncoding(accept) {
  const offered = new Map();
  for (const part of String(accept || '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const qp = params.map((x) => x.trim()).find((x) => x.startsWith('q='));
    offered.set(name, qp ? Number(qp.slice(2)) : 1);
  }
  const ok = (name) => (offered.get(name) ?? offered.get('*') ?? 0) > 0;
  if (ok('br')) return 'br';
  if (ok('gzip')) return 'gzip';
  return null;
}

/**
 * Returns a request handler serving `mounts` ({ '/': dir, '/bindings/': dir }),
 * or calling next() when nothing matches. Paths never leave their folder,
 * not even through a symlink, and no dotfile or dot-folder is served.
 */
export function staticFiles(mounts) {
  const entries = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);
  const compress = compressedCache();
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    let pathname;
    try { pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname); } catch { return next(); }
    if (pathname.split('/').some((part) => part.startsWith('.'))) return next();
    for (const [prefix, dir] of entries) {
      if (!pathname.startsWith(prefix)) continue;
      const root = path.resolve(dir);
      let file;
      if (!prefix.endsWith('/')) {
        // a single file mounted at exactly this path
        if (pathname !== prefix) continue;
        file = root;
      } else {
        file = path.resolve(root, `.${pathname.slice(prefix.length - 1)}`);
        if (file !== root && !file.startsWith(root + path.sep)) return next();
      }
      try {
        let st = fs.statSync(file);
        if (st.isDirectory()) { file = path.join(file, 'index.html'); st = fs.statSync(file); }
        if (prefix.endsWith('/')) {
          const real = fs.realpathSync(file);
          const realRoot = fs.realpathSync(root);
          if (!real.startsWith(realRoot + path.sep)) return next();
        }
        const raw = fs.readFileSync(file);
        const ext = path.extname(file);
        const stamp = `${raw.length.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}`;
        const enc = COMPRESSIBLE.has(ext) && raw.length >= MIN_COMPRESS && raw.length <= MAX_COMPRESS
          ? pickEncoding(req.headers['accept-encoding']) : null;
        const headers = {
          'content-type': MIME[ext] || 'application/octet-stream',
          'cache-control': 'no-cache',
          etag: `"${stamp}${enc ? `-${enc}` : ''}"`,
        };
        if (COMPRESSIBLE.has(ext)) headers.vary = 'Accept-Encoding';
        const send = (body) => {
          const match = String(req.headers['if-none-match'] || '').split(',').map((x) => x.trim().replace(/^W\//, ''));
          if (match.includes(headers.etag) || match.includes('*')) {
            res.writeHead(304, headers);
            res.end();
            return;
          }
          res.writeHead(200, { ...headers, ...(enc ? { 'content-encoding': enc } : {}), 'content-length': body.length });
          res.end(req.method === 'HEAD' ? undefined : body);
        };
        if (!enc) { send(raw); return undefined; }
        compress(file, stamp, enc, raw).then(send, () => {
          // A copy that failed to compress goes out as it is.
          headers.etag = `"${stamp}"`;
          res.writeHead(200, { ...headers, 'content-length': raw.length });
          res.end(req.method === 'HEAD' ? undefined : raw);
        });
        return undefined;
      } catch {
        /* try the next mount */
      }
    }
    return next();
  };
}
