// A 200 MB file streamed up from one device and down to another through the
// real server on 127.0.0.1: neither device holds it in memory (each runs in
// its own process and reports how far its RSS grew), and it arrives whole.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createSyncServer } from './backend.js';
import { tempDir } from './helpers.js';

const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./fixtures/files-large-client.js', import.meta.url));
const SIZE = 200 * 1024 * 1024;
const MODEL = { version: '1', entities: { Photo: { attributes: { caption: 'string', image: 'file' }, sync: 'all' } } };

let srv;
after(() => srv?.close());

async function device(dir, mode) {
  const { stdout } = await run(process.execPath, ['--expose-gc', CLIENT, srv.url, dir, mode, String(SIZE)], { maxBuffer: 1 << 20, timeout: 240_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1));
}

/** The SHA-256 of the bytes the client fixture generates (the same recipe, here in this process). */
function expectedHash() {
  const block = crypto.createHash('sha512').update('ferry').digest();
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i += block.length) block.copy(chunk, i);
  const h = crypto.createHash('sha256');
  for (let at = 0, k = 0; at < SIZE; at += chunk.length, k++) {
    chunk.writeUInt32LE(k, 0);
    h.update(chunk.subarray(0, Math.min(chunk.length, SIZE - at)));
  }
  return h.digest('hex');
}

test('a_200mb_file_should_stream_up_and_down_without_filling_the_devices_memory', { timeout: 600_000 }, async (t) => {
  const dir = tempDir('files-large');
  srv = await createSyncServer({
    model: MODEL, dataDir: path.join(dir, 'server'), log: () => {},
    authenticate: (req) => (req.headers.authorization === 'Bearer tok-alice' ? { id: 'alice' } : null),
  });
  const hash = expectedHash();
  const up = await device(dir, 'up');
  assert.deepEqual(up.errors, []);
  assert.equal(up.ref.hash, hash);
  assert.equal(up.ref.size, SIZE);
  assert.equal(up.uploads, 0, 'the upload finished');
  assert.equal(await srv.blobs.size(hash), SIZE);
  const down = await device(dir, 'down');
  assert.deepEqual(down.errors, []);
  assert.deepEqual({ hash: down.hash, size: down.size }, { hash, size: SIZE });
  t.diagnostic(`RSS growth: uploading device ${up.growthMB} MB, downloading device ${down.growthMB} MB (200 MB file)`);
  // Network buffers already consumed count in the RSS until V8 collects
  // them, which it does by the pressure of such external memory (tens of MB):
  // the download's peak was 20-53 MB over runs of the same code. A device
  // holding the file would show its 200 MB.
  assert.ok(up.growthMB < 100, `the uploading device's RSS grew by ${up.growthMB} MB`);
  assert.ok(down.growthMB < 100, `the downloading device's RSS grew by ${down.growthMB} MB`);
});
