// The blob store contract (server/blobs.js, server/README.md) held against
// every implementation: the folder store always, the PostgreSQL store when
// FERRY_TEST_POSTGRES names a database (npm test runs this suite on both),
// and an app's own store plugged into a real server over HTTP.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { FileBlobStore } from '../../server/blob-files.js';
import { PostgresBlobStore, PART } from '../../server/blob-postgres.js';
import { BlobError, collectBlobs } from '../../server/blobs.js';
import { openPostgres } from '../../server/db-postgres.js';
import { createSyncServer } from '../../server/index.js';
import { backendFor } from './backend.js';
import { tempDir, rejection } from './helpers.js';

const pgUrl = process.env.FERRY_TEST_POSTGRES || '';
const closers = [];
after(async () => { for (const c of closers.reverse()) await c(); });

async function pgDb(tag) {
  const backend = await backendFor(path.join(tempDir(tag), 'db'));
  const db = await openPostgres(backend.postgres, { max: 4 });
  closers.push(() => db.close());
  return db;
}

const KINDS = {
  files: async (tag) => new FileBlobStore(path.join(tempDir(tag), 'files')),
  postgres: pgUrl ? async (tag) => PostgresBlobStore.open(await pgDb(tag)) : null,
};

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
/** A body of `bytes` in pieces of the given sizes (the rest in one), as a request streams it. */
async function* body(bytes, pieces = []) {
  let at = 0;
  for (const n of pieces) { yield bytes.subarray(at, at + n); at += n; }
  if (at < bytes.length) yield bytes.subarray(at);
}
/** A body cut off (as a reset connection) after `n` of its bytes. */
async function* cutBody(bytes, n) {
  yield bytes.subarray(0, n);
  throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}
async function readAll(store, hash, start, end) {
  const parts = [];
  for await (const p of await store.read(hash, start, end)) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}
async function refusal(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof BlobError, `a BlobError, not ${e?.stack}`);
    return e;
  }
  assert.fail('the append should have been refused');
}
async function listed(store) {
  const out = [];
  for await (const b of store.list()) out.push(b.hash);
  return out.sort();
}

