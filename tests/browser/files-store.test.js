// The device file stores of the browser storages (bindings/files/opfs-store.js
// and idb-store.js), driven in dedicated module workers (pages/store-worker.js)
// through one contract: a partial becomes a file only whole and only by
// commit, reads give its bytes exactly (read, readInto, blob, any range),
// openPartial truncates and resumes, files survive a worker's end and a
// killed writer leaves no file, a 50 MB file streams through in chunks, and a
// full device is 'storage_full'.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, startServer, gotoReady, uniqueName, unwrap, sleep, WORKER_PAGE } from './harness.js';

let browser, page;
before(async () => {
  browser = await launch();
  page = await browser.newPage(WORKER_PAGE);
});
after(async () => { await browser?.close(); });

const T = { timeout: 120_000 };
const MiB = 1 << 20;
const KINDS = ['opfs', 'indexeddb'];
const hashOf = (n) => n.toString(16).padStart(64, '0');
const seed = () => (Math.random() * 2 ** 31) | 0;

let wids = 0;
/** A new store worker: api(op, args) -> value, throws with .code on an error reply. */
async function worker(on = page) {
  const wid = `s${++wids}`;
  unwrap(await on.evaluate((w) => window.spawn(w, 'store-worker.js'), wid));
  const raw = (op, args) => on.evaluate(([w, o, a]) => window.call(w, o, a), [wid, op, args]);
  const api = (op, args) => raw(op, args).then(unwrap);
  api.raw = raw;
  api.terminate = () => on.evaluate((w) => window.terminate(w), wid);
  api.wid = wid;
  return api;
}

/** A store under test: store.call(method, ...args), store.write(...), store.verify(...). */
function bind(w, kind, name) {
  return {
    kind, name,
    call: (method, ...args) => w('call', { kind, name, method, args }),
    write: (args) => w('write', { kind, name, ...args }),
    verify: (args) => w('verify', { kind, name, ...args }),
  };
}

/** Runs fn(store, w) on a fresh store of `kind` in a fresh worker (of page `on`); destroys the store after. */
async function withStore(kind, prefix, fn, on = page) {
  const name = uniqueName(prefix);
  const w = await worker(on);
  try {
    await fn(bind(w, kind, name), w);
  } finally {
    await w.raw('call', { kind, name, method: 'destroy' });
    await w.terminate();
  }
}

/** Checks file `hash` holds `pieces` through read, readInto and blob. */
async function assertFile(s, hash, size, pieces) {
  assert.equal(await s.call('has', hash), true, `${hash} is a file`);
  assert.equal(await s.call('size', hash), size);
  for (const via of ['read', 'readInto', 'blob']) {
    const r = await s.verify({ hash, pieces, start: 0, end: size, via });
    assert.equal(r.bad, null, `${via} of ${size} bytes differs at byte ${r.bad}`);
    assert.equal(r.n, size, `${via} gave ${r.n} of ${size} bytes`);
    if (via === 'blob') assert.equal(r.size, size);
  }
}

test('opfs_partial_opened_ahead_should_take_the_next_write_and_go_with_close', T, async () => {
  await withStore('opfs', 'fs_ahead', async (s) => {
    const sd = seed(), size = 3 * MiB + 5;
    await s.call('prepare', 'put-');
    const r = await s.write({ fresh: 'put-', seed: sd, end: size, commit: hashOf(7) });
    assert.match(r.part, /^put-./, 'a new partial under the prefix');
    await assertFile(s, hashOf(7), size, [{ seed: sd, from: 0, to: size }]);
    assert.deepEqual(await s.call('listPartials'), [], 'the handle opened ahead was the one written');
    // The next one opened ahead is an empty partial of its own until close() removes it.
    await s.call('prepare', 'put-');
    await s.call('close');
    assert.deepEqual(await s.call('listPartials'), [], 'close() removed the partial opened ahead');
    assert.deepEqual(await s.call('list'), [hashOf(7)]);
    // A closed store still writes, opening its handles as it needs them.
    await s.call('prepare', 'put-');
    const again = await s.write({ fresh: 'put-', seed: sd, end: 1000, commit: hashOf(8) });
    assert.notEqual(again.part, r.part);
    await assertFile(s, hashOf(8), 1000, [{ seed: sd, from: 0, to: 1000 }]);
    assert.deepEqual(await s.call('listPartials'), []);
  });
});

