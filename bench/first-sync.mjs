#!/usr/bin/env node
// A new device's first sync of N objects (issue 11, "Fast first sync"),
// client only: three ways to get the same data into a Node process, each in
// a fresh process, against replayed server replies (so the server's page
// building is not in anyone's time):
//
//   rows      ferry, storage 'file': open() + sync(), a pull and an insert of every object
//   snapshot  ferry, storage 'file': open({ snapshot: true }) + sync(), the
//             server's ready SQLite file (GET /sync/snapshot) copied into the store,
//             then a first pull with nothing left to pull
//   naive     fetch + JSON.parse + @sqlite.org/sqlite-wasm inserts (a prepared
//             statement, one transaction per page), in memory (the peer has
//             no file storage in Node), of the same pages
//
// The replies are recorded once from a reference server seeded with the
// 7-attribute objects of bench/sync.mjs (its server in its own process,
// stopped before the runs); the snapshot's build on that server is timed
// too. The replay server runs in this process. Reported per way: wall time
// (median of --reps), the process's CPU, RSS before and at its peak (VmHWM).
//
//   node bench/first-sync.mjs [--objects 1000000] [--reps 1]   (FERRY_BENCH_ONLY=first-sync npm run bench)
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SQLITE_WASM, installSqliteWasm } from './peer.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PEER = SQLITE_WASM;
const rssOf = () => {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)[1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
};

// ---- a child: one way, once -------------------------------------------------

