// Browser test harness: a static HTTP server over the repo root on
// 127.0.0.1 (port 0) and headless Debian Chromium driven by playwright-core
// with a fresh profile. Test pages live in tests/browser/pages/.
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { ensureWorkerBundle } from '../../scripts/bundle-worker.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = process.env.FERRY_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/** Serves `root` read-only on 127.0.0.1 with an ephemeral port. -> { url, close() } */
export async function startServer(root = ROOT) {
  const server = http.createServer(async (req, res) => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      const { pathname } = new URL(req.url, 'http://127.0.0.1');
      let file = path.join(root, path.normalize(decodeURIComponent(pathname)));
      if (file !== root && !file.startsWith(root + path.sep)) {
        res.writeHead(403).end('forbidden');
        return;
      }
      let st = await fsp.stat(file).catch(() => null);
      if (st?.isDirectory()) {
        file = path.join(file, 'index.html');
        st = await fsp.stat(file).catch(() => null);
      }
      if (!st?.isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${pathname}`);
        return;
      }
      res.writeHead(200, {
        'content-type': MIME[path.extname(file).toLowerCase()] || 'application/octet-stream',
        'content-length': st.size,
        'cache-control': 'no-store',
      });
      if (req.method === 'HEAD') { res.end(); return; }
      fs.createReadStream(file).on('error', () => res.destroy()).pipe(res);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e));
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections?.();
    }),
  };
}

/**
 * Starts the server and headless Chromium with a fresh profile.
 * -> { url, context, newPage(pagePath), close() }
 * Pages opened by newPage forward their console errors and page errors to
 * the test output when FERRY_TEST_VERBOSE is set.
 */
export async function launch() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  if (!fs.existsSync(path.join(ROOT, 'bindings/dist/ferry-core.wasm'))) {
    throw new Error('bindings/dist/ferry-core.wasm is missing: run `bash scripts/deps.sh && bash scripts/build.sh` first');
  }
  await ensureWorkerBundle();
  const server = await startServer();
  const profile = await fsp.mkdtemp(path.join(os.tmpdir(), 'ferry-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
  } catch (e) {
    await server.close();
    await fsp.rm(profile, { recursive: true, force: true });
    throw e;
  }
  const verbose = !!process.env.FERRY_TEST_VERBOSE;
  const watch = (page) => {
    page.on('pageerror', (e) => { if (verbose) console.error(`[pageerror] ${e.message}`); });
    page.on('console', (m) => { if (verbose && m.type() === 'error') console.error(`[console] ${m.text()}`); });
  };
  return {
    url: server.url,
    context,
    /** Opens pagePath (e.g. '/tests/browser/pages/window.html') in a new tab and waits until it says ready. */
    async newPage(pagePath) {
      const page = await context.newPage();
      watch(page);
      await gotoReady(page, server.url + pagePath);
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      await server.close();
      await fsp.rm(profile, { recursive: true, force: true }).catch(() => {});
    },
  };
}

/** Navigates (or reloads when url is omitted) and waits for window.ready. */
export async function gotoReady(page, url) {
  if (url) await page.goto(url, { waitUntil: 'load' });
  else await page.reload({ waitUntil: 'load' });
  await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
}

/** A database name no other test (or earlier run) uses. */
let seq = 0;
export function uniqueName(prefix) {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${++seq}`;
}

/**
 * Unwraps a { value } / { error: { code, message } } reply from a page; an
 * error reply becomes a thrown Error with .code so assert.rejects can match.
 */
export function unwrap(reply) {
  if (reply && reply.error) {
    const e = new Error(`${reply.error.code}: ${reply.error.message}`);
    e.code = reply.error.code;
    e.name = reply.error.name;
    throw e;
  }
  return reply?.value;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const WINDOW_PAGE = '/tests/browser/pages/window.html';
export const WORKER_PAGE = '/tests/browser/pages/worker.html';

/**
 * ferry in a window page (pages/window.html): api(op, args) resolves with the
 * value or throws an Error carrying the page-side { code, name }; api.raw
 * returns the { value } | { error } reply as is.
 */
export function windowApi(page) {
  const raw = (op, args) => page.evaluate(([o, a]) => window.ferry(o, a), [op, args]);
  const api = (op, args) => raw(op, args).then(unwrap);
  api.raw = raw;
  return api;
}

/** ferry in dedicated worker `wid` of a worker page (pages/worker.html), spawned here. */
export async function workerApi(page, wid) {
  unwrap(await page.evaluate((w) => window.spawn(w), wid));
  const raw = (op, args) => page.evaluate(([w, o, a]) => window.call(w, o, a), [wid, op, args]);
  const api = (op, args) => raw(op, args).then(unwrap);
  api.raw = raw;
  api.terminate = () => page.evaluate((w) => window.terminate(w), wid);
  return api;
}

/**
 * Runs one statement of Debian's sqlite3 shell (a SQLite that is not
 * ferry's) on a database file a page handed out as base64. -> its rows.
 */
export function sqliteShell(base64, sql) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-shell-'));
  try {
    const file = path.join(dir, 'db.sqlite');
    fs.writeFileSync(file, Buffer.from(base64, 'base64'));
    const out = execFileSync('sqlite3', ['-readonly', '-json', file, sql], { encoding: 'utf8' });
    return out.trim() ? JSON.parse(out) : [];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
