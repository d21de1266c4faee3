// Randomized, seeded, multi-process convergence test (see convergence.js for
// the world and the invariants). `npm test` runs a few fixed seeds;
// FERRY_SEED=<n> runs one seed; `npm run soak` runs new random seeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runConvergence } from './convergence.js';

// Fixed seeds (about 20 s each); seed 4 also runs the byte-size stress (a device writes a batch of large objects).
const SEEDS = process.env.FERRY_SEED ? [Number(process.env.FERRY_SEED)] : [1, 4, 5];

for (const seed of SEEDS) {
  test(`devices_should_converge_without_losing_writes_seed_${seed}`, { timeout: 900_000 }, async () => {
    const r = await runConvergence(seed);
    assert.ok(r.ok, r.report);
  });
}
