// Benchmark helper for bench/access.mjs: a reference sync server in its own
// process, from the server module given (this checkout's, or an earlier
// commit's extracted under build/bench/), so the client's time is its own
// and each server's CPU time can be read apart.
//
//   node bench/access-server.mjs <server/index.js> <dataDir> <where> [seed <readable> <others>]
//
// Users are bearer tokens: "Bearer alice" is { id: 'alice' }. With `seed`
// it writes the objects, prints "seeded" and exits; otherwise it first warms
// up on a scratch server of its own (pulls and pushes as a device sends
// them, so the figures are those of a server that has been running, not of
// V8 compiling the push path), then prints its URL and answers
// { cpu: true } messages with its CPU time in ms: the process's, and the
// main thread's alone (the one that runs the requests; V8's compiler and
// GC helpers run on others).
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

export const ENTITY = 'Note';
export const OWNER = 'alice';

export function model(where) {
  return {
    version: '1',
    entities: {
      Note: {
        attributes: { owner: 'string', name: 'string', note: 'string', qty: 'integer', price: 'decimal', active: 'boolean', at: 'datetime' },
        sync: { where },
      },
    },
  };
}

// About 200 bytes of JSON per object, as bench/sync.mjs's items. Every
// sixth object is another user's (one 5,000-object seed write at a time, so
// most pull pages hold some).
export function note(i, owner) {
  return {
    id: `note-${String(i).padStart(7, '0')}`, owner, name: `Note number ${i} with a longer name`, note: 'n'.repeat(60),
    qty: i, price: `${i % 1000}.99`, active: i % 2 === 0, at: '2026-11-24T10:00:00.000Z',
  };
}

export function ownerOf(i, readable, others) {
  const every = others > 0 ? Math.floor((readable + others) / others) : Infinity;
  return (i + 1) % every === 0 && Math.floor(i / every) < others ? 'bob' : OWNER;
}

/**
 * Rounds (FERRY_BENCH_ACCESS_WARMUP, 15) of a device's work on a scratch server: pull
 * pages, push 500 updates and 500 inserts. Three rounds left V8 still compiling
 * the check path during the measured push (on its helper threads: +130 ms of
 * process CPU in `after`, none on the main thread); after 15 it is done.
 */
async function warmUp(createSyncServer, dataDir, where) {
  const srv = await createSyncServer({ model: model(where), dataDir, log: () => {}, authenticate: () => ({ id: OWNER }) });
  const n = 6000;
  await srv.write(ENTITY, Array.from({ length: n }, (_, i) => note(i, ownerOf(i, n - n / 6, n / 6))));
  const post = async (route, body) => {
    const res = await fetch(`${srv.url}/sync/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`warm-up ${route}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const clientId = 'warm-up';
  let mid = 0;
  const rounds = Number(process.env.FERRY_BENCH_ACCESS_WARMUP || 15);
  for (let round = 0; round < rounds; round++) {
    const versions = new Map();
    for (let cursor = 0, more = true; more;) {
      const page = await post('pull', { clientId, modelVersion: '1', entity: ENTITY, cursor, limit: 1000 });
      for (const o of page.objects) versions.set(o.id, o.version);
      ({ cursor, more } = page);
    }
    const mutations = [...versions].slice(0, 500).map(([id, base]) => ({ entity: ENTITY, id, op: 'upsert', changed: ['qty'], values: { qty: round }, base, ts: Date.now(), mid: ++mid }));
    for (let k = 0; k < 500; k++) {
      const { id, ...values } = note(1_000_000 + round * 500 + k, OWNER);
      mutations.push({ entity: ENTITY, id, op: 'upsert', changed: Object.keys(values), values, base: 0, ts: Date.now(), mid: ++mid });
    }
    for (let i = 0; i < mutations.length; i += 500) {
      await post('push', { clientId, modelVersion: '1', ackedMid: mid - 1000, mutations: mutations.slice(i, i + 500) });
    }
  }
  await srv.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [serverModule, dataDir, where, mode, readable, others] = process.argv.slice(2);
  const { createSyncServer } = await import(pathToFileURL(serverModule).href);
  const srv = await createSyncServer({
    model: model(where), dataDir, log: () => {},
    authenticate: (req) => {
      const token = String(req.headers.authorization || '').replace(/^Bearer /, '');
      return token ? { id: token } : null;
    },
  });
  if (mode === 'seed') {
    const r = Number(readable);
    const o = Number(others);
    // Bob's objects were Alice's first and changed hands (a server write),
    // so the server behind an access rule holds one exit for each of them.
    for (let i = 0; i < r + o; i += 5000) {
      const chunk = Array.from({ length: Math.min(5000, r + o - i) }, (_, k) => note(i + k, OWNER));
      await srv.write(ENTITY, chunk);
      const moved = chunk.filter((x, k) => ownerOf(i + k, r, o) !== OWNER).map((x) => ({ id: x.id, owner: 'bob' }));
      if (moved.length) await srv.write(ENTITY, moved);
    }
    await srv.close();
    process.stdout.write('seeded\n');
  } else {
    await warmUp(createSyncServer, `${dataDir}-warm`, where);
    process.stdout.write(`${srv.url}\n`);
    const ticks = 100;   // USER_HZ: /proc reports CPU time in 1/100 s
    process.on('message', (m) => {
      if (m.cpu) {
        const u = process.cpuUsage();
        const raw = fs.readFileSync('/proc/thread-self/stat', 'utf8');
        const stat = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
        process.send({ cpu: (u.user + u.system) / 1000, main: ((Number(stat[11]) + Number(stat[12])) * 1000) / ticks });
      }
    });
    process.on('disconnect', async () => { await srv.close(); process.exit(0); });
  }
}
