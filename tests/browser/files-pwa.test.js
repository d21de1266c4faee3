// Files in the demo PWA, as a user meets them: a photo put in one browser is
// readable at once through db.files.get and through db.files.url() (served
// by the service worker from the device, ranges included, offline too), goes
// up on its own, and arrives on a second device of the same user.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  buildSite, startSite, launchBrowser, openApp, openSynced, removeTemps,
} from './pwa-helpers.js';
import { ROOT } from './harness.js';

const T = { timeout: 180_000 };
const PHOTO = fs.readFileSync(path.join(ROOT, 'web', 'icons', 'icon-192.png'));
let site;
const browsers = [];

async function device() {
  const b = await launchBrowser();
  browsers.push(b);
  const page = await b.newPage();
  await openSynced(page, `${site.url}/`);
  return page;
}

// A dedicated worker that fetches what it is sent and says when the answer
// arrived: a request from the page's origin whose answer needs no page.
const FETCH_PROBE = `onmessage = async (e) => {
  if (e.data === 'ping') { postMessage('pong'); return; }
  const r = await fetch(e.data);
  const buf = await r.arrayBuffer();
  const hex = [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))].map((b) => b.toString(16).padStart(2, '0')).join('');
  postMessage({ status: r.status, hex, at: Date.now() });
};`;

before(async () => {
  const { dir } = await buildSite('files', (d) => fs.writeFileSync(path.join(d, 'fetch-probe.js'), FETCH_PROBE));
  site = await startSite({ web: dir });
});
after(async () => {
  for (const b of browsers) await b.close();
  await site?.close();
  await removeTemps();
});

/** The bytes behind url as the page's fetch (through its service worker) gets them: { status, headers, hex, size }. */
const fetchFromPage = (page, url, headers = {}) => page.evaluate(async ([u, h]) => {
  const r = await fetch(u, { headers: h });
  const buf = new Uint8Array(await r.arrayBuffer());
  return {
    status: r.status, type: r.headers.get('content-type'), range: r.headers.get('content-range'), size: buf.length,
    hex: [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))].map((b) => b.toString(16).padStart(2, '0')).join(''),
    head: [...buf.slice(0, 16)],
  };
}, [url, headers]);

const sha256 = async (u8) => Buffer.from(await crypto.subtle.digest('SHA-256', u8)).toString('hex');

const showImage = (page, url) => page.evaluate((u) => new Promise((resolve) => {
  const img = new Image();
  img.onload = () => resolve(img.naturalWidth);
  img.onerror = () => resolve(-1);
  img.src = u;
}), url);

test('a_photo_put_offline_should_show_from_the_device_after_a_reload_and_reach_the_server_and_a_second_device', T, async () => {
  const a = await device();
  const hash = await sha256(PHOTO);
  site.setDown(true);
  const ref = await a.evaluate(async (bytes) => {
    const blob = new Blob([new Uint8Array(bytes)], { type: 'image/png' });
    return window.db.files.put('Customer', 'cust-ada', 'photo', blob, { type: 'image/png', name: 'ada.png' });
  }, [...PHOTO]);
  assert.deepEqual(ref, { hash, size: PHOTO.length, type: 'image/png', name: 'ada.png' });

  const got = await a.evaluate(async () => {
    const b = await window.db.files.get('Customer', 'cust-ada', 'photo');
    return { isBlob: b instanceof Blob, type: b.type, bytes: [...new Uint8Array(await b.arrayBuffer())] };
  });
  assert.equal(got.isBlob, true, 'a Blob in browsers');
  assert.equal(got.type, 'image/png');
  assert.deepEqual(Buffer.from(got.bytes), PHOTO);

  const url = await a.evaluate(() => window.db.files.url('Customer', 'cust-ada', 'photo'));
  assert.ok(url.startsWith(`${site.url}/`), `same origin: ${url}`);
  assert.equal(await showImage(a, url), 192, 'the <img> decoded the photo from device storage, offline');
  const whole = await fetchFromPage(a, url);
  assert.deepEqual([whole.status, whole.type, whole.size, whole.hex], [200, 'image/png', PHOTO.length, hash]);
  const part = await fetchFromPage(a, url, { range: 'bytes=8-15' });
  assert.deepEqual([part.status, part.range, part.size], [206, `bytes 8-15/${PHOTO.length}`, 8]);
  assert.deepEqual(part.head, [...PHOTO.subarray(8, 16)]);
  const suffix = await fetchFromPage(a, url, { range: 'bytes=-4' });
  assert.deepEqual([suffix.status, suffix.head], [206, [...PHOTO.subarray(-4)]]);
  assert.equal((await fetchFromPage(a, url, { range: `bytes=${PHOTO.length}-` })).status, 416);
  const empty = await fetchFromPage(a, await a.evaluate(() => window.db.files.url('Customer', 'cust-bell', 'photo')));
  assert.equal(empty.status, 404, 'an attribute without a file is a 404');

  // Still offline, after a reload: the app starts from the precache and the photo from the device.
  await openApp(a);
  assert.equal(await showImage(a, url), 192, 'after a reload, offline');
  assert.equal(await a.evaluate(async () => (await window.db.files.flush()).uploads), 1, 'its upload waits');

  // Back online, it goes up by itself after the sync that pushes the reference.
  site.setDown(false);
  await a.evaluate(() => window.db.sync());
  await a.waitForFunction(async () => (await window.db.files.flush()).uploads === 0, null, { timeout: 60_000, polling: 500 });
  assert.notEqual(await site.srv.blobs.size(hash), null, 'the server holds the bytes');

  // A second device of the same user downloads it (eager) and serves it from its own storage.
  const b = await device();
  await b.waitForFunction(async () => {
    try { return (await window.db.files.get('Customer', 'cust-ada', 'photo')).size; } catch { return 0; }
  }, null, { timeout: 60_000, polling: 500 });
  site.setDown(true);
  const there = await fetchFromPage(b, url);
  assert.deepEqual([there.status, there.hex], [200, hash], 'offline on the second device too');
  site.setDown(false);
});

