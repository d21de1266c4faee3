// Shared setup for the demo PWA suites (tests/browser/pwa-*.test.js): a
// build of web/ into a temp folder (with its precache manifest), the
// reference sync server serving it, a front proxy the browser talks to, and
// headless Chromium with a fresh profile.
//
// The front proxy is the browser's only way to the server: `site.down = true`
// makes every connection fail (the server is unreachable, whatever the
// browser's own offline emulation covers), and `site.requests` logs what
// reached it. The service worker is the build's <web>/sw.js, which the
// server serves as any other file of the site.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, CHROMIUM, CHROMIUM_ARGS } from './harness.js';
import { createSyncServer } from '../../server/index.js';
import { demoAuth } from '../../server/auth.js';
import { buildWeb } from '../../scripts/build-web.mjs';
import { ensureWorkerBundle } from '../../scripts/bundle-worker.mjs';

export const MODEL = path.join(ROOT, 'server', 'demo-model.json');
const verbose = !!process.env.FERRY_TEST_VERBOSE;

export const SEED = {
  Region: [{ id: 'region-north', name: 'North' }, { id: 'region-south', name: 'South' }, { id: 'region-west', name: 'West' }],
  Customer: [
    { id: 'cust-ada', name: 'Ada Works', email: 'ada@example.com', credit: '1200.00', active: true, since: '2024-03-01T00:00:00.000Z', region: 'region-north' },
    { id: 'cust-bell', name: 'Bell & Sons', email: 'office@bell.example', credit: '350.50', active: true, since: '2025-06-15T00:00:00.000Z', region: 'region-south' },
    { id: 'cust-cobalt', name: 'Cobalt Heating', email: 'info@cobalt.example', credit: '0.00', active: false, since: '2023-11-20T00:00:00.000Z', region: 'region-west' },
  ],
  Visit: [
    { id: 'visit-1', note: 'Boiler service, annual check', status: 'planned', customer: 'cust-ada' },
    { id: 'visit-2', note: 'Replaced pressure valve', status: 'done', customer: 'cust-bell' },
    { id: 'visit-3', note: 'Quote for a heat pump', status: 'planned', customer: 'cust-cobalt' },
    { id: 'visit-4', note: 'Old inspection (archived: never sent to devices)', status: 'archived', customer: 'cust-ada' },
  ],
};

const temps = [];
export async function tempDir(tag) {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), `ferry-pwa-${tag}-`));
  temps.push(d);
  return d;
}
export async function removeTemps() {
  for (const d of temps.splice(0)) await fsp.rm(d, { recursive: true, force: true }).catch(() => {});
}

/**
 * Copies web/ into a temp folder, lets `mutate(dir)` change it (a "new
 * version"), and builds its service worker with the precache manifest.
 * -> { dir, manifest }
 */
export async function buildSite(tag, mutate, options = {}) {
  await ensureWorkerBundle();
  const dir = await tempDir(`web-${tag}`);
  const built = new Set(['sw.js', 'precache-manifest.js'].map((f) => path.join(ROOT, 'web', f)));
  await fsp.cp(path.join(ROOT, 'web'), dir, { recursive: true, filter: (src) => !built.has(src) });
  if (mutate) await mutate(dir);
  const manifest = await buildWeb({ web: dir, ...options });
  return { dir, manifest };
}

/**
 * The sync server (demo model, seeded, with the demo's sign-in as `npm
 * start` has it) serving `web`, behind the front proxy.
 * -> { url, srv, requests, down, deploy(webDir), close() }
 */
