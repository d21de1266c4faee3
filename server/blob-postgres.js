// The PostgreSQL blob store: the bytes of file attributes as rows of the
// server's own PostgreSQL database (parts of at most PART bytes), so several
// server processes on several machines share files with no shared folder
// (createSyncServer({ backend: { postgres }, blobs: 'postgres' })). The
// interface it implements is in blobs.js.
//
// Tables: _ferry_blobs (hash, size, at) lists stored blobs; _ferry_blob_parts
// (hash, holder, off, data) holds the bytes, holder '' for a stored blob and
// the uploader's key for a partial upload; _ferry_blob_uploads (hash, holder,
// received, gen, at) says how far each partial upload stands. Each part is
// written in a transaction that locks its upload's row and checks it still
// stands where this append thinks, so two processes appending to one upload
// cannot interleave bytes. A stored blob is the same rows with the holder
// cleared, in the transaction that lists it: it appears whole or not at all.
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { BlobError, beginAppend, cutError, isCut, serial, drain } from './blobs.js';

/** The largest part (bytes): one row of bytea, read and written whole. */
export const PART = 1024 * 1024;
const SETUP_LOCK = 7166313;

export class PostgresBlobStore {
  /**
   * Creates the tables where missing (once, when several processes start together).
   * @param {{ query, exec, transaction }} db  the server's PostgreSQL connection (db-postgres.js)
   * @returns {Promise<PostgresBlobStore>}
   */
  static async open(db) {
    await db.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${SETUP_LOCK})`);
      await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_blobs (hash TEXT PRIMARY KEY, size BIGINT NOT NULL, at BIGINT NOT NULL)');
      await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_blob_parts (hash TEXT NOT NULL, holder TEXT NOT NULL, off BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (hash, holder, off))');
      await tx.exec('CREATE TABLE IF NOT EXISTS _ferry_blob_uploads (hash TEXT NOT NULL, holder TEXT NOT NULL, received BIGINT NOT NULL, gen TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (hash, holder))');
    });
    return new PostgresBlobStore(db);
  }

  constructor(db) {
    this.db = db;
    this.locks = new Map();     // holder key -> the append in progress in this process
    // holder key -> { sha, at, gen }: the SHA-256 of the upload's first `at` bytes as this
    // process wrote them; it vouches for the rows only while their `gen` is the one it wrote.
    this.hashing = new Map();
  }

  /** An uploader's key: never '' (the stored blobs' holder), and no user name in the rows. */
  holderOf(uploader) { return `u${crypto.createHash('sha256').update(String(uploader)).digest('hex').slice(0, 32)}`; }

  async size(hash) {
    const rows = await this.db.query('SELECT size FROM _ferry_blobs WHERE hash = ?', [hash]);
    return rows.length ? Number(rows[0].size) : null;
  }

  async received(hash, uploader) {
    const rows = await this.db.query('SELECT received FROM _ferry_blob_uploads WHERE hash = ? AND holder = ?', [hash, this.holderOf(uploader)]);
    return rows.length ? Number(rows[0].received) : 0;
  }

  append(hash, size, offset, body, uploader = '') {
    const holder = this.holderOf(uploader);
    return serial(this.locks, `${hash}.${holder}`, () => this.#append(hash, size, offset, body, holder));
  }

  async #append(hash, size, offset, body, holder) {
    const key = `${hash}.${holder}`;
    const row = (await this.db.query('SELECT received, gen FROM _ferry_blob_uploads WHERE hash = ? AND holder = ?', [hash, holder]))[0];
    const at = row ? Number(row.received) : 0;
    // The running hash vouches only for rows this process wrote last (their gen).
    let running = beginAppend(this.hashing, key, { hash, offset, at, body }, (kept) => kept.gen === row.gen);
    let pos = offset;   // bytes in the database
    let gen = row?.gen;
    const pending = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (!pendingBytes) return;
      const data = Buffer.concat(pending, pendingBytes);
      const next = crypto.randomUUID();
      await this.db.transaction(async (tx) => {
        await tx.exec('INSERT INTO _ferry_blob_uploads(hash, holder, received, gen, at) VALUES (?, ?, 0, ?, ?) ON CONFLICT DO NOTHING', [hash, holder, next, Date.now()]);
        const [now] = await tx.query('SELECT received FROM _ferry_blob_uploads WHERE hash = ? AND holder = ? FOR UPDATE', [hash, holder]);
        if (Number(now.received) !== pos) {
          throw new BlobError('offset_mismatch', `the upload of ${hash} moved to ${now.received} bytes under this one`, { received: Number(now.received) });
        }
        await tx.exec('INSERT INTO _ferry_blob_parts(hash, holder, off, data) VALUES (?, ?, ?, ?)', [hash, holder, pos, data]);
        await tx.exec('UPDATE _ferry_blob_uploads SET received = ?, gen = ?, at = ? WHERE hash = ? AND holder = ?', [pos + data.length, next, Date.now(), hash, holder]);
      });
      running?.sha.update(data);
      if (running) running.at += data.length;
      pos += data.length;
      gen = next;
      pending.length = 0;
      pendingBytes = 0;
    };
    try {
      for await (const chunk of body) {
        if (pos + pendingBytes + chunk.length > size) throw new BlobError('too_long', `the bytes run past the file's size of ${size}`);
        for (let i = 0; i < chunk.length;) {
          const take = Math.min(chunk.length - i, PART - pendingBytes);
          pending.push(chunk.subarray(i, i + take));
          pendingBytes += take;
          i += take;
          if (pendingBytes === PART) await flush();
        }
      }
      await flush();
    } catch (e) {
      if (e instanceof BlobError) {
        drain(body);
        if (e.code === 'too_long') await this.#truncate(hash, holder, offset);   // none of this body counts
        throw e;
      }
      if (!isCut(e)) throw e;
      // A cut: what arrived is a prefix of the file, the client resumes after it.
      await flush().catch(() => {});
      if (running && running.at === pos) this.hashing.set(key, { sha: running.sha, at: pos, gen });
      throw cutError(pos);
    }
    if (pos < size) {
      if (running && running.at === pos) this.hashing.set(key, { sha: running.sha, at: pos, gen });
      return { received: pos, complete: false };
    }
    const got = running && running.at === pos ? running.sha.digest('hex') : await this.#hashParts(hash, holder);
    if (got !== hash) {
      await this.#truncate(hash, holder, 0);
      throw new BlobError('hash_mismatch', `the ${size} bytes received hash to ${got}, not ${hash}; upload them again from 0`);
    }
    await this.db.transaction(async (tx) => {
      // Two uploads of one hash completing at once: the second waits on the first's row and finds it stored.
      const stored = await tx.query('INSERT INTO _ferry_blobs(hash, size, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING hash', [hash, size, Date.now()]);
      if (stored.length) await tx.exec("UPDATE _ferry_blob_parts SET holder = '' WHERE hash = ? AND holder = ?", [hash, holder]);
      else await tx.exec('DELETE FROM _ferry_blob_parts WHERE hash = ? AND holder = ?', [hash, holder]);
      await tx.exec('DELETE FROM _ferry_blob_uploads WHERE hash = ? AND holder = ?', [hash, holder]);
    });
    return { received: pos, complete: true };
  }

  /** Drops the parts of an upload from byte `offset` on (0: the whole upload). */
  async #truncate(hash, holder, offset) {
    await this.db.transaction(async (tx) => {
      await tx.exec('DELETE FROM _ferry_blob_parts WHERE hash = ? AND holder = ? AND off >= ?', [hash, holder, offset]);
      if (offset === 0) await tx.exec('DELETE FROM _ferry_blob_uploads WHERE hash = ? AND holder = ?', [hash, holder]);
      else await tx.exec('UPDATE _ferry_blob_uploads SET received = ?, gen = ?, at = ? WHERE hash = ? AND holder = ?', [offset, crypto.randomUUID(), Date.now(), hash, holder]);
    });
  }

  async #hashParts(hash, holder) {
    const sha = crypto.createHash('sha256');
    for await (const part of this.#parts(hash, holder, 0, Infinity)) sha.update(part);
    return sha.digest('hex');
  }

  /** The bytes [start, end] of a holder's parts, a few parts per query, in order; a gap is an error. */
  async* #parts(hash, holder, start, end) {
    let pos = start;
    let after = start - PART;   // every part starts after this (parts are at most PART bytes)
    while (pos <= end) {
      const rows = await this.db.query('SELECT off, data FROM _ferry_blob_parts WHERE hash = ? AND holder = ? AND off > ? ORDER BY off LIMIT 4', [hash, holder, after]);
      if (!rows.length) {
        if (end === Infinity) return;
        throw new Error(`the blob ${hash} has no bytes at ${pos}`);
      }
      for (const { off, data } of rows) {
        const s = Number(off);
        after = s;
        const e = s + data.length;
        if (e <= pos) continue;
        if (s > pos) throw new Error(`the blob ${hash} has no bytes at ${pos}`);
        const stop = Math.min(e, end + 1);
        yield data.subarray(pos - s, stop - s);
        pos = stop;
        if (pos > end) return;
      }
    }
  }

  read(hash, start, end) {
    return Readable.from(this.#parts(hash, '', start, end), { objectMode: false });
  }

  async* list() {
    let last = '';
    for (;;) {
      const rows = await this.db.query('SELECT hash, at FROM _ferry_blobs WHERE hash > ? ORDER BY hash LIMIT 1000', [last]);
      for (const r of rows) yield { hash: r.hash, at: Number(r.at) };
      if (rows.length < 1000) return;
      last = rows[rows.length - 1].hash;
    }
  }

  async remove(hash) {
    await this.db.transaction(async (tx) => {
      await tx.exec('DELETE FROM _ferry_blobs WHERE hash = ?', [hash]);
      await tx.exec("DELETE FROM _ferry_blob_parts WHERE hash = ? AND holder = ''", [hash]);
    });
  }

  async sweep(before) {
    const old = await this.db.query('SELECT hash, holder FROM _ferry_blob_uploads WHERE at < ?', [before]);
    let n = 0;
    for (const { hash, holder } of old) {
      if (this.locks.has(`${hash}.${holder}`)) continue;
      const gone = await this.db.transaction(async (tx) => {
        // Still untouched once locked: an append elsewhere may have moved it since.
        const r = await tx.exec('DELETE FROM _ferry_blob_uploads WHERE hash = ? AND holder = ? AND at < ?', [hash, holder, before]);
        if (r.changes) await tx.exec('DELETE FROM _ferry_blob_parts WHERE hash = ? AND holder = ?', [hash, holder]);
        return r.changes;
      });
      if (gone) { this.hashing.delete(`${hash}.${holder}`); n++; }
    }
    return n;
  }
}
