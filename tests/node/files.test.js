// db.files on Node clients against the real server on 127.0.0.1 through the
// fault proxy: bytes in the device's file store, references in the rows, and
// the transfer queue that moves them on its own (docs/FILES.md).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startWorld } from './sync-helpers.js';

const MODEL = {
  version: '1',
  entities: {
    Photo: { attributes: { caption: 'string', image: 'file' }, sync: 'all' },
    Doc: { attributes: { owner: 'string', title: 'string', file: 'file' }, sync: { where: 'owner = $user.id' } },
  },
};
const USERS = { 'tok-alice': { id: 'alice' }, 'tok-bob': { id: 'bob' } };
const as = (user) => ({ headers: async () => ({ authorization: `Bearer tok-${user}` }) });
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

const worlds = [];
after(async () => { for (const w of worlds) await w.stop(); });

async function world(tag, model = MODEL, server = {}) {
  const w = await startWorld(tag, {
    model,
    server: { authenticate: (req) => USERS[(req.headers.authorization || '').replace(/^Bearer /, '')] || null, ...server },
  });
  worlds.push(w);
  return w;
}

/** The bytes the server's blob store holds for `hash`, read through the store. */
async function storedBytes(srv, hash) {
  const parts = [];
  for await (const p of await srv.blobs.read(hash, 0, (await srv.blobs.size(hash)) - 1)) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

/** Deterministic bytes: a file from a seed (xorshift). */
function bytesOf(n, seed) {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; out[i] = x & 0xff; }
  return out;
}

const putBytes = (proxy, hash) => proxy.forwarded
  .filter((f) => f.method === 'PUT' && f.path.includes(hash))
  .reduce((n, f) => n + f.request.length, 0);

test('a_5mb_file_put_on_one_device_should_arrive_byte_identical_on_another', { timeout: 120_000 }, async () => {
  const w = await world('files-two');
  const a = await w.client('a', as('alice'));
  const b = await w.client('b', as('alice'));
  await a.sync();
  await a.exec("INSERT INTO Photo(id, caption) VALUES ('p1', 'meter')");
  const bytes = bytesOf(5 * 1024 * 1024 + 17, 7);
  const ref = await a.files.put('Photo', 'p1', 'image', bytes, { type: 'image/jpeg', name: 'meter.jpg' });
  assert.deepEqual(ref, { hash: sha(bytes), size: bytes.length, type: 'image/jpeg', name: 'meter.jpg' });
  // On A at once, before any sync; the SQLite image holds only the reference.
  assert.deepEqual(await a.files.get('Photo', 'p1', 'image'), bytes);
  const [row] = await a.query("SELECT image FROM Photo WHERE id = 'p1'");
  assert.equal(row.image, JSON.stringify(ref));
  await a.files.flush();
  assert.equal(a.files.status().uploads, 1);
  assert.equal(putBytes(w.proxy, ref.hash), 0, 'no byte may go up before the object is pushed');
  await a.sync();
  await a.files.flush();
  assert.equal(putBytes(w.proxy, ref.hash), bytes.length);
  assert.equal(a.files.status().uploads, 0);
  await b.sync();
  await b.files.flush();
  assert.deepEqual(await b.files.get('Photo', 'p1', 'image'), bytes);
  const chunks = [];
  for await (const c of await b.files.get('Photo', 'p1', 'image', { stream: true })) chunks.push(c);
  assert.equal(sha(Buffer.concat(chunks)), ref.hash);
  assert.deepEqual(await b.syncErrors(), []);
});

