// ferry's service worker parts in an app's own Workbox worker
// (pages/workbox-app-sw.js: Workbox's precache route and a route of the
// app's, plus ferry/sw's precacheVersion, shellRoute and ferryRoutes),
// built as an app builds it: bundled, its manifest injected by
// workbox-build's injectManifest with ferry/sw-build's integrity. There,
// db.files.url() is served from the device offline; a deploy whose files do
// not match their manifest never installs; a good one downloads only what
// changed, waits (a reload keeps the running version's page) until the
// page applies it; and the Background Sync event wakes the page to sync.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { injectManifest } from 'workbox-build';
import { ROOT } from './harness.js';
import { startSite, launchBrowser, waitControlled, tempDir, removeTemps } from './pwa-helpers.js';
import { bundleWorker } from '../../scripts/build-web.mjs';
import { sha256Integrity } from '../../service-worker/integrity.js';

const T = { timeout: 120_000 };
const PAGES = path.join(ROOT, 'tests', 'browser', 'pages');
const DATA = Buffer.alloc(256 * 1024, 'ferry ');   // a big file that no new version changes
let workerScript;
let site;
let browser;
let page;

/** The app's site of build `tag`: its page, a big file, its own worker with the manifest. -> { dir } */
async function buildApp(tag, { data = DATA } = {}) {
  const dir = await tempDir(`workbox-app-${tag}`);
  fs.writeFileSync(path.join(dir, 'index.html'), fs.readFileSync(path.join(PAGES, 'workbox-app.html'), 'utf8').replace('BUILD', tag));
  fs.writeFileSync(path.join(dir, 'data.bin'), data);
  fs.writeFileSync(path.join(dir, 'news.txt'), `news of ${tag}\n`);
  const swSrc = path.join(await tempDir(`workbox-app-src-${tag}`), 'sw.js');
  fs.writeFileSync(swSrc, workerScript);
  const { warnings } = await injectManifest({
    swSrc, swDest: path.join(dir, 'sw.js'), globDirectory: dir, globPatterns: ['**/*.{html,bin}'],
    modifyURLPrefix: { '': '/' }, manifestTransforms: [sha256Integrity(dir)],
  });
  assert.deepEqual(warnings, []);
  return { dir };
}

const running = () => page.evaluate(async () => ({
  html: document.querySelector('meta[name=build]').content,
  sw: (await window.pwa.version())?.version ?? null,
}));
const reload = async () => {
  await page.reload({ waitUntil: 'load' });
  await page.waitForFunction(() => window.ready === true);
};
const caches = () => page.evaluate(() => caches.keys());

before(async () => {
  workerScript = await bundleWorker(path.join(PAGES, 'workbox-app-sw.js'));
  const v1 = await buildApp('v1');
  site = await startSite({ web: v1.dir });
  browser = await launchBrowser();
  page = await browser.newPage();
  await page.goto(`${site.url}/`, { waitUntil: 'load' });
  await page.waitForFunction(() => window.ready === true);
  await waitControlled(page);
  const { token } = await site.auth.issue('ada');
  assert.equal(await page.evaluate((t) => window.start(t), token), 'opfs');
  await page.waitForFunction(() => window.db.status().lastSyncAt !== null, null, { timeout: 30_000 });
});
after(async () => {
  await browser?.close();
  await site?.close();
  await removeTemps();
});

test('db_files_url_should_be_served_from_the_device_offline_by_an_apps_own_workbox_worker', T, async () => {
  const bytes = [...DATA.subarray(0, 4096)];
  await page.evaluate((b) => window.db.files.put('Customer', 'cust-ada', 'photo', new Blob([new Uint8Array(b)], { type: 'image/png' }), { type: 'image/png' }), bytes);
  const url = await page.evaluate(() => window.db.files.url('Customer', 'cust-ada', 'photo'));
  assert.equal(await page.evaluate(() => fetch('/news.txt').then((r) => r.text())), 'news of v1\n');
  site.setDown(true);
  await browser.context.setOffline(true);
  try {
    const got = await page.evaluate(async (u) => {
      const whole = await fetch(u);
      const part = await fetch(u, { headers: { range: 'bytes=10-19' } });
      return { status: whole.status, size: (await whole.arrayBuffer()).byteLength, type: whole.headers.get('content-type'),
        partStatus: part.status, part: [...new Uint8Array(await part.arrayBuffer())] };
    }, url);
    assert.deepEqual(got, { status: 200, size: 4096, type: 'image/png', partStatus: 206, part: bytes.slice(10, 20) });
    // The app's own route answers beside ferry's (NetworkFirst: the copy it kept online).
    assert.equal(await page.evaluate(() => fetch('/news.txt').then((r) => r.text(), () => 'failed')), 'news of v1\n');
  } finally {
    site.setDown(false);
    await browser.context.setOffline(false);
  }
});

