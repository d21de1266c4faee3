// Static files for the demo PWA: web/ at '/', the ES module at '/bindings/',
// and single files (the service worker at '/sw.js').
import fs from 'node:fs';
import path from 'node:path';

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

/**
 * Returns a request handler serving `mounts` ({ '/': dir, '/bindings/': dir }),
 * or calling next() when nothing matches. Paths never leave their folder,
 * not even through a symlink, and no dotfile or dot-folder is served.
 */
export function staticFiles(mounts) {
  const entries = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);
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
        if (fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
        if (prefix.endsWith('/')) {
          const real = fs.realpathSync(file);
          const realRoot = fs.realpathSync(root);
          if (!real.startsWith(realRoot + path.sep)) return next();
        }
        const body = fs.readFileSync(file);
        res.writeHead(200, {
          'content-type': MIME[path.extname(file)] || 'application/octet-stream',
          'content-length': body.length,
          'cache-control': 'no-cache',
        });
        res.end(req.method === 'HEAD' ? undefined : body);
        return undefined;
      } catch {
        /* try the next mount */
      }
    }
    return next();
  };
}
