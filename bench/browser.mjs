// The browser half of the commit benchmark: serves the repo read-only on
// 127.0.0.1, starts headless Debian Chromium (playwright-core) with a fresh
// profile in the OS temp dir, opens bench/pages/commit.html and collects its
// results. OS-level bytes written are read from /proc/<pid>/io (write_bytes)
// of every process of this Chromium instance (found by its profile path).
import http from 'node:http';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.FERRY_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

function serve(root, bindings) {
  const server = http.createServer(async (req, res) => {
    const { pathname } = new URL(req.url, 'http://127.0.0.1');
    let base = root, rel = path.normalize(decodeURIComponent(pathname));
    // FERRY_BENCH_BINDINGS: /bindings/ from another folder (A/B of a core change)
    if (bindings && rel.startsWith('/bindings/')) { base = bindings; rel = rel.slice('/bindings'.length); }
    const file = path.join(base, rel);
    const st = file.startsWith(base + path.sep) ? await fsp.stat(file).catch(() => null) : null;
    if (req.method !== 'GET' || !st?.isFile()) { res.writeHead(404).end(); return; }
    res.writeHead(200, {
      'content-type': MIME[path.extname(file)] || 'application/octet-stream',
      'cache-control': 'no-store', 'content-length': st.size,
      // Cross-origin isolation: performance.now() at 5 us instead of 100 us.
      'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp',
    });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections?.(); }),
  })));
}

/** Sum of write_bytes over the processes whose command line names `marker`. */
export function processWriteBytes(marker) {
  let sum = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) continue;
      const m = /write_bytes: (\d+)/.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
      if (m) sum += Number(m[1]);
    } catch { /* process gone or not ours */ }
  }
  return sum;
}

export async function browserBench({ root, bindings, n = 200, warmup = 20, timeoutMs = 120_000, log = () => {} }) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  const server = await serve(root, bindings);
  const profile = await fsp.mkdtemp(path.join(os.tmpdir(), 'ferry-bench-chromium-'));
  let context;
  const t0 = Date.now();
  const step = (what) => log(`browser: ${what} at ${Date.now() - t0} ms`);
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000,
    });
    step('launched');
    const page = await context.newPage();
    page.on('pageerror', (e) => log(`[pageerror] ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') log(`[console] ${m.text()}`); });
    await page.exposeFunction('benchOsBytes', () => processWriteBytes(profile));
    await page.goto(`${server.url}/bench/pages/commit.html`, { waitUntil: 'load' });
    await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
    step('page ready');
    const version = context.browser()?.version() || (await page.evaluate(() => navigator.userAgent)).match(/Chrome\/([\d.]+)/)?.[1];
    let timer;
    const results = await Promise.race([
      page.evaluate((opts) => window.runBench(opts), { n, warmup, name: `bench_${process.pid}_${Date.now().toString(36)}` }),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`browser benchmark timed out after ${timeoutMs} ms`)), timeoutMs); }),
    ]).finally(() => clearTimeout(timer));
    step('measured');
    return { chromium: version, crossOriginIsolated: await page.evaluate(() => crossOriginIsolated), results };
  } finally {
    await context?.close().catch(() => {});
    step('closed');
    await server.close();
    await fsp.rm(profile, { recursive: true, force: true }).catch(() => {});
    step('cleaned up');
  }
}
