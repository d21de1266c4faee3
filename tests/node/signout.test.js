// Sign-out on a shared device (db.signOut) and deleteDatabase(): what is
// pending reaches the server first, then the user's database is gone from
// the device, so the next user opens an empty one with a new client id;
// when changes would be lost the sign-out is refused and nothing is deleted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { open, deleteDatabase, codes } from '../../bindings/index.js';
import { createSyncServer } from './backend.js';
import { tempDir, rejection } from './helpers.js';

const MODEL = {
  version: '1',
  entities: {
    Memo: { attributes: { owner: 'string', text: 'string' }, sync: { where: 'owner = $user.id' } },
    Draft: { attributes: { text: 'string' }, sync: 'never' },
  },
};
const dir = tempDir('signout');
let srv;
const users = { 'Bearer ada': { id: 'ada' }, 'Bearer ben': { id: 'ben' } };
// Restarts keep the port, so devices find the server again.
const start = async () => {
  srv = await createSyncServer({
    model: MODEL, dataDir: path.join(dir, 'server'), log: () => {}, port: srv?.port ?? 0,
    authenticate: (req) => users[req.headers.authorization] || null,
  });
};
await start();
after(() => srv.close());

let n = 0;
function device(user, extra = {}) {
  const name = extra.name || `dev${++n}`;
  return open({
    name, storage: 'file', path: path.join(dir, `${name}.db`), server: `${srv.url}/sync`, syncOnOpen: false,
    headers: async () => ({ authorization: `Bearer ${user}` }), syncRetries: 0, ...extra,
  });
}

test('sign_out_should_push_pending_changes_then_delete_the_database_so_the_next_user_starts_empty', async () => {
  const a = await device('ada', { name: 'shared-1' });
  await a.sync();
  const firstId = a.status().clientId;
  await a.exec("INSERT INTO Memo(id, owner, text) VALUES ('so1', 'ada', 'written just before signing out')");
  await a.exec("INSERT INTO Draft(id, text) VALUES ('d1', 'device only')");
  let signedOut = 0;
  a.on('signout', () => signedOut++);
  await a.signOut();
  assert.equal(signedOut, 1);
  assert.equal(a.status().closed, true);
  assert.deepEqual(await srv.db.query("SELECT text FROM \"Memo\" WHERE id = 'so1'"), [{ text: 'written just before signing out' }]);
  assert.equal(fs.existsSync(path.join(dir, 'shared-1.db')), false);
  assert.equal(fs.existsSync(path.join(dir, 'shared-1.db-log')), false);
  assert.equal((await rejection(a.query('SELECT 1'))).code, 'closed');

  const b = await device('ben', { name: 'shared-1' });
  try {
    assert.notEqual(b.status().clientId, firstId, 'a new client id');
    assert.deepEqual(await b.query("SELECT name FROM sqlite_schema WHERE name IN ('Memo', 'Draft')"), [], 'nothing of the previous user');
    await b.sync();
    assert.deepEqual(await b.query('SELECT * FROM Memo'), []);
    assert.deepEqual(await b.query('SELECT * FROM Draft'), []);
  } finally {
    await b.close();
  }
});

test('sign_out_with_the_server_unreachable_should_refuse_with_unsynced_and_keep_everything', async () => {
  const a = await device('ada');
  await a.sync();
  await a.exec("INSERT INTO Memo(id, owner, text) VALUES ('so2', 'ada', 'offline edit')");
  await srv.close();
  try {
    const e = await rejection(a.signOut());
    assert.equal(e.code, codes.UNSYNCED);
    assert.equal(e.cause?.code, 'sync_network');
    assert.match(e.message, /1 object with changes not on the server/);
    // Still open, nothing lost, still usable.
    assert.equal(a.status().closed, false);
    assert.equal(a.status().pendingChanges, 1);
    assert.deepEqual(await a.query("SELECT text FROM Memo WHERE id = 'so2'"), [{ text: 'offline edit' }]);
    await a.exec("UPDATE Memo SET text = 'still editable' WHERE id = 'so2'");
    assert.ok(fs.existsSync(path.join(dir, `${a.name}.db`)));
  } finally {
    await start();
  }
  // Back online: the same call goes through.
  await a.signOut();
  assert.deepEqual(await srv.db.query("SELECT text FROM \"Memo\" WHERE id = 'so2'"), [{ text: 'still editable' }]);
});

