// A dedicated module worker running ferry: { id, op, args } in,
// { id, reply } out; loop progress as { type: 'committed', n }.
import { handle } from './ops.js';

const report = (msg) => postMessage(msg);
self.onmessage = async (ev) => {
  const { id, op, args } = ev.data;
  const reply = await handle(op, args, report);
  postMessage({ id, reply });
};
postMessage({ type: 'ready' });
