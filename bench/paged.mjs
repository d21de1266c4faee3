// Paged storage (issue 11): time from open() to the first result, and the
// RSS that costs, for a large Node 'file' database; this checkout against a
// build of the code before paged storage (--before DIR: a tree with
// bindings/dist built) and native SQLite (Python's sqlite3 module) on the
// same file. Each measurement runs in a fresh process; the three alternate,
// in a rotating order, for --reps rounds.
//
//   node bench/paged.mjs [--mb 300] [--reps 5] [--before DIR] [--dir DIR]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
const MB = Number(opt('mb', 300));
const REPS = Number(opt('reps', 5));
const BEFORE = opt('before', null);
const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..');
const dir = opt('dir', null) || fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-paged-'));
const dbPath = path.join(dir, `paged-${MB}.db`);
const ROWS = Math.round(MB * 1024 * 1024 / 1100);

const probe = `
const [root, p, kind] = process.argv.slice(1);
const rss = () => Number(require('node:fs').readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
(async () => {
  const { open } = await import(root + '/bindings/index.js');
  const warm = await open({ name: 'warm', storage: 'memory' });
  await warm.query('SELECT 1');
  await warm.close();
  const r0 = rss();
  const t0 = performance.now();
  const db = await open({ name: 'paged', storage: 'file', path: p });
  const rows = await db.query('SELECT id, length(pad) AS l FROM big WHERE id = ?', [${Math.floor(ROWS / 2)}]);
  const ms = performance.now() - t0;
  const r1 = rss();
  await db.close();
  console.log(JSON.stringify({ ms, rss: r1 - r0, ok: rows.length === 1 }));
})().catch((e) => { console.error(e); process.exit(1); });`;

const pyProbe = `
import sqlite3, sys, time, json
def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096
r0 = rss(); t0 = time.perf_counter()
c = sqlite3.connect(sys.argv[1])
rows = c.execute('SELECT id, length(pad) FROM big WHERE id = ?', (${Math.floor(ROWS / 2)},)).fetchall()
ms = (time.perf_counter() - t0) * 1000
print(json.dumps({'ms': ms, 'rss': rss() - r0, 'ok': len(rows) == 1}))`;

async function build() {
  if (fs.existsSync(dbPath)) return;
  const { open } = await import(`${ROOT}/bindings/index.js`);
  // checkpointBytes 1: every commit goes on into the main file.
  const db = await open({ name: 'paged', storage: 'file', path: dbPath, checkpointBytes: 1 });
  await db.exec('CREATE TABLE big(id INTEGER PRIMARY KEY, n INTEGER, pad BLOB)');
  const step = 20_000;
  for (let from = 1; from <= ROWS; from += step) {
    const to = Math.min(ROWS, from + step - 1);
    await db.exec(`WITH RECURSIVE c(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM c WHERE i < ${to})
                   INSERT INTO big SELECT i, 0, randomblob(1000) FROM c`);
  }
  await db.close();
}

function run(kind) {
  const r = kind === 'native'
    ? spawnSync('python3', ['-c', pyProbe, dbPath], { encoding: 'utf8' })
    : spawnSync(process.execPath, ['-e', probe, kind === 'before' ? path.resolve(BEFORE) : ROOT, dbPath, kind], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${kind}: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  if (!out.ok) throw new Error(`${kind}: the query found no row`);
  return out;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

await build();
// The main file holds the whole database (the native peer reads it alone).
const size = fs.statSync(dbPath).size;
if (fs.statSync(`${dbPath}-log`).size > 64) throw new Error('the commit log is not empty: the native peer would read an older state');
const kinds = ['after', ...(BEFORE ? ['before'] : []), 'native'];
const res = Object.fromEntries(kinds.map((k) => [k, []]));
console.log(`paged bench: ${(size / 1048576).toFixed(0)} MiB file database (${ROWS} rows), ${REPS} rounds; load ${os.loadavg()[0].toFixed(2)}`);
for (let r = 0; r < REPS; r++) {
  const order = kinds.map((_, i) => kinds[(i + r) % kinds.length]);
  for (const k of order) res[k].push(run(k));
}
for (const k of kinds) {
  const ms = res[k].map((x) => x.ms), rss = res[k].map((x) => x.rss);
  console.log(`${k.padEnd(7)} open to first result: median ${median(ms).toFixed(1)} ms (min ${Math.min(...ms).toFixed(1)}), RSS growth median ${(median(rss) / 1048576).toFixed(1)} MiB`);
}
const ratio = (a, b) => res[a].map((x, i) => x.ms / res[b][i].ms);
console.log(`after/native time, per round: median ${median(ratio('after', 'native')).toFixed(2)}x`);
if (BEFORE) console.log(`before/after time, per round: median ${median(ratio('before', 'after')).toFixed(1)}x`);
console.log(`load at end ${os.loadavg()[0].toFixed(2)}; database left in ${dir}`);
