// The peer's side of bench/open-browser.mjs: @sqlite.org/sqlite-wasm with its
// opfs-sahpool VFS (the peer's fastest OPFS storage) in a module worker. The
// bench installs the package into build/bench/peer (never committed).
import sqlite3InitModule from '/build/bench/peer/node_modules/@sqlite.org/sqlite-wasm/dist/index.mjs';

self.onmessage = async ({ data }) => {
  try {
    const sqlite3 = await sqlite3InitModule();
    const pool = await sqlite3.installOpfsSAHPoolVfs({ name: 'ferry-bench-pool' });
    const db = new pool.OpfsSAHPoolDb(data.file);
    if (data.op === 'build') {
      db.exec('CREATE TABLE big(id INTEGER PRIMARY KEY, n INTEGER, pad BLOB)');
      for (let from = 1; from <= data.rows; from += data.step) {
        db.exec({ sql: data.fill, bind: [from, Math.min(data.rows, from + data.step - 1)] });
      }
      const n = db.selectValue('SELECT count(*) FROM big');
      db.close();
      self.postMessage({ n });
    } else if (data.op === 'hold') {
      // Kept open until the page closes (the memory figure).
      self.held = db;
      self.postMessage({ ok: db.selectValue('SELECT count(*) FROM big WHERE id = ?', [data.id]) >= 0 });
    } else {
      const rows = db.selectArrays('SELECT id, length(pad) FROM big WHERE id = ?', [data.id]);
      db.close();
      self.postMessage({ ok: rows.length === 1 && rows[0][1] === 1000 });
    }
  } catch (e) {
    self.postMessage({ error: String(e?.message || e) });
  }
};
