// db.sync({ signal }) stops at the next safe point with 'aborted' and loses
// nothing; 'progress' events say how far a sync got, per entity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../bindings/index.js';
import { startWorld, snapshot } from './sync-helpers.js';

function prng(seed) {
  let x = seed >>> 0;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
}

test('sync_emits_progress_per_entity_as_pages_are_applied', async () => {
  const w = await startWorld('sync-progress', { server: { pageLimit: 10 } });
  try {
    const a = await w.client('a');
    const b = await w.client('b');
    await a.sync();
    await b.sync();
    await a.transaction(async (tx) => {
      for (let i = 0; i < 25; i++) await tx.exec('INSERT INTO Customer(id, name) VALUES (?, ?)', [`c${i}`, `n${i}`]);
    });
    const pushed = [];
    a.on('progress', (p) => { if (p.sync) pushed.push(p); });
    await a.sync();
    assert.deepEqual(pushed.filter((p) => p.sync === 'push').map((p) => p.done), [25]);
    const seen = [];
    b.on('progress', (p) => { if (p.sync) seen.push(p); });
    await b.sync();
    const customer = seen.filter((p) => p.entity === 'Customer');
    assert.deepEqual(customer.map((p) => p.done), [10, 20, 25]);
    // A first pull of an entity (cursor 0) learns how many objects there are.
    assert.ok(customer.every((p) => p.sync === 'pull' && p.total === 25), JSON.stringify(customer));
    // Later pulls are deltas: the server does not count them.
    await a.exec("UPDATE Customer SET name = 'again' WHERE id = 'c1'");
    await a.sync();
    seen.length = 0;
    await b.sync();
    assert.deepEqual(seen.filter((p) => p.entity === 'Customer').map((p) => [p.done, p.total]), [[1, null]]);
  } finally {
    await w.stop();
  }
});

test('sync_aborted_at_20_random_moments_loses_nothing_and_the_next_sync_completes', async () => {
  const w = await startWorld('sync-abort', { server: { pageLimit: 3 } });
  const random = prng(Number(process.env.FERRY_SEED) || 20261202);
  try {
    const a = await w.client('a');
    let ctl = null;
    let abortAt = 0, calls = 0, afterReply = false;
    // Aborts at the abortAt-th request, before it leaves or once its reply is in.
    const fetchFn = async (url, init) => {
      calls++;
      if (calls === abortAt && !afterReply) ctl.abort();
      const res = await fetch(url, init);
      if (calls === abortAt && afterReply) ctl.abort();
      return res;
    };
    const b = await w.client('b', { fetch: fetchFn });
    await a.sync();
    await b.sync();
    let aborted = 0;
    for (let round = 0; round < 20; round++) {
      await a.transaction(async (tx) => {
        for (let i = 0; i < 4; i++) await tx.exec('INSERT INTO Customer(id, name) VALUES (?, ?)', [`a${round}-${i}`, `from a ${round}`]);
      });
      await a.exec('UPDATE Customer SET name = ? WHERE id = ?', [`a edit ${round}`, `a${Math.floor(random() * (round + 1))}-0`]);
      await a.sync();
      await b.transaction(async (tx) => {
        for (let i = 0; i < 3; i++) await tx.exec('INSERT INTO Region(id, name) VALUES (?, ?)', [`b${round}-${i}`, `from b ${round}`]);
        await tx.exec('INSERT INTO Customer(id, name) VALUES (?, ?)', [`b${round}`, `from b ${round}`]);
      });
      const pendingBefore = b.status().pendingChanges;
      ctl = new AbortController();
      calls = 0;
      abortAt = 1 + Math.floor(random() * 6);
      afterReply = random() < 0.5;
      try {
        await b.sync({ signal: ctl.signal });
      } catch (e) {
        assert.ok(e instanceof FerryError, String(e));
        assert.equal(e.code, 'aborted');
        aborted++;
        assert.ok(b.status().pendingChanges <= pendingBefore);
      }
      abortAt = 0;
      await b.sync();
      assert.equal(b.status().pendingChanges, 0, `round ${round}`);
    }
    assert.ok(aborted >= 10, `only ${aborted} of 20 syncs were aborted`);
    await a.sync();
    for (const [entity, cols] of [['Customer', ['name']], ['Region', ['name']]]) {
      assert.deepEqual(await snapshot(b, entity, cols), await snapshot(a, entity, cols), entity);
    }
    assert.equal(Object.keys(await snapshot(a, 'Region', ['name'])).length, 60);
    assert.equal(Object.keys(await snapshot(a, 'Customer', ['name'])).length, 100);
  } finally {
    await w.stop();
  }
});

test('sync_with_an_aborted_signal_fails_at_once_and_a_signal_that_is_not_one_is_refused', async () => {
  const w = await startWorld('sync-abort-now');
  try {
    const b = await w.client('b');
    await b.sync();
    await b.exec("INSERT INTO Region(id, name) VALUES ('r', 'x')");
    const ctl = new AbortController();
    ctl.abort();
    await assert.rejects(b.sync({ signal: ctl.signal }), (e) => e.code === 'aborted');
    assert.equal(b.status().pendingChanges, 1);
    await assert.rejects(b.sync({ signal: 'stop' }), (e) => e.code === 'type');
    await b.sync();
    assert.equal(b.status().pendingChanges, 0);
  } finally {
    await w.stop();
  }
});
