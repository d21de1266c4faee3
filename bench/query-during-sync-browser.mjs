// bench/query-during-sync.mjs in headless Debian Chromium (issue 11,
// "queries never wait long ... in the browser worker"): a dedicated module
// worker on OPFS pulls FERRY_BENCH_OBJECTS (200,000) from a loopback
// reference server (its own process, bench/sync-server.mjs, CORS open to the
// page's origin) while a point query is due every 20 ms in the same worker;
// each query's wait runs from when it was due to its rows. Same run,
// alternating order, FERRY_BENCH_REPS (3) fresh databases per setting.
//
//   node bench/query-during-sync-browser.mjs      FERRY_BENCH_VERBOSE=1: each run's time
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../tests/browser/harness.js';

const N = Number(process.env.FERRY_BENCH_OBJECTS || 200_000);
const REPS = Number(process.env.FERRY_BENCH_REPS || 3);
const SLICES = [0, 1000, 'time'];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-qdsb-'));
const server = fork(fileURLToPath(new URL('./sync-server.mjs', import.meta.url)), [path.join(dir, 'server'), String(N), '*'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
const cleanup = () => { server.kill(); fs.rmSync(dir, { recursive: true, force: true }); };
process.on('exit', cleanup);
const url = await new Promise((resolve) => server.stdout.on('data', (d) => resolve(String(d).trim())));
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

const b = await launch();
try {
  const page = await b.newPage('/bench/pages/qds.html');
  const version = b.context.browser()?.version() || (await page.evaluate(() => navigator.userAgent)).match(/Chrome\/([\d.]+)/)?.[1];
  let k = 0;
  const once = async (slice) => {
    let timer;
    const r = await Promise.race([
      page.evaluate((o) => window.runOnce(o), { server: `${url}/sync`, slice, name: `qds_${process.pid}_${k++}` }),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`a first sync with pullSlice ${slice} took over 5 minutes`)), 300_000); }),
    ]).finally(() => clearTimeout(timer));
    if (process.env.FERRY_BENCH_VERBOSE) console.error(`pullSlice ${slice}: ${r.ms.toFixed(0)} ms`);
    if (r.pulled !== N) throw new Error(`pulled ${r.pulled} of ${N}`);
    return r;
  };
  const rows = Object.fromEntries(SLICES.map((s) => [s, []]));
  const load0 = os.loadavg()[0];
  await once('time');
  for (let rep = 0; rep < REPS; rep++) {
    const order = rep % 2 ? [...SLICES].reverse() : SLICES;
    for (const s of order) rows[s].push(await once(s));
  }
  console.log(`Chromium ${version}, dedicated worker on OPFS: queries during a first sync of ${N.toLocaleString('en')} objects, a query every 20 ms, ${REPS} runs each, load ${load0.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)}`);
  console.log('| pullSlice | sync (ms, median) | query wait p50 | p99 | max (ms; over all runs) | queries |');
  console.log('|---|---|---|---|---|---|');
  for (const s of SLICES) {
    const all = rows[s].flatMap((r) => r.waits);
    console.log(`| ${s === 0 ? '0 (whole pages)' : s === 'time' ? 'none: steps of 4 ms (default)' : s} | ${pct(rows[s].map((r) => r.ms), 0.5).toFixed(0)} | ${pct(all, 0.5).toFixed(1)} | ${pct(all, 0.99).toFixed(1)} | ${Math.max(...all).toFixed(1)} | ${all.length} |`);
  }
} finally {
  await b.close();
  // The server's process would keep this one alive.
  server.kill();
}
process.exit(0);
