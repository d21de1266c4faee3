#!/usr/bin/env node
// Builds the demo PWA's service worker: <web>/sw.js, a build output (never
// committed). service-worker/demo.js (Workbox's modules and ferry/sw) is
// bundled into one classic script with Vite, and workbox-build's
// injectManifest writes the precache manifest into it: every file of the
// app shell, the files of web/ (served at '/') and the browser modules and
// the wasm of bindings/ (served at '/bindings/'), each with its SHA-256 as
// revision and integrity (the browser checks it when the worker installs).
// Any changed byte changes the manifest, so the worker's script, which is
// what makes the browser install a new version; its `version` (a hash of
// the manifest, service-worker/version.js) names the version's cache.
//
//   node scripts/build-web.mjs [--web web] [--bindings bindings] [--out <web>/sw.js]
//                              [--runtime /path/ ...]
//
// --runtime names a path prefix whose fetch() GETs the worker caches
// (stale-while-revalidate); without it only the precache and subresources
// (styles, scripts, images, fonts) are cached, never an API's answers.
//
// Run after the wasm build (scripts/build.sh). Modules that only run in
// Node (a static import of a node: built-in) are left out.
//
// Where index.html holds the markers <!-- ferry:modulepreload --> and
// <!-- /ferry:modulepreload -->, the lines between them become a
// <link rel="modulepreload"> for every module its module scripts import
// statically, to any depth: the browser then fetches the whole graph at
// once instead of one level of imports per round trip.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sha256Integrity } from '../service-worker/integrity.js';
import { manifestVersion } from '../service-worker/version.js';
import { bundleOne } from './bundle-one.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WORKER_NAME = 'sw.js';
const DEMO_WORKER = path.join(root, 'service-worker', 'demo.js');
// What builds before this one wrote (the manifest the hand-written worker
// imported): stale, so never precached, and removed when a worker is written.
const OLD_MANIFEST = 'precache-manifest.js';

const WEB_EXT = new Set(['.html', '.js', '.mjs', '.css', '.json', '.webmanifest', '.png', '.svg', '.ico', '.wasm', '.txt', '.woff2']);
const BINDINGS_EXT = new Set(['.js', '.mjs', '.wasm']);
// A static import of a node: built-in (a guarded dynamic import() is fine).
const NODE_ONLY = /^\s*import\s+(?:[^'"()]*\sfrom\s*)?['"]node:/m;

function walk(dir, rel = '') {
  const out = [];
  for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    if (ent.name.startsWith('.')) continue;
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.isDirectory()) out.push(...walk(dir, r));
    else if (ent.isFile()) out.push(r);
  }
  return out;
}

