// The Database object (README, Use): a queue of calls on one core handle.
// Calls run one at a time in the order made; a call that commits resolves
// only once its store has made the commit durable.
import { FerryError } from './errors.js';
import { encodeParams, decodeRows } from './codec.js';
import { CoreSync } from './core.js';
import { SyncRunner } from './sync.js';
import { Listeners } from './events.js';
import { deleteStorage } from './delete.js';
import { clearMark } from './lost.js';
import { Files, DISCARDED } from './files/api.js';
import { LiveQueries } from './watch.js';
import { exportImage } from './image.js';

// Without open({ pullSlice }), a step of a pull page (parsing and checking
// objects, or applying them in one transaction) ends after this long, or at
// this many objects.
const PULL_STEP_MS = 4;
const PULL_STEP_MAX_OBJECTS = 5000;

export class Database {
  #core; #handle; #storage; #tail = Promise.resolve(); #closed = false; #closing = false;
  #listeners = new Listeners(); #depth = 0; #reopen;
  #engine = null; #runner = null; #offOnline = null; #where; #pullSlice;
  // Commits are numbered within this object's life (its epoch) for live queries.
  #epoch = Math.random().toString(36).slice(2); #seq = 0;
  #live = new LiveQueries({ reads: (sql) => this.reads(sql), snapshot: (sql, params) => this.snapshot(sql, params) });

