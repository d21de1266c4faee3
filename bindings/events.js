// The events a database emits ('change', 'sync', 'syncerror', 'signout', 'progress', 'commit'), shared by the
// in-realm Database and the tab-shared SharedDatabase.
import { FerryError } from './errors.js';

const EVENTS = new Set(['change', 'sync', 'syncerror', 'signout', 'progress', 'commit']);

export class Listeners {
  #byEvent = new Map();

  /** Adds fn for event; returns a function that removes it. */
  on(event, fn) {
    if (!EVENTS.has(event)) throw new FerryError('misuse', `unknown event '${event}'; use change, sync, syncerror, signout, progress or commit`);
    if (typeof fn !== 'function') throw new FerryError('misuse', 'on(event, fn) needs a function');
    if (!this.#byEvent.has(event)) this.#byEvent.set(event, new Set());
    this.#byEvent.get(event).add(fn);
    return () => this.#byEvent.get(event)?.delete(fn);
  }

  /** Calls every listener; one that throws does not stop the others (its error is rethrown later). */
  emit(event, detail) {
    for (const fn of this.#byEvent.get(event) || []) {
      try { fn(detail); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }
}
