// The peer the benchmarks measure ferry against, at its pinned version (the
// newest on the registry when BENCHMARKS.md's runs were made), and how a
// benchmark installs it: into a project of its own, never into this repo's
// node_modules.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const SQLITE_WASM = { name: '@sqlite.org/sqlite-wasm', version: '3.54.1-build1' };

/** Installs SQLITE_WASM into `dir` (created). -> { ok, error } (error: npm's last line of stderr). */
export function installSqliteWasm(dir) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"peer","private":true}');
  const inst = spawnSync('npm', ['install', '--no-audit', '--no-fund', `${SQLITE_WASM.name}@${SQLITE_WASM.version}`], { cwd: dir, encoding: 'utf8', timeout: 300_000 });
  return { ok: inst.status === 0, error: inst.status === 0 ? null : (inst.stderr || String(inst.error || '')).trim().split('\n').pop() };
}
