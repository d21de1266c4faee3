// A new version deployed while tabs are open: it installs and waits, the
// page is told ('updateavailable'), the tabs keep running the old version
// (a reload included: the HTML and every asset stay the old ones) until the
// app accepts the update; then every asset is the new one, in every tab,
// and the old precache is gone. Data made on either side of the update stays.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  buildSite, startSite, launchBrowser, openApp, waitForModel, waitControlled, fetchHashes, removeTemps, sleep,
} from './pwa-helpers.js';

const T = { timeout: 180_000 };
after(removeTemps);

/** A build whose page, script and style all say which version they are. */
const release = (tag) => buildSite(tag, async (dir) => {
  await fsp.appendFile(path.join(dir, 'app.js'), `\nwindow.APP_BUILD = '${tag}';\n`);
  await fsp.appendFile(path.join(dir, 'app.css'), `\nbody { --build: '${tag}'; }\n`);
  const html = await fsp.readFile(path.join(dir, 'index.html'), 'utf8');
  await fsp.writeFile(path.join(dir, 'index.html'), html.replace('<head>', `<head>\n  <meta name="build" content="${tag}">`));
});

/** What the page runs: its script's build, its HTML's build, its style's build, its worker's version. */
const running = (page) => page.evaluate(async () => ({
  script: window.APP_BUILD,
  html: document.querySelector('meta[name=build]')?.content,
  css: getComputedStyle(document.body).getPropertyValue('--build').trim().replace(/['"]/g, ''),
  sw: (await window.app.pwa.version())?.version,
}));

const hashesOf = (manifest) => Object.fromEntries(manifest.entries.map((e) => [e.url, e.sha256]));

test('a_new_version_should_wait_until_the_app_accepts_it_then_replace_every_asset', T, async () => {
  const v1 = await release('v1');
  const v2 = await release('v2');
  assert.notEqual(v1.manifest.version, v2.manifest.version);
  const site = await startSite({ web: v1.dir });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await openApp(page, `${site.url}/`);
    await waitForModel(page);
    await waitControlled(page);
    assert.deepEqual(await running(page), { script: 'v1', html: 'v1', css: 'v1', sw: v1.manifest.version });
    await page.evaluate(() => window.db.exec("INSERT INTO Draft(id, text) VALUES ('d-before', 'before the update')"));

    // A second tab of the same app, on v1 too.
    const tab2 = await browser.context.newPage();
    await openApp(tab2, `${site.url}/#drafts`);
    await tab2.waitForSelector('#draft-list li[data-id="d-before"]');
    assert.equal((await running(tab2)).script, 'v1');

    // ---- v2 is deployed ------------------------------------------------------
    await site.deploy(v2.dir);
    const announced = page.evaluate(() => new Promise((resolve) => {
      if (window.app.pwa.updateAvailable) resolve('flag');
      window.app.pwa.addEventListener('updateavailable', () => resolve('event'));
    }));
    assert.equal(await page.evaluate(() => window.app.pwa.checkForUpdate()), true);
    assert.ok(await announced);
    await page.waitForSelector('#update-banner:not([hidden])');
    await tab2.waitForSelector('#update-banner:not([hidden])');

    // The tab keeps working on v1: writes, and a reload gets v1 again
    // (the server serves v2's HTML, the worker keeps the page on v1).
    await page.evaluate(() => window.db.exec("INSERT INTO Draft(id, text) VALUES ('d-waiting', 'while v2 waits')"));
    await openApp(page);
    assert.deepEqual(await running(page), { script: 'v1', html: 'v1', css: 'v1', sw: v1.manifest.version });
    assert.deepEqual(await fetchHashes(page, Object.keys(hashesOf(v1.manifest))), hashesOf(v1.manifest), 'every asset is v1\'s');
    await page.waitForSelector('#update-banner:not([hidden])');
    const cachesWaiting = await page.evaluate(() => caches.keys());
    assert.ok(cachesWaiting.includes(`ferry-precache-${v1.manifest.version}`));
    assert.ok(cachesWaiting.includes(`ferry-precache-${v2.manifest.version}`));
    await sleep(500);
    assert.equal((await running(page)).script, 'v1', 'nothing switched by itself');

    // ---- the app accepts the update ------------------------------------------
    const tab2Reloaded = tab2.waitForEvent('load', { timeout: 30_000 });
    await Promise.all([page.waitForEvent('load', { timeout: 30_000 }), page.click('#apply-update')]);
    await page.waitForFunction(() => window.ready === true);
    assert.deepEqual(await running(page), { script: 'v2', html: 'v2', css: 'v2', sw: v2.manifest.version });
    assert.deepEqual(await fetchHashes(page, Object.keys(hashesOf(v2.manifest))), hashesOf(v2.manifest), 'every asset is v2\'s');
    const cachesAfter = await page.evaluate(() => caches.keys());
    assert.ok(!cachesAfter.includes(`ferry-precache-${v1.manifest.version}`), 'the old precache is removed');
    assert.equal(await page.isHidden('#update-banner'), true);

    // The other tab followed (it never runs v1 code against v2's assets).
    await tab2Reloaded;
    await tab2.waitForFunction(() => window.ready === true);
    assert.equal((await running(tab2)).script, 'v2');

    // The data made before and during the update is there.
    await page.click('#tab-drafts');
    await page.waitForSelector('#draft-list li[data-id="d-waiting"]');
    assert.ok(await page.$('#draft-list li[data-id="d-before"]'));

    // And v2 works offline too.
    site.setDown(true);
    await browser.context.setOffline(true);
    await openApp(page);
    assert.deepEqual(await running(page), { script: 'v2', html: 'v2', css: 'v2', sw: v2.manifest.version });
    await page.waitForSelector('#draft-list li[data-id="d-before"]');
    assert.deepEqual(browser.errors, [], 'no uncaught page errors');
  } finally {
    await browser.close();
    await site.close();
  }
});
