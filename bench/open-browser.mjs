// Open to first result in headless Debian Chromium (issue 11, "reopen ...
// Chromium OPFS ... <= opfs-sahpool's time in the same run"): a database of
// FERRY_BENCH_MB (100) MiB of 1000-byte rows, built once by ferry on OPFS
// (its dedicated worker; closed, so a plain file plus an empty log) and once
// by @sqlite.org/sqlite-wasm on opfs-sahpool, then opened FERRY_BENCH_REPS
// (7) times each in a fresh page, alternating, to the rows of a point query.
// Both times include loading and compiling the wasm in the worker.
//
// Then memory: each side opens its database and an empty one (a table, no
// rows) in a fresh page and keeps it open; the figure is the RSS of the
// page's renderer process (its worker runs in it; the renderer that exits
// when the page closes), read from /proc a moment after the first result.
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

/** pid -> KiB of RSS of the Chromium renderer processes this process started (Linux /proc). */
function rendererRss() {
  const parent = new Map();
  const renderers = new Map();
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      parent.set(pid, status.match(/^PPid:\s+(\d+)/m)[1]);
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) {
        renderers.set(pid, Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] || 0));
      }
    } catch { /* gone meanwhile */ }
  }
  const mine = (pid) => { for (let p = pid, i = 0; p && p !== '0' && i < 64; p = parent.get(p), i++) if (p === String(process.pid)) return true; return false; };
  return new Map([...renderers].filter(([pid]) => mine(pid)));
}

/**
 * Closes `page` and gives the MiB of RSS its renderer had in `held` (a
 * rendererRss() taken while it was open): the renderer that exits with it.
 * (Chromium keeps a spare renderer beside the page's, and the context's
 * first page has one of its own, so the largest is not always the page's.)
 */
async function closedRendererMiB(page, held) {
  await page.close();
  for (let i = 0; i < 40; i++) {
    const now = rendererRss();
    const gone = [...held.keys()].filter((pid) => !now.has(pid));
    if (gone.length === 1) return held.get(gone[0]) / 1024;
    await new Promise((res) => setTimeout(res, 50));
  }
  return NaN;
}

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
  await build.evaluate(([nm, r]) => window.ferryBuild(nm, r), [`${name}_empty`, 0]);
  await build.evaluate(([f, r]) => window.peerBuild(f, r), [`${file}-empty`, 0]);
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

  const held = async (who, big) => {
    const page = await b.newPage('/bench/pages/open.html');
    const r = who === 'ferry'
      ? await page.evaluate(([nm, id]) => window.ferryHold(nm, id), [big ? name : `${name}_empty`, ID])
      : await page.evaluate(([f, id]) => window.peerHold(f, id), [big ? file : `${file}-empty`, ID]);
    if (!r.ok) throw new Error(`${who}: the held open found nothing`);
    await new Promise((res) => setTimeout(res, 500));
    return closedRendererMiB(page, rendererRss());
  };
  const mem = { ferry: { big: [], empty: [] }, peer: { big: [], empty: [] } };
  for (let rep = 0; rep < 3; rep++) {
    for (const who of ['ferry', 'peer']) for (const big of [true, false]) mem[who][big ? 'big' : 'empty'].push(await held(who, big));
  }
  console.log(`\nRSS of the page's renderer with the database open after its first result (MiB, median of 3; load ${os.loadavg()[0].toFixed(2)})`);
  console.log(`| | ${MB} MiB database | empty database | over the empty one |`);
  console.log('|---|---|---|---|');
  for (const who of ['ferry', 'peer']) {
    const big = med(mem[who].big);
    const empty = med(mem[who].empty);
    console.log(`| ${who === 'ferry' ? `ferry, worker on ${storage}` : `${PEER.name}, opfs-sahpool`} | ${big.toFixed(1)} | ${empty.toFixed(1)} | ${(big - empty).toFixed(1)} |`);
  }
} finally {
  await b.close();
}
process.exit(0);
