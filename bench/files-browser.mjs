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
// alternated, medians over FERRY_BENCH_PHOTO_REPS (default 9) after 2 of
// warm-up. The server and the browser are those of the PWA tests
// (tests/browser/pwa-helpers.js): the demo model, a temp data dir, a fresh
// profile; the database is on OPFS (the app's default in Chromium).
//
//   node bench/files-browser.mjs
//
// Output: a short table on stdout, then one JSON line.
import { buildSite, startSite, launchBrowser, openSynced, removeTemps } from '../tests/browser/pwa-helpers.js';

const REPS = Number(process.env.FERRY_BENCH_PHOTO_REPS || 9);
const WARM = 2;

const { dir } = await buildSite('bench-photo');
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
    const ferry = [], blob = [], puts = [], shows = [];
    let size = 0;
    for (let k = 0; k < reps + warm; k++) {
      const p = await photo(k);
      size = p.size;
      const order = k % 2 ? ['blob', 'ferry'] : ['ferry', 'blob'];
      for (const which of order) {
        const t0 = performance.now();
        if (which === 'ferry') {
          const ref = await window.db.files.put('Customer', 'cust-ada', 'photo', p, { type: 'image/png', name: `photo-${k}.png` });
          const t1 = performance.now();
          await show(`${window.db.files.url('Customer', 'cust-ada', 'photo')}?v=${ref.hash.slice(0, 16)}`);
          const t2 = performance.now();
          if (k >= warm) { ferry.push(t2 - t0); puts.push(t1 - t0); shows.push(t2 - t1); }
        } else {
          const u = URL.createObjectURL(p);
          await show(u);
          URL.revokeObjectURL(u);
          if (k >= warm) blob.push(performance.now() - t0);
        }
      }
    }
    return { ferry, puts, shows, blob, size, storage: window.db.status().storage };
  }, { reps: REPS, warm: WARM });
  const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
  const r = { size: out.size, storage: out.storage, ferryMs: median(out.ferry), putMs: median(out.puts), showMs: median(out.shows), blobMs: median(out.blob), samples: out };
  console.log(`| 5 MB photo (${(out.size / 1e6).toFixed(2)} MB PNG, ${out.storage}) | median ms | min | max |`);
  console.log('|---|---|---|---|');
  for (const [k, a] of [['put → url → <img> loaded', out.ferry], ['  put (durable on the device)', out.puts], ['  url → <img> loaded (service worker, device storage)', out.shows],
    ['object URL → <img> loaded (no storage)', out.blob]]) {
    console.log(`| ${k} | ${median(a).toFixed(1)} | ${Math.min(...a).toFixed(1)} | ${Math.max(...a).toFixed(1)} |`);
  }
  console.log(`ratio ferry/object URL: ${(r.ferryMs / r.blobMs).toFixed(2)}; ferry minus object URL: ${(r.ferryMs - r.blobMs).toFixed(1)} ms`);
  console.log(JSON.stringify(r));
} finally {
  await browser.close();
  await site.close();
  await removeTemps();
}
