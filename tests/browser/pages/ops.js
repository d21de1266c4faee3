// The operations a browser test drives, shared by the window page and the
// dedicated worker. Every operation returns { value } or { error: { code,
// name, message } } so that errors cross page.evaluate / postMessage intact.
import { open, FerryError } from '/bindings/index.js';

const dbs = new Map();   // key -> { db, ctl, loop }

export function plainError(e) {
  return {
    code: e?.code ?? null,
    name: e?.name ?? 'Error',
    message: String(e?.message ?? e),
    ferry: e instanceof FerryError,
    cause: e?.cause ? { name: e.cause.name ?? null, message: String(e.cause.message ?? e.cause) } : null,
  };
}

function entry(key) {
  const s = dbs.get(key);
  if (!s) throw new Error(`no database open under key '${key}'`);
  return s;
}

/** Payload size of numbered row n, as SQL over the expression `n`: varied,
 * every 64th row spilling onto overflow pages. */
const padSql = (n) => `CASE WHEN ${n} % 64 = 0 THEN 5000 ELSE (${n} * 977) % 600 END`;

/** Resolves after a macrotask (not a clamped timer), letting the worker's event loop run. */
const channel = new MessageChannel();
const macrotask = () => new Promise((resolve) => { channel.port1.onmessage = () => resolve(); channel.port2.postMessage(0); });

/** Numbered commit n: row n and the counter, in one transaction. */
function commitNumbered(db, n) {
  return db.transaction(async (tx) => {
    await tx.exec(`INSERT INTO t(n, pad) VALUES (?1, zeroblob(${padSql('?1')}))`, [n]);
    await tx.exec('UPDATE c SET last = ? WHERE id = 1', [n]);
  });
}

function quota(what) {
  return new DOMException(`simulated: the storage quota is exhausted (${what})`, 'QuotaExceededError');
}

/**
 * A file wrapper whose log writes fail while ctl.logWriteFail > 0, as
 * ctl.torn says: false writes nothing; 'half' writes the first half of the
 * bytes; 'zeros' writes the first half and zeros for the rest (the whole
 * length reaches the file, as after a torn write whose tail never landed).
 */
function wrapFile(ctl) {
  return (file, role) => ({
    read: (u8, off) => file.read(u8, off),
    write(u8, off) {
      if (role === 'log' && ctl.logWriteFail > 0) {
        ctl.logWriteFail--;
        ctl.injected++;
        const half = u8.length >> 1;
        if (ctl.torn === 'half' || ctl.torn === 'zeros') file.write(u8.slice(0, half), off);
        if (ctl.torn === 'zeros') file.write(new Uint8Array(u8.length - half), off + half);
        throw quota(`${role} write of ${u8.length} bytes at ${off}`);
      }
      return file.write(u8, off);
    },
    size: () => file.size(),
    truncate: (n) => file.truncate(n),
    sync: () => file.sync(),
    close: () => file.close(),
  });
}

let saved = null;   // the last db.export() of exportBlob

/** Base64 of bytes, for carrying a database file out to the test. */
function base64(u8) {
  let s = '';
  for (let at = 0; at < u8.length; at += 0x8000) s += String.fromCharCode(...u8.subarray(at, at + 0x8000));
  return btoa(s);
}

/** What open({ from }) is given: the saved export as a Blob or as bytes, or junk. */
async function fromArg(from) {
  if (from === 'saved') return saved;
  if (from === 'savedBytes') return new Uint8Array(await saved.arrayBuffer());
  if (from === 'junk') return new Uint8Array(20000).map((_, i) => (i * 131) & 0xff);
  return undefined;
}

