// Open to first result in headless Debian Chromium (issue 11, "reopen ...
// Chromium OPFS ... <= opfs-sahpool's time in the same run"): a database of
// FERRY_BENCH_MB (100) MiB of 1000-byte rows, built once by ferry on OPFS
// (its dedicated worker; closed, so a plain file plus an empty log) and once
// by @sqlite.org/sqlite-wasm on opfs-sahpool, then opened FERRY_BENCH_REPS
// (7) times each in a fresh page, alternating, to the rows of a point query.
// Both times include loading and compiling the wasm in the worker.
//
//   node bench/open-browser.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, launch } from '../tests/browser/harness.js';
import { SQLITE_WASM as PEER, installSqliteWasm } from './peer.mjs';

const MB = Number(process.env.FERRY_BENCH_MB || 100);
const REPS = Number(process.env.FERRY_BENCH_REPS || 7);
const ROWS = Math.round(MB * 1024 * 1024 / 1100);
const ID = Math.floor(ROWS / 2);

const peerDir = path.join(ROOT, 'build', 'bench', 'peer');
if (!fs.existsSync(path.join(peerDir, 'node_modules', PEER.name, 'dist', 'index.mjs'))) {
  const inst = installSqliteWasm(peerDir);
  if (!inst.ok) { console.error(`bench: cannot install ${PEER.name}@${PEER.version}: ${inst.error}`); process.exit(1); }
}
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const b = await launch();
try {
  const build = await b.newPage('/bench/pages/open.html');
  const version = b.context.browser()?.version() || (await build.evaluate(() => navigator.userAgent)).match(/Chrome\/([\d.]+)/)?.[1];
  const load0 = os.loadavg()[0];
  const name = `open_${process.pid}`;
  const file = `/open-${process.pid}.db`;
  const n1 = await build.evaluate(([nm, r]) => window.ferryBuild(nm, r), [name, ROWS]);
  const n2 = (await build.evaluate(([f, r]) => window.peerBuild(f, r), [file, ROWS])).n;
  if (n1 !== ROWS || n2 !== ROWS) throw new Error(`built ${n1} and ${n2} rows of ${ROWS}`);
  await build.close();
  const times = { ferry: [], peer: [] };
  let storage = null;
  const once = async (who) => {
    const page = await b.newPage('/bench/pages/open.html');
    const r = who === 'ferry'
      ? await page.evaluate(([nm, id]) => window.ferryOpen(nm, id), [name, ID])
      : await page.evaluate(([f, id]) => window.peerOpen(f, id), [file, ID]);
    await page.close();
    if (!r.ok) throw new Error(`${who}: the point query found no row`);
    if (r.storage) storage = r.storage;
    return r.ms;
  };
  await once('ferry'); await once('peer');   // warm the HTTP and compile paths alike
  for (let rep = 0; rep < REPS; rep++) {
    for (const who of rep % 2 ? ['peer', 'ferry'] : ['ferry', 'peer']) times[who].push(await once(who));
  }
  const ratios = times.ferry.map((t, i) => t / times.peer[i]);
  console.log(`Chromium ${version}: open to first result, ${MB} MiB database (${ROWS.toLocaleString('en')} rows of 1000 bytes), ${REPS} alternating rounds, fresh page each, load ${load0.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)}`);
  console.log('| | median ms | min ms | max ms |');
  console.log('|---|---|---|---|');
  console.log(`| ferry, worker on ${storage} | ${med(times.ferry).toFixed(1)} | ${Math.min(...times.ferry).toFixed(1)} | ${Math.max(...times.ferry).toFixed(1)} |`);
  console.log(`| ${PEER.name} ${PEER.version}, opfs-sahpool | ${med(times.peer).toFixed(1)} | ${Math.min(...times.peer).toFixed(1)} | ${Math.max(...times.peer).toFixed(1)} |`);
  console.log(`ferry / peer per round: median ${med(ratios).toFixed(2)}`);
} finally {
  await b.close();
}
process.exit(0);
