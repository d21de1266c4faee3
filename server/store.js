// The sync server's storage: one SQLite database (ferry's own core, file
// storage) holding a table per entity plus ferry's bookkeeping, and the
// push/pull logic of docs/PROTOCOL.md on top of it.
//
// Entity table "E": id TEXT PRIMARY KEY, a column per attribute and per
// association, and
//   _ferry_version  the global version of the object's last change (unique, indexed)
//   _ferry_deleted  1 for a tombstone (the row keeps its last values)
//   _ferry_meta     JSON { attr: [version, ts], "$deleted": [version, ts] }:
//                   per attribute, the version and client time of its last write
// Bookkeeping: _ferry_state (global version, stored model), _ferry_clients
// (per client the highest applied mid), _ferry_results (each mutation's
// result until the client acknowledges it).
//
// Beside it: values.js (the value rules), entity-table.js (an entity's
// table and its SQL), requests.js (request shapes, HttpError), verify.js.
import { FerryError } from '../bindings/errors.js';
import { isDownloaded, isSynced } from './model.js';
import { q, sqlite } from './sql.js';
import { EntityTable } from './entity-table.js';
import { HttpError, userKeyOf } from './requests.js';
import { MAX_ID_BYTES, Rejection, convertLossless, toJson, toStored, validId } from './values.js';
import { verify } from './verify.js';

const DELETED = '$deleted';
const WRITE_CHUNK = 2000;       // rows per bulk upsert statement (json_each over one JSON array)

/** JSON the database built: bytes from SQLite, text from PostgreSQL. */
const asBytes = (v) => (typeof v === 'string' ? Buffer.from(v) : v);

const forbidden = (m) => ({ mid: m.mid, status: 'rejected', reason: 'forbidden' });

// ---- the store ----------------------------------------------------------------

export class SyncStore {
  /**
   * Prepares the database for `model` (creating or migrating tables).
   * @returns {Promise<SyncStore>} with .created (true for a new database) and .migratedFrom
   */
  static async open(db, model, { log = () => {}, sql = sqlite } = {}) {
    const store = new SyncStore(db, model, log, sql);
    await store.#setup();
    return store;
  }

  /** `db`: { query, exec, transaction } of the database whose SQL `sql` (sql.js) spells. */
  constructor(db, model, log, sql) {
    this.db = db;
    this.sql = sql;
    this.model = model;
    this.log = log;
    this.tables = new Map();
    for (const [name, entity] of Object.entries(model.entities)) {
      if (isSynced(entity)) this.tables.set(name, new EntityTable(name, entity, sql));
    }
    this.created = false;
    this.migratedFrom = null;
  }

  async #setup() {
    const { db, model } = this;
    await db.transaction(async (tx) => {
      const fresh = await this.sql.bookkeeping(tx);
      await tx.exec("INSERT INTO _ferry_state(key, value) VALUES ('purged', 0), ('version', 0) ON CONFLICT(key) DO NOTHING");
      const stored = Object.fromEntries((await tx.query("SELECT key, value FROM _ferry_state WHERE key IN ('model_version', 'model')")).map((r) => [r.key, r.value]));
      this.created = fresh;

      for (const t of this.tables.values()) {
        const existing = await this.sql.columns(tx, t.name);
        if (existing.size === 0) {
          const cols = [...t.members].map(([n, type]) => `${q(n)} ${this.sql.columnType(type)}`);
          await tx.exec(`CREATE TABLE ${t.table}(id TEXT PRIMARY KEY NOT NULL, ${cols.map((c) => `${c}, `).join('')}`
            + "_ferry_version BIGINT NOT NULL, _ferry_deleted INTEGER NOT NULL DEFAULT 0, _ferry_meta TEXT NOT NULL DEFAULT '{}')");
          await tx.exec(`CREATE UNIQUE INDEX ${q(`_ferry_version_${t.name}`)} ON ${t.table}(_ferry_version)`);
          if (!fresh) this.log(`ferry-server: model ${model.version}: created table ${t.name}`);
        } else {
          for (const [n, type] of t.members) {
            if (!existing.has(n.toLowerCase())) {
              await tx.exec(`ALTER TABLE ${t.table} ADD COLUMN ${q(n)} ${this.sql.columnType(type)}`);
              this.log(`ferry-server: model ${model.version}: added ${t.name}.${n}`);
            } else if (await this.sql.retype(tx, t.name, n, type)) {
              this.log(`ferry-server: model ${model.version}: ${t.name}.${n} is now ${type}`);
            }
          }
        }
        // Which objects reference a file: the blob store's access checks and collection.
        for (const n of t.fileAttrs) {
          await tx.exec(`CREATE INDEX IF NOT EXISTS ${q(`_ferry_file_${t.name}_${n}`)} ON ${t.table}((${this.sql.fileHash(q(n))}))`);
        }
      }
      const json = JSON.stringify(model);
      if (stored.model !== undefined && stored.model !== json) {
        // A migration may rewrite the columns a filter reads: every exit's
        // object is looked up again.
        await tx.exec('UPDATE _ferry_exits SET live = 0 WHERE live = 1');
      }
      if (stored.model !== undefined) {
        // An exit's keys are the columns of the filter of its time: where the
        // filter changed, pulls read the whole state the exit kept instead.
        const was = JSON.parse(stored.model).entities || {};
        for (const t of this.tables.values()) {
          if (t.access && JSON.stringify(was[t.name]?.sync) !== JSON.stringify(model.entities[t.name].sync)) {
            await tx.exec('UPDATE _ferry_exits SET keys = NULL WHERE entity = ? AND keys IS NOT NULL', [t.name]);
          }
        }
      }
      if (stored.model_version !== undefined && stored.model_version !== model.version) {
        this.migratedFrom = stored.model_version;
        this.log(`ferry-server: migrated the data from model version ${stored.model_version} to ${model.version}`);
      } else if (stored.model !== undefined && stored.model !== json) {
        this.log(`ferry-server: warning: the model changed but its version is still ${model.version}; clients only migrate when the version changes`);
      }
      await tx.exec("INSERT INTO _ferry_state(key, value) VALUES ('model_version', ?), ('model', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [model.version, json]);
    });
  }

