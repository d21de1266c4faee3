// Faults at random points: connections cut mid-push and mid-pull, replies
// lost after the server applied a push, the server killed and restarted,
// the client killed mid-apply, and a server that answers garbage. After
// recovery every replica holds the same data and no change is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../../bindings/index.js';
import { rejection, tempDir } from './helpers.js';
import { startWorld, snapshot } from './sync-helpers.js';
import { startFaultProxy } from './fixtures/fault-proxy.js';

const COLS = ['name', 'email', 'credit', 'active'];
const FAULTS = ['cut-request', 'lose-reply', 'truncate-reply', 'status500'];

// Seeded, so a run is reproducible (FERRY_SEED reruns another).
const SEED = Number(process.env.FERRY_SEED ?? 7);
let state = SEED >>> 0;
function rnd(n) {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
}

/** Random local writes on db, mirrored in `truth` (id -> row or undefined). */
async function randomWrites(db, truth, tag, count) {
  for (let k = 0; k < count; k++) {
    const ids = Object.keys(truth).filter((id) => truth[id]);
    const op = ids.length < 3 ? 0 : rnd(3);
    if (op === 0) {
      const id = `${tag}-${k}-${rnd(1e9)}`;
      const row = { id, name: `n${rnd(1000)}`, email: `${id}@x`, credit: `${rnd(100)}.${rnd(10)}0`, active: rnd(2) };
      await db.exec('INSERT INTO "Customer"(id, name, email, credit, active) VALUES (?, ?, ?, ?, ?)',
        [row.id, row.name, row.email, row.credit, row.active]);
      truth[id] = row;
    } else if (op === 1) {
      const id = ids[rnd(ids.length)];
      const name = `u${rnd(1e6)}`;
      await db.exec('UPDATE "Customer" SET name = ? WHERE id = ?', [name, id]);
      truth[id] = { ...truth[id], name };
    } else {
      const id = ids[rnd(ids.length)];
      await db.exec('DELETE FROM "Customer" WHERE id = ?', [id]);
      truth[id] = undefined;
    }
  }
}

function expected(truth) {
  return Object.fromEntries(Object.entries(truth).filter(([, r]) => r).sort(([x], [y]) => (x < y ? -1 : 1)));
}

test('cut_connections_and_lost_replies_should_lose_or_double_nothing', { timeout: 300_000 }, async (t) => {
  t.diagnostic(`sync-faults seed ${SEED}`);
  const w = await startWorld('faults');
  try {
    const a = await w.client('a');
    const b = await w.client('b');
    await a.sync();
    await b.sync();
    const truth = {};
    let failures = 0;
    for (let round = 0; round < 24; round++) {
      await randomWrites(a, truth, `r${round}`, 1 + rnd(6));
      // Requests of a run: model? push… pull×5 entities. Fault one of the first few.
      const at = rnd(4);
      w.proxy.next = [...Array(at).fill('pass'), FAULTS[round % FAULTS.length]];
      try {
        await a.sync();
      } catch (e) {
        failures++;
        assert.ok(['sync_network', 'sync_server', 'sync_protocol'].includes(e.code), `${e.code}: ${e.message}`);
      }
      w.proxy.next = [];
      // B's edits interleave with A's failures (a different attribute).
      if (round % 3 === 0) {
        const ids = Object.keys(truth).filter((id) => truth[id]);
        if (ids.length) {
          await b.sync();
          const id = ids[rnd(ids.length)];
          const have = await b.query('SELECT id FROM Customer WHERE id = ?', [id]);
          if (have.length) {
            await b.exec('UPDATE Customer SET email = ? WHERE id = ?', [`b${round}@x`, id]);
            truth[id] = { ...truth[id], email: `b${round}@x` };
            await b.sync();
          }
        }
      }
    }
    assert.ok(failures >= 12, `only ${failures} syncs failed: the faults did not bite`);
    // Every mutation id the server saw twice was answered from its record the
    // second time, not applied again.
    const seen = new Map();
    let repeats = 0;
    for (const f of w.proxy.forwarded.filter((x) => x.path === '/sync/push' && x.status === 200)) {
      const { clientId, mutations } = JSON.parse(f.request);
      const results = JSON.parse(f.reply).results;
      for (const m of mutations) {
        const key = `${clientId}:${m.mid}`;
        const r = results.find((x) => x.mid === m.mid);
        if (seen.has(key)) {
          repeats++;
          assert.equal(r.duplicate, true, `mutation ${key} was applied twice`);
          assert.equal(r.version, seen.get(key).version);
        } else {
          assert.notEqual(r.duplicate, true);
          seen.set(key, r);
        }
      }
    }
    assert.ok(repeats > 0, 'no push was retried after a lost reply');
    await a.sync();
    await b.sync();
    await a.sync();
    assert.equal(a.status().pendingChanges, 0);
    const want = expected(truth);
    const sa = await snapshot(a, 'Customer', COLS);
    const sb = await snapshot(b, 'Customer', COLS);
    const ss = Object.fromEntries((await w.srv.db.query(`SELECT id, ${COLS.join(', ')} FROM "Customer" WHERE _ferry_deleted = 0 ORDER BY id`)).map((r) => [r.id, r]));
    assert.deepEqual(sa, want, 'A lost or changed its own writes');
    assert.deepEqual(sb, want, 'B differs');
    assert.deepEqual(ss, want, 'the server differs');
    assert.deepEqual(await a.syncErrors(), []);
  } finally {
    await w.stop();
  }
});

