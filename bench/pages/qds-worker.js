// Dedicated module worker for bench/pages/qds.html: the measurement of
// bench/query-during-sync.mjs, in the thread that holds the database.
import { open } from '/bindings/index.js';
import { queryWaitsDuringSync } from './query-waits.js';

self.onmessage = async ({ data: { server, slice, name } }) => {
  try {
    const db = await open({ name, storage: 'opfs', server, syncOnOpen: false, ...(slice === 'time' ? {} : { pullSlice: slice }) });
    self.postMessage({ ...(await queryWaitsDuringSync(db)), storage: 'opfs' });
  } catch (e) {
    self.postMessage({ error: `${e?.name}: ${e?.message}\n${e?.stack || ''}` });
  }
};
