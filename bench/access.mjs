// Access-check benchmark (issue 9; npm run bench runs it): the first pull of
// 100,000 objects through a per-user filter and a push of 10,000 changes,
// with the server's access checks and without, in one run.
//
// Servers (each in its own process on 127.0.0.1, the client is this
// checkout's bindings on 'file' storage for all of them):
//   after   this checkout, filter `owner = $user.id`: an access rule, so
//           pushes are checked before and after each write and removals
//           come from the exits;
//   scope   this checkout, filter `owner = 'alice'`: the same SQL with the
//           same parameter, but it names no user, so it only scopes
//           downloads: the checks are all that differs from `after`;
//   base    the commit before the checks (d666266^, extracted and built by
//           scripts/bench.sh under build/bench/access-base with the
//           product's flags), filter `owner = $user.id`: everything the
//           checks commit and the ones after it changed on the server.
// The user (alice) may read 100,000 of the 120,000 objects; every sixth is
// bob's, and was alice's before it changed hands (so `after` has 20,000
// exits to go through; the others list those ids from the page). The push is 5,000 updates of a non-filter attribute of alice's
// objects and 5,000 new objects of hers, in one local transaction; the
// client sends them as it always does (batches of 500).
//
// Each repetition starts every server from a copy of its seeded data, and
// the servers' order alternates between repetitions so drift falls on all.
//
//   FERRY_BENCH_ACCESS_REPS (5)  FERRY_BENCH_ACCESS_READABLE (100000)
//   FERRY_BENCH_ACCESS_OTHERS (20000)  FERRY_BENCH_ACCESS_CHANGES (10000)
//   FERRY_BENCH_ACCESS_BASE_DIR: a source tree with bindings/dist built (the base server); none: no base
//   FERRY_BENCH_ACCESS_PROFILE=<dir>: each server writes a V8 CPU profile there (<dir>/<config>/)
//   FERRY_BENCH_ACCESS_NODE_FLAGS: flags for the servers' node (e.g. --single-threaded: V8's
//     compiler and GC work on the main thread, so process CPU is the work itself)
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../bindings/index.js';
import { ENTITY, OWNER, note } from './access-server.mjs';

const env = (k, d) => Number(process.env[k] || d);
const REPS = env('FERRY_BENCH_ACCESS_REPS', 5);
const READABLE = env('FERRY_BENCH_ACCESS_READABLE', 100_000);
const OTHERS = env('FERRY_BENCH_ACCESS_OTHERS', 20_000);
const CHANGES = env('FERRY_BENCH_ACCESS_CHANGES', 10_000);
const deadline = Number(process.env.FERRY_BENCH_DEADLINE || 0);

const here = path.dirname(fileURLToPath(import.meta.url));
const helper = path.join(here, 'access-server.mjs');
const headServer = path.join(here, '..', 'server', 'index.js');
const baseDir = process.env.FERRY_BENCH_ACCESS_BASE_DIR;
const profileDir = process.env.FERRY_BENCH_ACCESS_PROFILE && path.resolve(process.env.FERRY_BENCH_ACCESS_PROFILE);
const nodeFlags = (process.env.FERRY_BENCH_ACCESS_NODE_FLAGS || '').split(/\s+/).filter(Boolean);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-access-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

const configs = [
  { name: 'after', what: 'access checks (this checkout, owner = $user.id)', server: headServer, where: 'owner = $user.id', template: 'head' },
  { name: 'scope', what: "no checks: this checkout, owner = 'alice' (not an access rule)", server: headServer, where: `owner = '${OWNER}'`, template: 'head' },
];
if (baseDir && fs.existsSync(path.join(baseDir, 'bindings', 'dist', 'ferry-core.wasm'))) {
  configs.push({ name: 'base', what: 'no checks: d666266^ (before the checks commit), owner = $user.id', server: path.join(baseDir, 'server', 'index.js'), where: 'owner = $user.id', template: 'base' });
} else {
  console.error('access: no base build (FERRY_BENCH_ACCESS_BASE_DIR); comparing with the same-code baseline only');
}

function startServer(cfg, dataDir, extra = []) {
  const execArgv = profileDir && !extra.length ? ['--cpu-prof', '--cpu-prof-dir', path.join(profileDir, cfg.name)] : [];
  execArgv.push(...nodeFlags);
  const child = fork(helper, [cfg.server, dataDir, cfg.where, ...extra], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], execArgv });
  const first = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.trim()); });
    child.once('exit', (code) => reject(new Error(`access server (${cfg.name}) exited with ${code}`)));
  });
  return { child, first };
}

const cpuOf = (child) => new Promise((resolve) => { child.once('message', resolve); child.send({ cpu: true }); });

// One data set per server code: each seeds its own layout.
const templates = {};
for (const cfg of configs) {
  if (templates[cfg.template]) continue;
  const t = path.join(dir, `template-${cfg.template}`);
  const { first } = startServer(cfg, t, ['seed', String(READABLE), String(OTHERS)]);
  await first;
  templates[cfg.template] = t;
}

