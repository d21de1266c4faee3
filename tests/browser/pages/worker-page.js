// The page side of the worker tests: starts dedicated module workers that
// run ops.js (ferry-worker.js) and talks to them by request id.
const workers = new Map();   // wid -> { worker, pending: Map, lastCommitted, loopError }
let nextId = 1;

function gone(w, why) {
  for (const { resolve } of w.pending.values()) resolve({ error: { code: null, name: 'WorkerGone', message: why } });
  w.pending.clear();
}

/**
 * Starts worker `wid` running `script` (a module of this directory that
 * posts { type: 'ready' } and answers { id, op, args } with { id, reply })
 * and waits until its module graph loaded. -> { value } | { error }
 */
window.spawn = (wid, script = 'ferry-worker.js') => new Promise((resolve) => {
  if (workers.has(wid)) { resolve({ error: { code: null, name: 'Error', message: `worker ${wid} exists` } }); return; }
  if (!/^[a-z-]+\.js$/.test(script)) { resolve({ error: { code: null, name: 'Error', message: `not a worker of pages/: ${script}` } }); return; }
  const worker = new Worker(new URL(`./${script}`, import.meta.url), { type: 'module', name: `ferry-${wid}` });
  const w = { worker, pending: new Map(), lastCommitted: 0, loopError: null, reports: 0 };
  workers.set(wid, w);
  worker.onmessage = (ev) => {
    const m = ev.data;
    if (m.type === 'ready') resolve({ value: true });
    else if (m.type === 'committed') { w.lastCommitted = m.n; w.reports++; }
    else if (m.type === 'loop-error') w.loopError = m.error;
    else if (m.id && w.pending.has(m.id)) {
      const { resolve: done } = w.pending.get(m.id);
      w.pending.delete(m.id);
      done(m.reply);
    }
  };
  worker.onerror = (ev) => {
    const message = `worker error: ${ev.message || 'failed to load'}`;
    gone(w, message);
    resolve({ error: { code: null, name: 'WorkerError', message } });
  };
});

/** Runs op in worker wid. -> { value } | { error } */
window.call = (wid, op, args) => new Promise((resolve) => {
  const w = workers.get(wid);
  if (!w) { resolve({ error: { code: null, name: 'Error', message: `no worker ${wid}` } }); return; }
  const id = nextId++;
  w.pending.set(id, { resolve });
  w.worker.postMessage({ id, op, args });
});

/** Kills worker wid at once (no cleanup inside it). -> the last commit it reported. */
window.terminate = (wid) => {
  const w = workers.get(wid);
  if (!w) return null;
  w.worker.terminate();
  workers.delete(wid);
  gone(w, 'terminated');
  return { lastCommitted: w.lastCommitted, loopError: w.loopError, reports: w.reports };
};

/** What the page has heard from worker wid so far. */
window.heard = (wid) => {
  const w = workers.get(wid);
  return w ? { lastCommitted: w.lastCommitted, loopError: w.loopError, reports: w.reports } : null;
};

/**
 * One crash: worker wid (database open under key) commits numbered rows from
 * `start` (yieldEach: see ops.js loop); after delayMs it is terminated.
 * -> { lastCommitted, loopError, reports }: what the page had heard when it
 * called terminate().
 */
window.crashRound = async ({ wid, key, start, delayMs, yieldEach }) => {
  const r = await window.call(wid, 'loop', { key, start, yieldEach });
  if (r.error) return r;
  await new Promise((res) => setTimeout(res, delayMs));
  return { value: window.terminate(wid) };
};

window.ready = true;
