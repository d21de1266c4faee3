// ferry as a Vite app gets it: the npm tarball installed into a new project,
// built with Vite (no ferry-specific configuration) and served from its
// dist/, and run by Vite's dev server; in Chromium the app opens a database
// on OPFS (the wasm and the database worker located relative to the module,
// so the bundler copied them), writes, reads, and finds its row after a
// reload. A build must print no warning: node: built-ins and the wasm
// module's CommonJS tail used to produce a dozen.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, CHROMIUM, CHROMIUM_ARGS, startServer } from './harness.js';
import { packAndInstall, run, must } from '../node/pack-helpers.js';

const T = { timeout: 180_000 };
const VITE = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-vite-'));
let project;
let browser;
after(async () => {
  await browser?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const MAIN = `import { open, FerryError } from 'ferry';
try {
  const db = await open({ name: 'vite-app' });
  await db.exec('CREATE TABLE IF NOT EXISTS Visit(id TEXT PRIMARY KEY, note TEXT)');
  const [{ n }] = await db.query('SELECT count(*) AS n FROM Visit');
  await db.exec('INSERT INTO Visit VALUES (?, ?)', [\`v\${n + 1}\`, 'from a bundle']);
  let code = null;
  try { await db.exec('SELEC nothing'); } catch (e) { code = e instanceof FerryError ? e.code : String(e); }
  window.result = { storage: db.status().storage, rows: await db.query('SELECT id, note FROM Visit ORDER BY id'), code };
} catch (e) {
  window.result = { error: \`\${e.name}: \${e.message}\` };
}
`;

before(async () => {
  ({ project } = packAndInstall(work, 'vite-app'));
  fs.writeFileSync(path.join(project, 'index.html'),
    '<!doctype html><html><head><meta charset="utf-8"><title>vite app</title><link rel="icon" href="data:,"></head>'
    + '<body><script type="module" src="/main.js"></script></body></html>\n');
  fs.writeFileSync(path.join(project, 'main.js'), MAIN);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
});

/** Opens url in a fresh context twice (load, reload) -> [result, result after reload]. */
async function runApp(url) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const results = [];
    for (let i = 0; i < 2; i++) {
      if (i === 0) await page.goto(url, { waitUntil: 'load' });
      else await page.reload({ waitUntil: 'load' });
      await page.waitForFunction(() => window.result, null, { timeout: 60_000 });
      results.push(await page.evaluate(() => window.result));
    }
    assert.deepEqual(errors, []);
    return results;
  } finally {
    await context.close();
  }
}

function expectApp([first, second]) {
  assert.equal(first.error, undefined, first.error);
  assert.equal(first.storage, 'opfs');
  assert.deepEqual(first.rows, [{ id: 'v1', note: 'from a bundle' }]);
  assert.equal(first.code, 'sql', 'a FerryError with its code');
  assert.deepEqual(second.rows.map((r) => r.id), ['v1', 'v2'], 'the row written before the reload is still there');
}

test('a_vite_build_should_bundle_ferry_without_warnings_and_run_it_in_chromium', T, async () => {
  const r = must(run(process.execPath, [VITE, 'build', '--logLevel', 'warn'], project), 'vite build');
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'vite build printed warnings');
  const assets = fs.readdirSync(path.join(project, 'dist', 'assets'));
  assert.ok(assets.some((f) => f.endsWith('.wasm')), `the wasm is copied into the bundle (${assets})`);
  const site = await startServer(path.join(project, 'dist'));
  try {
    expectApp(await runApp(`${site.url}/`));
  } finally {
    await site.close();
  }
});

test('vites_dev_server_should_serve_ferry_as_installed', T, async () => {
  const dev = spawn(process.execPath, [VITE, '--host', '127.0.0.1', '--port', '0', '--clearScreen', 'false'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`vite dev did not start:\n${out}`)), 60_000);
      const onData = (d) => {
        out += d;
        const m = out.replace(/\x1b\[[0-9;]*m/g, '').match(/http:\/\/127\.0\.0\.1:\d+\//);
        if (m) { clearTimeout(timer); resolve(m[0]); }
      };
      dev.stdout.on('data', onData);
      dev.stderr.on('data', onData);
      dev.once('exit', (code) => reject(new Error(`vite dev exited with ${code}:\n${out}`)));
    });
    expectApp(await runApp(url));
  } finally {
    dev.kill();
  }
});
