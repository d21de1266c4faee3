// `ferry check --app <url or folder>`: does an app work with no connection?
// It opens the app in headless Chromium online (the service worker installs
// and the page becomes controlled), collects its pages (the start page, the
// web manifest's start_url and shortcuts, same-origin links, cached HTML),
// then goes offline and opens and reloads each page, reporting every
// same-origin resource, import or fetch that failed, every uncaught error,
// every page that is not in a cache, and the problems of the sync model the
// server names (or of --model). Requests under an online-only prefix
// ('/sync/' always, and each --online-only, e.g. the app's sign-in API) and
// non-GET requests are expected to fail offline (ferry queues the changes),
// so they are not problems. What a dedicated or shared worker requests is
// not seen (Chromium reports it to no page); a worker that cannot start
// offline shows through the page's own errors.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { validateModel } from '../server/model.js';
import { staticFiles } from '../server/static.js';

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A tool failure (not a finding): the command exits 2 with this message. */
export class CheckAppError extends Error {}

/** Serves `dir` as it is on 127.0.0.1 (an ephemeral port). -> { url, close() } */
async function serveFolder(dir) {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new CheckAppError(`${dir} is neither a URL nor a folder`);
  const handler = staticFiles({ '/': dir });
  const server = http.createServer((req, res) => handler(req, res, () => {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((resolve) => server.close(resolve)) };
}

const pageKey = (u) => { const x = new URL(u); x.hash = ''; return x.href; };

/**
 * Checks the app at `target` (an http(s) URL or a folder served as it is).
 * Options: chromium (path; FERRY_CHROMIUM or /usr/bin/chromium), model (a
 * parsed model to check instead of the server's GET <sync>model), sync (the
 * sync base path, '/sync/'), onlineOnly (more path prefixes expected to
 * fail offline), maxPages (50), timeout (ms per step, 20000), log(line).
 * -> { pages: [url], problems: [{ kind, page, detail }] }; throws
 * CheckAppError when the check itself cannot run.
 */
export async function checkApp(target, options = {}) {
  const { sync = '/sync/', onlineOnly = [], maxPages = 50, timeout = 20_000, log = () => {} } = options;
  const online = [sync, ...onlineOnly];
  let playwright;
  try {
    playwright = await import('playwright-core');
  } catch {
    throw new CheckAppError('ferry check --app drives Chromium with playwright-core: npm install playwright-core');
  }
  const exe = options.chromium || process.env.FERRY_CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(exe)) throw new CheckAppError(`no Chromium at ${exe}: install it (Debian: apt-get install chromium) or set FERRY_CHROMIUM`);
  const folder = /^https?:\/\//i.test(target) ? null : await serveFolder(path.resolve(target));
  const start = folder ? folder.url : new URL(target).href;
  const origin = new URL(start).origin;
  const problems = [];
  const problem = (kind, page, detail) => {
    problems.push({ kind, page, detail });
    log(`  ${kind}: ${page ? `${new URL(page).pathname}: ` : ''}${detail}`);
  };
  const expectedOffline = (req) => req.method() !== 'GET' || online.some((p) => new URL(req.url()).pathname.startsWith(p));
  const sameOrigin = (u) => { try { return new URL(u).origin === origin; } catch { return false; } };

  const browser = await playwright.chromium.launch({ executablePath: exe, args: CHROMIUM_ARGS, headless: true });
  try {
    const context = await browser.newContext({ serviceWorkers: 'allow' });
    context.setDefaultTimeout(timeout);
    const page = await context.newPage();

    // ---- online: install, collect pages -------------------------------------
    await page.goto(start, { waitUntil: 'load' });
    const sw = await page.evaluate(async (ms) => {
      if (!('serviceWorker' in navigator)) return 'unsupported';
      const reg = await Promise.race([navigator.serviceWorker.ready, new Promise((r) => setTimeout(() => r(null), ms))]);
      return reg ? 'ready' : 'none';
    }, Math.min(timeout, 10_000));
    if (sw !== 'ready') {
      problem('no service worker', start, 'the page registered no service worker that became active: nothing of it can load offline');
      return { pages: [start], problems };
    }
    for (let i = 0; i < 3 && !(await page.evaluate(() => !!navigator.serviceWorker.controller)); i++) {
      await page.reload({ waitUntil: 'load' });
    }
    await page.waitForLoadState('networkidle', { timeout: 10_000 }).catch(() => {});
    const cached = await page.evaluate(async () => {
      const out = [];
      for (const name of await caches.keys()) {
        const cache = await caches.open(name);
        for (const req of await cache.keys()) {
          const res = await cache.match(req);
          out.push({ url: req.url, type: res?.headers.get('content-type') || '' });
        }
      }
      return out;
    });
    // Workbox's precache keys a file by its URL plus its revision
    // (?__WB_REVISION__=…); the page is the URL without it.
    for (const c of cached) {
      const x = new URL(c.url);
      if (!x.searchParams.has('__WB_REVISION__')) continue;
      x.searchParams.delete('__WB_REVISION__');
      c.url = x.href;
    }
    const cachedUrls = new Set(cached.map((c) => pageKey(c.url)));
    const pages = [pageKey(start)];
    const add = (u) => {
      if (!u || !sameOrigin(u)) return;
      const k = pageKey(u);
      if (new URL(k).pathname.startsWith(sync) || pages.includes(k) || pages.length >= maxPages) return;
      pages.push(k);
    };
    const manifestUrl = await page.evaluate(() => document.querySelector('link[rel="manifest"]')?.href || null);
    if (manifestUrl) {
      const manifest = await page.evaluate(async (u) => { try { return await (await fetch(u)).json(); } catch { return null; } }, manifestUrl);
      if (!manifest) problem('manifest', start, `${manifestUrl} is not a readable web manifest`);
      else {
        const rel = (u) => { try { return new URL(u, manifestUrl).href; } catch { return null; } };
        add(rel(manifest.start_url ?? '.'));
        for (const s of manifest.shortcuts || []) add(rel(s.url));
      }
    }
    for (const c of cached) if (/text\/html/.test(c.type)) add(c.url);
    for (let i = 0; i < pages.length; i++) {
      if (i > 0) {
        try { await page.goto(pages[i], { waitUntil: 'load' }); } catch (e) { problem('page', pages[i], `does not load even online: ${e.message.split('\n')[0]}`); continue; }
      }
      for (const href of await page.evaluate(() => [...document.querySelectorAll('a[href]')].map((a) => a.href))) add(href);
    }
    const precached = (u) => {
      const x = new URL(u);
      return cachedUrls.has(x.href) || (x.pathname.endsWith('/') && cachedUrls.has(new URL('index.html', x).href));
    };
    for (const p of pages) if (!precached(p)) problem('not precached', p, 'the page is in no cache: it cannot open offline');

    // ---- the model ---------------------------------------------------------------
    let model = options.model;
    let modelLine = `model: not checked (GET ${sync}model needs the app's credentials; pass --model)`;
    if (!model) {
      const res = await fetch(new URL(`${sync}model`, origin)).catch(() => null);
      if (res?.ok) model = await res.json().catch(() => null);
      else if (res?.status === 404) modelLine = `model: none (no GET ${sync}model on ${origin}; pass --model)`;
    }
    if (model) {
      const { ok, errors, model: m } = validateModel(model);
      if (ok) modelLine = `model ok: ${Object.keys(m.entities).length} entities (version ${m.version})`;
      else for (const e of errors) problem('model', null, `${e.entity}: ${e.rule}: ${e.message}`);
    }

    // ---- offline: open and reload each page ---------------------------------
    await context.setOffline(true);
    for (const p of pages) {
      const seen = [];
      const onFailed = (req) => {
        if (sameOrigin(req.url()) && !expectedOffline(req)) seen.push(`${req.method()} ${new URL(req.url()).pathname} failed (${req.failure()?.errorText || 'no response'})`);
      };
      const onResponse = (res) => {
        const req = res.request();
        if (res.status() >= 400 && sameOrigin(res.url()) && !expectedOffline(req)) seen.push(`${req.method()} ${new URL(res.url()).pathname} answered ${res.status()}`);
      };
      const onError = (e) => seen.push(`uncaught: ${String(e.message || e).split('\n')[0]}`);
      page.on('requestfailed', onFailed);
      page.on('response', onResponse);
      page.on('pageerror', onError);
      try {
        for (const step of ['open', 'reload']) {
          try {
            if (step === 'open') await page.goto(p, { waitUntil: 'load' });
            else await page.reload({ waitUntil: 'load' });
          } catch (e) {
            seen.push(`the page does not ${step} offline: ${e.message.split('\n')[0]}`);
            break;
          }
          await page.waitForLoadState('networkidle', { timeout: 5_000 }).catch(() => {});
          await page.waitForTimeout(300);   // late imports and fetches a page starts after load
        }
      } finally {
        page.off('requestfailed', onFailed);
        page.off('response', onResponse);
        page.off('pageerror', onError);
      }
      const unique = [...new Set(seen)];
      if (unique.length) for (const s of unique) problem('offline', p, s);
      else log(`  offline ok: ${new URL(p).pathname}`);
    }
    log(`  ${modelLine}`);
    log(`  ${pages.length} page${pages.length === 1 ? '' : 's'}, ${cached.length} cached responses`);
    return { pages, problems };
  } finally {
    await browser.close().catch(() => {});
    if (folder) await folder.close();
  }
}
