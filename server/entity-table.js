// One entity's table on the server: its columns under the model, its where
// filter (and whether that is an access rule), and the SQL of its pages,
// exits, lookups and bulk writes, spelled by the dialect (sql.js).
import { compileWhere, isDownloaded, parseWhere } from './model.js';
import { q } from './sql.js';
import { toJson } from './values.js';

// ferry__type in core/model.h: the digit each attribute type has in a digest.
const TYPE_CODE = { string: 0, integer: 1, decimal: 2, boolean: 3, datetime: 4, binary: 5, file: 6, association: 7 };

/** The columns (name -> type) an entity has under the model: attributes then associations. */
function membersOf(entity) {
  const members = new Map();
  for (const [n, t] of Object.entries(entity.attributes)) members.set(n, t);
  for (const n of Object.keys(entity.associations)) members.set(n, 'association');
  return members;
}

/** The column names a parsed where filter reads, in first-use order. */
function columnsOf(tree) {
  const out = new Set();
  const walk = (node) => {
    if (!node || typeof node !== 'object') return;
    if (node.k === 'col') out.add(node.name);
    for (const v of Object.values(node)) {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') walk(v);
    }
  };
  walk(tree);
  return [...out];
}

export class EntityTable {
  constructor(name, entity, sql) {
    this.sql = sql;
    this.name = name;
    this.entity = entity;
    this.members = membersOf(entity);
    this.table = q(name);
    this.filter = isDownloaded(entity) && typeof entity.sync === 'object' ? compileWhere(entity, entity.sync.where, sql.where) : null;
    // A filter that names the user is an access rule, on pushes too; one
    // that does not only scopes what devices download.
    this.access = this.filter && /\$user\b/.test(entity.sync.where.replace(/'(?:[^']|'')*'/g, '')) ? this.filter : null;
    // The columns the filter reads (from its parse tree, id included when it
    // names it): the filter is a function of these and the user alone, so a
    // write that changes none of them cannot move the object into or out of
    // anyone's view, and objects alike in them are alike to it.
    this.filterColumns = this.access ? columnsOf(parseWhere(entity.sync.where, entity)) : [];
    this.accessColumns = this.filterColumns.filter((n) => n !== 'id');
    const values = sql.object([...this.members].map(([n, type]) => [n, sql.json(n, type)]));
    this.objectJson = sql.object([['id', 'id'], ['version', '_ferry_version'], ['values', values]]);
    const cols = ['id', ...this.members.keys(), '_ferry_version', '_ferry_deleted', '_ferry_meta'];
    const typeOf = (c) => (this.members.has(c) ? sql.columnType(this.members.get(c)) : c === '_ferry_version' || c === '_ferry_deleted' ? 'BIGINT' : 'TEXT');
    this.upsertSql = `INSERT INTO ${this.table}(${cols.map(q).join(', ')}) `
      + `SELECT ${cols.map((c, i) => sql.elem(i, typeOf(c))).join(', ')} FROM ${sql.rows} WHERE ${sql.TRUE} `
      + `ON CONFLICT(id) DO UPDATE SET ${cols.slice(1).map((c) => `${q(c)} = excluded.${q(c)}`).join(', ')}`;
    this.columns = cols;
    // What a pull reads: every column of the entity table (a where filter may name any of them) but the metadata.
    this.readColumns = ['id', ...this.members.keys(), '_ferry_version', '_ferry_deleted'].map(q).join(', ');
    this.pageSqlCache = new Map();
    this.fileAttrs = [...this.members].filter(([, type]) => type === 'file').map(([n]) => n);
  }

  /** The where filter for a user: { sql, params }. */
  match(user) {
    return this.filter ? this.filter(user) : { sql: this.sql.TRUE, params: [] };
  }

  /**
   * One query per page: the next `limit` rows by version (the version index),
   * the objects' JSON built by SQLite, ids of tombstones and of objects the
   * filter excludes, and whether rows remain. Only the columns the reply
   * needs are read (not _ferry_meta).
   */
  /** An estimate of the JSON bytes of an object (its stored columns plus the syntax around them). */
  sizeExpr() {
    return `(${[`octet_length(id) + 40`, ...[...this.members.keys()].map((n) => `coalesce(${this.sql.octets(q(n))}, 4) + ${n.length + 4}`)].join(' + ')})`;
  }

  /** The estimated bytes of the next `limit` rows: most pages fit their budget and take the plain query. */
  sizeSql() {
    if (!this.sizeSqlCache) {
      this.sizeSqlCache = `SELECT sum(${this.sizeExpr()}) AS bytes FROM (SELECT * FROM ${this.table} WHERE _ferry_version > ? ORDER BY _ferry_version LIMIT ?) s`;
    }
    return this.sizeSqlCache;
  }

