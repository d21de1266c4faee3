// Dedicated module worker for bench/pages/qds.html: the same measurement as
// bench/query-during-sync.mjs, in the thread that holds the database.
import { open } from '/bindings/index.js';

self.onmessage = async ({ data: { server, slice, name } }) => {
  try {
    const db = await open({ name, storage: 'opfs', server, syncOnOpen: false, ...(slice === 'time' ? {} : { pullSlice: slice }) });
    await db.query('SELECT 1');
    const waits = [];
    let done = false;
    const t0 = performance.now();
    const syncing = db.sync().finally(() => { done = true; });
    // A query is due every 20 ms; its wait runs from when it was due (a
    // busy thread holds even the timer back) to its rows.
    let due = performance.now() + 20;
    const ticker = setInterval(() => {
      if (done) return;
      const t = Math.min(due, performance.now());
      due = Math.max(due + 20, performance.now() + 20 - 1);
      db.query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'Item'")
        .then(() => { waits.push(performance.now() - t); })
        .catch(() => {});
    }, 20);
    const r = await syncing;
    const ms = performance.now() - t0;
    clearInterval(ticker);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await db.close();
    self.postMessage({ ms, waits, pulled: r.pulled, storage: 'opfs' });
  } catch (e) {
    self.postMessage({ error: `${e?.name}: ${e?.message}\n${e?.stack || ''}` });
  }
};
