// The database worker: in a browser window, ferry runs each database in a
// dedicated worker (where OPFS sync access handles exist), started by the
// writer tab (bindings/shared.js) from bindings/dist/worker.mjs, this module
// and what it imports bundled into one file (scripts/bundle-worker.mjs): a
// worker that fetched its ~25 modules one level of imports at a time took
// ~100 ms to start. It executes calls in arrival order and
// records every keyed write in the same transaction, so a call repeated after
// a writer hand-over is answered from that record instead of run twice.
import { openLocal as open } from './local.js';
import { useWasmUrl } from './core.js';
import { FerryError } from './errors.js';
import { fileReply } from './files/page.js';

let db = null;
const txs = new Map();          // txId -> { tx, done(), fail(e), owner }
let headerWaiters = new Map();
const aborts = new Map();      // abortId -> AbortController of a tab's sync({ signal })
let nextHeaderId = 1;

function post(msg) { self.postMessage(msg); }

function errorOf(e) {
  return { code: e?.code || 'error', message: e?.message || String(e), name: e?.name || 'Error' };
}

/** Asks the page for the headers() option's value (functions do not cross). */
function askHeaders() {
  const id = nextHeaderId++;
  return new Promise((resolve, reject) => {
    headerWaiters.set(id, { resolve, reject });
    post({ type: 'headers', id });
  });
}

async function recorded(key) {
  if (!key) return undefined;
  const rows = await db.query('SELECT result FROM _ferry_rpc WHERE key = ?', [key]);
  return rows.length ? JSON.parse(rows[0].result) : undefined;
}

function jsonable(r) {
  return { changes: r.changes, lastInsertRowid: typeof r.lastInsertRowid === 'bigint' ? `${r.lastInsertRowid}n` : r.lastInsertRowid };
}
function fromJson(r) {
  if (typeof r.lastInsertRowid === 'string' && r.lastInsertRowid.endsWith('n')) return { ...r, lastInsertRowid: BigInt(r.lastInsertRowid.slice(0, -1)) };
  return r;
}

const ops = {
  async open({ options }) {
    const opts = { ...options };
    if (opts.hasHeaders) opts.headers = askHeaders;
    // The page's wasm: where the app's bundler put it, wherever this worker's file went.
    if (opts.wasmUrl) useWasmUrl(opts.wasmUrl);
    delete opts.hasHeaders;
    delete opts.wasmUrl;
    db = await open(opts);
    await db.exec('CREATE TABLE IF NOT EXISTS _ferry_rpc(key TEXT PRIMARY KEY, result TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID');
    // Records only have to outlive a hand-over; a day is plenty.
    await db.exec('DELETE FROM _ferry_rpc WHERE at < ?', [Date.now() - 86_400_000]);
    for (const ev of ['change', 'sync', 'syncerror', 'progress', 'commit']) {
      db.on(ev, (detail) => post({
        type: 'event', event: ev, detail: detail?.error instanceof Error ? { ...detail, error: errorOf(detail.error) } : detail, status: db.status(),
        ...(ev === 'progress' || ev === 'sync' ? { files: db.files.status() } : {}),
      }));
    }
    return null;
  },
  async exec({ sql, params, key }) {
    const done = await recorded(key);
    if (done) return fromJson(done);
    if (!key) return db.exec(sql, params);
    return db.transaction(async (tx) => {
      const r = await tx.exec(sql, params);
      await tx.exec('INSERT INTO _ferry_rpc VALUES (?, ?, ?)', [key, JSON.stringify(jsonable(r)), Date.now()]);
      return r;
    });
  },
  query({ sql, params }) { return db.query(sql, params); },
  async txBegin({ txId, owner }) {
    let started;
    const ready = new Promise((r) => { started = r; });
    const finished = db.transaction((tx) => new Promise((done, fail) => {
      txs.set(txId, { tx, done, fail, owner });
      started();
    }));
    await ready;   // the transaction has begun: it holds the database's queue
    txs.get(txId).finished = finished.finally(() => txs.delete(txId));
    txs.get(txId).finished.catch(() => {});
    return null;
  },
  txExec({ txId, sql, params }) { return live(txId).tx.exec(sql, params); },
  txQuery({ txId, sql, params }) { return live(txId).tx.query(sql, params); },
  txNested({ txId, sql }) {
    // savepoints, issued by the page's nested tx.transaction()
    if (!/^(SAVEPOINT|RELEASE|ROLLBACK TO) ferry_psp\d+$/.test(sql)) throw new FerryError('misuse', 'not a savepoint statement');
    return live(txId).tx.exec(sql);
  },
  async txCommit({ txId, key }) {
    const t = txs.get(txId);
    if (!t) {
      // The transaction was open on a writer that is gone: it committed only if recorded.
      const done = await recorded(key);
      if (done) return null;
      throw new FerryError('busy', 'the writer changed during this transaction; it was rolled back: run it again');
    }
    await t.tx.exec('INSERT INTO _ferry_rpc VALUES (?, ?, ?)', [key, '{}', Date.now()]);
    t.done();
    await t.finished;
    return null;
  },
  async txRollback({ txId }) {
    const t = txs.get(txId);
    if (!t) return null;
    t.fail(new FerryError('misuse', 'rolled back'));
    await t.finished.catch(() => {});
    return null;
  },
  /** A tab that died with a transaction open: roll it back. */
  async abandon({ owner }) {
    for (const [, t] of txs) if (t.owner === owner) t.fail(new FerryError('busy', 'the tab that started this transaction is gone'));
    return null;
  },
  async sync({ selection, abortId }) {
    if (!abortId) return db.sync(selection);
    const ctl = new AbortController();
    aborts.set(abortId, ctl);
    try {
      return await db.sync({ ...(selection || {}), signal: ctl.signal });
    } finally {
      aborts.delete(abortId);
    }
  },
  abortSync({ abortId }) {
    aborts.get(abortId)?.abort();
    return null;
  },
  reads({ sql }) { return db.reads(sql); },
  snapshot({ sql, params }) { return db.snapshot(sql, params); },
  verify() { return db.verify(); },
  syncErrors() { return db.syncErrors(); },
  retrySyncError({ entity, id }) { return db.retrySyncError(entity, id); },
  discardSyncError({ entity, id }) { return db.discardSyncError(entity, id); },
  status() { return db.status(); },
  export() { return db.export(); },
  // db.files for the tabs (shared.js). A put repeated after a hand-over
  // stores the same bytes under the same hash and sets the same reference.
  async filesPut({ entity, id, attribute, data, type, name }) {
    return db.files.put(entity, id, attribute, data, { type, name });
  },
  filesGet({ entity, id, attribute }) { return db.files.get(entity, id, attribute); },
  filesServe({ entity, id, attribute, wait }) { return db.files.serve(entity, id, attribute, { wait }); },
  filesRemove({ entity, id, attribute }) { return db.files.remove(entity, id, attribute).then(() => null); },
  filesFlush() { return db.files.flush(); },
  async signOut({ discard }) {
    await db.signOut({ discard });
    db = null;
    return null;
  },
  async close() {
    if (db) await db.close();
    db = null;
    return null;
  },
};