  /**
   * Forgets what no device needs once it is older than `horizon` ms:
   * tombstones and exits up to the newest version handed out before then,
   * and the kept results recorded before then or of clients not seen since. A device whose cursor is
   * below that version is told to pull again from scratch (410 resync).
   * @returns {Promise<{ purged: number, tombstones: number }>}
   */
  async purge({ horizon, now = Date.now() }) {
    return this.db.transaction(async (tx) => {
      await this.#lockVersion(tx);
      const before = (await tx.query("SELECT CAST(value AS BIGINT) AS value FROM _ferry_state WHERE key = 'purged'"))[0].value;
      const [{ p }] = await tx.query('SELECT max(version) AS p FROM _ferry_epochs WHERE at < ?', [now - horizon]);
      let tombstones = 0;
      // Only a device whose cursor is below a removal that was forgotten
      // needs to pull again: the mark is the newest forgotten one.
      let mark = before;
      if (p !== null) {
        for (const t of this.tables.values()) {
          const [{ v }] = await tx.query(`SELECT max(_ferry_version) AS v FROM ${t.table} WHERE _ferry_deleted = 1 AND _ferry_version <= ?`, [p]);
          if (v !== null) mark = Math.max(mark, v);
          tombstones += (await tx.exec(`DELETE FROM ${t.table} WHERE _ferry_deleted = 1 AND _ferry_version <= ?`, [p])).changes;
        }
        const [{ v }] = await tx.query('SELECT max(version) AS v FROM _ferry_exits WHERE version <= ?', [p]);
        if (v !== null) mark = Math.max(mark, v);
        await tx.exec('DELETE FROM _ferry_exits WHERE version <= ?', [p]);
        await tx.exec('DELETE FROM _ferry_epochs WHERE version < ?', [p]);
        if (mark !== before) await tx.exec("UPDATE _ferry_state SET value = ? WHERE key = 'purged'", [mark]);
      }
      await tx.exec('DELETE FROM _ferry_results WHERE at < ? OR client_id IN (SELECT client_id FROM _ferry_clients WHERE seen_at < ?)', [now - horizon, now - horizon]);
      return { purged: mark, tombstones };
    });
  }

  /**
   * The reference to the file `hash` of an object `user` may read ('read':
   * under the entity's download filter) or write ('write': under its access
   * rule, or any synced object when it has none), or null. Tombstones count
   * for neither.
   * @returns {Promise<{ hash, size, type, name } | null>}
   */
  async fileAccess(hash, user, mode) {
    // Reading also needs the bytes to be the reference writer's to share: a
    // reference written by the server, or by a user who holds the bytes, or
    // the reader holds them. Otherwise knowing a hash (a public document, a
    // guessable small file) would open another user's bytes.
    const holder = mode === 'read' ? await this.isFileHolder(hash, user) : false;
    for (const t of this.tables.values()) {
      if (!t.fileAttrs.length || !isSynced(t.entity)) continue;
      if (mode === 'read' && !isDownloaded(t.entity)) continue;
      const where = mode === 'read' ? t.match(user) : t.access ? t.access(user) : { sql: this.sql.TRUE, params: [] };
      for (const n of t.fileAttrs) {
        const writer = this.sql.fieldElem('_ferry_meta', n, 2);
        const shared = mode !== 'read' || holder ? '' : ` AND (${writer} IS NULL OR EXISTS (SELECT 1 FROM _ferry_clients c `
          + `JOIN _ferry_file_holders h ON h.user_key = c.user_key WHERE c.client_id = ${writer} AND h.hash = ?))`;
        const [row] = await this.db.query(
          `SELECT ${q(n)} AS ref FROM ${t.table} WHERE ${this.sql.fileHash(q(n))} = ? AND _ferry_deleted = 0 AND (${where.sql})${shared} LIMIT 1`,
          [hash, ...where.params, ...(shared ? [hash] : [])]);
        if (row) return JSON.parse(row.ref);
      }
    }
    return null;
  }

