// db.verify(): the device proves it holds what the server holds for its
// user, and repairs what drifted, without touching pending changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorld } from './sync-helpers.js';

const MODEL = {
  version: '1',
  entities: {
    Item: { attributes: { name: 'string', n: 'integer', ok: 'boolean', data: 'binary', price: 'decimal' }, sync: 'all' },
    Task: { attributes: { owner: 'string', title: 'string' }, sync: { where: 'owner = $user.id' } },
  },
};

async function world(tag) {
  return startWorld(tag, {
    model: MODEL,
    server: { authenticate: (req) => ({ id: (req.headers.authorization || '').replace('Bearer ', '') || 'anon' }) },
  });
}

test('verify_should_find_nothing_to_repair_on_a_replica_in_step', async () => {
  const w = await world('verify-clean');
  try {
    await w.srv.write('Item', [
      { id: 'i1', name: 'one', n: 9007199254740991, ok: true, data: 'AAEC', price: '12.50' },
      { id: 'i2', name: 'emoji 😀', n: -3, ok: false, data: null, price: null },
    ]);
    await w.srv.write('Task', [{ id: 't1', owner: 'alice', title: 'mine' }, { id: 't2', owner: 'bob', title: 'not mine' }]);
    const a = await w.client('a', { headers: () => ({ authorization: 'Bearer alice' }) });
    await a.sync();
    await a.exec("INSERT INTO Item(id, name) VALUES ('local', 'pending')");
    const r = await a.verify();
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.repaired, 0);
    assert.deepEqual(r.entities.map((e) => e.entity).sort(), ['Item', 'Task']);
  } finally {
    await w.stop();
  }
});

test('verify_should_repair_a_replica_that_drifted_and_keep_pending_changes', async () => {
  const w = await world('verify-repair');
  try {
    await w.srv.write('Item', [{ id: 'i1', name: 'one' }, { id: 'i2', name: 'two' }, { id: 'i3', name: 'three' }, { id: 'i4', name: 'four' }]);
    await w.srv.write('Task', [{ id: 't1', owner: 'alice', title: 'mine' }]);
    const a = await w.client('a', { headers: () => ({ authorization: 'Bearer alice' }) });
    await a.sync();
    // Behind ferry's back on the server: a value changed without a new
    // version, an object gone without a tombstone, an object added below the
    // device's cursor. The device cannot learn of them by pulling.
    await w.srv.db.exec("UPDATE \"Item\" SET name = 'one, changed' WHERE id = 'i1'");
    await w.srv.db.exec("DELETE FROM \"Item\" WHERE id = 'i2'");
    await w.srv.db.exec("INSERT INTO \"Item\"(id, name, _ferry_version) VALUES ('i0', 'zero', 0)");
    await w.srv.db.exec("UPDATE \"Item\" SET name = 'four, changed there' WHERE id = 'i4'");
    await w.srv.db.exec("UPDATE \"Task\" SET title = 'retitled' WHERE id = 't1'");
    assert.equal((await a.sync()).pulled, 0, 'a plain sync does not see the drift');
    // A local edit made while the verify is in flight stays pending and wins.
    let edited = false;
    w.proxy.before = async (p) => {
      if (!edited && p.endsWith('/verify')) {
        edited = true;
        await a.exec("UPDATE Item SET name = 'four, edited here' WHERE id = 'i4'");
      }
    };
    const r = await a.verify();
    w.proxy.before = null;
    assert.equal(r.ok, false);
    const item = r.entities.find((e) => e.entity === 'Item');
    assert.ok(item.repaired >= 3, JSON.stringify(r));
    assert.equal(r.entities.find((e) => e.entity === 'Task').repaired, 1);
    assert.deepEqual(await a.query('SELECT id, name FROM Item ORDER BY id'), [
      { id: 'i0', name: 'zero' }, { id: 'i1', name: 'one, changed' }, { id: 'i3', name: 'three' }, { id: 'i4', name: 'four, edited here' }]);
    assert.deepEqual(await a.query('SELECT title FROM Task'), [{ title: 'retitled' }]);
    assert.equal(a.status().pendingChanges, 1);
    const again = await a.verify();
    assert.equal(again.ok, true, `a second verify finds the replica in step: ${JSON.stringify(again)}`);
    assert.equal(a.status().pendingChanges, 0);
    assert.equal((await w.srv.db.query("SELECT name FROM \"Item\" WHERE id = 'i4'"))[0].name, 'four, edited here');
  } finally {
    await w.stop();
  }
});

test('sync_should_verify_by_itself_every_nth_full_sync', async () => {
  const w = await world('verify-auto');
  try {
    await w.srv.write('Item', [{ id: 'i1', name: 'one' }]);
    const a = await w.client('a', { verifyEvery: 3 });
    await a.sync();
    await w.srv.db.exec("UPDATE \"Item\" SET name = 'drifted' WHERE id = 'i1'");
    const runs = [await a.sync(), await a.sync()];
    assert.equal(runs[0].verified, undefined);
    assert.equal(runs[1].verified.find((e) => e.entity === 'Item').repaired, 1);
    assert.deepEqual(await a.query('SELECT name FROM Item'), [{ name: 'drifted' }]);
  } finally {
    await w.stop();
  }
});

test('a_device_behind_the_tombstone_horizon_should_pull_again_keep_pending_changes_and_drop_what_went', async () => {
  const w = await startWorld('horizon', { model: MODEL, server: { tombstoneHorizon: 60_000 } });
  try {
    await w.srv.write('Item', [{ id: 'i1', name: 'one' }, { id: 'i2', name: 'two' }, { id: 'i3', name: 'three' }]);
    const a = await w.client('a');
    await a.sync();
    await a.exec("UPDATE Item SET name = 'one, pending' WHERE id = 'i1'");
    await w.srv.remove('Item', ['i2']);
    await w.srv.write('Item', [{ id: 'i4', name: 'four' }]);
    // An hour later, the server forgets the tombstone of i2.
    const p = await w.srv.purge({ now: Date.now() + 3600_000 });
    assert.equal(p.tombstones, 1);
    const r = await a.sync();
    assert.ok(r.verified, 'the resync ends with a verify');
    assert.deepEqual(await a.query('SELECT id, name FROM Item ORDER BY id'), [
      { id: 'i1', name: 'one, pending' }, { id: 'i3', name: 'three' }, { id: 'i4', name: 'four' }]);
    assert.equal((await w.srv.db.query("SELECT name FROM \"Item\" WHERE id = 'i1'"))[0].name, 'one, pending');
    assert.equal(a.status().pendingChanges, 0);
  } finally {
    await w.stop();
  }
});
