// The demo's sign-in (server/auth.js) on a real server: tokens issued by the
// sign-in route and verified with jose, refused when missing, forged,
// tampered, expired or from another server's key; the key kept across
// restarts; the generic `routes` option it plugs into; and the demo model's
// private Memo entity, invisible to the other demo user, end to end through
// ferry clients.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSyncServer } from './backend.js';
import { demoAuth, KEY_FILE } from '../../server/auth.js';
import { open } from '../../bindings/index.js';
import { tempDir, rejection } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEMO_MODEL = path.join(root, 'server', 'demo-model.json');
const base = tempDir('auth');
let dirs = 0;
const dataDir = () => path.join(base, `d${++dirs}`);
const servers = [];
after(async () => { for (const s of servers) await s.close(); });

async function startDemo(dir = dataDir()) {
  const auth = demoAuth({ dataDir: dir });
  const srv = await createSyncServer({
    model: DEMO_MODEL, dataDir: dir, authenticate: auth.authenticate, routes: auth.routes, log: () => {},
  });
  servers.push(srv);
  return { srv, auth, dir };
}

async function signIn(srv, user, password = 'demo') {
  const res = await fetch(`${srv.url}/auth/sign-in`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

const modelStatus = async (srv, authorization) => (await fetch(`${srv.url}/sync/model`, {
  headers: authorization === undefined ? {} : { authorization },
})).status;

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

test('sign_in_should_issue_a_token_that_the_sync_routes_accept', async () => {
  const { srv } = await startDemo();
  const r = await signIn(srv, 'ada');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.deepEqual(r.body.user, { id: 'ada', name: 'Ada Lovelace' });
  const days = (Date.parse(r.body.expiresAt) - Date.now()) / 86_400_000;
  assert.ok(days > 29 && days <= 30, `the token lasts 30 days (${days})`);
  const [header, payload] = r.body.token.split('.').map((p, i) => (i < 2 ? JSON.parse(Buffer.from(p, 'base64url')) : p));
  assert.equal(header.alg, 'HS256');
  assert.equal(payload.sub, 'ada');
  assert.equal(await modelStatus(srv, `Bearer ${r.body.token}`), 200);
  const users = await (await fetch(`${srv.url}/auth/users`)).json();
  assert.deepEqual(users.users.map((u) => u.id), ['ada', 'ben']);
});

test('sign_in_should_refuse_a_wrong_password_or_an_unknown_user_with_401', async () => {
  const { srv } = await startDemo();
  for (const [user, password] of [['ada', 'wrong'], ['ada', ''], ['mallory', 'demo'], ['ada', 123]]) {
    const r = await signIn(srv, user, password);
    assert.equal(r.status, 401, `${user}/${password}`);
    assert.equal(r.body.error, 'unauthenticated');
    assert.equal(r.body.token, undefined);
  }
  const bad = await fetch(`${srv.url}/auth/sign-in`, { method: 'POST', body: 'not json' });
  assert.equal(bad.status, 400);
});

test('missing_malformed_forged_tampered_or_expired_tokens_should_get_401', async () => {
  const { srv, dir } = await startDemo();
  const { token } = (await signIn(srv, 'ada')).body;
  const [h, p, sig] = token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  const other = demoAuth({ dataDir: dataDir() });            // another server's key
  const expired = demoAuth({ dataDir: dir, ttl: -60 });      // this server's key, already expired
  const cases = {
    'no header': undefined,
    'not bearer': `Basic ${Buffer.from('ada:demo').toString('base64')}`,
    'garbage': 'Bearer garbage',
    'another key': `Bearer ${(await other.issue('ada')).token}`,
    'expired': `Bearer ${(await expired.issue('ada')).token}`,
    'sub changed, signature kept': `Bearer ${h}.${b64({ ...claims, sub: 'ben' })}.${sig}`,
    'alg none': `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, sub: 'ben' })}.`,
    'signature cut': `Bearer ${h}.${p}.`,
  };
  for (const [what, authorization] of Object.entries(cases)) {
    assert.equal(await modelStatus(srv, authorization), 401, what);
  }
  assert.equal(await modelStatus(srv, `Bearer ${token}`), 200, 'the real token still works');
});

test('the_signing_key_should_be_made_once_0600_and_kept_across_restarts', async () => {
  const dir = dataDir();
  const first = await startDemo(dir);
  const { token } = (await signIn(first.srv, 'ben')).body;
  const file = path.join(dir, KEY_FILE);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(fs.statSync(file).size, 32);
  const key = fs.readFileSync(file);
  await first.srv.close();
  const again = await startDemo(dir);
  assert.deepEqual(fs.readFileSync(file), key, 'the key is not replaced');
  assert.equal(await modelStatus(again.srv, `Bearer ${token}`), 200, 'a token from before the restart works');
  fs.writeFileSync(file, 'short');
  assert.equal((await rejection(Promise.resolve().then(() => demoAuth({ dataDir: dir })))).code, 'corrupt');
});

test('routes_option_should_serve_json_no_store_and_refuse_bad_routes', async () => {
  const srv = await createSyncServer({
    model: DEMO_MODEL, dataDir: dataDir(), log: () => {},
    routes: {
      'POST /hello': async (req, { json }) => ({ status: 201, body: { hello: (await json()).name } }),
      'GET /boom': async (req, { fail }) => { throw fail(409, 'conflict', 'no'); },
    },
  });
  servers.push(srv);
  const r = await fetch(`${srv.url}/hello`, { method: 'POST', body: JSON.stringify({ name: 'ada' }) });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.deepEqual(await r.json(), { hello: 'ada' });
  const wrong = await fetch(`${srv.url}/hello`);
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get('allow'), 'POST');
  const boom = await fetch(`${srv.url}/boom`);
  assert.equal(boom.status, 409);
  assert.deepEqual(await boom.json(), { error: 'conflict', message: 'no' });
  for (const routes of [{ 'POST /sync/push': () => {} }, { 'FETCH /x': () => {} }, { 'GET /x': 'not a function' }]) {
    assert.equal((await rejection(createSyncServer({ model: DEMO_MODEL, routes }))).code, 'misuse');
  }
});

test('a_demo_users_memos_should_never_reach_the_other_user_and_visits_should_reach_both', async () => {
  const { srv, auth } = await startDemo();
  await srv.write('Visit', [{ id: 'v1', note: 'shared visit', status: 'planned' }]);
  const dir = tempDir('auth-clients');
  const tokens = { ada: (await auth.issue('ada')).token, ben: (await auth.issue('ben')).token };
  const device = (user, name = `demo-${user}`) => open({
    name, storage: 'file', path: path.join(dir, `${name}.db`), server: `${srv.url}/sync`, syncOnOpen: false,
    headers: async () => ({ authorization: `Bearer ${tokens[user]}` }),
  });
  const ada = await device('ada');
  const ben = await device('ben');
  try {
    await ada.sync();
    await ben.sync();
    await ada.exec("INSERT INTO Memo(id, owner, text) VALUES ('m-ada', 'ada', 'only for Ada')");
    await ben.exec("INSERT INTO Memo(id, owner, text) VALUES ('m-ben', 'ben', 'only for Ben')");
    // Ben tries to write a memo in Ada's name: the server refuses it.
    await ben.exec("INSERT INTO Memo(id, owner, text) VALUES ('m-fake', 'ada', 'planted by Ben')");
    await ada.sync();
    await ben.sync();
    await ada.sync();
    assert.deepEqual(await ada.query('SELECT id FROM Memo ORDER BY id'), [{ id: 'm-ada' }]);
    assert.deepEqual((await ben.syncErrors()).map((e) => [e.id, e.reason]), [['m-fake', 'forbidden']]);
    assert.deepEqual(await srv.db.query('SELECT id, owner FROM "Memo" ORDER BY id'), [{ id: 'm-ada', owner: 'ada' }, { id: 'm-ben', owner: 'ben' }]);
    for (const db of [ada, ben]) assert.deepEqual(await db.query('SELECT id FROM "Visit"'), [{ id: 'v1' }]);
    // Ben on Ada's database (same client id) is refused outright.
    const adaId = ada.status().clientId;
    await ada.close();
    const borrowed = await open({
      name: 'demo-ada', storage: 'file', path: path.join(dir, 'demo-ada.db'), server: `${srv.url}/sync`, syncOnOpen: false,
      headers: async () => ({ authorization: `Bearer ${tokens.ben}` }),
    });
    assert.equal(borrowed.status().clientId, adaId);
    assert.equal((await rejection(borrowed.sync())).code, 'sync_auth');
    await borrowed.close();
  } finally {
    await ada.close().catch(() => {});
    await ben.close().catch(() => {});
  }
});
