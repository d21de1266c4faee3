// The demo's sign-in: two demo users, a shared demo password, and bearer
// tokens (JWT, HS256) issued and verified with `jose`. The signing key is 32
// random bytes made at first start and kept in the server's data folder, so
// tokens outlive a restart and a copied token is worthless to another server.
// This is a demo: the password is printed on the page. An app plugs its own
// identity provider into createSyncServer({ authenticate }) instead.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SignJWT, jwtVerify } from 'jose';
import { FerryError } from '../bindings/errors.js';

export const DEMO_USERS = Object.freeze([
  Object.freeze({ id: 'ada', name: 'Ada Lovelace' }),
  Object.freeze({ id: 'ben', name: 'Ben Okafor' }),
]);
export const DEMO_PASSWORD = 'demo';
export const KEY_FILE = 'auth-key';
const ISSUER = 'ferry-demo';
const KEY_BYTES = 32;
const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;

/** Reads the signing key, or makes one (0600) when the folder has none. */
function loadKey(dataDir) {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, KEY_FILE);
  try {
    // 'wx': two servers starting on one folder at once must not each write a key.
    fs.writeFileSync(file, crypto.randomBytes(KEY_BYTES), { flag: 'wx', mode: 0o600 });
  } catch (e) {
    if (e.code !== 'EEXIST') throw new FerryError('io', `cannot create the sign-in key ${file}: ${e.message}`, { cause: e });
  }
  const key = new Uint8Array(fs.readFileSync(file));
  if (key.length !== KEY_BYTES) {
    throw new FerryError('corrupt', `the sign-in key ${file} has ${key.length} bytes, not ${KEY_BYTES}; delete it to make a new one (tokens issued so far stop working)`);
  }
  return key;
}

/**
 * The demo's users and tokens.
 * @param {object} options
 *   dataDir   folder holding the signing key (created)
 *   users     [{ id, name }] (default DEMO_USERS); password (default DEMO_PASSWORD)
 *   ttl       token lifetime in seconds (default 30 days)
 * @returns {{ users, password, issue(userId) -> Promise<{ token, user, expiresAt }>,
 *   authenticate(req) -> Promise<user | null>, routes }} `authenticate` and
 *   `routes` go to createSyncServer as they are.
 */
export function demoAuth({ dataDir, users = DEMO_USERS, password = DEMO_PASSWORD, ttl = 30 * 24 * 3600 } = {}) {
  if (typeof dataDir !== 'string' || !dataDir) throw new FerryError('misuse', 'demoAuth() needs the dataDir that keeps its signing key');
  if (!Number.isFinite(ttl)) throw new FerryError('misuse', 'ttl is a number of seconds');
  const key = loadKey(dataDir);
  const byId = new Map(users.map((u) => [u.id, { id: u.id, name: u.name }]));

  async function issue(userId) {
    const user = byId.get(userId);
    if (!user) throw new FerryError('not_found', `no demo user '${userId}'`);
    const exp = Math.floor(Date.now() / 1000) + ttl;
    const token = await new SignJWT({ name: user.name })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER).setSubject(user.id).setIssuedAt().setExpirationTime(exp)
      .sign(key);
    return { token, user, expiresAt: new Date(exp * 1000).toISOString() };
  }

  /** The user of a request's bearer token, or null (no token, bad signature, expired, unknown user). */
  async function authenticate(req) {
    const m = BEARER.exec(req.headers.authorization || '');
    if (!m) return null;
    try {
      const { payload } = await jwtVerify(m[1], key, { algorithms: ['HS256'], issuer: ISSUER, requiredClaims: ['sub', 'exp'] });
      return byId.get(payload.sub) || null;
    } catch {
      return null;
    }
  }

  const routes = {
    /** Body { user, password } -> { token, user, expiresAt }; 401 'unauthenticated' otherwise. */
    'POST /auth/sign-in': async (req, { json, fail }) => {
      const body = await json();
      const ok = body && typeof body === 'object' && byId.has(body.user) && typeof body.password === 'string'
        && crypto.timingSafeEqual(crypto.createHash('sha256').update(body.password).digest(),
          crypto.createHash('sha256').update(password).digest());
      if (!ok) throw fail(401, 'unauthenticated', 'unknown user or wrong password');
      return { body: await issue(body.user) };
    },
    /** The demo's users and its password, for the sign-in screen (this is a demo). */
    'GET /auth/users': async () => ({ body: { users: [...byId.values()], password } }),
  };

  return { users: [...byId.values()], password, issue, authenticate, routes };
}
