// A sync server is an API on the internet: a second user, raw HTTP bodies,
// forged client ids and timestamps from the future must not change or read
// what that user may not.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { open } from '../../bindings/index.js';
import { createSyncServer } from './backend.js';
import { tempDir } from './helpers.js';

const MODEL = {
  version: '1',
  entities: {
    Note: { attributes: { owner: 'string', text: 'string' }, sync: { where: 'owner = $user.id' } },
    Board: { attributes: { text: 'string' }, sync: 'all' },
  },
};
const USERS = { 'token-alice': { id: 'alice' }, 'token-bob': { id: 'bob' } };
const base = tempDir('security');
let n = 0;
const servers = [];
after(async () => { for (const s of servers) await s.close(); });

async function start() {
  const srv = await createSyncServer({
    model: MODEL, dataDir: path.join(base, `s${++n}`), log: () => {},
    authenticate: (req) => USERS[(req.headers.authorization || '').replace(/^Bearer /, '')] || null,
  });
  servers.push(srv);
  await srv.write('Note', [{ id: 'n1', owner: 'alice', text: "alice's secret" }]);
  await srv.write('Board', [{ id: 'b1', text: 'shared' }]);
  return srv;
}

async function post(srv, route, token, body) {
  const res = await fetch(`${srv.url}/sync/${route}`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const push = (srv, token, clientId, mutations) => post(srv, 'push', token, { clientId, modelVersion: '1', ackedMid: 0, mutations });
const note = async (srv, id) => (await srv.db.query('SELECT owner, text, _ferry_deleted AS deleted FROM "Note" WHERE id = ?', [id]))[0];

test('a_user_should_not_overwrite_take_over_or_delete_another_users_object', async () => {
  const srv = await start();
  const cases = [
    { mid: 1, entity: 'Note', id: 'n1', op: 'upsert', changed: ['text'], values: { text: 'bob was here' }, base: 0, ts: 1 },
    { mid: 2, entity: 'Note', id: 'n1', op: 'upsert', changed: ['owner', 'text'], values: { owner: 'bob', text: 'mine now' }, base: 0, ts: 1 },
    { mid: 3, entity: 'Note', id: 'n1', op: 'delete', base: 0, ts: 0 },
    { mid: 4, entity: 'Note', id: 'n1', op: 'delete', base: 1e9, ts: 1e15 },
  ];
  const r = await push(srv, 'token-bob', 'c-bob', cases);
  assert.equal(r.status, 200);
  for (const x of r.body.results) {
    assert.equal(x.status, 'rejected', JSON.stringify(x));
    assert.equal(x.reason, 'forbidden');
    assert.equal(x.server, undefined, 'no values of an object the user may not read');
  }
  assert.doesNotMatch(JSON.stringify(r.body), /secret/);
  assert.deepEqual(await note(srv, 'n1'), { owner: 'alice', text: "alice's secret", deleted: 0 });
  // Bob cannot give away an object either (it would be written as someone else's).
  const give = await push(srv, 'token-bob', 'c-bob', [
    { mid: 5, entity: 'Note', id: 'n2', op: 'upsert', changed: ['owner', 'text'], values: { owner: 'alice', text: 'spam' }, base: 0, ts: 1 },
  ]);
  assert.equal(give.body.results[0].reason, 'forbidden');
  assert.equal(await note(srv, 'n2'), undefined);
  // His own objects work as before.
  const own = await push(srv, 'token-bob', 'c-bob', [
    { mid: 6, entity: 'Note', id: 'b-n', op: 'upsert', changed: ['owner', 'text'], values: { owner: 'bob', text: 'bob note' }, base: 0, ts: Date.now() },
  ]);
  assert.equal(own.body.results[0].status, 'applied');
});

test('a_client_id_should_belong_to_the_user_that_first_used_it', async () => {
  const srv = await start();
  const dir = path.join(base, `alice-${++n}`);
  const alice = await open({ name: 'alice', storage: 'file', path: path.join(dir, 'a.db'), server: `${srv.url}/sync`, syncOnOpen: false,
    headers: () => ({ authorization: 'Bearer token-alice' }) });
  try {
    await alice.sync();
    const { clientId } = alice.status();
    // Bob pushes under Alice's client id with the highest mid there is.
    const r = await push(srv, 'token-bob', clientId, [
      { mid: 2 ** 53 - 1, entity: 'Board', id: 'b1', op: 'upsert', changed: ['text'], values: { text: 'hijack' }, base: 0, ts: Date.now() },
    ]);
    assert.equal(r.status, 403);
    assert.equal(r.body.error, 'forbidden');
    // A rejected mutation under her own id does not advance anything either.
    await alice.exec("INSERT INTO Note(id, owner, text) VALUES ('a2', 'alice', 'next change')");
    const s = await alice.sync();
    assert.equal(s.pushed, 1);
    assert.equal((await note(srv, 'a2')).text, 'next change', "Alice's change is applied, not taken for a duplicate");
    assert.equal((await srv.db.query('SELECT text FROM "Board" WHERE id = ?', ['b1']))[0].text, 'shared');
  } finally {
    await alice.close();
  }
});

test('a_rejected_mutation_should_not_be_recorded_as_received', async () => {
  const srv = await start();
  const bad = await push(srv, 'token-bob', 'c-bob2', [
    { mid: 7, entity: 'Note', id: 'n1', op: 'delete', base: 0, ts: 1 },
  ]);
  assert.equal(bad.body.results[0].status, 'rejected');
  // The same mid, now for a write Bob may make, is applied: the rejection left no trace.
  const ok = await push(srv, 'token-bob', 'c-bob2', [
    { mid: 7, entity: 'Note', id: 'bob-1', op: 'upsert', changed: ['owner', 'text'], values: { owner: 'bob', text: 'x' }, base: 0, ts: Date.now() },
  ]);
  assert.equal(ok.body.results[0].status, 'applied');
  assert.notEqual(ok.body.results[0].duplicate, true);
});

test('a_timestamp_from_the_future_should_not_win_every_later_write', async () => {
  const srv = await start();
  for (const ts of [1e15, 1e308]) {
    const r = await push(srv, 'token-bob', `c-future-${ts}`, [
      { mid: 1, entity: 'Board', id: 'b1', op: 'upsert', changed: ['text'], values: { text: `from the future ${ts}` }, base: 0, ts },
    ]);
    assert.equal(r.body.results[0].status, 'applied');
    await new Promise((res) => setTimeout(res, 5));
    const later = await push(srv, 'token-alice', `c-now-${ts}`, [
      { mid: 1, entity: 'Board', id: 'b1', op: 'upsert', changed: ['text'], values: { text: 'written later' }, base: 0, ts: Date.now() },
    ]);
    assert.equal(later.body.results[0].status, 'applied', JSON.stringify(later.body));
    assert.equal((await srv.db.query('SELECT text FROM "Board" WHERE id = ?', ['b1']))[0].text, 'written later');
  }
});

test('forged_cursors_and_other_users_ids_should_reveal_nothing', async () => {
  const srv = await start();
  for (const cursor of [0, -1, 2 ** 53, 1.5]) {
    const r = await post(srv, 'pull', 'token-bob', { clientId: 'c-bob', modelVersion: '1', entity: 'Note', cursor });
    assert.doesNotMatch(JSON.stringify(r.body), /secret/);
  }
  const byId = await post(srv, 'pull', 'token-bob', { clientId: 'c-bob', modelVersion: '1', entity: 'Note', ids: ['n1'] });
  assert.equal(byId.status, 200);
  assert.deepEqual(byId.body.objects, []);
  assert.doesNotMatch(JSON.stringify(byId.body), /secret/);
});

test('removals_should_name_only_objects_the_user_could_read', async () => {
  const srv = await start();
  const pullAll = async (token, cursor = 0) => {
    const out = { objects: [], removed: [] };
    for (;;) {
      const r = await post(srv, 'pull', token, { clientId: `c-${token}`, modelVersion: '1', entity: 'Note', cursor });
      out.objects.push(...r.body.objects.map((o) => o.id));
      out.removed.push(...r.body.removed);
      cursor = r.body.cursor;
      if (!r.body.more) return { ...out, cursor };
    }
  };
  const bob0 = await pullAll('token-bob');
  const alice0 = await pullAll('token-alice');
  assert.deepEqual(alice0.objects, ['n1']);
  // Alice's notes change, move and go; Bob's own note is handed to Alice by the server.
  await push(srv, 'token-bob', 'c-token-bob', [
    { mid: 1, entity: 'Note', id: 'bn', op: 'upsert', changed: ['owner', 'text'], values: { owner: 'bob', text: 'b' }, base: 0, ts: Date.now() }]);
  await push(srv, 'token-alice', 'c-token-alice', [
    { mid: 1, entity: 'Note', id: 'n1', op: 'upsert', changed: ['text'], values: { text: 'edited' }, base: 0, ts: Date.now() },
    { mid: 2, entity: 'Note', id: 'n3', op: 'upsert', changed: ['owner', 'text'], values: { owner: 'alice', text: 'soon gone' }, base: 0, ts: Date.now() }]);
  await push(srv, 'token-alice', 'c-token-alice', [{ mid: 3, entity: 'Note', id: 'n3', op: 'delete', base: 0, ts: Date.now() }]);
  await srv.write('Note', [{ id: 'bn', owner: 'alice' }]);
  const bob1 = await pullAll('token-bob', bob0.cursor);
  assert.deepEqual(bob1.removed, ['bn'], 'bob learns only that his own note left him');
  assert.doesNotMatch(JSON.stringify(bob1), /n1|n3/);
  const alice1 = await pullAll('token-alice', alice0.cursor);
  assert.deepEqual(alice1.objects.sort(), ['bn', 'n1']);
  assert.deepEqual(alice1.removed, ['n3']);
});

test('the_server_should_refuse_u0000_in_text_from_any_writer', async () => {
  const srv = await start();
  const r = await push(srv, 'token-alice', 'c-nul', [
    { mid: 1, entity: 'Board', id: 'b2', op: 'upsert', changed: ['text'], values: { text: 'a\u0000b' }, base: 0, ts: Date.now() },
    { mid: 2, entity: 'Board', id: 'b\u0000', op: 'upsert', changed: ['text'], values: { text: 'x' }, base: 0, ts: Date.now() },
  ]);
  assert.deepEqual(r.body.results.map((x) => x.status), ['rejected', 'rejected']);
  assert.match(r.body.results[0].reason, /U\+0000/);
  await assert.rejects(srv.write('Board', [{ id: 'b3', text: 'before\u0000after' }]), /U\+0000/);
});

test('each_mutation_of_a_large_push_should_be_judged_by_its_own_values_before_and_after', async () => {
  // The checks of one push are batched (one evaluation per distinct tuple of
  // the filter's columns, an "after" only when the write sets one of them):
  // objects alike in some columns, but not all, must still be told apart.
  const model = {
    version: '1',
    entities: {
      Task: {
        attributes: { owner: 'string', status: 'string', text: 'string' },
        sync: { where: "(owner = $user.id and status != 'archived') or id = $user.shared" },
      },
    },
  };
  const srv = await createSyncServer({
    model, dataDir: path.join(base, `s${++n}`), log: () => {},
    authenticate: () => ({ id: 'alice', shared: 's1' }),
  });
  servers.push(srv);
  const open_ = { status: 'open', text: 'x' };
  await srv.write('Task', [
    ...['t1', 't2', 't3', 't4', 't6'].map((id) => ({ id, owner: 'alice', ...open_ })),
    { id: 's1', owner: 'bob', ...open_ }, { id: 'b1', owner: 'bob', ...open_ }, { id: 't5', owner: 'bob', ...open_ },
  ]);
  await srv.remove('Task', ['t5', 't6']);
  let mid = 0;
  const up = (id, values) => ({ mid: ++mid, entity: 'Task', id, op: 'upsert', changed: Object.keys(values), values, base: 0, ts: Date.now() });
  const cases = [
    [up('t1', { text: 'edited' }), 'applied'],
    [up('t2', { status: 'archived' }), 'rejected'],
    [up('t3', { owner: 'bob' }), 'rejected'],
    [up('t4', { text: 'edited' }), 'applied'],
    [up('s1', { text: 'edited' }), 'applied'],
    [up('b1', { text: 'edited' }), 'rejected'],
    [up('n1', { owner: 'alice', ...open_ }), 'applied'],
    [up('n2', { owner: 'alice', status: 'archived', text: 'x' }), 'rejected'],
    [up('n3', { owner: 'bob', ...open_ }), 'rejected'],
    [up('t5', { text: 'revived' }), 'rejected'],
    [up('t6', { text: 'revived' }), 'applied'],
    // The same objects again (a later run of the push): judged by their values now.
    [up('t1', { status: 'archived' }), 'rejected'],
    [up('n1', { text: 'edited' }), 'applied'],
    [up('s1', { owner: 'carol' }), 'applied'],
    [{ mid: ++mid, entity: 'Task', id: 't4', op: 'delete', base: 0, ts: Date.now() }, 'applied'],
    [{ mid: ++mid, entity: 'Task', id: 'b1', op: 'delete', base: 0, ts: Date.now() }, 'rejected'],
  ];
  const r = await push(srv, 'any', 'c-batch', cases.map(([m]) => m));
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.results.map((x) => `${x.mid} ${x.status}`), cases.map(([m, want]) => `${m.mid} ${want}`));
  const rows = Object.fromEntries((await srv.db.query('SELECT id, owner, status, text, _ferry_deleted AS d FROM "Task"')).map((x) => [x.id, `${x.owner} ${x.status} ${x.text} ${x.d}`]));
  assert.deepEqual(rows, {
    t1: 'alice open edited 0', t2: 'alice open x 0', t3: 'alice open x 0', t4: 'alice open edited 1', t5: 'bob open x 1',
    t6: 'alice open revived 0', s1: 'carol open edited 0', b1: 'bob open x 0', n1: 'alice open edited 0',
  });
});

test('an_object_that_left_a_view_and_came_back_should_not_be_listed_as_removed', async () => {
  // A pull reads "is it readable now" from the exit while no later write
  // touched the filter's columns; one that did (or brought a deleted object
  // back) must send the pull to the object itself. One object per page, so
  // the object comes back in a later page than its exit: a removal would
  // make it vanish from the device in between.
  const srv = await start();
  await srv.write('Note', [{ id: 'back', owner: 'alice', text: 'a' }, { id: 'gone', owner: 'alice', text: 'b' },
    { id: 'revived', owner: 'alice', text: 'c' }, { id: 'kept', owner: 'alice', text: 'd' }]);
  const cursor = (await post(srv, 'pull', 'token-alice', { clientId: 'c-back', modelVersion: '1', entity: 'Note', cursor: 0 })).body.cursor;
  await srv.write('Note', [{ id: 'back', owner: 'bob' }, { id: 'gone', owner: 'bob' }]);
  await srv.remove('Note', ['revived']);
  await srv.write('Note', [{ id: 'kept', text: 'edited' }]);   // not the filter's column: its object is looked up no more
  await srv.write('Note', [{ id: 'back', owner: 'alice' }, { id: 'revived', owner: 'alice', text: 'again' }]);
  const removed = [];
  const objects = [];
  for (let c = cursor, more = true; more;) {
    const r = await post(srv, 'pull', 'token-alice', { clientId: 'c-back', modelVersion: '1', entity: 'Note', cursor: c, limit: 1 });
    assert.equal(r.status, 200);
    removed.push(...r.body.removed);
    objects.push(...r.body.objects.map((o) => o.id));
    ({ cursor: c, more } = r.body);
  }
  assert.deepEqual(removed, ['gone'], 'only the note that stayed with bob left alice');
  assert.deepEqual(objects.sort(), ['back', 'kept', 'revived']);
  // Bob could read 'back' for a while: it left him, and he may be told so.
  const bob = await post(srv, 'pull', 'token-bob', { clientId: 'c-back-bob', modelVersion: '1', entity: 'Note', cursor: 0 });
  assert.deepEqual(bob.body.objects.map((o) => o.id), ['gone']);
  assert.deepEqual(bob.body.removed, ['back']);
});

test('removals_after_a_filter_change_should_follow_the_new_filter', async () => {
  // An exit keeps the columns of the filter of its day for fast pulls; once
  // the filter reads other columns, the exit's whole earlier state must.
  const model = (version, where) => ({ version, entities: { Task: { attributes: { owner: 'string', team: 'string' }, sync: { where } } } });
  const dataDir = path.join(base, `s${++n}`);
  const users = { 'token-alice': { id: 'alice', team: 'red' } };
  const serve = (m) => createSyncServer({ model: m, dataDir, log: () => {}, authenticate: (req) => users[(req.headers.authorization || '').replace(/^Bearer /, '')] || null });
  let srv = await serve(model('1', 'owner = $user.id'));
  await srv.write('Task', [{ id: 't1', owner: 'alice', team: 'red' }, { id: 't2', owner: 'alice', team: 'red' }]);
  await srv.write('Task', [{ id: 't1', owner: 'bob', team: 'blue' }, { id: 't2', owner: 'bob' }]);
  await srv.close();
  srv = await serve(model('2', 'team = $user.team'));
  servers.push(srv);
  const r = await post(srv, 'pull', 'token-alice', { clientId: 'c-filter', modelVersion: '2', entity: 'Task', cursor: 0 });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.objects.map((o) => o.id), ['t2'], 't2 is still red');
  assert.deepEqual(r.body.removed, ['t1'], 't1 left the red team');
});

