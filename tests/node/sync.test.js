// Two clients and the reference server on 127.0.0.1: offline changes reach
// the other device, concurrent edits follow the conflict policy, and the
// sync modes download and upload what the README's table says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rejection } from './helpers.js';
import { MODEL, startWorld, snapshot } from './sync-helpers.js';

// A file attribute holds a reference to bytes kept in file storage, in its canonical JSON form.
const PHOTO = '{"hash":"' + 'ab'.repeat(32) + '","size":3,"type":"image/png","name":"ada.png"}';

test('changes_made_offline_on_one_client_should_reach_the_other', async () => {
  const w = await startWorld('offline');
  try {
    const a = await w.client('a');
    const b = await w.client('b');
    await a.sync();
    await b.sync();
    assert.equal(a.status().modelVersion, '3');
    // A works offline: the connection is refused, changes stay pending.
    w.proxy.mode = 'cut-request';
    await a.exec("INSERT INTO Region(id, name) VALUES ('r1', 'North')");
    await a.exec(`INSERT INTO Customer(id, name, email, credit, active, since, photo, region)
                  VALUES ('c1', 'Ada', 'ada@example.com', '12.50', 1, '2026-11-24T10:00:00.000Z', ?, 'r1')`, [PHOTO]);
    await a.exec("INSERT INTO Visit(id, note, status, customer) VALUES ('v1', 'first', 'open', 'c1'), ('v2', 'gone soon', 'open', 'c1')");
    await a.exec("UPDATE Customer SET name = 'Ada L' WHERE id = 'c1'");
    await a.exec("DELETE FROM Visit WHERE id = 'v2'");
    const e = await rejection(a.sync());
    assert.equal(e.code, 'sync_network');
    assert.equal(a.status().pendingChanges, 4);
    // Back online.
    w.proxy.mode = 'pass';
    const r = await a.sync();
    assert.equal(r.pushed, 4);
    assert.equal(a.status().pendingChanges, 0);
    await b.sync();
    assert.deepEqual(await b.query('SELECT id, name, email, credit, active, since, photo, region FROM Customer'), [
      { id: 'c1', name: 'Ada L', email: 'ada@example.com', credit: '12.50', active: 1, since: '2026-11-24T10:00:00.000Z', photo: PHOTO, region: 'r1' }]);
    assert.deepEqual(await b.query('SELECT id, note FROM Visit ORDER BY id'), [{ id: 'v1', note: 'first' }]);
    // A delete travels too.
    await a.exec("DELETE FROM Visit WHERE id = 'v1'");
    await a.sync();
    await b.sync();
    assert.deepEqual(await b.query('SELECT count(*) AS n FROM Visit'), [{ n: 0 }]);
  } finally {
    await w.stop();
  }
});

test('concurrent_edits_should_merge_per_attribute_and_report_the_loser', async () => {
  const w = await startWorld('conflict');
  try {
    const a = await w.client('a');
    const b = await w.client('b');
    await a.sync();
    await a.exec("INSERT INTO Customer(id, name, email) VALUES ('c1', 'Ada', 'ada@old')");
    await a.sync();
    await b.sync();
    // Different attributes: both survive.
    await a.exec("UPDATE Customer SET name = 'Ada A' WHERE id = 'c1'");
    await b.exec("UPDATE Customer SET email = 'ada@b' WHERE id = 'c1'");
    await a.sync();
    await b.sync();
    await a.sync();
    for (const db of [a, b]) {
      assert.deepEqual(await db.query("SELECT name, email FROM \"Customer\" WHERE id = 'c1'"), [{ name: 'Ada A', email: 'ada@b' }]);
    }
    assert.deepEqual(await a.syncErrors(), []);
    // The same attribute: the later write wins, the earlier one is the loser.
    await a.exec("UPDATE Customer SET name = 'from A (earlier)' WHERE id = 'c1'");
    await new Promise((r) => setTimeout(r, 5));
    await b.exec("UPDATE Customer SET name = 'from B (later)' WHERE id = 'c1'");
    await b.sync();
    const ra = await a.sync();
    assert.equal(ra.conflicts, 1);
    for (const db of [a, b]) {
      await db.sync();
      assert.deepEqual(await db.query("SELECT name FROM \"Customer\" WHERE id = 'c1'"), [{ name: 'from B (later)' }]);
    }
    const errs = await a.syncErrors();
    assert.equal(errs.length, 1);
    assert.equal(errs[0].kind, 'conflict');
    assert.equal(errs[0].entity, 'Customer');
    assert.equal(errs[0].local.name, 'from A (earlier)');
    assert.deepEqual(errs[0].attrs, ['name']);
    // Retrying makes A's value the latest write.
    await a.retrySyncError('Customer', 'c1');
    assert.equal(a.status().pendingChanges, 1);
    await a.sync();
    await b.sync();
    assert.deepEqual(await b.query("SELECT name FROM Customer WHERE id = 'c1'"), [{ name: 'from A (earlier)' }]);
    assert.deepEqual(await a.syncErrors(), []);
  } finally {
    await w.stop();
  }
});

