// Benchmark helper: a reference sync server in its own process, seeded with
// N objects of about 200 bytes of JSON each. Prints its URL. A third
// argument is its `cors` option (e.g. '*' for pages of another origin).
import { createSyncServer } from '../server/index.js';

export const MODEL = {
  version: '1',
  entities: {
    Item: { attributes: { name: 'string', note: 'string', qty: 'integer', price: 'decimal', active: 'boolean', at: 'datetime' }, sync: 'all' },
  },
};

export function item(i, tag = '') {
  return {
    id: `item-${String(i).padStart(7, '0')}`, name: `Item number ${i} ${tag}with a longer name`, note: 'n'.repeat(60),
    qty: i, price: `${i % 1000}.99`, active: i % 2 === 0, at: '2026-11-24T10:00:00.000Z',
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dataDir, count, cors] = process.argv.slice(2);
  const srv = await createSyncServer({ model: MODEL, dataDir, log: () => {}, ...(cors ? { cors } : {}) });
  const n = Number(count);
  for (let i = 0; i < n; i += 5000) {
    await srv.write('Item', Array.from({ length: Math.min(5000, n - i) }, (_, k) => item(i + k)));
  }
  process.stdout.write(`${srv.url}\n`);
  process.on('message', async (m) => {
    if (m.change) {
      await srv.write('Item', Array.from({ length: m.change }, (_, k) => item((k * 997 + m.round * 31) % n, `r${m.round} `)));
      process.send({ changed: m.change });
    }
  });
}
