#!/usr/bin/env node
// What an app downloads and installs (issue 12, Measure): ferry's npm
// package against the peers' (`@sqlite.org/sqlite-wasm`, `wa-sqlite`) in one
// run. ferry is packed from this tree (`npm pack`; bindings/dist must be
// built) and installed into a new project in the OS temp dir; each peer is
// installed at its pinned version from the npm registry into a project of
// its own. Reported: the package's tarball, its installed bytes (the sum of
// its files' sizes) and files, the installed bytes with its dependencies
// (optional peers, e.g. ferry's Workbox, are not installed), and each
// WebAssembly module raw, gzip'd (level 9, what most static servers send)
// and brotli'd (quality 11). Nothing is kept: the temp dir is removed; the
// figures go to stdout and build/bench/package-size.json.
//
//   node bench/package-size.mjs            (FERRY_BENCH_ONLY=size npm run bench)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { SQLITE_WASM } from './peer.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The peers' versions: the newest on the registry at the time of the run in
// BENCHMARKS.md (the registry's 'latest' tag of @sqlite.org/sqlite-wasm
// still names 3.41.2; wa-sqlite has published only 1.0.0 there).
const PEERS = { [SQLITE_WASM.name]: SQLITE_WASM.version, 'wa-sqlite': '1.0.0' };

function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000, env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Every file under dir (symlinks not followed). */
function files(dir) {
  const out = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...files(p));
    else if (ent.isFile()) out.push(p);
  }
  return out;
}

const bytesOf = (list) => list.reduce((s, f) => s + fs.statSync(f).size, 0);

function newProject(work, name) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `size-${name}`, private: true, type: 'module' }));
  return dir;
}

/** The figures of package `name` installed in `project`. */
function measure(project, name, tarball) {
  const pkgDir = path.join(project, 'node_modules', ...name.split('/'));
  const own = files(pkgDir);
  const all = files(path.join(project, 'node_modules')).filter((f) => !f.includes(`${path.sep}.package-lock.json`));
  const wasm = own.filter((f) => f.endsWith('.wasm')).sort().map((f) => {
    const raw = fs.readFileSync(f);
    return {
      file: path.relative(pkgDir, f).split(path.sep).join('/'),
      bytes: raw.length,
      gzip: zlib.gzipSync(raw, { level: 9 }).length,
      brotli: zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
    };
  });
  const { version } = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const deps = fs.readdirSync(path.join(project, 'node_modules')).filter((d) => !d.startsWith('.'))
    .flatMap((d) => (d.startsWith('@') ? fs.readdirSync(path.join(project, 'node_modules', d)).map((s) => `${d}/${s}`) : [d]))
    .filter((d) => d !== name);
  return {
    name, version, tarball: fs.statSync(tarball).size,
    installed: bytesOf(own), files: own.length, withDependencies: bytesOf(all), dependencies: deps, wasm,
  };
}

function main() {
  if (!fs.existsSync(path.join(ROOT, 'bindings', 'dist', 'ferry-core.wasm'))) {
    throw new Error('bindings/dist/ferry-core.wasm is missing: run `bash scripts/build.sh` first');
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-size-'));
  try {
    const flags = ['--no-audit', '--no-fund', '--ignore-scripts'];
    // --ignore-scripts: the tree as built (prepack would rebuild the wasm).
    const [ferryPack] = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT));
    const ferryTgz = path.join(work, ferryPack.filename);
    const ferryProject = newProject(work, 'ferry');
    run('npm', ['install', ferryTgz, ...flags], ferryProject);
    const results = [measure(ferryProject, 'ferry', ferryTgz)];
    for (const [name, version] of Object.entries(PEERS)) {
      const project = newProject(work, name.replace(/[@/]/g, '_'));
      const [pack] = JSON.parse(run('npm', ['pack', `${name}@${version}`, '--json', '--pack-destination', work], project));
      const tgz = path.join(work, pack.filename);
      run('npm', ['install', tgz, ...flags], project);
      results.push(measure(project, name, tgz));
    }
    report(results);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const kb = (n) => `${(n / 1000).toFixed(1)} kB`;

function report(results) {
  const lines = [
    `package sizes (node ${process.version}, npm ${run('npm', ['--version'], ROOT).trim()}, ${new Date().toISOString()})`,
    '',
    '| package | tarball | installed (files) | with dependencies | wasm | wasm gzip -9 | wasm brotli 11 |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const wasm = r.wasm.length ? r.wasm : [{ file: '-', bytes: 0, gzip: 0, brotli: 0 }];
    wasm.forEach((w, i) => {
      const head = i === 0
        ? `| ${r.name} ${r.version} | ${kb(r.tarball)} | ${kb(r.installed)} (${r.files}) | ${kb(r.withDependencies)}${r.dependencies.length ? ` (+ ${r.dependencies.join(', ')})` : ''} `
        : '| | | | ';
      lines.push(`${head}| ${w.file}: ${kb(w.bytes)} | ${kb(w.gzip)} | ${kb(w.brotli)} |`);
    });
  }
  console.log(lines.join('\n'));
  const out = path.join(ROOT, 'build', 'bench');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'package-size.json'), `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
}

main();
