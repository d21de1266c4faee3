// Benchmark helper for bench/load.mjs: a reference sync server in its own
// process on the backend given, so its RSS and CPU are its own.
//
//   node bench/load-server.mjs <dataDir> <backend JSON: "sqlite" | {"postgres": url}> [seed <n>]
//
// With `seed` it writes n objects (bench/sync-server.mjs's items), prints
// "seeded" and exits; otherwise it prints its URL and serves until killed.
import { pathToFileURL } from 'node:url';
import { createSyncServer } from '../server/index.js';
import { MODEL, item } from './sync-server.mjs';

// Devices write their own objects besides the seeded items.
export const LOAD_MODEL = {
  version: '1',
  entities: {
    ...MODEL.entities,
    Reading: { attributes: { device: 'string', value: 'integer', note: 'string' }, sync: 'all' },
  },
};

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [dataDir, backendJson, mode, count] = process.argv.slice(2);
  const srv = await createSyncServer({ model: LOAD_MODEL, dataDir, backend: JSON.parse(backendJson), log: (m) => console.error(m) });
  if (mode === 'seed') {
    const n = Number(count);
    for (let i = 0; i < n; i += 5000) {
      await srv.write('Item', Array.from({ length: Math.min(5000, n - i) }, (_, k) => item(i + k)));
    }
    await srv.close();
    process.stdout.write('seeded\n');
  } else {
    process.stdout.write(`${srv.url}\n`);
    process.on('SIGTERM', async () => { await srv.close(); process.exit(0); });
  }
}