test('a_deploy_whose_files_do_not_match_their_manifest_should_never_install', T, async () => {
  const before = await running();
  assert.equal(before.html, 'v1');
  // The manifest names a new data.bin; the server still holds other bytes (a deploy half-way through).
  const broken = await buildApp('v2-broken', { data: Buffer.alloc(DATA.length, 'new ') });
  fs.writeFileSync(path.join(broken.dir, 'data.bin'), Buffer.alloc(DATA.length, 'other '));
  await site.deploy(broken.dir);
  assert.equal(await page.evaluate(() => window.pwa.checkForUpdate()), false, 'nothing waits');
  assert.equal(await page.evaluate(async () => !!(await navigator.serviceWorker.getRegistration()).waiting), false);
  await reload();
  assert.deepEqual(await running(), before, 'the running version stays, page and worker');
});

test('a_new_version_should_download_only_what_changed_wait_for_the_page_and_then_take_over', T, async () => {
  const before = await running();
  const v3 = await buildApp('v3');
  const from = site.requests.length;
  await site.deploy(v3.dir);
  assert.equal(await page.evaluate(() => window.pwa.checkForUpdate()), true, 'the new version waits');
  const fetched = site.requests.slice(from).map((r) => new URL(r.path, site.url).pathname);
  assert.ok(fetched.includes('/index.html'), `the changed page was fetched (${fetched})`);
  assert.ok(!fetched.includes('/data.bin'), `the unchanged big file was copied from the running version's cache, not fetched (${fetched})`);
  const waiting = await caches();
  assert.ok(waiting.includes(`ferry-precache-${before.sw}`), 'the running version keeps its cache while the new one waits');
  // A reload while it waits: the server has v3's page, the running worker keeps v1's.
  await reload();
  assert.deepEqual(await running(), before);

  await Promise.all([page.waitForEvent('load', { timeout: 30_000 }), page.evaluate(() => { window.pwa.applyUpdate(); })]);
  await page.waitForFunction(() => window.ready === true);
  const after = await running();
  assert.equal(after.html, 'v3');
  assert.notEqual(after.sw, before.sw);
  const left = (await caches()).filter((n) => n.startsWith('ferry-precache-'));
  assert.deepEqual(left, [`ferry-precache-${after.sw}`], 'one precache: the new version\'s');
});

test('the_background_sync_event_should_wake_the_page_through_an_apps_own_workbox_worker', T, async () => {
  const { token } = await site.auth.issue('ada');
  await page.evaluate((t) => window.start(t), token);
  await page.waitForFunction(() => window.db.status().lastSyncAt !== null, null, { timeout: 30_000 });
  await page.evaluate(() => window.db.exec("UPDATE Visit SET note = 'woken by the app worker' WHERE id = 'visit-3'"));
  assert.equal(await page.evaluate(() => window.pwa.requestBackgroundSync()), true);
  const cdp = await browser.context.newCDPSession(page);
  const reg = new Promise((resolve) => cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
    const r = e.registrations.find((x) => x.scopeURL === `${site.url}/` && !x.isDeleted);
    if (r) resolve(r);
  }));
  await cdp.send('ServiceWorker.enable');
  const { registrationId } = await reg;
  await cdp.send('ServiceWorker.dispatchSyncEvent', { origin: site.url, registrationId, tag: 'ferry-sync', lastChance: false });
  await page.waitForFunction(() => window.syncs >= 1 && window.db.status().pendingChanges === 0, null, { timeout: 30_000 });
  assert.deepEqual(await site.srv.db.query("SELECT note FROM Visit WHERE id = 'visit-3'"), [{ note: 'woken by the app worker' }]);
  await cdp.detach();
  assert.deepEqual(browser.errors, [], 'no uncaught page errors');
});