test('server_wins_and_client_wins_policies_should_be_followed', async () => {
  const model = structuredClone(MODEL);
  model.entities.Region.conflict = 'server-wins';
  model.entities.Customer.conflict = 'client-wins';
  const w = await startWorld('policies', { model });
  try {
    const a = await w.client('a');
    await a.sync();
    await a.exec("INSERT INTO Region(id, name) VALUES ('r1', 'A1')");
    await a.exec("INSERT INTO Customer(id, name) VALUES ('c1', 'A1')");
    await a.sync();
    await w.srv.write('Region', [{ id: 'r1', name: 'server' }]);
    await w.srv.write('Customer', [{ id: 'c1', name: 'server' }]);
    await a.exec("UPDATE Region SET name = 'A2' WHERE id = 'r1'");
    await a.exec("UPDATE Customer SET name = 'A2' WHERE id = 'c1'");
    const r = await a.sync();
    assert.equal(r.conflicts, 1);
    assert.deepEqual(await a.query("SELECT name FROM Region WHERE id = 'r1'"), [{ name: 'server' }]);
    assert.deepEqual(await a.query("SELECT name FROM Customer WHERE id = 'c1'"), [{ name: 'A2' }]);
    const [err] = await a.syncErrors();
    assert.equal(err.entity, 'Region');
    assert.equal(err.local.name, 'A2');
    // Discarding keeps the server's value and clears the error.
    await a.discardSyncError('Region', 'r1');
    await a.sync();
    assert.deepEqual(await a.syncErrors(), []);
    assert.deepEqual(await a.query("SELECT name FROM Region WHERE id = 'r1'"), [{ name: 'server' }]);
  } finally {
    await w.stop();
  }
});

test('a_rejected_object_should_not_block_the_rest_of_the_queue', async () => {
  const w = await startWorld('rejected');
  try {
    const a = await w.client('a');
    await a.sync();
    await a.exec("INSERT INTO Customer(id, name, credit) VALUES ('bad', 'Bad', 'twelve')");
    await a.exec("INSERT INTO Customer(id, name, credit) VALUES ('good', 'Good', '1.5')");
    const r = await a.sync();
    assert.equal(r.pushed, 1);
    assert.equal(r.errors, 1);
    const [err] = await a.syncErrors();
    assert.equal(err.kind, 'rejected');
    assert.equal(err.id, 'bad');
    assert.match(err.reason, /credit/);
    assert.equal(err.local.credit, 'twelve');
    // The local values stay; fixing and retrying gets it through.
    assert.deepEqual(await a.query("SELECT credit FROM Customer WHERE id = 'bad'"), [{ credit: 'twelve' }]);
    await a.exec("UPDATE Customer SET credit = '12' WHERE id = 'bad'");
    await a.sync();
    assert.deepEqual(await a.syncErrors(), []);
    const b = await w.client('b');
    await b.sync();
    assert.deepEqual(await b.query('SELECT id, credit FROM Customer ORDER BY id'), [{ id: 'bad', credit: '12' }, { id: 'good', credit: '1.5' }]);
  } finally {
    await w.stop();
  }
});

