// A plain file at rest (issue 11): what close() costs now that it folds the
// commit log into the database file, and what the next open() gains. A
// Node 'file' database gets a log of about --mb MiB of commits (under the
// 4 MiB bound, so no checkpoint runs before close), then, in fresh
// processes, close() is timed, and open() to the first result of a query
// after it; this checkout against a build of the code before (--before
// DIR: a tree with bindings/dist built), alternating, --reps rounds.
//
//   node bench/checkpoint.mjs [--mb 3.5] [--reps 5] [--before DIR]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : dflt; };
const MB = Number(opt('mb', 3.5));
const REPS = Number(opt('reps', 5));
const BEFORE = opt('before', null);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-ckpt-'));

// One process: a base of 2000 rows checkpointed into the main file, then
// commits of 8 KiB each until the log holds MB MiB; close() timed; then a
// new open() to the first result of a point query, timed.
const probe = `
const [root, p, mb] = process.argv.slice(1);
(async () => {
  const { open } = await import(root + '/bindings/index.js');
  const fs = require('node:fs');
  let db = await open({ name: 'ckpt', storage: 'file', path: p, checkpointBytes: 1 });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)');
  await db.exec('WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) INSERT INTO t SELECT i, randomblob(1000) FROM c');
  await db.close();
  db = await open({ name: 'ckpt', storage: 'file', path: p });
  for (let i = 1; fs.statSync(p + '-log').size < Number(mb) * 1048576; i++) await db.exec('UPDATE t SET pad = randomblob(8000) WHERE id = ?', [i]);
  const log = fs.statSync(p + '-log').size;
  let t0 = performance.now();
  await db.close();
  const close = performance.now() - t0;
  t0 = performance.now();
  db = await open({ name: 'ckpt', storage: 'file', path: p });
  const rows = await db.query('SELECT length(pad) AS l FROM t WHERE id = 1');
  const reopen = performance.now() - t0;
  await db.close();
  console.log(JSON.stringify({ close, reopen, log, ok: rows[0].l === 8000 }));
})().catch((e) => { console.error(e); process.exit(1); });`;

function run(kind, round) {
  const p = path.join(dir, `${kind}-${round}.db`);
  const r = spawnSync(process.execPath, ['-e', probe, kind === 'before' ? path.resolve(BEFORE) : ROOT, p, String(MB)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${kind}: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  if (!out.ok) throw new Error(`${kind}: wrong row`);
  fs.rmSync(p, { force: true });
  fs.rmSync(`${p}-log`, { force: true });
  return out;
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const kinds = ['after', ...(BEFORE ? ['before'] : [])];
const res = Object.fromEntries(kinds.map((k) => [k, []]));
console.log(`checkpoint bench: ~${MB} MiB of commits in the log at close, ${REPS} rounds; load ${os.loadavg()[0].toFixed(2)}`);
for (let r = 0; r < REPS; r++) {
  const order = kinds.map((_, i) => kinds[(i + r) % kinds.length]);
  for (const k of order) res[k].push(run(k, r));
}
for (const k of kinds) {
  const c = res[k].map((x) => x.close), o = res[k].map((x) => x.reopen);
  console.log(`${k.padEnd(6)} close: median ${median(c).toFixed(1)} ms (min ${Math.min(...c).toFixed(1)}); reopen to first result: median ${median(o).toFixed(1)} ms (min ${Math.min(...o).toFixed(1)})`);
}
console.log(`load at end ${os.loadavg()[0].toFixed(2)}`);
fs.rmSync(dir, { recursive: true, force: true });
