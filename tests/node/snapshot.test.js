// A new device's first sync from the server's snapshot (open({ snapshot:
// true }), GET /sync/snapshot): one download instead of a pull of every
// object, with exactly what a pull would have given that user, and a
// database that goes on syncing as its own client. A snapshot is only a
// shortcut: anything wrong with it leaves the device to pull as before.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { open } from '../../bindings/index.js';
import { createSyncServer } from './backend.js';
import { tempDir } from './helpers.js';

const MODEL = {
  version: '1',
  entities: {
    Note: { attributes: { owner: 'string', text: 'string', n: 'integer', at: 'datetime', price: 'decimal' }, sync: { where: 'owner = $user.id' } },
    Board: { attributes: { text: 'string', blob: 'binary' }, sync: 'all' },
  },
};
const USERS = { 'token-alice': { id: 'alice' }, 'token-bob': { id: 'bob' } };
const base = tempDir('snapshot');
let n = 0;
const servers = [];
const dbs = [];
after(async () => {
  for (const db of dbs) await db.close().catch(() => {});
  for (const s of servers) await s.close();
});

async function start(opts = {}) {
  const srv = await createSyncServer({
    model: MODEL, dataDir: path.join(base, `s${++n}`), log: () => {},
    authenticate: (req) => USERS[(req.headers.authorization || '').replace(/^Bearer /, '')] || null,
    ...opts,
  });
  servers.push(srv);
  const notes = [];
  for (let i = 0; i < 3000; i++) {
    notes.push({ id: `n${i}`, owner: i % 3 === 0 ? 'bob' : 'alice', text: `note ${i} ✓ "quoted"`, n: i * 1_000_003, at: '2026-12-03T10:00:00.123Z', price: `${i}.05` });
  }
  await srv.write('Note', notes);
  await srv.write('Board', [{ id: 'b1', text: 'shared', blob: Buffer.from([0, 1, 2, 255]).toString('base64') }]);
  return srv;
}

/** A device of `token`'s user; `requests` counts what it asks the server, by route. */
async function device(srv, token, name, opts = {}) {
  const requests = {};
  const fetchFn = opts.fetch || fetch;
  const db = await open({
    name, storage: 'file', path: path.join(base, `${name}-${n}.db`), server: `${srv.url}/sync`, syncOnOpen: false,
    headers: async () => ({ authorization: `Bearer ${token}` }), snapshot: true,
    ...opts,
    fetch: async (u, init) => {
      const route = new URL(u).pathname.split('/').pop();
      requests[route] = (requests[route] || 0) + 1;
      return fetchFn(u, init);
    },
  });
  dbs.push(db);
  return { db, requests };
}

const rows = (db, entity) => db.query(`SELECT * FROM "${entity}" ORDER BY id`);
const state = (db) => db.query('SELECT entity, oid, version FROM _ferry_base ORDER BY entity, oid');

test('a_new_device_should_start_from_the_snapshot_with_what_a_pull_gives_and_go_on_from_its_cursors', async () => {
  const srv = await start();
  const pulled = await device(srv, 'token-alice', 'pulled', { snapshot: false });
  await pulled.db.sync();
  const snap = await device(srv, 'token-alice', 'snap');
  assert.equal(snap.requests.snapshot, 1);
  assert.deepEqual(await rows(snap.db, 'Note'), await rows(pulled.db, 'Note'), 'the objects exactly as a pull gives them');
  assert.deepEqual(await rows(snap.db, 'Board'), await rows(pulled.db, 'Board'));
  assert.deepEqual(await state(snap.db), await state(pulled.db), 'the same base versions');
  assert.equal((await rows(snap.db, 'Note')).length, 2000);
  const first = await snap.db.sync();
  assert.equal(first.pulled, 0, 'nothing to pull after the snapshot');
  const entities = Object.keys(MODEL.entities).length;
  assert.ok((snap.requests.pull || 0) <= entities, `a pull request per entity at most, got ${snap.requests.pull}`);
  await srv.write('Note', [{ id: 'n1', owner: 'alice', text: 'changed after the snapshot', n: 1, at: null, price: null }]);
  const next = await snap.db.sync();
  assert.equal(next.pulled, 1);
  assert.equal((await snap.db.query("SELECT text FROM Note WHERE id = 'n1'"))[0].text, 'changed after the snapshot');
});