test('sync_modes_should_download_and_upload_as_the_design_table_says', async () => {
  const w = await startWorld('modes');
  try {
    const a = await w.client('a');
    const b = await w.client('b');
    await a.sync();
    await b.sync();
    await a.exec("INSERT INTO Feedback(id, text) VALUES ('f1', 'great app')");
    await a.exec("INSERT INTO Note(id, text) VALUES ('n1', 'kept here')");
    await a.exec("INSERT INTO Draft(id, text) VALUES ('d1', 'device only')");
    assert.equal(a.status().pendingChanges, 2, 'a never-synced entity has no pending changes');
    await a.sync();
    // nothing-clear: uploaded, then gone from the device
    assert.deepEqual(await a.query('SELECT count(*) AS n FROM Feedback'), [{ n: 0 }]);
    // nothing-preserve: uploaded and kept
    assert.deepEqual(await a.query('SELECT text FROM Note'), [{ text: 'kept here' }]);
    // never: stays on the device only
    assert.deepEqual(await a.query('SELECT text FROM Draft'), [{ text: 'device only' }]);
    const server = await w.srv.db.query('SELECT (SELECT count(*) FROM "Feedback") AS f, (SELECT count(*) FROM "Note") AS n');
    assert.deepEqual(server, [{ f: 1, n: 1 }]);
    // Neither nothing-* entity downloads to another device.
    await b.sync();
    assert.deepEqual(await b.query('SELECT (SELECT count(*) FROM Feedback) AS f, (SELECT count(*) FROM Note) AS n, (SELECT count(*) FROM Draft) AS d'),
      [{ f: 0, n: 0, d: 0 }]);
  } finally {
    await w.stop();
  }
});

test('where_filter_should_move_objects_in_and_out_of_the_device', async () => {
  const w = await startWorld('where');
  try {
    const a = await w.client('a');
    await a.sync();
    await w.srv.write('Visit', [
      { id: 'open1', note: 'n', status: 'open' },
      { id: 'arch1', note: 'n', status: 'archived' },
      { id: 'open2', note: 'n', status: 'open' },
    ]);
    const first = await a.sync();
    assert.equal(first.removed, 0, 'arch1 was never on the device, so nothing was removed');
    assert.deepEqual(await a.query('SELECT id FROM Visit ORDER BY id'), [{ id: 'open1' }, { id: 'open2' }]);
    // An object that stops matching leaves the device ...
    await w.srv.write('Visit', [{ id: 'open1', note: 'n', status: 'archived' }]);
    await w.srv.write('Visit', [{ id: 'open2', note: 'n', status: 'archived' }]);
    // And one that starts matching arrives.
    await w.srv.write('Visit', [{ id: 'arch1', note: 'n', status: 'open' }]);
    await a.sync({ entities: ['Region'] });   // a selection without Visit pulls no Visit
    assert.deepEqual(await a.query('SELECT id FROM Visit ORDER BY id'), [{ id: 'open1' }, { id: 'open2' }]);
    // open2 gets a local change while the sync runs, after its push: it stays.
    w.proxy.before = async (p, body) => {
      if (p === '/sync/pull' && JSON.parse(body).entity === 'Visit') {
        w.proxy.before = null;
        await a.exec("UPDATE Visit SET note = 'local edit' WHERE id = 'open2'");
      }
    };
    await a.sync();
    assert.deepEqual(await a.query('SELECT id, status, note FROM Visit ORDER BY id'), [
      { id: 'arch1', status: 'open', note: 'n' }, { id: 'open2', status: 'open', note: 'local edit' }]);
    assert.equal(a.status().pendingChanges, 1);
    // Once pushed, it no longer matches and leaves.
    const last = await a.sync();
    assert.equal(last.removed, 1, 'only objects the device held count as removed');
    assert.deepEqual(await a.query('SELECT id FROM Visit ORDER BY id'), [{ id: 'arch1' }]);
  } finally {
    await w.stop();
  }
});

