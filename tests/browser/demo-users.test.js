// The demo's two users in headless Chromium, each in a browser of their own
// (separate profiles): a first visit is signed in as Ada at once; switching
// user in the header signs Ada out (her changes pushed, her database deleted
// from the device) and Ben in with a new client id; each user's memos
// (private: sync filter owner = $user.id) never show for the other, online,
// offline and back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildSite, startSite, launchBrowser, openApp, waitForModel, waitControlled, removeTemps,
} from './pwa-helpers.js';

const T = { timeout: 180_000 };
let site;
let one;   // Ada's browser
let two;   // first Ada's, then Ben's
let pageA;
let pageB;

before(async () => {
  const { dir } = await buildSite('users');
  site = await startSite({ web: dir });
  one = await launchBrowser();
  two = await launchBrowser();
  pageA = await one.newPage();
  pageB = await two.newPage();
});
after(async () => {
  await one?.close();
  await two?.close();
  await site?.close();
  await removeTemps();
});

const memos = (page) => page.evaluate(async () => (await window.db.query('SELECT text FROM Memo ORDER BY text')).map((r) => r.text));
const shownMemos = (page) => page.$$eval('#memo-list li .item-title', (els) => els.map((e) => e.textContent).sort());
const status = (page) => page.evaluate(() => ({ ...window.db.status(), user: window.app.session.user }));
const sync = (page) => page.evaluate(() => window.db.sync());

async function addMemo(page, text) {
  await page.click('#tab-memos');
  await page.waitForSelector('#memo-form');
  await page.fill('#memo-form textarea[name=text]', text);
  await page.click('#memo-form button[type=submit]');
  await page.waitForSelector(`#memo-list li:has-text(${JSON.stringify(text)})`);
}

/** Opens the app, waits for its first sync, and for the service worker (so it also starts offline). */
async function firstVisit(page) {
  await openApp(page, `${site.url}/#memos`);
  await waitForModel(page);
  await page.waitForFunction(() => window.db.status().lastSyncAt !== null, null, { timeout: 30_000 });
  await waitControlled(page);
}

/** What the browser still stores of a database: its OPFS files and IndexedDB database. */
const stored = (page, name) => page.evaluate(async (n) => {
  const out = [];
  try {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('ferry');
    for await (const key of dir.keys()) if (key.startsWith(`${n}.`)) out.push(`opfs:${key}`);
  } catch { /* no ferry folder */ }
  for (const d of await indexedDB.databases()) if (d.name === `ferry:${n}`) out.push(`idb:${d.name}`);
  return out;
}, name);

test('a_first_visit_should_be_signed_in_as_the_first_demo_user_at_once', T, async () => {
  await firstVisit(pageA);
  assert.equal(await pageA.textContent('#user-name'), 'Ada Lovelace');
  const st = await status(pageA);
  assert.equal(st.user, 'ada');
  assert.equal(st.modelVersion, '5');
  assert.ok(st.clientId);
  assert.ok(await pageA.isVisible('.switch-user[data-user=ben]'));
  // The token came from the server's sign-in and the server takes it.
  const { token } = await pageA.evaluate(() => window.app.session.state);
  assert.equal((await fetch(`${site.url}/sync/model`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  await addMemo(pageA, 'Ada: private plan');
  await sync(pageA);
  assert.deepEqual(await site.srv.db.query('SELECT owner, text FROM Memo'), [{ owner: 'ada', text: 'Ada: private plan' }]);
});

test('switching_user_should_sign_out_push_and_delete_the_previous_users_data_with_a_new_client_id', T, async () => {
  await firstVisit(pageB);
  // Ada on a second device gets her memo there too: it is private to her, not to a device.
  assert.deepEqual(await memos(pageB), ['Ada: private plan']);
  await addMemo(pageB, 'Ada: written on the shared device');
  const before = await status(pageB);
  assert.equal(before.user, 'ada');
  assert.equal(before.pendingChanges, 1);

  await Promise.all([pageB.waitForEvent('load', { timeout: 60_000 }), pageB.click('.switch-user[data-user=ben]')]);
  await pageB.waitForFunction(() => window.ready === true && window.db?.status().lastSyncAt !== null, null, { timeout: 30_000 });
  const after = await status(pageB);
  assert.equal(after.user, 'ben');
  assert.equal(await pageB.textContent('#user-name'), 'Ben Okafor');
  assert.notEqual(after.clientId, before.clientId, 'a new client id for the next user');
  assert.deepEqual(await memos(pageB), [], 'none of Ada\'s memos for Ben');
  await pageB.click('#tab-memos');
  await pageB.waitForSelector('#memo-form');
  assert.deepEqual(await shownMemos(pageB), []);
  // Ada's change went to the server before her data left the device.
  assert.deepEqual(await site.srv.db.query("SELECT text FROM Memo WHERE owner = 'ada' ORDER BY text"),
    [{ text: 'Ada: private plan' }, { text: 'Ada: written on the shared device' }]);
  assert.deepEqual(await stored(pageB, 'field-service-ada'), [], 'Ada\'s database is deleted from the device');
  assert.notDeepEqual(await stored(pageB, 'field-service-ben'), []);
  // The shared data is there for Ben.
  assert.ok((await pageB.evaluate(() => window.db.query('SELECT count(*) AS n FROM Visit')))[0].n > 0);
  await addMemo(pageB, 'Ben: private note');
  await sync(pageB);
});

test('each_user_should_see_only_their_own_memos_offline_and_back', T, async () => {
  await sync(pageA);
  assert.deepEqual(await memos(pageA), ['Ada: private plan', 'Ada: written on the shared device']);
  assert.deepEqual(await memos(pageB), ['Ben: private note']);

  for (const b of [one, two]) await b.context.setOffline(true);
  site.setDown(true);
  try {
    for (const page of [pageA, pageB]) {
      await openApp(page);
      await page.click('#tab-memos');
      await page.waitForSelector('#memo-form');
    }
    assert.equal((await status(pageA)).user, 'ada');
    assert.equal((await status(pageB)).user, 'ben');
    assert.deepEqual(await shownMemos(pageA), ['Ada: private plan', 'Ada: written on the shared device']);
    assert.deepEqual(await shownMemos(pageB), ['Ben: private note']);
    await addMemo(pageA, 'Ada: offline thought');
    await addMemo(pageB, 'Ben: offline thought');
    // Offline, a switch cannot sign the next user in: Ada stays, her change kept.
    await pageA.click('.switch-user[data-user=ben]');
    // The toast of the memo just added may still show: wait for the switch's own.
    await pageA.waitForFunction(() => /connect to switch user/.test(document.querySelector('#toast:not([hidden])')?.textContent || ''), null, { timeout: 10_000 })
      .catch(() => {});
    assert.match(await pageA.textContent('#toast'), /connect to switch user/);
    const st = await status(pageA);
    assert.equal(st.user, 'ada');
    assert.equal(st.pendingChanges, 1);
  } finally {
    site.setDown(false);
    for (const b of [one, two]) await b.context.setOffline(false);
  }

  for (const page of [pageA, pageB, pageA]) await sync(page);
  assert.deepEqual(await memos(pageA), ['Ada: offline thought', 'Ada: private plan', 'Ada: written on the shared device']);
  assert.deepEqual(await memos(pageB), ['Ben: offline thought', 'Ben: private note']);
  assert.deepEqual(await site.srv.db.query('SELECT owner, count(*) AS n FROM Memo GROUP BY owner ORDER BY owner'),
    [{ owner: 'ada', n: 3 }, { owner: 'ben', n: 2 }]);
  assert.deepEqual([...one.errors, ...two.errors], []);
});