test('two_devices_from_one_snapshot_should_be_two_clients_whose_writes_both_arrive', async () => {
  const srv = await start();
  const a = await device(srv, 'token-alice', 'two-a');
  const b = await device(srv, 'token-alice', 'two-b');
  const id = async (d) => (await d.db.query("SELECT value FROM _ferry_meta WHERE key = 'client_id'"))[0].value;
  assert.notEqual(await id(a), await id(b));
  await a.db.exec("UPDATE Note SET text = 'from a' WHERE id = 'n1'");
  await b.db.exec("UPDATE Note SET text = 'from b' WHERE id = 'n2'");
  await b.db.exec("INSERT INTO Note(id, owner, text) VALUES ('new-b', 'alice', 'b made it')");
  assert.equal((await a.db.sync()).pushed, 1);
  assert.equal((await b.db.sync()).pushed, 2);
  await a.db.sync();
  for (const d of [a, b]) {
    assert.deepEqual((await d.db.query("SELECT id, text FROM Note WHERE id IN ('n1', 'n2', 'new-b') ORDER BY id")).map((r) => r.text), ['from a', 'from b', 'b made it']);
  }
  assert.deepEqual(await rows(a.db, 'Note'), await rows(b.db, 'Note'));
});

test('a_users_snapshot_should_hold_nothing_another_user_may_not_read', async () => {
  const srv = await start();
  const alice = await device(srv, 'token-alice', 'iso-alice');
  const bob = await device(srv, 'token-bob', 'iso-bob');
  assert.equal((await alice.db.query("SELECT count(*) AS c FROM Note WHERE owner != 'alice'"))[0].c, 0);
  assert.equal((await bob.db.query("SELECT count(*) AS c FROM Note WHERE owner != 'bob'"))[0].c, 0);
  assert.equal((await bob.db.query('SELECT count(*) AS c FROM Note'))[0].c, 1000);
  // Raw: without credentials, nothing; with bob's, no alice note in the bytes.
  assert.equal((await fetch(`${srv.url}/sync/snapshot`)).status, 401);
  const raw = Buffer.from(await (await fetch(`${srv.url}/sync/snapshot`, { headers: { authorization: 'Bearer token-bob' } })).arrayBuffer());
  assert.equal(raw.subarray(0, 15).toString(), 'SQLite format 3');
  assert.ok(raw.includes('note 0 '), 'a note of bob is in his image');
  assert.ok(!raw.includes('note 1 '), 'no note of alice in the bytes of his');
});

test('a_cut_damaged_or_refused_snapshot_should_leave_the_device_to_pull_as_before', async () => {
  const srv = await start();
  const breakers = {
    cut: async (res) => new Response(new Uint8Array(await res.arrayBuffer()).subarray(0, 5000), { status: 200, headers: res.headers }),
    flipped: async (res) => {
      const u8 = new Uint8Array(await res.arrayBuffer());
      u8[Math.floor(u8.length / 2)] ^= 0xff;
      return new Response(u8, { status: 200, headers: res.headers });
    },
    // A server that answers with bytes that are no database, and no hash to check them by.
    garbage: async (res) => {
      const u8 = new Uint8Array(await res.arrayBuffer()).fill(7);
      const h = new Headers(res.headers);
      h.delete('x-ferry-snapshot-sha256');
      return new Response(u8, { status: 200, headers: h });
    },
    failed: async () => new Response('{"error":"internal"}', { status: 500 }),
    offline: async () => { throw new TypeError('fetch failed'); },
  };
  for (const [how, breakIt] of Object.entries(breakers)) {
    const errors = [];
    const d = await device(srv, 'token-alice', `broken-${how}`, {
      onSnapshotError: (e) => errors.push(e),
      fetch: async (u, init) => (u.endsWith('/snapshot') ? breakIt(await fetch(u, init)) : fetch(u, init)),
    });
    assert.equal(errors.length, 1, `${how}: the reason is told`);
    assert.equal(await d.db.query('SELECT 1 FROM sqlite_schema WHERE name = \'Note\'').then((r) => r.length), 0, `${how}: nothing of it was kept`);
    const r = await d.db.sync();
    assert.equal(r.pulled, 2001, `${how}: the first sync pulls everything`);
    assert.deepEqual(fs.readdirSync(base).filter((f) => f.includes(`broken-${how}`) && f.includes('.snapshot-')), [], `${how}: no download left behind`);
  }
});

