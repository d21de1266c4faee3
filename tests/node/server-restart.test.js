// The sync server across restarts: data, versions and client high-water
// marks survive close + createSyncServer on the same dataDir (and SIGKILL);
// a new model version migrates the tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendName, createSyncServer } from './backend.js';
import { tempDir } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const base = tempDir('server-restart');
let dirs = 0;
const dataDir = () => path.join(base, `d${++dirs}`);

const V1 = {
  version: '1',
  entities: {
    Note: { attributes: { title: 'string', body: 'string' } },
    Old: { attributes: { x: 'string' } },
    Later: { attributes: { y: 'string' }, sync: 'never' },
  },
};

async function call(srv, route, body, modelVersion) {
  const res = await fetch(`${srv.url}/sync/${route}`, { method: 'POST', headers: srv.headers || {}, body: JSON.stringify({ modelVersion, ...body }) });
  return { status: res.status, body: await res.json() };
}
const push = async (srv, clientId, mutations, mv = '1') => {
  const r = await call(srv, 'push', { clientId, mutations }, mv);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.results;
};
const pull = (srv, entity, cursor = 0, mv = '1') => call(srv, 'pull', { clientId: 'x', entity, cursor }, mv);
const up = (mid, entity, id, values) => ({ mid, entity, id, op: 'upsert', values, changed: Object.keys(values), base: 0, ts: 1000 + mid });

test('restart_should_keep_data_versions_and_client_high_water_marks', async () => {
  const dir = dataDir();
  let srv = await createSyncServer({ model: V1, dataDir: dir });
  const batch = [up(1, 'Note', 'n1', { title: 'one' }), up(2, 'Note', 'n2', { title: 'two' }), up(3, 'Note', 'n3', { title: 5 })];
  const first = await push(srv, 'a', batch);
  const before = (await pull(srv, 'Note')).body;
  await srv.close();

  srv = await createSyncServer({ model: V1, dataDir: dir });
  try {
    assert.deepEqual((await pull(srv, 'Note')).body, before, 'the same data, versions and cursor');
    // the client retries the push whose reply it lost before the restart
    const again = await push(srv, 'a', batch);
    assert.deepEqual(again, first.map((r) => (r.status === 'rejected' ? r : { ...r, duplicate: true })));
    // versions keep growing from where they were
    const [next] = await push(srv, 'a', [up(4, 'Note', 'n1', { title: 'uno' })]);
    assert.equal(next.version, before.cursor + 1);
    assert.equal(await srv.version(), before.cursor + 1);
  } finally {
    await srv.close();
  }
});

test('restart_after_sigkill_should_keep_every_acknowledged_push', async () => {
  const dir = dataDir();
  const startCli = () => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'server/cli.js'), '--port', '0', '--data', dir, '--static', 'none'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`ferry-server exited with ${code}: ${out}`)));
  });
  const kill = (child) => new Promise((resolve) => { child.removeAllListeners('exit'); child.on('exit', resolve); child.kill('SIGKILL'); });

  let s = await startCli();
  // The demo signs its users in; the token outlives the restart (the key is kept in --data).
  const signIn = await fetch(`${s.url}/auth/sign-in`, { method: 'POST', body: JSON.stringify({ user: 'ada', password: 'demo' }) });
  assert.equal(signIn.status, 200);
  const headers = { authorization: `Bearer ${(await signIn.json()).token}` };
  s.headers = headers;
  const mv = (await (await fetch(`${s.url}/sync/model`, { headers })).json()).version;
  const acked = [];
  for (let i = 1; i <= 20; i++) {
    const [r] = await push(s, 'dev', [up(i, 'Visit', `kv${i}`, { note: `visit ${i}`, status: 'planned' })], mv);
    assert.equal(r.status, 'applied');
    acked.push(`kv${i}`);
  }
  await kill(s.child);
  s = await startCli();
  s.headers = headers;
  try {
    const r = await call(s, 'pull', { clientId: 'x', entity: 'Visit', ids: acked }, mv);
    assert.equal(r.body.objects.length, 20);
    const [dup] = await push(s, 'dev', [up(20, 'Visit', 'kv20', { note: 'again' })], mv);
    assert.equal(dup.duplicate, true);
    // the demo rows were seeded once, on the first start
    const regions = (await call(s, 'pull', { clientId: 'x', entity: 'Region', cursor: 0 }, mv)).body.objects;
    assert.equal(regions.length, 3);
  } finally {
    await kill(s.child);
  }
});

