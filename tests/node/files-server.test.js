// The server's blob store (docs/PROTOCOL.md, Files) over raw HTTP on
// 127.0.0.1: resumable uploads that survive a cut anywhere, bytes checked
// against their hash, one copy per hash, Range downloads, and access through
// the objects that reference a file: a hash alone reveals nothing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createSyncServer } from './backend.js';
import { tempDir } from './helpers.js';

const MODEL = {
  version: '1',
  entities: {
    Doc: { attributes: { owner: 'string', title: 'string', file: 'file' }, sync: { where: 'owner = $user.id' } },
    Photo: { attributes: { caption: 'string', image: 'file' }, sync: 'all' },
  },
};
const USERS = { 'tok-alice': { id: 'alice' }, 'tok-bob': { id: 'bob' } };
const servers = [];
after(async () => { for (const s of servers) await s.close(); });

async function start(extra = {}) {
  const srv = await createSyncServer({
    model: MODEL, dataDir: path.join(tempDir('files-server'), 'server'), log: () => {},
    authenticate: (req) => USERS[(req.headers.authorization || '').replace(/^Bearer /, '')] || null,
    ...extra,
  });
  servers.push(srv);
  return srv;
}

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const refOf = (bytes, name = 'f.bin', type = 'application/octet-stream') => ({ hash: sha(bytes), size: bytes.length, type, name });
const auth = (user) => ({ authorization: `Bearer tok-${user}` });

let mids = 0;
async function push(srv, user, mutations) {
  const res = await fetch(`${srv.url}/sync/push`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...auth(user) },
    body: JSON.stringify({ clientId: `c-${user}-test-client-0001`, modelVersion: '1', mutations: mutations.map((m) => ({ mid: ++mids, base: 0, ts: Date.now(), op: 'upsert', changed: Object.keys(m.values || {}), ...m })) }),
  });
  assert.equal(res.status, 200);
  return (await res.json()).results;
}

const put = (srv, user, hash, offset, body) => fetch(`${srv.url}/sync/files/${hash}?offset=${offset}`, { method: 'PUT', headers: auth(user), body });
const head = (srv, user, hash) => fetch(`${srv.url}/sync/files/${hash}`, { method: 'HEAD', headers: auth(user) });

/**
 * A PUT whose connection is cut after `sendBytes` of `body` went out: closed
 * (the server reads every byte sent, then the end) or reset (bytes still in
 * the server's socket buffer may be lost).
 */
function cutPut(srv, user, hash, offset, body, sendBytes, how) {
  return new Promise((resolve) => {
    const u = new URL(`${srv.url}/sync/files/${hash}?offset=${offset}`);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'PUT', headers: { ...auth(user), 'content-length': body.length } });
    let status = null;
    req.on('error', () => {});
    req.on('response', (res) => { status = res.statusCode; res.resume(); });
    req.write(body.subarray(0, sendBytes), () => {
      // After a close the server answers once it has taken the bytes; after a reset nobody answers.
      if (how === 'close') req.socket.end(); else req.destroy();
    });
    req.on('close', () => resolve(status));
  });
}

/** Waits until the server has finished with the cut request: no upload running, the count still for a while. */
async function settled(srv, hash) {
  let last = -1;
  for (let i = 0, still = 0; still < 3 && i < 500; i++) {
    await new Promise((r) => setTimeout(r, 30));
    const now = await srv.blobs.received(hash, 'id:alice');
    still = now === last && !srv.blobs.locks.size ? still + 1 : 0;
    last = now;
  }
}

async function received(srv, user, hash) {
  const r = await head(srv, user, hash);
  return r.status === 200 ? Number(r.headers.get('content-length')) : Number(r.headers.get('x-ferry-received'));
}

