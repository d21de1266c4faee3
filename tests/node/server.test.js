// The reference sync server (server/index.js) at the protocol level:
// real servers on 127.0.0.1 driven with fetch, as docs/PROTOCOL.md says.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendName, createSyncServer } from './backend.js';
import { FerryError } from '../../bindings/index.js';
import { tempDir, rejection } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const MODEL = {
  version: '1',
  entities: {
    Region: { attributes: { name: 'string' } },
    Item: {
      attributes: { s: 'string', i: 'integer', d: 'decimal', b: 'boolean', t: 'datetime', bin: 'binary', f: 'file' },
      associations: { region: 'Region' },
    },
    Note: { attributes: { title: 'string', body: 'string' } },
    SNote: { attributes: { title: 'string', body: 'string' }, conflict: 'server-wins' },
    CNote: { attributes: { title: 'string', body: 'string' }, conflict: 'client-wins' },
    Visit: { attributes: { note: 'string', status: 'string' }, sync: { where: "status != 'archived'" } },
    Task: { attributes: { owner: 'string', text: 'string' }, sync: { where: 'owner = $user.id' } },
    Feedback: { attributes: { text: 'string' }, sync: 'nothing-clear' },
    Keep: { attributes: { text: 'string' }, sync: 'nothing-preserve' },
    Draft: { attributes: { text: 'string' }, sync: 'never' },
  },
};

const base = tempDir('server');
let dirs = 0;
/** A fresh data folder (one temp root for the file, so one exit hook). */
const dataDir = () => path.join(base, `d${++dirs}`);
const servers = [];
const logs = [];
after(async () => { for (const s of servers) await s.close(); });

async function start(opts = {}) {
  const srv = await createSyncServer({ model: MODEL, dataDir: dataDir(), log: (m) => logs.push(m), ...opts });
  servers.push(srv);
  return srv;
}

