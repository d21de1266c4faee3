#!/usr/bin/env node
// From db.files.put of a 5 MB photo to an <img> showing it through
// db.files.url() (issue 10, "Measure"; goal < 50 ms on OPFS), in headless
// Debian Chromium on the demo PWA, against the same <img> fed the same Blob
// through URL.createObjectURL (no storage, no service worker: what showing
// the picture costs at all), in the same run.
//
// Each sample: a new 5 MB PNG (an OffscreenCanvas of noise, one pixel
// changed per sample so every put stores new bytes), then
//   ferry   t0; await db.files.put(...Customer photo...); img.src = url; await load
//   blob    t0; img.src = URL.createObjectURL(blob); await load
//   floor   t0; in a bare dedicated worker of the same origin: read the
//           Blob, SHA-256 it, write it through a sync access handle,
//           flush() it (what storing the photo durably costs the platform
//           at all, with nothing of ferry)
// alternated, medians over FERRY_BENCH_PHOTO_REPS (default 9) after 2 of
// warm-up. The server and the browser are those of the PWA tests
// (tests/browser/pwa-helpers.js): the demo model, a temp data dir, a fresh
// profile; the database is on OPFS (the app's default in Chromium).
//
//   node bench/files-browser.mjs
//
// Output: a short table on stdout, then one JSON line.
import fs from 'node:fs/promises';
import path from 'node:path';
import { buildSite, startSite, launchBrowser, openSynced, removeTemps } from '../tests/browser/pwa-helpers.js';

const REPS = Number(process.env.FERRY_BENCH_PHOTO_REPS || 9);
const WARM = 2;

// The floor's worker: a file of the site (same origin, same OPFS), not of the app.
const FLOOR_WORKER = `onmessage = async ({ data: blob }) => {
  const t0 = performance.now();
  const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('bench-floor', { create: true });
  const fh = await dir.getFileHandle('photo', { create: true });
  const h = await fh.createSyncAccessHandle();
  try {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    await crypto.subtle.digest('SHA-256', bytes);
    h.truncate(0);
    h.write(bytes, { at: 0 });
    h.flush();
  } finally {
    h.close();
  }
  postMessage(performance.now() - t0);
};`;
const { dir } = await buildSite('bench-photo', (web) => fs.writeFile(path.join(web, 'bench-floor-worker.js'), FLOOR_WORKER));
const site = await startSite({ web: dir });
const browser = await launchBrowser();
try {
  const page = await browser.newPage();
  await openSynced(page, `${site.url}/`);
  const out = await page.evaluate(async ({ reps, warm }) => {
    const W = 1280, H = 1000;
    const canvas = new OffscreenCanvas(W, H);
    const ctx = canvas.getContext('2d');
    const noise = ctx.createImageData(W, H);
    crypto.getRandomValues(noise.data.subarray(0, 65536));
    for (let i = 65536; i < noise.data.length; i += 65536) noise.data.copyWithin(i, 0, Math.min(65536, noise.data.length - i));
    for (let i = 3; i < noise.data.length; i += 4) noise.data[i] = 255;
    const photo = async (k) => {
      noise.data[0] = k & 255; noise.data[1] = (k >> 8) & 255;
      ctx.putImageData(noise, 0, 0);
      return canvas.convertToBlob({ type: 'image/png' });
    };
    const show = (src) => new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error(`the image did not load: ${src}`));
      img.src = src;
    });
    const floorWorker = new Worker('/bench-floor-worker.js');
    const floorPut = (b) => new Promise((resolve, reject) => {
      floorWorker.onmessage = (e) => resolve(e.data);
      floorWorker.onerror = (e) => reject(new Error(`the floor worker failed: ${e.message}`));
      floorWorker.postMessage(b);
    });
    const ferry = [], blob = [], puts = [], shows = [], floor = [];
    let size = 0;
    for (let k = 0; k < reps + warm; k++) {
      const p = await photo(k);
      size = p.size;
      const order = [['ferry', 'blob', 'floor'], ['blob', 'floor', 'ferry'], ['floor', 'ferry', 'blob']][k % 3];
      for (const which of order) {
        const t0 = performance.now();
        if (which === 'ferry') {
          const ref = await window.db.files.put('Customer', 'cust-ada', 'photo', p, { type: 'image/png', name: `photo-${k}.png` });
          const t1 = performance.now();
          await show(`${window.db.files.url('Customer', 'cust-ada', 'photo')}?v=${ref.hash.slice(0, 16)}`);
          const t2 = performance.now();
          if (k >= warm) { ferry.push(t2 - t0); puts.push(t1 - t0); shows.push(t2 - t1); }
        } else if (which === 'floor') {
          await floorPut(p);
          if (k >= warm) floor.push(performance.now() - t0);
        } else {
          const u = URL.createObjectURL(p);
          await show(u);
          URL.revokeObjectURL(u);
          if (k >= warm) blob.push(performance.now() - t0);
        }
      }
    }
    floorWorker.terminate();
    return { ferry, puts, shows, blob, floor, size, storage: window.db.status().storage };
  }, { reps: REPS, warm: WARM });
  const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
  const r = { size: out.size, storage: out.storage, ferryMs: median(out.ferry), putMs: median(out.puts), showMs: median(out.shows), blobMs: median(out.blob), floorMs: median(out.floor), samples: out };
  console.log(`| 5 MB photo (${(out.size / 1e6).toFixed(2)} MB PNG, ${out.storage}) | median ms | min | max |`);
  console.log('|---|---|---|---|');
  for (const [k, a] of [['put → url → <img> loaded', out.ferry], ['  put (durable on the device)', out.puts], ['  url → <img> loaded (service worker, device storage)', out.shows],
    ['object URL → <img> loaded (no storage)', out.blob],
    ['floor: a bare worker reads, hashes, writes and flushes the photo', out.floor]]) {
    console.log(`| ${k} | ${median(a).toFixed(1)} | ${Math.min(...a).toFixed(1)} | ${Math.max(...a).toFixed(1)} |`);
  }
  console.log(`floor of the whole (floor put + object URL): ${(r.floorMs + r.blobMs).toFixed(1)} ms; ferry's put / floor put: ${(r.putMs / r.floorMs).toFixed(2)}`);
  console.log(`ratio ferry/object URL: ${(r.ferryMs / r.blobMs).toFixed(2)}; ferry minus object URL: ${(r.ferryMs - r.blobMs).toFixed(1)} ms`);
  console.log(JSON.stringify(r));
} finally {
  await browser.close();
  await site.close();
  await removeTemps();
}
