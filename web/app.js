// The demo PWA: a field-service app on ferry. Data lives in SQLite on the
// device (window.db, for consoles and tests) and syncs with /sync as the
// signed-in demo user, in a database of that user's own.
import { registerServiceWorker } from '/bindings/pwa.js';
import { h, bytes, describe, coalesce } from '/lib/dom.js';
import { StatusBar } from '/lib/status.js';
import { visits } from '/views/visits.js';
import { customers } from '/views/customers.js';
import { drafts, feedback } from '/views/notes.js';
import { issues } from '/views/issues.js';
import { device } from '/views/device.js';
import { memos } from '/views/memos.js';
import { Session, signIn, dbName, DEMO_PASSWORD } from '/lib/session.js';

const VIEWS = [visits, customers, memos, drafts, feedback, issues, device];
const $ = (sel) => document.querySelector(sel);
const online = () => navigator.onLine !== false;

let db = null;
let current = null;   // { view, refresh?, unmount? }
const session = new Session();
let toastTimer = 0;

function notify(message, kind = 'info') {
  const t = $('#toast');
  t.textContent = message;
  t.className = kind;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

// ---- storage that lasts -------------------------------------------------------

const storage = {
  persisted: null,
  async persist() {
    if (!navigator.storage?.persist) return null;
    this.persisted = (await navigator.storage.persisted()) || (await navigator.storage.persist());
    return this.persisted;
  },
  async estimate() {
    try { return await navigator.storage.estimate(); } catch { return null; }
  },
};

async function renderStorageLine() {
  const est = await storage.estimate();
  const kind = db ? db.status().storage : '…';
  const p = storage.persisted === null ? 'persistence unsupported' : storage.persisted ? 'persistent' : 'not persistent';
  $('#storage-line').textContent = `Storage: ${kind} · ${p}${est ? ` · ${bytes(est.usage)} used of ${bytes(est.quota)}` : ''}`;
}

// ---- service worker -------------------------------------------------------------

const pwa = registerServiceWorker({
  // Background Sync: connectivity is back and changes wait; the worker wakes us.
  sync: async () => {
    if (!db) throw new Error('the database is not open');
    const r = await db.sync();
    statusBar?.render();
    return r;
  },
});
pwa.addEventListener('updateavailable', () => { $('#update-banner').hidden = false; });
pwa.addEventListener('offlineready', () => { notify('Ready to work offline'); renderVersion(); });
pwa.addEventListener('backgroundsync', (e) => { if (e.detail.ok) notify('Changes synced in the background'); });
$('#apply-update').addEventListener('click', () => {
  $('#apply-update').disabled = true;
  pwa.applyUpdate();
});

async function renderVersion() {
  const v = await pwa.version();
  window.app.version = v?.version ?? null;
  $('#version-line').textContent = v ? `app ${v.version}` : pwa.error ? 'offline app unavailable' : '';
}

// ---- views ----------------------------------------------------------------------

function renderTabs(active) {
  const n = db?.status().syncErrors || 0;
  $('#tabs').replaceChildren(...VIEWS.map((v) => h('a', {
    href: `#${v.id}`, id: `tab-${v.id}`, class: v.id === active ? 'active' : '', 'aria-current': v.id === active ? 'page' : null,
  }, v.title, v.id === 'issues' && n ? h('span', { class: 'count' }, n) : '')));
}

const context = () => ({ db, pwa, storage, notify, session, sync: () => statusBar.sync() });

// ---- who is signed in -----------------------------------------------------------

function renderUser() {
  const others = session.users.filter((u) => u.id !== session.user);
  // Honest about what this is: the demo's sign-in, with the password every demo user shares.
  $('#user').title = `Demo sign-in: users ${session.users.map((u) => u.id).join(', ')}, password "${DEMO_PASSWORD}"`;
  $('#user').replaceChildren(
    h('span', {}, 'Signed in as ', h('strong', { id: 'user-name', 'data-user': session.user }, session.name)),
    ...others.map((u) => h('button', {
      type: 'button', class: 'switch-user', 'data-user': u.id, disabled: !db,
      title: `Sync ${session.name}'s changes, remove ${session.name}'s data from this device and sign in as ${u.name}`,
      onclick: () => switchUser(u),
    }, `Switch to ${u.name.split(' ')[0]}`)),
  );
}

/**
 * Sign-out, then sign-in as `to`: the next user's token first (so a device
 * that cannot reach the server keeps its user), then db.signOut() pushes
 * what is pending and deletes this user's database. The page reloads into
 * the next user's own database.
 */
async function switchUser(to) {
  const from = session.state;
  for (const b of document.querySelectorAll('.switch-user')) b.disabled = true;
  try {
    let next;
    try {
      next = await signIn(to.id);
    } catch (e) {
      notify(online() ? describe(e) : `connect to switch user: ${to.name} has to sign in on the server`, 'error');
      return;
    }
    // Saved before the sign-out: the other tabs reload when it lands and must find the next user.
    session.save(next);
    try {
      await db.signOut();
    } catch (e) {
      const drop = e?.code === 'unsynced' && confirm(`${e.message}\n\nSign out anyway and delete them from this device?`);
      try {
        if (!drop) throw e;
        await db.signOut({ discard: true });
      } catch (e2) {
        session.save(from);
        notify(`still signed in as ${from.name}: ${describe(e2)}`, 'error');
        return;
      }
    }
    location.reload();
  } finally {
    for (const b of document.querySelectorAll('.switch-user')) b.disabled = false;
  }
}

/** '#visits' or '#customers/<id>' (that object open for editing). */
function parseHash() {
  const [id, selected] = location.hash.slice(1).split('/');
  return { view: VIEWS.find((v) => v.id === id) || VIEWS[0], selected: selected ? decodeURIComponent(selected) : null };
}

function route() {
  const { view, selected } = parseHash();
  renderTabs(view.id);
  const el = $('#view');
  if (!db || !db.status().modelVersion) {
    current?.unmount?.();
    current = null;
    // The app shell: the view's own text and layout at once, its data when
    // the database is open and has the model. The first sync's bar and line
    // hold their space from the start, so nothing jumps as pages arrive.
    const status = !db ? h('p', { class: 'empty' }, 'Opening the database on this device…')
      : h('div', { class: 'first-sync', id: 'first-sync' },
        h('p', { class: 'empty', id: 'model-wait' }, online()
          ? 'Downloading your data from the server…'
          : 'This device has no data yet: connect once to download it. After that the app works offline.'),
        h('progress', { id: 'sync-progress', 'aria-label': 'First sync' }),
        h('p', { class: 'meta', id: 'sync-progress-line' }, '\u00a0'));
    if (view.shell) view.shell(el, context(), status);
    else el.replaceChildren(status);
    delete el.dataset.view;
    return;
  }
  current = { view, ...view.mount(el, { ...context(), selected }) };
  el.dataset.view = view.id;
  refresh();
}

const refresh = coalesce(async () => {
  statusBar?.render();
  renderTabs(current?.view.id || parseHash().view.id);
  try {
    await current?.refresh?.();
  } catch (e) {
    notify(describe(e), 'error');
  }
});

// ---- start ------------------------------------------------------------------------

let statusBar = null;
window.app = { pwa, storage, session, switchUser, version: null, notify, ready: false };

async function start(extra = {}) {
  const { user } = session;
  renderUser();
  route();
  try {
    // Imported once the shell is on screen: the page's first paint waits
    // for the few modules of the views only, not for ferry's.
    const { open } = await import('/bindings/index.js');
    db = await open({
      name: dbName(session.user), server: new URL('/sync', location).href, busyTimeout: 10_000,
      headers: session.headersFor(session.user), ...extra,
    });
  } catch (e) {
    showOpenError(e);
    return;
  }
  window.app.error = null;
  window.db = db;
  statusBar = new StatusBar($('#status'), {
    db,
    onSyncFailed: async (e) => {
      if (e?.code === 'sync_network' && db.status().pendingChanges > 0) await pwa.requestBackgroundSync();
    },
  });
  window.app.statusBar = statusBar;

  let hadModel = !!db.status().modelVersion;
  db.on('change', (d) => {
    refresh();
    // A local change made offline: have the browser wake us when it is back.
    if (!d?.sync && !online()) pwa.requestBackgroundSync();
  });
  db.on('sync', () => {
    if (!hadModel && db.status().modelVersion) { hadModel = true; route(); }
    refresh();
    renderStorageLine();
  });
  // The first sync's progress, page by page (the server does not say how much is left).
  db.on('progress', (p) => {
    if (!p?.sync || hadModel) return;
    const line = document.getElementById('sync-progress-line');
    const bar = document.getElementById('sync-progress');
    if (!line || !bar) return;
    if (p.total) { bar.max = p.total; bar.value = p.done; }
    line.textContent = p.sync === 'push' ? `${p.done} changes sent` : `${p.entity}: ${p.done} received`;
  });
  db.on('syncerror', (d) => {
    // The token was refused (expired, or the server has a new key): sign in again next time.
    if (d?.error?.code === 'sync_auth') session.forgetToken(user);
    refresh();
  });
  // This user signed out here or in another tab: start again as whoever is signed in now.
  db.on('signout', () => location.reload());
  renderUser();
  session.loadUsers().then(renderUser);
  addEventListener('hashchange', route);
  addEventListener('online', () => {
    if (!db.status().modelVersion || db.status().pendingChanges > 0) statusBar.sync();
    if (!db.status().modelVersion) route();
  });
  addEventListener('offline', () => { if (!hadModel) route(); });

  route();
  storage.persist().finally(renderStorageLine);
  renderVersion();
  pwa.ready.then(renderVersion);
  // Fresh data at start (the first start syncs inside open()).
  if (online() && hadModel) statusBar.sync();
  window.app.ready = true;
  window.ready = true;
}

/** The database did not open: say why, and for evicted storage offer to start again from the server. */
function showOpenError(e) {
  const lost = e?.code === 'storage_lost';
  const why = lost
    ? 'The browser removed this app\'s data from the device (its storage was evicted or cleared). Changes that were not synced before are gone.'
    : e?.code === 'busy'
      ? 'The database is busy in another tab of this app; close it there and reload.'
      : 'The database could not be opened on this device.';
  const again = lost ? h('button', {
    type: 'button', class: 'primary', id: 'recreate',
    onclick: () => { $('#view').replaceChildren(h('p', { class: 'empty' }, 'Starting again…')); start({ recreate: true }); },
  }, 'Start again from the server') : '';
  $('#view').replaceChildren(h('div', { class: 'card fatal', id: 'fatal', 'data-code': e?.code || 'error' },
    h('h2', {}, lost ? 'The data on this device is gone' : 'Cannot open the data'),
    h('p', {}, why), h('p', { class: 'meta' }, describe(e)), h('div', { class: 'actions' }, again)));
  window.app.error = e;
  window.ready = true;
}

start();
