// The randomized, seeded convergence test. A sync server (createSyncServer,
// an authenticate hook for `authorization: Bearer <user>`, no authorize hook:
// the per-user filter of Item is the access rule) behind a loopback fault proxy; 4 device
// processes (fixtures/device.js, file databases, 2 users) spawned in one tick
// and released by one signal, so they open their databases in the same
// moment; each runs a random workload from seed + its index (inserts with and
// without ids, updates, deletes, transactions, full and selective syncs,
// faults per request, offline spells, a dead server URL, reopen, sync-error
// retry/discard, writes during a sync, trespasses: Items written for the
// other user or given away to them); devices ask to be SIGKILLed during
// writes and syncs and are restarted on the same database; this process
// writes and deletes on the server meanwhile. Then heal: no faults, every
// device resolves its sync errors and syncs, round after round, until two
// rounds in a row are quiet (nothing pushed, pulled, removed, no conflict).
//
// Invariants (each violation names the invariant, entity, id and values):
//   convergence   every device, and a fresh device per user, holds exactly the
//                 server's live objects that its user may see, byte-exact
//   nothing-lost  - every attribute value on the server was written for that
//                   object by some device (a write that may have committed) or
//                   by the server-side writer
//                 - every committed create (acknowledged, or found after a
//                   restart) of an object nobody deleted exists on the server,
//                   unless its creator discarded a sync error of it
//                 - an attribute that only one writer ever wrote holds that
//                   writer's last committed value (or a later unanswered try)
//                 - no lost update: the server does not hold a value (written
//                   once for that attribute, so it names its write) that an
//                   acknowledged later write had seen and replaced (objects with
//                   a retried sync error, and writers that discarded one, exempt)
//                 - no spurious conflict: an edit made after its writer had seen
//                   the server's value (written once) does not lose to it
//                 - retrySyncError does not replace an edit made after the conflict
//                 - after heal: no pending changes, no sync errors; no rejection
//                   of the (valid) writes; no failed local write, except the
//                   documented refusal of a string with U+0000 (code 'type',
//                   on devices and in srv.write), which must leave nothing of
//                   the write anywhere
//   unique-ids    generated ids are unique (no two inserts share one; no insert
//                 fails on a generated id that exists); client ids are unique
//                 and stable across restarts
//   files         every file reference a device holds opens, on that device,
//                 bytes that hash to it (files put on Tags and Items with
//                 db.files.put, uploaded and downloaded on their own queue)
//   per-user      no device holds an Item of another user; no trespass
//                 reached the server (its unique text is on no Item there)
//   mutation-ids  (audited at the proxy) no mutation is answered as a duplicate
//                 of a mid the server never applied or applied to another object,
//                 and none is applied twice
//   heal          every device gets quiet within the bounded number of rounds
//
// runConvergence(seed) -> { ok, seed, violations, stats, report }
// CLI: node tests/node/convergence.js [seed]   (exit 0 pass, 1 fail)
// Environment: FERRY_SEED (the test file), FERRY_OPS (ops per device, 70), FERRY_FILES=1 (files too),
// FERRY_DEVICES (4), FERRY_BULK (none|push|pull: override the seed's choice),
// FERRY_KILLS=0, FERRY_SERVER_WRITES=0, FERRY_KEEP=1 (keep the databases and
// side logs of a passing seed too; FERRY_KEEP=0: not even of a failing one),
// FERRY_TRACE=1 (every request and reply in trace.jsonl). Investigation only, to look past a known defect:
// FERRY_STAGGER_MS=<ms> (devices open that far apart) and
// FERRY_AVOID=nul,bigint,selective (leave out NUL strings, integers near
// 2^53, selective syncs).
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { open } from '../../bindings/index.js';
import { createSyncServer } from './backend.js';
import { startConvergenceProxy, deadUrl } from './fixtures/convergence-proxy.js';
import { MODEL, USERS, ENTITIES, attrsOf, plainAttrs, visibleTo, Rng, mix, valueFor, bulkValues, canon, show, setAvoid } from './convergence-lib.js';

const DEVICE = fileURLToPath(new URL('./fixtures/device.js', import.meta.url));
const HEAL_ROUNDS = 12;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Per-seed choices that are not per device. */
export function configFor(seed, env = process.env) {
  const rng = new Rng(mix(seed, 0xc0ffee));
  // Byte-size stress: a device writes a batch of large objects (push), or the server does (pull).
  const bulk = env.FERRY_BULK || rng.weighted({ none: 80, push: 10, pull: 10 });
  return {
    devices: Number(env.FERRY_DEVICES) || 4,
    ops: Number(env.FERRY_OPS) || 70,
    bulk,
    kills: env.FERRY_KILLS !== '0',
    serverWrites: env.FERRY_SERVER_WRITES !== '0',
    // Investigation knobs, off by default: the test starts every device in the same moment.
    stagger: Number(env.FERRY_STAGGER_MS) || 0,
    avoid: (env.FERRY_AVOID || '').split(',').filter(Boolean),
  };
}

