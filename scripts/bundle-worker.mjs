#!/usr/bin/env node
// Bundles the database worker (bindings/worker.js and every module it
// imports) into one ES module, bindings/dist/worker.mjs, which the writer
// tab starts (bindings/shared.js). A worker that loads its modules one by
// one fetches them a level of imports at a time before its first line runs:
// ~100 ms in Chromium for ferry's ~25, against ~20 ms for the one file.
// The bundle is a build output, like the wasm beside it (never committed;
// `npm pack` ships it).
//
//   node scripts/bundle-worker.mjs [--out bindings/dist/worker.mjs]
//
// The wasm is not inlined: the page sends the worker its own wasm URL (the
// one the app's bundler placed), and without it the worker loads
// ./ferry-core.wasm beside this file.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { bundleOne } from './bundle-one.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = path.join(root, 'bindings', 'worker.js');
const WASM_URL = "new URL('./dist/ferry-core.wasm', import.meta.url)";

/** Keeps core.js's wasm URL out of Vite's asset handling (which would inline 1.4 MB as base64) and points it beside the bundle. */
const wasmBeside = {
  name: 'ferry-wasm-beside-worker',
  enforce: 'pre',
  transform(code, id) {
    if (path.resolve(id) !== path.join(root, 'bindings', 'core.js')) return null;
    if (!code.includes(WASM_URL)) throw new Error(`bindings/core.js no longer holds ${WASM_URL}: update scripts/bundle-worker.mjs`);
    return { code: code.replace(WASM_URL, "new URL('./ferry-core' + '.wasm', import.meta.url)"), map: null };
  },
};

/** -> the bundle's text. */
export async function bundleDatabaseWorker() {
  const code = await bundleOne(ENTRY, { format: 'es', plugins: [wasmBeside] });
  return `// Built by scripts/bundle-worker.mjs from bindings/worker.js; do not edit.\n${code}`;
}

/** The modules of bindings/ (not dist/): what the bundle is made of. */
function sources(dir = path.join(root, 'bindings')) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'dist' ? [] : sources(p);
    return e.name.endsWith('.js') ? [p] : [];
  });
}

/**
 * Rebuilds bindings/dist/worker.mjs when a module of bindings/ changed after
 * it (so that a browser test after an edit never runs an older worker).
 * -> true when it was rebuilt.
 */
export async function ensureWorkerBundle(out = path.join(root, 'bindings', 'dist', 'worker.mjs')) {
  const built = fs.statSync(out, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const core = path.join(root, 'bindings', 'dist', 'ferry-core.mjs');
  if (built && ![...sources(), core].some((f) => fs.statSync(f).mtimeMs > built)) return false;
  write(out, await bundleDatabaseWorker());
  return true;
}

function write(out, text) {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(`${out}.tmp-${process.pid}`, text);
  fs.renameSync(`${out}.tmp-${process.pid}`, out);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: path.join(root, 'bindings', 'dist', 'worker.mjs') } } });
  const text = await bundleDatabaseWorker();
  write(values.out, text);
  console.log(`worker: ${(text.length / 1024).toFixed(0)} KiB -> ${path.relative(process.cwd(), values.out)}`);
}
