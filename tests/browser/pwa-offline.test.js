// The demo PWA offline: first load online installs the service worker and
// the page becomes controlled; offline, a reload brings back the shell, the
// wasm and the data; records created and edited offline survive a reload
// and reach the server once the connection is back (checked on the server
// and from a second, fresh browser). Saves docs/screenshot.png.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT } from './harness.js';
import {
  buildSite, startSite, launchBrowser, openApp, waitForModel, waitControlled, addVisit, removeTemps,
} from './pwa-helpers.js';

const T = { timeout: 180_000 };
after(removeTemps);

const pendingCount = (page) => page.evaluate(() => window.db.status().pendingChanges);
const listIds = (page, list) => page.$$eval(`${list} li`, (lis) => lis.map((li) => li.dataset.id));

test('the_demo_should_install_work_offline_and_sync_when_back_online', T, async () => {
  const { dir, manifest } = await buildSite('offline');
  const site = await startSite({ web: dir });
  const browser = await launchBrowser();
  let fresh = null;
  try {
    const page = await browser.newPage();

    // ---- first load, online --------------------------------------------------
    await openApp(page, `${site.url}/`);
    await waitForModel(page);
    await page.waitForSelector('#visit-list li[data-id="visit-1"]');
    await waitControlled(page);
    const caches = await page.evaluate(async () => {
      const out = {};
      for (const name of await caches.keys()) out[name] = (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname);
      return out;
    });
    const precache = caches[`ferry-precache-${manifest.version}`];
    assert.ok(precache, `a precache for version ${manifest.version} (caches: ${Object.keys(caches)})`);
    assert.deepEqual([...precache].sort(), manifest.entries.map((e) => e.url).sort());
    for (const must of ['/index.html', '/app.js', '/bindings/index.js', '/bindings/dist/ferry-core.wasm', '/offline.html']) {
      assert.ok(precache.includes(must), `${must} is precached`);
    }
    assert.equal(await page.evaluate(() => typeof window.db.query), 'function', 'window.db is the database');

    // Installable (Chromium's own check) with the manifest's icons.
    const cdp = await browser.context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors, [], 'Chromium considers the app installable');
    const app = await cdp.send('Page.getAppManifest');
    assert.deepEqual(app.errors, []);
    await cdp.detach();

    // Storage: persist() asked and its answer shown, usage and quota shown.
    await page.waitForFunction(() => /used of/.test(document.querySelector('#storage-line').textContent));
    await page.click('#tab-device');
    await page.waitForSelector('#fact-persisted');
    assert.match(await page.textContent('#fact-persisted'), /granted|not supported/);
    assert.match(await page.textContent('#fact-usage'), /\d.* of \d/);
    assert.match(await page.textContent('#fact-sw'), new RegExp(`installed, version ${manifest.version}`));

    // ---- offline: reload, then create and edit -------------------------------
    site.setDown(true);
    await browser.context.setOffline(true);
    const offlineFrom = site.requests.length;
    await openApp(page);
    await page.click('#tab-visits');
    await page.waitForSelector('#visit-list li[data-id="visit-1"]');
    assert.equal(await page.textContent('#net'), 'offline');

    await addVisit(page, { customer: 'cust-bell', status: 'in progress', note: 'Offline: radiators bled' });
    await page.click('#visit-list li[data-id="visit-1"]');
    await page.waitForFunction(() => document.querySelector('#visit-form h2').textContent === 'Edit visit');
    await page.fill('#visit-form textarea[name=note]', 'Boiler serviced offline');
    await page.selectOption('#visit-form select[name=status]', 'done');
    await page.click('#visit-form button[type=submit]');
    await page.waitForSelector('#visit-list li:has-text("Boiler serviced offline")');

    await page.click('#tab-customers');
    await page.waitForSelector('#customer-form');
    await page.fill('#customer-form input[name=name]', 'Offline Ltd');
    await page.fill('#customer-form input[name=email]', 'hello@offline.example');
    await page.selectOption('#customer-form select[name=region]', 'region-south');
    await page.fill('#customer-form input[name=credit]', '10.00');
    await page.check('#customer-form input[name=active]');
    await page.click('#customer-form button[type=submit]');
    await page.waitForSelector('#customer-list li:has-text("Offline Ltd")');

    await page.click('#tab-drafts');
    await page.fill('#draft-form textarea[name=text]', 'Ask about the second boiler');
    await page.click('#draft-form button[type=submit]');
    await page.waitForSelector('#draft-list li:has-text("second boiler")');

    await page.click('#tab-feedback');
    await page.fill('#feedback-form textarea[name=text]', 'Works in the basement too');
    await page.click('#feedback-form button[type=submit]');
    await page.waitForSelector('#feedback-list li:has-text("basement")');

    // Visit insert + visit update + customer + feedback; the draft never syncs.
    assert.equal(await pendingCount(page), 4);
    await page.waitForFunction(() => document.querySelector('#pending').dataset.count === '4');

    // ---- reload offline: everything is still there ---------------------------
    await openApp(page);
    await page.click('#tab-visits');
    await page.waitForSelector('#visit-list li:has-text("Offline: radiators bled")');
    assert.ok(await page.$('#visit-list li[data-id="visit-1"]:has-text("Boiler serviced offline")'));
    assert.equal(await pendingCount(page), 4);
    const local = await page.evaluate(() => window.db.query(`SELECT
      (SELECT count(*) FROM Customer WHERE name = 'Offline Ltd') AS customers,
      (SELECT count(*) FROM Draft) AS drafts, (SELECT count(*) FROM Feedback) AS feedback`));
    assert.deepEqual(local, [{ customers: 1, drafts: 1, feedback: 1 }]);
    const leaked = site.requests.slice(offlineFrom).filter((r) => r.status > 0);
    assert.deepEqual(leaked, [], 'nothing reached the server while offline');

    // The README's screenshot, taken here: offline, changes waiting, a visit open.
    await page.click('#visit-list li[data-id="visit-1"]');
    await page.waitForFunction(() => document.querySelector('#visit-form h2').textContent === 'Edit visit');
    await page.evaluate(() => { document.querySelector('#toast').hidden = true; });
    await page.setViewportSize({ width: 1180, height: 600 });
    await page.screenshot({ path: path.join(ROOT, 'docs', 'screenshot.png') });
    await page.setViewportSize({ width: 1180, height: 760 });

    // ---- back online: the changes reach the server ---------------------------
    site.setDown(false);
    await browser.context.setOffline(false);
    await page.waitForFunction(() => window.db.status().pendingChanges === 0, null, { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('#net').textContent === 'online');
    const srv = site.srv.db;
    assert.deepEqual(await srv.query("SELECT note, status FROM Visit WHERE id = 'visit-1'"), [{ note: 'Boiler serviced offline', status: 'done' }]);
    assert.deepEqual(await srv.query("SELECT status, customer FROM Visit WHERE note = 'Offline: radiators bled'"), [{ status: 'in progress', customer: 'cust-bell' }]);
    assert.deepEqual(await srv.query("SELECT email, credit, active, region FROM Customer WHERE name = 'Offline Ltd'"),
      [{ email: 'hello@offline.example', credit: '10.00', active: 1, region: 'region-south' }]);
    assert.deepEqual(await srv.query('SELECT text FROM Feedback'), [{ text: 'Works in the basement too' }]);
    // Feedback (nothing-clear) left the device once uploaded; the draft stayed.
    assert.deepEqual(await page.evaluate(() => window.db.query('SELECT (SELECT count(*) FROM Feedback) AS f, (SELECT count(*) FROM Draft) AS d')), [{ f: 0, d: 1 }]);

    // A second, fresh browser sees them.
    fresh = await launchBrowser();
    const other = await fresh.newPage();
    await openApp(other, `${site.url}/`);
    await waitForModel(other);
    await other.waitForSelector('#visit-list li:has-text("Offline: radiators bled")');
    assert.ok(await other.$('#visit-list li[data-id="visit-1"]:has-text("Boiler serviced offline")'));
    await other.click('#tab-customers');
    await other.waitForSelector('#customer-list li:has-text("Offline Ltd")');
    await other.click('#tab-drafts');
    await other.waitForSelector('#draft-list', { state: 'attached' });
    await other.waitForSelector('#view[data-view=drafts] .empty:not([hidden])');
    assert.deepEqual(await listIds(other, '#draft-list'), [], 'drafts never leave their device');

    assert.deepEqual(browser.errors, [], 'no uncaught page errors');
  } finally {
    await fresh?.close();
    await browser.close();
    await site.close();
  }
});
