// The npm package as an app team gets it: `npm pack` of this tree (built
// by scripts/build.sh before the suite; nothing is rebuilt here), installed
// into a fresh project outside the repository, used there from Node, and its
// types checked with tsc. An app only ever sees the tarball, so every check
// goes through it, never through this checkout's files.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tempDir } from './helpers.js';
import { packAndInstall, installLocalPackages, run, must } from './pack-helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = path.join(root, 'tests', 'node', 'fixtures', 'package');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const work = tempDir('package');

let pack;   // npm pack's report: { filename, size, entryCount, files: [{ path }] }
let project;
let installed;

before(() => {
  ({ pack, project, installed } = packAndInstall(work));
});

test('npm_pack_should_ship_the_built_wasm_module_error_codes_types_and_service_worker_parts', () => {
  const files = new Set(pack.files.map((f) => f.path));
  for (const f of ['package.json', 'README.md', 'bindings/index.js', 'bindings/worker.js', 'bindings/dist/worker.mjs', 'bindings/dist/ferry-core.mjs', 'bindings/dist/ferry-core.wasm',
    'bindings/dist/codes.js', 'bindings/dist/codes.d.ts', 'types/index.d.ts', 'types/server.d.ts', 'types/pwa.d.ts', 'types/sw.d.ts',
    'server/index.js', 'server/cli.js', 'server/demo-model.json', 'service-worker/index.js', 'service-worker/integrity.js',
    'types/sw-build.d.ts', 'bin/ferry.js']) {
    assert.ok(files.has(f), `the tarball lacks ${f}`);
  }
  const stray = [...files].filter((f) => /^(tests|core|web|bench|docs|scripts|build|node_modules|\.deps)\//.test(f) || /\.c$|\.h$|exports\.txt$/.test(f)
    || f === 'service-worker/demo.js');
  assert.deepEqual(stray, [], 'the tarball holds files nothing needs at run time');
  // Every file the package exports is in the tarball.
  const { exports } = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
  for (const [name, target] of Object.entries(exports)) {
    for (const file of Object.values(typeof target === 'string' ? { default: target } : target)) {
      assert.ok(files.has(file.replace(/^\.\//, '')), `exports['${name}'] names ${file}, which is not in the tarball`);
    }
  }
});

test('installed_package_should_sync_a_row_from_one_database_to_another_through_its_own_server', () => {
  fs.copyFileSync(path.join(fixtures, 'app.mjs'), path.join(project, 'app.mjs'));
  const dataDir = path.join(work, 'data');
  fs.mkdirSync(dataDir);
  const r = must(run(process.execPath, ['app.mjs', dataDir], project), 'the app');
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.deepEqual(out.rows, [{ id: 'n1', text: 'written on a' }]);
  assert.equal(out.pushed, 1);
  assert.equal(out.pulled, 1);
  assert.equal(out.code, 'sql');
  for (const [name, file] of Object.entries(out.resolved)) {
    assert.ok(file.startsWith(installed + path.sep), `${name} resolved to ${file}, outside the installed package`);
  }
  assert.ok(out.swExists, 'ferry/sw names no file');
  assert.equal(path.relative(installed, out.resolved['ferry/sw']), path.join('service-worker', 'index.js'));
  // Workbox comes from the app (optional peers): installing ferry brings none of it.
  assert.ok(!fs.existsSync(path.join(project, 'node_modules', 'workbox-routing')), 'ferry installed Workbox');
});

/** tsc --noEmit on `files` in the project; -> { status, errors: [{ file, line, text }] } */
function typecheck(name, files, compilerOptions) {
  const config = path.join(project, `tsconfig.${name}.json`);
  fs.writeFileSync(config, JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: 'es2022', lib: ['es2022', 'dom', 'dom.iterable'], types: [], ...compilerOptions,
    },
    files,
  }));
  const r = run(process.execPath, [tsc, '-p', config, '--pretty', 'false'], project);
  const errors = [...r.stdout.matchAll(/^(.+?)\((\d+),\d+\): error (.*)$/gm)].map((m) => ({ file: m[1], line: Number(m[2]), text: m[3] }));
  return { status: r.status, errors, output: r.stdout + r.stderr };
}