const ops = {
  async open({ key, name, storage, busyTimeout, faults, cacheSize, worker = false, from, server, snapshot }) {
    if (dbs.has(key)) throw new Error(`key '${key}' is already open`);
    const ctl = { commitFail: 0, logWriteFail: 0, torn: false, injected: 0, snapshotErrors: [] };
    // These suites test each store where it runs; the shared-writer runtime
    // (worker: true, the default in windows) has its own suite.
    const options = { name, storage, worker };
    if (from) options.from = await fromArg(from);
    if (busyTimeout !== undefined) options.busyTimeout = busyTimeout;
    if (cacheSize !== undefined) options.cacheSize = cacheSize;
    if (server) Object.assign(options, { server, snapshot, syncOnOpen: false, onSnapshotError: (e) => ctl.snapshotErrors.push(e.message) });
    if (faults) {
      options.faults = {
        commit(kind) {
          if (ctl.commitFail > 0) { ctl.commitFail--; ctl.injected++; throw quota(`${kind} commit`); }
        },
      };
      options.wrapFile = wrapFile(ctl);
    }
    const db = await open(options);
    dbs.set(key, { db, ctl, loop: null });
    return db.status();
  },
  async exec({ key, sql, params }) { return entry(key).db.exec(sql, params); },
  async query({ key, sql, params }) { return entry(key).db.query(sql, params); },
  /** Runs [sql, params] pairs in one transaction. */
  async tx({ key, statements }) {
    return entry(key).db.transaction(async (tx) => {
      for (const [sql, params] of statements) await tx.exec(sql, params);
      return statements.length;
    });
  },
  async status({ key }) { return entry(key).db.status(); },
  async filePut({ key, entity, id, attribute, text }) {
    await entry(key).db.files.put(entity, id, attribute, new TextEncoder().encode(text), { type: 'text/plain' });
  },
  async fileText({ key, entity, id, attribute }) {
    const data = await entry(key).db.files.get(entity, id, attribute);
    return data === null ? null : new TextDecoder().decode(new Uint8Array(await new Blob([data]).arrayBuffer()));
  },
  async filesFlush({ key }) { return entry(key).db.files.flush(); },
  async sync({ key }) {
    const { pushed, pulled, error } = await entry(key).db.sync();
    return { pushed, pulled, error: error ? { code: error.code, message: error.message } : null };
  },
  async close({ key }) {
    const s = dbs.get(key);
    if (!s) return false;
    if (s.loop) { s.loop.stop = true; await s.loop.done; }
    dbs.delete(key);
    await s.db.close();
    return true;
  },
  /**
   * Makes the next `commitFail` IndexedDB commits, or the next `logWriteFail`
   * writes to the commit log (OPFS), fail with QuotaExceededError; `torn`: see wrapFile.
   * Needs the database opened with { faults: true }.
   */
  async fault({ key, commitFail = 0, logWriteFail = 0, torn = false }) {
    const { ctl } = entry(key);
    Object.assign(ctl, { commitFail, logWriteFail, torn });
    return true;
  },
  async faultState({ key }) { return { ...entry(key).ctl }; },

  // ---- plain files (export, from) -------------------------------------------
  /** db.export(), kept for fromArg and savedBase64. */
  async exportBlob({ key }) {
    saved = await entry(key).db.export();
    return { blob: saved instanceof Blob, size: saved.size, type: saved.type };
  },
  async savedBase64() { return base64(new Uint8Array(await saved.arrayBuffer())); },
  /** The OPFS files of `name` (worker): the main file as base64, and the log's size. */
  async opfsFiles({ name }) {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('ferry');
    const main = new Uint8Array(await (await (await dir.getFileHandle(`${name}.db`)).getFile()).arrayBuffer());
    const log = await (await dir.getFileHandle(`${name}.db-log`)).getFile();
    return { main: base64(main), logSize: log.size };
  },

  // ---- numbered commits (crash tests) ------------------------------------
  async setup({ key }) {
    await entry(key).db.exec(`
      CREATE TABLE IF NOT EXISTS t(n INTEGER PRIMARY KEY, pad BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS c(id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
      INSERT OR IGNORE INTO c VALUES (1, 0);`);
    return true;
  },
  /** Integrity and the shape of the numbered rows. */
  async check({ key }) {
    const { db } = entry(key);
    const integrity = (await db.query('PRAGMA integrity_check')).map((r) => Object.values(r)[0]).join('; ');
    const [a] = await db.query(`SELECT count(*) AS count, coalesce(min(n), 0) AS min, coalesce(max(n), 0) AS max,
      (SELECT last FROM c WHERE id = 1) AS last,
      sum(length(pad) != ${padSql('n')} OR pad != zeroblob(length(pad))) AS badPad FROM t`);
    return { integrity, ...a, badPad: a.badPad ?? 0 };
  },
  /** Numbered commit n, alone. */
  async commit({ key, n }) { await commitNumbered(entry(key).db, n); return n; },
  /**
   * Commits n = start, start+1, … one transaction each until stopped;
   * report(n) after each resolves. With yieldEach, a macrotask runs between
   * commits (so the loop can be stopped, and a worker's terminate() takes
   * effect at once, between two commits); without it the loop only ever
   * awaits microtasks and keeps the thread busy until it is killed.
   */
  async loop({ key, start, yieldEach = true }, report) {
    const s = entry(key);
    if (s.loop) throw new Error('a loop is already running');
    const loop = { stop: false, last: start - 1, error: null };
    loop.done = (async () => {
      try {
        for (let n = start; !loop.stop; n++) {
          await commitNumbered(s.db, n);
          loop.last = n;
          report({ type: 'committed', n });
          if (yieldEach) await macrotask();
        }
      } catch (e) {
        loop.error = plainError(e);
        report({ type: 'loop-error', error: loop.error });
      }
    })();
    s.loop = loop;
    return 'started';
  },
  async stop({ key }) {
    const s = entry(key);
    if (!s.loop) return null;
    s.loop.stop = true;
    await s.loop.done;
    const { last, error } = s.loop;
    s.loop = null;
    return { last, error };
  },

  // ---- size --------------------------------------------------------------
  /** Inserts rows 1..n into big(n, s, x) in one transaction. */
  async bulk({ key, n }) {
    const { db } = entry(key);
    const t0 = performance.now();
    await db.exec('CREATE TABLE big(n INTEGER PRIMARY KEY, s TEXT NOT NULL, x REAL NOT NULL)');
    await db.transaction(async (tx) => {
      for (let i = 1; i <= n; i++) await tx.exec('INSERT INTO big VALUES (?, ?, ?)', [i, `row-${i}`, i / 8]);
    });
    return { ms: Math.round(performance.now() - t0) };
  },
  /** Reads big back: aggregates in SQL, and every row through the API. */
  async bulkCheck({ key }) {
    const { db } = entry(key);
    const [agg] = await db.query('SELECT count(*) AS count, sum(n) AS sum, sum(length(s)) AS chars, sum(x) AS xsum FROM big');
    const rows = await db.query('SELECT n, s, x FROM big ORDER BY n');
    let wrong = 0;
    rows.forEach((r, i) => { if (r.n !== i + 1 || r.s !== `row-${i + 1}` || r.x !== (i + 1) / 8) wrong++; });
    return { ...agg, rows: rows.length, wrong };
  },

  // ---- cleanup -----------------------------------------------------------
  /** Deletes the stored state of `name`: OPFS files (worker) or the IndexedDB database (window). */
  async destroy({ name }) {
    const removed = [];
    if (typeof globalThis.DedicatedWorkerGlobalScope === 'function' && globalThis instanceof globalThis.DedicatedWorkerGlobalScope) {
      const root = await navigator.storage.getDirectory();
      const dir = await root.getDirectoryHandle('ferry', { create: true });
      for (const f of [`${name}.db`, `${name}.db-log`]) {
        try { await dir.removeEntry(f); removed.push(f); } catch (e) { if (e.name !== 'NotFoundError') throw e; }
      }
    } else if (globalThis.indexedDB) {
      await new Promise((resolve, reject) => {
        const req = indexedDB.deleteDatabase(`ferry:${name}`);
        req.onsuccess = () => resolve();
        req.onerror = () => reject(req.error);
        req.onblocked = () => reject(new Error(`deleting ferry:${name} is blocked by an open connection`));
      });
      removed.push(`ferry:${name}`);
    }
    return removed;
  },
  async where() {
    return {
      worker: typeof globalThis.DedicatedWorkerGlobalScope === 'function' && globalThis instanceof globalThis.DedicatedWorkerGlobalScope,
    };
  },
};

/** Runs one operation. -> { value } | { error } */
export async function handle(op, args = {}, report = () => {}) {
  try {
    const fn = ops[op];
    if (!fn) throw new Error(`unknown op '${op}'`);
    return { value: await fn(args, report) };
  } catch (e) {
    return { error: plainError(e) };
  }
}