test('the_same_bytes_on_two_objects_should_upload_once', { timeout: 60_000 }, async () => {
  const w = await world('files-dedupe');
  const a = await w.client('a', as('alice'));
  const c = await w.client('c', as('bob'));
  await a.sync();
  await c.sync();
  const bytes = bytesOf(1024 * 1024 + 5, 11);
  await a.exec("INSERT INTO Photo(id) VALUES ('p1'), ('p2')");
  await a.files.put('Photo', 'p1', 'image', bytes, { name: 'one.bin' });
  await a.files.put('Photo', 'p2', 'image', bytes, { name: 'two.bin' });
  await a.sync();
  await a.files.flush();
  // Another device of another user with the same bytes: the server has them.
  await c.exec("INSERT INTO Photo(id) VALUES ('p3')");
  await c.files.put('Photo', 'p3', 'image', bytes, { name: 'three.bin' });
  await c.sync();
  await c.files.flush();
  assert.equal(putBytes(w.proxy, sha(bytes)), bytes.length);
  assert.equal(fs.readdirSync(path.join(w.dir, 'a.db.files', 'blobs')).length, 1, 'one local copy per hash');
  assert.equal(a.files.status().uploads, 0);
  assert.equal(c.files.status().uploads, 0);
});

test('a_file_of_a_private_object_should_reach_no_other_user', { timeout: 60_000 }, async () => {
  const w = await world('files-private');
  const a = await w.client('a', as('alice'));
  const b = await w.client('b', as('bob'));
  await a.sync();
  await a.exec("INSERT INTO Doc(id, owner, title) VALUES ('d1', 'alice', 'contract')");
  const bytes = bytesOf(300_000, 3);
  const ref = await a.files.put('Doc', 'd1', 'file', bytes, { type: 'application/pdf', name: 'contract.pdf' });
  await a.sync();
  await a.files.flush();
  assert.equal(putBytes(w.proxy, ref.hash), bytes.length);
  // By hash alone: nothing for bob, not even that it exists.
  for (const method of ['GET', 'HEAD']) {
    const res = await fetch(`${w.srv.url}/sync/files/${ref.hash}`, { method, headers: { authorization: 'Bearer tok-bob' } });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-ferry-received'), null);
  }
  const own = await fetch(`${w.srv.url}/sync/files/${ref.hash}`, { headers: { authorization: 'Bearer tok-alice' } });
  assert.equal(sha(Buffer.from(await own.arrayBuffer())), ref.hash);
  await b.sync();
  await b.files.flush();
  assert.deepEqual(await b.query('SELECT id FROM Doc'), []);
  assert.deepEqual(fs.readdirSync(path.join(w.dir, 'b.db.files', 'blobs')), []);
});

test('an_upload_cut_at_20_random_points_should_resume_and_send_nothing_twice', { timeout: 180_000 }, async () => {
  const w = await world('files-cuts');
  const chunk = 64 * 1024;
  const a = await w.client('a', { ...as('alice'), fileChunk: chunk, fileBackoff: 5 });
  await a.sync();
  await a.exec("INSERT INTO Photo(id) VALUES ('p1')");
  const bytes = bytesOf(5 * 1024 * 1024, 1234);
  const ref = await a.files.put('Photo', 'p1', 'image', bytes, { name: 'big.bin' });
  await a.sync();
  // 20 seeded cuts among the ~80 chunk PUTs, each at a random byte of the body.
  let seed = 20240611;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32; };
  const cutAt = new Set();
  while (cutAt.size < 20) cutAt.add(Math.floor(rnd() * 60));
  let nth = 0;
  let cuts = 0;
  w.proxy.rules.push({
    method: 'PUT', path: /\/sync\/files\//,
    fault: (req) => {
      if (!/offset=/.test(req.url) || !cutAt.has(nth++)) return undefined;
      cuts++;
      return { cutBodyAt: Math.floor(rnd() * chunk) };
    },
  });
  await a.files.flush();
  assert.equal(cuts, 20);
  assert.equal(sha(await storedBytes(w.srv, ref.hash)), ref.hash);
  // What the proxy let through adds up to the file about once (a cut
  // prefix the server had not written when the connection went is sent
  // again, at most a chunk per cut) ...
  const through = putBytes(w.proxy, ref.hash);
  assert.ok(through >= bytes.length && through <= bytes.length + cuts * chunk, `${through} bytes reached the server`);
  // ... and what the client sent (cut chunks resent from the server's count) is far from twice the file.
  const sent = w.proxy.seen.filter((s) => s.method === 'PUT').reduce((n, s) => n + s.bytes, 0);
  assert.ok(sent < 2 * bytes.length, `sent ${sent} bytes for a file of ${bytes.length}`);
  assert.equal(a.files.status().uploads, 0);
  assert.deepEqual(await a.syncErrors(), []);
});