test('overlapping_sync_calls_should_share_one_run', async () => {
  const w = await startWorld('overlap');
  try {
    const a = await w.client('a');
    await a.exec("SELECT 1");
    const p1 = a.sync();
    const p2 = a.sync();
    assert.equal(p1, p2);
    await p1;
    const models = w.proxy.seen.filter((s) => s.path === '/sync/model').length;
    assert.equal(models, 1);
  } finally {
    await w.stop();
  }
});

test('open_should_sync_by_itself_the_first_time', async () => {
  const w = await startWorld('onopen');
  try {
    await w.srv.write('Region', [{ id: 'r1', name: 'North' }]);
    const a = await w.client('a', { syncOnOpen: true });
    await new Promise((resolve) => a.on('sync', resolve));
    assert.deepEqual(await a.query('SELECT name FROM Region'), [{ name: 'North' }]);
    assert.ok(a.status().lastSyncAt instanceof Date);
  } finally {
    await w.stop();
  }
});

test('sync_without_server_or_with_bad_selection_should_fail_clearly', async () => {
  const w = await startWorld('badsel');
  try {
    const a = await w.client('a');
    await a.sync();
    assert.equal((await rejection(a.sync({ entities: ['Nope'] }))).code, 'not_found');
    assert.equal((await rejection(a.sync({ entities: 'Region' }))).code, 'type');
    assert.equal((await rejection(a.sync({ objects: [{ entity: 'Region' }] }))).code, 'type');
    const { open } = await import('../../bindings/index.js');
    const local = await open({ name: 'local-only', storage: 'memory' });
    assert.equal((await rejection(local.sync())).code, 'misuse');
    await local.close();
  } finally {
    await w.stop();
  }
});

test('model_change_should_migrate_local_tables_and_keep_pending_changes', async () => {
  const w = await startWorld('model');
  try {
    const a = await w.client('a');
    await a.sync();
    await a.exec("INSERT INTO Visit(id, note, status) VALUES ('v1', 'before', 'open')");
    await a.sync();
    // Offline edits, then the server moves to a new model version.
    await a.exec("UPDATE Visit SET note = 'pending across the change' WHERE id = 'v1'");
    await a.exec("INSERT INTO Region(id, name) VALUES ('r1', 'North')");
    const dataDir = w.srv.dataDir;
    await w.proxy.close();
    await w.srv.close();
    const model = structuredClone(MODEL);
    model.version = '4';
    model.entities.Visit.attributes.duration = 'integer';
    model.entities.Equipment = { attributes: { serial: 'string' }, sync: 'all' };
    delete model.entities.Note;
    const { createSyncServer } = await import('../../server/index.js');
    const { startFaultProxy } = await import('./fixtures/fault-proxy.js');
    w.srv = await createSyncServer({ model, dataDir, log: () => {} });
    await w.srv.write('Equipment', [{ id: 'e1', serial: 'SN-1' }]);
    const oldProxyUrl = w.proxy.url;
    w.proxy = await startFaultProxy(w.srv.url);
    // the client keeps its server URL: re-open it against the new proxy
    await a.close();
    w.clients = [];
    const a2 = await w.client('a');
    assert.notEqual(oldProxyUrl, w.proxy.url);
    assert.equal(a2.status().pendingChanges, 2);
    await a2.sync();
    assert.equal(a2.status().modelVersion, '4');
    assert.equal(a2.status().pendingChanges, 0);
    assert.deepEqual(await a2.query("SELECT note, duration FROM Visit WHERE id = 'v1'"), [{ note: 'pending across the change', duration: null }]);
    assert.deepEqual(await a2.query('SELECT serial FROM Equipment'), [{ serial: 'SN-1' }]);
    const b = await w.client('b');
    await b.sync();
    assert.deepEqual(await b.query("SELECT note FROM Visit WHERE id = 'v1'"), [{ note: 'pending across the change' }]);
    assert.deepEqual(await b.query('SELECT name FROM Region'), [{ name: 'North' }]);
  } finally {
    await w.stop();
  }
});

