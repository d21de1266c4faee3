#!/usr/bin/env node
// Generates the service worker's precache manifest for the demo PWA:
// <web>/precache-manifest.js, loaded by service-worker/sw.js with
// importScripts(). It lists every file of the app shell with its SHA-256:
// the files of web/ (served at '/') and the browser modules and the wasm of
// bindings/ (served at '/bindings/'). Its `version` is a hash over all of
// them, so any changed byte gives a new version, a new precache and a new
// service worker (the browser compares imported scripts byte for byte).
//
//   node scripts/build-web.mjs [--web web] [--bindings bindings] [--out <web>/precache-manifest.js]
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
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const MANIFEST_NAME = 'precache-manifest.js';

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

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

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

/**
 * Builds the manifest object (and writes it unless write is false).
 * @param {object} [options] web, bindings, out, write, runtime (path prefixes the worker caches at run time)
 * @returns {{ version, entries: [{ url, sha256, size }], shell, offline, runtime, file }}
 */
export function buildWeb({ web = path.join(root, 'web'), bindings = path.join(root, 'bindings'), out, write = true, runtime = [] } = {}) {
  if (!Array.isArray(runtime) || !runtime.every((p) => typeof p === 'string' && p.startsWith('/'))) {
    throw new Error(`runtime routes are path prefixes starting with '/' (got ${JSON.stringify(runtime)})`);
  }
  web = path.resolve(web);
  bindings = path.resolve(bindings);
  out = path.resolve(out || path.join(web, MANIFEST_NAME));
  const wasm = path.join(bindings, 'dist', 'ferry-core.wasm');
  if (!fs.existsSync(wasm)) throw new Error(`${path.relative(root, wasm)} is missing: build the wasm first (bash scripts/build.sh)`);
  if (!fs.existsSync(path.join(web, 'index.html'))) throw new Error(`${web} has no index.html`);
  if (write) writeModulePreloads(web, bindings);

  const entries = [];
  const add = (base, dir, rel) => {
    const buf = fs.readFileSync(path.join(dir, rel));
    entries.push({ url: base + rel, sha256: sha256(buf), size: buf.length });
  };
  for (const rel of walk(web)) {
    if (path.join(web, rel) === out) continue;
    if (WEB_EXT.has(path.extname(rel))) add('/', web, rel);
  }
  for (const rel of walk(bindings)) {
    if (!BINDINGS_EXT.has(path.extname(rel))) continue;
    if (path.extname(rel) !== '.wasm' && NODE_ONLY.test(fs.readFileSync(path.join(bindings, rel), 'utf8'))) continue;
    add('/bindings/', bindings, rel);
  }
  entries.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
  const version = sha256(JSON.stringify(entries)).slice(0, 16);
  const manifest = {
    version,
    shell: '/index.html',
    offline: entries.some((e) => e.url === '/offline.html') ? '/offline.html' : null,
    runtime,
    entries,
  };
  if (write) {
    const text = `// Generated by scripts/build-web.mjs; do not edit. The app shell the service\n`
      + `// worker precaches, with each file's SHA-256 (checked when it is fetched).\n`
      + `self.FERRY_PRECACHE = ${JSON.stringify(manifest, null, 1)};\n`;
    const tmp = `${out}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, out);
  }
  return { ...manifest, file: out };
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
    const m = buildWeb(opts);
    const kib = Math.round(m.entries.reduce((s, e) => s + e.size, 0) / 1024);
    console.log(`precache: ${m.entries.length} files, ${kib} KiB, version ${m.version} -> ${path.relative(process.cwd(), m.file)}`);
  } catch (e) {
    console.error(`build-web: ${e.message}`);
    process.exit(1);
  }
}