  /** Whether `user` holds the bytes of the file `hash` (uploaded them, or was served them). */
  async isFileHolder(hash, user) {
    return (await this.db.query('SELECT 1 FROM _ferry_file_holders WHERE hash = ? AND user_key = ?', [hash, userKeyOf(user)])).length > 0;
  }

  /** Records that `user` holds the bytes of the file `hash`. */
  async addFileHolder(hash, user) {
    await this.db.exec('INSERT INTO _ferry_file_holders(hash, user_key) VALUES (?, ?) ON CONFLICT DO NOTHING', [hash, userKeyOf(user)]);
  }

  /** Forgets who held the bytes of a collected file. */
  async forgetFile(hash) {
    await this.db.exec('DELETE FROM _ferry_file_holders WHERE hash = ?', [hash]);
  }

  /** Whether any object, a tombstone too (it may come back), references the file `hash`. */
  async fileReferenced(hash) {
    for (const t of this.tables.values()) {
      for (const n of t.fileAttrs) {
        if ((await this.db.query(`SELECT 1 FROM ${t.table} WHERE ${this.sql.fileHash(q(n))} = ? LIMIT 1`, [hash])).length) return true;
      }
    }
    return false;
  }

  /** Frees what the store holds besides its database (the verify scratch database). */
  async close() {
    const scratch = this.scratch;
    this.scratch = null;
    if (scratch) await (await scratch).close();
  }

  /** The highest version given to any change. */
  async version() {
    return (await this.db.query("SELECT CAST(value AS BIGINT) AS value FROM _ferry_state WHERE key = 'version'"))[0].value;
  }

  // ---- push -----------------------------------------------------------------

