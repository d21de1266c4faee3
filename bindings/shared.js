// One writer per database for all tabs of an origin. Every tab asks for the
// Web Lock `ferry-writer:<name>`; the holder runs the database in a dedicated
// worker (bindings/worker.js) and serves the other tabs over a
// BroadcastChannel. When the writer's tab closes, the lock passes to another
// tab, which starts its own worker and announces itself; calls in flight are
// sent again, and writes carry keys the worker records in the same
// transaction, so a repeated write is answered, not applied twice.
import { FerryError } from './errors.js';
import { Listeners } from './events.js';
import { clearMark } from './lost.js';
import { fileUrl, serveFilesToWorker } from './files/page.js';
import { LiveQueries } from './watch.js';
import { wasmHref } from './core.js';


function restoreError(e) {
  return new FerryError(e?.code || 'error', e?.message || 'failed in the database worker');
}

function randomId() {
  return globalThis.crypto?.randomUUID?.() || `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// Bumped (in localStorage, which every tab of the origin sees at once) when
// a database is signed out: a tab opened before that must not take over as
// writer and bring the deleted database back.
const genKey = (name) => `ferry-gen-${name}`;
function generation(name) {
  try { return globalThis.localStorage?.getItem(genKey(name)) || '0'; } catch { return '0'; }
}
function bumpGeneration(name) {
  try { globalThis.localStorage?.setItem(genKey(name), String(Number(generation(name)) + 1)); } catch { /* best effort */ }
}

export function sharedAvailable() {
  return typeof globalThis.Worker === 'function' && typeof globalThis.BroadcastChannel === 'function'
    && !!globalThis.navigator?.locks && typeof globalThis.document === 'object';
}

export class SharedDatabase {
  #opts; #tab = randomId(); #seq = 0; #pending = new Map(); #listeners = new Listeners();
  #channel; #worker = null; #leader = false; #closed = false; #status;
  #release = null; #releaseTab = null; #ready; #readyResolve; #readyReject; #watch = new Map();
  #storageKind = null; #gen; #goneResolve; #gonePromise;
  #files = { uploads: 0, downloads: 0, failed: 0, active: 0, bytesDone: 0, bytesTotal: 0 }; #unserve = () => {};
  // Live queries of this tab: the worker names the tables and numbers the
  // commits, its 'commit' events (to every tab) make them re-run.
  #live = new LiveQueries({
    reads: (sql) => this.#call('reads', { sql }),
    snapshot: (sql, params) => this.#call('snapshot', { sql, params }),
  });

  constructor(opts) {
    this.#opts = opts;
    this.name = opts.name;
    this.#status = { pendingChanges: 0, lastSyncAt: null, modelVersion: null, syncErrors: 0, clientId: null, storage: null, closed: false };
    this.#ready = new Promise((res, rej) => { this.#readyResolve = res; this.#readyReject = rej; });
    this.#ready.catch(() => {});
    this.#gen = generation(opts.name);
    this.#gonePromise = new Promise((r) => { this.#goneResolve = r; });
    this.files = this.#filesApi();
  }

  /** db.files (bindings/files/api.js) for every tab: the writer's worker holds the file store and the queue. */
  #filesApi() {
    const args = (entity, id, attribute) => ({ entity, id, attribute });
    return {
      put: async (entity, id, attribute, data, { type = '', name = '' } = {}) => {
        // A stream cannot cross to the worker (nor over the channel to another tab's): it goes as a Blob.
        if (data instanceof ArrayBuffer) data = new Uint8Array(data);
        else if (data && typeof data.getReader === 'function') data = await new Response(data).blob();
        else if (!(data instanceof Uint8Array) && !(data instanceof Blob) && data && typeof data[Symbol.asyncIterator] === 'function') {
          const parts = [];
          for await (const c of data) parts.push(c);
          data = new Blob(parts);
        }
        return this.#call('filesPut', { ...args(entity, id, attribute), data, type, name });
      },
      get: async (entity, id, attribute, { stream = false } = {}) => {
        const blob = await this.#call('filesGet', args(entity, id, attribute));
        return stream && blob ? blob.stream() : blob;
      },
      url: (entity, id, attribute) => fileUrl(this.name, entity, id, attribute),
      remove: (entity, id, attribute) => this.#call('filesRemove', args(entity, id, attribute)),
      status: () => ({ ...this.#files }),
      flush: async () => {
        this.#files = await this.#call('filesFlush', {});
        return { ...this.#files };
      },
      serve: (entity, id, attribute, { wait } = {}) => this.#call('filesServe', { ...args(entity, id, attribute), wait }),
    };
  }

  /** Joins the database's tabs; resolves once a writer (this tab or another) serves it. */
  async start() {
    const { name } = this.#opts;
    this.#channel = new BroadcastChannel(`ferry:${name}`);
    this.#channel.onmessage = (ev) => this.#fromChannel(ev.data);
    // Held for this tab's life: the writer watches it to roll back a
    // transaction a closed tab left open.
    await new Promise((granted) => {
      navigator.locks.request(`ferry-tab:${this.#tab}`, () => {
        granted();
        return new Promise((r) => { this.#releaseTab = r; });
      });
    });
    navigator.locks.request(`ferry-writer:${name}`, () => {
      if (this.#closed) return null;
      if (generation(name) !== this.#gen) {
        this.#gone();
        this.#readyReject(new FerryError('closed', `database '${name}' was signed out in another tab; open it again`));
        return null;
      }
      return this.#lead();
    })
      .catch((e) => this.#readyReject(e));
    this.#channel.postMessage({ type: 'who' });
    const timeout = this.#opts.openTimeout ?? 30_000;
    const timer = setTimeout(() => this.#readyReject(new FerryError('busy', `no tab could open '${name}' within ${timeout} ms`)), timeout);
    try {
      await this.#ready;
    } finally {
      clearTimeout(timer);
    }
    await this.#call('status', {}).then((s) => this.#setStatus(s)).catch(() => {});
    this.#unserve = serveFilesToWorker(this.name, (entity, id, attribute) => this.files.serve(entity, id, attribute), { port: () => this.#filesPort() });
    return this;
  }

  // ---- the writer -----------------------------------------------------------

  async #lead() {
    const worker = new Worker(new URL('./dist/worker.mjs', import.meta.url), { type: 'module', name: `ferry:${this.name}` });
    this.#worker = worker;
    worker.onmessage = (ev) => this.#fromWorker(ev.data);
    worker.onerror = (ev) => this.#readyReject(new FerryError('error', `the database worker failed to start: ${ev.message || 'unknown error'}`));
    const options = { ...this.#opts, hasHeaders: typeof this.#opts.headers === 'function', wasmUrl: wasmHref() };
    for (const k of ['headers', 'fetch', 'indexedDB', 'faults', 'wrapFile']) delete options[k];
    const held = new Promise((r) => { this.#release = r; });
    try {
      await this.#direct({ id: `${this.#tab}:open`, op: 'open', args: { options } });
    } catch (e) {
      this.#channel.postMessage({ type: 'failed', error: { code: e.code, message: e.message } });
      this.#readyReject(e);
      worker.terminate();
      this.#worker = null;
      return undefined;
    }
    this.#leader = true;
    // The service worker asks the new writer's worker for device files from now on (it forgets the old one's port).
    const port = this.#filesPort();
    if (port) navigator.serviceWorker?.controller?.postMessage({ type: 'ferry:files-port', db: this.name }, [port]);
    this.#readyResolve();
    this.#channel.postMessage({ type: 'hello', leader: this.#tab });
    // Our own calls that waited for a writer go to the worker now.
    for (const [id, p] of this.#pending) if (!p.local) worker.postMessage({ id, op: p.op, args: p.args });
    return held;   // the lock is held until close() (or the tab goes)
  }

  /** A MessagePort on which this tab's database worker answers the service worker's file requests; null when this tab is not the writer. */
  #filesPort() {
    if (!this.#leader || !this.#worker || typeof MessageChannel !== 'function') return null;
    const channel = new MessageChannel();
    this.#worker.postMessage({ type: 'ferry:files-port' }, [channel.port1]);
    return channel.port2;
  }

  #direct(msg) {
    return new Promise((resolve, reject) => {
      this.#pending.set(msg.id, { ...msg, resolve, reject, local: true });
      this.#worker.postMessage(msg);
    });
  }

  #fromWorker(msg) {
    if (msg.type === 'reply') {
      this.#setStatus(msg.status, msg.files);
      const mine = this.#pending.get(msg.id);
      if (mine) {
        this.#pending.delete(msg.id);
        if (msg.ok) mine.resolve(msg.value); else mine.reject(restoreError(msg.error));
      } else {
        this.#channel.postMessage({ type: 'reply', id: msg.id, ok: msg.ok, value: msg.value, error: msg.error, status: msg.status, files: msg.files });
      }
    } else if (msg.type === 'event') {
      this.#setStatus(msg.status, msg.files);
      this.#channel.postMessage(msg);
      this.#emit(msg.event, msg.detail);
    } else if (msg.type === 'gone') {
      // The worker signed out and deleted the database (its reply went first).
      this.#channel.postMessage({ type: 'gone' });
      bumpGeneration(this.name);
      clearMark(this.name);
      this.#gone();
    } else if (msg.type === 'headers') {
      Promise.resolve().then(() => this.#opts.headers())
        .then((value) => this.#worker?.postMessage({ type: 'headers-reply', id: msg.id, ok: true, value }))
        .catch((e) => this.#worker?.postMessage({ type: 'headers-reply', id: msg.id, ok: false, error: { message: e?.message || String(e) } }));
    }
  }

  /** Rolls back what a tab left open once its tab lock is free (the tab is gone). */
  #watchTab(tab) {
    if (this.#watch.has(tab) || tab === this.#tab) return;
    const ctl = new AbortController();
    this.#watch.set(tab, ctl);
    navigator.locks.request(`ferry-tab:${tab}`, { signal: ctl.signal }, () => {
      this.#watch.delete(tab);
      this.#worker?.postMessage({ id: `${this.#tab}:abandon:${tab}`, op: 'abandon', args: { owner: tab } });
    }).catch(() => {});
  }

  // ---- every tab --------------------------------------------------------------

  #fromChannel(msg) {
    switch (msg.type) {
      case 'who':
        if (this.#leader) this.#channel.postMessage({ type: 'hello', leader: this.#tab });
        break;
      case 'hello':
        if (this.#leader) break;
        this.#readyResolve();
        // A new writer numbers its commits afresh, and one may have gone unreported.
        queueMicrotask(() => this.#live.rerunAll());
        // A new writer: calls it has not answered go again. Writes are keyed;
        // transaction steps other than commit cannot survive a new writer.
        for (const [id, p] of this.#pending) {
          if (p.op.startsWith('tx') && p.op !== 'txBegin' && p.op !== 'txCommit' && p.sent) {
            this.#pending.delete(id);
            p.reject(new FerryError('busy', 'the writer changed during this transaction; it was rolled back: run it again'));
          } else {
            p.sent = true;
            this.#channel.postMessage({ type: 'req', from: this.#tab, id, op: p.op, args: p.args });
          }
        }
        break;
      case 'failed':
        if (!this.#leader) this.#readyReject(restoreError(msg.error));
        break;
      case 'req':
        if (!this.#leader) break;
        this.#watchTab(msg.from);
        this.#worker.postMessage({ id: msg.id, op: msg.op, args: msg.args });
        break;
      case 'reply': {
        const p = this.#pending.get(msg.id);
        if (!p) break;
        this.#pending.delete(msg.id);
        this.#setStatus(msg.status, msg.files);
        if (msg.ok) p.resolve(msg.value); else p.reject(restoreError(msg.error));
        break;
      }
      case 'event':
        this.#setStatus(msg.status, msg.files);
        this.#emit(msg.event, msg.detail);
        break;
      case 'gone':
        if (!this.#leader) this.#gone();
        break;
      default:
    }
  }

  #call(op, args) {
    if (this.#closed) return Promise.reject(new FerryError('closed', `database '${this.name}' is closed; open it again`));
    const id = `${this.#tab}:${++this.#seq}`;
    if (op === 'exec' && !this.#leader) args = { ...args, key: id };
    return new Promise((resolve, reject) => {
      const p = { op, args, resolve, reject, sent: false };
      this.#pending.set(id, p);
      if (this.#leader) {
        this.#worker.postMessage({ id, op, args });
      } else {
        p.sent = true;
        this.#channel.postMessage({ type: 'req', from: this.#tab, id, op, args });
      }
    });
  }

  /** status: the database's (db.status()); files: db.files.status(); each as the worker last sent it. */
  #setStatus(s, files) {
    if (files) this.#files = files;
    if (!s) return;
    this.#status = { ...this.#status, ...s };
    if (s.storage) this.#storageKind = s.storage;
  }

  #emit(event, detail) {
    if (event === 'syncerror' && detail?.error) detail = { ...detail, error: restoreError(detail.error) };
    if (event === 'commit') this.#live.changed(detail.tables, detail.epoch, detail.seq);
    this.#listeners.emit(event, detail);
  }

  // ---- the Database API ---------------------------------------------------------

  exec(sql, params) { return this.#call('exec', { sql, params }); }
  query(sql, params) { return this.#call('query', { sql, params }); }

  async transaction(fn) {
    if (typeof fn !== 'function') throw new FerryError('misuse', 'transaction(fn) needs a function');
    const txId = `${this.#tab}:tx${++this.#seq}`;
    await this.#call('txBegin', { txId, owner: this.#tab });
    let savepoints = 0;
    let ended = false;
    const check = () => { if (ended) throw new FerryError('misuse', 'this transaction has ended; use db, or start a new transaction'); };
    const tx = {
      exec: async (sql, params) => { check(); return this.#call('txExec', { txId, sql, params }); },
      query: async (sql, params) => { check(); return this.#call('txQuery', { txId, sql, params }); },
      transaction: async (inner) => {
        check();
        const sp = `ferry_psp${++savepoints}`;
        await this.#call('txNested', { txId, sql: `SAVEPOINT ${sp}` });
        try {
          const r = await inner(tx);
          await this.#call('txNested', { txId, sql: `RELEASE ${sp}` });
          return r;
        } catch (e) {
          await this.#call('txNested', { txId, sql: `ROLLBACK TO ${sp}` }).catch(() => {});
          await this.#call('txNested', { txId, sql: `RELEASE ${sp}` }).catch(() => {});
          throw e;
        }
      },
    };
    let result;
    try {
      result = await fn(tx);
    } catch (e) {
      ended = true;
      await this.#call('txRollback', { txId }).catch(() => {});
      throw e;
    }
    ended = true;
    await this.#call('txCommit', { txId, key: `${txId}:commit` });
    return result;
  }

  /** db.sync(selection) in the writer's worker; a signal (which cannot cross) aborts it there through an 'abortSync' call. */
  sync(selection) {
    const signal = selection?.signal;
    if (!signal) return this.#call('sync', { selection });
    if (signal.aborted) return Promise.reject(new FerryError('aborted', 'the sync was aborted before it started; pending changes stay pending'));
    const abortId = randomId();
    const onAbort = () => this.#call('abortSync', { abortId }).catch(() => {});
    signal.addEventListener('abort', onAbort, { once: true });
    const { signal: _, ...rest } = selection;
    return this.#call('sync', { selection: rest, abortId }).finally(() => signal.removeEventListener('abort', onAbort));
  }

  /** A live query (Database.watch): re-runs after every commit, in any tab, that changed a table it reads. */
  watch(sql, params, callback) {
    if (this.#closed) throw new FerryError('closed', `database '${this.name}' is closed; open it again`);
    return this.#live.watch(sql, params, callback);
  }
  verify() { return this.#call('verify', {}); }
  /** The database as one SQLite file (a Blob), made in the worker and handed over without a copy. */
  export() { return this.#call('export', {}); }
  syncErrors() { return this.#call('syncErrors', {}); }
  retrySyncError(entity, id) {
    if (entity && typeof entity === 'object') ({ entity, id } = entity);
    return this.#call('retrySyncError', { entity, id });
  }
  discardSyncError(entity, id) {
    if (entity && typeof entity === 'object') ({ entity, id } = entity);
    return this.#call('discardSyncError', { entity, id });
  }

  /** The last known status (updated with every reply and event). `writer` says whether this tab holds the database. */
  status() {
    return { ...this.#status, storage: this.#storageKind || this.#status.storage, closed: this.#closed, writer: this.#leader };
  }

  on(event, fn) {
    return this.#listeners.on(event, fn);
  }

  /**
   * Database.signOut() for every tab: the writer's worker syncs what is
   * pending, closes and deletes the database; then every tab's handle is
   * closed and emits 'signout'. Refused with 'unsynced' as there.
   */
  async signOut({ discard = false } = {}) {
    await this.#call('signOut', { discard: !!discard });
    await this.#gonePromise;
  }

  /** The database was signed out (here or in another tab): this handle is closed. */
  #gone() {
    if (this.#closed) return;
    // The writer lock can reach this tab before the writer's reply on the
    // channel does: a sign-out waiting here has its outcome, not 'closed'.
    for (const [id, p] of this.#pending) {
      if (p.op === 'signOut') { this.#pending.delete(id); p.resolve(); }
    }
    this.#shutdown();
    this.#goneResolve();
    this.#emit('signout', { name: this.name });
  }

  /** Closes this tab's use of the database; the writer tab also closes its worker and hands over. */
  async close() {
    if (this.#closed) return;
    if (this.#leader) await this.#call('close', {}).catch(() => {});
    this.#shutdown();
  }

  #shutdown() {
    if (this.#closed) return;
    this.#live.close();
    this.#worker?.terminate();
    this.#worker = null;
    this.#closed = true;
    this.#leader = false;
    this.#unserve();
    for (const [, ctl] of this.#watch) ctl.abort();
    for (const [, p] of this.#pending) p.reject(new FerryError('closed', `database '${this.name}' was closed`));
    this.#pending.clear();
    this.#release?.();
    this.#releaseTab?.();
    this.#channel.close();
  }
}