test('a_database_already_on_the_device_should_never_be_replaced_by_a_snapshot', async () => {
  const srv = await start();
  const first = await device(srv, 'token-alice', 'kept', { snapshot: false });
  await first.db.sync();
  await first.db.exec("UPDATE Note SET text = 'pending here' WHERE id = 'n1'");
  await first.db.close();
  dbs.splice(dbs.indexOf(first.db), 1);
  const again = await device(srv, 'token-alice', 'kept');
  assert.equal(again.requests.snapshot, undefined, 'not even asked for');
  assert.equal((await again.db.query("SELECT text FROM Note WHERE id = 'n1'"))[0].text, 'pending here');
  assert.equal((await again.db.sync()).pushed, 1);
});

test('a_snapshot_should_follow_the_servers_changes_and_a_server_may_make_none', async () => {
  const srv = await start();
  await device(srv, 'token-alice', 'follow-1');
  await srv.write('Note', [{ id: 'late', owner: 'alice', text: 'written after the first image' }]);
  await srv.remove('Note', ['n1']);
  const later = await device(srv, 'token-alice', 'follow-2');
  assert.equal((await later.db.query("SELECT text FROM Note WHERE id = 'late'"))[0]?.text, 'written after the first image');
  assert.equal((await later.db.query("SELECT count(*) AS c FROM Note WHERE id = 'n1'"))[0].c, 0);
  assert.equal((await later.db.sync()).pulled, 0);

  const none = await start({ snapshots: false });
  const errors = [];
  const d = await device(none, 'token-alice', 'no-snapshots', { onSnapshotError: (e) => errors.push(e) });
  assert.equal(d.requests.snapshot, 1);
  assert.deepEqual(errors, [], 'a server without snapshots is no error');
  assert.equal((await d.db.sync()).pulled, 2001);
});

test('snapshots_past_their_byte_budget_should_go_least_recently_asked_first_and_a_download_should_finish', async () => {
  const dataDir = path.join(base, `evict-${++n}`);
  const srv = await start({ dataDir, snapshotBytes: 1 });
  const folders = () => fs.readdirSync(path.join(dataDir, 'snapshots')).sort();
  const get = (token) => fetch(`${srv.url}/sync/snapshot`, { headers: { authorization: `Bearer ${token}` } });
  const hash = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

  // Alice's download is under way (headers in, body unread) when bob's build evicts her folder.
  const alice = await get('token-alice');
  assert.equal(alice.status, 200);
  assert.equal(folders().length, 1);
  const bob = await get('token-bob');
  assert.equal(bob.status, 200);
  const kept = folders();
  assert.equal(kept.length, 1, 'over the budget only the folder just built stays');
  const aliceBytes = Buffer.from(await alice.arrayBuffer());
  assert.equal(hash(aliceBytes), alice.headers.get('x-ferry-snapshot-sha256'), 'the evicted image still downloads whole');
  assert.equal(hash(Buffer.from(await bob.arrayBuffer())), bob.headers.get('x-ferry-snapshot-sha256'));

  // Evicted, alice's snapshot is built anew, and a device starts from it with all her notes.
  const d = await device(srv, 'token-alice', 'evicted-again');
  assert.equal(d.requests.snapshot, 1);
  assert.equal((await d.db.query('SELECT count(*) AS c FROM Note'))[0].c, 2000);
  assert.equal((await d.db.sync()).pulled, 0, 'a whole image: nothing left to pull');
  assert.notDeepEqual(folders(), kept, "bob's folder went for alice's");

  // Within the budget, both stay.
  const roomy = path.join(base, `evict-${++n}`);
  const srv2 = await start({ dataDir: roomy });
  for (const token of ['token-alice', 'token-bob']) await (await fetch(`${srv2.url}/sync/snapshot`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer();
  assert.equal(fs.readdirSync(path.join(roomy, 'snapshots')).length, 2);
  await assert.rejects(start({ snapshotBytes: -1 }), (e) => e.code === 'misuse');
});