  /**
   * One query per page: the next rows by version (the version index), at
   * most `limit` and, when `bounded`, while their estimated JSON fits the
   * byte budget (the first row always does, so any object downloads); the
   * objects' JSON built by SQLite, ids of tombstones and of objects the
   * filter excludes, and whether rows remain. Only the columns the reply
   * needs are read (not _ferry_meta). The estimate can only exceed the real
   * size by escaping, a small factor far under the client's reply limit.
   */
  pageSql(whereSql, bounded) {
    const key = `${bounded ? 'b' : 'p'}${whereSql}`;
    let sql = this.pageSqlCache.get(key);
    if (!sql) {
      const n = `CASE WHEN _ferry_m THEN ${this.sizeExpr()} ELSE octet_length(id) + 3 END`;
      const page = bounded
        ? `cand AS (SELECT ${this.readColumns}, (_ferry_deleted = 0 AND (${whereSql})) AS _ferry_m FROM ${this.table} `
          + 'WHERE _ferry_version > ? ORDER BY _ferry_version LIMIT ?), '
          + `run AS (SELECT *, ${n} AS _ferry_n, sum(${n}) OVER (ORDER BY _ferry_version ROWS UNBOUNDED PRECEDING) AS _ferry_run FROM cand), `
          + 'page AS (SELECT * FROM run WHERE _ferry_run - _ferry_n < ?) '
        : `page AS (SELECT ${this.readColumns}, (_ferry_deleted = 0 AND (${whereSql})) AS _ferry_m FROM ${this.table} `
          + 'WHERE _ferry_version > ? ORDER BY _ferry_version LIMIT ?) ';
      sql = `WITH ${page}`
        + 'SELECT count(*) AS n, max(_ferry_version) AS cursor, '
        + `${this.sql.agg(this.objectJson, '_ferry_m', '_ferry_version')} AS objects, `
        + `${this.sql.agg('id', 'NOT _ferry_m', '_ferry_version')} AS removed, `
        // The table's highest version is one index lookup on both databases (an EXISTS past the page's was a scan on PostgreSQL).
        + `coalesce((SELECT max(_ferry_version) FROM ${this.table}) > (SELECT max(_ferry_version) FROM page), ${this.sql.FALSE}) AS more `
        + 'FROM page';
      if (this.pageSqlCache.size > 100) this.pageSqlCache.clear();
      this.pageSqlCache.set(key, sql);
    }
    return sql;
  }

  /**
   * The ids that left the view of a user between two versions (access-filtered
   * entities). Its SQL reads `whereSql` three times: pass the filter's
   * parameters three times after entity and the two versions.
   */
  exitsSql(whereSql) {
    const key = `x${whereSql}`;
    let sql = this.pageSqlCache.get(key);
    if (!sql) {
      // Only the columns the filter reads (its parse tree): each exit's stored state is JSON, read per column.
      // `keys` holds just those columns (small JSON, read fast); it is null
      // where the filter changed since the exit, and the whole state is read.
      // An id twice in one page's exits is listed twice (a client deletes once),
      // which is cheaper than sorting every page's ids to drop the rare repeat.
      // Whether the object is readable now: from the exit's `next` while it is
      // `live` (no write since has changed the filter's columns or brought the
      // object back), else from the object's row (a lookup per exit).
      const typeOf = (n) => this.sql.columnType(this.members.get(n));
      const prevCols = this.accessColumns.map((n) => `${this.sql.field('coalesce(x.keys, x.prev)', n, typeOf(n))} AS ${q(n)}`).join(', ');
      const nextCols = this.accessColumns.map((n) => `${this.sql.field('_ferry_next', n, typeOf(n))} AS ${q(n)}`).join(', ');
      sql = `WITH xs AS (SELECT x.id AS id, x.live AS _ferry_live, x.next AS _ferry_next${prevCols ? `, ${prevCols}` : ''} FROM _ferry_exits x WHERE x.entity = ? AND x.version > ? AND x.version <= ?), `
        + `gone AS (SELECT id, _ferry_live, _ferry_next FROM xs WHERE (${whereSql})), `
        + `cur AS (SELECT id, _ferry_live, _ferry_next IS NULL AS _ferry_dead${nextCols ? `, ${nextCols}` : ''} FROM gone) `
        + `SELECT ${this.sql.agg('id')} AS removed FROM cur `
        + `WHERE CASE WHEN _ferry_live = 1 THEN _ferry_dead OR NOT coalesce((${whereSql}), ${this.sql.FALSE}) `
        + `ELSE NOT EXISTS (SELECT 1 FROM ${this.table} c WHERE c.id = cur.id AND c._ferry_deleted = 0 AND (${whereSql})) END`;
      this.pageSqlCache.set(key, sql);
    }
    return sql;
  }

  idsSql(whereSql) {
    return `SELECT ${this.sql.agg(this.objectJson, '_ferry_m')} AS objects, `
      + `${this.sql.aggText('id', '_ferry_m')} AS present `
      + `FROM (SELECT ${this.readColumns}, (_ferry_deleted = 0 AND (${whereSql})) AS _ferry_m FROM ${this.table} `
      + `WHERE id ${this.sql.inList()}) s`;
  }

  /** Arguments of ferry_digest()/ferry_row_hash() (core/sync/values.c): id, type digits, columns by name. */
  digestArgs() {
    if (!this.digestArgsCache) {
      const names = [...this.members.keys()].sort();
      const types = names.map((n) => TYPE_CODE[this.members.get(n)]).join('');
      this.digestArgsCache = `id, '${types}'${names.map((n) => `, ${q(n)}`).join('')}`;
    }
    return this.digestArgsCache;
  }

  /** The stored row as protocol JSON values (current model members only). */
  valuesOf(row) {
    const out = {};
    for (const [n, t] of this.members) out[n] = toJson(t, row[n]);
    return out;
  }

  /** Encodes rows for upsertSql (a JSON array of arrays in column order). */
  encodeRows(rows) {
    const cols = this.columns;
    const out = rows.map((row) => cols.map((c) => {
      if (c === '_ferry_meta') return JSON.stringify(row._meta);
      const v = row[c];
      return typeof v === 'bigint' ? String(v) : (v ?? null);
    }));
    return JSON.stringify(out);
  }
}