/**
 * db.files.url() without the page: the service worker asks this worker
 * directly over a port the writer tab handed it (files/page.js). Each
 * request is acknowledged at once, so a service worker holding the port of
 * a worker that is gone (which answers nothing) soon asks a page instead.
 */
function serveFilesOn(port) {
  port.onmessage = async ({ data: msg }) => {
    if (msg?.type !== 'ferry:file') return;
    port.postMessage({ rid: msg.rid, ack: true });
    const reply = db ? await fileReply((entity, id, attribute) => db.files.serve(entity, id, attribute), msg)
      : { ok: false, code: 'no_db', message: 'the database is not open in its worker' };
    port.postMessage({ rid: msg.rid, ...reply });
  };
}

function live(txId) {
  const t = txs.get(txId);
  if (!t) throw new FerryError('busy', 'the writer changed during this transaction; it was rolled back: run it again');
  return t;
}

self.onmessage = async (ev) => {
  const msg = ev.data;
  if (msg.type === 'ferry:files-port') {
    if (ev.ports[0]) serveFilesOn(ev.ports[0]);
    return;
  }
  if (msg.type === 'headers-reply') {
    const w = headerWaiters.get(msg.id);
    headerWaiters.delete(msg.id);
    if (w) (msg.ok ? w.resolve(msg.value) : w.reject(new FerryError('sync_auth', msg.error?.message || 'headers() failed')));
    return;
  }
  const { id, op, args } = msg;
  try {
    if (!ops[op]) throw new FerryError('misuse', `unknown operation ${op}`);
    if (op !== 'open' && !db) throw new FerryError('closed', 'the database is not open in its worker');
    const value = await ops[op](args || {});
    post({ type: 'reply', id, ok: true, value, status: db ? db.status() : null, files: db?.files.status() });
    // After the reply, so the caller's tab learns the outcome before its handle closes.
    if (op === 'signOut') post({ type: 'gone' });
  } catch (e) {
    post({ type: 'reply', id, ok: false, error: errorOf(e), status: db && !db.status().closed ? db.status() : null });
  }
};
post({ type: 'ready' });
