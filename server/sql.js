// What the sync server's SQL spells differently per database. The push,
// pull and model logic (store.js) is written once over these two dialects:
// SQLite (ferry's own core, the embedded default) and PostgreSQL. Both read
// JSON arrays passed as one parameter (a table of `value`s), build the pull's
// JSON in the database, and hand out versions in commit order (see
// versionLock).
import { POSTGRES_WHERE, SQLITE_WHERE } from './model.js';

export const q = (name) => `"${String(name).replace(/"/g, '""')}"`;

const TEXT_TYPES = new Set(['string', 'decimal', 'datetime', 'binary', 'file', 'association']);
const JSON_OBJECT_CHUNK = 50;   // members per json_object()/json_set() call (both cap function arguments at 100)

/** A member as a JSON value expression (SQLite). */
function sqliteJson(name, type) {
  const c = q(name);
  if (type === 'boolean') return `CASE WHEN ${c} IS NULL THEN NULL WHEN ${c} THEN json('true') ELSE json('false') END`;
  // A value stored under an earlier model (the attribute's type changed) goes
  // out only if it is a value of the type now, so no client is ever sent a
  // reply it must refuse; the stored value itself is kept.
  if (type === 'integer') {
    return `CASE WHEN typeof(${c}) = 'integer' AND abs(${c}) <= 9007199254740991 THEN ${c} `
      + `WHEN typeof(${c}) = 'text' AND CAST(CAST(${c} AS INTEGER) AS TEXT) = ${c} AND abs(CAST(${c} AS INTEGER)) <= 9007199254740991 THEN CAST(${c} AS INTEGER) END`;
  }
  // A file reference goes out as the object it is (stored canonical, by the core's rule).
  if (type === 'file') return `CASE WHEN json_valid(${c}) AND json_type(${c}) = 'object' THEN json(${c}) END`;
  if (TEXT_TYPES.has(type)) return `CAST(${c} AS TEXT)`;
  return c;
}

/**
 * A member as a JSON value expression (PostgreSQL: the columns are typed, see
 * columnType). Replies are built as json, not jsonb: json is text put
 * together as is, about twice as fast to build as jsonb's binary form for a
 * pull page, and a file reference goes out exactly as stored.
 */
function postgresJson(name, type) {
  const c = q(name);
  if (type === 'boolean') return `CASE WHEN ${c} IS NULL THEN NULL ELSE to_json(${c} <> 0) END`;
  if (type === 'file') return `CAST(${c} AS json)`;
  return `to_json(${c})`;
}

/**
 * Creates ferry's bookkeeping tables, or brings those of an older server up
 * to date (SQLite); returns true for a new database.
 */
async function sqliteBookkeeping(tx) {
  const fresh = (await tx.query("SELECT count(*) AS n FROM sqlite_schema WHERE name = '_ferry_state'"))[0].n === 0;
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_state(key TEXT PRIMARY KEY, value) WITHOUT ROWID');
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_clients(client_id TEXT PRIMARY KEY, high_mid INTEGER NOT NULL, acked_mid INTEGER NOT NULL DEFAULT 0, seen_at INTEGER) WITHOUT ROWID');
  if (!(await tx.query("SELECT 1 FROM pragma_table_info('_ferry_clients') WHERE name = 'user_key'")).length) {
    await tx.exec('ALTER TABLE _ferry_clients ADD COLUMN user_key TEXT');
  }
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_epochs(version INTEGER PRIMARY KEY, at INTEGER NOT NULL)');
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_exits(entity TEXT NOT NULL, version INTEGER NOT NULL, id TEXT NOT NULL, prev TEXT NOT NULL, PRIMARY KEY(entity, version)) WITHOUT ROWID');
  if (!(await tx.query("SELECT 1 FROM pragma_table_info('_ferry_exits') WHERE name = 'keys'")).length) {
    await tx.exec('ALTER TABLE _ferry_exits ADD COLUMN keys TEXT');
  }
  // `next`: the filter's columns after the exit (null: deleted); `live`:
  // no write since has changed them or brought the object back, so `next`
  // is what the object is now and a pull need not look the object up.
  if (!(await tx.query("SELECT 1 FROM pragma_table_info('_ferry_exits') WHERE name = 'live'")).length) {
    await tx.exec('ALTER TABLE _ferry_exits ADD COLUMN next TEXT');
    await tx.exec('ALTER TABLE _ferry_exits ADD COLUMN live INTEGER NOT NULL DEFAULT 0');
  }
  await tx.exec('CREATE INDEX IF NOT EXISTS _ferry_exits_live ON _ferry_exits(entity, id) WHERE live = 1');
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_results(client_id TEXT NOT NULL, mid INTEGER NOT NULL, result TEXT NOT NULL, PRIMARY KEY(client_id, mid)) WITHOUT ROWID');
  // Who holds the bytes of a file: users who uploaded them (they hashed right) or were served them.
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_file_holders(hash TEXT NOT NULL, user_key TEXT NOT NULL, PRIMARY KEY(hash, user_key)) WITHOUT ROWID');
  // When each result was recorded: a client that syncs but never acknowledges must not keep them forever.
  if (!(await tx.query("SELECT 1 FROM pragma_table_info('_ferry_results') WHERE name = 'at'")).length) {
    await tx.exec('ALTER TABLE _ferry_results ADD COLUMN at INTEGER NOT NULL DEFAULT 0');
  }
  return fresh;
}

