// The sync server the Node suites test: SQLite (the default), or PostgreSQL
// when FERRY_TEST_POSTGRES names a database (scripts/test.sh starts a
// throwaway cluster and runs the server suites a second time against it).
// On PostgreSQL each data folder gets a schema of its own, so a server
// restarted on the same folder finds its data and two servers of one test
// share nothing unless they share a folder.
import crypto from 'node:crypto';
import path from 'node:path';
import { createSyncServer as create } from '../../server/index.js';

const url = process.env.FERRY_TEST_POSTGRES || '';
export const backendName = url ? 'postgres' : 'sqlite';

let admin = null;
const schemas = new Map();   // name -> its creation, once per process
function schemaFor(dataDir) {
  const name = `t_${crypto.createHash('sha256').update(dataDir ? path.resolve(dataDir) : crypto.randomUUID()).digest('hex').slice(0, 24)}`;
  if (!schemas.has(name)) {
    schemas.set(name, (async () => {
      admin ??= import('pg').then(({ default: pg }) => {
        const pool = new pg.Pool({ connectionString: url, max: 1 });
        pool.on('error', () => {});
        return pool;
      });
      try {
        await (await admin).query(`CREATE SCHEMA IF NOT EXISTS ${name}`);
      } catch (e) {
        // IF NOT EXISTS is not atomic: another process creating the same schema at once wins the race.
        if (e.code !== '23505' && e.code !== '42P06') throw e;
      }
      return name;
    })());
  }
  return schemas.get(name);
}

/** The URL of a database whose tables live in `schema`. */
export function schemaUrl(schema) {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

/**
 * createSyncServer() on the backend under test (an explicit `backend` is
 * kept). On PostgreSQL the files go to its blob store too, unless the test
 * names one.
 */
export async function createSyncServer(options = {}) {
  if (!url || options.backend) return create(options);
  return create({ blobs: 'postgres', ...options, backend: { postgres: schemaUrl(await schemaFor(options.dataDir)) } });
}

/** The backend options for a server process a test starts itself (same schema rule). */
export async function backendFor(dataDir) {
  return url ? { postgres: schemaUrl(await schemaFor(dataDir)) } : 'sqlite';
}