test('new_model_version_should_migrate_tables_and_keep_removed_data_in_storage', async () => {
  const dir = dataDir();
  let srv = await createSyncServer({ model: V1, dataDir: dir });
  await push(srv, 'a', [
    up(1, 'Note', 'n1', { title: 'one', body: 'kept in storage' }),
    up(2, 'Old', 'o1', { x: 'old data' }),
  ]);
  await srv.close();

  const V2 = {
    version: '2',
    entities: {
      Note: { attributes: { title: 'string', priority: 'integer' } },     // body removed, priority added
      New: { attributes: { name: 'string' }, associations: { note: 'Note' } },
      Later: { attributes: { y: 'string' } },                           // never -> all
    },
  };
  const logs = [];
  srv = await createSyncServer({ model: V2, dataDir: dir, log: (m) => logs.push(m) });
  try {
    assert.ok(logs.some((l) => /from model version 1 to 2/.test(l)), logs.join('\n'));
    assert.equal((await (await fetch(`${srv.url}/sync/model`)).json()).version, '2');
    assert.equal((await pull(srv, 'Note', 0, '1')).status, 409);
    const notes = (await pull(srv, 'Note', 0, '2')).body;
    assert.deepEqual(notes.objects, [{ id: 'n1', version: 1, values: { title: 'one', priority: null } }]);
    const [stored] = await srv.db.query('SELECT body FROM "Note" WHERE id = ?', ['n1']);
    assert.equal(stored.body, 'kept in storage', 'a removed attribute stays in storage');
    assert.equal((await pull(srv, 'Old', 0, '2')).status, 400, 'a removed entity is no longer served');
    const r = await push(srv, 'a', [
      up(3, 'Note', 'n1', { body: 'no longer an attribute' }),
      up(4, 'Old', 'o2', { x: 'gone' }),
      up(5, 'Note', 'n1', { priority: 2 }),
      up(6, 'New', 'w1', { name: 'new entity', note: 'n1' }),
      up(7, 'Later', 'l1', { y: 'now synced' }),
    ], '1');
    // A client still on model 1: the attribute model 2 removed is ignored, the rest applies.
    assert.deepEqual(r.map((x) => x.status), ['applied', 'rejected', 'applied', 'applied', 'applied']);
    assert.deepEqual(r[0].ignored, ['body']);
    assert.match(r[1].reason, /unknown entity "Old"/);
    assert.deepEqual((await pull(srv, 'New', 0, '2')).body.objects[0].values, { name: 'new entity', note: 'n1' });
    assert.deepEqual((await pull(srv, 'Later', 0, '2')).body.objects[0].values, { y: 'now synced' });
  } finally {
    await srv.close();
  }

  // a later version bringing the attribute back finds its data
  const V3 = { version: '3', entities: { ...V2.entities, Note: { attributes: { title: 'string', priority: 'integer', body: 'string' } } } };
  srv = await createSyncServer({ model: V3, dataDir: dir, log: () => {} });
  try {
    const notes = (await pull(srv, 'Note', 0, '3')).body;
    assert.deepEqual(notes.objects[0].values, { title: 'one', priority: 2, body: 'kept in storage' });
  } finally {
    await srv.close();
  }
});

test('same_version_with_a_changed_model_should_warn', async () => {
  const dir = dataDir();
  let srv = await createSyncServer({ model: V1, dataDir: dir });
  await srv.close();
  const logs = [];
  const changed = { version: '1', entities: { ...V1.entities, Extra: { attributes: { z: 'string' } } } };
  srv = await createSyncServer({ model: changed, dataDir: dir, log: (m) => logs.push(m) });
  try {
    assert.ok(logs.some((l) => /version is still 1/.test(l)), logs.join('\n'));
    assert.equal((await pull(srv, 'Extra')).status, 200, 'its tables are still created');
  } finally {
    await srv.close();
  }
});

test('data_dir_should_be_created_and_hold_the_database', { skip: backendName === 'postgres' && 'on PostgreSQL the database is not in the data folder' }, async () => {
  const dir = path.join(dataDir(), 'nested', 'deeper');
  const srv = await createSyncServer({ model: V1, dataDir: dir });
  await srv.close();
  assert.ok(fs.existsSync(path.join(dir, 'server.db')) || fs.existsSync(path.join(dir, 'server.db-log')));
});