async function once(cfg, rep) {
  const run = path.join(dir, `${cfg.name}-${rep}`);
  fs.cpSync(templates[cfg.template], path.join(run, 'server'), { recursive: true });
  const { child, first } = startServer(cfg, path.join(run, 'server'));
  const url = await first;
  let pushReqMs = 0;
  // A reply's headers go out once the server has done its work (it sends
  // the body with a content-length in one piece), so this times the server.
  const timedFetch = async (u, init) => {
    const t0 = performance.now();
    const res = await fetch(u, init);
    if (String(u).endsWith('/push')) pushReqMs += performance.now() - t0;
    return res;
  };
  const db = await open({
    name: `access-${cfg.name}-${rep}`, storage: 'file', path: path.join(run, 'client.db'), server: `${url}/sync`,
    syncOnOpen: false, fetch: timedFetch, headers: () => ({ authorization: `Bearer ${OWNER}` }),
  });
  try {
    let cpu0 = await cpuOf(child);
    let t = performance.now();
    const pull = await db.sync();
    const pullMs = performance.now() - t;
    let cpu1 = await cpuOf(child);
    const pullCpu = cpu1.cpu - cpu0.cpu;
    const pullMain = cpu1.main - cpu0.main;
    const [{ n }] = await db.query(`SELECT count(*) AS n FROM ${ENTITY}`);
    if (n !== READABLE || pull.errors?.length) throw new Error(`${cfg.name}: pulled ${pull.pulled}, table has ${n} (expected ${READABLE}); errors ${JSON.stringify(pull.errors)}`);

    const updates = Math.floor(CHANGES / 2);
    const ids = await db.query(`SELECT id FROM ${ENTITY} ORDER BY id LIMIT ?`, [updates]);
    await db.transaction(async (tx) => {
      for (const { id } of ids) await tx.exec(`UPDATE ${ENTITY} SET qty = qty + 1 WHERE id = ?`, [id]);
      for (let i = 0; i < CHANGES - updates; i++) {
        const o = note(1_000_000 + i, OWNER);
        await tx.exec(`INSERT INTO ${ENTITY}(id, owner, name, note, qty, price, active, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          [o.id, o.owner, o.name, o.note, o.qty, o.price, o.active ? 1 : 0, o.at]);
      }
    });
    cpu0 = await cpuOf(child);
    t = performance.now();
    const pushed = await db.sync();
    const pushMs = performance.now() - t;
    cpu1 = await cpuOf(child);
    const pushCpu = cpu1.cpu - cpu0.cpu;
    const pushMain = cpu1.main - cpu0.main;
    if (pushed.pushed !== CHANGES || pushed.errors?.length || (await db.syncErrors()).length) {
      throw new Error(`${cfg.name}: pushed ${pushed.pushed} of ${CHANGES}; errors ${JSON.stringify(pushed.errors)}`);
    }
    return { pullMs, pullCpu, pullMain, pushMs, pushReqMs, pushCpu, pushMain };
  } finally {
    await db.close();
    child.disconnect();
    await new Promise((resolve) => { if (child.exitCode !== null) resolve(); else child.once('exit', resolve); });
    fs.rmSync(run, { recursive: true, force: true });
  }
}

// The client's first round in this process runs on V8's baseline tiers: not timed.
await once(configs[0], 'warm-up');
const samples = Object.fromEntries(configs.map((c) => [c.name, []]));
const loadStart = os.loadavg()[0];
let reps = 0;
for (let rep = 0; rep < REPS; rep++) {
  if (deadline && reps > 0 && Date.now() + 30_000 * configs.length > deadline) {
    console.error(`access: stopped after ${reps} repetitions (FERRY_BENCH_DEADLINE)`);
    break;
  }
  const order = rep % 2 === 0 ? configs : [...configs].reverse();
  for (const cfg of order) samples[cfg.name].push(await once(cfg, rep));
  reps++;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const METRICS = [
  ['pullMs', 'first pull, client wall (ms)'],
  ['pullCpu', 'first pull, server CPU (ms)'],
  ['pullMain', 'first pull, server main thread CPU (ms)'],
  ['pushMs', `push of ${CHANGES} changes, sync() wall (ms)`],
  ['pushReqMs', 'push requests alone, wall (ms)'],
  ['pushCpu', 'push sync(), server CPU (ms)'],
  ['pushMain', 'push sync(), server main thread CPU (ms)'],
];
const med = Object.fromEntries(configs.map((c) => [c.name, Object.fromEntries(METRICS.map(([k]) => [k, median(samples[c.name].map((s) => s[k]))]))]));
const baselines = configs.filter((c) => c.name !== 'after');
// Paired: after/baseline within each repetition, then the median of those.
const paired = (b, k) => median(samples.after.map((s, i) => s[k] / samples[b][i][k]));

const lines = [];
lines.push(`access checks: ${READABLE.toLocaleString('en')} readable of ${(READABLE + OTHERS).toLocaleString('en')} objects, push of ${CHANGES.toLocaleString('en')} changes, ${reps} repetitions, load ${loadStart.toFixed(2)} -> ${os.loadavg()[0].toFixed(2)}`);
for (const c of configs) lines.push(`  ${c.name}: ${c.what}`);
lines.push('');
lines.push(`| figure | ${configs.map((c) => `${c.name} median`).join(' | ')} | ${baselines.map((b) => `after/${b.name} (medians; paired)`).join(' | ')} |`);
lines.push(`|---|${configs.map(() => '---').join('|')}|${baselines.map(() => '---').join('|')}|`);
for (const [k, label] of METRICS) {
  lines.push(`| ${label} | ${configs.map((c) => med[c.name][k].toFixed(0)).join(' | ')} | ${baselines.map((b) => `${(med.after[k] / med[b.name][k]).toFixed(3)}; ${paired(b.name, k).toFixed(3)}`).join(' | ')} |`);
}
console.log(lines.join('\n'));
console.log(JSON.stringify({ readable: READABLE, others: OTHERS, changes: CHANGES, reps, medians: med, samples }));
