#!/usr/bin/env node
// Time to first data on the demo PWA (issue 4, "Measure"), in headless Debian
// Chromium (playwright-core) on loopback:
//
//   cold        a fresh browser profile (no HTTP cache, no service worker, no
//               local database): first navigation to the app
//   warm        same profile, the page controlled by the service worker, the
//               data already in the local database: page.reload()
//   warmNewTab  same, but the tab is closed and the app opened in a new tab
//               (a user coming back to the app), not a reload
//   offline     same profile, context.setOffline(true), page.reload()
//
// "First data" is the moment the visits list (#visit-list, the demo's first
// view) first holds a row rendered from the database (an <li data-id>),
// in ms of performance.now() in the page, whose zero is that navigation's
// start (performance.timeOrigin). An init script (page.addInitScript, run in
// every document before the app's own scripts) watches the DOM with a
// MutationObserver and records the time when the first row is inserted, so
// the figure does not depend on polling from the test side. Nothing in web/
// is changed. Each sample also checks the rows are the seeded visits.
//
// The server is createSyncServer (server/index.js) with the demo model, the
// demo seed (as `npm start`), a temp dataDir and a temp copy of web/ with a
// freshly generated precache manifest (as tests/browser/pwa-helpers.js does),
// serving the browser directly (no proxy). Everything temporary is removed
// at exit.
//
//   node bench/first-data.mjs
//
// Knobs (environment):
//   FERRY_FIRST_DATA_RUNS    rounds (default 5); each round is one fresh
//                            profile measuring cold, warm, warmNewTab, offline
//   FERRY_FIRST_DATA_VISITS  extra visits seeded on the server (default 0:
//                            the demo's 3 visible visits)
//   FERRY_FIRST_DATA_BUDGET  seconds after which no new round starts (default 120)
//   FERRY_CHROMIUM           the browser (default /usr/bin/chromium)
//   FERRY_TEST_VERBOSE=1     page errors and console errors on stderr
//
// Output: progress on stderr; on stdout a short table, then one JSON line
// (median, min, max, samples in ms for each case, plus the breakdown).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createSyncServer } from '../server/index.js';
import { demoAuth } from '../server/auth.js';
import { buildWeb } from '../scripts/build-web.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.FERRY_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const RUNS = Math.max(1, Number(process.env.FERRY_FIRST_DATA_RUNS || 5));
const EXTRA_VISITS = Math.max(0, Number(process.env.FERRY_FIRST_DATA_VISITS || 0));
const BUDGET_MS = Math.max(10, Number(process.env.FERRY_FIRST_DATA_BUDGET || 120)) * 1000;
const HARD_LIMIT_MS = 175_000;   // the whole run must stay under 3 minutes
const WAIT_MS = 30_000;
const verbose = !!process.env.FERRY_TEST_VERBOSE;
const CASES = ['cold', 'warm', 'warmNewTab', 'offline'];
const started = Date.now();
const log = (m) => console.error(`[first-data ${((Date.now() - started) / 1000).toFixed(1)}s] ${m}`);

// ---- the seed: the demo's (server/cli.js seedDemo), plus optional extra visits ----

const SEED = {
  Region: [{ id: 'region-north', name: 'North' }, { id: 'region-south', name: 'South' }, { id: 'region-west', name: 'West' }],
  Customer: [
    { id: 'cust-ada', name: 'Ada Works', email: 'ada@example.com', credit: '1200.00', active: true, since: '2024-03-01T09:00:00.000Z', region: 'region-north' },
    { id: 'cust-bell', name: 'Bell & Sons', email: 'office@bell.example', credit: '350.50', active: true, since: '2025-06-15T08:30:00.000Z', region: 'region-south' },
    { id: 'cust-cobalt', name: 'Cobalt Heating', email: 'info@cobalt.example', credit: '0.00', active: false, since: '2023-11-20T14:00:00.000Z', region: 'region-west' },
  ],
  Visit: [
    { id: 'visit-1', note: 'Boiler service, annual check', status: 'planned', customer: 'cust-ada' },
    { id: 'visit-2', note: 'Replaced pressure valve', status: 'done', customer: 'cust-bell' },
    { id: 'visit-3', note: 'Quote for a heat pump', status: 'planned', customer: 'cust-cobalt' },
    { id: 'visit-4', note: 'Old inspection (archived: never sent to devices)', status: 'archived', customer: 'cust-ada' },
  ],
};
const CUSTOMERS = SEED.Customer.map((c) => c.id);
for (let i = 1; i <= EXTRA_VISITS; i++) {
  SEED.Visit.push({ id: `visit-x${i}`, note: `Extra visit ${i}`, status: i % 2 ? 'planned' : 'done', customer: CUSTOMERS[i % CUSTOMERS.length] });
}
// What a device holds: archived visits are never sent (the model's `where`).
const EXPECTED_IDS = SEED.Visit.filter((v) => v.status !== 'archived').map((v) => v.id).sort();

