// Durable one-row commits through the real ES module (bindings/index.js):
// latency of `await db.exec('INSERT …')` and the bytes each commit hands to
// the storage API. Used by commit.html (window), commit-worker.js (dedicated
// module worker) and bench/run.mjs (Node, 'file' and 'memory' storage).
//
// Bytes are counted where they leave ferry: for the file-based stores (OPFS,
// Node 'file') by wrapping the file objects (open({ wrapFile })), for
// IndexedDB by wrapping IDBObjectStore.prototype.put/delete for the run.

const now = () => performance.now();

function pct(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summarize(values) {
  const s = [...values].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), min: s[0], max: s[s.length - 1], mean: sum / (s.length || 1) };
}

function sizeOf(v) {
  if (v instanceof ArrayBuffer) return v.byteLength;
  if (ArrayBuffer.isView(v)) return v.byteLength;
  if (typeof v === 'number') return 8;
  if (typeof v === 'string') return v.length * 2;
  if (v == null) return 0;
  try { return JSON.stringify(v).length; } catch { return 0; }
}

/** Counts what IndexedDB is asked to store while `on` (patched prototypes). */
function idbCounter() {
  const c = { bytes: 0, puts: 0, deletes: 0, txs: 0, block0: 0, on: false };
  const S = globalThis.IDBObjectStore?.prototype;
  const D = globalThis.IDBDatabase?.prototype;
  if (!S || !D) return { c, restore() {} };
  const put = S.put, del = S.delete, tx = D.transaction;
  S.put = function (value, key) {
    if (c.on) { c.bytes += sizeOf(value) + sizeOf(key); c.puts++; if (key === 0) c.block0++; }
    return put.apply(this, arguments);
  };
  S.delete = function () { if (c.on) c.deletes++; return del.apply(this, arguments); };
  D.transaction = function (names, mode) {
    if (c.on && mode === 'readwrite') c.txs++;
    return tx.apply(this, arguments);
  };
  return { c, restore() { S.put = put; S.delete = del; D.transaction = tx; } };
}

/** Wraps ferry_file objects (OPFS, Node 'file') and counts what they do. */
function fileCounter() {
  const c = { bytes: 0, writes: 0, syncs: 0, truncates: 0, block0: 0, byFile: {}, on: false };
  const wrapFile = (f, which) => ({
    read: (u8, off) => f.read(u8, off),
    write(u8, off) {
      if (c.on) {
        c.bytes += u8.length; c.writes++; c.byFile[which] = (c.byFile[which] || 0) + u8.length;
        // A log record (core/store_log.c): 48-byte header (magic, nblocks, …),
        // then per block a 4-byte block number and the 4096 bytes.
        const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
        if (which === 'log' && u8.length >= 48 + 4100 && dv.getUint32(0, true) === 0x43455246) {
          const nb = dv.getUint32(4, true);
          for (let k = 0; k < nb && 48 + k * 4100 + 4 <= u8.length; k++) {
            if (dv.getUint32(48 + k * 4100, true) === 0) { c.block0++; break; }
          }
        }
      }
      return f.write(u8, off);
    },
    size: () => f.size(),
    truncate(n) { if (c.on) c.truncates++; return f.truncate(n); },
    sync() { if (c.on) c.syncs++; return f.sync(); },
    close: () => f.close(),
  });
  return { c, wrapFile };
}

/**
 * Opens `storage` through `open` (bindings/index.js), makes a small table,
 * warms up, then times `n` one-row commits.
 * osBytes: optional async () => number, bytes the OS saw written so far.
 */
export async function commitBench(open, { storage, name, path, n = 1000, warmup = 20, osBytes }) {
  const files = fileCounter();
  const idb = storage === 'indexeddb' ? idbCounter() : null;
  const counter = idb ? idb.c : files.c;
  const db = await open({ name, storage, path, wrapFile: files.wrapFile });
  try {
    await db.exec('CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)');
    for (let i = 0; i < warmup; i++) await db.exec('INSERT INTO t(v) VALUES (?)', [`warm ${i}`]);
    const lat = [], bytes = [];
    counter.on = true;
    const before = { ...counter, byFile: { ...(counter.byFile || {}) } };
    const os0 = osBytes ? await osBytes() : null;
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const b0 = counter.bytes;
      const s = now();
      await db.exec('INSERT INTO t(v) VALUES (?)', [`row ${i} ${'x'.repeat(40)}`]);
      lat.push(now() - s);
      bytes.push(counter.bytes - b0);
    }
    const total = now() - t0;
    counter.on = false;
    const os1 = osBytes ? await osBytes() : null;
    const rows = (await db.query('SELECT count(*) AS n FROM t'))[0].n;
    const per = (k) => (counter[k] - (before[k] || 0)) / n;
    const byFile = {};
    for (const [k, v] of Object.entries(counter.byFile || {})) byFile[k] = (v - (before.byFile[k] || 0)) / n;
    return {
      storage, status: db.status().storage, commits: n, rows, totalMs: total,
      latency: summarize(lat),
      bytesPerCommit: { ...summarize(bytes), amortized: per('bytes') },
      perCommit: idb
        ? { puts: per('puts'), deletes: per('deletes'), transactions: per('txs') }
        : { writes: per('writes'), syncs: per('syncs'), truncates: per('truncates'), byFile },
      // Share of commits that rewrite block 0 (SQLite's page 1: the header's
      // change counter moves on every commit in rollback-journal mode).
      block0Share: per('block0'),
      osBytesPerCommit: os0 != null && os1 != null ? (os1 - os0) / n : null,
    };
  } finally {
    idb?.restore();
    await db.close();
  }
}

/** The peers' raw baselines (raw OPFS write + flush, raw IndexedDB put), measured in the same run. */
export async function rawOpfs(n = 200) {
  const root = await navigator.storage.getDirectory();
  const fh = await root.getFileHandle(`ferry-bench-raw-${Date.now()}`, { create: true });
  const h = await fh.createSyncAccessHandle();
  const buf = new Uint8Array(4096).fill(7);
  const lat = [];
  try {
    for (let i = 0; i < n + 20; i++) {
      const s = now();
      h.write(buf, { at: (i % 64) * 4096 });
      h.flush();
      if (i >= 20) lat.push(now() - s);
    }
  } finally {
    h.close();
    await root.removeEntry(fh.name).catch(() => {});
  }
  return { what: 'raw OPFS 4 KiB write + flush', latency: summarize(lat) };
}

export async function rawIdb(n = 200) {
  const name = `ferry-bench-raw-${Date.now()}`;
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => r.result.createObjectStore('p');
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const buf = new Uint8Array(4096).fill(7);
  const lat = [];
  try {
    for (let i = 0; i < n + 20; i++) {
      const s = now();
      await new Promise((resolve, reject) => {
        const tx = db.transaction('p', 'readwrite', { durability: 'strict' });
        tx.objectStore('p').put(buf, i % 64);
        tx.oncomplete = resolve;
        tx.onabort = () => reject(tx.error);
      });
      if (i >= 20) lat.push(now() - s);
    }
  } finally {
    db.close();
    indexedDB.deleteDatabase(name);
  }
  return { what: 'raw IndexedDB 4 KiB put (strict)', latency: summarize(lat) };
}
