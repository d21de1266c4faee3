// The core's SHA-256 through the wasm (core.sha256(), the hash browsers use
// for files) against node:crypto: random bytes of random sizes fed in random
// chunks, a 50 MB input in chunks larger than the wasm slice, and how the
// hasher ends. Seeded: FERRY_SEED=<n> repeats a run (the seed is printed).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { loadCore } from '../../bindings/core.js';
import { createHasher } from '../../bindings/files/hash.js';
import { Rng } from './convergence-lib.js';

const SEED = process.env.FERRY_SEED ? Number(process.env.FERRY_SEED) : Math.floor(Math.random() * 2 ** 31);
console.log(`sha256.test.js seed ${SEED} (rerun: FERRY_SEED=${SEED} node --test tests/node/sha256.test.js)`);

let core;
before(async () => { core = await loadCore(); });

const nodeHex = (chunks) => {
  const h = crypto.createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
};

/** n seeded bytes, fast enough for 50 MB (rng.bytes draws one number a byte). */
function seededBytes(rng, n) {
  const out = new Uint8Array(n);
  const words = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = (rng.int(2 ** 32) | 1) >>> 0;
  for (let i = 0; i < words.length; i++) {   // xorshift32
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  for (let i = words.length * 4; i < n; i++) out[i] = rng.int(256);
  return out;
}

/** data cut at random points, pieces up to max bytes, empty ones included. */
function cut(rng, data, max) {
  const out = [];
  for (let at = 0; at < data.length;) {
    const n = Math.min(rng.int(max + 1), data.length - at);
    out.push(data.subarray(at, at + n));
    at += n;
  }
  if (rng.chance(0.2)) out.push(new Uint8Array(0));
  return out;
}

function wasmHex(chunks) {
  const h = core.sha256();
  try {
    for (const c of chunks) h.update(c);
    return h.digest();
  } finally {
    h.close();
  }
}

test('wasm_sha256_should_equal_node_crypto_on_random_sizes_in_random_chunks', () => {
  const rng = new Rng(SEED);
  for (let round = 0; round < 400; round++) {
    // Mostly sizes near a block edge or a few blocks long, some up to 300 KB.
    const size = rng.pick([
      () => rng.int(4) * 64 + rng.range(-2, 2),
      () => rng.int(1000),
      () => rng.int(300_000),
    ])();
    const data = seededBytes(rng, Math.max(0, size));
    const chunks = cut(rng, data, rng.pick([1, 63, 64, 65, 1000, 70_000, 400_000]));
    const want = nodeHex([data]);
    assert.equal(wasmHex(chunks), want, `round ${round}: ${data.length} bytes in ${chunks.length} chunks (seed ${SEED})`);
  }
});

test('wasm_sha256_should_equal_node_crypto_on_50mb_in_chunks_past_the_wasm_slice', () => {
  const rng = new Rng(SEED + 1);
  const data = seededBytes(rng, 50 * 1024 * 1024 + rng.int(4096));
  // Chunks up to 4 MiB: each crosses the 1 MiB buffer core.sha256() copies through.
  const chunks = cut(rng, data, 4 * 1024 * 1024);
  let t0 = performance.now();
  const want = nodeHex(chunks);
  const nodeMs = performance.now() - t0;
  t0 = performance.now();
  const got = wasmHex(chunks);
  const wasmMs = performance.now() - t0;
  assert.equal(got, want, `50 MB in ${chunks.length} chunks (seed ${SEED})`);
  const mbs = (ms) => (data.length / 1e6 / (ms / 1000)).toFixed(0);
  const line = `SHA-256 of ${(data.length / 1e6).toFixed(1)} MB: wasm ${mbs(wasmMs)} MB/s, node:crypto ${mbs(nodeMs)} MB/s`;
  console.log(line);
});

test('digest_should_end_the_hasher_and_close_should_be_safe_after_it', () => {
  const h = core.sha256();
  h.update(new TextEncoder().encode('abc'));
  assert.equal(h.digest(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  h.close();
  h.close();
  assert.throws(() => h.update(new Uint8Array(1)), { code: 'misuse' });
  assert.throws(() => h.digest(), { code: 'misuse' });
  const c = core.sha256();
  c.close();
  assert.throws(() => c.digest(), { code: 'misuse' });
});

test('update_should_refuse_what_is_not_a_uint8array_and_keep_hashing', () => {
  const h = core.sha256();
  try {
    assert.throws(() => h.update('abc'), { code: 'type' });
    h.update(Buffer.from('abc'));   // a Buffer is a Uint8Array
    assert.equal(h.digest(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  } finally {
    h.close();
  }
});

// A lost 1 MiB slice per long update would need 100 MiB more here.
test('hashers_ended_by_digest_or_close_should_not_grow_wasm_memory', () => {
  const data = new Uint8Array(1.5 * 1024 * 1024);
  for (let i = 0; i < 5; i++) wasmHex([data]);   // settle the allocator
  const before = core.M.HEAPU8.length;
  for (let i = 0; i < 1000; i++) {
    const h = core.sha256();
    h.update(data.subarray(0, i % 10 === 0 ? data.length : 100));
    if (i % 2) h.digest(); else h.close();
  }
  assert.equal(core.M.HEAPU8.length, before);
});

test('create_hasher_should_give_node_crypto_digests_with_or_without_a_core', async () => {
  const rng = new Rng(SEED + 2);
  const data = seededBytes(rng, 100_000);
  const want = nodeHex([data]);
  for (const arg of [core, undefined]) {
    const h = await createHasher(arg);
    for (const c of cut(rng, data, 5000)) h.update(c);
    assert.equal(h.digest(), want);
    h.close();
  }
});
