// A pull of 100,000 objects of about 200 bytes (~24 MB of JSON) over
// loopback in pages of 5,000 delivers every object once, and a `where`
// entity (20,000 objects, a tenth filtered out) its removals. The times are
// diagnostics only (a timed assertion fails under load, not on a defect):
// the speed is measured by bench/sync.mjs (npm run bench, BENCHMARKS.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createSyncServer } from './backend.js';
import { tempDir } from './helpers.js';

const MODEL = {
  version: '1',
  entities: {
    Customer: { attributes: { name: 'string', email: 'string', credit: 'decimal', active: 'boolean', since: 'datetime', note: 'string' } },
    Visit: { attributes: { note: 'string', status: 'string' }, sync: { where: "status != 'archived'" } },
  },
};
const N = 100000;
const NV = 20000;

async function pullAll(srv, entity) {
  let cursor = 0;
  let objects = 0;
  let removed = 0;
  let bytes = 0;
  const pages = [];
  for (;;) {
    const t = performance.now();
    const res = await fetch(`${srv.url}/sync/pull`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: 'bench', modelVersion: '1', entity, cursor, limit: 5000 }),
    });
    const text = await res.text();
    const page = JSON.parse(text);
    pages.push(performance.now() - t);
    bytes += text.length;
    objects += page.objects.length;
    removed += page.removed.length;
    cursor = page.cursor;
    if (!page.more) return { objects, removed, bytes, pages };
  }
}

test('a_pull_of_100k_objects_should_deliver_each_once_in_pages', async (t) => {
  const srv = await createSyncServer({ model: MODEL, dataDir: path.join(tempDir('server-throughput'), 'data') });
  try {
    let customers = [];
    let visits = [];
    for (let i = 0; i < N; i++) {
      customers.push({
        id: `cust-${String(i).padStart(6, '0')}`, name: `Customer number ${i}`, email: `customer${i}@example.com`,
        credit: `${i % 10000}.50`, active: i % 3 !== 0, since: '2026-11-24T10:00:00.000Z', note: 'n'.repeat(50),
      });
      if (i < NV) visits.push({ id: `visit-${i}`, note: 'v'.repeat(120), status: i % 10 === 0 ? 'archived' : 'done' });
    }
    let t0 = performance.now();
    await srv.write('Customer', customers);
    await srv.write('Visit', visits);
    t.diagnostic(`server-side write of ${N} + ${NV} objects: ${(performance.now() - t0).toFixed(0)} ms`);
    customers = visits = null;   // client and server share this process: free what the seed held

    // time spent building pages on the server (query + reply bytes), apart from HTTP and the client's parse
    const pull = srv.store.pull.bind(srv.store);
    let serverMs = [];
    srv.store.pull = async (...args) => {
      const t1 = performance.now();
      try { return await pull(...args); } finally { serverMs.push(performance.now() - t1); }
    };

    for (const [entity, count] of [['Customer', N], ['Visit', NV]]) {
      serverMs = [];
      t0 = performance.now();
      const r = await pullAll(srv, entity);
      const total = performance.now() - t0;
      const avg = r.pages.reduce((a, b) => a + b, 0) / r.pages.length;
      t.diagnostic(`${entity}: ${r.objects} objects + ${r.removed} removed, ${r.pages.length} pages, `
        + `${(r.bytes / 1e6).toFixed(1)} MB (${Math.round(r.bytes / count)} B/object): ${total.toFixed(0)} ms total, `
        + `${avg.toFixed(1)} ms/page avg, ${Math.max(...r.pages).toFixed(1)} ms max; `
        + `server ${(serverMs.reduce((a, b) => a + b, 0) / serverMs.length).toFixed(1)} ms/page`);
      assert.equal(r.objects + r.removed, count);
      assert.equal(r.removed, entity === 'Visit' ? NV / 10 : 0);
    }
  } finally {
    await srv.close();
  }
});