const BUNDLER = { module: 'esnext', moduleResolution: 'bundler' };
const NODE = { module: 'nodenext', moduleResolution: 'nodenext' };

test('installed_types_should_check_an_app_using_every_public_name_and_match_the_error_codes_at_run_time', async () => {
  fs.copyFileSync(path.join(fixtures, 'usage.ts'), path.join(project, 'usage.ts'));
  // The union of FerryError['code'] is generated from the same list as the
  // codes at run time: both ways, nothing missing and nothing extra.
  const { codes: table } = await import(pathToFileURL(path.join(installed, 'bindings', 'dist', 'codes.js')));
  const runtime = table.map((c) => c.code);
  fs.writeFileSync(path.join(project, 'codes-check.ts'), [
    "import { codes, FerryError, type FerryErrorCode } from 'ferry';",
    `const runtime = ${JSON.stringify(runtime)} as const;`,
    `const names = ${JSON.stringify(runtime.map((c) => c.toUpperCase()))} as const;`,
    'const known: readonly FerryErrorCode[] = runtime;',
    "const fromError: readonly FerryError['code'][] = runtime;",
    'const exact: [Exclude<FerryErrorCode, (typeof runtime)[number]>] extends [never] ? true : false = true;',
    'const named: [Exclude<keyof typeof codes, (typeof names)[number]>] extends [never] ? true : false = true;',
    'const byName: readonly FerryErrorCode[] = names.map((n) => codes[n]);',
    "const full: 'storage_full' = codes.STORAGE_FULL;",
    'console.log(known, fromError, exact, named, byName, full);',
    '',
  ].join('\n'));
  for (const [name, options] of [['bundler', BUNDLER], ['node', NODE]]) {
    const r = typecheck(name, ['usage.ts', 'codes-check.ts'], options);
    assert.equal(r.status, 0, `tsc (${name} resolution) found errors:\n${r.output}`);
  }
});

test('installed_types_should_check_an_apps_own_workbox_worker_using_every_name_of_ferry_sw', () => {
  // The app brings Workbox (ferry's peers): this repository's copies, packed and installed offline.
  installLocalPackages(project, work, ['workbox-core', 'workbox-routing', 'workbox-strategies', 'workbox-precaching']);
  fs.copyFileSync(path.join(fixtures, 'sw-usage.ts'), path.join(project, 'sw-usage.ts'));
  for (const [name, options] of [['sw-bundler', BUNDLER], ['sw-node', NODE]]) {
    const r = typecheck(name, ['sw-usage.ts'], { ...options, lib: ['es2022', 'webworker'] });
    assert.equal(r.status, 0, `tsc (${name} resolution) found errors:\n${r.output}`);
  }
});

test('installed_types_should_refuse_wrong_calls_at_their_lines', () => {
  fs.copyFileSync(path.join(fixtures, 'bad.ts'), path.join(project, 'bad.ts'));
  const wrong = fs.readFileSync(path.join(fixtures, 'bad.ts'), 'utf8').split('\n')
    .flatMap((line, i) => (line.endsWith('// tsc: error') ? [i + 1] : []));
  assert.ok(wrong.length >= 5);
  const r = typecheck('bad', ['bad.ts'], BUNDLER);
  assert.notEqual(r.status, 0, 'tsc accepted wrong calls');
  assert.ok(r.errors.every((e) => e.file === 'bad.ts'), `errors outside bad.ts (in the package's types?):\n${r.output}`);
  assert.deepEqual([...new Set(r.errors.map((e) => e.line))], wrong, `tsc must fail exactly on the marked lines:\n${r.output}`);
  const at = (line) => r.errors.filter((e) => e.line === line).map((e) => e.text).join('\n');
  assert.match(at(wrong[0]), /Expected 4-5 arguments|not assignable to parameter of type 'string'/);
  assert.match(at(wrong[1]), /"storage_ful"/);
});