async function child(way, url, dir, peerDir) {
  let count;
  let run;
  if (way === 'naive') {
    const { default: init } = await import(path.join(peerDir, 'node_modules', PEER.name, 'dist', 'node.mjs'));
    const sqlite3 = await init();
    run = async () => {
      const db = new sqlite3.oo1.DB(':memory:');
      db.exec('CREATE TABLE Item(id TEXT PRIMARY KEY, name TEXT, note TEXT, qty INTEGER, price TEXT, active INTEGER, at TEXT)');
      const st = db.prepare('INSERT OR REPLACE INTO Item VALUES (?, ?, ?, ?, ?, ?, ?)');
      let cursor = 0;
      for (let more = true; more;) {
        const res = await fetch(`${url}/sync/pull`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ clientId: 'c-naive', modelVersion: '1', entity: 'Item', cursor, limit: 5000 }),
        });
        const page = JSON.parse(await res.text());
        db.exec('BEGIN');
        for (const o of page.objects) {
          const v = o.values;
          st.bind([o.id, v.name, v.note, v.qty, v.price, v.active ? 1 : 0, v.at]).stepReset();
        }
        db.exec('COMMIT');
        cursor = page.cursor;
        more = page.more;
      }
      st.finalize();
      count = db.selectValue('SELECT count(*) FROM Item');
      db.close();
    };
  } else {
    const { open } = await import(path.join(HERE, '..', 'bindings', 'index.js'));
    const warm = await open({ name: 'warm', storage: 'memory' });
    await warm.close();
    run = async () => {
      const db = await open({
        name: 'first', storage: 'file', path: path.join(dir, `${way}-${process.pid}.db`), server: `${url}/sync`,
        syncOnOpen: false, snapshot: way === 'snapshot', onSnapshotError: (e) => { throw e; },
      });
      const r = await db.sync();
      if (r.error) throw new Error(`sync failed: ${r.error.message}`);
      [{ n: count }] = await db.query('SELECT count(*) AS n FROM Item');
      await db.close();
    };
  }
  const before = rssOf().rss;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ way, ms, cpuMs: (cpu.user + cpu.system) / 1000, rssBefore: before, rssPeak: rssOf().peak, count })}\n`);
}

// ---- the parent ---------------------------------------------------------------

async function main() {
  const { values: o } = parseArgs({ options: { objects: { type: 'string', default: '1000000' }, reps: { type: 'string', default: '1' } } });
  const N = Number(o.objects);
  const REPS = Number(o.reps);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-first-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

  // The peer, at its pinned version, in a project of its own.
  const peerDir = path.join(dir, 'peer');
  const inst = installSqliteWasm(peerDir);
  const ways = ['rows', 'snapshot'];
  if (inst.ok) ways.push('naive');
  else console.error(`bench: first-sync: ${PEER.name} did not install (${inst.error}); the naive pipeline is skipped`);

  // Record what a reference server answers.
  let t = performance.now();
  const server = fork(path.join(HERE, 'sync-server.mjs'), [path.join(dir, 'server'), String(N)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const origin = await new Promise((resolve) => server.stdout.on('data', (d) => resolve(String(d).trim())));
  const seedMs = performance.now() - t;
  const model = await (await fetch(`${origin}/sync/model`)).text();
  const pages = new Map();
  let bytes = 0;
  let last = 0;
  for (let cursor = 0, more = true; more;) {
    const text = await (await fetch(`${origin}/sync/pull`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: 'c-record', modelVersion: '1', entity: 'Item', cursor, limit: 5000 }),
    })).text();
    const page = JSON.parse(text);
    pages.set(cursor, Buffer.from(text));
    bytes += text.length;
    cursor = page.cursor;
    more = page.more;
    last = cursor;
  }
  t = performance.now();
  const snapRes = await fetch(`${origin}/sync/snapshot`);
  const image = path.join(dir, 'image.sqlite');
  fs.writeFileSync(image, Buffer.from(await snapRes.arrayBuffer()));
  const buildMs = performance.now() - t;
  const imageSha = snapRes.headers.get('x-ferry-snapshot-sha256');
  server.kill();

  const replay = http.createServer((req, res) => {
    const route = new URL(req.url, 'http://x').pathname;
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body = null;
      if (route === '/sync/model') body = model;
      else if (route === '/sync/pull') {
        const { cursor } = JSON.parse(Buffer.concat(chunks));
        // From the end (where a snapshot leaves a device): nothing more.
        body = pages.get(cursor) ?? (cursor >= last ? JSON.stringify({ modelVersion: '1', entity: 'Item', cursor, more: false, objects: [], removed: [] }) : null);
      }
      if (route === '/sync/snapshot') {
        res.writeHead(200, { 'content-type': 'application/vnd.sqlite3', 'content-length': fs.statSync(image).size, 'x-ferry-snapshot-sha256': imageSha });
        fs.createReadStream(image).pipe(res);
        return;
      }
      if (body === null) { res.writeHead(404, { 'content-type': 'application/json' }); res.end('{"error":"not_found"}'); return; }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise((r) => replay.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${replay.address().port}`;

  const results = Object.fromEntries(ways.map((w) => [w, []]));
  for (let rep = 0; rep < REPS; rep++) {
    const order = ways.map((_, i) => ways[(i + rep) % ways.length]);
    for (const way of order) {
      const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', way, url, dir, peerDir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d) => { out += d; });
      const code = await new Promise((r) => p.on('exit', r));
      if (code !== 0) throw new Error(`${way} failed (exit ${code})`);
      const r = JSON.parse(out.trim().split('\n').pop());
      if (r.count !== N) throw new Error(`${way} ended with ${r.count} of ${N} objects`);
      results[way].push(r);
      console.error(`bench: first-sync: ${way} ${(r.ms / 1000).toFixed(2)} s, peak RSS ${(r.rssPeak / 2 ** 20).toFixed(0)} MiB`);
    }
  }
  replay.close();
  const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
  const mib = (b) => (b / 2 ** 20).toFixed(0);
  console.log(`first sync of ${N.toLocaleString('en')} objects, client only (${(bytes / 1e6).toFixed(1)} MB of pull replies, snapshot ${(fs.statSync(image).size / 1e6).toFixed(1)} MB), ${REPS} rep(s), ${new Date().toISOString()}, load ${os.loadavg()[0].toFixed(2)}`);
  console.log(`server: seeding ${(seedMs / 1000).toFixed(1)} s, the snapshot's first build and download ${(buildMs / 1000).toFixed(1)} s`);
  console.log('| way | wall s (median) | CPU s | RSS before → peak MiB | wall vs naive |');
  console.log('|---|---|---|---|---|');
  const naive = results.naive ? med(results.naive.map((r) => r.ms)) : null;
  for (const way of ways) {
    const rs = results[way];
    const ms = med(rs.map((r) => r.ms));
    console.log(`| ${way} | ${(ms / 1000).toFixed(2)} | ${(med(rs.map((r) => r.cpuMs)) / 1000).toFixed(2)} | ${mib(med(rs.map((r) => r.rssBefore)))} → ${mib(med(rs.map((r) => r.rssPeak)))} | ${naive ? (ms / naive).toFixed(2) : '—'} |`);
  }
  console.log(JSON.stringify({ objects: N, replyBytes: bytes, imageBytes: fs.statSync(image).size, seedMs, buildMs, results }));
}

if (process.argv[2] === '--child') await child(...process.argv.slice(3));
else await main();
