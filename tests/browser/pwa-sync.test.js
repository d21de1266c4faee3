// The demo PWA's sync around the service worker: the Background Sync event
// wakes the page and pushes pending changes without the user; the sync
// issues view shows a conflicted and a rejected object (this device's values
// beside the server's) and retries or discards them; the worker's runtime
// routes (sync calls and other API answers never cached, subresources and
// the paths the app names stale-while-revalidate, the offline page).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildSite, startSite, launchBrowser, openApp, waitForModel, waitControlled, removeTemps,
} from './pwa-helpers.js';

const T = { timeout: 120_000 };
let site;
let browser;
let page;

before(async () => {
  const { dir } = await buildSite('sync', null, { runtime: ['/icons/'] });
  site = await startSite({ web: dir });
  browser = await launchBrowser();
  page = await browser.newPage();
  await openApp(page, `${site.url}/`);
  await waitForModel(page);
  await waitControlled(page);
  // The first sync (run by open()) has finished.
  await page.waitForFunction(() => window.db.status().lastSyncAt !== null, null, { timeout: 30_000 });
});
after(async () => {
  await browser?.close();
  await site?.close();
  await removeTemps();
});

const pending = () => page.evaluate(() => window.db.status().pendingChanges);

test('the_background_sync_event_should_push_pending_changes_without_the_user', T, async () => {
  await page.evaluate(() => window.db.exec("UPDATE Visit SET note = 'pushed by background sync' WHERE id = 'visit-2'"));
  assert.equal(await pending(), 1, 'the change waits');
  assert.equal(await page.evaluate(() => window.app.pwa.requestBackgroundSync()), true, 'Chromium has Background Sync');
  // Make sure the event ran through the worker: fire it the way the browser
  // does when connectivity returns (DevTools protocol), then wait.
  const cdp = await browser.context.newCDPSession(page);
  const regs = new Promise((resolve) => cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
    const r = e.registrations.find((x) => x.scopeURL === `${site.url}/` && !x.isDeleted);
    if (r) resolve(r);
  }));
  await cdp.send('ServiceWorker.enable');
  const reg = await regs;
  await cdp.send('ServiceWorker.dispatchSyncEvent', { origin: site.url, registrationId: reg.registrationId, tag: 'ferry-sync', lastChance: false });
  // The tab's status follows every commit of the worker (commit events), so
  // pendingChanges reaches 0 with the push, before the sync run ends.
  await page.waitForFunction(() => window.db.status().pendingChanges === 0 && window.app.pwa.backgroundSyncs >= 1, null, { timeout: 30_000 });
  assert.deepEqual(await site.srv.db.query("SELECT note FROM Visit WHERE id = 'visit-2'"), [{ note: 'pushed by background sync' }]);
  await cdp.detach();
});

