// Load benchmark (issue 13): simulated devices against the sync server on
// each backend, bounded in count and time, loopback only.
//
//   node bench/load.mjs [--devices 200] [--seconds 60] [--objects 100000] [--configs sqlite,pg1,pg2]
//
// Configurations: `sqlite` (one process, the embedded default), `pg1` (one
// process on PostgreSQL), `pg2` (two processes on one PostgreSQL, each
// request to one of them at random). PostgreSQL: FERRY_BENCH_POSTGRES=<url>,
// or a throwaway cluster this run starts with scripts/pg.sh.
//
// First, per configuration, the initial pull of `objects` seeded objects by
// one client (raw protocol pages of 5,000, JSON parsed), timed. Then the
// devices, each with its own client id: every ~1 s (jittered) it pushes 1-3
// small changes (its own Reading objects, sometimes a shared one), and every
// ~3 s it pulls Reading from its cursor. Reported: requests and mutations per
// second, push and pull latency p50/p99, errors (any non-2xx or failed
// request; goal 0), and each server process's RSS over the run (goal: flat).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { LOAD_MODEL } from './load-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '60' },
    objects: { type: 'string', default: '100000' },
    configs: { type: 'string', default: 'sqlite,pg1,pg2' },
  },
});
const DEVICES = Number(args.devices);
const SECONDS = Number(args.seconds);
const OBJECTS = Number(args.objects);
const CONFIGS = args.configs.split(',');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-load-'));
let pgUrl = process.env.FERRY_BENCH_POSTGRES || '';
let pgDir = null;
const cleanup = () => {
  if (pgDir) { try { execFileSync('bash', [path.join(here, '..', 'scripts', 'pg.sh'), 'stop', pgDir], { stdio: 'ignore' }); } catch { /* gone */ } pgDir = null; }
  fs.rmSync(tmp, { recursive: true, force: true });
};
process.on('exit', cleanup);
if (!pgUrl && CONFIGS.some((c) => c.startsWith('pg'))) {
  pgDir = path.join(tmp, 'pg');
  pgUrl = execFileSync('bash', [path.join(here, '..', 'scripts', 'pg.sh'), 'start', pgDir], { encoding: 'utf8' }).trim();
}

/** The URL of a fresh schema of the benchmark's PostgreSQL. */
let schemas = 0;
async function freshSchema() {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  const name = `load_${process.pid}_${++schemas}`;
  await c.query(`CREATE SCHEMA ${name}`);
  await c.end();
  const u = new URL(pgUrl);
  u.searchParams.set('options', `-c search_path=${name}`);
  return u.toString();
}

function run(dataDir, backend, extra = []) {
  const child = spawn(process.execPath, [path.join(here, 'load-server.mjs'), dataDir, JSON.stringify(backend), ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.trim()); });
    child.once('exit', (code) => reject(new Error(`load server exited with ${code}`)));
  });
  return { child, line };
}

const rssOf = (pid) => {
  try { return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024; } catch { return NaN; }
};
/** The least-squares slope of samples taken once a second, in units per minute (a leak shows as a steady slope). */
function slopePerMinute(xs) {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = (n - 1) / 2;
  const my = xs.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  xs.forEach((y, x) => { num += (x - mx) * (y - my); den += (x - mx) ** 2; });
  return (num / den) * 60;
}
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN; };