const STATIC_IMPORT = /^\s*(?:import|export)\s+(?:[^'"()]*?\sfrom\s*)?['"]([^'"]+)['"]/gm;
const PRELOAD_START = '<!-- ferry:modulepreload -->';
const PRELOAD_END = '<!-- /ferry:modulepreload -->';

/**
 * The URLs (site paths) of every module index.html's module scripts import
 * statically, to any depth, in the order first reached; the scripts
 * themselves are not listed. Bare specifiers and other origins are skipped.
 */
export function moduleGraph({ web, bindings, html }) {
  const file = (url) => (url.startsWith('/bindings/') ? path.join(bindings, url.slice('/bindings/'.length)) : path.join(web, url.slice(1)));
  const roots = [...html.matchAll(/<script\s+type="module"\s+src="([^"]+)"/g)].map((m) => m[1]).filter((u) => u.startsWith('/'));
  const seen = new Set(roots);
  const order = [];
  const visit = (url) => {
    let text;
    try { text = fs.readFileSync(file(url), 'utf8'); } catch { return; }
    for (const [, spec] of text.matchAll(STATIC_IMPORT)) {
      if (!spec.startsWith('/') && !spec.startsWith('.')) continue;
      const next = new URL(spec, `http://x${url}`).pathname;
      if (seen.has(next)) continue;
      seen.add(next);
      order.push(next);
      visit(next);
    }
  };
  for (const r of roots) visit(r);
  return order;
}

/** Rewrites the modulepreload block of <web>/index.html (if it has one) when it changed. */
function writeModulePreloads(web, bindings) {
  const index = path.join(web, 'index.html');
  const html = fs.readFileSync(index, 'utf8');
  const start = html.indexOf(PRELOAD_START);
  const end = html.indexOf(PRELOAD_END);
  if (start < 0 || end < start) return;
  const indent = html.slice(html.lastIndexOf('\n', start) + 1, start);
  const links = moduleGraph({ web, bindings, html }).map((u) => `${indent}<link rel="modulepreload" href="${u}">\n`).join('');
  const next = `${html.slice(0, start + PRELOAD_START.length)}\n${links}${indent}${html.slice(end)}`;
  if (next !== html) fs.writeFileSync(index, next);
}

/** The browser modules and the wasm of `bindings`, as precache entries under /bindings/. */
function bindingEntries(bindings) {
  const out = [];
  for (const rel of walk(bindings)) {
    if (!BINDINGS_EXT.has(path.extname(rel))) continue;
    const buf = fs.readFileSync(path.join(bindings, rel));
    if (path.extname(rel) !== '.wasm' && NODE_ONLY.test(buf.toString('utf8'))) continue;
    const digest = crypto.createHash('sha256').update(buf).digest();
    out.push({ url: `/bindings/${rel}`, revision: digest.toString('hex'), integrity: `sha256-${digest.toString('base64')}`, size: buf.length });
  }
  return out;
}

/**
 * Bundles a service worker that imports Workbox and ferry/sw (this
 * checkout's) into one classic script, `self.__WB_MANIFEST` left for
 * injectManifest; `define` adds constants. -> the script's text
 */
export async function bundleWorker(entry, { define = {} } = {}) {
  const code = await bundleOne(entry, {
    format: 'iife',
    name: 'ferryWorker',
    alias: { 'ferry/sw': path.join(root, 'service-worker', 'index.js') },
    // Workbox's modules keep their development logging behind process.env.NODE_ENV.
    define: { 'process.env.NODE_ENV': '"production"', ...define },
  });
  return `// Built by scripts/build-web.mjs from ${path.relative(root, entry).split(path.sep).join('/')} with Workbox (MIT, Google LLC) and ferry/sw; do not edit.\n${code}`;
}

/**
 * Builds the demo's service worker with its precache manifest (or, with
 * write false, only works the manifest out).
 * @param {object} [options] web, bindings, out (the worker, <web>/sw.js), write, runtime (path prefixes the worker caches at run time)
 * @returns {Promise<{ version, entries: [{ url, revision, integrity, sha256, size }], shell, offline, runtime, file }>}
 */
export async function buildWeb({ web = path.join(root, 'web'), bindings = path.join(root, 'bindings'), out, write = true, runtime = [] } = {}) {
  if (!Array.isArray(runtime) || !runtime.every((p) => typeof p === 'string' && p.startsWith('/'))) {
    throw new Error(`runtime routes are path prefixes starting with '/' (got ${JSON.stringify(runtime)})`);
  }
  web = path.resolve(web);
  bindings = path.resolve(bindings);
  out = path.resolve(out || path.join(web, WORKER_NAME));
  const wasm = path.join(bindings, 'dist', 'ferry-core.wasm');
  if (!fs.existsSync(wasm)) throw new Error(`${path.relative(root, wasm)} is missing: build the wasm first (bash scripts/build.sh)`);
  if (!fs.existsSync(path.join(web, 'index.html'))) throw new Error(`${web} has no index.html`);
  if (write) writeModulePreloads(web, bindings);

  // Loaded here: moduleGraph() alone needs none of workbox-build.
  const { getManifest, injectManifest } = await import('workbox-build');
  let entries = null;
  const fromBindings = bindingEntries(bindings);
  const config = {
    globDirectory: web,
    globPatterns: [`**/*.{${[...WEB_EXT].map((e) => e.slice(1)).join(',')}}`],
    globIgnores: [OLD_MANIFEST, path.relative(web, out).split(path.sep).join('/')],
    // Site paths: web/ is served at '/'.
    modifyURLPrefix: { '': '/' },
    // Nothing is left out for its size: a shell missing a file does not work offline.
    maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
    manifestTransforms: [
      sha256Integrity(web),
      (manifest) => {
        const all = [...manifest, ...fromBindings].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
        entries = all.map((e) => ({ ...e }));   // workbox-build deletes each entry's size afterwards
        return { manifest: all };
      },
    ],
  };
  let warnings;
  if (write) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-sw-'));
    try {
      const swSrc = path.join(tmp, WORKER_NAME);
      fs.writeFileSync(swSrc, await bundleWorker(DEMO_WORKER, { define: { __FERRY_RUNTIME__: JSON.stringify(runtime) } }));
      const swDest = `${out}.tmp-${process.pid}`;
      ({ warnings } = await injectManifest({ ...config, globIgnores: [...config.globIgnores, path.basename(swDest)], swSrc, swDest }));
      if (warnings.length === 0) fs.renameSync(swDest, out);
      else fs.rmSync(swDest, { force: true });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    if (warnings.length === 0) fs.rmSync(path.join(web, OLD_MANIFEST), { force: true });
  } else {
    ({ warnings } = await getManifest(config));
  }
  if (warnings.length) throw new Error(`workbox-build: ${warnings.join('; ')}`);
  return {
    version: manifestVersion(entries),
    shell: '/index.html',
    offline: entries.some((e) => e.url === '/offline.html') ? '/offline.html' : null,
    runtime,
    entries: entries.map(({ url, revision, integrity, size }) => ({ url, revision, integrity, sha256: revision, size })),
    file: out,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
  const args = process.argv.slice(2);
  const opts = { runtime: [] };
  for (let i = 0; i < args.length; i++) {
    const [k, v] = args[i].includes('=') ? args[i].split(/=(.*)/s) : [args[i], args[++i]];
    if (k === '--web') opts.web = v;
    else if (k === '--bindings') opts.bindings = v;
    else if (k === '--out') opts.out = v;
    else if (k === '--runtime') opts.runtime.push(v);
    else {
      console.error(`build-web: unknown option ${k}\nusage: node scripts/build-web.mjs [--web dir] [--bindings dir] [--out file] [--runtime /path/ ...]`);
      process.exit(2);
    }
  }
  try {
    const m = await buildWeb(opts);
    const kib = Math.round(m.entries.reduce((s, e) => s + e.size, 0) / 1024);
    console.log(`precache: ${m.entries.length} files, ${kib} KiB, version ${m.version} -> ${path.relative(process.cwd(), m.file)}`);
  } catch (e) {
    console.error(`build-web: ${e.message}`);
    process.exit(1);
  }
}