test('bad_server_replies_should_give_sync_codes_and_keep_every_change', { timeout: 120_000 }, async () => {
  const w = await startWorld('garbage');
  try {
    const a = await w.client('a');
    await a.sync();
    await a.exec("INSERT INTO Customer(id, name) VALUES ('c1', 'Ada')");
    const cases = [
      ['truncated-json', 'sync_protocol'], ['wrong-types', 'sync_protocol'], ['status500', 'sync_server'],
      ['html', 'sync_protocol'], ['html502', 'sync_server'], ['huge', 'sync_too_big'],
    ];
    for (const [mode, code] of cases) {
      w.proxy.mode = mode;
      const e = await rejection(a.sync());
      assert.equal(e.code, code, `${mode}: ${e.message}`);
      assert.equal(e.name, 'FerryError');
      assert.equal(a.status().pendingChanges, 1, `${mode} lost the pending change`);
      assert.deepEqual(await a.query('SELECT name FROM Customer'), [{ name: 'Ada' }]);
    }
    // Garbage in a pull page: nothing of it is applied.
    w.proxy.mode = 'pass';
    await a.sync();
    await w.srv.write('Customer', [{ id: 'c2', name: 'from server' }]);
    w.proxy.mode = 'wrong-types';
    assert.equal((await rejection(a.sync())).code, 'sync_protocol');
    assert.deepEqual(await a.query('SELECT id FROM Customer ORDER BY id'), [{ id: 'c1' }]);
    w.proxy.mode = 'pass';
    await a.sync();
    assert.deepEqual(await a.query('SELECT id, name FROM Customer ORDER BY id'), [{ id: 'c1', name: 'Ada' }, { id: 'c2', name: 'from server' }]);
  } finally {
    await w.stop();
  }
});

function startServerChild(dataDir, port) {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/server-child.js', import.meta.url)), dataDir, String(port)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ child, url: out.trim() });
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const kill = (child) => new Promise((r) => { child.once('exit', r); child.kill('SIGKILL'); });

test('server_killed_at_random_points_should_lose_no_client_change', { timeout: 300_000 }, async () => {
  const dir = tempDir('srvkill');
  let { child, url } = await startServerChild(path.join(dir, 'server'), 0);
  const port = new URL(url).port;
  const a = await open({ name: 'a', storage: 'file', path: path.join(dir, 'a.db'), server: `${url}/sync`, syncOnOpen: false });
  try {
    await a.sync();
    const truth = {};
    let interrupted = 0;
    for (let round = 0; round < 20; round++) {
      await randomWrites(a, truth, `k${round}`, 20 + rnd(30));
      const p = a.sync();
      await new Promise((r) => setTimeout(r, rnd(40)));
      await kill(child);
      try { await p; } catch (e) { interrupted++; assert.ok(e.code.startsWith('sync_'), e.message); }
      ({ child } = await startServerChild(path.join(dir, 'server'), port));
    }
    await a.sync();
    assert.equal(a.status().pendingChanges, 0);
    const b = await open({ name: 'b', storage: 'file', path: path.join(dir, 'b.db'), server: `${url}/sync`, syncOnOpen: false });
    await b.sync();
    const want = expected(truth);
    assert.deepEqual(await snapshot(a, 'Customer', COLS), want);
    assert.deepEqual(await snapshot(b, 'Customer', COLS), want);
    await b.close();
    assert.ok(interrupted > 0, 'no sync was interrupted by a kill');
  } finally {
    await a.close();
    await kill(child);
  }
});

test('client_killed_mid_apply_should_resume_to_the_same_data', { timeout: 300_000 }, async () => {
  const w = await startWorld('clientkill', { server: { pageLimit: 200 } });
  try {
    const objects = Array.from({ length: 3000 }, (_, i) => ({ id: `c${String(i).padStart(5, '0')}`, name: `name ${i}`, email: `${i}@x`, credit: `${i}.00`, active: i % 2 === 1 }));
    for (let i = 0; i < objects.length; i += 500) await w.srv.write('Customer', objects.slice(i, i + 500));
    const dbPath = path.join(w.dir, 'victim.db');
    const script = fileURLToPath(new URL('./fixtures/sync-child.js', import.meta.url));
    for (let round = 0; round < 20; round++) {
      const child = spawn(process.execPath, [script, dbPath, `${w.proxy.url}/sync`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((resolve) => child.stdout.on('data', (d) => String(d).includes('ready') && resolve()));
      await new Promise((r) => setTimeout(r, 20 + rnd(300)));
      await kill(child);
      if (round % 4 === 0) {
        // The server moves on between the client's lives.
        await w.srv.write('Customer', [{ ...objects[rnd(3000)], name: `changed ${round}` }]);
        await w.srv.remove('Customer', [objects[rnd(3000)].id]);
      }
    }
    const db = await open({ name: 'victim', storage: 'file', path: dbPath, server: `${w.proxy.url}/sync`, syncOnOpen: false });
    w.clients.push(db);
    assert.deepEqual(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
    await db.sync();
    const server = Object.fromEntries((await w.srv.db.query(`SELECT id, ${COLS.join(', ')} FROM "Customer" WHERE _ferry_deleted = 0 ORDER BY id`)).map((r) => [r.id, r]));
    assert.deepEqual(await snapshot(db, 'Customer', COLS), server);
  } finally {
    await w.stop();
  }
});
