// npm run bench (scripts/bench.sh builds, then runs this): speedtest1 natively
// and in wasm on ferry's VFS (memory and file stores), durable one-row commit
// latency and bytes per commit (Node 'file', Chromium IndexedDB and OPFS).
// Prints a summary and writes build/bench/results.json and results.md.
//
// Options (environment):
//   FERRY_BENCH_REPS       repetitions of each speedtest1 measurement (default 5)
//   FERRY_BENCH_SIZE       speedtest1 --size (default 100, speedtest1's own default)
//   FERRY_BENCH_COMMITS    one-row commits timed per store (default 1000: the mean
//                          then includes a log checkpoint on the file-based stores)
//   FERRY_BENCH_DEADLINE   epoch ms by which to be done (scripts/bench.sh sets it);
//                          repetitions that would not fit are skipped and said so
//   FERRY_BENCH_VARIANTS=1 also time the runsql flag variants (build with
//                          FERRY_BENCH_VARIANTS=1 scripts/bench.sh)
//   FERRY_BENCH_SKIP       comma list of phases to skip: script,warm,speedtest1,node,browser
//   FERRY_BENCH_BINDINGS   a bindings/ folder (with dist/) to use instead of the
//                          repo's for the commit benchmarks: A/B of a core change
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'build/bench');
const NATIVE = path.join(OUT, 'native/bin');
const WASM = path.join(OUT, 'wasm/bin');
const env = process.env;
const REPS = Math.max(1, Number(env.FERRY_BENCH_REPS || 5));
const SIZE = Math.max(1, Number(env.FERRY_BENCH_SIZE || 100));
const COMMITS = Math.max(10, Number(env.FERRY_BENCH_COMMITS || 1000));
const DEADLINE = Number(env.FERRY_BENCH_DEADLINE || Date.now() + 9 * 60_000);
const SKIP = new Set((env.FERRY_BENCH_SKIP || '').split(',').filter(Boolean));
const BINDINGS = env.FERRY_BENCH_BINDINGS ? path.resolve(env.FERRY_BENCH_BINDINGS) : null;
const started = Date.now();

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-'));
const cleanup = () => fs.rmSync(TMP, { recursive: true, force: true });
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });

const log = (...a) => console.error(...a);
const left = () => DEADLINE - Date.now();
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const min = (xs) => Math.min(...xs);
const fmt = (x, d = 2) => (x == null || Number.isNaN(x) ? '-' : x.toFixed(d));
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

// ---- running the builds -------------------------------------------------------
/** Busy CPU seconds of the whole machine so far (/proc/stat). */
function machineBusy() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user + nice + system + irq + softirq + (steal || 0)) / 100;
}
const secs = (t) => { const m = /(\d+)m([\d.]+)s/.exec(t); return m ? +m[1] * 60 + +m[2] : NaN; };
const background = [];   // CPU cores used by other processes during each measured run

/**
 * Runs a bench program to completion. Also measures the CPU time the run
 * used (bash's `times`) against the machine's busy time meanwhile, so the
 * report can say how much else was running (a 2-core machine is easily
 * disturbed).
 */
