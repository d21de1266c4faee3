// File transfer benchmark (issue "Files on the device", Measure; npm run
// bench runs it): upload and download throughput of a 100 MB file on
// 127.0.0.1 through ferry's file queue, against a plain fetch of the same
// bytes, in one run.
//
// The servers run in their own process (bench/files-server.mjs): the
// reference sync server, and a plain `http` server that writes a PUT body to
// a file on the same disk and fsyncs it, and streams a file back on GET.
// Each repetition writes a new random file (a new hash: the server would
// dedupe the same bytes) and times four variants:
//   ferry upload    device A: put() the file from disk (not timed), sync()
//                   pushes the reference and wakes the queue; timed from the
//                   queue's first request (its HEAD) to flush() resolving,
//                   the server holding the whole, hash-checked file
//   plain upload    fetch PUT of the same file, streamed from disk (1 MiB reads), to the
//                   plain server; timed to its reply (after its fsync)
//   ferry download  device B (a fresh database): sync() pulls the
//                   reference and wakes the queue; timed from its first
//                   request (the GET) to flush() resolving, the file hashed,
//                   fsynced and committed in B's store
//   plain download  fetch GET of the same bytes from the plain server,
//                   streamed to a file, fsynced
// The order of the variants alternates between repetitions (ferry first,
// then plain first). Reported: medians of MB/s (1 MB = 10^6 bytes), the
// ratio ferry/plain of throughput (medians, and the median of the
// per-repetition ratios), client and server CPU time per variant (of the
// whole variant: for ferry with the sync() that pushes or pulls the row), the
// client's peak RSS during each (median over the repetitions) and over the run.
//
//   FERRY_BENCH_FILE_MB (100)  FERRY_BENCH_FILE_REPS (3)
//   FERRY_BENCH_FILE_CHUNK: the client's fileChunk option in bytes (default: the product's, 4 MiB)
//   FERRY_BENCH_DEADLINE: ms since the epoch; repetitions that would not fit are skipped
//   FERRY_BENCH_FILE_SERVER=<path>/server/index.js: the server module to run (default this checkout's), for A/B
//   FERRY_BENCH_FILE_TRACE=1: print each file request of the ferry variants (start, time to its reply)
//   FERRY_BENCH_FILE_PROFILE=<dir>: V8 CPU profiles: the server process's whole run in <dir>/server,
//     the client's of each variant alone in <dir>/client/<variant>-<rep>.cpuprofile
import { fork } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import inspector from 'node:inspector';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../bindings/index.js';

const MB = Number(process.env.FERRY_BENCH_FILE_MB || 100);
const REPS = Number(process.env.FERRY_BENCH_FILE_REPS || 3);
const CHUNK = process.env.FERRY_BENCH_FILE_CHUNK ? Number(process.env.FERRY_BENCH_FILE_CHUNK) : undefined;
const SIZE = Math.round(MB * 1e6);
const TRACE = process.env.FERRY_BENCH_FILE_TRACE === '1';
const deadline = Number(process.env.FERRY_BENCH_DEADLINE || 0);
const GOAL = 0.8;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-files-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const profileDir = process.env.FERRY_BENCH_FILE_PROFILE && path.resolve(process.env.FERRY_BENCH_FILE_PROFILE);
const server = fork(fileURLToPath(new URL('./files-server.mjs', import.meta.url)), [path.join(dir, 'server'), ...(process.env.FERRY_BENCH_FILE_SERVER ? [process.env.FERRY_BENCH_FILE_SERVER] : [])], {
  stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  execArgv: profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.join(profileDir, 'server')] : [],
});
const { url, plain } = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(JSON.parse(out)); });
  server.once('exit', (code) => reject(new Error(`files server exited with ${code}`)));
});
const ask = (msg) => new Promise((resolve) => { server.once('message', resolve); server.send(msg); });
const serverCpu = async () => (await ask({ cpu: true })).cpu;
const clientCpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

// With FERRY_BENCH_FILE_PROFILE, the client profiles each variant on its own (<dir>/client/<variant>-<rep>.cpuprofile).
const session = profileDir ? new inspector.Session() : null;
session?.connect();
const post = (method) => new Promise((resolve, reject) => session.post(method, (e, r) => (e ? reject(e) : resolve(r))));
if (session) await post('Profiler.enable');