// ---- temp files and cleanup ------------------------------------------------------

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-first-data-'));
const closers = [];
let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  fs.rmSync(TMP, { recursive: true, force: true });
}
process.on('exit', () => { if (!cleaned) fs.rmSync(TMP, { recursive: true, force: true }); });
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { cleanup().finally(() => process.exit(130)); });
}
const watchdog = setTimeout(() => {
  console.error(`first-data: still running after ${HARD_LIMIT_MS / 1000} s; giving up`);
  cleanup().finally(() => process.exit(1));
}, HARD_LIMIT_MS);
watchdog.unref();

// ---- the in-page probe -------------------------------------------------------------

// Runs in every document before its own scripts. Records, in performance.now()
// of that document (zero = its navigation start): when window.ready is set
// (app.js: the database is open and the first view mounted) and when the
// first <li data-id> appears in #visit-list, with the rows present then.
function probe() {
  const t = { firstData: null, frame: null, ready: null, rows: 0, ids: [], controlled: null, url: location.href };
  Object.defineProperty(window, '__ferryFirstData', { value: t });
  let ready;
  Object.defineProperty(window, 'ready', {
    configurable: true,
    get: () => ready,
    set: (v) => { ready = v; if (v === true && t.ready === null) t.ready = performance.now(); },
  });
  const check = () => {
    const lis = document.querySelectorAll('#visit-list li[data-id]');
    if (!lis.length) return false;
    t.firstData = performance.now();
    t.rows = lis.length;
    t.ids = [...lis].map((li) => li.dataset.id);
    t.controlled = !!navigator.serviceWorker?.controller;
    requestAnimationFrame(() => { t.frame = performance.now(); });
    return true;
  };
  const mo = new MutationObserver(() => { if (check()) mo.disconnect(); });
  mo.observe(document, { childList: true, subtree: true });
}

/** Waits for the probe's first-data mark, then reads it with the navigation timing. */
async function firstData(page) {
  await page.waitForFunction(() => window.__ferryFirstData?.firstData != null && window.__ferryFirstData.frame != null,
    null, { timeout: WAIT_MS, polling: 20 });
  await page.waitForFunction(() => document.readyState === 'complete', null, { timeout: WAIT_MS, polling: 20 });
  const r = await page.evaluate(() => {
    const t = window.__ferryFirstData;
    const nav = performance.getEntriesByType('navigation')[0];
    return {
      ...t,
      storage: window.db?.status().storage ?? null,
      nav: nav && {
        type: nav.type,
        workerStart: nav.workerStart,
        responseEnd: nav.responseEnd,
        domContentLoaded: nav.domContentLoadedEventEnd,
        load: nav.loadEventEnd,
        transferSize: nav.transferSize,
      },
      appError: window.app?.error ? `${window.app.error.code}: ${window.app.error.message}` : null,
    };
  });
  if (r.appError) throw new Error(`the app could not open its database: ${r.appError}`);
  const got = [...r.ids].sort();
  if (JSON.stringify(got) !== JSON.stringify(EXPECTED_IDS)) {
    throw new Error(`first rows are not the seeded visits: got ${got.join(',')} (expected ${EXPECTED_IDS.join(',')})`);
  }
  return r;
}

