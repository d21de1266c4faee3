// The npm package as an app team gets it: `npm pack` of this tree (built by
// scripts/build.sh before the suites; nothing is rebuilt here) installed into
// a fresh project outside the repository. Used by tests/node/package.test.js
// and the bundler test in tests/browser/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function run(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (r.error) throw r.error;
  return r;
}

export function must(r, what) {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/**
 * Packs this tree into `work` and installs the tarball into a new project
 * `work`/`name` (package.json: { type: 'module' }).
 * -> { pack: npm pack's report { filename, size, entryCount, files }, project, installed }
 */
export function packAndInstall(work, name = 'app') {
  const r = must(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT), 'npm pack');
  const [pack] = JSON.parse(r.stdout);
  const tarball = path.join(work, pack.filename);
  const project = path.join(work, name);
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: `ferry-${name}-test`, private: true, type: 'module' }));
  const flags = ['--offline', '--no-audit', '--no-fund'];
  let install = run('npm', ['install', tarball, ...flags], project);
  if (install.status !== 0) {
    // Offline, npm needs jose's registry metadata in its cache, which a
    // machine whose node_modules was copied or installed long ago may not
    // have (ENOTCACHED), and the test must not depend on the network: pack
    // the jose this repository installed and install it beside ferry. It
    // satisfies ferry's exact pin only if it is that version, so the
    // dependency is still checked, and the server still imports it.
    const jose = JSON.parse(must(run('npm', ['pack', path.join(ROOT, 'node_modules', 'jose'), '--ignore-scripts', '--json', '--pack-destination', work], work), 'npm pack jose').stdout)[0];
    install = must(run('npm', ['install', tarball, path.join(work, jose.filename), ...flags], project), `npm install (offline; first try: ${install.stderr.trim()})`);
  }
  return { pack, project, installed: path.join(project, 'node_modules', 'ferry') };
}

/**
 * Installs packages this repository has in node_modules into `project`
 * (packed into `work`, installed offline: the test needs no network), as
 * an app that brings them itself would have them.
 */
export function installLocalPackages(project, work, names) {
  const tarballs = names.map((name) => {
    const r = must(run('npm', ['pack', path.join(ROOT, 'node_modules', name), '--ignore-scripts', '--json', '--pack-destination', work], work), `npm pack ${name}`);
    return path.join(work, JSON.parse(r.stdout)[0].filename);
  });
  must(run('npm', ['install', ...tarballs, '--offline', '--no-audit', '--no-fund'], project), `npm install ${names.join(' ')}`);
}
