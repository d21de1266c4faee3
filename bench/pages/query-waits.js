// The measurement of bench/query-during-sync.mjs and of its browser half
// (bench/pages/qds-worker.js): a first sync of `db`, with a point query due
// every 20 ms. A query's wait runs from when it was due to its rows: while
// the thread is busy (a page applied in one call) even the timer that would
// ask is held back, so the wait is not taken from the timer's late call.
// Closes db. -> { ms, waits, issued, pulled }
export async function queryWaitsDuringSync(db) {
  await db.query('SELECT 1');
  const waits = [];
  let done = false, issued = 0;
  const t0 = performance.now();
  const syncing = db.sync().finally(() => { done = true; });
  let due = performance.now() + 20;
  const ticker = setInterval(() => {
    if (done) return;
    const t = Math.min(due, performance.now());
    due = Math.max(due + 20, performance.now() + 20 - 1);
    // Before the model arrives there is no table to query by id yet.
    db.query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'Item'")
      .then(() => { waits.push(performance.now() - t); })
      .catch(() => {});
    issued++;
  }, 20);
  const r = await syncing;
  const ms = performance.now() - t0;
  clearInterval(ticker);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await db.close();
  return { ms, waits, issued, pulled: r.pulled };
}
