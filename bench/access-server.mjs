// Benchmark helper for bench/access.mjs: a reference sync server in its own
// process, from the server module given (this checkout's, or an earlier
// commit's extracted under build/bench/), so the client's time is its own
// and each server's CPU time can be read apart.
//
//   node bench/access-server.mjs <server/index.js> <dataDir> <where> [seed <readable> <others>]
//
// Users are bearer tokens: "Bearer alice" is { id: 'alice' }. With `seed`
// it writes the objects, prints "seeded" and exits; otherwise it prints its
// URL and answers { cpu: true } messages with its process CPU time (µs).
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
// sixth object is another user's, spread through the versions so each pull
// page holds some.
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
    for (let i = 0; i < r + o; i += 5000) {
      await srv.write(ENTITY, Array.from({ length: Math.min(5000, r + o - i) }, (_, k) => note(i + k, ownerOf(i + k, r, o))));
    }
    await srv.close();
    process.stdout.write('seeded\n');
  } else {
    process.stdout.write(`${srv.url}\n`);
    process.on('message', (m) => {
      if (m.cpu) {
        const u = process.cpuUsage();
        process.send({ cpu: u.user + u.system });
      }
    });
    process.on('disconnect', async () => { await srv.close(); process.exit(0); });
  }
}
