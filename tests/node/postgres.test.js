// The sync server on PostgreSQL: what only a shared database brings (several
// server processes, concurrent transactions). Runs when FERRY_TEST_POSTGRES
// names a database: npm test starts a throwaway cluster and runs this with
// the other server suites on it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../../bindings/index.js';
import crypto from 'node:crypto';
import { backendFor, backendName, createSyncServer } from './backend.js';
import { MODEL } from './sync-helpers.js';
import { tempDir } from './helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const skip = backendName !== 'postgres' && 'needs FERRY_TEST_POSTGRES (npm test starts a PostgreSQL cluster for it)';

const post = async (srv, route, body) => {
  const res = await fetch(`${srv.url}/sync/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
};
const upsert = (mid, id, name) => ({ mid, entity: 'Region', id, op: 'upsert', changed: ['name'], values: { name }, base: 0, ts: Date.now() });

test('servers_starting_together_on_one_database_should_set_up_the_model_once', { skip }, async () => {
  const dir = tempDir('pg-start');
  const started = await Promise.allSettled([1, 2, 3, 4].map(() => createSyncServer({ model: MODEL, dataDir: dir, log: () => {} })));
  const servers = started.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  try {
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    assert.equal(servers.filter((s) => s.store.created).length, 1, 'one server created the tables, the others found them');
    await servers[0].write('Region', [{ id: 'r1', name: 'North' }]);
    const page = JSON.parse((await servers[3].store.pull({ entity: 'Region', cursor: 0 })).toString());
    assert.deepEqual(page.objects.map((o) => [o.id, o.values.name]), [['r1', 'North']]);
  } finally {
    for (const s of servers) await s.close();
  }
});

test('servers_with_no_shared_folder_should_share_files_through_the_postgresql_blob_store', { skip }, async () => {
  // Each server has a folder of its own (another machine); only the database is shared.
  const backend = await backendFor(path.join(tempDir('pg-blobs'), 'shared'));
  const model = { version: '1', entities: { Photo: { attributes: { caption: 'string', image: 'file' }, sync: 'all' } } };
  const [one, two] = await Promise.all([1, 2].map((n) => createSyncServer({ model, dataDir: path.join(tempDir(`pg-blobs-${n}`), 'server'), backend, blobs: 'postgres', log: () => {} })));
  try {
    const bytes = crypto.randomBytes(3 * 1024 * 1024 + 17);
    const ref = { hash: crypto.createHash('sha256').update(bytes).digest('hex'), size: bytes.length, type: 'image/jpeg', name: 'meter.jpg' };
    await post(one, 'push', { clientId: 'c-pg-blobs-device-0001', modelVersion: '1', mutations: [{ mid: 1, entity: 'Photo', id: 'p1', op: 'upsert', changed: ['caption', 'image'], values: { caption: 'meter', image: ref }, base: 0, ts: Date.now() }] });
    const put = (srv, offset, end) => fetch(`${srv.url}/sync/files/${ref.hash}?offset=${offset}`, { method: 'PUT', body: bytes.subarray(offset, end) });
    assert.deepEqual(await (await put(one, 0, 2_000_000)).json(), { hash: ref.hash, size: bytes.length, received: 2_000_000, complete: false });
    const head = await fetch(`${two.url}/sync/files/${ref.hash}`, { method: 'HEAD' });
    assert.equal(head.headers.get('x-ferry-received'), '2000000', 'the other process knows how far the upload stands');
    assert.equal((await (await put(two, 2_000_000)).json()).complete, true);
    for (const srv of [one, two]) {
      const got = await fetch(`${srv.url}/sync/files/${ref.hash}`);
      assert.equal(got.status, 200);
      assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes), 'byte-exact from either process');
    }
    const part = await fetch(`${one.url}/sync/files/${ref.hash}`, { headers: { range: 'bytes=1048570-1048580' } });
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(1048570, 1048581)));
  } finally {
    await one.close();
    await two.close();
  }
});

test('a_push_that_commits_later_should_not_be_skipped_by_a_pull_that_came_between', { skip }, async () => {
  // A's push holds its transaction open (its authorize hook waits) after it
  // has taken versions; B's push comes meanwhile on another server. B must
  // not commit a version above A's while A's are still invisible: a pull
  // between the two would move its cursor past A's changes for good.
  const dir = tempDir('pg-order');
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  let entered;
  const inside = new Promise((resolve) => { entered = resolve; });
  const slow = await createSyncServer({
    model: MODEL, dataDir: dir, log: () => {},
    authorize: async ({ id }) => { if (id === 'slow-2') { entered(); await gate; } return true; },
  });
  const fast = await createSyncServer({ model: MODEL, dataDir: dir, log: () => {} });
  try {
    const a = post(slow, 'push', { clientId: 'client-a-0000000001', modelVersion: MODEL.version, ackedMid: 0, mutations: [upsert(1, 'slow-1', 'one'), upsert(2, 'slow-2', 'two')] });
    await inside;
    let bDone = false;
    const b = post(fast, 'push', { clientId: 'client-b-0000000001', modelVersion: MODEL.version, ackedMid: 0, mutations: [upsert(1, 'fast-1', 'three')] })
      .then((r) => { bDone = true; return r; });
    const between = await post(fast, 'pull', { clientId: 'client-c-0000000001', modelVersion: MODEL.version, entity: 'Region', cursor: 0 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bDone, false, "B's push waits for A's to commit");
    assert.deepEqual(between.objects, [], 'nothing committed yet');
    release();
    const [ra, rb] = await Promise.all([a, b]);
    assert.deepEqual([...ra.results, ...rb.results].map((r) => r.status), ['applied', 'applied', 'applied']);
    const versions = [...ra.results, ...rb.results].map((r) => r.version);
    assert.ok(versions[2] > versions[1] && versions[1] > versions[0], `versions in commit order: ${versions}`);
    const after = await post(fast, 'pull', { clientId: 'client-c-0000000001', modelVersion: MODEL.version, entity: 'Region', cursor: between.cursor });
    assert.deepEqual(after.objects.map((o) => o.id).sort(), ['fast-1', 'slow-1', 'slow-2'], 'the pull from the earlier cursor gets every change');
  } finally {
    release();
    await slow.close();
    await fast.close();
  }
});

test('a_retried_push_should_be_a_duplicate_on_another_server_process', { skip }, async () => {
  const dir = tempDir('pg-dedupe');
  const one = await createSyncServer({ model: MODEL, dataDir: dir, log: () => {} });
  const two = await createSyncServer({ model: MODEL, dataDir: dir, log: () => {} });
  try {
    const body = { clientId: 'client-d-0000000001', modelVersion: MODEL.version, ackedMid: 0, mutations: [upsert(1, 'd1', 'first')] };
    const first = await post(one, 'push', body);
    const again = await post(two, 'push', body);
    assert.equal(first.results[0].status, 'applied');
    assert.equal(again.results[0].duplicate, true, 'the second server knows the mutation was applied');
    assert.equal(await two.version(), first.results[0].version, 'no second version');
  } finally {
    await one.close();
    await two.close();
  }
});

/** A sync server process on the shared database (tests/node/fixtures/server-child.js). */
function startServer(dataDir) {
  const child = spawn(process.execPath, [path.join(here, 'fixtures', 'server-child.js'), dataDir], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  const url = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.trim()); });
    child.once('exit', (code) => reject(new Error(`server process exited with ${code}`)));
  });
  return { child, url };
}

/** Sends each request to one of the live servers, picked at random (502 when none answers). */
function randomBalancer(random) {
  const upstreams = [];
  const server = http.createServer((req, res) => {
    const live = upstreams.filter(Boolean);
    if (live.length === 0) { res.writeHead(502).end(); return; }
    const target = new URL(live[Math.floor(random() * live.length)]);
    const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`, upstreams,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  })));
}

