// The demo's service worker build (scripts/build-web.mjs): Workbox and
// ferry/sw bundled into one classic script with the precache manifest
// injected by workbox-build, every file of the app shell with its SHA-256 as
// revision and integrity, the wasm and the browser modules of bindings/
// included, Node-only modules left out, a version that changes with any byte.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import vm from 'node:vm';
import { ROOT } from './harness.js';
import { buildSite, removeTemps, tempDir } from './pwa-helpers.js';
import { buildWeb } from '../../scripts/build-web.mjs';
import { manifestVersion } from '../../service-worker/version.js';

after(removeTemps);
const sha = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

test('the_manifest_should_list_the_shell_the_wasm_and_the_browser_modules_with_their_hashes', async () => {
  const { dir, manifest } = await buildSite('manifest');
  const urls = manifest.entries.map((e) => e.url);
  for (const must of ['/index.html', '/offline.html', '/app.js', '/app.css', '/bindings/pwa.js', '/manifest.webmanifest',
    '/icons/icon-192.png', '/icons/icon-512.png', '/bindings/index.js', '/bindings/core.js', '/bindings/dist/ferry-core.mjs',
    '/bindings/dist/ferry-core.wasm']) {
    assert.ok(urls.includes(must), `${must} is in the precache`);
  }
  assert.ok(!urls.includes('/sw.js'), 'the worker does not list itself');
  assert.ok(!urls.includes('/bindings/storage/node-file.js'), 'Node-only modules are left out');
  assert.ok(!urls.some((u) => /\.(c|txt)$/.test(u) && u.startsWith('/bindings/')), 'no C sources or export lists');
  assert.deepEqual(urls, [...urls].sort(), 'sorted, so the output is stable');
  for (const e of manifest.entries) {
    const file = e.url.startsWith('/bindings/') ? path.join(ROOT, e.url) : path.join(dir, e.url);
    assert.equal(e.sha256, sha(file), e.url);
    assert.equal(e.revision, e.sha256, e.url);
    assert.equal(e.integrity, `sha256-${Buffer.from(e.sha256, 'hex').toString('base64')}`, e.url);
    assert.equal(e.size, fs.statSync(file).size, e.url);
  }
  assert.equal(manifest.offline, '/offline.html');
  // The worker holds the manifest as workbox-build injects it (keys sorted),
  // and the version the worker works out from it is the build's.
  const injected = manifest.entries.map(({ url, revision, integrity }) => ({ integrity, revision, url }));
  assert.ok(fs.readFileSync(path.join(dir, 'sw.js'), 'utf8').includes(`precacheVersion(${JSON.stringify(injected)})`), 'the manifest is in the worker');
  assert.equal(manifestVersion(injected), manifest.version);
});

test('the_version_should_change_with_any_byte_and_only_then', async () => {
  const { dir, manifest } = await buildSite('version');
  assert.match(manifest.version, /^[0-9a-f]{16}$/);
  assert.equal((await buildWeb({ web: dir, write: false })).version, manifest.version, 'same files, same version');
  await fsp.appendFile(path.join(dir, 'lib', 'dom.js'), ' ');
  assert.notEqual((await buildWeb({ web: dir, write: false })).version, manifest.version);
});

test('the_cli_should_write_the_worker_and_fail_clearly_without_the_wasm', async () => {
  const { dir } = await buildSite('cli');
  const out = path.join(await tempDir('cli-out'), 'worker.js');
  const log = execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-web.mjs'), '--web', dir, '--out', out], { encoding: 'utf8' });
  assert.match(log, /^precache: \d+ files, \d+ KiB, version [0-9a-f]{16}/);
  assert.ok(fs.existsSync(out));
  const empty = await tempDir('no-bindings');
  let failure;
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts/build-web.mjs'), '--web', dir, '--bindings', empty], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    failure = e;
  }
  assert.equal(failure?.status, 1);
  assert.match(failure.stderr, /ferry-core\.wasm is missing: build the wasm first/);
});

test('the_service_worker_should_be_a_classic_script_that_parses', async () => {
  // Classic, not a module: every browser with service workers runs it.
  const { dir } = await buildSite('classic');
  const src = fs.readFileSync(path.join(dir, 'sw.js'), 'utf8');
  assert.doesNotThrow(() => new vm.Script(src, { filename: 'sw.js' }));
  assert.doesNotMatch(src, /__WB_MANIFEST/, 'the manifest is injected');
  assert.doesNotMatch(src, /process\.env/, "Workbox's development checks are compiled out");
  assert.doesNotMatch(src, /\bimportScripts\(|\bimport\(/, 'nothing is loaded at run time');
});