  /**
   * Applies a push body (already checked for shape by checkPush) for `user`.
   * @returns {Promise<{ modelVersion: string, results: object[] }>}
   */
  async push(body, { user = {}, authorize = null } = {}) {
    const { clientId } = body;
    // A client still on an older model pushes what it had before it learns
    // of the change: attributes the model no longer has are ignored, values
    // are converted where that loses nothing, and the rest still applies.
    const stale = body.modelVersion !== this.model.version;
    const mutations = [...body.mutations].sort((a, b) => a.mid - b.mid);
    return this.db.transaction(async (tx) => {
      // First the version lock (PostgreSQL): pushes of one client on two
      // server processes then see each other's results, and versions commit in order.
      const locked = await this.#lockVersion(tx);
      // A mutation is a duplicate only if this exact mid was received before
      // (its result is kept until the client acknowledges it) or lies at or
      // below what the client said it resolved: a selective sync sends mids
      // out of order, so a high-water mark would swallow the ones it skipped.
      const clientRow = (await tx.query('SELECT high_mid, acked_mid, user_key FROM _ferry_clients WHERE client_id = ?', [clientId]))[0];
      // A client id belongs to the user who first pushed under it.
      const userKey = userKeyOf(user);
      if (clientRow && clientRow.user_key !== null && clientRow.user_key !== userKey) {
        throw new HttpError(403, 'forbidden', 'this client id belongs to another user; a device that signs in as another user needs a database of its own');
      }
      const highBefore = clientRow ? clientRow.high_mid : 0;
      const ackedBefore = clientRow ? clientRow.acked_mid : 0;
      const stored = new Map();
      const candidates = mutations.filter((m) => m.mid > ackedBefore && m.mid <= highBefore).map((m) => m.mid);
      if (candidates.length) {
        const rows = await tx.query(`SELECT mid, result FROM _ferry_results WHERE client_id = ? AND mid ${this.sql.inList('BIGINT')}`,
          [clientId, JSON.stringify(candidates)]);
        for (const r of rows) stored.set(r.mid, r.result);
      }
      const seen = (m) => m.mid <= ackedBefore || stored.has(m.mid);
      const fresh = mutations.filter((m) => !seen(m));
      const batch = await this.#batch(tx, fresh, locked);
      const results = new Array(mutations.length);
      const recorded = [];
      const duplicate = (m) => {
        const s = stored.get(m.mid);
        return s ? { ...JSON.parse(s), duplicate: true } : { mid: m.mid, status: 'applied', duplicate: true };
      };
      // Mutations go in runs on distinct objects: a run's plans do not depend
      // on each other, so its access checks take one query per entity.
      const accessSeen = new Map();
      for (let i = 0; i < mutations.length;) {
        const run = [];
        const objects = new Set();
        for (; i < mutations.length; i++) {
          const m = mutations[i];
          if (seen(m)) {
            if (run.length) break;
            results[i] = duplicate(m);
            continue;
          }
          const key = `${m.entity}\u0000${m.id}`;
          if (objects.has(key)) break;
          objects.add(key);
          run.push(i);
        }
        const plans = run.map((k) => this.#check(batch, mutations[k], true, stale, clientId));
        const allowed = await this.#access(tx, run.map((k) => mutations[k]), plans, user, accessSeen);
        for (const [j, k] of run.entries()) {
          const m = mutations[k];
          let r = plans[j].result || (allowed[j] ? this.#finish(batch, m, plans[j], { user, authorize }) : forbidden(m));
          if (r instanceof Promise) r = await r;
          results[k] = r;
          // A rejection leaves no trace: the mid was not taken, nothing to answer as a duplicate.
          if (r.status !== 'rejected') recorded.push([m.mid, JSON.stringify(r)]);
        }
      }
      await this.#flush(tx, batch);
      const high = Math.max(highBefore, ...recorded.map(([mid]) => mid));
      const acked = Number.isSafeInteger(body.ackedMid) ? Math.min(body.ackedMid, high) : 0;
      if (recorded.length) {
        await tx.exec(`INSERT INTO _ferry_results(client_id, mid, result, at) SELECT ?, ${this.sql.elem(0, 'BIGINT')}, ${this.sql.elem(1)}, CAST(? AS BIGINT) FROM ${this.sql.rows} `
          + 'WHERE TRUE ON CONFLICT(client_id, mid) DO UPDATE SET result = excluded.result, at = excluded.at',
          [clientId, Date.now(), JSON.stringify(recorded)]);
      }
      await tx.exec('INSERT INTO _ferry_clients(client_id, high_mid, acked_mid, seen_at, user_key) VALUES (?, ?, ?, ?, ?) '
        + `ON CONFLICT(client_id) DO UPDATE SET high_mid = ${this.sql.greatest}(_ferry_clients.high_mid, excluded.high_mid), acked_mid = ${this.sql.greatest}(_ferry_clients.acked_mid, excluded.acked_mid), `
        + 'seen_at = excluded.seen_at, user_key = coalesce(_ferry_clients.user_key, excluded.user_key)',
      [clientId, high, acked, Date.now(), userKey]);
      if (acked > 0) await tx.exec('DELETE FROM _ferry_results WHERE client_id = ? AND mid <= ?', [clientId, acked]);
      return { modelVersion: this.model.version, results };
    });
  }

  /**
   * Binds a client id to `user` at its first contact (a pull or a push);
   * throws HttpError 403 when it is bound to someone else.
   */
  async bindClient(clientId, user) {
    const key = userKeyOf(user);
    const [row] = await this.db.query('SELECT user_key FROM _ferry_clients WHERE client_id = ?', [clientId]);
    if (row && row.user_key !== null && row.user_key !== key) {
      throw new HttpError(403, 'forbidden', 'this client id belongs to another user; a device that signs in as another user needs a database of its own');
    }
    if (!row || row.user_key === null) {
      await this.db.exec('INSERT INTO _ferry_clients(client_id, high_mid, user_key, seen_at) VALUES (?, 0, ?, ?) '
        + 'ON CONFLICT(client_id) DO UPDATE SET user_key = coalesce(_ferry_clients.user_key, excluded.user_key)', [clientId, key, Date.now()]);
      const [again] = await this.db.query('SELECT user_key FROM _ferry_clients WHERE client_id = ?', [clientId]);
      if (again.user_key !== key) throw new HttpError(403, 'forbidden', 'this client id belongs to another user');
    }
  }

  /**
   * Server-side writes (seed data, admin changes): each object's present
   * attributes are written as if by a client that wins every conflict.
   * @returns {Promise<{ version: number }>} the version after the writes
   */
  async write(entityName, objects, { ts = Date.now() } = {}) {
    const t = this.#tableFor(entityName);
    if (!Array.isArray(objects)) throw new FerryError('misuse', 'write(entity, objects) needs an array of objects with an id');
    const mutations = objects.map((o, i) => {
      if (typeof o !== 'object' || o === null || !validId(o.id)) {
        throw new FerryError('misuse', `${entityName} object ${i}: needs an id (a string of 1-128 bytes)`);
      }
      const { id, ...values } = o;
      return { mid: i + 1, entity: t.name, id, op: 'upsert', values, changed: Object.keys(values), ts };
    });
    return this.#serverWrite(mutations);
  }

  /** Server-side deletes (tombstones). @returns {Promise<{ version: number }>} */
  async remove(entityName, ids, { ts = Date.now() } = {}) {
    const t = this.#tableFor(entityName);
    if (!Array.isArray(ids) || !ids.every(validId)) throw new FerryError('misuse', 'remove(entity, ids) needs an array of ids');
    return this.#serverWrite(ids.map((id, i) => ({ mid: i + 1, entity: t.name, id, op: 'delete', ts })));
  }

  #tableFor(entityName) {
    const t = this.tables.get(entityName);
    if (!t) {
      throw new FerryError('not_found', Object.hasOwn(this.model.entities, entityName)
        ? `entity ${entityName} is never synced: the server stores nothing of it`
        : `unknown entity ${JSON.stringify(entityName)}; the model has ${Object.keys(this.model.entities).join(', ')}`);
    }
    return t;
  }

  async #serverWrite(mutations) {
    return this.db.transaction(async (tx) => {
      const batch = await this.#batch(tx, mutations);
      for (const m of mutations) {
        const r = this.#apply(batch, m, { clientWrite: false });
        if (r.status === 'rejected') throw new FerryError('type', `${m.entity} ${m.id}: ${r.reason}`);
      }
      await this.#flush(tx, batch);
      return { version: batch.version };
    });
  }