async function post(srv, route, body, headers = {}) {
  const res = await fetch(`${srv.url}/sync/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), headers: res.headers };
}

/** A protocol-level client: numbered mutations, pushes and pulls. */
function client(srv, clientId, { headers = {}, modelVersion = MODEL.version } = {}) {
  let mid = 0;
  const c = {
    clientId,
    mut(entity, id, values, extra = {}) {
      return { mid: ++mid, entity, id, op: 'upsert', values, changed: Object.keys(values), base: 0, ts: Date.now(), ...extra };
    },
    del(entity, id, extra = {}) {
      return { mid: ++mid, entity, id, op: 'delete', base: 0, ts: Date.now(), ...extra };
    },
    async push(mutations, extra = {}) {
      const r = await post(srv, 'push', { clientId, modelVersion, ackedMid: 0, mutations, ...extra }, headers);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.results;
    },
    async pull(entity, body = {}) {
      return post(srv, 'pull', { clientId, modelVersion, entity, cursor: 0, ...body }, headers);
    },
    /** Pulls every page; returns { objects: {id: values}, versions, removed, pages, cursor }. */
    async pullAll(entity, cursor = 0, limit) {
      const out = { objects: {}, versions: {}, removed: [], pages: 0, cursor };
      for (;;) {
        const r = await c.pull(entity, { cursor: out.cursor, limit });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        out.pages++;
        for (const o of r.body.objects) { out.objects[o.id] = o.values; out.versions[o.id] = o.version; }
        out.removed.push(...r.body.removed);
        out.cursor = r.body.cursor;
        if (!r.body.more) return out;
      }
    },
  };
  return c;
}

const ITEM = {
  s: 'text é 日本 "quoted"', i: -9007199254740991, d: '12.50', b: true,
  t: '2026-11-24T10:00:00.000Z', bin: 'AAECAwT/', f: { hash: 'c0'.repeat(32), size: 5, type: 'text/plain', name: 'hello.txt' }, region: 'r1',
};

test('model_route_should_serve_the_normalized_model', async () => {
  const srv = await start();
  const res = await fetch(`${srv.url}/sync/model`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const m = await res.json();
  assert.equal(m.version, '1');
  assert.deepEqual(m.entities.Region, { attributes: { name: 'string' }, associations: {}, sync: 'all', conflict: 'last-write-wins' });
  assert.deepEqual(m.entities.Visit.sync, { where: "status != 'archived'" });
  assert.equal(m.entities.Draft.sync, 'never');
  assert.ok(srv.url.startsWith('http://127.0.0.1:'));
});

test('push_then_pull_should_round_trip_every_type', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const results = await a.push([
    a.mut('Region', 'r1', { name: 'North' }),
    a.mut('Item', 'full', ITEM),
    a.mut('Item', 'nulls', { s: null, i: null, d: null, b: null, t: null, bin: null, f: null, region: null }),
    a.mut('Item', 'other', { i: 0, b: false, d: 7, t: '2026-11-24T12:00:00+02:00', s: '' }),
  ]);
  assert.deepEqual(results.map((r) => r.status), ['applied', 'applied', 'applied', 'applied']);
  assert.deepEqual(results.map((r) => r.version), [1, 2, 3, 4]);
  const b = client(srv, 'b');
  const got = await b.pullAll('Item');
  assert.deepEqual(got.objects.full, ITEM);
  assert.deepEqual(got.objects.nulls, { s: null, i: null, d: null, b: null, t: null, bin: null, f: null, region: null });
  // a number is accepted for a decimal; datetimes come back in UTC; attributes not sent are null
  assert.deepEqual(got.objects.other, { s: '', i: 0, d: '7', b: false, t: '2026-11-24T10:00:00.000Z', bin: null, f: null, region: null });
  assert.deepEqual(got.versions, { full: 2, nulls: 3, other: 4 });
  assert.equal(got.cursor, 4);
  assert.deepEqual((await b.pullAll('Region')).objects, { r1: { name: 'North' } });
});

test('push_should_reject_a_wrong_value_type_naming_the_attribute', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const bad = [
    ['s', 5], ['i', 1.5], ['i', '3'], ['i', 2 ** 60], ['d', 'ten'], ['d', true], ['b', 'yes'], ['b', 2],
    ['t', 'yesterday'], ['t', 1764000000000], ['t', '2026-13-45T99:00:00Z'], ['bin', 'not base64!'], ['f', 12],
    ['f', 'aGVsbG8='], ['f', { hash: 'AB'.repeat(32), size: 1, type: '', name: '' }], ['f', { hash: 'ab'.repeat(32), size: -1, type: '', name: '' }],
    ['f', { hash: 'ab'.repeat(32), size: 1, type: '', name: 'a\u0000b' }], ['f', { hash: 'ab'.repeat(32), size: 1, type: '', name: '', extra: 1 }],
    ['f', { hash: 'ab'.repeat(32), size: 1, type: 'x'.repeat(256), name: '' }],
    ['region', 5], ['region', ''], ['s', { x: 1 }], ['i', [1]],
  ];
  const results = await a.push(bad.map(([k, v], n) => a.mut('Item', `x${n}`, { [k]: v })));
  results.forEach((r, n) => {
    assert.equal(r.status, 'rejected', JSON.stringify(bad[n]));
    assert.match(r.reason, new RegExp(`attribute ${bad[n][0]}: expected`), r.reason);
  });
  assert.deepEqual((await a.pullAll('Item')).objects, {}, 'nothing of a rejected mutation is stored');
});

test('rejected_mutation_should_not_block_the_rest_of_the_batch', async () => {
  const srv = await start({ authorize: ({ id }) => id !== 'secret' });
  const a = client(srv, 'a');
  const results = await a.push([
    a.mut('Note', 'n1', { title: 'first' }),
    a.mut('Nope', 'x', { a: 1 }),
    a.mut('Draft', 'd1', { text: 'device only' }),
    a.mut('Note', 'n2', { title: 5 }),
    a.mut('Note', 'n3', { colour: 'red' }),
    a.mut('Note', '', { title: 'no id' }),
    a.mut('Note', 'x'.repeat(129), { title: 'long id' }),
    a.mut('Note', 'secret', { title: 'not allowed' }),
    { ...a.mut('Note', 'n4', {}), op: 'merge' },
    a.mut('Note', 'n5', { title: 'last' }),
  ]);
  assert.deepEqual(results.map((r) => r.status),
    ['applied', 'rejected', 'rejected', 'rejected', 'rejected', 'rejected', 'rejected', 'rejected', 'rejected', 'applied']);
  assert.match(results[1].reason, /unknown entity "Nope"/);
  assert.match(results[2].reason, /Draft is never synced/);
  assert.match(results[3].reason, /attribute title: expected a string/);
  assert.match(results[4].reason, /unknown attribute "colour"/);
  assert.match(results[5].reason, /invalid id/);
  assert.match(results[6].reason, /invalid id/);
  assert.equal(results[7].reason, 'forbidden');
  assert.match(results[8].reason, /unknown op/);
  assert.deepEqual(Object.keys((await a.pullAll('Note')).objects).sort(), ['n1', 'n5']);
  // a rejection is not recorded (it takes no mid): a retry is judged again
  const again = await a.push([{ mid: 2, entity: 'Nope', id: 'x', op: 'upsert', values: {} }]);
  assert.equal(again[0].status, 'rejected');
  assert.equal(again[0].duplicate, undefined);
});

test('authorize_should_see_user_entity_id_op_values_and_current_state', async () => {
  const calls = [];
  const srv = await start({
    authenticate: (req) => ({ id: req.headers['x-user'] }),
    authorize: async (ctx) => { calls.push(ctx); return ctx.op !== 'delete' || ctx.current?.title === 'mine'; },
  });
  const a = client(srv, 'a', { headers: { 'x-user': 'u7' } });
  const r = await a.push([a.mut('Note', 'n1', { title: 'mine' }), a.del('Note', 'n1'), a.del('Note', 'gone')]);
  assert.deepEqual(r.map((x) => x.status), ['applied', 'applied', 'rejected']);
  assert.deepEqual(calls[0], { user: { id: 'u7' }, entity: 'Note', id: 'n1', op: 'upsert', values: { title: 'mine' }, current: null });
  assert.deepEqual(calls[1], { user: { id: 'u7' }, entity: 'Note', id: 'n1', op: 'delete', values: null, current: { title: 'mine', body: null } });
  assert.equal(r[2].reason, 'forbidden');
});

test('push_retry_should_not_apply_twice', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const batch = [a.mut('Note', 'n1', { title: 'one' }), a.mut('Note', 'n2', { title: 'two' }), a.mut('Note', 'n3', { title: 5 })];
  const first = await a.push(batch);
  const versionAfter = await srv.version();
  // the reply was lost: the same push comes again
  const second = await a.push(batch);
  // applied ones come back from the record; the rejected one is judged again, the same way
  assert.deepEqual(second, first.map((r) => (r.status === 'rejected' ? r : { ...r, duplicate: true })));
  assert.equal(await srv.version(), versionAfter, 'nothing was applied again');
  // a retry carrying new mutations applies only the new ones
  const next = a.mut('Note', 'n1', { title: 'uno' });
  const third = await a.push([...batch, next]);
  assert.deepEqual(third.map((r) => r.duplicate ?? false), [true, true, false, false]);
  assert.equal(third[3].status, 'applied');
  assert.equal(third[3].version, versionAfter + 1);
  assert.deepEqual((await a.pullAll('Note')).objects, { n1: { title: 'uno', body: null }, n2: { title: 'two', body: null } });
});

test('mids_at_or_below_the_mark_should_never_apply_even_after_ack', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const m1 = a.mut('Note', 'n1', { title: 'one' });
  await a.push([m1]);
  // ackedMid lets the server forget the result; the mutation still does not apply again
  const m2 = a.mut('Note', 'n2', { title: 'two' });
  await a.push([m2], { ackedMid: 1 });
  const v = await srv.version();
  const r = await a.push([{ ...m1, values: { title: 'changed' } }], { ackedMid: 2 });
  assert.deepEqual(r, [{ mid: 1, status: 'applied', duplicate: true }]);
  assert.equal(await srv.version(), v);
  assert.equal((await a.pullAll('Note')).objects.n1.title, 'one');
  // mids are per client: another client's mid 1 is its own
  const b = client(srv, 'b');
  assert.equal((await b.push([b.mut('Note', 'n9', { title: 'b' })]))[0].duplicate, undefined);
});

test('push_should_apply_in_mid_order_whatever_the_array_order', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const m1 = a.mut('Note', 'n1', { title: 'first' });
  const m2 = a.mut('Note', 'n1', { title: 'second' });
  const r = await a.push([m2, m1]);
  assert.deepEqual(r.map((x) => x.mid), [1, 2]);
  assert.equal((await a.pullAll('Note')).objects.n1.title, 'second');
});

test('last_write_wins_should_keep_edits_of_different_attributes', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const b = client(srv, 'b');
  const [{ version: v }] = await a.push([a.mut('Note', 'n', { title: 't0', body: 'b0' }, { ts: 1000 })]);
  // both edit offline from version v, different attributes
  const ra = await a.push([a.mut('Note', 'n', { title: 'A title' }, { base: v, ts: 2000 })]);
  const rb = await b.push([b.mut('Note', 'n', { body: 'B body' }, { base: v, ts: 1500 })]);
  assert.equal(ra[0].status, 'applied');
  assert.equal(rb[0].status, 'applied');
  assert.deepEqual((await a.pullAll('Note')).objects.n, { title: 'A title', body: 'B body' });
});

test('last_write_wins_on_one_attribute_should_keep_the_later_ts_and_report_the_loser', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const b = client(srv, 'b');
  const [{ version: v }] = await a.push([a.mut('Note', 'n', { title: 't0', body: 'b0' }, { ts: 1000 })]);
  // A wrote later (ts 3000) but pushes first; B wrote earlier (ts 2000) and pushes second
  const ra = await a.push([a.mut('Note', 'n', { title: 'A' }, { base: v, ts: 3000 })]);
  assert.equal(ra[0].status, 'applied');
  const rb = await b.push([b.mut('Note', 'n', { title: 'B', body: 'B body' }, { base: v, ts: 2000 })]);
  assert.equal(rb[0].status, 'conflict');
  assert.deepEqual(rb[0].attrs, ['title']);
  assert.deepEqual(rb[0].server, { title: 'A' });
  assert.match(rb[0].reason, /last-write-wins/);
  assert.ok(rb[0].version > ra[0].version, 'the winning attribute (body) of the conflicting write was applied');
  assert.deepEqual((await a.pullAll('Note')).objects.n, { title: 'A', body: 'B body' });
  // a later write from B wins over A's
  const rb2 = await b.push([b.mut('Note', 'n', { title: 'B2' }, { base: v, ts: 4000 })]);
  assert.equal(rb2[0].status, 'applied');
  // equal ts: the incoming write wins
  const ra2 = await a.push([a.mut('Note', 'n', { title: 'A2' }, { base: v, ts: 4000 })]);
  assert.equal(ra2[0].status, 'applied');
  assert.equal((await a.pullAll('Note')).objects.n.title, 'A2');
});

test('last_write_wins_should_let_a_client_that_saw_the_value_overwrite_it_whatever_its_clock', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const b = client(srv, 'b');
  await a.push([a.mut('Note', 'n', { title: 't0' }, { ts: 5000 })]);
  const [{ version: v }] = await a.push([a.mut('Note', 'n', { title: 'A' }, { ts: 9000 })]);
  // B has seen version v (it pulled A's write) but its clock is behind
  const r = await b.push([b.mut('Note', 'n', { title: 'B' }, { base: v, ts: 100 })]);
  assert.equal(r[0].status, 'applied');
  assert.equal((await a.pullAll('Note')).objects.n.title, 'B');
});

test('server_wins_should_keep_server_changes_made_after_the_base', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const b = client(srv, 'b');
  const [{ version: v }] = await a.push([a.mut('SNote', 'n', { title: 't0', body: 'b0' })]);
  const ra = await a.push([a.mut('SNote', 'n', { title: 'A' }, { base: v, ts: 1 })]);
  assert.equal(ra[0].status, 'applied');
  // B's later clock does not matter: title changed on the server after B's base
  const rb = await b.push([b.mut('SNote', 'n', { title: 'B', body: 'B body' }, { base: v, ts: Date.now() + 1e6 })]);
  assert.equal(rb[0].status, 'conflict');
  assert.deepEqual(rb[0].attrs, ['title']);
  assert.deepEqual(rb[0].server, { title: 'A' });
  assert.match(rb[0].reason, /server-wins/);
  assert.deepEqual((await b.pullAll('SNote')).objects.n, { title: 'A', body: 'B body' });
  // with an up-to-date base, B's write applies
  const rb2 = await b.push([b.mut('SNote', 'n', { title: 'B' }, { base: rb[0].version })]);
  assert.equal(rb2[0].status, 'applied');
});

test('client_wins_should_always_apply_the_incoming_write', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const b = client(srv, 'b');
  const [{ version: v }] = await a.push([a.mut('CNote', 'n', { title: 't0' }, { ts: 1000 })]);
  await a.push([a.mut('CNote', 'n', { title: 'A' }, { base: v, ts: 9000 })]);
  const rb = await b.push([b.mut('CNote', 'n', { title: 'B' }, { base: v, ts: 2000 })]);
  assert.equal(rb[0].status, 'applied');
  assert.equal((await a.pullAll('CNote')).objects.n.title, 'B');
});

test('deletes_should_become_tombstones_in_removed', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const b = client(srv, 'b');
  await a.push([a.mut('Note', 'n1', { title: 'one' }), a.mut('Note', 'n2', { title: 'two' })]);
  const first = await b.pullAll('Note');
  assert.deepEqual(Object.keys(first.objects).sort(), ['n1', 'n2']);
  const [del, ghost] = await a.push([a.del('Note', 'n1'), a.del('Note', 'never-existed')]);
  assert.equal(del.status, 'applied');
  assert.equal(del.version, first.cursor + 1);
  assert.deepEqual(ghost, { mid: 4, status: 'applied', version: 0 });
  const next = await b.pullAll('Note', first.cursor);
  assert.deepEqual(next.objects, {});
  assert.deepEqual(next.removed, ['n1']);
  assert.equal(next.cursor, del.version);
  // a client starting from scratch gets the tombstone too, and no deleted object
  const fresh = await client(srv, 'c').pullAll('Note');
  assert.deepEqual(Object.keys(fresh.objects), ['n2']);
  assert.deepEqual(fresh.removed, ['n1']);
  // deleting again is applied without a new version
  const [again] = await a.push([a.del('Note', 'n1')]);
  assert.deepEqual(again, { mid: 5, status: 'applied', version: del.version });
  // a client that saw the delete may create the object again
  const [back] = await a.push([a.mut('Note', 'n1', { title: 'back' }, { base: del.version })]);
  assert.equal(back.status, 'applied');
  assert.deepEqual((await b.pullAll('Note', next.cursor)).objects, { n1: { title: 'back', body: null } });
});

test('update_of_an_object_deleted_on_the_server_should_follow_the_policy', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const b = client(srv, 'b');
  const [{ version: v1 }, { version: v2 }] = await a.push([
    a.mut('SNote', 's', { title: 's' }), a.mut('Note', 'n', { title: 'n' }, { ts: 1000 }),
  ]);
  await a.push([a.del('SNote', 's', { base: v1 }), a.del('Note', 'n', { base: v2, ts: 5000 })]);
  // server-wins: the delete stands
  const [rs, rlate, rearly] = await b.push([
    b.mut('SNote', 's', { title: 'edited' }, { base: v1 }),
    b.mut('Note', 'n', { title: 'edited later' }, { base: v2, ts: 6000 }),
    b.mut('Note', 'n', { body: 'x' }, { base: 0, ts: 1 }),
  ]);
  assert.equal(rs.status, 'conflict');
  assert.equal(rs.deleted, true);
  assert.deepEqual(rs.attrs, ['title']);
  // last-write-wins: an edit made after the delete brings the object back with its values
  assert.equal(rlate.status, 'applied');
  assert.equal(rearly.status, 'applied', 'the object exists again, so this edit is ordinary');
  const all = await b.pullAll('Note');
  assert.deepEqual(all.objects.n, { title: 'edited later', body: 'x' });
});

test('delete_should_lose_to_later_server_changes_under_server_wins_and_last_write_wins', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const b = client(srv, 'b');
  const [{ version: vs }, { version: vn }] = await a.push([
    a.mut('SNote', 's', { title: 's0' }, { ts: 1000 }), a.mut('Note', 'n', { title: 'n0' }, { ts: 1000 }),
  ]);
  await a.push([a.mut('SNote', 's', { title: 's1' }, { base: vs, ts: 3000 }), a.mut('Note', 'n', { title: 'n1' }, { base: vn, ts: 3000 })]);
  const [ds, dn] = await b.push([b.del('SNote', 's', { base: vs, ts: 9000 }), b.del('Note', 'n', { base: vn, ts: 2000 })]);
  assert.equal(ds.status, 'conflict');
  assert.deepEqual(ds.server, { title: 's1', body: null });
  assert.equal(dn.status, 'conflict');
  assert.deepEqual(dn.attrs, ['title']);
  assert.equal((await b.pullAll('SNote')).objects.s.title, 's1');
  // a delete after the last write wins under last-write-wins
  const [dn2] = await b.push([b.del('Note', 'n', { base: vn, ts: 4000 })]);
  assert.equal(dn2.status, 'applied');
});

test('pull_should_page_by_version_cursor_with_more', async () => {
  const srv = await start({ pageLimit: 3 });
  const a = client(srv, 'a');
  const muts = [];
  for (let i = 0; i < 8; i++) muts.push(a.mut('Note', `n${i}`, { title: `t${i}` }));
  muts.splice(4, 0, a.mut('Region', 'r', { name: 'other entity' }));
  muts.forEach((m, i) => { m.mid = i + 1; });
  await a.push(muts);
  const p1 = (await a.pull('Note', { cursor: 0, limit: 100 })).body;   // the server caps the page at pageLimit
  assert.deepEqual(p1.objects.map((o) => o.id), ['n0', 'n1', 'n2']);
  assert.equal(p1.more, true);
  assert.equal(p1.cursor, 3);
  const p2 = (await a.pull('Note', { cursor: p1.cursor })).body;
  assert.deepEqual(p2.objects.map((o) => [o.id, o.version]), [['n3', 4], ['n4', 6], ['n5', 7]]);
  assert.equal(p2.cursor, 7);
  assert.equal(p2.more, true);
  const p3 = (await a.pull('Note', { cursor: p2.cursor })).body;
  assert.deepEqual(p3.objects.map((o) => o.id), ['n6', 'n7']);
  assert.equal(p3.more, false);
  assert.equal(p3.cursor, 9);
  // nothing new: same cursor, nothing more
  const p4 = (await a.pull('Note', { cursor: p3.cursor })).body;
  assert.deepEqual([p4.objects, p4.removed, p4.cursor, p4.more], [[], [], 9, false]);
  // a smaller limit from the client is honoured; a page ending exactly at the last object says more: false
  const small = (await a.pull('Note', { cursor: 7, limit: 2 })).body;
  assert.deepEqual([small.objects.map((o) => o.id), small.more], [['n6', 'n7'], false]);
  // the pages cover everything once
  const all = await a.pullAll('Note');
  assert.equal(Object.keys(all.objects).length, 8);
  assert.equal(all.pages, 3);
});

test('pull_should_send_a_changed_object_again_with_its_new_version', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  await a.push([a.mut('Note', 'n1', { title: 'one' }), a.mut('Note', 'n2', { title: 'two' })]);
  const first = await a.pullAll('Note');
  const [{ version }] = await a.push([a.mut('Note', 'n1', { body: 'more' }, { base: first.versions.n1 })]);
  const next = await a.pullAll('Note', first.cursor);
  assert.deepEqual(next.objects, { n1: { title: 'one', body: 'more' } });
  assert.deepEqual(next.versions, { n1: version });
});

test('pull_by_ids_should_return_current_state_and_absent_ones_in_removed', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  await a.push([a.mut('Note', 'n1', { title: 'one' }), a.mut('Note', 'n2', { title: 'two' }), a.mut('Note', 'n3', { title: 'three' })]);
  await a.push([a.del('Note', 'n3')]);
  const r = await a.pull('Note', { ids: ['n1', 'n3', 'nope'] });
  assert.equal(r.status, 200);
  assert.equal(r.body.cursor, undefined);
  assert.equal(r.body.more, false);
  assert.deepEqual(r.body.objects, [{ id: 'n1', version: 1, values: { title: 'one', body: null } }]);
  assert.deepEqual(r.body.removed.sort(), ['n3', 'nope']);
  assert.equal((await a.pull('Note', { ids: 'n1' })).status, 400);
});

test('where_filter_should_send_matching_objects_and_remove_ones_that_stop_matching', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  await a.push([
    a.mut('Visit', 'v1', { note: 'open one', status: 'open' }),
    a.mut('Visit', 'v2', { note: 'old', status: 'archived' }),
    a.mut('Visit', 'v3', { note: 'no status', status: null }),
  ]);
  const first = await a.pullAll('Visit');
  assert.deepEqual(Object.keys(first.objects).sort(), ['v1', 'v3']);
  assert.deepEqual(first.removed, ['v2']);
  // v1 is archived: it leaves the device's set; v2 comes back
  await a.push([
    a.mut('Visit', 'v1', { status: 'archived' }, { base: first.versions.v1 }),
    a.mut('Visit', 'v2', { status: 'open' }, { base: 2 }),
  ]);
  const next = await a.pullAll('Visit', first.cursor);
  assert.deepEqual(next.objects, { v2: { note: 'old', status: 'open' } });
  assert.deepEqual(next.removed, ['v1']);
  const ids = await a.pull('Visit', { ids: ['v1', 'v2'] });
  assert.deepEqual(ids.body.objects.map((o) => o.id), ['v2']);
  assert.deepEqual(ids.body.removed, ['v1']);
});

test('where_filter_should_use_the_user_from_authenticate', async () => {
  const srv = await start({
    authenticate: (req) => {
      const m = /^Bearer (\w+)$/.exec(req.headers.authorization || '');
      return m ? { id: m[1] } : null;
    },
  });
  const ann = client(srv, 'ann', { headers: { authorization: 'Bearer ann' } });
  const bob = client(srv, 'bob', { headers: { authorization: 'Bearer bob' } });
  // ann may not write an object she could not read afterwards: one for bob is the server's to write
  const given = await ann.push([ann.mut('Task', 't1', { owner: 'ann', text: 'mine' }), ann.mut('Task', 't2', { owner: 'bob', text: 'for bob' })]);
  assert.deepEqual(given.map((r) => r.reason ?? r.status), ['applied', 'forbidden']);
  await srv.write('Task', [{ id: 't2', owner: 'bob', text: 'for bob' }]);
  await bob.push([bob.mut('Task', 't3', { owner: 'bob', text: 'bob own' })]);
  const annView = await ann.pullAll('Task');
  const bobView = await bob.pullAll('Task');
  assert.deepEqual(Object.keys(annView.objects), ['t1']);
  assert.deepEqual(Object.keys(bobView.objects).sort(), ['t2', 't3']);
  assert.deepEqual(bobView.removed, [], "no id of an object bob could never read");
  // bob may not hand t2 over (he could not read it after); the server can: it leaves bob's device and reaches ann's
  const handover = await bob.push([bob.mut('Task', 't2', { owner: 'ann' }, { base: bobView.versions.t2 })]);
  assert.equal(handover[0].reason, 'forbidden');
  await srv.write('Task', [{ id: 't2', owner: 'ann' }]);
  assert.deepEqual(Object.keys((await ann.pullAll('Task', annView.cursor)).objects), ['t2']);
  const bobNext = await bob.pullAll('Task', bobView.cursor);
  assert.deepEqual(bobNext.objects, {});
  assert.deepEqual(bobNext.removed, ['t2']);
});

test('nothing_and_never_entities_should_have_nothing_to_pull', async () => {
  const srv = await start();
  const a = client(srv, 'a');
  const r = await a.push([a.mut('Feedback', 'f1', { text: 'great' }), a.mut('Keep', 'k1', { text: 'kept' })]);
  assert.deepEqual(r.map((x) => x.status), ['applied', 'applied'], 'uploads are accepted');
  for (const entity of ['Feedback', 'Keep', 'Draft']) {
    const p = await a.pull(entity, { cursor: 0 });
    assert.equal(p.status, 200);
    assert.deepEqual(p.body, { modelVersion: '1', entity, cursor: 0, more: false, objects: [], removed: [] });
  }
  const stored = await srv.db.query('SELECT id, text FROM "Feedback"');
  assert.deepEqual(stored, [{ id: 'f1', text: 'great' }]);
});

test('pull_with_another_model_version_should_get_409_and_push_should_still_apply', async () => {
  const srv = await start();
  const old = client(srv, 'old', { modelVersion: '0' });
  const p = await old.pull('Note');
  assert.equal(p.status, 409);
  assert.deepEqual(p.body.error, 'model_changed');
  assert.equal(p.body.modelVersion, '1');
  assert.match(p.body.message, /version 1/);
  assert.equal((await post(srv, 'pull', { clientId: 'x', entity: 'Note' })).status, 409, 'no modelVersion is not the server\'s');
  const r = await old.push([old.mut('Note', 'n', { title: 'pushed under the old model' })]);
  assert.equal(r[0].status, 'applied');
});

test('request_errors_should_get_json_error_replies', async () => {
  const srv = await start({ bodyLimit: 64 * 1024 });
  const a = client(srv, 'a');
  // malformed JSON, wrong shapes
  for (const body of ['{bad', '', '[]', 'null', '{"clientId": 5, "mutations": []}', '{"clientId": "a"}',
    '{"clientId": "a", "mutations": [{"mid": 0}]}', '{"clientId": "a", "mutations": [{"mid": 1}, {"mid": 1}]}']) {
    const r = await post(srv, 'push', body);
    assert.equal(r.status, 400, body);
    assert.equal(r.body.error, 'bad_request');
    assert.ok(r.body.message);
  }
  for (const body of ['{"modelVersion": "1", "entity": "Nope"}', '{"modelVersion": "1", "entity": "Note", "cursor": -1}',
    '{"modelVersion": "1", "entity": "Note", "limit": 0}', '{"modelVersion": "1", "entity": "Note", "ids": [1]}']) {
    assert.equal((await post(srv, 'pull', body)).status, 400, body);
  }
  // too large: refused with 413
  const big = await post(srv, 'push', { clientId: 'a', mutations: [a.mut('Note', 'n', { title: 'x'.repeat(100 * 1024) })] });
  assert.equal(big.status, 413);
  assert.equal(big.body.error, 'too_large');
  // unknown routes and methods
  for (const [method, route, status] of [['GET', '/sync/nothing', 404], ['POST', '/sync', 404], ['GET', '/sync/push', 405], ['POST', '/sync/model', 405], ['GET', '/', 404]]) {
    const res = await fetch(srv.url + route, { method, body: method === 'POST' ? '{}' : undefined });
    assert.equal(res.status, status, `${method} ${route}`);
    assert.ok((await res.json()).error);
  }
  // the server still works
  assert.equal((await a.push([a.mut('Note', 'ok', { title: 'fine' })]))[0].status, 'applied');
});

test('body_over_the_limit_should_get_413_without_being_read', async () => {
  const srv = await start({ bodyLimit: 1024 * 1024 });
  const body = JSON.stringify({ clientId: 'a', mutations: [{ mid: 1, entity: 'Note', id: 'n', op: 'upsert', values: { title: 'x'.repeat(8 * 1024 * 1024) } }] });
  const r = await post(srv, 'push', body);
  assert.equal(r.status, 413);
  // a streamed body without content-length is cut off at the limit too
  const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
  let sent = 0;
  const stream = new ReadableStream({
    pull(c) { if (sent++ < 200) c.enqueue(chunk); else c.close(); },
  });
  const res = await fetch(`${srv.url}/sync/push`, { method: 'POST', body: stream, duplex: 'half' });
  assert.equal(res.status, 413);
  assert.ok(sent < 200, `the server stopped reading (read ${sent} chunks)`);
  await res.arrayBuffer();
});

test('authenticate_returning_null_should_get_401', async () => {
  const srv = await start({ authenticate: async (req) => (req.headers.authorization === 'Bearer ok' ? { id: 'u' } : null) });
  for (const [route, method] of [['model', 'GET'], ['push', 'POST'], ['pull', 'POST']]) {
    const res = await fetch(`${srv.url}/sync/${route}`, { method, body: method === 'POST' ? '{}' : undefined });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error, 'unauthenticated');
  }
  const ok = await fetch(`${srv.url}/sync/model`, { headers: { authorization: 'Bearer ok' } });
  assert.equal(ok.status, 200);
});

test('exceptions_should_get_500_internal_and_be_logged', async () => {
  const before = logs.length;
  const srv = await start({ authenticate: () => { throw new Error('auth backend down'); } });
  const res = await fetch(`${srv.url}/sync/model`);
  assert.equal(res.status, 500);
  assert.deepEqual(await res.json(), { error: 'internal', message: 'the server failed; see its log' });
  assert.ok(logs.slice(before).some((l) => l.includes('auth backend down')));
});

test('static_option_should_serve_files_and_the_bindings', async () => {
  const srv = await start({ static: path.join(root, 'web') });
  const page = await fetch(`${srv.url}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html/);
  const mod = await fetch(`${srv.url}/bindings/index.js`);
  assert.equal(mod.status, 200);
  assert.match(mod.headers.get('content-type'), /javascript/);
  assert.equal((await fetch(`${srv.url}/../package.json`)).status, 404);
  assert.equal((await fetch(`${srv.url}/sync/model`)).status, 200);
});