async function post(url, route, body) {
  const res = await fetch(`${url}/sync/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${route} ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

async function initialPull(urls) {
  const t0 = performance.now();
  let cursor = 0;
  let n = 0;
  for (let more = true; more;) {
    const page = await post(urls[0], 'pull', { clientId: 'initial-pull-000001', modelVersion: LOAD_MODEL.version, entity: 'Item', cursor, limit: 5000 });
    n += page.objects.length;
    ({ cursor, more } = page);
  }
  return { ms: performance.now() - t0, n };
}

async function load(urls, pids) {
  const stats = { push: [], pull: [], errors: 0, errorSamples: [], mutations: 0 };
  const rss = pids.map(() => []);
  const sampler = setInterval(() => pids.forEach((pid, i) => rss[i].push(rssOf(pid))), 1000);
  const end = Date.now() + SECONDS * 1000;
  let seed = 42;
  const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const pick = () => urls[Math.floor(random() * urls.length)];
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const device = async (i) => {
    const clientId = `load-device-${String(i).padStart(6, '0')}`;
    let mid = 0;
    let cursor = 0;
    let nextPull = Date.now() + random() * 3000;
    await sleep(random() * 1000);
    while (Date.now() < end) {
      const count = 1 + Math.floor(random() * 3);
      const mutations = [];
      for (let k = 0; k < count; k++) {
        const id = random() < 0.1 ? `shared-${Math.floor(random() * 20)}` : `r-${i}-${Math.floor(random() * 50)}`;
        mutations.push({ mid: ++mid, entity: 'Reading', id, op: 'upsert', changed: ['device', 'value', 'note'], values: { device: clientId, value: mid, note: `reading ${mid}` }, base: 0, ts: Date.now() });
      }
      const t0 = performance.now();
      try {
        await post(pick(), 'push', { clientId, modelVersion: LOAD_MODEL.version, ackedMid: mid - count, mutations });
        stats.push.push(performance.now() - t0);
        stats.mutations += count;
      } catch (e) {
        stats.errors++;
        if (stats.errorSamples.length < 3) stats.errorSamples.push(e.message);
      }
      if (Date.now() >= nextPull) {
        nextPull = Date.now() + 2000 + random() * 2000;
        const t1 = performance.now();
        try {
          for (let more = true; more;) {
            const page = await post(pick(), 'pull', { clientId, modelVersion: LOAD_MODEL.version, entity: 'Reading', cursor, limit: 1000 });
            ({ cursor, more } = page);
          }
          stats.pull.push(performance.now() - t1);
        } catch (e) {
          stats.errors++;
          if (stats.errorSamples.length < 3) stats.errorSamples.push(e.message);
        }
      }
      await sleep(700 + random() * 600);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: DEVICES }, (_, i) => device(i)));
  const wall = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  return {
    wall,
    rps: (stats.push.length + stats.pull.length) / wall,
    mps: stats.mutations / wall,
    pushP50: pct(stats.push, 0.5), pushP99: pct(stats.push, 0.99),
    pullP50: pct(stats.pull, 0.5), pullP99: pct(stats.pull, 0.99),
    requests: stats.push.length + stats.pull.length + stats.errors,
    errors: stats.errors, errorSamples: stats.errorSamples,
    // Flat means: after the first quarter of the run (warm-up: pools, JIT, caches), RSS stops growing.
    rss: rss.map((xs) => ({ first: xs[0], warm: xs[Math.floor(xs.length / 4)], max: Math.max(...xs), last: xs[xs.length - 1], slope: slopePerMinute(xs.slice(Math.floor(xs.length / 4))) })),
  };
}

const results = [];
for (const config of CONFIGS) {
  const dataDir = path.join(tmp, config);
  const backend = config === 'sqlite' ? 'sqlite' : { postgres: await freshSchema() };
  const procs = config === 'pg2' ? 2 : 1;
  const seeded = run(dataDir, backend, ['seed', String(OBJECTS)]);
  await seeded.line;
  await new Promise((r) => seeded.child.once('exit', r));
  const servers = Array.from({ length: procs }, (_, k) => run(procs > 1 ? `${dataDir}-${k}` : dataDir, backend));
  const urls = await Promise.all(servers.map((s) => s.line));
  try {
    const first = await initialPull(urls);
    const r = await load(urls, servers.map((s) => s.child.pid));
    results.push({ config, first, ...r });
    const fmt = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
    console.log(`${config}: initial pull ${first.n} objects ${fmt(first.ms)} ms; ${DEVICES} devices ${SECONDS} s: ${fmt(r.rps)} req/s, ${fmt(r.mps)} mutations/s, `
      + `push p50/p99 ${fmt(r.pushP50)}/${fmt(r.pushP99)} ms, pull p50/p99 ${fmt(r.pullP50)}/${fmt(r.pullP99)} ms, errors ${r.errors}/${r.requests}, `
      + `RSS MB ${r.rss.map((x) => `${fmt(x.first)}, ${fmt(x.warm)} at a quarter, ${fmt(x.max)} max, ${fmt(x.last)} last, ${fmt(x.slope)} MB/min after`).join(' | ')}${r.errorSamples.length ? `; e.g. ${r.errorSamples[0]}` : ''}`);
  } finally {
    for (const s of servers) s.child.kill('SIGKILL');
  }
}
console.log(JSON.stringify({ devices: DEVICES, seconds: SECONDS, objects: OBJECTS, load: os.loadavg()[0], results }));