/** The lowercase names of a table's columns (none: no such table). */
async function sqliteColumns(tx, table) {
  return new Set((await tx.query('SELECT name FROM pragma_table_info(?)', [table])).map((r) => r.name.toLowerCase()));
}

/**
 * Creates ferry's bookkeeping tables (PostgreSQL); returns true for a new
 * database. Several server processes may start at once: an advisory lock
 * held to the end of the setup transaction lets one create and migrate while
 * the others wait, then find the work done.
 */
async function postgresBookkeeping(tx) {
  await tx.query('SELECT pg_advisory_xact_lock(7166312)');
  const fresh = (await tx.query("SELECT to_regclass('_ferry_state') IS NULL AS fresh"))[0].fresh;
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_state(key TEXT PRIMARY KEY, value TEXT)');
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_clients(client_id TEXT PRIMARY KEY, high_mid BIGINT NOT NULL, acked_mid BIGINT NOT NULL DEFAULT 0, seen_at BIGINT, user_key TEXT)');
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_epochs(version BIGINT PRIMARY KEY, at BIGINT NOT NULL)');
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_exits(entity TEXT NOT NULL, version BIGINT NOT NULL, id TEXT NOT NULL, prev TEXT NOT NULL, keys TEXT, next TEXT, '
    + 'live INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(entity, version))');
  await tx.exec('CREATE INDEX IF NOT EXISTS _ferry_exits_live ON _ferry_exits(entity, id) WHERE live = 1');
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_results(client_id TEXT NOT NULL, mid BIGINT NOT NULL, result TEXT NOT NULL, at BIGINT NOT NULL DEFAULT 0, PRIMARY KEY(client_id, mid))');
  await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_file_holders(hash TEXT NOT NULL, user_key TEXT NOT NULL, PRIMARY KEY(hash, user_key))');
  return fresh;
}

async function postgresColumns(tx, table) {
  const rows = await tx.query('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?', [table]);
  return new Set(rows.map((r) => r.name.toLowerCase()));
}

/**
 * A column whose attribute changed type is converted (PostgreSQL columns are
 * typed; SQLite keeps each stored value as it is). To BIGINT: text that is an
 * integer converts; other text is kept beside it in `_ferry_kept_<column>`
 * (the attribute reads null, as on SQLite, and nothing is lost). To TEXT:
 * every integer converts, and kept text comes back where the value is null.
 */
async function postgresRetype(tx, table, column, type) {
  const want = PG_TYPE[type];
  const [row] = await tx.query('SELECT upper(data_type) AS t FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?', [table, column]);
  if (!row || row.t === want) return false;
  const c = q(column);
  const kept = q(`_ferry_kept_${column}`);
  const t = q(table);
  const integer = `${c} ~ '^-?[0-9]{1,15}$'`;
  if (want === 'BIGINT') {
    await tx.exec(`ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS ${kept} TEXT`);
    await tx.exec(`UPDATE ${t} SET ${kept} = ${c} WHERE ${c} IS NOT NULL AND NOT (${integer})`);
    await tx.exec(`ALTER TABLE ${t} ALTER COLUMN ${c} TYPE BIGINT USING CASE WHEN ${integer} THEN CAST(${c} AS BIGINT) END`);
  } else {
    await tx.exec(`ALTER TABLE ${t} ALTER COLUMN ${c} TYPE ${want} USING CAST(${c} AS ${want})`);
    if ((await postgresColumns(tx, table)).has(`_ferry_kept_${column}`.toLowerCase())) {
      await tx.exec(`UPDATE ${t} SET ${c} = ${kept} WHERE ${c} IS NULL AND ${kept} IS NOT NULL`);
      await tx.exec(`ALTER TABLE ${t} DROP COLUMN ${kept}`);
    }
  }
  return true;
}

