// Randomized, seeded, multi-process convergence test (see convergence.js for
// the world and the invariants). `npm test` runs a few fixed seeds;
// FERRY_SEED=<n> runs one seed; `npm run soak` runs new random seeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runConvergence } from './convergence.js';

// Fixed seeds (about 20 s each); seed 4 also runs the byte-size stress (a device writes a batch of large objects).
const SEEDS = process.env.FERRY_SEED ? [Number(process.env.FERRY_SEED)] : [1, 4, 5];
const FILE_SEED = 3;

for (const seed of SEEDS) {
  test(`devices_should_converge_without_losing_writes_seed_${seed}`, { timeout: 900_000 }, async () => {
    const r = await runConvergence(seed);
    assert.ok(r.ok, r.report);
  });
}

// With files in the workload (db.files.put on Tags and Items, every
// reference opening bytes that hash right after the heal): FERRY_FILES
// changes the model, so the seed runs in a process of its own.
const FILE_SEEDS = process.env.FERRY_SEED ? [] : [FILE_SEED];
for (const seed of FILE_SEEDS) {
  test(`devices_should_converge_with_files_without_losing_writes_or_bytes_seed_${seed}`, { timeout: 900_000 }, async () => {
    const cli = fileURLToPath(new URL('./convergence.js', import.meta.url));
    const child = spawn(process.execPath, [cli, String(seed)], { env: { ...process.env, FERRY_FILES: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0, out);
  });
}