  /**
   * Takes the version lock where the backend needs one (PostgreSQL: a row
   * lock held to commit, see sql.js); SQLite's one writer already orders
   * every transaction that hands out versions, so it reads nothing.
   * -> the version counter as locked (PostgreSQL: the row as the lock's
   * holder left it), or null where nothing was read.
   */
  async #lockVersion(tx) {
    if (!this.sql.versionLock) return null;
    return (await tx.query(`SELECT CAST(value AS BIGINT) AS value FROM _ferry_state WHERE key = 'version'${this.sql.versionLock}`))[0].value;
  }

  /**
   * Loads what a list of mutations touches: the version counter (`locked`:
   * as #lockVersion read it in this transaction; null: read it now) and the
   * current rows.
   */
  async #batch(tx, mutations, locked = null) {
    const version = locked ?? (await tx.query(`SELECT CAST(value AS BIGINT) AS value FROM _ferry_state WHERE key = 'version'${this.sql.versionLock}`))[0].value;
    const idsByTable = new Map();
    for (const m of mutations) {
      const t = typeof m.entity === 'string' && this.tables.get(m.entity);
      if (!t || !validId(m.id)) continue;
      if (!idsByTable.has(t)) idsByTable.set(t, new Set());
      idsByTable.get(t).add(m.id);
    }
    const rows = new Map();   // table -> Map(id -> row)
    for (const [t, ids] of idsByTable) {
      const found = await tx.query(`SELECT * FROM ${t.table} WHERE id ${this.sql.inList()}`, [JSON.stringify([...ids])]);
      const map = new Map();
      for (const r of found) {
        r._meta = JSON.parse(r._ferry_meta || '{}');
        // What the object looked like before this push, for the exits of an access-filtered entity.
        // (A shallow copy is enough: only its member values are read, and
        // #commit replaces those on the row, never changes them in place.)
        if (t.access && !r._ferry_deleted) r._before = { ...r };
        if (t.access && r._ferry_deleted) r._tomb = true;
        map.set(r.id, r);
      }
      rows.set(t, map);
    }
    return { version, startVersion: version, rows, dirty: new Map() };
  }

  async #flush(tx, batch) {
    for (const [t, set] of batch.dirty) {
      const rows = [...set];
      for (let i = 0; i < rows.length; i += WRITE_CHUNK) await tx.exec(t.upsertSql, [t.encodeRows(rows.slice(i, i + WRITE_CHUNK))]);
      if (t.access) {
        // An object that was readable and changed (or went) may have left
        // someone's view: its state before is kept, so a pull lists it as
        // removed only to the users who could read it then.
        const members = [...t.members.keys()];
        const json = (o, names) => JSON.stringify(Object.fromEntries(names.map((n) => [n, o[n]])), (k, v) => (typeof v === 'bigint' ? String(v) : v));
        const left = rows.filter((r) => r._before && (r._ferry_deleted || t.accessColumns.some((n) => r[n] !== r._before[n])));
        // Earlier exits of these objects (and of objects brought back) no
        // longer tell what the object is now.
        const moved = [...left, ...rows.filter((r) => r._tomb && !r._ferry_deleted)].map((r) => r.id);
        for (let i = 0; i < moved.length; i += WRITE_CHUNK) {
          await tx.exec(`UPDATE _ferry_exits SET live = 0 WHERE entity = ? AND live = 1 AND id ${this.sql.inList()}`,
            [t.name, JSON.stringify(moved.slice(i, i + WRITE_CHUNK))]);
        }
        const exits = left.map((r) => [r._ferry_version, r.id, json(r._before, members), json(r._before, t.accessColumns),
          r._ferry_deleted ? null : json(r, t.accessColumns)]);
        for (let i = 0; i < exits.length; i += WRITE_CHUNK) {
          const e = this.sql.elem;
          await tx.exec(`INSERT INTO _ferry_exits(entity, version, id, prev, keys, next, live) SELECT ?, ${e(0, 'BIGINT')}, ${e(1)}, ${e(2)}, ${e(3)}, ${e(4)}, 1 FROM ${this.sql.rows} `
            + 'WHERE TRUE ON CONFLICT(entity, version) DO UPDATE SET id = excluded.id, prev = excluded.prev, keys = excluded.keys, next = excluded.next, live = excluded.live',
            [t.name, JSON.stringify(exits.slice(i, i + WRITE_CHUNK))]);
        }
      }
    }
    if (batch.version !== batch.startVersion) {
      await tx.exec("UPDATE _ferry_state SET value = ? WHERE key = 'version'", [batch.version]);
      // When each version was handed out, so tombstones can be purged by age.
      await tx.exec('INSERT INTO _ferry_epochs(version, at) VALUES (?, ?) ON CONFLICT(version) DO UPDATE SET at = excluded.at', [batch.version, Date.now()]);
    }
  }

  /** Applies one mutation to the batch; returns its result (a promise only when authorize is asked). */
  #apply(batch, m, { user, authorize, clientWrite, stale = false }) {
    const plan = this.#check(batch, m, clientWrite, stale);
    if (plan.result) return plan.result;
    return this.#finish(batch, m, plan, { user, authorize });
  }

  /** Carries out a checked plan, through the authorize hook when there is one. */
  #finish(batch, m, plan, { user, authorize }) {
    const done = (r) => (plan.ignored?.length && r.status !== 'rejected' ? { ...r, ignored: plan.ignored } : r);
    if (!authorize) return done(this.#commit(batch, m, plan));
    const { t, current } = plan;
    return Promise.resolve(authorize({
      user, entity: m.entity, id: m.id, op: m.op, values: plan.shown,
      current: current && !current._ferry_deleted ? t.valuesOf(current) : null,
    })).then((ok) => (ok ? done(this.#commit(batch, m, plan)) : forbidden(m)));
  }

  /**
   * Access on push: a user may write an object only if they may read it
   * before the write (the server's current object, a tombstone by its last
   * values) and after it (the current values with the new ones over them),
   * under the entity's filter for that user. Returns one boolean per plan.
   *
   * The filter reads only its own columns, so each check is a tuple of
   * those: a write that sets none of them leaves its "after" equal to its
   * "before", and equal tuples get the same answer. A push of many objects
   * of one owner is then one SQL evaluation of the filter, not two per
   * mutation; `seen` keeps the answers for the rest of the push (same user,
   * same filter, same transaction).
   */
  async #access(tx, mutations, plans, user, seen) {
    const allowed = plans.map(() => true);
    const byTable = new Map();
    plans.forEach((plan, j) => {
      if (plan.result || !plan.t.access) return;
      if (!byTable.has(plan.t)) byTable.set(plan.t, []);
      byTable.get(plan.t).push(j);
    });
    for (const [t, js] of byTable) {
      const cols = t.filterColumns;
      if (!seen.has(t)) seen.set(t, new Map());
      const known = seen.get(t);
      const asked = new Map();   // tuple key -> tuple, not answered yet
      const needs = [];          // per plan: the tuple keys it must pass
      const tuple = (row) => {
        const values = cols.map((n) => { const v = row[n] ?? null; return typeof v === 'bigint' ? String(v) : v; });
        const key = JSON.stringify(values);
        if (!known.has(key) && !asked.has(key)) asked.set(key, values);
        return key;
      };
      for (const j of js) {
        const { current, stored } = plans[j];
        const m = mutations[j];
        const keys = [];
        if (current) keys.push(tuple(current));
        if (m.op === 'upsert' && !(current && cols.every((n) => !Object.hasOwn(stored, n)))) {
          const after = { id: m.id };
          for (const n of cols) if (n !== 'id') after[n] = Object.hasOwn(stored, n) ? stored[n] : current ? current[n] ?? null : null;
          keys.push(tuple(after));
        }
        needs.push([j, keys]);
      }
      if (asked.size) {
        const where = t.access(user);
        const list = [...asked.values()];
        const select = cols.map((n, i) => `${this.sql.elem(i + 1, n === 'id' ? 'TEXT' : this.sql.columnType(t.members.get(n)))} AS ${q(n)}`).join(', ');
        const found = await tx.query(`SELECT k, (${where.sql}) AS ok FROM (SELECT ${this.sql.elem(0, 'BIGINT')} AS k${select ? `, ${select}` : ''} FROM ${this.sql.rows}) s`,
          [...where.params, JSON.stringify(list.map((values, k) => [k, ...values]))]);
        const keys = [...asked.keys()];
        for (const r of found) known.set(keys[r.k], !!r.ok);
      }
      for (const [j, keys] of needs) if (!keys.every((k) => known.get(k) === true)) allowed[j] = false;
    }
    return allowed;
  }

  /** Validates a mutation: { result } when it is rejected, else the plan #commit() carries out. */
  #check(batch, m, clientWrite, stale = false, writer = null) {
    const reject = (reason) => ({ result: { mid: m.mid, status: 'rejected', reason } });
    if (typeof m.entity !== 'string' || !Object.hasOwn(this.model.entities, m.entity)) {
      return reject(`unknown entity ${JSON.stringify(m.entity)}`);
    }
    const t = this.tables.get(m.entity);
    if (!t) return reject(`entity ${m.entity} is never synced (device-only); the server does not accept it`);
    if (!validId(m.id)) return reject(`invalid id ${JSON.stringify(m.id)}: an id is a string of 1-${MAX_ID_BYTES} bytes`);
    if (m.op !== 'upsert' && m.op !== 'delete') return reject(`unknown op ${JSON.stringify(m.op)}; use "upsert" or "delete"`);
    // The server's clock bounds a client's: a device a year ahead must not
    // win every later concurrent write.
    const now = Date.now();
    const ts = clientWrite ? (Number.isFinite(m.ts) && m.ts >= 0 ? Math.min(m.ts, now) : now) : (Number.isFinite(m.ts) ? m.ts : now);
    // attrTs: per attribute the client's time of its own latest write (no
    // later than ts); attributes it does not name were written at ts.
    const attrTs = m.attrTs && typeof m.attrTs === 'object' && !Array.isArray(m.attrTs) ? m.attrTs : null;
    const tsOf = (n) => (attrTs && Number.isFinite(attrTs[n]) ? Math.min(attrTs[n], ts) : ts);
    // attrBase: attributes the client saw at a newer version than the
    // object's base (pulled while another attribute of it was pending).
    const attrBase = clientWrite && m.attrBase && typeof m.attrBase === 'object' && !Array.isArray(m.attrBase) ? m.attrBase : null;
    const base = clientWrite ? (Number.isSafeInteger(m.base) && m.base > 0 ? m.base : 0) : Infinity;
    const policy = clientWrite ? t.entity.conflict : 'client-wins';
    let rows = batch.rows.get(t);
    if (!rows) { rows = new Map(); batch.rows.set(t, rows); }
    const current = rows.get(m.id);
    const baseOf = (n) => (attrBase && Number.isSafeInteger(attrBase[n]) && attrBase[n] > base ? attrBase[n] : base);
    // A client never conflicts with its own earlier writes.
    const theirs = (meta) => !writer || !meta || meta[2] !== writer;
    const plan = { t, rows, current, ts, tsOf, base, baseOf, theirs, writer, policy };
    if (m.op === 'delete') {
      plan.shown = null;
      return plan;
    }
    const values = m.values === undefined ? {} : m.values;
    if (typeof values !== 'object' || values === null || Array.isArray(values)) return reject('values must be an object of attribute: value');
    const changed = m.changed === undefined ? Object.keys(values) : m.changed;
    if (!Array.isArray(changed) || !changed.every((n) => typeof n === 'string')) return reject('changed must be an array of attribute names');
    // An object the server does not have takes every value sent; an existing one only the changed ones.
    let names = !current ? [...new Set([...changed, ...Object.keys(values)])] : [...new Set(changed)];
    const ignored = stale ? names.filter((n) => n !== 'id' && !t.members.has(n)) : [];
    if (ignored.length) names = names.filter((n) => !ignored.includes(n));
    const stored = {};
    const shown = {};
    try {
      for (const n of names) {
        const type = t.members.get(n);
        if (!type) {
          throw new Rejection(n === 'id' ? 'id cannot be changed' : `unknown attribute ${JSON.stringify(n)} of ${m.entity}`);
        }
        if (!Object.hasOwn(values, n)) throw new Rejection(`attribute ${n} is listed in changed but has no value`);
        const v = stale ? convertLossless(type, values[n]) : values[n];
        stored[n] = toStored(type, v, n);
        shown[n] = v;
      }
    } catch (e) {
      if (e instanceof Rejection) return reject(e.message);
      throw e;
    }
    Object.assign(plan, { names, stored, shown, ignored });
    return plan;
  }

  /** Carries out a checked mutation under the entity's conflict policy; returns its result. */
  #commit(batch, m, { t, rows, current, ts, tsOf, base, baseOf, theirs, writer, policy, names, stored }) {
    const stamp = (n) => (writer ? [batch.version, tsOf(n), writer] : [batch.version, tsOf(n)]);
    if (m.op === 'delete') {
      if (!current || current._ferry_deleted) return { mid: m.mid, status: 'applied', version: current ? current._ferry_version : 0 };
      const newer = [...t.members.keys()].filter((n) => {
        const [av = 0, ats = 0] = current._meta[n] || [];
        if (av <= baseOf(n) || !theirs(current._meta[n])) return false;
        return policy === 'server-wins' || (policy === 'last-write-wins' && ats > ts);
      });
      if (newer.length) {
        return {
          mid: m.mid, status: 'conflict', version: current._ferry_version, attrs: newer, server: t.valuesOf(current),
          reason: `the object was changed on the server after this delete (${policy}: ${newer.join(', ')}); it was kept`,
        };
      }
      batch.version += 1;
      current._ferry_version = batch.version;
      current._ferry_deleted = 1;
      current._meta[DELETED] = writer ? [batch.version, ts, writer] : [batch.version, ts];
      this.#dirty(batch, t, current);
      return { mid: m.mid, status: 'applied', version: batch.version };
    }

    if (!current) {
      batch.version += 1;
      const row = { id: m.id, _ferry_version: batch.version, _ferry_deleted: 0, _meta: {} };
      for (const n of t.members.keys()) row[n] = null;
      for (const n of names) { row[n] = stored[n]; row._meta[n] = stamp(n); }
      rows.set(m.id, row);
      this.#dirty(batch, t, row);
      return { mid: m.mid, status: 'applied', version: batch.version };
    }

    if (current._ferry_deleted) {
      const [dv = 0, dts = 0] = current._meta[DELETED] || [];
      const revive = dv <= baseOf(DELETED) || !theirs(current._meta[DELETED]) || policy === 'client-wins' || (policy === 'last-write-wins' && ts >= dts);
      if (!revive) {
        return {
          mid: m.mid, status: 'conflict', version: current._ferry_version, attrs: names, server: {}, deleted: true,
          reason: `the object was deleted on the server after the version this change was based on (${policy})`,
        };
      }
      batch.version += 1;
      current._ferry_deleted = 0;
      delete current._meta[DELETED];
      current._ferry_version = batch.version;
      for (const n of names) { current[n] = stored[n]; current._meta[n] = stamp(n); }
      this.#dirty(batch, t, current);
      return { mid: m.mid, status: 'applied', version: batch.version };
    }

    const lost = [];
    const won = [];
    for (const n of names) {
      const [av = 0, ats = 0] = current._meta[n] || [];
      const loses = av > baseOf(n) && theirs(current._meta[n]) && (policy === 'server-wins' || (policy === 'last-write-wins' && ats > tsOf(n)));
      (loses ? lost : won).push(n);
    }
    if (won.length) {
      batch.version += 1;
      current._ferry_version = batch.version;
      for (const n of won) { current[n] = stored[n]; current._meta[n] = stamp(n); }
      this.#dirty(batch, t, current);
    }
    if (!lost.length) return { mid: m.mid, status: 'applied', version: current._ferry_version };
    const server = {};
    for (const n of lost) server[n] = toJson(t.members.get(n), current[n]);
    return {
      mid: m.mid, status: 'conflict', version: current._ferry_version, attrs: lost, server,
      reason: policy === 'server-wins'
        ? `changed on the server after version ${base} (server-wins): ${lost.join(', ')}`
        : `a later write on the server won (last-write-wins): ${lost.join(', ')}`,
    };
  }

  #dirty(batch, t, row) {
    if (!batch.dirty.has(t)) batch.dirty.set(t, new Set());
    batch.dirty.get(t).add(row);
  }

  // ---- pull -----------------------------------------------------------------

  /**
   * Builds a pull reply (a Buffer of JSON) for a checked pull body. The
   * objects' JSON is built by SQLite in one query and never parsed here.
   * @param {object} body { entity, cursor, limit } or { entity, ids }
   */
  async pull(body, { user = {}, pageLimit = 5000, pageBytes = 4 << 20 } = {}) {
    if (body.clientId !== undefined) await this.bindClient(body.clientId, user);
    if (body.cursor > 0) {
      const purged = (await this.db.query("SELECT CAST(value AS BIGINT) AS value FROM _ferry_state WHERE key = 'purged'"))[0].value;
      if (body.cursor < purged) {
        throw new HttpError(410, 'resync', `removals up to version ${purged} were forgotten after the tombstone horizon; pull ${body.entity} again from cursor 0`, { purged });
      }
    }
    const name = body.entity;
    const entity = this.model.entities[name];
    const head = `{"modelVersion":${JSON.stringify(this.model.version)},"entity":${JSON.stringify(name)}`;
    const t = this.tables.get(name);
    if (!t || !isDownloaded(entity)) {
      const cursor = body.ids ? '' : `,"cursor":${body.cursor}`;
      return Buffer.from(`${head}${cursor},"more":false,"objects":[],"removed":[]}`);
    }
    const where = t.match(user);
    if (body.ids) {
      const [r] = await this.db.query(t.idsSql(where.sql), [...where.params, JSON.stringify(body.ids)]);
      const present = new Set(JSON.parse(r.present));
      const removed = [...new Set(body.ids.filter((id) => !present.has(id)))];
      return Buffer.concat([Buffer.from(`${head},"more":false,"objects":`), asBytes(r.objects),
        Buffer.from(`,"removed":${JSON.stringify(removed)}}`)]);
    }
    const limit = Math.max(1, Math.min(body.limit ?? pageLimit, pageLimit));
    const bytes = Math.max(1, Math.min(body.maxBytes ?? pageBytes, pageBytes));
    const [{ bytes: estimate }] = await this.db.query(t.sizeSql(), [body.cursor, limit]);
    const bounded = (estimate ?? 0) > bytes;
    const [r] = await this.db.query(t.pageSql(where.sql, bounded), [...where.params, body.cursor, limit, ...(bounded ? [bytes] : [])]);
    const cursor = r.n > 0 ? r.cursor : body.cursor;
    let { removed } = r;
    if (t.access && r.n > 0) {
      // Removals come from the exits, never from rows this user could not read.
      [{ removed }] = await this.db.query(t.exitsSql(where.sql), [name, body.cursor, cursor, ...where.params, ...where.params, ...where.params]);
    } else if (t.access) {
      removed = Buffer.from('[]');
    }
    // A first pull of the entity (cursor 0) that takes more than one page
    // says how many objects there are, for the client's progress: one count
    // over rows the pages read anyway. Later pulls are deltas, not counted.
    let total = '';
    if (body.cursor === 0 && r.more) {
      const [{ n }] = await this.db.query(`SELECT count(*) AS n FROM ${t.table} WHERE _ferry_deleted = 0 AND (${where.sql})`, where.params);
      total = `,"total":${n}`;
    }
    return Buffer.concat([Buffer.from(`${head},"cursor":${cursor},"more":${r.more ? 'true' : 'false'}${total},"objects":`),
      asBytes(r.objects), Buffer.from(',"removed":'), asBytes(removed), Buffer.from('}')]);
  }

  /**
   * Digests of what `user` may see, per entity, without the objects the client
   * has pending (verify.js). -> { modelVersion, entities: { name: digest } }
   */
  verify(body, options) {
    return verify(this, body, options);
  }
}