let peak = 0;
const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 5);
sampler.unref();

/** A file of `size` random bytes at `file`; -> its SHA-256. */
async function randomFile(file, size) {
  const h = crypto.createHash('sha256');
  const fh = await fsp.open(file, 'w');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let at = 0; at < size; at += buf.length) {
      const b = buf.subarray(0, Math.min(buf.length, size - at));
      crypto.randomFillSync(b);
      h.update(b);
      await fh.write(b);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/**
 * The plain upload's body: a stream of the file read from disk in 1 MiB
 * pieces (Node's fs streams read 64 KiB; larger reads cost less CPU per
 * byte, so this is the stronger baseline).
 */
async function fileStream(file) {
  const fh = await fsp.open(file, 'r');
  return new ReadableStream({
    async pull(c) {
      const buf = new Uint8Array(1 << 20);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) { await fh.close(); c.close(); return; }
      c.enqueue(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
    },
    async cancel() { await fh.close(); },
  });
}

async function hashOf(file) {
  const h = crypto.createHash('sha256');
  for await (const c of fs.createReadStream(file)) h.update(c);
  return h.digest('hex');
}

/**
 * A device: a fresh database on 'file' storage whose fetch notes when the
 * first request of the file queue began (and counts them by method).
 */
async function device(name) {
  const seen = { first: null, requests: {}, trace: [] };
  const watched = async (u, init) => {
    if (!String(u).includes('/sync/files/')) return fetch(u, init);
    const t = performance.now();
    if (seen.first === null) seen.first = t;
    const m = init?.method || 'GET';
    seen.requests[m] = (seen.requests[m] || 0) + 1;
    const res = await fetch(u, init);
    if (TRACE) seen.trace.push([m, +(t - seen.first).toFixed(1), +(performance.now() - t).toFixed(1)]);
    return res;
  };
  const db = await open({
    name, storage: 'file', path: path.join(dir, `${name}.db`), server: `${url}/sync`, syncOnOpen: false,
    fetch: watched, headers: () => ({ authorization: 'Bearer alice' }),
    ...(CHUNK ? { fileChunk: CHUNK } : {}),
  });
  return { db, seen, path: path.join(dir, `${name}.db`) };
}

async function destroy(dev) {
  await dev.db.close();
  for (const f of await fsp.readdir(dir)) if (f.startsWith(path.basename(dev.path))) await fsp.rm(path.join(dir, f), { recursive: true, force: true });
}

/** Times fn() -> { ms, clientCpu, serverCpu, rssPeak }; fn may return its own start and end (performance.now()), else all of it is timed. */
async function measure(fn, label) {
  global.gc?.();
  if (session) await post('Profiler.start');
  peak = process.memoryUsage().rss;
  const c0 = clientCpu();
  const s0 = await serverCpu();
  const t0 = performance.now();
  const { start = t0, end = null, ...extra } = (await fn()) || {};
  const t1 = end ?? performance.now();
  const s1 = await serverCpu();
  const c1 = clientCpu();
  peak = Math.max(peak, process.memoryUsage().rss);
  if (session) {
    const { profile } = await post('Profiler.stop');
    fs.mkdirSync(path.join(profileDir, 'client'), { recursive: true });
    fs.writeFileSync(path.join(profileDir, 'client', `${label}.cpuprofile`), JSON.stringify(profile));
  }
  return { ms: t1 - start, clientCpu: c1 - c0, serverCpu: s1 - s0, rssPeak: peak, ...extra };
}

async function one(rep, size, order) {
  const src = path.join(dir, `src-${rep}`);
  const hash = await randomFile(src, size);
  const id = `big-${rep}`;
  const a = await device(`up-${rep}`);
  await a.db.sync();
  await a.db.exec("INSERT INTO Photo(id, caption) VALUES (?, 'a long video')", [id]);
  const tp = performance.now();
  const ref = await a.db.files.put('Photo', id, 'image', fs.createReadStream(src), { type: 'video/mp4', name: 'big.mp4' });
  const putMs = performance.now() - tp;
  if (ref.hash !== hash || ref.size !== size) throw new Error(`put stored ${ref.hash} (${ref.size} bytes), not ${hash}`);
  await a.db.files.flush();
  if (a.seen.first !== null) throw new Error('the file queue sent a request before the object was pushed');
  const b = await device(`down-${rep}`);

  const variants = {
    ferryUp: async () => {
      const r = await a.db.sync();
      if (r.pushed !== 1) throw new Error(`the push of the reference pushed ${r.pushed}`);
      const st = await a.db.files.flush();
      const done = performance.now();
      if (st.uploads !== 0 || st.failed !== 0) throw new Error(`upload not done: ${JSON.stringify(st)}, errors ${JSON.stringify(await a.db.syncErrors())}`);
      const stat = (await ask({ stat: hash })).stat;
      if (stat.size !== size) throw new Error(`the server holds ${JSON.stringify(stat)}`);
      if (TRACE) console.error(`ferry upload ${rep}: [method, start ms, ms to the reply's headers] ${JSON.stringify(a.seen.trace)}; flush resolved at ${(done - a.seen.first).toFixed(1)}`);
      return { start: a.seen.first, end: done, requests: a.seen.requests };
    },
    plainUp: async () => {
      const t0 = performance.now();
      const res = await fetch(`${plain}/plain/${hash}`, { method: 'PUT', body: await fileStream(src), duplex: 'half', headers: { 'content-type': 'application/octet-stream' } });
      const body = await res.json();
      if (res.status !== 200 || body.received !== size) throw new Error(`plain PUT: ${res.status} ${JSON.stringify(body)}`);
      return { start: t0 };
    },
    ferryDown: async () => {
      const r = await b.db.sync();
      if (r.pulled !== 1) throw new Error(`the second device pulled ${r.pulled}`);
      const st = await b.db.files.flush();
      if (st.downloads !== 0 || st.failed !== 0) throw new Error(`download not done: ${JSON.stringify(st)}, errors ${JSON.stringify(await b.db.syncErrors())}`);
      if (TRACE) console.error(`ferry download ${rep}: ${JSON.stringify(b.seen.trace)}; flush resolved at ${(performance.now() - b.seen.first).toFixed(1)}`);
      return { start: b.seen.first, requests: b.seen.requests };
    },
    plainDown: async () => {
      const t0 = performance.now();
      const res = await fetch(`${plain}/plain/${hash}`);
      if (res.status !== 200) throw new Error(`plain GET: ${res.status}`);
      const fh = await fsp.open(path.join(dir, `plain-${rep}`), 'w');
      let n = 0;
      try {
        for await (const chunk of res.body) { await fh.write(chunk); n += chunk.length; }
        await fh.datasync();
      } finally {
        await fh.close();
      }
      if (n !== size) throw new Error(`plain GET gave ${n} bytes`);
      return { start: t0 };
    },
  };
  const out = { putMs };
  try {
    for (const k of order) {
      out[k] = await measure(variants[k], `${k}-${rep}`);
      if (k === 'ferryUp') { await a.db.close(); a.closed = true; }
    }
    // Outside the timings: what arrived is the file.
    const got = await hashOf(path.join(`${b.path}.files`, 'blobs', hash));
    if (got !== hash) throw new Error(`device B holds ${got}, not ${hash}`);
    if (await hashOf(path.join(dir, `plain-${rep}`)) !== hash) throw new Error('the plain download differs');
  } finally {
    if (!a.closed) await a.db.close();
    await destroy(a).catch(() => {});
    await destroy(b);
    await fsp.rm(src, { force: true });
    await fsp.rm(path.join(dir, `plain-${rep}`), { force: true });
    await ask({ clean: id });
  }
  return out;
}

const V = ['ferryUp', 'plainUp', 'ferryDown', 'plainDown'];
const ORDERS = [
  ['ferryUp', 'plainUp', 'ferryDown', 'plainDown'],
  ['plainUp', 'ferryUp', 'plainDown', 'ferryDown'],
];

const loadStart = os.loadavg();
global.gc?.();
const idle = process.memoryUsage().rss;
// The first round in a process runs on V8's baseline tiers: a small one, not timed.
await one('warm-up', Math.min(SIZE, 8e6), ORDERS[0]);
const samples = [];
let repMs = 0;
for (let rep = 0; rep < REPS; rep++) {
  if (deadline && rep > 0 && Date.now() + repMs * 1.5 + 5000 > deadline) {
    console.error(`files: stopped after ${rep} repetitions (FERRY_BENCH_DEADLINE)`);
    break;
  }
  const t = Date.now();
  samples.push(await one(rep, SIZE, ORDERS[rep % 2]));
  repMs = Date.now() - t;
}
const loadEnd = os.loadavg();
const runPeak = Math.max(...samples.flatMap((s) => V.map((k) => s[k].rssPeak)));
clearInterval(sampler);
server.disconnect();

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mbps = (s) => SIZE / 1e6 / (s.ms / 1000);
const med = Object.fromEntries(V.map((k) => [k, {
  mbps: median(samples.map((s) => mbps(s[k]))),
  ms: median(samples.map((s) => s[k].ms)),
  clientCpu: median(samples.map((s) => s[k].clientCpu)),
  serverCpu: median(samples.map((s) => s[k].serverCpu)),
  rssPeakMB: median(samples.map((s) => s[k].rssPeak)) / 1e6,
}]));
const ratio = (f, p) => ({
  medians: med[f].mbps / med[p].mbps,
  paired: median(samples.map((s) => mbps(s[f]) / mbps(s[p]))),
});
const ratios = { upload: ratio('ferryUp', 'plainUp'), download: ratio('ferryDown', 'plainDown') };
const LABEL = { ferryUp: 'ferry upload', plainUp: 'plain upload (fetch PUT)', ferryDown: 'ferry download', plainDown: 'plain download (fetch GET)' };

const f1 = (x) => x.toFixed(1);
const f0 = (x) => x.toFixed(0);
const lines = [];
lines.push(`files: ${MB} MB random file on 127.0.0.1, ${samples.length} repetitions (order alternating), chunk ${CHUNK ?? '4 MiB (default)'}, load ${loadStart[0].toFixed(2)} -> ${loadEnd[0].toFixed(2)}`);
lines.push(`  put() of the file on device A (not in the figures): median ${f0(median(samples.map((s) => s.putMs)))} ms; requests per ferry upload ${JSON.stringify(samples[0].ferryUp.requests)}, download ${JSON.stringify(samples[0].ferryDown.requests)}`);
lines.push('');
lines.push('| variant | MB/s (median) | time (ms, median) | client CPU (ms) | server CPU (ms) | client peak RSS (MB, median) |');
lines.push('|---|---|---|---|---|---|');
for (const k of V) lines.push(`| ${LABEL[k]} | ${f1(med[k].mbps)} | ${f0(med[k].ms)} | ${f0(med[k].clientCpu)} | ${f0(med[k].serverCpu)} | ${f0(med[k].rssPeakMB)} |`);
lines.push('');
lines.push(`| ratio ferry/plain (throughput) | medians | paired (median of per-repetition ratios) | goal |`);
lines.push('|---|---|---|---|');
for (const [k, r] of Object.entries(ratios)) lines.push(`| ${k} | **${r.medians.toFixed(2)}** | ${r.paired.toFixed(2)} | >= ${GOAL}: ${r.medians >= GOAL ? 'met' : 'not met'} |`);
lines.push(`client RSS: ${f0(idle / 1e6)} MB after start, ${f0(runPeak / 1e6)} MB at most during the run (one process for all variants: a variant's peak includes what the ones before it left)`);
console.log(lines.join('\n'));
console.log(JSON.stringify({
  fileMB: MB, reps: samples.length, chunk: CHUNK ?? null, load: { start: loadStart, end: loadEnd },
  rssIdleMB: +f0(idle / 1e6), rssPeakMB: +f0(runPeak / 1e6), medians: med, ratios,
  samples: samples.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v === 'number' ? +v.toFixed(1) : { ms: +v.ms.toFixed(1), clientCpu: +v.clientCpu.toFixed(0), serverCpu: +v.serverCpu.toFixed(0), rssPeakMB: +(v.rssPeak / 1e6).toFixed(0) }]))),
}));
