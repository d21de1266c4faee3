// How long an app's query waits while a first sync pulls (issue 11, "queries
// never wait long"): a Node client on `file` storage pulls 200,000 objects
// from a loopback reference server (its own process, bench/sync-server.mjs)
// while a point query is issued every 20 ms; each query's time from the call
// to its rows is recorded. The same run compares pullSlice 0 (each pull page
// of 5,000 applied in one transaction, as before slices) with the default
// (1000) and 250, in alternating order, each on a fresh database. A query's
// wait runs from when it was due (every 20 ms) to its rows: while the thread
// applies a page, even the timer that would ask is held back.
//
//   node bench/query-during-sync.mjs      FERRY_BENCH_OBJECTS (200000) FERRY_BENCH_REPS (3)
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../bindings/index.js';
import { queryWaitsDuringSync } from './pages/query-waits.js';

const N = Number(process.env.FERRY_BENCH_OBJECTS || 200_000);
const REPS = Number(process.env.FERRY_BENCH_REPS || 3);
const SLICES = [0, 1000, 250, 'time'];   // 'time': no pullSlice, steps sized by time (the default, 4 ms)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-qds-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const server = fork(fileURLToPath(new URL('./sync-server.mjs', import.meta.url)), [path.join(dir, 'server'), String(N)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
const url = await new Promise((resolve) => server.stdout.on('data', (d) => resolve(String(d).trim())));

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

async function once(slice, rep) {
  const db = await open({ name: `qds-${slice}-${rep}`, storage: 'file', path: path.join(dir, `c-${slice}-${rep}.db`), server: `${url}/sync`, syncOnOpen: false, ...(slice === 'time' ? {} : { pullSlice: slice }) });
  const r = await queryWaitsDuringSync(db);
  if (r.pulled !== N) throw new Error(`pulled ${r.pulled} of ${N}`);
  return r;
}

const rows = Object.fromEntries(SLICES.map((s) => [s, []]));
const load0 = os.loadavg()[0];
await once('time', 'warm');
for (let rep = 0; rep < REPS; rep++) {
  const order = rep % 2 ? [...SLICES].reverse() : SLICES;
  for (const s of order) rows[s].push(await once(s, rep));
}
console.log(`query during a first sync of ${N.toLocaleString('en')} objects, a query every 20 ms, ${REPS} runs each, load ${load0.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)}`);
console.log('| pullSlice | sync (ms, median) | query wait p50 | p99 | max (ms; over all runs) |');
console.log('|---|---|---|---|---|');
for (const s of SLICES) {
  const all = rows[s].flatMap((r) => r.waits);
  const syncMs = pct(rows[s].map((r) => r.ms), 0.5);
  console.log(`| ${s === 0 ? '0 (whole pages)' : s === 'time' ? 'none: steps of 4 ms (default)' : s} | ${syncMs.toFixed(0)} | ${pct(all, 0.5).toFixed(1)} | ${pct(all, 0.99).toFixed(1)} | ${Math.max(...all).toFixed(1)} |`);
}
server.kill();