test('a_pending_upload_should_never_be_evicted_under_a_small_budget_in_the_browser', T, async () => {
  const page = await device();
  const r = await page.evaluate(async (bytes) => {
    const { open } = await import('/bindings/index.js');
    const db = await open({
      name: 'budget-probe', server: new URL('/sync', location).href, fileBudget: 0,
      headers: window.app.session.headersFor(window.app.session.user),
    });
    const out = {};
    try {
      await db.sync();
      await db.exec("UPDATE Customer SET name = name WHERE id = 'cust-bell'");
      out.ref = await db.files.put('Customer', 'cust-bell', 'photo', new Uint8Array(bytes), { type: 'image/png' });
      await db.files.flush();
      out.before = (await db.files.get('Customer', 'cust-bell', 'photo')).size;   // not pushed yet: kept
      await db.sync();
      await db.files.flush();
      out.uploads = db.files.status().uploads;
      await db.files.flush();
      out.after = await db.files.get('Customer', 'cust-bell', 'photo').then((b) => b.size, (e) => e.code);
      await db.files.flush();
      out.back = (await db.files.get('Customer', 'cust-bell', 'photo')).size;
      out.storage = db.status().storage;
    } finally {
      await db.close();
    }
    return out;
  }, [...PHOTO]);
  assert.equal(r.storage, 'opfs');
  assert.equal(r.before, PHOTO.length, 'a file waiting to go up stays, whatever the budget');
  assert.equal(r.uploads, 0);
  assert.equal(r.after, 'file_pending', 'once up, a budget of 0 evicts it');
  assert.equal(r.back, PHOTO.length, 'and it comes back when asked for');
  assert.notEqual(await site.srv.blobs.size(r.ref.hash), null);
});

test('the_demo_should_take_a_customer_photo_and_a_visit_attachment_offline_and_show_them_from_the_device', T, async () => {
  const page = await device();
  site.setDown(true);
  try {
    await page.click('#tab-customers');
    await page.click('#customer-list li:has-text("Bell & Sons")');
    await page.waitForFunction(() => document.querySelector('#customer-form input[name=name]').value === 'Bell & Sons');
    await page.setInputFiles('#customer-form input[name=photo]', { name: 'bell.png', mimeType: 'image/png', buffer: PHOTO });
    await page.click('#customer-form button[type=submit]');
    await page.click('#customer-list li:has-text("Bell & Sons")');
    await page.waitForFunction(() => {
      const img = document.querySelector('#customer-form img.thumb');
      return img && !img.hidden && img.complete && img.naturalWidth === 192;
    }, null, { timeout: 30_000 });

    await page.click('#tab-visits');
    await page.click('#visit-list li:has-text("Replaced pressure valve")');
    await page.waitForFunction(() => document.querySelector('#visit-form textarea[name=note]').value.includes('pressure valve'));
    const form = Buffer.from('%PDF-1.4 signed form\n');
    await page.setInputFiles('#visit-form input[name=attachment]', { name: 'signed.pdf', mimeType: 'application/pdf', buffer: form });
    await page.click('#visit-form button[type=submit]');
    await page.click('#visit-list li:has-text("Replaced pressure valve")');
    const link = await page.waitForFunction(() => {
      const a = document.querySelector('#visit-form a.attachment');
      return a && !a.hidden && a.textContent.startsWith('signed.pdf') && a.href;
    }, null, { timeout: 30_000 });
    const got = await fetchFromPage(page, await link.jsonValue());
    assert.deepEqual([got.status, got.type, got.size], [200, 'application/pdf', form.length], 'the attachment opens from the device, offline');
  } finally {
    site.setDown(false);
  }
});

test('a_file_url_should_be_served_by_the_database_worker_while_its_page_is_busy', T, async () => {
  const page = await device();
  const photo = Buffer.from(PHOTO);
  photo[photo.length - 1] ^= 1;   // bytes of its own: this test's file, not another's
  const hash = await sha256(photo);
  site.setDown(true);
  try {
    await page.evaluate(async (bytes) => {
      await window.db.files.put('Customer', 'cust-cobalt', 'photo', new Blob([new Uint8Array(bytes)]), { type: 'image/png' });
    }, [...photo]);
    const url = await page.evaluate(() => window.db.files.url('Customer', 'cust-cobalt', 'photo'));
    assert.equal((await fetchFromPage(page, url)).hex, hash);
    // The page's main thread blocks; a worker of the page asks for the file
    // meanwhile. Only the database worker, asked without the page, can
    // answer before the page is free again: through the page it would come after.
    const r = await page.evaluate(async (u) => {
      const probe = new Worker('/fetch-probe.js');
      await new Promise((started) => { probe.onmessage = started; probe.postMessage('ping'); });
      return new Promise((resolve) => {
        let freeAt = null;
        probe.onmessage = (e) => resolve({ ...e.data, free: freeAt });
        probe.postMessage(u);
        const end = Date.now() + 10_000;
        while (Date.now() < end) { /* busy */ }
        freeAt = Date.now();
      });
    }, url);
    assert.deepEqual([r.status, r.hex], [200, hash], JSON.stringify(r));
    assert.ok(r.at < r.free, `served at ${r.at}, before the page was free at ${r.free}`);
  } finally {
    site.setDown(false);
  }
});
