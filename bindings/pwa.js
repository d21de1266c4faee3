// Page side of ferry's parts of the app's service worker (ferry/sw:
// service-worker/update.js, sync.js).
//
//   const pwa = registerServiceWorker({ sync: () => db.sync() });
//   pwa.addEventListener('updateavailable', () => showBanner());   // a new version waits
//   await pwa.applyUpdate();                                        // it takes over; the page reloads
//
// Events (an EventTarget):
//   'offlineready'     the first version is installed and controls the page: it now loads offline
//   'updateavailable'  a new version is installed and waiting; nothing changes until applyUpdate()
//   'updated'          another tab applied an update; cancelable: unless a listener calls
//                      preventDefault(), this page reloads too, so it never runs old code
//                      against the new version's assets
//   'backgroundsync'   the worker's Background Sync event ran the sync callback (detail: { ok, error })
//   'error'            registration failed (detail.error); the app keeps working online
// The sync callback runs when the service worker's Background Sync event
// fires (connectivity came back with changes pending); requestBackgroundSync()
// arms it. Where Background Sync does not exist, the page's 'online' event
// (handled by ferry's bindings) does the same job.

const SYNC_TAG = 'ferry-sync';

class Pwa extends EventTarget {
  #requested = false;
  #reloading = false;
  #sync;

  constructor({ url, scope, sync, checkEveryMs }) {
    super();
    this.supported = typeof navigator !== 'undefined' && 'serviceWorker' in navigator;
    this.registration = null;
    this.updateAvailable = false;
    this.offlineReady = false;
    this.error = null;
    this.backgroundSyncs = 0;   // Background Sync events this page answered
    this.#sync = sync;
    if (!this.supported) {
      this.ready = Promise.resolve(null);
      return;
    }
    const sw = navigator.serviceWorker;
    let wasControlled = !!sw.controller;
    this.offlineReady = wasControlled;

    sw.addEventListener('controllerchange', () => {
      if (this.#requested) {
        this.#reload();
      } else if (!wasControlled) {
        // The first version took this page (clients.claim()).
        wasControlled = true;
        this.offlineReady = true;
        this.#emit('offlineready');
      } else {
        // Another tab applied an update.
        const ev = new CustomEvent('updated', { cancelable: true });
        this.dispatchEvent(ev);
        if (!ev.defaultPrevented) this.#reload();
      }
    });
    sw.addEventListener('message', (e) => this.#onMessage(e));
    sw.startMessages?.();

    this.ready = sw.register(url, { scope, updateViaCache: 'none' }).then((reg) => {
      this.registration = reg;
      if (reg.waiting && sw.controller) this.#waiting();
      if (reg.installing) this.#track(reg.installing);
      reg.addEventListener('updatefound', () => this.#track(reg.installing));
      this.#scheduleChecks(checkEveryMs);
      return reg;
    }, (error) => {
      this.error = error;
      this.#emit('error', { error });
      return null;
    });
  }

  /** Asks the server for a new version now. -> true when one is waiting. */
  async checkForUpdate() {
    const reg = await this.ready;
    if (!reg) return false;
    try { await reg.update(); } catch { /* offline: try again later */ }
    // An update found here finishes installing in the background.
    const installing = reg.installing;
    if (installing) {
      await new Promise((resolve) => {
        const done = () => { if (installing.state !== 'installing') { installing.removeEventListener('statechange', done); resolve(); } };
        installing.addEventListener('statechange', done);
        done();
      });
    }
    if (reg.waiting && navigator.serviceWorker.controller) this.#waiting();
    return this.updateAvailable;
  }

  /**
   * Lets the waiting version take over; the page reloads once it controls
   * it, so every asset afterwards is the new version's. -> false when no
   * update is waiting (resolves only then; otherwise the page reloads).
   */
  async applyUpdate() {
    const reg = await this.ready;
    const waiting = reg?.waiting;
    if (!waiting) return false;
    this.#requested = true;
    waiting.postMessage({ type: 'ferry:skip-waiting' });
    return new Promise(() => {});
  }

  /** Arms the Background Sync event (once per tag until it runs). -> true if the browser has it. */
  async requestBackgroundSync() {
    const reg = await this.ready;
    if (!reg?.sync) return false;
    try {
      await reg.sync.register(SYNC_TAG);
      return true;
    } catch {
      return false;
    }
  }

  /** The controlling worker's version: { version, cache, files } or null. */
  version() {
    const ctl = this.supported && navigator.serviceWorker.controller;
    if (!ctl) return Promise.resolve(null);
    return new Promise((resolve) => {
      const ch = new MessageChannel();
      const timer = setTimeout(() => resolve(null), 3000);
      ch.port1.onmessage = (e) => { clearTimeout(timer); resolve(e.data); };
      ctl.postMessage({ type: 'ferry:version' }, [ch.port2]);
    });
  }

  get controlled() {
    return this.supported && !!navigator.serviceWorker.controller;
  }

  #track(worker) {
    if (!worker) return;
    const check = () => {
      if (worker.state === 'installed' && navigator.serviceWorker.controller) this.#waiting();
    };
    worker.addEventListener('statechange', check);
    check();
  }

  #waiting() {
    if (this.updateAvailable) return;
    this.updateAvailable = true;
    this.#emit('updateavailable', { registration: this.registration });
  }

  #reload() {
    if (this.#reloading) return;
    this.#reloading = true;
    location.reload();
  }

  async #onMessage(e) {
    if (e.data?.type !== 'ferry:sync') return;
    const port = e.ports?.[0];
    const reply = (msg) => port?.postMessage(msg);
    if (!this.#sync) return reply({ ok: false, error: 'this page runs no sync' });
    if (navigator.onLine === false) return reply({ ok: false, error: 'offline' });
    let result;
    try {
      await this.#sync();
      result = { ok: true };
    } catch (err) {
      result = { ok: false, error: `${err?.code || 'error'}: ${err?.message || err}` };
    }
    this.backgroundSyncs++;
    this.#emit('backgroundsync', result);
    reply(result);
  }

  #scheduleChecks(everyMs) {
    const check = () => { if (navigator.onLine !== false) this.checkForUpdate(); };
    addEventListener('online', check);
    if (everyMs > 0) setInterval(check, everyMs);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * Registers the service worker and returns its controller (an EventTarget;
 * see the top of this file). Never throws: without service workers (or when
 * registration fails) the app simply has no offline shell.
 * @param {{ url?: string, scope?: string, sync?: () => Promise<unknown>, checkEveryMs?: number }} [options]
 */
export function registerServiceWorker({ url = '/sw.js', scope = '/', sync = null, checkEveryMs = 60 * 60 * 1000 } = {}) {
  return new Pwa({ url, scope, sync, checkEveryMs });
}
