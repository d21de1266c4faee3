// verify (docs/PROTOCOL.md): digests of what a user may see, per entity,
// for a device to compare with its own, and the objects' hashes in id order
// to find what differs. One hashing rule, the core's, on both backends.
import { open } from '../bindings/index.js';
import { isDownloaded } from './model.js';
import { q, sqlite } from './sql.js';

/**
 * Digests of what `user` may see, per entity, without the objects the client
 * has pending (body: { entities: [{ entity, exclude: [ids] }] }).
 * @returns {Promise<object>} { modelVersion, entities: { name: digest } }
 */
export async function verify(store, body, { user = {} } = {}) {
  const out = {};
  for (const { entity, exclude = [], after, limit } of body.entities) {
    const t = store.tables.get(entity);
    if (!t || !isDownloaded(store.model.entities[entity])) { out[entity] = null; continue; }
    const where = t.match(user);
    const scope = `FROM ${t.table} WHERE _ferry_deleted = 0 AND (${where.sql}) AND id NOT ${store.sql.inList()}`;
    if (store.sql.name !== 'sqlite') {
      out[entity] = await digestElsewhere(store, t, scope, [...where.params, JSON.stringify(exclude)], after, limit);
    } else if (after === undefined) {
      const [r] = await store.db.query(`SELECT ferry_digest(${t.digestArgs()}) AS d ${scope}`, [...where.params, JSON.stringify(exclude)]);
      out[entity] = { digest: r.d };
    } else {
      // The object hashes in id order from `after`, for the client to find what differs.
      const n = Math.max(1, Math.min(limit ?? 20000, 20000));
      const rows = await store.db.query(`SELECT id, ferry_row_hash(${t.digestArgs()}) AS h ${scope} AND id > ? ORDER BY id LIMIT ?`,
        [...where.params, JSON.stringify(exclude), after, n + 1]);
      const more = rows.length > n;
      if (more) rows.pop();
      out[entity] = { objects: rows.map((r) => [r.id, r.h]), more };
    }
  }
  return { modelVersion: store.model.version, entities: out };
}

/**
 * Digests for a database without ferry's digest functions (PostgreSQL): the
 * rows go, a chunk at a time in id order, through a scratch in-memory ferry
 * database, so the hash is the core's one rule (core/sync/values.c) on both
 * backends. A digest is a count and a sum of row hashes (mod 2^64), so the
 * chunks' digests add up.
 */
const DIGEST_CHUNK = 5000;
async function digestElsewhere(store, t, scope, params, after, limit) {
  if (!store.scratch) store.scratch = open({ name: 'verify-scratch', storage: 'memory' });
  const scratch = await store.scratch;
  const names = [...t.members.keys()].sort();
  const cols = ['id', ...names];
  const select = `SELECT ${cols.map(q).join(', ')} ${scope} AND id > ? ORDER BY id LIMIT ?`;
  const hashes = after !== undefined;
  const want = hashes ? Math.max(1, Math.min(limit ?? 20000, 20000)) : Infinity;
  let count = 0n;
  let sum = 0n;
  const objects = [];
  let from = hashes ? after : '';
  for (;;) {
    const n = Math.min(DIGEST_CHUNK, want + 1 - objects.length);
    const rows = await store.db.query(select, [...params, from, n]);
    if (rows.length === 0) break;
    from = rows[rows.length - 1].id;
    const json = JSON.stringify(rows.map((r) => cols.map((c) => (typeof r[c] === 'bigint' ? String(r[c]) : r[c] ?? null))));
    await scratch.transaction(async (tx) => {
      await tx.exec(`CREATE TEMP TABLE _v(${cols.map((c) => `${q(c)} ${c === 'id' ? 'TEXT' : sqlite.columnType(t.members.get(c))}`).join(', ')})`);
      await tx.exec(`INSERT INTO _v SELECT ${cols.map((c, i) => `value->>${i}`).join(', ')} FROM json_each(?)`, [json]);
      if (hashes) {
        for (const r of await tx.query(`SELECT id, ferry_row_hash(${t.digestArgs()}) AS h FROM _v ORDER BY id`)) objects.push([r.id, r.h]);
      } else {
        const [{ d }] = await tx.query(`SELECT ferry_digest(${t.digestArgs()}) AS d FROM _v`);
        const [c, h] = d.split(':');
        count += BigInt(c);
        sum = (sum + BigInt(`0x${h}`)) & 0xffffffffffffffffn;
      }
      await tx.exec('DROP TABLE _v');
    });
    if (rows.length < n || objects.length > want) break;
  }
  if (!hashes) return { digest: `${count}:${sum.toString(16).padStart(16, '0')}` };
  const more = objects.length > want;
  if (more) objects.length = want;
  return { objects, more };
}