export async function startSite({ web, seed = SEED } = {}) {
  const dataDir = path.join(await tempDir('data'), 'server');
  const auth = demoAuth({ dataDir });
  const serverOpts = {
    model: MODEL, dataDir, static: web, seed, authenticate: auth.authenticate, routes: auth.routes,
    log: (m) => { if (verbose) console.error(m); },
  };
  let srv = await createSyncServer(serverOpts);
  const sockets = new Set();
  const site = { srv, auth, requests: [], down: false };

  const proxy = http.createServer((req, res) => {
    const entry = { method: req.method, path: req.url, at: Date.now(), status: 0 };
    site.requests.push(entry);
    if (site.down) {
      entry.status = -1;
      req.socket.destroy();
      return;
    }
    const up = http.request({
      host: '127.0.0.1', port: srv.port, method: req.method, path: req.url, headers: req.headers, agent: false,
    }, (ur) => {
      entry.status = ur.statusCode;
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => { entry.status = -2; res.destroy(); });
    req.pipe(up);
  });
  proxy.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  site.url = `http://127.0.0.1:${proxy.address().port}`;

  /** Cuts every open connection (a keep-alive socket must not outlive "offline"). */
  site.cut = () => { for (const s of sockets) s.destroy(); };
  site.setDown = (down) => { site.down = down; if (down) site.cut(); };

  /** Deploys another build: the server restarts (same data, same port) serving `webDir`. */
  site.deploy = async (webDir) => {
    const port = srv.port;
    await srv.close();
    srv = await createSyncServer({ ...serverOpts, static: webDir, port });
    site.srv = srv;
    site.cut();
  };

  site.close = async () => {
    site.cut();
    await new Promise((resolve) => proxy.close(() => resolve()));
    await srv.close();
  };
  return site;
}

/**
 * Headless Chromium with a fresh persistent profile (like a real user's).
 * -> { context, newPage(), errors, close() }
 */
export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  const profile = await tempDir('profile');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000,
    viewport: { width: 1180, height: 760 },
  });
  const errors = [];
  const watch = (page) => {
    page.on('pageerror', (e) => { errors.push(e.message); if (verbose) console.error(`[pageerror] ${e.message}`); });
    page.on('console', (m) => { if (verbose && (m.type() === 'error' || m.type() === 'warning')) console.error(`[console] ${m.text()}`); });
  };
  for (const p of context.pages()) watch(p);
  context.on('page', watch);
  return {
    context,
    errors,
    async newPage() {
      const page = context.pages().find((p) => p.url() === 'about:blank') || await context.newPage();
      return page;
    },
    close: () => context.close().catch(() => {}),
  };
}

/** Navigates (or reloads) and waits until the app has opened its database and rendered. */
export async function openApp(page, url, { timeout = 30_000 } = {}) {
  if (url) await page.goto(url, { waitUntil: 'load' });
  else await page.reload({ waitUntil: 'load' });
  await page.waitForFunction(() => window.ready === true, null, { timeout });
  const err = await page.evaluate(() => window.app?.error && `${window.app.error.code}: ${window.app.error.message}`);
  if (err) throw new Error(`the app could not open its database: ${err}`);
}

/** Waits until the data model has arrived (the first sync is done). */
export async function waitForModel(page) {
  await page.waitForFunction(() => !!window.db?.status().modelVersion, null, { timeout: 30_000 });
}

/** openApp, then waits for the model, the service worker's control and the first sync's end. */
export async function openSynced(page, url) {
  await openApp(page, url);
  await waitForModel(page);
  await waitControlled(page);
  await page.waitForFunction(() => window.db.status().lastSyncAt !== null, null, { timeout: 30_000 });
}

/** Waits until the page is controlled by the service worker. */
export async function waitControlled(page) {
  await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 30_000 });
}

/** The SHA-256 (hex) of each URL as the page gets it (through its service worker). */
export function fetchHashes(page, urls) {
  return page.evaluate(async (list) => {
    const out = {};
    for (const u of list) {
      const buf = await (await fetch(u)).arrayBuffer();
      out[u] = [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))].map((b) => b.toString(16).padStart(2, '0')).join('');
    }
    return out;
  }, urls);
}

/** Fills and submits the visit form (customer by id). */
export async function addVisit(page, { customer, status, note }) {
  await page.click('#tab-visits');
  await page.waitForSelector('#visit-form');
  await page.click('#visit-form button:text("New")');
  await page.selectOption('#visit-form select[name=customer]', customer);
  await page.selectOption('#visit-form select[name=status]', status);
  await page.fill('#visit-form textarea[name=note]', note);
  await page.click('#visit-form button[type=submit]');
  await page.waitForSelector(`#visit-list li:has-text(${JSON.stringify(note)})`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