  constructor(core, storage, reopen, opts = {}) {
    this.#core = core;
    this.#storage = storage;
    this.#handle = storage.handle;
    this.#reopen = reopen;
    this.name = storage.name;
    this.#where = { path: opts.path, indexedDB: opts.indexedDB, busyTimeout: opts.busyTimeout };
    if (opts.server) {
      if (typeof opts.server !== 'string') throw new FerryError('misuse', 'server must be the sync endpoint URL, e.g. http://127.0.0.1:8080/sync');
      const fetchFn = opts.fetch || globalThis.fetch?.bind(globalThis);
      if (typeof fetchFn !== 'function') throw new FerryError('unsupported', 'no fetch here: pass open({ fetch })');
      if (opts.pullSlice !== undefined && !(Number.isInteger(opts.pullSlice) && opts.pullSlice >= 0)) {
        throw new FerryError('type', 'pullSlice is a whole number of objects (0: a whole pull page per transaction; leave it out for steps sized by time)');
      }
      this.#pullSlice = opts.pullSlice;
      this.#engine = this.#newEngine(core);
      this.#runner = new SyncRunner({
        // write: true, false, or a function of the step's result saying
        // whether what it wrote must be durable before the next step.
        step: (fn, write = true) => this.#enqueue(async () => {
          const r = fn(this.#engine);
          if (typeof write === 'function' ? write(r) : write) await this.#durable();
          return r;
        }),
        emit: (event, detail) => this.#emit(event, detail),
      }, { ...opts, fetch: fetchFn });
      this.#autoSync(opts);
    }
    this.files = new Files({
      core,
      kind: storage.kind,
      path: opts.path,
      name: opts.name,
      query: (sql, params) => this.#enqueue(() => this.#query(sql, params)),
      transaction: (fn) => this.transaction(fn),
      engine: (fn) => this.#enqueue(async () => {
        if (!this.#engine) throw new FerryError('misuse', 'this database has no server; open it with { server }');
        const r = fn(this.#engine);
        await this.#durable();
        return r;
      }),
      emit: (event, detail) => this.#emit(event, detail),
    }, { ...opts, fetch: opts.fetch || globalThis.fetch?.bind(globalThis) });
    // Uploads left from before a restart (or a crash) go on by themselves.
    if (this.#runner) this.files.kick();
  }

  /**
   * Pushes pending local changes, then pulls the server's changes (all, or
   * the selection { entities, objects }). -> { pushed, pulled, conflicts, errors, ms }
   * Calls made while a sync runs share it.
   */
  sync(selection) {
    if (this.#closed || this.#closing) return Promise.reject(new FerryError('closed', `database '${this.name}' is closed; open it again`));
    if (!this.#runner) return Promise.reject(new FerryError('misuse', 'this database has no server; open it with { server }'));
    return this.#runner.sync(selection);
  }

  /**
   * Syncs, then compares per-entity digests of what this device holds with
   * the server's digests of what its user may see (objects with pending
   * changes or sync errors left out), and pulls again by id every object
   * that differs, is missing or is extra; pending changes are untouched.
   * -> { ok, repaired, entities: [{ entity, ok, repaired }], ms }
   */
  async verify() {
    if (this.#closed || this.#closing) throw new FerryError('closed', `database '${this.name}' is closed; open it again`);
    if (!this.#runner) throw new FerryError('misuse', 'this database has no server; open it with { server }');
    const r = await this.#runner.sync(undefined, { verify: true });
    const entities = r.verified || [];
    const repaired = entities.reduce((n, e) => n + e.repaired, 0);
    return { ok: entities.every((e) => e.ok), repaired, entities, ms: r.ms };
  }

  /** Conflicting and rejected local objects, with their local values kept. */
  async syncErrors() {
    const objects = await this.#enqueue(async () => (this.#engine ? this.#engine.errors() : []));
    return [...objects, ...(this.#engine ? await this.files.errors() : [])];
  }

  /** Queues the object's local values again (they win as the latest write). */
  retrySyncError(entity, id) {
    return this.#resolveError('retry', entity, id);
  }

  /** Drops the error; the server's state of the object comes with the next sync. */
  discardSyncError(entity, id) {
    return this.#resolveError('discard', entity, id);
  }

  #resolveError(how, entity, id) {
    if (entity && typeof entity === 'object') ({ entity, id } = entity);
    if (typeof entity !== 'string' || typeof id !== 'string') {
      return Promise.reject(new FerryError('type', `${how}SyncError(entity, id) takes two strings`));
    }
    return this.#enqueue(async () => {
      if (!this.#engine) throw new FerryError('not_found', 'this database has no sync errors (no server)');
      const objectError = this.#engine.errors().some((e) => e.entity === entity && e.id === id);
      if (objectError) {
        this.#engine[how](entity, id);
        await this.#durable();
      }
      return objectError;
    }).then(async (objectError) => {
      // The object's file errors go with it (they are listed in syncErrors() too).
      const files = await this.files.resolve(how, entity, id);
      if (!objectError && !files) throw new FerryError('not_found', `no sync error for ${entity} ${id}`);
      this.#emit('change', { sync: true });
    });
  }

  #autoSync(opts) {
    const online = () => globalThis.navigator?.onLine !== false;
    const run = () => this.sync().catch(() => { /* reported through the syncerror event */ });
    // Sync at first start, so a new device gets its data without being asked.
    if (opts.syncOnOpen !== false && online() && this.#engine.status().lastSyncAt == null) queueMicrotask(run);
    if (opts.syncOnOnline !== false && typeof globalThis.addEventListener === 'function') {
      const onOnline = () => {
        if (!this.#closed && !this.#closing && this.#engine.status().pendingChanges > 0) run();
      };
      globalThis.addEventListener('online', onOnline);
      this.#offOnline = () => globalThis.removeEventListener('online', onOnline);
    }
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
    const sync = this.#engine && this.#handle ? this.#engine.status() : null;
    return {
      pendingChanges: sync ? sync.pendingChanges : 0,
      lastSyncAt: sync && sync.lastSyncAt != null ? new Date(sync.lastSyncAt) : null,
      modelVersion: sync ? sync.modelVersion : null,
      syncErrors: sync ? sync.errors : 0,
      clientId: sync ? sync.clientId : null,
      storage: this.#storage.kind,
      created: !!this.#storage.created,
      closed: this.#closed,
    };
  }

  on(event, fn) {
    return this.#listeners.on(event, fn);
  }

  /**
   * The database as last committed, as one plain SQLite file (a Uint8Array
   * in Node, a Blob in browsers) for backups and support: any SQLite opens
   * it, and open({ from }) starts a new database from it. It runs between
   * the calls before and after it, so it holds whole transactions only.
   */
  export() {
    return this.#enqueue(() => exportImage(this.#core, this.#handle));
  }

  /**
   * A live query: callback(rows) now and again after every commit that
   * changed a table the query reads (local writes, pulled pages; one re-run
   * per commit, not per row); callback(undefined, error) with a FerryError
   * when it fails. Returns unsubscribe(). Without a callback: an async
   * iterable of the results, ending when the loop does.
   */
  watch(sql, params, callback) {
    if (this.#closed || this.#closing) throw new FerryError('closed', `database '${this.name}' is closed; open it again`);
    return this.#live.watch(sql, params, callback);
  }

  /** A query's rows with the commit they saw ({ rows, epoch, seq }), for live queries here and in other tabs. */
  snapshot(sql, params) {
    return this.#enqueue(async () => {
      const seq = this.#seq;
      return { rows: await this.#query(sql, params), epoch: this.#epoch, seq };
    });
  }

  /** The tables `sql` (one SELECT) reads, as SQLite names them, for live queries here and in other tabs. */
  reads(sql) {
    return this.#enqueue(() => {
      this.#checkSql(sql);
      return this.#core.reads(this.#handle, sql);
    });
  }

  /**
   * Ends this user's use of the device (a shared device, another user signs
   * in next): pushes what is pending, then closes the database and deletes
   * its storage, so nothing of this user's data stays and the next open()
   * of the name starts empty, with a new client id. When changes or sync
   * errors would be lost (the server is unreachable, a change was rejected),
   * it refuses with 'unsynced', deletes nothing and the database stays open;
   * { discard: true } deletes them anyway. Calls made once the last check
   * runs fail with 'closed'. Emits 'signout' when done.
   */
  async signOut({ discard = false } = {}) {
    if (this.#closed || this.#closing) throw new FerryError('closed', `database '${this.name}' is closed; open it again`);
    // Files count too: a photo whose bytes are only on this device would go with the database.
    const uploads = async () => {
      try { return (await this.#query('SELECT count(*) AS n FROM _ferry_files WHERE code IS NOT ?', [DISCARDED]))[0].n; } catch { return 0; }
    };
    const unsynced = async () => {
      const st = this.#engine ? this.#engine.status() : null;
      return st ? { pending: st.pendingChanges, errors: st.errors, uploads: await uploads() } : { pending: 0, errors: 0, uploads: 0 };
    };
    let syncError = null;
    if (this.#runner && !discard) {
      await this.#runner.running?.catch(() => {});
      const left = await this.#enqueue(() => unsynced());
      if (left.pending > 0 || left.uploads > 0) {
        try { await this.sync(); } catch (e) { syncError = e; }
      }
      if (left.uploads > 0) await this.files.flush().catch(() => {});
    }
    // The last check and the close are one step of the queue, so no write
    // slips in between them.
    this.#closing = true;
    try {
      await this.#enqueue(async () => {
        const left = await unsynced();
        if (!discard && (left.pending > 0 || left.errors > 0 || left.uploads > 0)) {
          const what = [left.pending && `${left.pending} object${left.pending > 1 ? 's' : ''} with changes not on the server`,
            left.uploads && `${left.uploads} file${left.uploads > 1 ? 's' : ''} not uploaded yet (see db.files.status())`,
            left.errors && `${left.errors} sync error${left.errors > 1 ? 's' : ''} (see syncErrors())`].filter(Boolean).join(' and ');
          throw new FerryError('unsynced', `not signed out: '${this.name}' holds ${what}${syncError ? ` (the sync failed: ${syncError.message})` : ''}; `
            + 'sync again, or call signOut({ discard: true }) to delete them', syncError ? { cause: syncError } : undefined);
        }
        await this.#shut(false).catch(() => { /* a failed flush: the storage is deleted next */ });
      }, true);
    } catch (e) {
      if (!this.#closed) this.#closing = false;
      throw e;
    }
    this.#offOnline?.();
    await this.files.close();
    await deleteStorage(this.#storage.kind, this.name, this.#where);
    await this.files.destroy().catch(() => {});
    clearMark(this.name);
    this.#emit('signout', { name: this.name });
  }

  /** Closes the database after the calls already made; later calls fail with 'closed'. */
  close() {
    if (this.#closed) return this.#tail;
    this.#offOnline?.();
    const running = this.#runner?.running?.catch(() => {});
    const done = (running || Promise.resolve()).then(() => this.files.close()).then(() => this.#enqueue(() => this.#shut(), true));
    this.#closing = true;
    return done;
  }

  // ---- internals ----------------------------------------------------------

  /**
   * The last step in the call queue of close() and signOut(): flush, fold
   * the commit log into the database file (close() only: signOut() deletes
   * it next), then free the engine, the handle and the storage.
   */
  async #shut(checkpoint = true) {
    this.#closed = true;
    this.#live.close();
    try { await this.#storage.flush?.(); } finally {
      // A failed checkpoint loses nothing: the log keeps every commit, the
      // next open reads it and the next close tries again.
      if (checkpoint) try { this.#core.checkpoint(this.#handle); } catch { /* see above */ }
      this.#engine?.close();
      this.#engine = null;
      this.#core.close(this.#handle);
      this.#handle = 0;
      this.#storage.release?.();
    }
  }

  #emit(event, detail) {
    // A sync run may have pushed objects whose files can go up now, or
    // pulled references whose bytes should come down: files move on their
    // own queue, after the run, never inside it.
    if (event === 'sync') this.files?.kick();
    this.#listeners.emit(event, detail);
  }

  #enqueue(task, closing = false) {
    if (this.#closed || (this.#closing && !closing)) {
      return Promise.reject(new FerryError('closed', `database '${this.name}' is closed; open it again`));
    }
    // What the task committed is reported inside its turn of the queue, so a
    // live query's re-run queues right behind it.
    const run = this.#tail.then(async () => {
      try { return await task(); } finally { this.#committed(); }
    });
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Tells live queries (and 'commit' listeners) which tables the last queue task's commits changed. */
  #committed() {
    if (!this.#handle) return;
    const tables = this.#core.changed(this.#handle);
    if (tables && tables.length === 0) return;
    const seq = ++this.#seq;
    this.#live.changed(tables, this.#epoch, seq);
    this.#listeners.emit('commit', { tables, epoch: this.#epoch, seq });
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
    this.#engine?.close();
    this.#core.close(this.#handle);
    this.#handle = 0;
    this.#storage.release?.();
    this.#storage = await this.#reopen();
    this.#handle = this.#storage.handle;
    if (this.#engine) this.#engine = this.#newEngine(this.#core);
  }

  #newEngine(core) {
    const engine = new CoreSync(core, this.#handle);
    if (this.#pullSlice !== undefined) {
      engine.setApplySlice(this.#pullSlice);
    } else {
      // Steps of a pull page sized by time, whatever the device's speed: a
      // query waits about one step.
      engine.setApplySlice(PULL_STEP_MAX_OBJECTS);
      engine.setStepBudget(PULL_STEP_MS);
    }
    return engine;
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
