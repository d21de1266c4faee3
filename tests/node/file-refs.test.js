// A file attribute holds a reference to bytes kept outside the database, in
// one canonical JSON form that the core checks on every local write and on
// every value the server sends (core/fileref.c); the server applies the same
// rule through the same wasm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCore } from '../../bindings/core.js';
import { startWorld } from './sync-helpers.js';

const HASH = 'ab'.repeat(32);
const canonical = (o) => JSON.stringify({ hash: o.hash, size: o.size, type: o.type, name: o.name });

test('a_file_reference_should_have_one_canonical_form', async () => {
  const core = await loadCore();
  const ref = { name: 'meter.jpg', size: 5_000_000, hash: HASH, type: 'image/jpeg' };
  assert.equal(core.fileRef(ref), canonical(ref));
  assert.equal(core.fileRef(` {"type":"","name":"","size":0,"hash":"${HASH}"} `), canonical({ hash: HASH, size: 0, type: '', name: '' }));
  assert.equal(core.fileRef({ hash: HASH, size: 2 ** 53 - 1, type: 'a/b', name: 'é 日本 👩‍👩‍👧.pdf' }),
    canonical({ hash: HASH, size: 2 ** 53 - 1, type: 'a/b', name: 'é 日本 👩‍👩‍👧.pdf' }));
  const bad = [
    'not json', '[]', '"x"', 'null', '{}',
    { hash: HASH.toUpperCase(), size: 1, type: '', name: '' },
    { hash: HASH.slice(1), size: 1, type: '', name: '' },
    { hash: HASH, size: 1.5, type: '', name: '' },
    { hash: HASH, size: -1, type: '', name: '' },
    { hash: HASH, size: 2 ** 53, type: '', name: '' },
    { hash: HASH, size: '1', type: '', name: '' },
    { hash: HASH, size: 1, type: 'x'.repeat(256), name: '' },
    { hash: HASH, size: 1, type: '', name: 'a\u0000b' },
    { hash: HASH, size: 1, type: '', name: 'line\nbreak' },
    { hash: HASH, size: 1, type: '', name: '', extra: true },
    { hash: HASH, size: 1, type: '' },
    `{"hash":"${HASH}","hash":"${HASH}","size":1,"type":"","name":""}`,
  ];
  for (const b of bad) {
    assert.throws(() => core.fileRef(b), (e) => e.code === 'type' && /file reference/.test(e.message), JSON.stringify(b));
  }
});

test('a_local_write_of_a_file_attribute_should_take_only_a_canonical_reference', async () => {
  const w = await startWorld('file-refs');
  try {
    const a = await w.client('a');
    await a.sync();
    const ref = canonical({ hash: HASH, size: 3, type: 'image/png', name: 'ada.png' });
    await a.exec("INSERT INTO Customer(id, name, photo) VALUES ('c1', 'Ada', ?)", [ref]);
    for (const v of [new Uint8Array([1, 2, 3]), 42, '{"hash":"x"}', ` ${ref}`, JSON.stringify({ name: 'ada.png', size: 3, type: 'image/png', hash: HASH })]) {
      await assert.rejects(a.exec("UPDATE Customer SET photo = ? WHERE id = 'c1'", [v]), (e) => e.code === 'type' && /photo/.test(e.message), String(v));
    }
    assert.deepEqual(await a.query("SELECT photo FROM Customer WHERE id = 'c1'"), [{ photo: ref }]);
    assert.equal(a.status().pendingChanges, 1, 'the refused writes left nothing to send');
    await a.exec("UPDATE Customer SET photo = NULL WHERE id = 'c1'");
    await a.exec("UPDATE Customer SET photo = ? WHERE id = 'c1'", [ref]);
    const r = await a.sync();
    assert.equal(r.errors, 0);
    const b = await w.client('b');
    await b.sync();
    assert.deepEqual(await b.query("SELECT photo FROM Customer WHERE id = 'c1'"), [{ photo: ref }], 'the reference arrives exactly as written');
    assert.deepEqual((await w.srv.db.query("SELECT photo FROM \"Customer\" WHERE id = 'c1'"))[0], { photo: ref });
    const v = await b.verify();
    assert.equal(v.repaired, 0, 'device and server digests of a reference agree');
  } finally {
    await w.stop();
  }
});