/**
 * A device's upload in chunks of 64 KiB, parked (the network gone) after six
 * of them reached the server's folder store. -> { w, a, ref, file (the
 * server's partial file), held (its bytes), offsets (of every PUT sent),
 * resume() (the network back, sync, flush) }.
 */
async function parkedUpload(tag, seed) {
  const w = await world(tag, MODEL, { blobs: 'files' });
  const chunk = 64 * 1024;
  let cut = false;
  const offsets = [];
  const fetchVia = (u, init) => {
    if (init?.method === 'PUT' && String(u).includes('/files/')) {
      const offset = Number(new URL(u).searchParams.get('offset'));
      if (cut && offset > 0) return Promise.reject(new TypeError('fetch failed'));
      offsets.push(offset);
    }
    return fetch(u, init);
  };
  const a = await w.client('a', { ...as('alice'), fetch: fetchVia, fileChunk: chunk, fileBackoff: 5, fileRetries: 1 });
  await a.sync();
  await a.exec("INSERT INTO Photo(id) VALUES ('p1')");
  const ref = await a.files.put('Photo', 'p1', 'image', bytesOf(10 * chunk + 99, seed), { name: `${tag}.bin` });
  let n = 0;
  w.proxy.rules.push({ method: 'PUT', path: /\/sync\/files\//, fault: () => { if (++n === 6) cut = true; return undefined; } });
  await a.sync();
  await a.files.flush();
  const [partial] = fs.readdirSync(w.srv.blobs.partial).filter((f) => f.startsWith(ref.hash));
  const file = path.join(w.srv.blobs.partial, partial);
  const held = fs.statSync(file).size;
  assert.ok(held > 3 * chunk && held < ref.size, `the server holds ${held} bytes`);
  const resume = async () => {
    cut = false;
    await a.sync();
    await a.files.flush();
    assert.deepEqual(await a.syncErrors(), []);
    assert.equal(a.files.status().uploads, 0);
    assert.equal(sha(await storedBytes(w.srv, ref.hash)), ref.hash);
  };
  return { w, a, ref, file, held, offsets, chunk, resume };
}

test('an_upload_whose_tail_the_server_lost_in_a_crash_should_fail_its_hash_once_and_start_over_cleanly', { timeout: 60_000 }, async () => {
  // A crash of the server's machine in the middle of a chunk may leave a
  // partial file whose tail is not what was sent (a file system that kept
  // the size but not the bytes). The hash at the end catches it, and the
  // upload starts over from 0 instead of failing or stalling.
  const { file, held, offsets, resume } = await parkedUpload('files-torn', 77);
  await new Promise((r) => setTimeout(r, 20));   // past the file system's clock tick, so the mtime moves
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, new Uint8Array(1000), 0, 1000, held - 1000);
  fs.closeSync(fd);
  await resume();
  assert.equal(offsets.filter((o) => o === 0).length, 2, `started over once: ${offsets.join(' ')}`);
});

test('an_upload_whose_last_chunks_the_server_lost_in_a_crash_should_resume_from_what_the_server_kept', { timeout: 60_000 }, async () => {
  // The folder store makes only a whole file durable: a crash may take the
  // tail of a partial upload, leaving it shorter than the server last said.
  // The device's next chunk is then at the wrong offset; the server says
  // where it stands and the upload goes on from there, not from 0.
  const { file, held, offsets, chunk, resume } = await parkedUpload('files-shorter', 78);
  const kept = held - 2 * chunk - 123;
  fs.truncateSync(file, kept);
  await resume();
  assert.equal(offsets.filter((o) => o === 0).length, 1, `never started over: ${offsets.join(' ')}`);
  assert.ok(offsets.includes(kept), `went on from the ${kept} bytes the server kept: ${offsets.join(' ')}`);
});

test('a_file_error_should_be_retried_or_discarded_like_any_sync_error', { timeout: 60_000 }, async () => {
  const w = await world('files-resolve');
  w.srv.fileLimit = 1000;
  const a = await w.client('a', as('alice'));
  await a.sync();
  await a.exec("INSERT INTO Photo(id, caption) VALUES ('big', 'over the limit'), ('other', 'also')");
  const big = await a.files.put('Photo', 'big', 'image', bytesOf(5000, 3), { type: 'image/png', name: 'big.png' });
  await a.files.put('Photo', 'other', 'image', bytesOf(4000, 4), { type: 'image/png', name: 'other.png' });
  await a.sync();
  await a.files.flush();
  const codes = (await a.syncErrors()).map((e) => `${e.kind} ${e.id} ${e.code}`).sort();
  assert.deepEqual(codes, ['file big too_big', 'file other too_big']);
  // The server takes larger files now: a retry sends the bytes.
  w.srv.fileLimit = 1 << 20;
  await a.retrySyncError('Photo', 'big');
  await a.files.flush();
  assert.equal(await w.srv.blobs.size(big.hash), 5000);
  assert.deepEqual((await a.syncErrors()).map((e) => e.id), ['other']);
  // Discarding stops trying; the reference and the local bytes stay.
  await a.discardSyncError('Photo', 'other');
  await a.files.flush();
  assert.deepEqual(await a.syncErrors(), []);
  assert.equal(a.files.status().uploads, 0);
  assert.equal((await a.files.get('Photo', 'other', 'image')).length, 4000);
  await assert.rejects(a.retrySyncError('Photo', 'nothing-here'), (e) => e.code === 'not_found');
});

test('closing_the_database_while_files_move_should_never_delete_bytes_still_needed', { timeout: 120_000 }, async () => {
  const w = await world('files-close');
  const dir = w.dir;
  const dev = () => w.client('closing', as('alice'));
  let a = await dev();
  await a.sync();
  w.proxy.mode = 'cut-request';   // offline: every upload stays queued
  const want = [];
  for (let k = 0; k < 4; k++) {
    await a.exec('INSERT INTO Photo(id, caption) VALUES (?, ?)', [`c${k}`, 'queued']);
    want.push(await a.files.put('Photo', `c${k}`, 'image', bytesOf(3000 + k, 40 + k), { type: 'image/png', name: `c${k}.png` }));
  }
  // Close while the queue is busy, again and again: the bytes of queued uploads must survive every close.
  for (let round = 0; round < 15; round++) {
    a.files.flush().catch(() => {});
    await new Promise((r) => setTimeout(r, round % 5));
    await a.close();
    a = await dev();
    for (const ref of want) {
      assert.ok(fs.existsSync(path.join(dir, 'closing.db.files', 'blobs', ref.hash)), `round ${round}: the bytes of ${ref.name} are still on the device`);
    }
  }
  w.proxy.mode = 'pass';
  await a.sync();
  await a.files.flush();
  for (const ref of want) assert.equal(await w.srv.blobs.size(ref.hash), ref.size);
});

test('a_lazy_entitys_files_should_download_on_first_get_not_at_sync', { timeout: 60_000 }, async () => {
  const w = await world('files-lazy', { version: '1', entities: { Scan: { attributes: { title: 'string', doc: 'file' }, sync: 'all', files: 'lazy' } } });
  const a = await w.client('a', as('alice'));
  const b = await w.client('b', as('alice'));
  await a.sync();
  await a.exec("INSERT INTO Scan(id, title) VALUES ('s1', 'contract')");
  const bytes = bytesOf(70_000, 9);
  const ref = await a.files.put('Scan', 's1', 'doc', bytes, { type: 'application/pdf', name: 'contract.pdf' });
  await a.sync();
  await a.files.flush();
  await b.sync();
  await b.files.flush();
  const gets = () => w.proxy.forwarded.filter((f) => f.method === 'GET' && f.path.includes(ref.hash)).length;
  assert.equal(gets(), 0, 'nothing downloaded at sync');
  assert.deepEqual((await b.query("SELECT doc FROM Scan WHERE id = 's1'"))[0], { doc: JSON.stringify(ref) }, 'the reference is there');
  await assert.rejects(b.files.get('Scan', 's1', 'doc'), (e) => e.code === 'file_pending');
  await b.files.flush();
  assert.equal(gets(), 1);
  assert.deepEqual(await b.files.get('Scan', 's1', 'doc'), bytes);
});

test('downloaded_files_should_be_evicted_least_recently_used_under_the_budget_and_come_back_on_demand', { timeout: 90_000 }, async () => {
  const w = await world('files-evict');
  const KB = 1024;
  // A writes while the server is gone and has a budget of nothing: its
  // pending uploads must stay until they are up, whatever the budget.
  const a = await w.client('a', { ...as('alice'), fileBudget: 0 });
  const b = await w.client('b', { ...as('alice'), fileBudget: 250 * KB });
  await a.sync();
  const files = [1, 2, 3, 4].map((k) => bytesOf(100 * KB + k, 20 + k));
  await a.exec("INSERT INTO Photo(id) VALUES ('e1'), ('e2'), ('e3'), ('e4')");
  w.proxy.down = true;
  for (const [k, bytes] of files.entries()) await a.files.put('Photo', `e${k + 1}`, 'image', bytes, {});
  await a.files.flush();
  for (const [k, bytes] of files.entries()) assert.deepEqual(await a.files.get('Photo', `e${k + 1}`, 'image'), bytes, 'a pending upload is never evicted');
  w.proxy.down = false;
  await a.sync();
  await a.files.flush();
  assert.equal(a.files.status().uploads, 0);
  await a.files.flush();   // uploaded: now they may go
  await assert.rejects(a.files.get('Photo', 'e1', 'image'), (e) => e.code === 'file_pending', 'evicted once uploaded (budget 0)');
  await a.files.flush();
  assert.deepEqual(await a.files.get('Photo', 'e1', 'image'), files[0], 'and back when asked for');

  await b.sync();
  await b.files.flush();
  // What B's file store holds, looked at from outside (a get would ask for the rest).
  const stored = async () => {
    const have = new Set(fs.readdirSync(path.join(w.dir, 'b.db.files', 'blobs')));
    return files.map((f, k) => (have.has(sha(f)) ? k + 1 : 0)).filter(Boolean);
  };
  const held = await stored();
  assert.ok(held.length <= 2, `at most 250 KB of 100 KB files stay (held ${held})`);
  // The ones used last stay; an evicted one is not downloaded again at the next sync, only when asked for.
  const gets = () => w.proxy.forwarded.filter((f) => f.method === 'GET' && f.path.includes('/files/')).length;
  await b.files.get('Photo', `e${held[0]}`, 'image');
  const before = gets();
  await b.sync();
  await b.files.flush();
  assert.equal(gets(), before, 'evicted files wait to be asked for');
  const missing = [1, 2, 3, 4].find((k) => !held.includes(k));
  await assert.rejects(b.files.get('Photo', `e${missing}`, 'image'), (e) => e.code === 'file_pending');
  await b.files.flush();
  assert.deepEqual(await b.files.get('Photo', `e${missing}`, 'image'), files[missing - 1]);
  assert.ok((await stored()).includes(held[0]), 'the file used last was kept');
});

test('an_edit_that_brings_a_deleted_object_back_should_upload_its_file_even_after_the_upload_was_discarded', { timeout: 90_000 }, async () => {
  // The upload was refused while the object was deleted on the server, and
  // the app discarded that error; the edit revives the object (last write
  // wins) with its reference, so the bytes must go up after all, or every
  // device waits for bytes no one sends (a soak seed found this).
  const w = await world('files-revive');
  const a = await w.client('a', { ...as('alice'), fileRetries: 1, fileBackoff: 1 });
  const b = await w.client('b', as('alice'));
  await a.sync();
  await a.exec("INSERT INTO Photo(id, caption) VALUES ('rv', 'before')");
  await a.sync();
  const block = { path: /\/sync\/files\//, fault: 'cut-request' };
  w.proxy.rules.push(block);
  const bytes = bytesOf(30_000, 31);
  const ref = await a.files.put('Photo', 'rv', 'image', bytes, { type: 'image/png' });
  await a.sync();
  await a.files.flush();   // the upload could not go: parked
  await b.sync();
  await b.exec("DELETE FROM Photo WHERE id = 'rv'");
  await b.sync();
  w.proxy.rules.splice(w.proxy.rules.indexOf(block), 1);
  await a.files.flush();   // no live object references the bytes now: refused
  const fileErr = (await a.syncErrors()).find((e) => e.id === 'rv' && e.kind === 'file');
  assert.equal(fileErr?.code, 'forbidden');
  await a.discardSyncError('Photo', 'rv');
  assert.deepEqual(await a.syncErrors(), [], 'a discarded upload is no sync error');
  await a.exec("UPDATE Photo SET caption = 'edited after the delete' WHERE id = 'rv'");
  await a.sync();
  const rows = await w.srv.db.query('SELECT _ferry_deleted AS deleted, image FROM "Photo" WHERE id = ?', ['rv']);
  assert.deepEqual(rows.map((r) => ({ deleted: r.deleted, hash: JSON.parse(r.image).hash })),
    [{ deleted: 0, hash: ref.hash }], 'the edit brought the object back with its reference');
  await a.files.flush();
  assert.notEqual(await w.srv.blobs.size(ref.hash), null, 'and its bytes went up');
  await b.sync();
  await b.files.flush();
  assert.deepEqual(await b.files.get('Photo', 'rv', 'image'), bytes);
});

test('a_file_whose_upload_was_refused_should_go_up_once_the_server_references_it_again', { timeout: 90_000 }, async () => {
  // Another writer (here the server; a device's retry does the same) puts
  // the old reference back: the device that holds the bytes and gave up
  // learns it from the pull and sends them.
  const w = await world('files-referenced-again');
  const a = await w.client('a', { ...as('alice'), fileRetries: 1, fileBackoff: 1 });
  const b = await w.client('b', as('alice'));
  await a.sync();
  await a.exec("INSERT INTO Photo(id, caption) VALUES ('ra', 'x')");
  await a.sync();
  const block = { path: /\/sync\/files\//, fault: 'cut-request' };
  w.proxy.rules.push(block);
  const bytes = bytesOf(25_000, 41);
  const ref = await a.files.put('Photo', 'ra', 'image', bytes, { type: 'image/png' });
  await a.sync();
  await a.files.flush();
  await b.sync();
  await b.files.put('Photo', 'ra', 'image', bytesOf(1000, 42), { type: 'image/png' });
  await b.sync();
  w.proxy.rules.splice(w.proxy.rules.indexOf(block), 1);
  await a.files.flush();   // the server references b's file now: a's is refused
  assert.equal((await a.syncErrors()).find((e) => e.kind === 'file')?.code, 'forbidden');
  await a.discardSyncError('Photo', 'ra');
  await w.srv.write('Photo', [{ id: 'ra', image: ref }]);
  await a.sync();
  await a.files.flush();
  assert.notEqual(await w.srv.blobs.size(ref.hash), null, 'the device that holds the bytes sent them');
  await b.sync();
  await b.files.flush();
  assert.deepEqual(await b.files.get('Photo', 'ra', 'image'), bytes);
});