test('the_sync_issues_view_should_show_both_sides_and_retry_or_discard', T, async () => {
  // A conflict: this device renames a customer, the office renames it later.
  await page.evaluate(() => window.db.exec("UPDATE Customer SET name = 'Ada (device)' WHERE id = 'cust-ada'"));
  await new Promise((r) => setTimeout(r, 20));
  await site.srv.write('Customer', [{ id: 'cust-ada', name: 'Ada (office)' }]);
  // Two rejected objects: credits that are not decimals.
  await page.evaluate(() => window.db.exec("INSERT INTO Customer(id, name, credit) VALUES ('cust-bad', 'Bad Credit', 'twelve'), ('cust-fix', 'Fixable', 'ten')"));

  await page.click('#sync-button');
  await page.waitForSelector('#issue-count:not([hidden])');
  assert.equal(await page.textContent('#issue-count'), '3 sync issues');
  await page.click('#issue-count');
  const conflict = '#issue-list article[data-entity=Customer][data-id=cust-ada]';
  const rejected = '#issue-list article[data-entity=Customer][data-id=cust-bad]';
  await page.waitForSelector(conflict);
  await page.waitForSelector(rejected);
  assert.equal(await page.textContent(`${conflict} .badge`), 'conflict');
  const lostRow = await page.$$eval(`${conflict} tr.lost`, (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
  assert.deepEqual(lostRow, [['name', 'Ada (device)', 'Ada (office)']]);
  assert.equal(await page.textContent(`${rejected} .badge`), 'rejected');
  assert.match(await page.textContent(`${rejected} .reason`), /credit/);
  assert.match(await page.textContent(rejected), /twelve/);

  // Correct a rejected one on the device, then sync: it goes through.
  const fixable = '#issue-list article[data-entity=Customer][data-id=cust-fix]';
  await page.click(`${fixable} a.edit`);
  await page.waitForFunction(() => document.querySelector('#customer-form input[name=id]')?.value === 'cust-fix');
  assert.equal(await page.inputValue('#customer-form input[name=credit]'), 'ten');
  await page.fill('#customer-form input[name=credit]', '10.00');
  await page.click('#customer-form button[type=submit]');
  await page.waitForSelector('#customer-list li[data-id=cust-fix]');
  await page.click('#sync-button');
  await page.waitForFunction(() => document.querySelector('#issue-count').textContent === '2 sync issues');
  assert.deepEqual(await site.srv.db.query("SELECT credit FROM Customer WHERE id = 'cust-fix'"), [{ credit: '10.00' }]);
  await page.click('#issue-count');
  await page.waitForSelector(conflict);

  // Keep mine: the device's name goes out again and wins.
  await page.click(`${conflict} button.retry`);
  await page.waitForSelector(conflict, { state: 'detached' });
  await page.waitForFunction(() => window.db.status().pendingChanges === 0, null, { timeout: 30_000 });
  assert.deepEqual(await site.srv.db.query("SELECT name FROM Customer WHERE id = 'cust-ada'"), [{ name: 'Ada (device)' }]);

  // Discard the rejected one.
  await page.click(`${rejected} button.discard`);
  await page.waitForSelector(rejected, { state: 'detached' });
  await page.waitForSelector('#issue-count', { state: 'hidden' });
  assert.deepEqual(await page.evaluate(() => window.db.syncErrors()), []);
  assert.deepEqual(await site.srv.db.query("SELECT count(*) AS n FROM Customer WHERE id = 'cust-bad'"), [{ n: 0 }]);
});

test('the_worker_should_never_cache_sync_calls_or_api_answers_and_should_serve_the_rest_offline', T, async () => {
  // A subresource outside the precache (a stylesheet) is cached stale-while-revalidate.
  const loadStyle = (href) => page.evaluate((h) => new Promise((resolve) => {
    const link = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: h });
    link.onload = () => { link.remove(); resolve('loaded'); };
    link.onerror = () => { link.remove(); resolve('failed'); };
    document.head.append(link);
  }), href);
  assert.equal(await loadStyle('/app.css?theme=1'), 'loaded');
  await page.waitForFunction(async () => !!(await (await caches.open('ferry-runtime-v1')).match('/app.css?theme=1')));
  // A fetch() is an API call: its answer is never kept, unless the app named the path (here /icons/).
  assert.equal(await page.evaluate(async () => (await fetch('/app.css?api=1')).status), 200);
  assert.equal(await page.evaluate(async () => (await fetch('/icons/icon-192.png?size=1')).status), 200);
  await page.waitForFunction(async () => !!(await (await caches.open('ferry-runtime-v1')).match('/icons/icon-192.png?size=1')));
  const urls = await page.evaluate(async () => {
    const out = [];
    for (const name of await caches.keys()) for (const r of await (await caches.open(name)).keys()) out.push(r.url);
    return out;
  });
  assert.ok(urls.length > 20);
  assert.deepEqual(urls.filter((u) => new URL(u).pathname.startsWith('/sync')), [], 'no sync call is cached');
  assert.deepEqual(urls.filter((u) => new URL(u).search === '?api=1'), [], 'no API answer is cached');

  site.setDown(true);
  await browser.context.setOffline(true);
  try {
    assert.equal(await loadStyle('/app.css?theme=1'), 'loaded', 'served from the runtime cache');
    assert.equal(await page.evaluate(async () => (await fetch('/icons/icon-192.png?size=1')).status), 200, 'a named path, from the runtime cache');
    assert.equal(await page.evaluate(() => fetch('/app.css?api=1').then(() => 'answered', () => 'network error')), 'network error', 'an API call offline is never answered from a cache');
    // A sync call offline fails as a network error: never a cached answer.
    assert.equal(await page.evaluate(() => fetch('/sync/model').then(() => 'answered', () => 'network error')), 'network error');
    const e = await page.evaluate(() => window.db.sync().then(() => null, (err) => err.code));
    assert.equal(e, 'sync_network');
    // A page that was never visited: the offline fallback.
    await page.goto(`${site.url}/reports/2026`, { waitUntil: 'load' });
    assert.equal(await page.textContent('h1'), 'You are offline');
    // Its link leads back to the app, which loads offline.
    await page.click('a[href="/"]');
    await page.waitForFunction(() => window.ready === true);
    await page.waitForSelector('#visit-list li[data-id="visit-1"]');
  } finally {
    site.setDown(false);
    await browser.context.setOffline(false);
  }
  assert.deepEqual(browser.errors, [], 'no uncaught page errors');
});

test('evicted_storage_should_be_reported_and_the_app_should_start_again_from_the_server', T, async () => {
  await page.goto(`${site.url}/#drafts`);
  await page.waitForFunction(() => window.ready === true && !!window.db);
  await page.evaluate(() => window.db.exec("INSERT INTO Draft(id, text) VALUES ('d-lost', 'gone with the storage')"));
  // The browser evicts the origin's databases (not its cookies, localStorage or caches).
  await page.goto('about:blank');
  const cdp = await browser.context.newCDPSession(page);
  await cdp.send('Storage.clearDataForOrigin', { origin: site.url, storageTypes: 'indexeddb,file_systems' });
  await cdp.detach();

  await page.goto(`${site.url}/`);
  await page.waitForFunction(() => window.ready === true);
  await page.waitForSelector('#fatal[data-code=storage_lost]');
  assert.match(await page.textContent('#fatal h2'), /gone/);
  assert.equal(await page.evaluate(() => window.db?.status().closed ?? 'no db'), 'no db', 'no empty database was put in its place');

  await page.click('#recreate');
  await page.waitForFunction(() => !!window.db?.status().modelVersion, null, { timeout: 30_000 });
  await page.waitForSelector('#visit-list li[data-id="visit-1"]');
  assert.deepEqual(await page.evaluate(() => window.db.query('SELECT count(*) AS n FROM Draft')), [{ n: 0 }]);
});