test('sign_out_should_refuse_while_a_rejected_change_waits_and_discard_should_delete_it', async () => {
  const b = await device('ben');
  await b.sync();
  await b.exec("INSERT INTO Memo(id, owner, text) VALUES ('so3', 'ada', 'in another user''s name')");
  await b.sync();
  assert.equal(b.status().syncErrors, 1);
  const e = await rejection(b.signOut());
  assert.equal(e.code, 'unsynced');
  assert.match(e.message, /1 sync error/);
  assert.equal(b.status().closed, false);
  await b.signOut({ discard: true });
  assert.equal(fs.existsSync(path.join(dir, `${b.name}.db`)), false);
  assert.deepEqual(await srv.db.query("SELECT * FROM \"Memo\" WHERE id = 'so3'"), []);
});

test('sign_out_with_discard_should_delete_unsent_changes_without_a_server', async () => {
  await srv.close();
  try {
    const a = await device('ada');
    await a.exec("INSERT INTO Draft(id, text) VALUES ('x', 'y')").catch(() => {});   // no model yet: no tables
    await a.exec('CREATE TABLE Mine(x)');
    await a.signOut({ discard: true });
    assert.equal(fs.existsSync(path.join(dir, `${a.name}.db`)), false);
  } finally {
    await start();
  }
});

test('delete_database_should_refuse_an_open_database_and_remove_a_closed_one', async () => {
  const p = path.join(dir, 'del.db');
  const db = await open({ name: 'del', storage: 'file', path: p });
  await db.exec('CREATE TABLE t(x)');
  assert.equal((await rejection(deleteDatabase('del', { storage: 'file', path: p }))).code, 'busy');
  assert.ok(fs.existsSync(p));
  await db.close();
  await deleteDatabase('del', { storage: 'file', path: p });
  assert.equal(fs.existsSync(p), false);
  const again = await open({ name: 'del', storage: 'file', path: p });
  assert.deepEqual(await again.query("SELECT name FROM sqlite_schema WHERE name = 't'"), []);
  await again.close();
  assert.equal((await rejection(deleteDatabase('../x'))).code, 'misuse');
  assert.equal((await rejection(deleteDatabase('del', { storage: 'file' }))).code, 'misuse');
});

test('sign_out_on_indexeddb_should_delete_its_idb_database', async () => {
  const indexedDB = new IDBFactory();
  const names = async () => (await indexedDB.databases()).map((d) => d.name);
  const a = await open({
    name: 'idb-user', storage: 'indexeddb', indexedDB, server: `${srv.url}/sync`, syncOnOpen: false,
    headers: async () => ({ authorization: 'Bearer ada' }),
  });
  await a.sync();
  await a.exec("INSERT INTO Memo(id, owner, text) VALUES ('so4', 'ada', 'from indexeddb')");
  // The database and its file store (bindings/files/idb-store.js, opened once db.files is ready).
  await a.files.flush();
  assert.deepEqual((await names()).sort(), ['ferry-files:idb-user', 'ferry:idb-user']);
  await a.signOut();
  assert.deepEqual(await names(), []);
  assert.deepEqual(await srv.db.query("SELECT text FROM \"Memo\" WHERE id = 'so4'"), [{ text: 'from indexeddb' }]);
});

test('sign_out_should_upload_pending_files_first_and_refuse_while_one_cannot_go', async () => {
  const model = { version: '1', entities: { Photo: { attributes: { caption: 'string', image: 'file' }, sync: 'all' } } };
  const fsrv = await createSyncServer({ model, dataDir: path.join(dir, 'files-server'), log: () => {}, fileLimit: 1000 });
  try {
    const dev = (name) => open({ name, storage: 'file', path: path.join(dir, `${name}.db`), server: `${fsrv.url}/sync`, syncOnOpen: false, syncRetries: 0 });
    const a = await dev('photos-1');
    await a.sync();
    await a.exec("INSERT INTO Photo(id, caption) VALUES ('small', 'fits')");
    const small = await a.files.put('Photo', 'small', 'image', new Uint8Array(500).fill(1), { type: 'image/png', name: 's.png' });
    await a.signOut();
    assert.equal(await fsrv.blobs.size(small.hash), 500, 'the file went up before the database went');

    const b = await dev('photos-2');
    await b.sync();
    await b.exec("INSERT INTO Photo(id, caption) VALUES ('big', 'too large for this server')");
    await b.files.put('Photo', 'big', 'image', new Uint8Array(5000).fill(2), { type: 'image/png', name: 'b.png' });
    const e = await rejection(b.signOut());
    assert.equal(e.code, codes.UNSYNCED);
    assert.match(e.message, /1 file not uploaded yet/);
    assert.equal(b.status().closed, false);
    assert.equal((await b.files.get('Photo', 'big', 'image')).length, 5000, 'the bytes are still on the device');
    await b.signOut({ discard: true });
    assert.equal(fs.existsSync(path.join(dir, 'photos-2.db')), false);
    assert.equal(fs.existsSync(path.join(dir, 'photos-2.db.files')), false);
  } finally {
    await fsrv.close();
  }
});