test('static_files_should_never_serve_dotfiles_or_anything_outside_the_root_through_a_symlink', async () => {
  const site = path.join(base, `site-${++dirs}`);
  const outside = path.join(base, `outside-${dirs}`);
  fs.mkdirSync(path.join(site, '.git'), { recursive: true });
  fs.mkdirSync(outside, { recursive: true });
  fs.writeFileSync(path.join(site, 'index.html'), '<html>ok</html>');
  fs.writeFileSync(path.join(site, '.env'), 'CONTENT-X');
  fs.writeFileSync(path.join(site, '.git', 'config'), 'CONTENT-X');
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'CONTENT-X');
  fs.symlinkSync(outside, path.join(site, 'linked'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(site, 'file.txt'));
  const srv = await start({ static: site });
  assert.equal((await fetch(`${srv.url}/`)).status, 200);
  for (const p of ['/.env', '/.git/config', '/%2egit/config', '/linked/secret.txt', '/file.txt']) {
    const r = await fetch(`${srv.url}${p}`);
    assert.equal(r.status, 404, p);
    assert.doesNotMatch(await r.text(), /CONTENT-X/, p);
  }
});

test('static_files_should_be_served_compressed_with_a_validator', async () => {
  // The demo's wasm and modules are most of a first visit's bytes: they go
  // out compressed, and a revalidation with the ETag costs no body.
  const { request } = await import('node:http');
  const zlib = await import('node:zlib');
  const site = path.join(base, `site-${++dirs}`);
  fs.mkdirSync(site, { recursive: true });
  const script = `export const words = ${JSON.stringify(Array.from({ length: 3000 }, (_, i) => `word${i % 97}`))};\n`;
  fs.writeFileSync(path.join(site, 'app.js'), script);
  fs.writeFileSync(path.join(site, 'tiny.js'), 'export {};\n');
  fs.writeFileSync(path.join(site, 'photo.png'), Buffer.alloc(4096, 7));
  const srv = await start({ static: site });
  const get = (p, headers = {}, method = 'GET') => new Promise((resolve, reject) => {
    const req = request(`${srv.url}${p}`, { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
  const br = await get('/app.js', { 'accept-encoding': 'gzip, deflate, br' });
  assert.equal(br.status, 200);
  assert.equal(br.headers['content-encoding'], 'br');
  assert.match(br.headers.vary, /accept-encoding/i);
  assert.equal(zlib.brotliDecompressSync(br.body).toString(), script);
  assert.ok(br.body.length < script.length / 4, `${br.body.length} bytes for ${script.length}`);
  const gz = await get('/app.js', { 'accept-encoding': 'gzip' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(zlib.gunzipSync(gz.body).toString(), script);
  const plain = await get('/app.js');
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.body.toString(), script);
  const etag = plain.headers.etag;
  assert.ok(etag);
  assert.equal(br.headers.etag, etag.replace(/"$/, '-br"'), 'each encoding has its own validator');
  const again = await get('/app.js', { 'accept-encoding': 'br', 'if-none-match': br.headers.etag });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  const head = await get('/app.js', { 'accept-encoding': 'br' }, 'HEAD');
  assert.equal(Number(head.headers['content-length']), br.body.length);
  assert.equal(head.body.length, 0);
  for (const p of ['/tiny.js', '/photo.png']) {
    const r = await get(p, { 'accept-encoding': 'br, gzip' });
    assert.equal(r.headers['content-encoding'], undefined, `${p}: too small or already compressed`);
    assert.equal(r.body.length, fs.statSync(path.join(site, p)).size);
  }
  // A changed file is never answered from the compressed copy of its old bytes.
  fs.writeFileSync(path.join(site, 'app.js'), `${script}// v2\n`);
  const changed = await get('/app.js', { 'accept-encoding': 'br' });
  assert.equal(zlib.brotliDecompressSync(changed.body).toString(), `${script}// v2\n`);
  assert.notEqual(changed.headers.etag, br.headers.etag);
});

test('invalid_model_should_fail_start_with_model_invalid_listing_errors', async () => {
  const e = await rejection(createSyncServer({
    model: { version: '2', entities: { A: { attributes: { x: 'text' } }, B: { attributes: {}, sync: { where: 'y = 1' } } } },
    dataDir: dataDir(),
  }));
  assert.ok(e instanceof FerryError);
  assert.equal(e.code, 'model_invalid');
  assert.match(e.message, /A: attribute-type: /);
  assert.match(e.message, /B: where: /);
  assert.equal(e.errors.length, 2);
  const bad = await rejection(createSyncServer({ model: path.join(base, 'missing.json') }));
  assert.equal(bad.code, 'not_found');
});

test('model_can_be_a_path_and_data_dir_can_be_omitted', async () => {
  const srv = await createSyncServer({ model: path.join(root, 'server/demo-model.json') });
  try {
    const m = await (await fetch(`${srv.url}/sync/model`)).json();
    assert.equal(m.version, '5');
    assert.ok(srv.dataDir);
  } finally {
    await srv.close();
  }
});

test('seed_should_fill_a_new_database_and_server_writes_should_sync', async () => {
  const dir = dataDir();
  const seed = { Region: [{ id: 'r1', name: 'North' }, { id: 'r2', name: 'South' }] };
  const srv = await createSyncServer({ model: MODEL, dataDir: dir, seed });
  const a = client(srv, 'a');
  const first = await a.pullAll('Region');
  assert.deepEqual(first.objects, { r1: { name: 'North' }, r2: { name: 'South' } });
  const { version } = await srv.write('Region', [{ id: 'r1', name: 'Nord' }]);
  await srv.remove('Region', ['r2']);
  const next = await a.pullAll('Region', first.cursor);
  assert.deepEqual(next.objects, { r1: { name: 'Nord' } });
  assert.deepEqual(next.removed, ['r2']);
  assert.equal(next.versions.r1, version);
  assert.equal((await rejection(srv.write('Region', [{ id: 'r3', name: 5 }]))).code, 'type');
  assert.equal((await rejection(srv.write('Draft', [{ id: 'd' }]))).code, 'not_found');
  await srv.close();
  // not seeded again on restart
  const again = await createSyncServer({ model: MODEL, dataDir: dir, seed: () => { throw new Error('seeded twice'); } });
  assert.deepEqual((await client(again, 'b').pullAll('Region')).objects, { r1: { name: 'Nord' } });
  await again.close();
});

test('concurrent_pushes_from_many_clients_should_all_apply_with_distinct_versions', async () => {
  const srv = await start();
  const clients = Array.from({ length: 8 }, (_, i) => client(srv, `c${i}`));
  const replies = await Promise.all(clients.map((c, i) => c.push(
    Array.from({ length: 20 }, (_, j) => c.mut('Note', `c${i}-${j}`, { title: `${i}/${j}` })))));
  const versions = replies.flat().map((r) => r.version);
  assert.equal(new Set(versions).size, 160);
  assert.equal(Math.max(...versions), 160);
  const all = await clients[0].pullAll('Note');
  assert.equal(Object.keys(all.objects).length, 160);
});

test('port_in_use_or_data_dir_in_use_should_fail_start_and_release_everything', async () => {
  const dir = dataDir();
  const srv = await start({ dataDir: dir });
  if (backendName === 'sqlite') {
    // (On PostgreSQL several servers share one database by design.)
    const busyDir = await rejection(createSyncServer({ model: MODEL, dataDir: dir }));
    assert.equal(busyDir.code, 'busy');
  }
  const other = dataDir();
  const busyPort = await rejection(createSyncServer({ model: MODEL, dataDir: other, port: srv.port }));
  assert.equal(busyPort.code, 'EADDRINUSE');
  // the failed start released its database: the folder can be served now
  const ok = await start({ dataDir: other });
  assert.equal((await fetch(`${ok.url}/sync/model`)).status, 200);
});

test('cors_option_should_answer_preflights_for_allowed_origins_only', async () => {
  const srv = await start({ cors: ['https://app.example'] });
  const pre = await fetch(`${srv.url}/sync/push`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
  const res = await fetch(`${srv.url}/sync/model`, { headers: { origin: 'https://app.example' } });
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example');
  const other = await fetch(`${srv.url}/sync/model`, { headers: { origin: 'https://evil.example' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  const noCors = await start();
  assert.equal((await fetch(`${noCors.url}/sync/model`, { headers: { origin: 'https://app.example' } })).headers.get('access-control-allow-origin'), null);
});

test('error_replies_should_carry_cors_headers_for_allowed_origins', async () => {
  const srv = await start({ cors: '*', authenticate: () => null });
  const res = await fetch(`${srv.url}/sync/model`, { headers: { origin: 'https://app.example' } });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
});

test('entity_with_many_attributes_should_round_trip', async () => {
  const attributes = {};
  const values = {};
  for (let i = 0; i < 150; i++) {
    attributes[`a${i}`] = i % 3 === 0 ? 'boolean' : i % 3 === 1 ? 'integer' : 'string';
    values[`a${i}`] = i % 3 === 0 ? i % 2 === 0 : i % 3 === 1 ? i : `v${i}`;
  }
  const srv = await start({ model: { version: 'wide', entities: { Wide: { attributes } } } });
  const a = client(srv, 'a', { modelVersion: 'wide' });
  assert.equal((await a.push([a.mut('Wide', 'w', values)]))[0].status, 'applied');
  assert.deepEqual((await a.pullAll('Wide')).objects.w, values);
});

test('results_a_client_never_acknowledges_should_be_forgotten_after_the_horizon', async () => {
  const horizon = 3600_000;
  const srv = await start({ tombstoneHorizon: horizon });
  const a = client(srv, 'c-never-acks-0000001');
  await a.push([a.mut('Region', 'r1', { name: 'one' }), a.mut('Region', 'r2', { name: 'two' })]);
  // The same client keeps syncing (it is seen) but acknowledges nothing.
  await srv.db.exec('UPDATE _ferry_results SET at = at - ?', [2 * horizon]);
  await a.push([a.mut('Region', 'r3', { name: 'three' })]);
  const count = async () => (await srv.db.query("SELECT count(*) AS n FROM _ferry_results WHERE client_id = 'c-never-acks-0000001'"))[0].n;
  assert.equal(await count(), 3);
  await srv.purge();
  assert.equal(await count(), 1, 'only the result recorded within the horizon is kept');
  // A client nobody has seen for longer loses the rest.
  await srv.purge({ now: Date.now() + 2 * horizon });
  assert.equal(await count(), 0);
});