for (const [kind, make] of Object.entries(KINDS)) {
  const opts = make ? {} : { skip: 'FERRY_TEST_POSTGRES names no database' };

  test(`${kind}: an_upload_in_appends_should_store_the_exact_bytes_and_read_any_range`, opts, async () => {
    const store = await make(`blob-${kind}-ranges`);
    const bytes = crypto.randomBytes(2 * PART + PART / 2 + 7);
    const hash = sha(bytes);
    assert.equal(await store.size(hash), null);
    const first = 700_001;
    assert.deepEqual(await store.append(hash, bytes.length, 0, body(bytes.subarray(0, first), [1, 65_536, 3]), 'u1'), { received: first, complete: false });
    assert.equal(await store.received(hash, 'u1'), first);
    assert.equal(await store.received(hash, 'u2'), 0, "one uploader's bytes are not another's");
    assert.equal(await store.size(hash), null, 'not stored before the last byte');
    assert.deepEqual(await store.append(hash, bytes.length, first, body(bytes.subarray(first), [PART + 5]), 'u1'), { received: bytes.length, complete: true });
    assert.equal(await store.size(hash), bytes.length);
    assert.deepEqual(await listed(store), [hash]);
    assert.ok((await readAll(store, hash, 0, bytes.length - 1)).equals(bytes));
    for (const [s, e] of [[0, 0], [PART - 1, PART], [first - 3, first + 3], [PART + 1, 2 * PART + 1], [bytes.length - 1, bytes.length - 1], [5, bytes.length - 6]]) {
      assert.ok((await readAll(store, hash, s, e)).equals(bytes.subarray(s, e + 1)), `bytes ${s}-${e}`);
    }
  });

  test(`${kind}: an_append_that_does_not_fit_should_be_refused_and_leave_what_was_there`, opts, async () => {
    const store = await make(`blob-${kind}-refused`);
    const bytes = crypto.randomBytes(300_000);
    const hash = sha(bytes);
    await store.append(hash, bytes.length, 0, body(bytes.subarray(0, 100_000)), 'u');
    const skip = await refusal(store.append(hash, bytes.length, 150_000, body(bytes.subarray(150_000)), 'u'));
    assert.equal(skip.code, 'offset_mismatch');
    assert.deepEqual(skip.extra, { received: 100_000 });
    const long = await refusal(store.append(hash, bytes.length, 100_000, body(Buffer.concat([bytes.subarray(100_000), Buffer.from('x')]), [150_000]), 'u'));
    assert.equal(long.code, 'too_long');
    assert.equal(await store.received(hash, 'u'), 100_000, 'none of the too-long body counts');
    const wrong = Buffer.from(bytes);
    wrong[250_000] ^= 1;
    const bad = await refusal(store.append(hash, bytes.length, 100_000, body(wrong.subarray(100_000)), 'u'));
    assert.equal(bad.code, 'hash_mismatch');
    assert.equal(await store.received(hash, 'u'), 0, 'a mismatch starts the upload over');
    assert.equal(await store.size(hash), null);
    assert.equal((await store.append(hash, bytes.length, 0, body(bytes), 'u')).complete, true);
    assert.ok((await readAll(store, hash, 0, bytes.length - 1)).equals(bytes));
  });

  test(`${kind}: a_cut_body_should_keep_what_arrived_and_resume_after_it`, opts, async () => {
    const store = await make(`blob-${kind}-cut`);
    const bytes = crypto.randomBytes(PART + 200_000);
    const hash = sha(bytes);
    const cut = await refusal(store.append(hash, bytes.length, 0, cutBody(bytes, 123_457), 'u'));
    assert.equal(cut.code, 'cut');
    const at = await store.received(hash, 'u');
    assert.equal(at, 123_457);
    assert.equal((await store.append(hash, bytes.length, at, body(bytes.subarray(at)), 'u')).complete, true);
    assert.ok((await readAll(store, hash, 0, bytes.length - 1)).equals(bytes));
  });

  test(`${kind}: appends_racing_for_one_upload_should_never_interleave_bytes`, opts, async () => {
    const store = await make(`blob-${kind}-race`);
    const bytes = crypto.randomBytes(600_000);
    const hash = sha(bytes);
    const tries = await Promise.allSettled([0, 1, 2].map(() => store.append(hash, bytes.length, 0, body(bytes.subarray(0, 300_000), [1000]), 'u')));
    assert.equal(tries.filter((t) => t.status === 'fulfilled').length, 1, 'one append at offset 0 wins');
    for (const t of tries.filter((x) => x.status === 'rejected')) assert.equal(t.reason.code, 'offset_mismatch');
    assert.equal((await store.append(hash, bytes.length, 300_000, body(bytes.subarray(300_000)), 'u')).complete, true);
    assert.ok((await readAll(store, hash, 0, bytes.length - 1)).equals(bytes));
  });

  test(`${kind}: the_same_bytes_from_two_uploaders_should_be_stored_once`, opts, async () => {
    const store = await make(`blob-${kind}-dedupe`);
    const bytes = crypto.randomBytes(50_000);
    const hash = sha(bytes);
    await store.append(hash, bytes.length, 0, body(bytes.subarray(0, 10)), 'a');
    await store.append(hash, bytes.length, 0, body(bytes.subarray(0, 20)), 'b');
    const [x, y] = await Promise.all([
      store.append(hash, bytes.length, 10, body(bytes.subarray(10)), 'a'),
      store.append(hash, bytes.length, 20, body(bytes.subarray(20)), 'b'),
    ]);
    assert.equal(x.complete && y.complete, true);
    assert.deepEqual(await listed(store), [hash]);
    assert.equal(await store.received(hash, 'a'), 0);
    assert.equal(await store.received(hash, 'b'), 0);
    assert.ok((await readAll(store, hash, 0, bytes.length - 1)).equals(bytes));
    const empty = Buffer.alloc(0);
    assert.deepEqual(await store.append(sha(empty), 0, 0, body(empty), 'a'), { received: 0, complete: true });
    assert.equal(await store.size(sha(empty)), 0);
  });

  test(`${kind}: collection_should_take_old_unreferenced_blobs_and_abandoned_uploads_only`, opts, async () => {
    const store = await make(`blob-${kind}-collect`);
    const keep = crypto.randomBytes(1000);
    const drop = crypto.randomBytes(1000);
    const half = crypto.randomBytes(1000);
    for (const b of [keep, drop]) await store.append(sha(b), b.length, 0, body(b), 'u');
    await store.append(sha(half), half.length, 0, body(half.subarray(0, 400)), 'u');
    const referenced = async (hash) => hash === sha(keep);
    assert.deepEqual(await collectBlobs(store, referenced, { grace: 60_000 }), { blobs: 0, partial: 0 }, 'nothing within the grace period');
    const forgot = [];
    assert.deepEqual(await collectBlobs(store, referenced, { grace: 60_000, now: Date.now() + 120_000, forget: async (h) => forgot.push(h) }), { blobs: 1, partial: 1 });
    assert.deepEqual(forgot, [sha(drop)]);
    assert.deepEqual(await listed(store), [sha(keep)]);
    assert.equal(await store.received(sha(half), 'u'), 0);
    assert.ok((await readAll(store, sha(keep), 0, 999)).equals(keep));
  });
}