/** Lets the app finish what it started (the start-up sync), so the next load starts from quiet. */
async function settle(page) {
  await page.evaluate(() => window.db.sync().catch(() => null));
}

// ---- stats and output -------------------------------------------------------------

const round1 = (x) => (x == null ? null : Math.round(x * 10) / 10);
function stats(xs) {
  const v = xs.filter((x) => x != null).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median: round1(median), min: round1(v[0]), max: round1(v[v.length - 1]), n: v.length };
}

// ---- main ---------------------------------------------------------------------------

async function main() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  if (!fs.existsSync(path.join(ROOT, 'bindings/dist/ferry-core.wasm'))) {
    throw new Error('bindings/dist/ferry-core.wasm is missing: run `bash scripts/deps.sh && bash scripts/build.sh` first');
  }

  // The demo as `npm start` serves it, from a temp copy with its service worker built.
  const web = path.join(TMP, 'web');
  const built = new Set(['sw.js', 'precache-manifest.js'].map((f) => path.join(ROOT, 'web', f)));
  await fsp.cp(path.join(ROOT, 'web'), web, { recursive: true, filter: (src) => !built.has(src) });
  const manifest = await buildWeb({ web });
  // The demo signs its users in (server/auth.js), as ferry-server does for it.
  const auth = demoAuth({ dataDir: path.join(TMP, 'server-data') });
  const srv = await createSyncServer({
    model: path.join(ROOT, 'server', 'demo-model.json'),
    dataDir: path.join(TMP, 'server-data'),
    static: web,
    authenticate: auth.authenticate,
    routes: auth.routes,
    seed: SEED,
    log: (m) => { if (verbose) console.error(m); },
  });
  closers.push(() => srv.close());
  // Requests that reach the server (to prove the offline case is offline).
  let requests = 0;
  const offlineRequests = [];
  let offline = false;
  srv.server.on('request', (req) => { requests++; if (offline) offlineRequests.push(`${req.method} ${req.url}`); });
  const url = `${srv.url}/`;
  log(`server ${srv.url}, precache version ${manifest.version} (${manifest.entries.length} files), ${EXPECTED_IDS.length} visits on a device`);

  const samples = Object.fromEntries(CASES.map((c) => [c, []]));
  const details = Object.fromEntries(CASES.map((c) => [c, []]));
  const record = (c, r, extra = {}) => {
    samples[c].push(r.firstData);
    details[c].push({ ...r, ...extra });
    log(`  ${c.padEnd(10)} first data ${r.firstData.toFixed(1)} ms (db open ${r.ready?.toFixed(1)} ms, ${r.rows} rows, ` +
      `controlled ${r.controlled}, ${r.storage}${extra.requests != null ? `, ${extra.requests} requests to the server` : ''})`);
  };

  const roundTimes = [];
  let skipped = 0;
  for (let run = 1; run <= RUNS; run++) {
    const elapsed = Date.now() - started;
    const perRound = roundTimes.length ? Math.max(...roundTimes) : 0;
    if (elapsed + perRound * 1.5 > BUDGET_MS) { skipped = RUNS - run + 1; log(`budget reached: ${skipped} round(s) skipped`); break; }
    const t0 = Date.now();
    log(`round ${run}/${RUNS}`);
    const profile = await fsp.mkdtemp(path.join(TMP, 'profile-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000,
      viewport: { width: 1180, height: 760 },
    });
    const closeContext = async () => { await context.close().catch(() => {}); await fsp.rm(profile, { recursive: true, force: true }); };
    closers.push(closeContext);
    const errors = [];
    const watch = (p) => {
      p.on('pageerror', (e) => { errors.push(e.message); if (verbose) console.error(`[pageerror] ${e.message}`); });
      p.on('console', (m) => { if (verbose && m.type() === 'error') console.error(`[console] ${m.text()}`); });
    };
    context.on('page', watch);
    try {
      await context.addInitScript(probe);
      let page = context.pages()[0] || await context.newPage();
      watch(page);
      context0Version ??= (/Chrome\/([\d.]+)/.exec(await page.evaluate(() => navigator.userAgent)) || [])[1] || null;

      // cold: fresh profile, first navigation.
      await page.goto(url, { waitUntil: 'commit' });
      record('cold', await firstData(page));
      // Let the service worker install and take control, and the start-up sync end.
      await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: WAIT_MS });
      await page.waitForFunction(async (n) => {
        for (const name of await caches.keys()) {
          if (name.startsWith('ferry-precache-') && (await (await caches.open(name)).keys()).length === n) return true;
        }
        return false;
      }, manifest.entries.length, { timeout: WAIT_MS, polling: 100 });
      await settle(page);

      // warm: reload, controlled, data local.
      let before = requests;
      await page.reload({ waitUntil: 'commit' });
      const warm = await firstData(page);
      record('warm', warm, { requests: requests - before });
      await settle(page);

      // warmNewTab: close the tab (its writer goes away), open the app in a new one.
      await page.close();
      page = await context.newPage();
      before = requests;
      await page.goto(url, { waitUntil: 'commit' });
      record('warmNewTab', await firstData(page), { requests: requests - before });
      await settle(page);

      // offline: the browser offline (page and service worker), reload.
      await context.setOffline(true);
      srv.server.closeAllConnections?.();   // no keep-alive socket outlives "offline"
      offline = true;
      before = requests;
      await page.reload({ waitUntil: 'commit' });
      const off = await firstData(page);
      if (!(await page.evaluate(() => navigator.onLine === false))) throw new Error('offline: the page does not see itself offline');
      record('offline', off, { requests: requests - before });
      offline = false;
      await context.setOffline(false);

      if (errors.length) log(`  page errors: ${errors.join(' | ')}`);
      if (!warm.controlled) throw new Error('warm load was not controlled by the service worker');
    } finally {
      offline = false;
      closers.splice(closers.indexOf(closeContext), 1);
      await closeContext();
    }
    roundTimes.push(Date.now() - t0);
  }

  const result = {
    bench: 'first-data',
    what: 'ms from navigation start (performance.timeOrigin) until the first <li data-id> row is inserted in #visit-list of the demo PWA',
    unit: 'ms',
    browser: context0Version ?? null,
    runs: samples.cold.length,
    skipped,
    visits: EXPECTED_IDS.length,
    storage: details.cold[0]?.storage ?? null,
    offlineRequestsReachingServer: offlineRequests.length,
  };
  for (const c of CASES) {
    result[c] = {
      ...stats(samples[c]),
      samples: samples[c].map(round1),
      dbOpen: stats(details[c].map((d) => d.ready)),
      nextFrame: stats(details[c].map((d) => d.frame)),
      htmlResponseEnd: stats(details[c].map((d) => d.nav?.responseEnd)),
    };
  }

  const rows = [['case', 'median', 'min', 'max', 'n', 'db open (median)', 'HTML responseEnd (median)']];
  const label = { cold: 'cold online load', warm: 'warm reload', warmNewTab: 'warm, new tab', offline: 'offline reload' };
  for (const c of CASES) {
    const r = result[c];
    rows.push([label[c], r.median, r.min, r.max, r.n, r.dbOpen?.median, r.htmlResponseEnd?.median].map((x) => (x == null ? '-' : String(x))));
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(`Time to first data, demo PWA, headless Chromium ${result.browser || ''} on loopback, ms (${result.runs} runs, storage ${result.storage}, ${result.visits} visits)`);
  for (const [i, r] of rows.entries()) {
    console.log(r.map((x, j) => (j === 0 ? x.padEnd(widths[j]) : x.padStart(widths[j]))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  if (offlineRequests.length) console.log(`warning: ${offlineRequests.length} request(s) reached the server while offline: ${offlineRequests.join(', ')}`);
  console.log(JSON.stringify(result));
}

let context0Version = null;

main().then(async () => {
  await cleanup();
  clearTimeout(watchdog);
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exit(0);
}, async (e) => {
  console.error(`first-data: FAILED: ${e?.stack || e}`);
  await cleanup();
  process.exit(1);
});
