#!/usr/bin/env node
// From a committed write in one tab to a db.watch callback in another
// (issue 12, "Measure"), in headless Debian Chromium: two tabs of one origin
// share the database's worker (bindings/shared.js), both watch the same
// query, and the writing tab alternates between the one that holds the
// worker and the one that forwards to it, sample by sample, so both
// directions see the same machine load.
//
// Each sample i: the writing tab takes t0, awaits db.exec('INSERT …', [i])
// (it resolves once the commit is durable on OPFS) and takes t1; each tab's
// watcher stamps the callback that first shows row i. Clocks are
// performance.timeOrigin + now() of each tab (one machine clock). Reported:
// p50/p99 of callback − t1 (commit acknowledged to the writer → other tab's
// callback; negative when the event outran the reply), callback − t0 (write
// issued → other tab's callback), and the same tab's own callback − t0 for
// comparison, FERRY_BENCH_WATCH_REPS samples (default 200) after 10 of warm-up.
//
//   node bench/watch-browser.mjs
//
// Output: a short table on stdout, then one JSON line.
import os from 'node:os';
import { launch, uniqueName, unwrap } from '../tests/browser/harness.js';

const REPS = Number(process.env.FERRY_BENCH_WATCH_REPS || 200);
const WARM = 10;
const PAGE = '/tests/browser/pages/shared.html';

const load0 = os.loadavg()[0];
const b = await launch();
try {
  const name = uniqueName('bench_watch');
  const tabs = [await b.newPage(PAGE), await b.newPage(PAGE)];
  for (const p of tabs) unwrap(await p.evaluate((n) => window.openDb(n), name));
  const holders = await Promise.all(tabs.map((p) => p.evaluate(() => window.db.status().writer)));
  if (!holders[0] || holders[1]) throw new Error(`tab 1 should hold the worker: ${holders}`);
  unwrap(await tabs[0].evaluate(() => window.run((db) => db.exec('CREATE TABLE t(v INTEGER PRIMARY KEY)'))));
  for (const p of tabs) {
    await p.evaluate(() => {
      window.seen = new Map();
      window.db.watch('SELECT max(v) AS v FROM t', [], (rows) => {
        const v = rows?.[0]?.v;
        if (v != null && !window.seen.has(v)) window.seen.set(v, performance.timeOrigin + performance.now());
      });
    });
  }
  const samples = [];
  for (let i = 1; i <= WARM + REPS; i++) {
    const w = i % 2;   // 1: the tab holding the worker writes, 0: the other one
    const writer = tabs[w === 1 ? 0 : 1];
    const other = tabs[w === 1 ? 1 : 0];
    const { t0, t1 } = await writer.evaluate(async (v) => {
      const a = performance.timeOrigin + performance.now();
      await window.db.exec('INSERT INTO t VALUES (?)', [v]);
      return { t0: a, t1: performance.timeOrigin + performance.now() };
    }, i);
    for (const p of tabs) await p.waitForFunction((v) => window.seen.has(v), i, { timeout: 30_000, polling: 5 });
    const mine = await writer.evaluate((v) => window.seen.get(v), i);
    const theirs = await other.evaluate((v) => window.seen.get(v), i);
    if (i > WARM) samples.push({ fromHolder: w === 1, ack: theirs - t1, issued: theirs - t0, own: mine - t0, exec: t1 - t0 });
  }
  const pct = (xs, q) => { const s = [...xs].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
  const stat = (xs) => ({ p50: +pct(xs, 0.5).toFixed(2), p99: +pct(xs, 0.99).toFixed(2) });
  const out = { reps: REPS, load: [+load0.toFixed(2), +os.loadavg()[0].toFixed(2)] };
  for (const [key, pick] of [['holderWrites', (s) => s.fromHolder], ['otherWrites', (s) => !s.fromHolder], ['all', () => true]]) {
    const xs = samples.filter(pick);
    out[key] = { n: xs.length, ack: stat(xs.map((s) => s.ack)), issued: stat(xs.map((s) => s.issued)), own: stat(xs.map((s) => s.own)), exec: stat(xs.map((s) => s.exec)) };
  }
  console.log(`watch latency across tabs, ${REPS} samples, load ${out.load[0]} -> ${out.load[1]} (ms, p50 / p99)`);
  console.log('writer tab        exec            other tab: from ack   other tab: from issue   own tab: from issue');
  for (const key of ['holderWrites', 'otherWrites', 'all']) {
    const r = out[key];
    const f = (s) => `${s.p50} / ${s.p99}`.padEnd(22);
    console.log(`${key.padEnd(17)} ${f(r.exec)}${f(r.ack)}${f(r.issued)}${f(r.own)}`);
  }
  console.log(JSON.stringify(out));
} finally {
  await b.close();
}
