// Devices whose app starts at the same moment must not share a random
// stream: client ids and generated row ids come from randomblob().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./fixtures/random-child.js', import.meta.url));

function collect(p) {
  return new Promise((resolve, reject) => {
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

test('processes_started_together_should_draw_different_randomblobs', async () => {
  // All spawned in the same tick, so they start within the same second.
  const children = [0, 1, 2, 3].map(() => spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const draws = await Promise.all(children.map(collect));
  for (const d of draws) assert.match(d, /^[0-9A-F]{32}$/);
  assert.equal(new Set(draws).size, draws.length, `draws: ${draws.join(' ')}`);
});
