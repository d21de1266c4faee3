// The sync server's PostgreSQL connection: the same small interface as a
// ferry database (query, exec, transaction, close), over a pool of the `pg`
// driver, so store.js runs its logic unchanged on either database.
import { FerryError } from '../bindings/errors.js';

/** `?` placeholders (outside quotes) as PostgreSQL's $1, $2, …; cached per statement text. */
const numbered = new Map();
export function numberParams(sql) {
  let out = numbered.get(sql);
  if (out !== undefined) return out;
  let n = 0;
  let quote = null;
  out = '';
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === '?') {
      out += `$${++n}`;
      continue;
    }
    out += ch;
  }
  if (numbered.size > 5000) numbered.clear();
  numbered.set(sql, out);
  return out;
}

async function loadDriver() {
  try {
    return (await import('pg')).default;
  } catch (e) {
    throw new FerryError('misuse', "the PostgreSQL backend needs the npm package pg (npm install pg)", { cause: e });
  }
}

/**
 * Opens a pool on `url` (postgres://user@host:port/db).
 * @returns {Promise<{ query, exec, transaction, close, name: 'postgres' }>}
 *   query(sql, params) -> rows; exec(sql, params) -> { changes };
 *   transaction(fn) runs fn(tx) in BEGIN … COMMIT on one connection (ROLLBACK when it throws).
 */
export async function openPostgres(url, { max = 10 } = {}) {
  const pg = await loadDriver();
  // Versions, counts and integers are within 2^53 (the protocol's numbers):
  // read them as numbers, as SQLite gives them, not as strings.
  const types = {
    getTypeParser(oid, format) {
      if (oid === 20) return (v) => Number(v);
      return pg.types.getTypeParser(oid, format);
    },
  };
  const pool = new pg.Pool({ connectionString: url, max, types });
  // An idle connection the database dropped must not take the process down.
  pool.on('error', () => {});
  try {
    const c = await pool.connect();
    c.release();
  } catch (e) {
    await pool.end().catch(() => {});
    throw new FerryError('io', `cannot connect to PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')}: ${e.message}`, { cause: e });
  }
  const run = (client) => ({
    async query(sql, params = []) {
      return (await client.query(numberParams(sql), params)).rows;
    },
    async exec(sql, params = []) {
      return { changes: (await client.query(numberParams(sql), params)).rowCount ?? 0 };
    },
  });
  const direct = run(pool);
  return {
    name: 'postgres',
    query: direct.query,
    exec: direct.exec,
    async transaction(fn) {
      const client = await pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        const out = await fn(run(client));
        await client.query('COMMIT');
        return out;
      } catch (e) {
        try { await client.query('ROLLBACK'); } catch { broken = true; }
        throw e;
      } finally {
        client.release(broken);
      }
    },
    async close() {
      await pool.end();
    },
  };
}
