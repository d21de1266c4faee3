// Sync benchmark (npm run bench runs it): initial sync of 100,000 objects
// from a loopback reference server into a Node client on file storage
// (seconds, peak RSS), incremental rounds of 100 changed objects, and a push
// of 10,000 local changes. The server runs in its own process so the client's
// time and memory are its own.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../bindings/index.js';

const N = Number(process.env.FERRY_BENCH_OBJECTS || 100_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-sync-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const server = fork(fileURLToPath(new URL('./sync-server.mjs', import.meta.url)), [path.join(dir, 'server'), String(N)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
const url = await new Promise((resolve) => server.stdout.on('data', (d) => resolve(String(d).trim())));
const ask = (msg) => new Promise((resolve) => { server.once('message', resolve); server.send(msg); });

// Reply bytes are counted from content-length, so the client reads bodies
// exactly as it does without the benchmark.
let bytes = 0;
const countingFetch = async (u, init) => {
  const res = await fetch(u, init);
  bytes += Number(res.headers.get('content-length') || 0);
  return res;
};

const db = await open({ name: 'bench', storage: 'file', path: path.join(dir, 'client.db'), server: `${url}/sync`, syncOnOpen: false, fetch: countingFetch });
global.gc?.();
const idle = process.memoryUsage().rss;
let peak = idle;
const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 5);

let t = performance.now();
const first = await db.sync();
const initialMs = performance.now() - t;
clearInterval(sampler);
const [{ n }] = await db.query('SELECT count(*) AS n FROM Item');
if (n !== N || first.pulled !== N) throw new Error(`initial sync pulled ${first.pulled}, table has ${n}`);

const rounds = [];
for (let round = 1; round <= 10; round++) {
  await ask({ change: 100, round });
  t = performance.now();
  const r = await db.sync();
  rounds.push(performance.now() - t);
  if (r.pulled !== 100) throw new Error(`round ${round} pulled ${r.pulled}`);
}
rounds.sort((a, b) => a - b);

await db.transaction(async (tx) => {
  for (let i = 0; i < 10_000; i++) await tx.exec('UPDATE Item SET qty = qty + 1 WHERE id = ?', [`item-${String(i).padStart(7, '0')}`]);
});
t = performance.now();
const pushed = await db.sync();
const pushMs = performance.now() - t;
if (pushed.pushed !== 10_000) throw new Error(`pushed ${pushed.pushed}`);

await db.close();
server.kill();
const mb = (x) => (x / 1e6).toFixed(0);
console.log(JSON.stringify({
  objects: N,
  initialSyncSeconds: +(initialMs / 1000).toFixed(2),
  replyMB: +(bytes / 1e6).toFixed(1),
  rssIdleMB: +mb(idle), rssPeakMB: +mb(peak), rssGrowthMB: +mb(peak - idle),
  incremental100ms: { p50: +rounds[5].toFixed(0), max: +rounds[9].toFixed(0) },
  push10kSeconds: +(pushMs / 1000).toFixed(2),
}));