function run(build, prog, args, { timeoutMs }) {
  const cmd = build === 'native' ? [path.join(NATIVE, prog), ...args]
    : [process.execPath, path.join(WASM, `${prog}.js`), ...args];
  const b0 = machineBusy(), t0 = performance.now();
  const r = spawnSync('bash', ['-c', '"$@"; rc=$?; times >&2; exit $rc', 'bash', ...cmd],
    { cwd: TMP, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  const wall = (performance.now() - t0) / 1000, busy = machineBusy() - b0;
  if (r.error) throw new Error(`${build} ${prog}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${build} ${prog} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  const times = r.stderr.trim().split('\n').slice(-1)[0].split(/\s+/);
  const own = secs(times[0]) + secs(times[1]);
  if (wall > 0.5 && Number.isFinite(own)) background.push({ wall, others: Math.max(0, busy - own) / wall, own: own / wall });
  return r.stdout;
}

function storeArgs(store, flag) {
  return store === 'file' ? [`--${flag}store`, 'file', `--${flag}path`, path.join(TMP, 'store.db')] : [`--${flag}store`, 'memory'];
}

/** runsql in one process, `reps` times, each on a fresh store -> [{ ms, cpuMs, commits, bytes, storeMs, hash }] */
function runScriptReps(build, store, script, { hash = false, prog = 'runsql', reps = 1, extra = [] } = {}) {
  const out = run(build, prog, [...storeArgs(store, ''), '--reps', String(reps), ...(hash ? ['--hash'] : []), ...extra, script],
    { timeoutMs: 120_000 * reps });
  const all = [...out.matchAll(/rep \d+ ms ([\d.]+) cpu_ms ([-\d.]+) commits (\d+) blocks (\d+) bytes (\d+) store_ms ([\d.]+) os_write_bytes ([-\d]+)(?: hash (\w+) size (\d+))?/g)]
    .map((m) => ({ ms: +m[1], cpuMs: +m[2], commits: +m[3], blocks: +m[4], bytes: +m[5], storeMs: +m[6], osBytes: +m[7], hash: m[8], dbSize: m[9] && +m[9] }));
  if (all.length !== reps) throw new Error(`unexpected runsql output: ${out}`);
  return all;
}
/** runsql once on a fresh store in a fresh process */
const runScript = (build, store, script, opts) => runScriptReps(build, store, script, opts)[0];

/** speedtest1 directly -> { ms (its TOTAL), tests: { id: ms }, store } */
function runSpeedtest(build, store) {
  const out = run(build, 'speedtest1', [...storeArgs(store, 'ferry-'), '--testset', 'main', '--size', String(SIZE),
    '--journal', 'memory', 'ferry-bench-speedtest1-db'], { timeoutMs: 120_000 });
  const tests = {};
  for (const m of out.matchAll(/^\s*(\d+) - (.*?)\.{3,}\s+([\d.]+)s$/gm)) tests[m[1]] = { name: m[2], ms: +m[3] * 1000 };
  const total = /TOTAL\.+\s+([\d.]+)s/.exec(out);
  if (!total) throw new Error(`unexpected speedtest1 output: ${out.slice(-1000)}`);
  const st = /ferry store \w+: commits (\d+), blocks (\d+), bytes (\d+), in store ([\d.]+) ms/.exec(out);
  const cpu = /ferry cpu ([-\d.]+) ms/.exec(out);
  return { ms: +total[1] * 1000, cpuMs: cpu ? +cpu[1] : NaN, tests, commits: st && +st[1], bytes: st && +st[3], storeMs: st && +st[4] };
}

/**
 * Repeats measure(build, store) for native and wasm, alternating which goes
 * first, so that load from elsewhere on the machine falls on both alike.
 * Skips what would not fit before the deadline (estimated from the first rep).
 */
function alternate(label, stores, measure, { reps = REPS, reserveMs = 0 } = {}) {
  const res = {};
  for (const s of stores) res[s] = { native: [], wasm: [] };
  let perRep = null;
  for (let rep = 0; rep < reps; rep++) {
    if (perRep && left() - reserveMs < perRep * 1.2) {
      log(`${label}: stopping after ${rep} repetitions (time bound)`);
      break;
    }
    const t0 = Date.now();
    for (const s of stores) {
      const order = rep % 2 ? ['wasm', 'native'] : ['native', 'wasm'];
      for (const b of order) {
        const r = measure(b, s, rep);
        res[s][b].push(r);
        log(`${label} ${s} ${b} rep ${rep + 1}: ${fmt(r.ms, 0)} ms (CPU ${fmt(r.cpuMs, 0)} ms)`);
      }
    }
    perRep = Date.now() - t0;
  }
  return res;
}

function ratios(pair) {
  const n = pair.native.map((r) => r.ms), w = pair.wasm.map((r) => r.ms);
  const nc = pair.native.map((r) => r.cpuMs), wc = pair.wasm.map((r) => r.cpuMs);
  const k = Math.min(n.length, w.length);
  if (!k) return null;
  return {
    reps: k,
    native: { median: median(n), min: min(n), all: n, cpuMedian: median(nc), cpuAll: nc },
    wasm: { median: median(w), min: min(w), all: w, cpuMedian: median(wc), cpuAll: wc },
    ratioMedian: median(w) / median(n),
    ratioMin: min(w) / min(n),
    ratioCpu: median(wc) / median(nc),
  };
}

// ---- phases -------------------------------------------------------------------
const results = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version, loadavgStart: loadavg() },
  speedtest1: { size: SIZE, testset: 'main' },
};

function nativeCompiler() {
  try {
    const cache = fs.readFileSync(path.join(OUT, 'native/CMakeCache.txt'), 'utf8');
    const cc = /CMAKE_C_COMPILER:\w+=(.*)/.exec(cache)?.[1];
    const flags = /CMAKE_C_FLAGS_RELEASE:\w+=(.*)/.exec(cache)?.[1];
    const v = spawnSync(cc, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
    return `${v} ${flags}`;
  } catch { return 'unknown'; }
}
results.builds = {
  native: nativeCompiler(),
  wasm: `${spawnSync('emcc', ['--version'], { encoding: 'utf8', env: { ...env, NODE_PATH: '/usr/share/nodejs' } }).stdout?.split('\n')[0] || 'emcc'} -O3 -mbulk-memory (Release); Node ${process.version}`,
};

// 1. The script: speedtest1's main set, dumped once by the native build.
const script = path.join(TMP, 'speedtest1-main.sql');
if (!SKIP.has('script') || env.FERRY_BENCH_VARIANTS === '1') {
  log(`speedtest1: dumping the main set (--size ${SIZE}) as one SQL script`);
  run('native', 'speedtest1', ['--ferry-store', 'memory', '--testset', 'main', '--size', String(SIZE),
    '--script', script, 'ferry-bench-speedtest1-db'], { timeoutMs: 120_000 });
  results.speedtest1.scriptBytes = fs.statSync(script).size;
}

// Time kept back for the phases after the speedtest1 ones.
const RESERVE = (SKIP.has('node') ? 0 : 15_000) + (SKIP.has('browser') ? 0 : 45_000)
  + (env.FERRY_BENCH_VARIANTS === '1' ? 120_000 : 0);

if (!SKIP.has('script')) {
  const raw = alternate('script', ['memory', 'file'],
    (b, s, rep) => runScript(b, s, script, { hash: rep === 0 }),
    { reserveMs: RESERVE + (SKIP.has('speedtest1') ? 0 : 60_000) });
  results.script = {};
  for (const [s, pair] of Object.entries(raw)) {
    const hashes = new Set([...pair.native, ...pair.wasm].map((r) => r.hash).filter(Boolean));
    const last = pair.wasm[0] || pair.native[0];
    results.script[s] = {
      ...ratios(pair),
      sameDatabase: hashes.size === 1, hash: [...hashes].join(','), dbBytes: last?.dbSize,
      commits: last?.commits, bytesToStore: last?.bytes,
      osBytes: { native: median(pair.native.map((r) => r.osBytes)), wasm: median(pair.wasm.map((r) => r.osBytes)) },
      storeMs: { native: median(pair.native.map((r) => r.storeMs)), wasm: median(pair.wasm.map((r) => r.storeMs)) },
    };
  }
}

// Warm-up: the runs above are each the first in a fresh process, as
// speedtest1 runs; V8 first runs wasm with its baseline compiler and tiers
// hot functions up while they run. Three runs in one process show the cost.
if (!SKIP.has('script') && !SKIP.has('warm')) {
  const raw = alternate('warm (3 runs per process)', ['memory'], (b) => {
    const rs = runScriptReps(b, 'memory', script, { reps: 3 });
    return { ms: rs[0].ms, cpuMs: rs[0].cpuMs, runs: rs };
  }, { reps: 2, reserveMs: RESERVE + (SKIP.has('speedtest1') ? 0 : 60_000) });
  const pick = (pair, b, k) => pair[b].flatMap((x) => x.runs.slice(k[0], k[1]));
  const pair = raw.memory;
  if (pair.native.length && pair.wasm.length) {
    const cold = { native: pick(pair, 'native', [0, 1]), wasm: pick(pair, 'wasm', [0, 1]) };
    const warm = { native: pick(pair, 'native', [1, 3]), wasm: pick(pair, 'wasm', [1, 3]) };
    results.warm = { processes: pair.native.length, cold: ratios(cold), warm: ratios(warm) };
  }
}

if (!SKIP.has('speedtest1')) {
  const raw = alternate('speedtest1', ['memory', 'file'], (b, s) => runSpeedtest(b, s),
    { reps: Math.max(1, Math.min(REPS, 3)), reserveMs: RESERVE });
  results.direct = {};
  for (const [s, pair] of Object.entries(raw)) {
    const r = ratios(pair);
    if (!r) continue;
    // Per-test ratios (medians), to show where wasm loses most.
    const ids = Object.keys(pair.native[0]?.tests || {});
    const perTest = ids.map((id) => {
      const n = median(pair.native.map((x) => x.tests[id]?.ms ?? NaN));
      const w = median(pair.wasm.map((x) => x.tests[id]?.ms ?? NaN));
      return { id, name: pair.native[0].tests[id].name, native: n, wasm: w, ratio: n > 0 ? w / n : null };
    });
    results.direct[s] = { ...r, perTest, commits: pair.native[0]?.commits, bytesToStore: pair.native[0]?.bytes };
  }
}

// 2. Durable one-row commits in Node ('file'; 'memory' for the call overhead).
if (!SKIP.has('node')) {
  const { open } = await import(BINDINGS ? pathToFileURL(path.join(BINDINGS, 'index.js')).href : '../bindings/index.js');
  const { commitBench } = await import('./pages/commit-bench.js');
  const selfWrites = () => Number(/write_bytes: (\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'))?.[1] ?? NaN);
  results.node = [];
  for (const storage of ['file', 'memory']) {
    const r = await commitBench(open, {
      storage, name: `bench_${storage}`, path: path.join(TMP, `commit-${storage}.db`), n: COMMITS,
      osBytes: storage === 'file' ? async () => selfWrites() : undefined,
    });
    results.node.push({ where: 'node', ...r });
    log(`node ${storage}: commit p50 ${fmt(r.latency.p50, 3)} ms, p90 ${fmt(r.latency.p90, 3)} ms`);
  }
}

// 3. The same in headless Chromium: IndexedDB (window and worker), OPFS (worker).
if (!SKIP.has('browser')) {
  if (left() < 30_000) {
    log('browser: skipped (time bound)');
  } else {
    try {
      const { browserBench } = await import('./browser.mjs');
      const b = await browserBench({ root: ROOT, bindings: BINDINGS, n: COMMITS, timeoutMs: Math.min(120_000, left() - 10_000), log });
      results.browser = b;
      for (const r of b.results) log(`chromium ${r.where} ${r.storage || r.what}: p50 ${fmt(r.latency.p50, 3)} ms, p90 ${fmt(r.latency.p90, 3)} ms`);
    } catch (e) {
      results.browser = { error: String(e?.message || e) };
      log(`browser: FAILED: ${e?.message || e}`);
    }
  }
}

// 4. Flag variants (opt-in): the script on the memory store, per variant.
if (env.FERRY_BENCH_VARIANTS === '1') {
  const names = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
    .map((f) => /^runsql-(\w+?)(\.js)?$/.exec(f)?.[1]).filter(Boolean);
  const wasmV = [...new Set(names(WASM))].sort(), nativeV = [...new Set(names(NATIVE))].sort();
  results.variants = { wasm: {}, native: {} };
  const vreps = Math.max(1, Number(env.FERRY_BENCH_VARIANT_REPS || 3));
  for (let rep = 0; rep < vreps && left() > 20_000; rep++) {
    for (const [build, list] of [['native', nativeV], ['wasm', wasmV]]) {
      for (const v of list) {
        if (left() < 20_000) break;
        // memsys5: SQLite's allocator over one 128 MiB heap (runsql --heap)
        const extra = v === 'memsys5' ? ['--heap', '128'] : [];
        const r = runScript(build, 'memory', script, { prog: `runsql-${v}`, hash: rep === 0, extra });
        (results.variants[build][v] ||= []).push(r);
        log(`variant ${build} ${v} rep ${rep + 1}: ${fmt(r.ms, 0)} ms (CPU ${fmt(r.cpuMs, 0)} ms)${r.hash ? ` hash ${r.hash}` : ''}`);
      }
    }
  }
}

results.machine.loadavgEnd = loadavg();
if (background.length) {
  const w = background.reduce((a, b) => a + b.wall, 0);
  results.machine.backgroundCores = background.reduce((a, b) => a + b.others * b.wall, 0) / w;
  results.machine.backgroundCoresMax = Math.max(...background.map((b) => b.others));
}
results.elapsedMs = Date.now() - started;

// ---- report -------------------------------------------------------------------
const lines = [];
const p = (s = '') => lines.push(s);
p(`ferry bench, ${results.date}: ${results.machine.cpus} cores (${results.machine.cpu}), Node ${process.version}, load average ${results.machine.loadavgStart} -> ${results.machine.loadavgEnd}`);
p(`native: ${results.builds.native}; wasm: ${results.builds.wasm}`);
if (BINDINGS) p(`commit benchmarks use the bindings in ${BINDINGS} (FERRY_BENCH_BINDINGS)`);
if (results.machine.backgroundCores != null) {
  const bg = results.machine.backgroundCores;
  p(`other processes used ${fmt(bg)} cores on average (at most ${fmt(results.machine.backgroundCoresMax)}) during the speedtest1 runs${bg > 0.25 ? ': the machine was BUSY, figures are disturbed' : ''}`);
}
p();
if (results.script || results.direct) {
  p(`speedtest1 main set, --size ${SIZE}: wasm/native time (same SQLite, same options; medians and minima of alternating runs)`);
  p();
  p('| method | store | reps | native wall (ms) | wasm wall (ms) | wasm/native wall, medians | wall, minima | native CPU (ms) | wasm CPU (ms) | wasm/native CPU |');
  p('|---|---|---|---|---|---|---|---|---|---|');
  for (const [method, key] of [['one SQL script (runsql)', 'script'], ['speedtest1 itself', 'direct']]) {
    for (const [s, r] of Object.entries(results[key] || {})) {
      if (!r?.reps) continue;
      p(`| ${method} | ${s} | ${r.reps} | ${fmt(r.native.median, 0)} | ${fmt(r.wasm.median, 0)} | **${fmt(r.ratioMedian)}** | ${fmt(r.ratioMin)} | ${fmt(r.native.cpuMedian, 0)} | ${fmt(r.wasm.cpuMedian, 0)} | **${fmt(r.ratioCpu)}** |`);
    }
  }
  if (results.warm?.warm) {
    const { cold, warm, processes } = results.warm;
    p(`| one SQL script, warm: runs 2-3 in one process | memory | ${warm.reps} (${processes} processes) | ${fmt(warm.native.median, 0)} | ${fmt(warm.wasm.median, 0)} | **${fmt(warm.ratioMedian)}** | ${fmt(warm.ratioMin)} | ${fmt(warm.native.cpuMedian, 0)} | ${fmt(warm.wasm.cpuMedian, 0)} | **${fmt(warm.ratioCpu)}** |`);
    p(`| (the same processes, run 1: cold) | memory | ${cold.reps} | ${fmt(cold.native.median, 0)} | ${fmt(cold.wasm.median, 0)} | ${fmt(cold.ratioMedian)} | ${fmt(cold.ratioMin)} | ${fmt(cold.native.cpuMedian, 0)} | ${fmt(cold.wasm.cpuMedian, 0)} | ${fmt(cold.ratioCpu)} |`);
  }
  p('(wall: elapsed time of the timed work; CPU: CPU time of the thread running it, which a busy machine disturbs far less; file store: fsync waits are wall time only)');
  p();
  for (const [s, r] of Object.entries(results.script || {})) {
    if (!r?.reps) continue;
    p(`script on ${s}: same database from both builds: ${r.sameDatabase ? 'yes' : 'NO'} (FNV-1a ${r.hash}, ${r.dbBytes} bytes); ` +
      `${r.commits} commits, ${fmt(r.bytesToStore / 2 ** 20, 1)} MiB to the store` +
      (s === 'file' ? `, OS write_bytes native ${fmt(r.osBytes.native / 2 ** 20, 1)} MiB / wasm ${fmt(r.osBytes.wasm / 2 ** 20, 1)} MiB, time in the store native ${fmt(r.storeMs.native, 0)} ms / wasm ${fmt(r.storeMs.wasm, 0)} ms` : ''));
  }
  const worst = (results.direct?.memory?.perTest || []).filter((t) => t.native >= 20).sort((a, b) => b.ratio - a.ratio).slice(0, 5);
  if (worst.length) p(`largest per-test ratios (speedtest1 itself, memory): ${worst.map((t) => `${t.id} ${t.name.trim()} ${fmt(t.ratio)}x`).join('; ')}`);
  p();
}
const commitRows = [...(results.node || []), ...(results.browser?.results || [])];
if (commitRows.length) {
  p(`durable one-row commit (await db.exec('INSERT …')), ${COMMITS} commits after 20 warm-up${results.browser?.chromium ? `; Chromium ${results.browser.chromium}${results.browser.crossOriginIsolated ? ' (cross-origin isolated: 5 us timer)' : ''}` : ''}`);
  p();
  p('| where | storage | p50 (ms) | p90 (ms) | bytes to storage per commit (typical / mean) | calls per commit | commits rewriting page 1 | OS write_bytes per commit |');
  p('|---|---|---|---|---|---|---|---|');
  for (const r of commitRows) {
    const what = r.storage || r.what;
    const bytes = r.bytesPerCommit ? `${r.bytesPerCommit.p50} / ${fmt(r.bytesPerCommit.amortized, 0)}` : '-';
    const calls = r.perCommit ? Object.entries(r.perCommit).filter(([k, v]) => typeof v === 'number' && v).map(([k, v]) => `${fmt(v, 2)} ${k}`).join(', ') : '-';
    const b0 = r.block0Share != null && r.bytesPerCommit?.amortized ? `${fmt(100 * r.block0Share, 0)}%` : '-';
    p(`| ${r.where} | ${what} | ${fmt(r.latency.p50, 3)} | ${fmt(r.latency.p90, 3)} | ${bytes} | ${calls || '-'} | ${b0} | ${r.osBytesPerCommit != null ? fmt(r.osBytesPerCommit, 0) : '-'} |`);
  }
  p();
}
if (results.browser?.error) p(`browser: FAILED: ${results.browser.error}\n`);
if (results.variants) {
  p('flag variants (one SQL script, memory store; all variants interleaved in each repetition; ratios to the native base variant):');
  p();
  p('| build | variant | reps | wall median (ms) | wall min (ms) | CPU median (ms) | CPU min (ms) | vs native base (CPU medians) | (CPU minima) | same database |');
  p('|---|---|---|---|---|---|---|---|---|---|');
  const base = results.variants.native.base || [];
  const nbc = base.length ? median(base.map((r) => r.cpuMs)) : null, nbm = base.length ? min(base.map((r) => r.cpuMs)) : null;
  const hashes = new Set(Object.values(results.variants).flatMap((b) => Object.values(b).flat()).map((r) => r.hash).filter(Boolean));
  for (const build of ['native', 'wasm']) {
    for (const [v, rs] of Object.entries(results.variants[build])) {
      const cs = rs.map((r) => r.cpuMs), ws = rs.map((r) => r.ms);
      const h = rs.find((r) => r.hash)?.hash;
      p(`| ${build} | ${v} | ${rs.length} | ${fmt(median(ws), 0)} | ${fmt(min(ws), 0)} | ${fmt(median(cs), 0)} | ${fmt(min(cs), 0)} | ${nbc ? fmt(median(cs) / nbc) : '-'} | ${nbm ? fmt(min(cs) / nbm) : '-'} | ${h ? (hashes.size === 1 ? 'yes' : h) : '-'} |`);
    }
  }
  p();
}
p(`elapsed ${fmt(results.elapsedMs / 1000, 0)} s`);
const report = lines.join('\n');
fs.mkdirSync(OUT, { recursive: true });
fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(results, null, 1));
fs.writeFileSync(path.join(OUT, 'results.md'), `${report}\n`);
console.log(report);
console.log(`\n(written to ${path.relative(ROOT, OUT)}/results.json and results.md)`);