test('a_resent_change_should_not_carry_the_values_of_a_later_refused_write', { timeout: 60_000 }, async () => {
  // A push whose answer never came is sent again with the object's values
  // as they are now: those of a later write that also gave the note away
  // (refused, as it must be) must not reach the server through it.
  const { startWorld } = await import('./sync-helpers.js');
  const w = await startWorld('resend-later', {
    model: MODEL,
    server: { authenticate: (req) => USERS[(req.headers.authorization || '').replace(/^Bearer /, '')] || null },
  });
  try {
    await w.srv.write('Note', [{ id: 'n1', owner: 'alice', text: 'as the server has it' }]);
    const a = await w.client('a', { headers: async () => ({ authorization: 'Bearer token-alice' }) });
    await a.sync();
    await a.exec("UPDATE Note SET text = 'first edit' WHERE id = 'n1'");
    w.proxy.mode = 'cut-request';   // the push goes out numbered, and no answer comes
    await assert.rejects(a.sync(), (e) => e.code === 'sync_network');
    w.proxy.mode = 'pass';
    await a.exec("UPDATE Note SET owner = 'bob', text = 'given away' WHERE id = 'n1'");
    await a.sync();
    const [row] = await w.srv.db.query('SELECT owner, text FROM "Note" WHERE id = ?', ['n1']);
    assert.equal(row.owner, 'alice');
    assert.notEqual(row.text, 'given away', 'the refused write\'s text came through the resend');
    const errs = (await a.syncErrors()).filter((e) => e.id === 'n1');
    assert.equal(errs[0]?.reason, 'forbidden');
  } finally {
    await w.stop();
  }
});
