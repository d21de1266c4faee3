// One writer per database name across tabs and workers: a Web Lock held for
// as long as the database is open. Where Web Locks do not exist (Node), the
// core's own registry still refuses a second open in the same realm.
import { FerryError } from '../errors.js';

export async function acquireWebLock(lockName, timeoutMs = 2000) {
  const locks = globalThis.navigator?.locks;
  if (!locks) return { release() {} };
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const granted = await new Promise((resolve, reject) => {
    const signal = AbortSignal.timeout(Math.max(1, timeoutMs));
    locks.request(lockName, { mode: 'exclusive', signal }, () => {
      resolve(true);
      return held;
    }).catch((e) => {
      if (e.name === 'AbortError' || e.name === 'TimeoutError') resolve(false);
      else reject(e);
    });
  });
  if (!granted) {
    throw new FerryError('busy', `database lock '${lockName}' is held by another tab or worker; close the database there or wait`);
  }
  return { release: () => release() };
}