function authenticate(req) {
  const m = /^Bearer (\w+)$/.exec(req.headers.authorization || '');
  return m && USERS.includes(m[1]) ? { id: m[1] } : null;
}

// ---- devices ----------------------------------------------------------------------

class Device {
  constructor(world, i) {
    this.world = world;
    this.i = i;
    this.user = USERS[i % USERS.length];
    this.dbPath = path.join(world.dir, `device${i}.db`);
    this.logPath = path.join(world.dir, `device${i}.log`);
    this.waiters = new Map();
    this.lives = 0;
    this.kills = [];
    this.crashes = 0;
    this.stderr = '';
    this.done = new Promise((r) => { this.markDone = r; });
  }

  spawn(resume) {
    const { world } = this;
    const cfg = {
      index: this.i, user: this.user, seed: world.seed + this.i, dbPath: this.dbPath, logPath: this.logPath,
      url: `${world.proxy.url}/sync`, deadUrl: world.deadUrl, ops: world.cfg.ops, kills: world.cfg.kills,
      bulk: world.cfg.bulk === 'push' && this.i === 1 ? { op: Math.floor(world.cfg.ops / 3), count: 450 } : null,
      stagger: world.cfg.stagger, avoid: world.cfg.avoid, resume,
    };
    const child = fork(DEVICE, [JSON.stringify(cfg)], { serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.child = child;
    this.lives++;
    this.killing = false;
    child.stdout.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    child.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    child.on('message', (m) => this.onMessage(m));
    child.on('error', (e) => { this.stderr += `\n(ipc: ${e.message})`; });
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    return child;
  }

  onMessage(m) {
    if (m.type === 'kill-me') {
      const child = this.child;
      this.kills.push(`${m.during}@${m.n}`);
      setTimeout(() => {
        if (this.child !== child || child.exitCode !== null) return;
        this.killing = true;
        child.kill('SIGKILL');
      }, m.delay);
      return;
    }
    if (m.type === 'done') this.markDone();
    const list = this.waiters.get(m.type);
    if (list?.length) list.shift()(m);
  }

  onExit(child, code, signal) {
    if (child !== this.child) return;
    this.exited?.();
    if (this.exiting) return;
    if (!this.killing) {
      this.crashes++;
      this.world.violation('device-crash', `device ${this.i} (${this.user}) exited by itself (code ${code}, signal ${signal}) in life ${this.lives}: ${this.stderr.trim().split('\n').slice(-6).join(' | ')}`);
      if (this.crashes > 3) {
        this.dead = true;
        this.markDone();
        for (const list of this.waiters.values()) for (const w of list.splice(0)) w(null);
        return;
      }
    }
    if (this.world.stopping) return;
    this.spawn(true);
  }

  expect(type, ms) {
    return new Promise((resolve, reject) => {
      if (this.dead) { reject(new Error(`device ${this.i} crashed too often; gave up`)); return; }
      const timer = setTimeout(() => reject(new Error(`device ${this.i}: no '${type}' within ${ms} ms; output: ${this.stderr.slice(-600)}`)), ms);
      if (!this.waiters.has(type)) this.waiters.set(type, []);
      this.waiters.get(type).push((m) => {
        clearTimeout(timer);
        if (m) resolve(m); else reject(new Error(`device ${this.i} crashed too often; gave up`));
      });
    });
  }

  send(m) {
    if (this.child.connected) this.child.send(m);
  }

  async exit() {
    this.exiting = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => { this.exited = r; });
    this.send({ type: 'exit' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }

  readLog() {
    const out = [];
    for (const line of fs.readFileSync(this.logPath, 'utf8').split('\n')) {
      if (!line) continue;
      try { out.push(JSON.parse(line)); } catch { /* torn by a kill */ }
    }
    return out;
  }
}

// ---- server-side writer ------------------------------------------------------------

function toProtocol(entity, vals) {
  const out = {};
  for (const [a, v] of Object.entries(vals)) {
    out[a] = v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v;
  }
  return out;
}

/**
 * Large objects from the server: few enough for the server's page limit
 * (5,000 objects) but more bytes than a device takes in one reply (32 MiB).
 */
async function serverBulk(world) {
  const rng = new Rng(mix(world.seed, 0xb01c));
  for (let c = 0; c < 9; c++) {
    const objs = [];
    for (let j = 0; j < 95; j++) {
      const id = `srv-bulk.${c * 100 + j}`;
      const vals = bulkValues(rng, 'Tag', `s.bulk.${c}.${j}`);
      objs.push({ id, ...toProtocol('Tag', vals) });
      world.serverWrites.push({ op: 'create', e: 'Tag', id, vals, t: Date.now() });
    }
    await world.srv.write('Tag', objs);
    for (const w of world.serverWrites.slice(-objs.length)) w.okT = Date.now();
  }
}

/** Runs a server-side write; the documented refusal of U+0000 (FerryError 'type') counts as refused, other failures are violations. */
async function serverCall(world, vals, fn) {
  try {
    await fn();
    return true;
  } catch (e) {
    const nul = Object.values(vals || {}).some((x) => typeof x === 'string' && x.includes('\u0000'));
    if (nul && e.code === 'type' && /U\+0000/.test(e.message)) world.serverRefused++;
    else world.violation('server', `a server-side write failed: ${e.code}: ${e.message}`);
    return false;
  }
}

async function serverWriter(world) {
  const { srv, seed } = world;
  const rng = new Rng(mix(seed, 0x5e5e));
  let k = 0;
  while (!world.stopWriter) {
    await sleep(rng.range(30, 200));
    if (world.stopWriter) break;
    k++;
    const e = rng.weighted({ Tag: 35, Task: 35, Item: 30 });
    const kind = rng.weighted({ create: 35, update: 55, remove: 10 });
    const live = (await srv.db.query(`SELECT id FROM "${e}" WHERE _ferry_deleted = 0 ORDER BY id`)).map((r) => r.id);
    const target = () => (rng.chance(0.5) ? rng.pick(live.slice(0, 4)) : rng.pick(live));   // the devices' hot objects too
    if (kind === 'create' || !live.length) {
      const id = `srv-${k}`;
      const vals = {};
      for (const a of Object.keys(attrsOf(e))) vals[a] = valueFor(rng, e, a, `s.${k}`);
      if (e === 'Item') vals.owner = rng.pick(USERS);
      const t = Date.now();
      if (await serverCall(world, vals, () => srv.write(e, [{ id, ...toProtocol(e, vals) }]))) {
        world.serverWrites.push({ op: 'create', e, id, vals, t, okT: Date.now() });
      }
    } else if (kind === 'update') {
      const id = target();
      const vals = {};
      for (const a of rng.subset(plainAttrs(e).filter((x) => x !== 'owner'))) vals[a] = valueFor(rng, e, a, `s.${k}`);
      const t = Date.now();
      const [row] = await srv.db.query(`SELECT * FROM "${e}" WHERE id = ?`, [id]);
      if (await serverCall(world, vals, () => srv.write(e, [{ id, ...toProtocol(e, vals) }]))) {
        const prev = {};
        for (const a of Object.keys(vals)) prev[a] = row[a];
        world.serverWrites.push({ op: 'update', e, id, vals, prev, t, okT: Date.now() });
      }
    } else {
      const id = target();
      if (await serverCall(world, null, () => srv.remove(e, [id]))) world.serverWrites.push({ op: 'delete', e, id });
    }
  }
}

// ---- the run -------------------------------------------------------------------------

export async function runConvergence(seed, { log = console.log, env = process.env } = {}) {
  const t0 = Date.now();
  const cfg = configFor(seed, env);
  setAvoid(cfg.avoid);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ferry-convergence-${seed}-`));
  const world = {
    seed, cfg, dir, violations: [], serverWrites: [], serverRefused: 0, serverLog: [], stopWriter: false, stopping: false,
    violation(inv, msg) { this.violations.push({ inv, msg }); },
  };
  log('convergence seed', seed);
  log(`  ${cfg.devices} devices, ${cfg.ops} ops each, bulk: ${cfg.bulk}, kills: ${cfg.kills}${cfg.stagger ? `, devices opened ${cfg.stagger} ms apart` : ''}${cfg.avoid.length ? `, avoiding ${cfg.avoid.join(', ')}` : ''}, dir ${dir}`);
  world.srv = await createSyncServer({
    model: MODEL, dataDir: path.join(dir, 'server'), authenticate,
    log: (m) => world.serverLog.push(String(m)),
  });
  world.proxy = await startConvergenceProxy(world.srv.url, env.FERRY_TRACE === '1' ? path.join(dir, 'trace.jsonl') : null);
  world.deadUrl = await deadUrl();
  const devices = Array.from({ length: cfg.devices }, (_, i) => new Device(world, i));
  const stats = { seed, devices: cfg.devices, ops: cfg.ops, bulk: cfg.bulk };
  let reports = [];
  try {
    // All devices start in one tick and wait for one signal, so they open their databases in the same moment.
    const ready = devices.map((d) => d.expect('ready', 60_000));
    for (const d of devices) d.spawn(false);
    await Promise.all(ready);
    for (const d of devices) d.send({ type: 'go' });
    const writer = cfg.serverWrites ? serverWriter(world) : Promise.resolve();
    const workload = Promise.all(devices.map((d) => d.done));
    let timer;
    const timeout = new Promise((r) => { timer = setTimeout(() => r('timeout'), 240_000); });
    const outcome = await Promise.race([workload, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      world.violation('heal', `the workload did not finish in 240 s; last ops: ${devices.map((d) => `device ${d.i}: ${JSON.stringify(d.readLog().filter((r) => r.k === 'op').at(-1))}`).join('; ')}`);
    }
    world.stopWriter = true;
    await writer;
    world.stopping = true;
    if (cfg.bulk === 'pull') await serverBulk(world);

    // ---- heal: no faults, no kills, no server writes; sync until two rounds in a row are quiet.
    world.proxy.faults = false;
    let quietRounds = 0;
    let round = 0;
    const last = [];
    const failing = devices.map(() => ({ error: null, rounds: 0 }));
    let stuck = false;
    while (quietRounds < 2 && round < HEAL_ROUNDS && !stuck) {
      round++;
      let quiet = true;
      for (const d of devices) {
        d.send({ type: 'heal', round });
        const m = await d.expect('healed', 180_000);
        last[d.i] = m;
        const r = m.result;
        if (m.error || m.errors !== 0 || !r || r.pushed || r.pulled || r.removed || r.conflicts || r.errors) quiet = false;
        if (m.files && (m.files.uploads || m.files.downloads)) quiet = false;   // files still to move
        // verify (every verifyEvery-th full sync) repairing during heal, when nobody else writes: the sync path had diverged.
        for (const x of r?.verified || []) {
          if (x.ok === false || x.repaired > 0) {
            quiet = false;
            world.violation('convergence', `device ${d.i}: the verify of heal round ${round} found ${x.entity} differing from the server and repaired ${x.repaired} object(s): the sync path had diverged`);
          }
        }
        const f = failing[d.i];
        const code = m.error && m.error.split(':')[0];
        f.rounds = code && code === f.error ? f.rounds + 1 : code ? 1 : 0;
        f.error = code;
      }
      quietRounds = quiet ? quietRounds + 1 : 0;
      // A device whose every heal sync fails the same way will not get further.
      stuck = failing.some((f) => f.rounds >= 3);
    }
    stats.healRounds = round;
    for (const [i, f] of failing.entries()) {
      if (f.rounds >= 3) world.violation('heal', `device ${i} cannot sync: its last ${f.rounds} heal syncs failed with ${last[i].error}`);
    }
    if (quietRounds < 2) {
      world.violation('heal', `not quiet after ${round} heal rounds; last round: ${last.map((m, i) => `device ${i}: ${m.error ? `sync failed ${m.error.slice(0, 60)}` : JSON.stringify(m.result)}, errors resolved ${m.errors}`).join('; ')}`);
    }
    for (const d of devices) d.send({ type: 'report' });
    reports = await Promise.all(devices.map((d) => d.expect('report', 60_000)));
  } catch (e) {
    world.violation('harness', `${e.stack || e}`);
  } finally {
    world.stopWriter = true;
    world.stopping = true;
    await Promise.all(devices.map((d) => (d.child ? d.exit() : null)));
  }

  try {
    await check(world, devices, reports, stats);
  } catch (e) {
    world.violation('harness', `the checker failed: ${e.stack || e}`);
  }
  await world.proxy.close();
  await world.srv.close();
  stats.seconds = Math.round((Date.now() - t0) / 100) / 10;
  stats.kills = devices.reduce((n, d) => n + d.kills.length, 0);
  stats.faults = world.proxy.counts.faulted;
  stats.requests = world.proxy.counts.requests;
  stats.serverWrites = world.serverWrites.length;
  const ok = world.violations.length === 0;
  // Kept: a failing seed's databases and logs (unless FERRY_KEEP=0), a passing one's with FERRY_KEEP=1 or FERRY_TRACE=1.
  const keep = ok ? env.FERRY_KEEP === '1' || env.FERRY_TRACE === '1' : env.FERRY_KEEP !== '0';
  if (keep) fs.writeFileSync(path.join(dir, 'violations.json'), JSON.stringify({ stats, violations: world.violations }, null, 1));
  else fs.rmSync(dir, { recursive: true, force: true });
  const report = formatReport(seed, world.violations, stats, keep ? dir : null);
  log(report);
  return { ok, seed, violations: world.violations, stats, report };
}

// Report order: problems of the run itself, then root causes before their consequences.
const ORDER = ['harness', 'device-crash', 'heal', 'unique-ids', 'mutation-ids', 'per-user', 'convergence', 'files', 'nothing-lost', 'server'];

function shapeOf(msg) {
  return msg
    .replace(/"(?:[^"\\]|\\.)*"(?: \(\d+ chars, #\w+\))?/g, 'S')
    .replace(/<[^>]*>/g, 'B')
    .replace(/\b(?:[0-9a-f]{32}|c-[0-9a-f]{24}|d\d+-[\w.]+|srv-[\w.]+)\b/g, 'ID')
    .replace(/[-\d.]*\d/g, 'N');
}

function formatReport(seed, violations, stats, keptDir) {
  const head = `convergence seed ${seed}: ${violations.length ? `FAILED, ${violations.length} violation(s)` : 'passed'} `
    + `(${stats.seconds}s, ${stats.kills} kills, faults ${JSON.stringify(stats.faults)}, ${stats.requests} requests, `
    + `${stats.serverWrites} server writes, ${stats.serverObjects ?? '?'} objects on the server, ${stats.refused ?? 0} writes refused for U+0000, ${stats.trespasses ?? 0} trespasses tried, `
    + `heal rounds ${stats.healRounds ?? '?'})`;
  if (!violations.length) return head;
  const byInv = new Map(ORDER.map((inv) => [inv, []]));
  for (const v of violations) {
    if (!byInv.has(v.inv)) byInv.set(v.inv, []);
    byInv.get(v.inv).push(v.msg);
  }
  const lines = [head];
  for (const [inv, msgs] of byInv) {
    if (!msgs.length) continue;
    // One example per kind of message (ids, values and numbers left out), with how often it occurred.
    const kinds = new Map();
    for (const m of msgs) {
      const sig = shapeOf(m);
      if (!kinds.has(sig)) kinds.set(sig, { example: m, n: 0 });
      kinds.get(sig).n++;
    }
    lines.push(`  [${inv}] ${msgs.length} violation(s), ${kinds.size} kind(s)`);
    for (const { example, n } of [...kinds.values()].slice(0, 15)) lines.push(`    - ${n > 1 ? `(${n}x) ` : ''}${example}`);
    if (kinds.size > 15) lines.push(`    … and ${kinds.size - 15} more kinds`);
  }
  lines.push(`  rerun: FERRY_SEED=${seed} node --test tests/node/convergence.test.js   (or: node tests/node/convergence.js ${seed})`);
  if (keptDir) lines.push(`  databases and side logs: ${keptDir}`);
  return lines.join('\n');
}

// ---- the checker ---------------------------------------------------------------------

const key = (e, id) => `${e} ${id}`;

/** Every write of the run, per object: devices' side logs and the server-side writer. */
function history(world, devices) {
  const objs = new Map();
  const obj = (e, id) => {
    const k = key(e, id);
    if (!objs.has(k)) objs.set(k, { e, id, attrs: new Map(), creates: [], deletes: [], discards: new Set(), retried: false, retriedAt: [] });
    return objs.get(k);
  };
  const failed = [];
  let refused = 0;
  const generatedClash = [];
  const generated = new Map();   // id -> [where]
  const lifeIds = new Map();     // device -> Set(clientId)
  const rejections = [];
  const conflicts = [];
  const retries = [];
  const hostile = [];   // { who, e, id, text, where }: writes the server must refuse
  for (const d of devices) {
    const who = `device ${d.i}`;
    const recs = d.readLog();
    const answers = new Map();
    for (const r of recs) if (r.k === 'ok' || r.k === 'fail' || r.k === 'recover') answers.set(r.w, r);
    let order = 0;
    for (const r of recs) {
      if (r.k === 'life') {
        if (!lifeIds.has(d.i)) lifeIds.set(d.i, new Set());
        lifeIds.get(d.i).add(r.clientId);
      } else if (r.k === 'resolve') {
        if (r.how === 'discard') obj(r.e, r.id).discards.add(who);
        if (r.how === 'retry') { obj(r.e, r.id).retried = true; obj(r.e, r.id).retriedAt.push({ who, t: r.t }); }
      } else if (r.k === 'retried') {
        retries.push({ ...r, who });
      } else if (r.k === 'error') {
        if (r.kind === 'rejected') rejections.push({ who, e: r.e, id: r.id, reason: r.reason, text: `${who} ${r.op} ${r.e} ${r.id}: rejected: ${r.reason}` });
        else conflicts.push({ ...r, who });
      } else if (r.k === 'try' && r.hostile) {
        const a = answers.get(r.w);
        if (a?.k === 'fail') continue;   // refused on the device already (an id it holds for another entity)
        for (const o of r.ops) hostile.push({ who, e: o.e, id: o.id, text: o.vals?.text, where: `${who} write ${r.w} (${o.op} of ${o.e} ${o.id} as ${o.vals?.owner})` });
      } else if (r.k === 'try') {
        const a = answers.get(r.w);
        const state = !a ? 'maybe' : a.k === 'ok' ? 'acknowledged' : a.k === 'recover' && a.committed ? 'committed (found after a restart)' : 'none';
        if (a?.k === 'fail') {
          const what = `${who} write ${r.w} (${r.ops.map((o) => `${o.op} ${o.e} ${o.id ?? '(generated id)'}`).join(', ')}) failed: ${a.code}: ${a.msg}`;
          const hasNul = r.ops.some((o) => Object.values(o.vals || {}).some((x) => typeof x === 'string' && x.includes('\u0000')));
          if (a.code === 'constraint' && r.ops.some((o) => o.op === 'insert' && !o.id)) generatedClash.push(`an insert without id failed because ferry generated an id that already exists: ${what}`);
          // The documented refusal (PROTOCOL.md): a string with U+0000 cannot travel, so the write is refused, whole.
          else if (hasNul && a.code === 'type' && /U\+0000/.test(a.msg)) refused++;
          // A file put on an object that a pull removed a moment before: nothing was written.
          else if (a.code === 'gone') { /* nothing */ }
          else failed.push(what);
        }
        if (state === 'none') continue;
        r.ops.forEach((o, k) => {
          const id = o.id ?? a?.ids?.[k] ?? null;
          if (!id) return;   // an insert without id that may or may not have committed, not found after the restart
          const changes = a?.changes?.[k];
          if ((o.op === 'update' || o.op === 'delete') && changes === 0) return;   // the object was not on the device
          const committed = state !== 'maybe';
          const where = `${who} write ${r.w} (${state})`;
          const ob = obj(o.e, id);
          if (o.op === 'insert' && !o.id) {
            if (!generated.has(key(o.e, id))) generated.set(key(o.e, id), []);
            generated.get(key(o.e, id)).push(where);
          }
          if (o.op === 'delete') { ob.deletes.push(where); return; }
          if (o.op === 'insert') ob.creates.push({ who, where, committed });
          for (const [attr, v] of Object.entries(o.vals)) {
            if (!ob.attrs.has(attr)) ob.attrs.set(attr, []);
            const prev = a?.k === 'ok' && a.prev?.[k] && Object.hasOwn(a.prev[k], attr) ? canon(attrsOf(o.e)[attr], a.prev[k][attr]) : undefined;
            ob.attrs.get(attr).push({
              who, where, committed, maybe: !committed, c: canon(attrsOf(o.e)[attr], v), order: order++,
              t: r.t, okT: a?.k === 'ok' ? a.t : a?.k === 'recover' ? Infinity : Infinity, prev,
            });
          }
        });
      }
    }
  }
  let order = 0;
  for (const w of world.serverWrites) {
    const ob = obj(w.e, w.id);
    const where = `server write #${order + 1} (${w.op})`;
    if (w.op === 'delete') { ob.deletes.push(where); order++; continue; }
    if (w.op === 'create') ob.creates.push({ who: 'server', where, committed: true });
    for (const [attr, v] of Object.entries(w.vals)) {
      if (!ob.attrs.has(attr)) ob.attrs.set(attr, []);
      ob.attrs.get(attr).push({
        who: 'server', where, committed: true, c: canon(attrsOf(w.e)[attr], v), order: order++,
        t: w.t, okT: w.okT ?? Infinity, prev: w.prev && Object.hasOwn(w.prev, attr) ? canon(attrsOf(w.e)[attr], w.prev[attr]) : undefined,
      });
    }
  }
  return { objs, failed, refused, generatedClash, generated, lifeIds, rejections, conflicts, retries, hostile };
}

async function serverState(srv) {
  const out = {};
  for (const e of ENTITIES) {
    out[e] = new Map();
    for (const row of await srv.db.query(`SELECT * FROM "${e}" ORDER BY id`)) out[e].set(row.id, row);
  }
  return out;
}

function rowCanon(entity, row) {
  const out = {};
  for (const [a, t] of Object.entries(attrsOf(entity))) out[a] = canon(t, row[a]);
  return out;
}

/** Differences between the rows a replica holds and the server's visible rows. */
function compareReplica(violation, inv, name, user, server, rows) {
  for (const e of ENTITIES) {
    const want = new Map();
    for (const [id, row] of server[e]) if (!row._ferry_deleted && visibleTo(user, e, row)) want.set(id, rowCanon(e, row));
    const have = new Map(rows[e].map((r) => [r.id, rowCanon(e, r)]));
    for (const [id, w] of want) {
      const h = have.get(id);
      if (!h) { violation(inv, `${name} lacks ${e} ${id}, which the server holds (${describeRow(w)})`); continue; }
      for (const a of Object.keys(w)) {
        if (w[a] !== h[a]) violation(inv, `${name}: ${e} ${id}.${a} is ${show(h[a])}, the server holds ${show(w[a])}`);
      }
    }
    for (const [id] of have) {
      if (want.has(id)) continue;
      const s = server[e].get(id);
      const why = !s ? 'the server does not have it' : s._ferry_deleted ? 'the server deleted it' : `it is not visible to ${user}`;
      violation(inv, `${name} holds ${e} ${id}, but ${why}`);
    }
  }
}

const describeRow = (c) => Object.entries(c).map(([a, v]) => `${a}=${show(v)}`).join(', ');

async function check(world, devices, reports, stats) {
  const v = (inv, msg) => world.violation(inv, msg);
  const server = await serverState(world.srv);
  stats.serverObjects = ENTITIES.reduce((n, e) => n + [...server[e].values()].filter((r) => !r._ferry_deleted).length, 0);
  const h = history(world, devices);
  stats.refused = h.refused + world.serverRefused;

  // 1. convergence: every device (and a fresh device per user) holds what the server has for its user.
  for (const [i, r] of reports.entries()) {
    if (!r) continue;
    compareReplica(v, 'convergence', `device ${i} (${devices[i].user})`, devices[i].user, server, r.rows);
  }
  for (const user of USERS) {
    const fresh = await open({
      name: `fresh-${user}`, storage: 'memory', server: `${world.srv.url}/sync`, syncOnOpen: false,
      headers: async () => ({ authorization: `Bearer ${user}` }),
    });
    try {
      await fresh.sync();
      const rows = {};
      for (const e of ENTITIES) rows[e] = await fresh.query(`SELECT * FROM "${e}" ORDER BY id`);
      compareReplica(v, 'convergence', `a fresh device of ${user}`, user, server, rows);
    } catch (e) {
      v('convergence', `a fresh device of ${user} cannot pull the server's data: ${e.code}: ${e.message}`);
    } finally {
      await fresh.close();
    }
  }

  // 2. nothing lost, nothing invented.
  for (const e of ENTITIES) {
    for (const [id, row] of server[e]) {
      if (row._ferry_deleted) continue;
      const ob = h.objs.get(key(e, id));
      if (!ob || !ob.creates.length) {
        v('nothing-lost', `the server holds ${e} ${id}, which no device or server write created${ob ? ` (only updated by ${[...new Set([...ob.attrs.values()].flat().map((x) => x.where))].slice(0, 3).join(', ')})` : ''}`);
        if (!ob) continue;
      }
      const sc = rowCanon(e, row);
      for (const [attr, c] of Object.entries(sc)) {
        const writes = ob.attrs.get(attr) || [];
        if (!writes.some((w) => w.c === c)) {
          const seen = [...new Set(writes.map((w) => w.c))];
          v('nothing-lost', `${e} ${id}.${attr} on the server is ${show(c)}, a value nobody wrote for it; written: ${seen.slice(0, 4).map(show).join(', ')}${seen.length > 4 ? ` (+${seen.length - 4})` : ''}`);
        }
      }
      // An attribute with one writer holds that writer's last committed value.
      if (ob.deletes.length) continue;
      for (const [attr, writes] of ob.attrs) {
        const who = new Set(writes.map((w) => w.who));
        if (who.size !== 1) continue;
        const [writer] = who;
        if (ob.discards.has(writer)) continue;
        const sorted = [...writes].sort((a, b) => a.order - b.order);
        let lastCommitted = -1;
        sorted.forEach((w, k) => { if (w.committed) lastCommitted = k; });
        if (lastCommitted < 0) continue;
        const allowed = sorted.slice(lastCommitted);
        if (!allowed.some((w) => w.c === sc[attr])) {
          const lw = sorted[lastCommitted];
          const earlier = sorted.slice(0, lastCommitted).find((w) => w.c === sc[attr]);
          v('nothing-lost', `${e} ${id}.${attr}: only ${writer} wrote it, its last committed write is ${lw.where} = ${show(lw.c)}, `
            + `but the server holds ${show(sc[attr])}${earlier ? ` (the older ${earlier.where})` : ''}`);
        }
      }
      // No lost update: the server's value was not replaced by an acknowledged write that had seen it,
      // unless someone wrote it again since (or a sync error was retried, which makes old values the latest).
      if (ob.retried) continue;
      for (const [attr, writes] of ob.attrs) {
        const c = sc[attr];
        // Only a value written once identifies the write it came from (null, true, '12.50' … are written often).
        const again = writes.filter((w) => w.c === c);
        if (again.length !== 1 || again[0].maybe) continue;
        const [old] = again;
        const lost = writes.find((w) => w.committed && w.prev === c && w.c !== c && !ob.discards.has(w.who) && old.okT < w.t);
        if (lost) {
          v('nothing-lost', `${e} ${id}.${attr}: ${lost.where} replaced ${show(c)} (which it had seen) by ${show(lost.c)}, `
            + `but the server holds the replaced ${show(c)} again, written once, by ${old.where}, `
            + `${lost.t - old.okT} ms before the replacing edit: the later edit is lost`);
        }
      }
    }
  }
  for (const ob of h.objs.values()) {
    const created = ob.creates.filter((c) => c.committed);
    if (!created.length || ob.deletes.length) continue;
    if (created.some((c) => ob.discards.has(c.who))) continue;
    const row = server[ob.e].get(ob.id);
    if (!row || row._ferry_deleted) {
      v('nothing-lost', `${ob.e} ${ob.id} was created (${created.map((c) => c.where).join(', ')}) and nobody deleted it, but the server ${row ? 'holds a tombstone' : 'does not have it'}`);
    }
  }
  for (const [i, r] of reports.entries()) {
    if (!r) continue;
    if (r.pending !== 0) v('nothing-lost', `device ${i} still has ${r.pending} pending change(s) after heal`);
    // Every file reference a device holds opens the bytes it names, on that device.
    for (const f of r.files || []) v('files', `device ${i}: ${f.e} ${f.id} references ${f.hash.slice(0, 12)}…, but ${f.problem}`);
    if (r.uploads) v('files', `device ${i} still has ${r.uploads} file upload(s) queued after heal`);
    if (r.errors.length) {
      v('nothing-lost', `device ${i} still has ${r.errors.length} sync error(s) after heal: ${r.errors.slice(0, 3).map((x) => `${x.kind} ${x.entity} ${x.id}: ${x.reason}`).join('; ')}`);
    }
    for (const u of r.unexpected) v('harness', `device ${i}: ${u}`);
  }
  // A device's own writes to an object it trespassed on go out with the forbidden write and are refused with it.
  const trespassed = new Set(h.hostile.map((x) => `${x.who} ${x.e} ${x.id}`));
  const reported = new Set();
  for (const r of h.rejections) {
    if (r.reason === 'forbidden' && trespassed.has(`${r.who} ${r.e} ${r.id}`)) continue;
    if (!reported.has(r.text)) v('nothing-lost', `the server rejected a valid write: ${r.text}`);
    reported.add(r.text);
  }
  // A retried sync error puts back the values of the push that failed, never over an edit made since.
  for (const x of h.retries) {
    if (!x.before || !x.after) continue;
    const ob = h.objs.get(key(x.e, x.id));
    for (const [attr, type] of Object.entries(attrsOf(x.e))) {
      // Writing the value an attribute already holds captures nothing (no
      // change to push or keep), so a retry may put the older value back over it.
      const mine = (ob?.attrs.get(attr) || []).filter((w) => w.who === x.who && w.committed && !w.maybe && w.t > x.at && w.okT <= x.t && w.prev !== w.c);
      const newest = mine.at(-1);
      if (!newest) continue;
      const before = canon(type, x.before[attr]);
      const after = canon(type, x.after[attr]);
      if (before === newest.c && after !== newest.c) {
        v('nothing-lost', `${x.who} retried the sync error of ${x.e} ${x.id}: the retry replaced ${attr} = ${show(newest.c)}, `
          + `its edit made after the conflict (${newest.where}), by the older ${show(after)}`);
      }
    }
  }
  // No spurious conflict: an edit made after its writer had seen the server's value does not lose to that value.
  for (const x of h.conflicts) {
    if (x.op !== 'upsert' || !x.server || typeof x.server !== 'object' || !Array.isArray(x.attrs)) continue;
    const ob = h.objs.get(key(x.e, x.id));
    if (!ob) continue;
    // Another device's retry before this conflict sent its old values again as the latest write
    // (it may revive a deleted object with every value it holds), so the server's value is newer.
    if (ob.retriedAt.some((r) => r.who !== x.who && r.t <= x.at)) continue;
    for (const attr of x.attrs) {
      const type = attrsOf(x.e)[attr];
      if (!type || !Object.hasOwn(x.server, attr) || !x.local || !Object.hasOwn(x.local, attr)) continue;
      const sv = canon(type, x.server[attr]);
      const lv = canon(type, x.local[attr]);
      const writes = ob.attrs.get(attr) || [];
      const mine = writes.filter((w) => w.who === x.who && w.c === lv && w.committed && w.prev !== undefined && w.t <= x.at);
      const wr = mine.at(-1);
      if (!wr || wr.prev !== sv || sv === lv) continue;
      // The server's value was written once (so the writer had seen that very write) and before the edit.
      const winner = writes.filter((w) => w.c === sv);
      if (winner.length === 1 && !winner[0].maybe && winner[0].okT < wr.t) {
        v('nothing-lost', `spurious conflict on ${x.e} ${x.id}.${attr} (${MODEL.entities[x.e].conflict || 'last-write-wins'}): ${wr.where} replaced ${show(sv)}, `
          + `which it had seen, by ${show(lv)}, yet the server kept ${show(sv)} (written once, by ${winner[0].where}, before the edit): "${x.reason}"`);
      }
    }
  }
  for (const f of h.failed) v('nothing-lost', `a valid local write failed: ${f}`);
  for (const f of h.generatedClash) v('unique-ids', f);

  // 3. unique ids.
  for (const [k, where] of h.generated) {
    if (where.length > 1) v('unique-ids', `generated id ${k} was given to ${where.length} distinct inserts: ${where.join('; ')}`);
  }
  const byClient = new Map();
  for (const [i, r] of reports.entries()) {
    if (!r) continue;
    if (!byClient.has(r.clientId)) byClient.set(r.clientId, []);
    byClient.get(r.clientId).push(i);
  }
  for (const [cid, list] of byClient) if (list.length > 1) v('unique-ids', `devices ${list.join(', ')} share the client id ${cid}`);
  for (const [i, ids] of h.lifeIds) if (ids.size > 1) v('unique-ids', `device ${i} changed its client id across restarts: ${[...ids].join(', ')}`);

  // 4. per-user data stays with its user: no push changed an Item its user may not write
  // (a trespass's text is unique), no pull delivered one its user may not read.
  for (const x of h.hostile) {
    const row = server[x.e]?.get(x.id);
    if (row && !row._ferry_deleted && x.text !== undefined && row.text === x.text) {
      v('per-user', `${x.where} reached the server: ${x.e} ${x.id} holds its text ${show(x.text)} (owner ${JSON.stringify(row.owner)})`);
    }
  }
  stats.trespasses = h.hostile.length;
  for (const [i, r] of reports.entries()) {
    if (!r) continue;
    for (const row of r.rows.Item) {
      if (row.owner !== devices[i].user) v('per-user', `device ${i} (${devices[i].user}) holds Item ${row.id} owned by ${JSON.stringify(row.owner)}`);
    }
  }

  // The proxy's audit of mutation ids; server errors.
  for (const x of world.proxy.violations) v(x.inv, x.msg);
  for (const m of world.serverLog) if (/failed/.test(m)) v('server', m.split('\n').slice(0, 3).join(' | '));
}

// ---- CLI -------------------------------------------------------------------------------

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const seed = Number(process.argv[2] ?? process.env.FERRY_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const r = await runConvergence(seed);
  process.exit(r.ok ? 0 : 1);
}

