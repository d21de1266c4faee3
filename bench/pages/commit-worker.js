// Dedicated module worker for bench/pages/commit.html: OPFS (sync access
// handles) and IndexedDB through bindings/index.js, and the raw OPFS baseline.
import { open } from '/bindings/index.js';
import { commitBench, rawOpfs } from './commit-bench.js';

let seq = 0;
const waiting = new Map();
const osBytes = () => new Promise((resolve) => {
  const id = ++seq;
  waiting.set(id, resolve);
  self.postMessage({ osBytes: id });
});

self.onmessage = async ({ data }) => {
  if (data.osBytesReply !== undefined) {
    waiting.get(data.osBytesReply)?.(data.value);
    waiting.delete(data.osBytesReply);
    return;
  }
  const opts = data.run;
  try {
    const results = [];
    results.push({ where: 'worker', ...(await commitBench(open, { ...opts, storage: 'opfs', name: `${opts.name}_opfs`, osBytes })) });
    results.push({ where: 'worker', ...(await commitBench(open, { ...opts, storage: 'indexeddb', name: `${opts.name}_idb`, osBytes })) });
    results.push({ where: 'worker', ...(await rawOpfs(opts.n)) });
    self.postMessage({ done: true, results });
  } catch (e) {
    self.postMessage({ done: true, error: `${e?.name}: ${e?.message}\n${e?.stack || ''}` });
  }
};
