// ferry in the window: window.ferry(op, args) runs an operation of ops.js.
// Loop progress goes to the console as "ferry:committed <n>" (the test
// listens there, so it survives the page being closed mid-loop) and to
// window.lastCommitted.
import { handle } from './ops.js';

window.lastCommitted = 0;
window.loopError = null;
function report(msg) {
  if (msg.type === 'committed') {
    window.lastCommitted = msg.n;
    console.log(`ferry:committed ${msg.n}`);
  } else if (msg.type === 'loop-error') {
    window.loopError = msg.error;
    console.log(`ferry:loop-error ${JSON.stringify(msg.error)}`);
  }
}
window.ferry = (op, args) => handle(op, args, report);
window.ready = true;