for (const kind of KINDS) {
  test(`${kind}_committed_file_should_read_back_exactly_via_read_readInto_and_blob`, T, async () => {
    await withStore(kind, `fs_exact_${kind}`, async (s) => {
      const sizes = [0, 1, MiB - 1, MiB, MiB + 1, 20_000_000];
      for (const [i, size] of sizes.entries()) {
        const sd = seed();
        await s.write({ part: `dl-${i}`, seed: sd, end: size, commit: hashOf(i + 1) });
        await assertFile(s, hashOf(i + 1), size, [{ seed: sd, from: 0, to: size }]);
      }
      assert.deepEqual((await s.call('list')).sort(), sizes.map((_, i) => hashOf(i + 1)).sort());
      assert.deepEqual(await s.call('listPartials'), [], 'a commit leaves no partial behind');
    });
  });

  test(`${kind}_open_partial_at_an_offset_should_truncate_there_and_resume`, T, async () => {
    await withStore(kind, `fs_resume_${kind}`, async (s) => {
      const size = 3 * MiB + 12345;
      for (const cut of [0, 1, MiB - 1, MiB, 2 * MiB + 777, size]) {
        const a = seed(), b = seed();
        const part = `p-${cut}`;
        await s.write({ part, seed: a, end: size });
        assert.equal(await s.call('partialSize', part), size);
        // Resuming at `cut` drops what came after it, then appends.
        await s.write({ part, seed: b, offset: cut, end: cut });
        assert.equal(await s.call('partialSize', part), cut, `truncated to ${cut}`);
        await s.write({ part, seed: b, offset: cut, end: size });
        const pieces = [{ seed: a, from: 0, to: cut }, { seed: b, from: cut, to: size }];
        const r = await s.verify({ part, pieces, start: 0, end: size, via: 'readPartial' });
        assert.equal(r.bad, null, `resumed at ${cut}: differs at ${r.bad}`);
        assert.equal(r.n, size);
        await s.call('commit', part, hashOf(cut + 1));
        await assertFile(s, hashOf(cut + 1), size, pieces);
      }
    });
  });

  test(`${kind}_partial_should_never_be_listed_or_read_as_a_file`, T, async () => {
    await withStore(kind, `fs_partial_${kind}`, async (s) => {
      const hash = hashOf(7);
      // A download's partial is named by its hash: still not a file until commit.
      await s.write({ part: hash, seed: seed(), end: 2 * MiB + 5 });
      await s.write({ part: 'put-x', seed: seed(), end: 10 });
      assert.deepEqual(await s.call('list'), []);
      assert.equal(await s.call('has', hash), false);
      assert.equal(await s.call('size', hash), null);
      assert.equal(await s.call('partialSize', hash), 2 * MiB + 5);
      assert.equal(await s.call('partialSize', 'nothing'), 0);
      assert.deepEqual((await s.call('listPartials')).sort(), [hash, 'put-x'].sort());
      const blob = await s.verify({ hash, pieces: [], end: 1, via: 'blob' });
      assert.deepEqual(blob, { blob: null });
      const read = await s.verify({ hash, pieces: [], end: 1, via: 'read' }).catch((e) => e);
      assert.equal(read.code, 'not_found');
    });
  });

  test(`${kind}_remove_list_list_partials_and_destroy_should_forget_exactly_what_they_name`, T, async () => {
    await withStore(kind, `fs_remove_${kind}`, async (s, w) => {
      for (const i of [1, 2, 3]) await s.write({ part: `d${i}`, seed: i, end: i * 1000, commit: hashOf(i) });
      await s.write({ part: 'p1', seed: 9, end: MiB + 3 });
      await s.write({ part: 'p2', seed: 9, end: 3 });
      await s.call('remove', hashOf(2));
      await s.call('remove', hashOf(99));           // not there: no error
      await s.call('removePartial', 'p1');
      await s.call('removePartial', 'nothing');
      assert.deepEqual((await s.call('list')).sort(), [hashOf(1), hashOf(3)]);
      assert.deepEqual(await s.call('listPartials'), ['p2']);
      assert.equal(await s.call('has', hashOf(2)), false);
      assert.equal(await s.call('partialSize', 'p1'), 0);
      await assertFile(s, hashOf(3), 3000, [{ seed: 3, from: 0, to: 3000 }]);
      // Committing bytes that are there already keeps the file and drops the partial.
      await s.write({ part: 'p3', seed: 1, end: 1000, commit: hashOf(1) });
      assert.deepEqual(await s.call('listPartials'), ['p2']);
      await assertFile(s, hashOf(1), 1000, [{ seed: 1, from: 0, to: 1000 }]);

      assert.equal(await w('exists', { kind, name: s.name }), true);
      await s.call('destroy');
      assert.equal(await w('exists', { kind, name: s.name }), false, 'destroy deletes the store');
      assert.deepEqual(await s.call('list'), [], 'a store opened again after destroy is empty');
      assert.deepEqual(await s.call('listPartials'), []);
    });
  });

  test(`${kind}_range_reads_should_return_exactly_the_range`, T, async () => {
    await withStore(kind, `fs_range_${kind}`, async (s, w) => {
      const size = 3 * MiB + 100, sd = seed(), hash = hashOf(1);
      const pieces = [{ seed: sd, from: 0, to: size }];
      await s.write({ part: 'x', seed: sd, end: size, commit: hash });
      const ranges = [[0, 1], [5, 6], [MiB - 1, MiB + 1], [MiB, 2 * MiB], [123, 3 * MiB + 7], [size - 1, size], [size, size], [2 * MiB + 3, size]];
      for (const [start, end] of ranges) {
        for (const via of ['read', 'readInto', 'blob']) {
          const r = await s.verify({ hash, pieces, start, end, via, into: 777_777 });
          assert.equal(r.bad, null, `${via} [${start}, ${end}) differs at ${r.bad}`);
          assert.equal(r.n, end - start, `${via} [${start}, ${end}) gave ${r.n} bytes`);
        }
      }
      // Past the end: read stops at the end, readInto says how many it read.
      const past = await s.verify({ hash, pieces, start: size - 10, end: size + 1000, via: 'read' });
      assert.equal(past.n, 10);
      assert.equal(await w('readInto', { kind, name: s.name, hash, start: size - 10, length: 4096 }), 10);
      assert.equal(await w('readInto', { kind, name: s.name, hash, start: size, length: 4096 }), 0);
    });
  });

  test(`${kind}_committed_file_should_survive_the_end_of_its_worker`, T, async () => {
    const name = uniqueName(`fs_restart_${kind}`);
    const sd = seed(), size = 5 * MiB + 3;
    const w1 = await worker();
    await bind(w1, kind, name).write({ part: 'x', seed: sd, end: size, commit: hashOf(1) });
    await w1.terminate();
    const w2 = await worker();
    const s = bind(w2, kind, name);
    try {
      await assertFile(s, hashOf(1), size, [{ seed: sd, from: 0, to: size }]);
      assert.deepEqual(await s.call('list'), [hashOf(1)]);
    } finally {
      await s.call('destroy');
      await w2.terminate();
    }
  });

  test(`${kind}_writer_killed_before_commit_should_leave_no_file_and_a_resumable_partial`, T, async () => {
    const name = uniqueName(`fs_crash_${kind}`);
    const hash = hashOf(5), size = 30 * MiB, sd = seed();
    // Killed after a sync with the writer still open (unsynced bytes after it).
    const w1 = await worker();
    await bind(w1, kind, name).write({ part: hash, seed: sd, end: 3 * MiB + 1, hang: 100_000 });
    await w1.terminate();
    // Killed in the middle of its writes, once it has written 5 MiB.
    const w2 = await worker();
    const cut = bind(w2, kind, name).write({ part: 'put-1', seed: sd, end: size, commit: hashOf(6), progress: true }).catch((e) => e);
    while (((await page.evaluate((id) => window.heard(id), w2.wid))?.lastCommitted ?? 0) < 5 * MiB) await sleep(5);
    await w2.terminate();
    assert.equal((await cut)?.name, 'WorkerGone', 'the write was cut before it finished');

    const w3 = await worker();
    const s = bind(w3, kind, name);
    try {
      assert.deepEqual(await s.call('list'), [], 'no file from a killed writer');
      assert.equal(await s.call('has', hash), false);
      assert.equal(await s.call('has', hashOf(6)), false);
      assert.deepEqual((await s.call('listPartials')).sort(), [hash, 'put-1'].sort());
      // What the partial says it holds is there exactly, at least what was synced; the download resumes there.
      const have = await s.call('partialSize', hash);
      assert.ok(have >= 3 * MiB + 1 && have <= 3 * MiB + 1 + 100_000, `partial holds ${have}`);
      const pieces = [{ seed: sd, from: 0, to: size }];
      const r = await s.verify({ part: hash, pieces, start: 0, end: have, via: 'readPartial' });
      assert.equal(r.bad, null);
      assert.equal(r.n, have);
      const put = await s.call('partialSize', 'put-1');
      assert.ok(put >= 5 * MiB && put < size, `put-1 holds ${put} of ${size}`);
      assert.equal((await s.verify({ part: 'put-1', pieces, start: 0, end: put, via: 'readPartial' })).bad, null);
      await s.write({ part: hash, seed: sd, offset: have, end: 4 * MiB, commit: hash });
      await assertFile(s, hash, 4 * MiB, pieces);
    } finally {
      await s.call('destroy');
      await w3.terminate();
    }
  });

  test(`${kind}_50mb_file_should_stream_through_in_chunks`, { timeout: 180_000 }, async (t) => {
    await withStore(kind, `fs_big_${kind}`, async (s, w) => {
      const size = 50 * MiB, sd = seed(), hash = hashOf(50);
      const pieces = [{ seed: sd, from: 0, to: size }];
      // 256 KiB writes, generated as they go: the worker never holds the file.
      const wr = await s.write({ part: 'big', seed: sd, end: size, chunk: 256 * 1024, commit: hash });
      const rd = await s.verify({ hash, pieces, start: 0, end: size, via: 'read' });
      const into = await s.verify({ hash, pieces, start: 0, end: size, via: 'readInto' });
      const bl = await s.verify({ hash, pieces, start: 0, end: size, via: 'blob' });
      for (const r of [rd, into, bl]) {
        assert.equal(r.bad, null);
        assert.equal(r.n, size);
      }
      assert.ok(rd.maxChunk <= MiB, `read yields chunks of at most 1 MiB (${rd.maxChunk})`);
      assert.ok(into.maxChunk <= 4 * MiB);
      if (kind === 'indexeddb') {
        const c = await w('idbChunks', { name: s.name });
        assert.ok(c.blobs, 'chunks are stored as Blobs');
        assert.ok(c.max <= MiB, `no record holds more than 1 MiB (${c.max})`);
        assert.equal(c.count, 50);
      }
      t.diagnostic(`${kind} 50 MiB: write+sync ${wr.writeMs} ms, commit ${wr.ms - wr.writeMs} ms, `
        + `read ${rd.ms} ms (chunks <= ${rd.maxChunk}), readInto 4 MiB ${into.ms} ms, blob stream ${bl.ms} ms`);
    });
  });

  test(`db_files_on_${kind}_storage_should_use_this_store_and_go_with_sign_out_and_delete_database`, T, async () => {
    const name = uniqueName(`fs_db_${kind}`);
    const w = await worker();
    try {
      const r = await w('database', { name, storage: kind });
      assert.equal(r.storage, kind);
      assert.equal(r.status.uploads, 0, 'db.files answers on this storage');
      assert.equal(await w('exists', { kind, name }), true, 'the database opened its file store');
      await w('database', { name, storage: kind, signOut: true });
      assert.equal(await w('exists', { kind, name }), false, 'signOut deleted the file store');
      await w('database', { name, storage: kind });
      assert.equal(await w('exists', { kind, name }), true);
      await w('deleteDatabase', { name, storage: kind });
      assert.equal(await w('exists', { kind, name }), false, 'deleteDatabase deleted the file store');
    } finally {
      await w.terminate();
    }
  });

  test(`${kind}_write_past_the_quota_should_fail_storage_full_and_leave_the_store_usable`, T, async () => {
    // An origin of its own, its quota lowered before it stores anything:
    // Chromium's IndexedDB checks writes against the room it saw at its
    // first write for up to 30 s.
    const server = await startServer();
    const own = await browser.context.newPage();
    const cdp = await browser.context.newCDPSession(own);
    const origin = server.url;
    try {
      await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 4 * MiB });
      await gotoReady(own, origin + WORKER_PAGE);
      await withStore(kind, `fs_quota_${kind}`, async (s) => {
        await s.write({ part: 'small', seed: 1, end: 1000, commit: hashOf(1) });
        const e = await s.write({ part: 'big', seed: 2, end: 30 * MiB, commit: hashOf(2) }).then(() => null, (x) => x);
        assert.ok(e, 'a write past the quota fails');
        assert.equal(e.code, 'storage_full', e.message);
        assert.equal(await s.call('has', hashOf(2)), false);
        await s.call('removePartial', 'big');
        await cdp.send('Storage.overrideQuotaForOrigin', { origin });
        await s.write({ part: 'big', seed: 2, end: 6 * MiB, commit: hashOf(2) });
        await assertFile(s, hashOf(2), 6 * MiB, [{ seed: 2, from: 0, to: 6 * MiB }]);
        await assertFile(s, hashOf(1), 1000, [{ seed: 1, from: 0, to: 1000 }]);
      }, own);
    } finally {
      await cdp.send('Storage.overrideQuotaForOrigin', { origin }).catch(() => {});
      await cdp.detach().catch(() => {});
      await own.close();
      await server.close();
    }
  });
}