test('an_apps_own_trigger_should_see_pulled_rows_and_local_changes_should_still_be_captured_after_a_pull', async () => {
  // A pull runs its slices with SQLite's triggers off when a table has only
  // ferry's capture triggers (they do nothing during a pull): a table with a
  // trigger of the app's own keeps them on, and capture is on again after.
  const w = await startWorld('app-trigger');
  try {
    const a = await w.client('a', { pullSlice: 50 });
    const b = await w.client('b', { pullSlice: 50 });
    await a.sync();
    await b.sync();
    await b.exec('CREATE TABLE region_log(id TEXT, name TEXT)');
    await b.exec('CREATE TRIGGER app_region_log AFTER INSERT ON Region BEGIN INSERT INTO region_log VALUES (NEW.id, NEW.name); END');
    await a.exec("INSERT INTO Region(id, name) VALUES " + Array.from({ length: 120 }, (_, i) => `('r${i}', 'Region ${i}')`).join(', '));
    await a.exec("INSERT INTO Customer(id, name) VALUES ('c1', 'Ada')");
    assert.equal((await a.sync()).pushed, 121);
    assert.equal((await b.sync()).pulled, 121);
    assert.deepEqual(await b.query('SELECT count(*) AS n FROM region_log'), [{ n: 120 }]);
    // Both tables capture local writes again once the pull is over.
    await b.exec("UPDATE Customer SET name = 'Ada L' WHERE id = 'c1'");
    await b.exec("INSERT INTO Region(id, name) VALUES ('r-b', 'From b')");
    assert.equal(b.status().pendingChanges, 2);
    assert.equal((await b.sync()).pushed, 2);
    await a.sync();
    assert.deepEqual(await a.query("SELECT name FROM Customer WHERE id = 'c1'"), [{ name: 'Ada L' }]);
    assert.deepEqual(await a.query("SELECT name FROM Region WHERE id = 'r-b'"), [{ name: 'From b' }]);
  } finally {
    await w.stop();
  }
});

test('queries_during_a_large_pull_should_run_between_its_slices', async () => {
  // A pull page of 3,000 objects goes in slices of 500, each its own
  // transaction and its own call in the database's queue: a query made
  // meanwhile waits for one slice, not the whole page, and sees whole slices.
  const w = await startWorld('slices');
  try {
    const a = await w.client('a', { pullSlice: 500 });
    await a.sync();   // the model and its tables
    await w.srv.write('Region', Array.from({ length: 3000 }, (_, i) => ({ id: `r${String(i).padStart(4, '0')}`, name: `Region ${i}` })));
    const seen = new Set();
    let done = false;
    const syncing = a.sync().finally(() => { done = true; });
    while (!done) {
      const [{ n }] = await a.query('SELECT count(*) AS n FROM Region');
      seen.add(n);
      await new Promise((resolve) => setImmediate(resolve));   // as an app's events would: I/O goes on
    }
    const r = await syncing;
    assert.equal(r.pulled, 3000);
    const partial = [...seen].filter((n) => n > 0 && n < 3000);
    assert.ok(partial.length > 0, `a query ran between slices (counts seen: ${[...seen].sort((x, y) => x - y)})`);
    assert.ok(partial.every((n) => n % 500 === 0), `queries see whole slices only (${partial})`);
    const [{ n }] = await a.query('SELECT count(*) AS n FROM Region');
    assert.equal(n, 3000);
    await assert.rejects(w.client('b', { pullSlice: -1 }), { code: 'type' });
  } finally {
    await w.stop();
  }
});
