// The Database object of DESIGN.md §1: a queue of calls on one core handle.
// Calls run one at a time in the order made; a call that commits resolves
// only once its store has made the commit durable.
import { FerryError } from './errors.js';
import { encodeParams, decodeRows } from './codec.js';

const EVENTS = new Set(['change', 'sync', 'syncerror']);

export class Database {
  #core; #handle; #storage; #tail = Promise.resolve(); #closed = false;
  #listeners = new Map(); #depth = 0; #reopen;

  constructor(core, storage, reopen) {
    this.#core = core;
    this.#storage = storage;
    this.#handle = storage.handle;
    this.#reopen = reopen;
    this.name = storage.name;
  }

  /** Runs one statement (or a script without parameters). -> { changes, lastInsertRowid } */
  exec(sql, params) {
    return this.#enqueue(() => this.#exec(sql, params));
  }

  /** Runs a query. -> [{ column: value, … }] */
  query(sql, params) {
    return this.#enqueue(() => this.#query(sql, params));
  }

  /**
   * Runs fn(tx) in one transaction: committed and durable when the promise
   * resolves, rolled back when fn throws. tx.transaction(fn) nests inside
   * the same transaction (a savepoint, rolled back alone if it throws).
   * Inside fn use tx, not db: db's calls wait for the transaction to end.
   */
  transaction(fn) {
    if (typeof fn !== 'function') return Promise.reject(new FerryError('misuse', 'transaction(fn) needs a function'));
    return this.#enqueue(() => this.#transaction(fn));
  }

  status() {
    return {
      pendingChanges: 0,
      lastSyncAt: null,
      modelVersion: null,
      storage: this.#storage.kind,
      closed: this.#closed,
    };
  }

  on(event, fn) {
    if (!EVENTS.has(event)) throw new FerryError('misuse', `unknown event '${event}'; use change, sync or syncerror`);
    if (typeof fn !== 'function') throw new FerryError('misuse', 'on(event, fn) needs a function');
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(fn);
    return () => this.#listeners.get(event)?.delete(fn);
  }

  /** Closes the database after the calls already made; later calls fail with 'closed'. */
  close() {
    if (this.#closed) return this.#tail;
    const done = this.#enqueue(async () => {
      this.#closed = true;
      try { await this.#storage.flush?.(); } finally {
        this.#core.close(this.#handle);
        this.#handle = 0;
        this.#storage.release?.();
      }
    });
    this.#closing = true;
    return done;
  }
  #closing = false;

  // ---- internals ----------------------------------------------------------

  #emit(event, detail) {
    for (const fn of this.#listeners.get(event) || []) {
      try { fn(detail); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }

  #enqueue(task) {
    if (this.#closed || this.#closing) {
      return Promise.reject(new FerryError('closed', `database '${this.name}' is closed; open it again`));
    }
    const run = this.#tail.then(task);
    this.#tail = run.catch(() => {});
    return run;
  }

  #checkSql(sql) {
    if (typeof sql !== 'string') throw new FerryError('type', `SQL must be a string, not ${sql === null ? 'null' : typeof sql}`);
  }

  /** Runs on the core now (the caller holds the queue). */
  #run(sql, params, wantRows) {
    this.#checkSql(sql);
    if (!this.#handle) throw new FerryError('closed', `database '${this.name}' is closed; open it again`);
    const encoded = encodeParams(params);
    return this.#core.run(this.#handle, sql, encoded, wantRows);
  }

  /** Waits until the store has made every commit so far durable. A store
   * that failed is reloaded from what it holds, so memory never runs ahead
   * of storage, and the failure is thrown. */
  async #durable() {
    if (!this.#storage.flush) return;
    try {
      await this.#storage.flush();
    } catch (e) {
      await this.#recover();
      const code = e instanceof FerryError ? e.code : (e?.name === 'QuotaExceededError' ? 'storage_full' : 'io');
      throw new FerryError(code, `the commit did not reach storage (${e?.message || e}); the database holds the last durable commit`, { cause: e });
    }
  }

  async #recover() {
    this.#core.close(this.#handle);
    this.#handle = 0;
    this.#storage.release?.();
    this.#storage = await this.#reopen();
    this.#handle = this.#storage.handle;
  }

  async #exec(sql, params) {
    let r;
    try {
      r = this.#run(sql, params, false);
    } finally {
      if (this.#depth === 0) await this.#durable();
    }
    if (r.changes > 0 && this.#depth === 0) this.#emit('change', { changes: r.changes });
    return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
  }

  async #query(sql, params) {
    let r;
    try {
      r = this.#run(sql, params, true);
      return decodeRows(r.out).rows;
    } finally {
      if (this.#depth === 0) await this.#durable();
    }
  }

  async #transaction(fn) {
    const tx = this.#txApi();
    this.#run('BEGIN IMMEDIATE', null, false);
    this.#depth = 1;
    let result, changes = 0;
    try {
      result = await fn(tx);
      if (!this.#core.inTransaction(this.#handle)) {
        throw new FerryError('misuse', 'the transaction was ended inside its callback (COMMIT/ROLLBACK); let transaction() end it');
      }
      this.#run('COMMIT', null, false);
      changes = tx.changes;
    } catch (e) {
      if (this.#handle && this.#core.inTransaction(this.#handle)) {
        try { this.#run('ROLLBACK', null, false); } catch { /* the error that got us here matters */ }
      }
      throw e;
    } finally {
      this.#depth = 0;
      tx.done = true;
      await this.#durable();
    }
    if (changes > 0) this.#emit('change', { changes });
    return result;
  }

  #txApi() {
    const self = this;
    let savepoints = 0;
    const tx = {
      done: false,
      changes: 0,
      check() {
        if (tx.done) throw new FerryError('misuse', 'this transaction has ended; use db, or start a new transaction');
      },
      async exec(sql, params) {
        tx.check();
        const r = self.#run(sql, params, false);
        tx.changes += r.changes;
        return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
      },
      async query(sql, params) {
        tx.check();
        return decodeRows(self.#run(sql, params, true).out).rows;
      },
      async transaction(fn) {
        tx.check();
        const sp = `ferry_sp${++savepoints}`;
        self.#run(`SAVEPOINT ${sp}`, null, false);
        try {
          const r = await fn(tx);
          self.#run(`RELEASE ${sp}`, null, false);
          return r;
        } catch (e) {
          if (self.#core.inTransaction(self.#handle)) {
            self.#run(`ROLLBACK TO ${sp}`, null, false);
            self.#run(`RELEASE ${sp}`, null, false);
          }
          throw e;
        }
      },
    };
    return tx;
  }
}