export const sqlite = {
  name: 'sqlite',
  where: SQLITE_WHERE,
  TRUE: SQLITE_WHERE.TRUE,
  FALSE: SQLITE_WHERE.FALSE,
  /** A table of the elements (`value`) of the JSON array bound at `?`. */
  rows: 'json_each(?)',
  /** Element i of an array `value`, as a value of SQL type `type`. */
  elem: (i) => `value->>${i}`,
  /** `IN (…)` the elements of the JSON array bound at `?`. */
  inList: () => 'IN (SELECT value FROM json_each(?))',
  greatest: 'max',
  /** The bytes of a column's value as text (a size estimate). */
  octets: (c) => `octet_length(${c})`,
  /** Reads the global version, and (PostgreSQL) holds it to the end of the transaction. */
  versionLock: '',
  /** A member of the JSON object in the TEXT expression `expr`, typed. */
  field: (expr, key) => `${expr}->>'$.${key}'`,
  /** The hash of a file reference column (its index's expression). */
  fileHash: (col) => `json_extract(${col}, '$.hash')`,
  /** Element i of member `key` of the JSON text `expr` (a file's writer in _ferry_meta). */
  fieldElem: (expr, key, i) => `json_extract(${expr}, '$.${key}[${i}]')`,
  /** A JSON array aggregate, as bytes (a Buffer or Uint8Array). */
  agg: (expr, filter) => `CAST(json_group_array(${expr})${filter ? ` FILTER (WHERE ${filter})` : ''} AS BLOB)`,
  /** An aggregate of ids as JSON text, '[]' for none. */
  aggText: (expr, filter) => `json_group_array(${expr})${filter ? ` FILTER (WHERE ${filter})` : ''}`,
  object(pairs) {
    if (pairs.length === 0) return 'json_object()';
    let expr = `json_object(${pairs.slice(0, JSON_OBJECT_CHUNK).map(([k, v]) => `'${k}', ${v}`).join(', ')})`;
    for (let i = JSON_OBJECT_CHUNK; i < pairs.length; i += JSON_OBJECT_CHUNK) {
      expr = `json_set(${expr}, ${pairs.slice(i, i + JSON_OBJECT_CHUNK).map(([k, v]) => `'$.${k}', ${v}`).join(', ')})`;
    }
    return expr;
  },
  json: sqliteJson,
  bookkeeping: sqliteBookkeeping,
  columns: sqliteColumns,
  retype: async () => false,
  columnType: (type) => ({
    string: 'TEXT', integer: 'INTEGER', decimal: 'TEXT', boolean: 'INTEGER',
    datetime: 'TEXT', binary: 'TEXT', file: 'TEXT', association: 'TEXT',
  })[type],
};

const PG_TYPE = {
  string: 'TEXT', integer: 'BIGINT', decimal: 'TEXT', boolean: 'BIGINT',
  datetime: 'TEXT', binary: 'TEXT', file: 'TEXT', association: 'TEXT',
};

export const postgres = {
  name: 'postgres',
  where: POSTGRES_WHERE,
  TRUE: POSTGRES_WHERE.TRUE,
  FALSE: POSTGRES_WHERE.FALSE,
  rows: 'jsonb_array_elements(CAST(? AS jsonb))',
  elem: (i, type = 'TEXT') => `CAST(value->>${i} AS ${type})`,
  inList: (type = 'TEXT') => `IN (SELECT CAST(jsonb_array_elements_text(CAST(? AS jsonb)) AS ${type}))`,
  greatest: 'GREATEST',
  octets: (c) => `octet_length(CAST(${c} AS TEXT))`,
  // Versions become visible in the order they were handed out: a transaction
  // that hands out versions holds this row lock until it commits, so one
  // that committed version 42 has seen 41 commit first, and a pull that sees
  // 42 sees every version below it (no cursor ever passes a change that is
  // still to come).
  versionLock: ' FOR UPDATE',
  field: (expr, key, type = 'TEXT') => `CAST(CAST(${expr} AS jsonb)->>'${key}' AS ${type})`,
  fileHash: (col) => `(CAST(${col} AS jsonb)->>'hash')`,
  fieldElem: (expr, key, i) => `(CAST(${expr} AS jsonb)->'${key}'->>${i})`,
  agg: (expr, filter, order = '') => `CAST(coalesce(json_agg(${expr}${order ? ` ORDER BY ${order}` : ''})${filter ? ` FILTER (WHERE ${filter})` : ''}, '[]') AS TEXT)`,
  aggText: (expr, filter) => `CAST(coalesce(json_agg(${expr})${filter ? ` FILTER (WHERE ${filter})` : ''}, '[]') AS TEXT)`,
  object(pairs) {
    if (pairs.length === 0) return "'{}'::json";
    if (pairs.length <= JSON_OBJECT_CHUNK) return `json_build_object(${pairs.map(([k, v]) => `'${k}', ${v}`).join(', ')})`;
    // json has no merge: past the argument limit, jsonb's (its values may be json), back as json.
    const parts = [];
    for (let i = 0; i < pairs.length; i += JSON_OBJECT_CHUNK) {
      parts.push(`jsonb_build_object(${pairs.slice(i, i + JSON_OBJECT_CHUNK).map(([k, v]) => `'${k}', ${v}`).join(', ')})`);
    }
    return `CAST((${parts.join(' || ')}) AS json)`;
  },
  json: postgresJson,
  bookkeeping: postgresBookkeeping,
  columns: postgresColumns,
  retype: postgresRetype,
  columnType: (type) => PG_TYPE[type],
};