test('an_upload_cut_anywhere_should_resume_from_what_arrived_and_download_byte_exact', async () => {
  const srv = await start();
  const bytes = crypto.randomBytes(5 * 1024 * 1024 + 123);
  const ref = refOf(bytes, 'meter.jpg', 'image/jpeg');
  assert.equal((await push(srv, 'alice', [{ entity: 'Doc', id: 'd1', values: { owner: 'alice', title: 'meter', file: ref } }]))[0].status, 'applied');
  // Before any byte: the reference is there, the file is pending.
  const pending = await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: auth('alice') });
  assert.equal(pending.status, 404);
  assert.equal((await pending.json()).error, 'file_pending');
  // Cut three times at random points, resuming from what the server says arrived.
  let at = 0;
  let sentInFull = 0;
  for (const [frac, how] of [[0.2, 'close'], [0.45, 'reset'], [0.6, 'close'], [0.8, 'reset']]) {
    const upto = Math.floor(bytes.length * frac);
    // A server still busy with the last cut says where it really stands (409), as it would to a device.
    while (await cutPut(srv, 'alice', ref.hash, at, bytes.subarray(at), upto - at, how) === 409) {
      await settled(srv, ref.hash);
      at = await received(srv, 'alice', ref.hash);
    }
    sentInFull += upto - at;
    await settled(srv, ref.hash);
    const now = await received(srv, 'alice', ref.hash);
    assert.ok(now >= at && now <= upto, `resumes at ${now}, between ${at} and ${upto}`);
    if (how === 'close') assert.equal(now, upto, 'a closed connection keeps every byte that was sent');
    at = now;
  }
  const done = await put(srv, 'alice', ref.hash, at, bytes.subarray(at));
  assert.equal(done.status, 200);
  assert.deepEqual(await done.json(), { hash: ref.hash, size: bytes.length, received: bytes.length, complete: true });
  assert.ok(sentInFull + (bytes.length - at) < 2 * bytes.length, 'nothing went up twice in full');
  const got = await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: auth('alice') });
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), 'image/jpeg');
  assert.equal(sha(Buffer.from(await got.arrayBuffer())), ref.hash);
  const part = await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: { ...auth('alice'), range: 'bytes=1000-1999' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 1000-1999/${bytes.length}`);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(1000, 2000));
  const tail = await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: { ...auth('alice'), range: 'bytes=-10' } });
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), bytes.subarray(bytes.length - 10));
  assert.equal((await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: { ...auth('alice'), range: `bytes=${bytes.length}-` } })).status, 416);
});

test('a_file_should_be_reachable_only_through_an_object_its_user_may_read_or_write', async () => {
  const srv = await start();
  const bytes = crypto.randomBytes(10_000);
  const ref = refOf(bytes);
  await push(srv, 'alice', [{ entity: 'Doc', id: 'private', values: { owner: 'alice', title: 'mine', file: ref } }]);
  // Bob may neither upload nor read it, and cannot tell whether it exists.
  const up = await put(srv, 'bob', ref.hash, 0, bytes);
  assert.equal(up.status, 404);
  assert.equal((await put(srv, 'alice', ref.hash, 0, bytes)).status, 200);
  for (const method of ['GET', 'HEAD']) {
    const r = await fetch(`${srv.url}/sync/files/${ref.hash}`, { method, headers: auth('bob') });
    assert.equal(r.status, 404, method);
    assert.equal(r.headers.get('x-ferry-received'), null, 'nothing about the upload');
  }
  const unknown = sha(Buffer.from('never referenced'));
  assert.equal((await fetch(`${srv.url}/sync/files/${unknown}`, { headers: auth('bob') })).status, 404);
  assert.equal((await fetch(`${srv.url}/sync/files/${ref.hash}`)).status, 401);
  assert.equal((await fetch(`${srv.url}/sync/files/not-a-hash`, { headers: auth('alice') })).status, 404);
  assert.equal((await fetch(`${srv.url}/sync/files/${ref.hash}`, { method: 'DELETE', headers: auth('alice') })).status, 405);
  // A reference in an object everyone reads opens the same bytes to everyone.
  await push(srv, 'alice', [{ entity: 'Photo', id: 'p1', values: { caption: 'shared', image: ref } }]);
  assert.equal((await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: auth('bob') })).status, 200);
  // Giving the Doc away does not hand Bob Alice's other private files.
  const other = crypto.randomBytes(100);
  await push(srv, 'alice', [{ entity: 'Doc', id: 'private2', values: { owner: 'alice', title: 'also mine', file: refOf(other) } }]);
  assert.equal((await fetch(`${srv.url}/sync/files/${sha(other)}`, { method: 'HEAD', headers: auth('bob') })).status, 404);
});

test('bytes_that_do_not_hash_right_should_be_refused_and_the_upload_should_start_over', async () => {
  const srv = await start();
  const bytes = crypto.randomBytes(64 * 1024);
  const ref = refOf(bytes);
  await push(srv, 'alice', [{ entity: 'Photo', id: 'p', values: { caption: 'x', image: ref } }]);
  const wrong = Buffer.from(bytes);
  wrong[100] ^= 1;
  const r = await put(srv, 'alice', ref.hash, 0, wrong);
  assert.equal(r.status, 422);
  assert.equal((await r.json()).error, 'hash_mismatch');
  assert.equal(await received(srv, 'alice', ref.hash), 0);
  // Bytes past the size never count.
  assert.equal((await put(srv, 'alice', ref.hash, 0, Buffer.concat([bytes, Buffer.from('x')])).catch(() => ({ status: 'cut' }))).status !== 200, true);
  assert.equal(await received(srv, 'alice', ref.hash), 0);
  // An offset that is not where the upload stands says where it stands.
  await put(srv, 'alice', ref.hash, 0, bytes.subarray(0, 1000));
  const skip = await put(srv, 'alice', ref.hash, 5000, bytes.subarray(5000));
  assert.equal(skip.status, 409);
  assert.deepEqual(await skip.json(), { error: 'offset_mismatch', message: `the upload of ${ref.hash} stands at 1000 bytes, not 5000`, received: 1000 });
  assert.equal((await put(srv, 'alice', ref.hash, 1000, bytes.subarray(1000))).status, 200);
  assert.equal(await received(srv, 'alice', ref.hash), bytes.length);
});

test('the_hash_taken_while_bytes_are_written_should_vouch_only_for_the_partial_file_as_this_server_left_it', async () => {
  // The folder store's running hash and partial files (the PostgreSQL store's: tests/node/blob-stores.test.js).
  const dir = path.join(tempDir('files-hashing'), 'server');
  let srv = await start({ dataDir: dir, blobs: 'files' });
  const bytes = crypto.randomBytes(300_000);
  const ref = refOf(bytes);
  await push(srv, 'alice', [{ entity: 'Photo', id: 'p', values: { caption: 'x', image: ref } }]);
  assert.equal((await put(srv, 'alice', ref.hash, 0, bytes.subarray(0, 100_000))).status, 200);
  assert.equal(srv.blobs.hashing.size, 1, 'the hash of the bytes so far is kept for the next append');
  // A restart between appends: the new process hashes the file from disk at the end.
  await srv.close();
  servers.splice(servers.indexOf(srv), 1);
  srv = await start({ dataDir: dir, blobs: 'files' });
  assert.equal((await put(srv, 'alice', ref.hash, 100_000, bytes.subarray(100_000, 200_000))).status, 200);
  assert.equal(srv.blobs.hashing.size, 0);
  assert.deepEqual(await (await put(srv, 'alice', ref.hash, 200_000, bytes.subarray(200_000))).json(), { hash: ref.hash, size: bytes.length, received: bytes.length, complete: true });
  assert.equal(sha(Buffer.from(await (await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: auth('alice') })).arrayBuffer())), ref.hash);
  // A partial file changed on disk between appends (same size) is hashed from disk, so its bytes are refused.
  const other = crypto.randomBytes(200_000);
  const oref = refOf(other);
  await push(srv, 'alice', [{ entity: 'Photo', id: 'q', values: { caption: 'y', image: oref } }]);
  assert.equal((await put(srv, 'alice', oref.hash, 0, other.subarray(0, 100_000))).status, 200);
  await new Promise((r) => setTimeout(r, 50));   // past the file system's clock tick, so the mtime moves
  const [partial] = fs.readdirSync(srv.blobs.partial).filter((n) => n.startsWith(oref.hash));
  const fd = fs.openSync(path.join(srv.blobs.partial, partial), 'r+');
  fs.writeSync(fd, Buffer.from([other[10] ^ 1]), 0, 1, 10);
  fs.closeSync(fd);
  const r = await put(srv, 'alice', oref.hash, 100_000, other.subarray(100_000));
  assert.equal(r.status, 422);
  assert.equal((await r.json()).error, 'hash_mismatch');
  assert.equal(srv.blobs.hashing.size, 0);
});

test('the_same_bytes_should_be_stored_once_and_not_uploaded_again', async () => {
  const srv = await start();
  const bytes = crypto.randomBytes(300_000);
  const ref = refOf(bytes);
  await push(srv, 'alice', [{ entity: 'Photo', id: 'a', values: { caption: 'one', image: ref } }]);
  assert.equal((await put(srv, 'alice', ref.hash, 0, bytes)).status, 200);
  await push(srv, 'bob', [{ entity: 'Photo', id: 'b', values: { caption: 'two', image: { ...ref, name: 'copy.bin' } } }]);
  // Bob's device asks first and finds the bytes there.
  const h = await head(srv, 'bob', ref.hash);
  assert.equal(h.status, 200);
  assert.equal(Number(h.headers.get('content-length')), bytes.length);
  const again = await put(srv, 'bob', ref.hash, 0, Buffer.alloc(0));
  assert.deepEqual(await again.json(), { hash: ref.hash, size: bytes.length, received: bytes.length, complete: true });
});

test('a_file_over_the_limit_should_get_413_and_an_empty_file_should_work', async () => {
  const srv = await start({ fileLimit: 1000 });
  const big = crypto.randomBytes(1001);
  await push(srv, 'alice', [{ entity: 'Photo', id: 'big', values: { caption: 'big', image: refOf(big) } }]);
  const r = await put(srv, 'alice', sha(big), 0, big);
  assert.equal(r.status, 413);
  assert.equal((await r.json()).error, 'too_large');
  const empty = Buffer.alloc(0);
  await push(srv, 'alice', [{ entity: 'Photo', id: 'empty', values: { caption: 'empty', image: refOf(empty) } }]);
  assert.deepEqual(await (await put(srv, 'alice', sha(empty), 0, empty)).json(), { hash: sha(empty), size: 0, received: 0, complete: true });
  const got = await fetch(`${srv.url}/sync/files/${sha(empty)}`, { headers: auth('bob') });
  assert.equal(got.status, 200);
  assert.equal((await got.arrayBuffer()).byteLength, 0);
});

test('unreferenced_files_should_be_collected_after_the_grace_period', async () => {
  const srv = await start({ fileGrace: 60_000 });
  const one = crypto.randomBytes(2000);
  const two = crypto.randomBytes(2000);
  await push(srv, 'alice', [{ entity: 'Photo', id: 'p', values: { caption: 'c', image: refOf(one) } }]);
  assert.equal((await put(srv, 'alice', sha(one), 0, one)).status, 200);
  await push(srv, 'alice', [{ entity: 'Photo', id: 'p', values: { image: refOf(two) } }]);
  assert.equal((await put(srv, 'alice', sha(two), 0, two.subarray(0, 500))).status, 200);   // abandoned half way
  assert.deepEqual((await srv.purge()).files, { blobs: 0, partial: 0 }, 'nothing within the grace period');
  const later = Date.now() + 120_000;
  assert.deepEqual((await srv.purge({ now: later })).files, { blobs: 1, partial: 1 });
  assert.equal(await srv.blobs.size(sha(one)), null);
});

test('knowing_a_hash_should_not_open_its_bytes_without_holding_them', async () => {
  const srv = await start();
  const secret = crypto.randomBytes(5000);
  const ref = refOf(secret, 'payslip.pdf', 'application/pdf');
  await push(srv, 'alice', [{ entity: 'Doc', id: 'mine', values: { owner: 'alice', title: 'payslip', file: ref } }]);
  assert.equal((await put(srv, 'alice', ref.hash, 0, secret)).status, 200);
  // Bob learned the hash (or guesses a small file): he references it from an object of his own.
  assert.equal((await push(srv, 'bob', [{ entity: 'Doc', id: 'bobs', values: { owner: 'bob', title: 'guess', file: ref } }]))[0].status, 'applied');
  for (const method of ['GET', 'HEAD']) {
    const r = await fetch(`${srv.url}/sync/files/${ref.hash}`, { method, headers: auth('bob') });
    assert.equal(r.status, 404, `${method}: the bytes are not Bob's to read`);
    assert.equal(r.headers.get('x-ferry-received'), '0', `${method}: and nothing says someone uploaded them`);
  }
  // Nor does an upload tell him: with nothing sent it is at 0, like any new file.
  assert.deepEqual(await (await put(srv, 'bob', ref.hash, 0, Buffer.alloc(0))).json(), { hash: ref.hash, size: secret.length, received: 0, complete: false });
  // Sending the very bytes proves he holds them; then they are his to read, and stored once.
  const wrong = Buffer.from(secret);
  wrong[0] ^= 1;
  assert.equal((await put(srv, 'bob', ref.hash, 0, wrong)).status, 422);
  assert.equal((await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: auth('alice') })).status, 200, "a wrong upload by Bob leaves Alice's bytes alone");
  assert.deepEqual(await (await put(srv, 'bob', ref.hash, 0, secret)).json(), { hash: ref.hash, size: secret.length, received: secret.length, complete: true });
  const got = await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: auth('bob') });
  assert.equal(got.status, 200);
  assert.equal(sha(Buffer.from(await got.arrayBuffer())), ref.hash);
  // A server-side write is trusted, and one who downloaded a file holds it: a copied reference keeps working.
  await srv.write('Photo', [{ id: 'srv', caption: 'from the office', image: refOf(secret) }]);
  assert.equal((await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: auth('bob') })).status, 200);
});
