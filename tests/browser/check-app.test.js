// `ferry check --app`: the demo as built passes the offline-readiness check,
// and a demo broken on purpose (a module it imports that no cache holds)
// fails it, naming the module.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, CHROMIUM } from './harness.js';
import { buildSite, startSite, removeTemps } from './pwa-helpers.js';

const run = promisify(execFile);
const T = { timeout: 180_000 };
after(removeTemps);

// The demo's sign-in API (/auth/) is online-only by nature; its model is the file the server loads.
const DEMO = ['--online-only', '/auth/', '--model', path.join(ROOT, 'server', 'demo-model.json')];

async function check(url, args = []) {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'bin', 'ferry.js'), 'check', '--app', url, ...args],
      { env: { ...process.env, FERRY_CHROMIUM: CHROMIUM }, timeout: 150_000 });
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

test('the_demo_should_pass_the_offline_readiness_check', T, async () => {
  const { dir } = await buildSite('check');
  const site = await startSite({ web: dir });
  try {
    const { code, out } = await check(`${site.url}/`, DEMO);
    assert.equal(code, 0, out);
    assert.match(out, /offline ok: \/\n/);
    assert.match(out, /offline ok: \/offline\.html/);
    assert.match(out, /model ok: \d+ entities/);
    assert.match(out, /the app works offline/);
  } finally {
    await site.close();
  }
});

test('the_check_should_name_a_module_and_a_file_the_app_loads_that_no_cache_holds', T, async () => {
  // Two common ways to break a PWA offline: a cache-busting import (a new
  // URL on every load, so no cache can hold it) and a fetch() of a file the
  // precache does not list (the service worker leaves fetch() answers alone).
  const { dir } = await buildSite('check-broken', async (web) => {
    fs.appendFileSync(path.join(web, 'app.js'), "\nimport(`/lib/late.js?t=${Date.now()}`).then((m) => m.mark());\n"
      + "fetch('/lib/settings.json').then((r) => r.json()).then((s) => { document.body.dataset.theme = s.theme; });\n");
  });
  // Written after the precache manifest was made: online they load from the
  // server, offline nothing has them.
  fs.writeFileSync(path.join(dir, 'lib', 'late.js'), 'export function mark() { document.body.dataset.late = "1"; }\n');
  fs.writeFileSync(path.join(dir, 'lib', 'settings.json'), '{"theme":"dark"}\n');
  const site = await startSite({ web: dir });
  try {
    const { code, out } = await check(`${site.url}/`, DEMO);
    assert.equal(code, 1, out);
    assert.match(out, /offline: \/: GET \/lib\/late\.js failed/);
    assert.match(out, /offline: \/: GET \/lib\/settings\.json failed/);
    assert.match(out, /uncaught: .*late\.js/);
    assert.match(out, /problems?: the app does not fully work offline/);
  } finally {
    await site.close();
  }
});

test('a_folder_without_a_service_worker_should_fail_the_check', T, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-check-plain-'));
  try {
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>plain</title><p>no service worker</p>');
    const { code, out } = await check(dir);
    assert.equal(code, 1, out);
    assert.match(out, /no service worker/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
