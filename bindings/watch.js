// Live queries (db.watch) for Database and SharedDatabase alike. A watcher
// knows which tables its query reads (from SQLite's authorizer, via the
// host's reads()), and re-runs when a commit changed one of them. Commits are
// numbered by the database that made them (seq, within its epoch): a run's
// result says which commit it saw, so a change the run already includes
// causes no second run, and one it missed causes exactly one more.
import { FerryError } from './errors.js';

function asFerryError(e) {
  return e instanceof FerryError ? e : new FerryError('error', e?.message || String(e), { cause: e });
}

class Watcher {
  constructor(live, sql, params, deliver) {
    this.live = live;
    this.sql = sql;
    this.params = params;
    this.deliver = deliver;     // (rows, error) -> void
    this.tables = null;         // Set of names once known
    this.inflight = false;
    this.want = null;           // { epoch, seq } of the newest commit it must see
    this.closed = false;
  }

  async start() {
    try {
      this.tables = new Set(await this.live.host.reads(this.sql));
    } catch (e) {
      // SQL that does not prepare (or writes) never will: the watcher ends.
      this.fail(e);
      this.stop();
      return;
    }
    this.run();
  }

  /** A commit changed `tables` (null: any table). */
  changed(tables, epoch, seq) {
    if (this.closed) return;
    if (this.tables && tables && !tables.some((t) => this.tables.has(t))) return;
    if (!this.want || this.want.epoch !== epoch || seq > this.want.seq) this.want = { epoch, seq };
    if (this.tables && !this.inflight) this.run();
  }

  async run() {
    if (this.closed) return;
    this.inflight = true;
    let result;
    try {
      result = await this.live.host.snapshot(this.sql, this.params);
    } catch (e) {
      this.inflight = false;
      this.fail(e);
      return;
    }
    this.inflight = false;
    if (this.closed) return;
    this.call(result.rows, undefined);
    // A change the run did not see (a later commit of the same database).
    const w = this.want;
    if (w && w.epoch === result.epoch && w.seq > result.seq) this.run();
  }

  fail(e) {
    if (this.closed) return;
    this.call(undefined, asFerryError(e));
  }

  call(rows, error) {
    try {
      this.deliver(rows, error);
    } catch (e) {
      // The app's callback failed: its error surfaces, the watcher goes on.
      queueMicrotask(() => { throw e; });
    }
  }

  stop() {
    if (this.closed) return;
    this.closed = true;
    this.live.watchers.delete(this);
    this.onStop?.();
  }
}

/**
 * host: { reads(sql) -> Promise<string[]>, snapshot(sql, params) -> Promise<{ rows, epoch, seq }> }.
 * changed(tables, epoch, seq) tells every watcher of a commit.
 */
export class LiveQueries {
  constructor(host) {
    this.host = host;
    this.watchers = new Set();
  }

  /**
   * watch(sql, params, callback) -> unsubscribe(); watch(sql, params) -> an
   * async iterable of result rows (the newest result when the loop is slow),
   * which unsubscribes when the loop ends. Errors reach the callback as its
   * second argument, or are thrown by the iterator, as FerryError.
   */
  watch(sql, params, callback) {
    if (typeof params === 'function' && callback === undefined) { callback = params; params = undefined; }
    if (typeof sql !== 'string') throw new FerryError('type', `watch() takes SQL as a string, not ${sql === null ? 'null' : typeof sql}`);
    if (callback !== undefined && typeof callback !== 'function') throw new FerryError('misuse', 'watch(sql, params, callback): callback must be a function');
    if (callback) {
      const w = new Watcher(this, sql, params, callback);
      this.watchers.add(w);
      w.start();
      return () => w.stop();
    }
    return this.#iterable(sql, params);
  }

  #iterable(sql, params) {
    const live = this;
    return {
      [Symbol.asyncIterator]() {
        let latest = null;           // { rows } or { error } not yet taken
        let wake = null;
        let w = null;
        const take = () => {
          const v = latest;
          latest = null;
          if (v.error) { w.stop(); return Promise.reject(v.error); }
          return Promise.resolve({ value: v.rows, done: false });
        };
        w = new Watcher(live, sql, params, (rows, error) => {
          latest = error ? { error } : { rows };
          if (wake) { const r = wake; wake = null; r(); }
        });
        w.onStop = () => { if (wake) { const r = wake; wake = null; r(); } };
        live.watchers.add(w);
        w.start();
        return {
          next() {
            if (latest) return take();
            if (w.closed) return Promise.resolve({ value: undefined, done: true });
            return new Promise((resolve) => { wake = resolve; }).then(() => (latest ? take() : { value: undefined, done: true }));
          },
          return() {
            latest = null;
            w.stop();
            return Promise.resolve({ value: undefined, done: true });
          },
        };
      },
    };
  }

  changed(tables, epoch, seq) {
    for (const w of [...this.watchers]) w.changed(tables, epoch, seq);
  }

  /** Every watcher runs again (the database behind it changed hands). */
  rerunAll() {
    for (const w of [...this.watchers]) if (w.tables && !w.inflight) w.run();
  }

  /** Ends every watcher (the database closed): iterators finish. */
  close() {
    for (const w of [...this.watchers]) w.stop();
  }
}
