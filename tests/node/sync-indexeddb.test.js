// Sync on 'indexeddb' storage (fake-indexeddb in Node), where a commit is
// durable only when its IndexedDB transaction completes, some time after
// the SQL call that made it returned.
import 'fake-indexeddb/auto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from '../../bindings/index.js';
import { createSyncServer } from './backend.js';
import { tempDir } from './helpers.js';
import { MODEL } from './sync-helpers.js';

// Readwrite IndexedDB transactions that have completed (are durable).
let completed = 0;
const transaction = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function (...args) {
  const tx = transaction.apply(this, args);
  if (tx.mode === 'readwrite') tx.addEventListener('complete', () => { completed++; });
  return tx;
};

test('a_sync_request_should_be_sent_only_once_the_commits_before_it_are_durable', async () => {
  const srv = await createSyncServer({ model: MODEL, dataDir: tempDir('sync-idb'), log: () => {} });
  // Every commit the core hands to the store passes the faults hook.
  let handed = 0;
  const faults = { commit() { handed++; } };
  const sent = [];
  const fetch = (url, init) => {
    sent.push({ path: new URL(url).pathname, handed, completed });
    return globalThis.fetch(url, init);
  };
  const db = await open({ name: 'sync-idb', storage: 'indexeddb', server: `${srv.url}/sync`, syncOnOpen: false, faults, fetch });
  try {
    await db.sync();
    await db.exec("INSERT INTO \"Region\"(id, name) VALUES ('r1', 'North'), ('r2', 'South')");
    const r = await db.sync();
    assert.equal(r.pushed, 2);
    const push = sent.find((s) => s.path.endsWith('/push'));
    assert.ok(push, `no push among ${sent.map((s) => s.path).join(', ')}`);
    // The push numbered the outbox (mutation ids) in a commit of its own;
    // sending it before that commit is durable lets a crash reuse the ids.
    assert.equal(push.completed, push.handed, `the push was sent with ${push.handed - push.completed} commit(s) not yet durable`);
    for (const s of sent) assert.equal(s.completed, s.handed, `${s.path} sent with ${s.handed - s.completed} commit(s) not yet durable`);
    // ... and sync() resolves only once its last commit (the sync time) is durable.
    assert.equal(completed, handed);
  } finally {
    await db.close();
    await srv.close();
  }
});