test('postgres: two_processes_should_continue_each_others_uploads_and_serve_each_others_blobs', pgUrl ? {} : { skip: 'FERRY_TEST_POSTGRES names no database' }, async () => {
  // Two pools on one schema are what two server processes are to the store.
  const backend = await backendFor(path.join(tempDir('blob-pg-two'), 'db'));
  const dbs = [await openPostgres(backend.postgres, { max: 2 }), await openPostgres(backend.postgres, { max: 2 })];
  for (const db of dbs) closers.push(() => db.close());
  const [one, two] = await Promise.all(dbs.map((db) => PostgresBlobStore.open(db)));
  const bytes = crypto.randomBytes(PART + 99_999);
  const hash = sha(bytes);
  await one.append(hash, bytes.length, 0, body(bytes.subarray(0, 500_000)), 'u');
  assert.equal(await two.received(hash, 'u'), 500_000);
  // A stale running hash in `one` must not vouch for bytes `two` wrote since.
  await two.append(hash, bytes.length, 500_000, body(bytes.subarray(500_000, 900_000)), 'u');
  const bad = Buffer.from(bytes.subarray(900_000));
  bad[0] ^= 1;
  assert.equal((await refusal(one.append(hash, bytes.length, 900_000, body(bad), 'u'))).code, 'hash_mismatch');
  await two.append(hash, bytes.length, 0, body(bytes.subarray(0, 700_000)), 'u');
  assert.equal((await one.append(hash, bytes.length, 700_000, body(bytes.subarray(700_000)), 'u')).complete, true);
  assert.ok((await readAll(two, hash, 0, bytes.length - 1)).equals(bytes));
  // Both processes append at once where the upload stands: the rows take one, the other is told where it stands.
  const other = crypto.randomBytes(3 * PART);
  const oh = sha(other);
  const race = await Promise.allSettled([one, two, one, two].map((s) => s.append(oh, other.length, 0, body(other.subarray(0, 2 * PART), [PART / 4, PART / 4, PART / 4]), 'u')));
  assert.equal(race.filter((t) => t.status === 'fulfilled').length, 1, JSON.stringify(race.map((t) => t.reason?.code ?? t.value)));
  for (const t of race.filter((x) => x.status === 'rejected')) assert.equal(t.reason.code, 'offset_mismatch');
  const at = await one.received(oh, 'u');
  assert.equal((await two.append(oh, other.length, at, body(other.subarray(at)), 'u')).complete, true);
  assert.ok((await readAll(one, oh, 0, other.length - 1)).equals(other));
});

test('an_app_blob_store_should_keep_every_file_the_server_is_given', async () => {
  // The app's store here wraps the folder store and records what the server asks of it.
  const inner = new FileBlobStore(path.join(tempDir('blob-app'), 'elsewhere'));
  const calls = [];
  const mine = {};
  for (const m of ['size', 'received', 'append', 'read', 'list', 'remove', 'sweep']) {
    mine[m] = (...args) => { calls.push(m); return inner[m](...args); };
  }
  const srv = await createSyncServer({
    model: { version: '1', entities: { Photo: { attributes: { caption: 'string', image: 'file' }, sync: 'all' } } },
    dataDir: path.join(tempDir('blob-app'), 'server'), log: () => {}, blobs: mine,
  });
  closers.push(() => srv.close());
  const bytes = crypto.randomBytes(70_000);
  const ref = { hash: sha(bytes), size: bytes.length, type: 'image/png', name: 'p.png' };
  const push = await fetch(`${srv.url}/sync/push`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ clientId: 'c-app-blob-store-test-01', modelVersion: '1', mutations: [{ mid: 1, base: 0, ts: Date.now(), op: 'upsert', entity: 'Photo', id: 'p', changed: ['caption', 'image'], values: { caption: 'c', image: ref } }] }),
  });
  assert.equal(push.status, 200);
  const put = await fetch(`${srv.url}/sync/files/${ref.hash}?offset=0`, { method: 'PUT', body: bytes });
  assert.equal((await put.json()).complete, true);
  assert.equal(await inner.size(ref.hash), bytes.length, 'the bytes went to the app store');
  const got = await fetch(`${srv.url}/sync/files/${ref.hash}`, { headers: { range: 'bytes=100-199' } });
  assert.equal(got.status, 206);
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes.subarray(100, 200)));
  assert.deepEqual((await srv.purge({ now: Date.now() + 2 * 24 * 3600 * 1000 })).files, { blobs: 0, partial: 0 }, 'a referenced blob stays');
  for (const m of ['append', 'size', 'read', 'list', 'sweep']) assert.ok(calls.includes(m), `the server used ${m}`);
  const e = await rejection(createSyncServer({ model: { version: '1', entities: {} }, blobs: { size() {} } }));
  assert.equal(e.code, 'misuse');
  assert.match(e.message, /missing: received, append, read, list, remove, sweep/);
  const pg = await rejection(createSyncServer({ model: { version: '1', entities: {} }, blobs: 'postgres' }));
  assert.equal(pg.code, 'misuse');
});