test('devices_spread_over_two_server_processes_should_converge_when_one_is_killed_mid_run', { skip, timeout: 240_000 }, async () => {
  const seed = 7;
  let s = seed;
  const random = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  const dir = tempDir('pg-two');
  const dataDir = path.join(dir, 'server');
  const procs = [startServer(dataDir), startServer(dataDir)];
  const lb = await randomBalancer(random);
  lb.upstreams[0] = await procs[0].url;
  lb.upstreams[1] = await procs[1].url;
  const devices = [];
  const written = new Set();
  try {
    for (let i = 0; i < 4; i++) {
      const db = await open({ name: `dev${i}`, storage: 'file', path: path.join(dir, `dev${i}.db`), server: `${lb.url}/sync`, syncOnOpen: false });
      devices.push(db);
      await db.sync();   // the model: the entity tables
    }
    for (let round = 0; round < 12; round++) {
      if (round === 5) {
        // One process dies mid-run (SIGKILL: no goodbye) and comes back on another port.
        lb.upstreams[0] = null;
        procs[0].child.kill('SIGKILL');
        procs[0] = startServer(dataDir);
        lb.upstreams[0] = await procs[0].url;
      }
      await Promise.all(devices.map(async (db, i) => {
        for (let k = 0; k < 3; k++) {
          const id = `d${i}-${round}-${k}`;
          await db.exec('INSERT INTO "Region"(id, name) VALUES (?, ?)', [id, `device ${i} round ${round}`]);
          written.add(id);
        }
        // Shared objects every device edits: last write wins, never lost or doubled.
        await db.exec('INSERT INTO "Customer"(id, name, active) VALUES (?, ?, 1) ON CONFLICT(id) DO UPDATE SET name = excluded.name',
          [`shared-${Math.floor(random() * 3)}`, `device ${i} round ${round}`]);
        await db.sync().catch(() => {});   // a request cut by the kill fails; the change stays pending
      }));
    }
    // Heal: every device syncs until nothing is pending and a last round pulls what the others sent.
    for (let pass = 0; pass < 4; pass++) {
      for (const db of devices) await db.sync().catch(() => {});
    }
    for (const db of devices) assert.equal((await db.status()).pendingChanges, 0, 'nothing left pending');
    const view = await createSyncServer({ model: MODEL, dataDir, log: () => {} });
    try {
      const onServer = (await view.db.query('SELECT id FROM "Region" WHERE _ferry_deleted = 0 ORDER BY id')).map((r) => r.id);
      assert.deepEqual(onServer, [...written].sort(), 'every write is on the server, once');
      const versions = await view.db.query('SELECT count(*) AS n, count(DISTINCT _ferry_version) AS d FROM "Region"');
      assert.equal(versions[0].n, versions[0].d, 'unique versions');
      const shared = await view.db.query('SELECT id, name FROM "Customer" ORDER BY id');
      for (const [i, db] of devices.entries()) {
        assert.deepEqual((await db.query('SELECT id FROM "Region" ORDER BY id')).map((r) => r.id), onServer, `device ${i} holds every object`);
        assert.deepEqual(await db.query('SELECT id, name FROM "Customer" ORDER BY id'), shared, `device ${i} agrees on the shared objects (seed ${seed})`);
      }
    } finally {
      await view.close();
    }
  } finally {
    for (const db of devices) await db.close().catch(() => {});
    await lb.close();
    for (const p of procs) p.child.kill('SIGKILL');
  }
});
