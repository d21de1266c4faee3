// Shared setup for the sync suites: the example model of the README, a server
// behind a fault proxy, and clients on file storage.
import path from 'node:path';
import { open } from '../../bindings/index.js';
import { createSyncServer } from './backend.js';
import { startFaultProxy } from './fixtures/fault-proxy.js';
import { tempDir } from './helpers.js';

export const MODEL = {
  version: '3',
  entities: {
    Region: { attributes: { name: 'string' }, sync: 'all' },
    Customer: {
      attributes: { name: 'string', email: 'string', credit: 'decimal', active: 'boolean', since: 'datetime', photo: 'file' },
      associations: { region: 'Region' },
      sync: 'all', conflict: 'last-write-wins',
    },
    Visit: { attributes: { note: 'string', status: 'string' }, associations: { customer: 'Customer' }, sync: { where: "status != 'archived'" } },
    Feedback: { attributes: { text: 'string' }, sync: 'nothing-clear' },
    Note: { attributes: { text: 'string' }, sync: 'nothing-preserve' },
    Draft: { attributes: { text: 'string' }, sync: 'never' },
  },
};

export async function startWorld(tag, opts = {}) {
  const dir = tempDir(tag);
  const world = { dir, clients: [] };
  world.srv = await createSyncServer({ model: opts.model || MODEL, dataDir: path.join(dir, 'server'), log: () => {}, ...opts.server });
  world.proxy = await startFaultProxy(world.srv.url);
  world.client = async (name, extra = {}) => {
    const db = await open({
      name, storage: 'file', path: path.join(dir, `${name}.db`),
      server: `${world.proxy.url}/sync`, syncOnOpen: false, ...extra,
    });
    world.clients.push(db);
    return db;
  };
  world.stop = async () => {
    for (const c of world.clients) await c.close().catch(() => {});
    await world.proxy.close();
    await world.srv.close();
  };
  return world;
}

/** Rows of an entity table as a map id -> row, for comparing replicas. */
export async function snapshot(db, entity, cols) {
  const rows = await db.query(`SELECT id, ${cols.map((c) => `"${c}"`).join(', ')} FROM "${entity}" ORDER BY id`);
  return Object.fromEntries(rows.map((r) => [r.id, r]));
}
