// Evicted storage must not pass for a new, empty database. A page remembers
// each database it has stored (in a cookie and in localStorage, which a
// browser's storage eviction does not clear together with IndexedDB and
// OPFS); opening a database whose storage comes back empty while such a mark
// exists fails with 'storage_lost' instead of starting over silently.
import { FerryError } from './errors.js';

const key = (name) => `ferry-db-${name}`;

function readMark(name) {
  try {
    if (globalThis.localStorage?.getItem(key(name))) return true;
  } catch { /* storage access can be denied */ }
  try {
    return (globalThis.document?.cookie || '').split('; ').some((c) => c.startsWith(`${key(name)}=`));
  } catch {
    return false;
  }
}

function writeMark(name) {
  try { globalThis.localStorage?.setItem(key(name), String(Date.now())); } catch { /* best effort */ }
  try {
    if (globalThis.document) document.cookie = `${key(name)}=1; max-age=${10 * 365 * 86400}; path=/; samesite=strict`;
  } catch { /* best effort */ }
}

/** Forgets a database deleted on purpose (deleteDatabase, signOut): opening it again starts anew. */
export function clearMark(name) {
  try { globalThis.localStorage?.removeItem(key(name)); } catch { /* best effort */ }
  try {
    if (globalThis.document) document.cookie = `${key(name)}=; max-age=0; path=/; samesite=strict`;
  } catch { /* best effort */ }
}

export function markSupported() {
  return typeof globalThis.document === 'object';
}

/**
 * Checks an opened database against the page's mark. Closes it and throws
 * FerryError 'storage_lost' when its storage vanished, unless the app asked
 * to start over with { recreate: true }.
 */
export async function checkNotLost(db, opts) {
  if (db.status().storage === 'memory') return db;
  // A database carries an identity row from its first open on; an empty one
  // has none. (Another tab may have just created it: then the row exists.)
  const known = await db.query("SELECT 1 FROM sqlite_schema WHERE name = '_ferry_identity'");
  if (!known.length) {
    if (readMark(opts.name) && !opts.recreate) {
      await db.close().catch(() => {});
      throw new FerryError('storage_lost', `the stored data of database '${opts.name}' is gone (the browser evicted it or it was deleted); `
        + 'unsynced changes on this device are lost. Open it with { recreate: true } to start again from the server.');
    }
    await db.exec('CREATE TABLE IF NOT EXISTS _ferry_identity(created INTEGER NOT NULL)');
    await db.exec('INSERT INTO _ferry_identity SELECT ? WHERE NOT EXISTS (SELECT 1 FROM _ferry_identity)', [Date.now()]);
  }
  writeMark(opts.name);
  return db;
}
