// The shell guard: a navigation to a precached page goes to the network
// first (a fresh page when online), but the network's page is used only if
// it is this version's, byte for byte; otherwise the precached page answers.
//
// Why: a new version waits while any tab runs the old one, and until then
// this worker serves the old version's assets from its precache. The server
// already serves the new HTML, which names new files or expects new
// modules; used with the old assets, the page would mix two versions.
// Workbox's own navigation handlers cannot say this: NetworkFirst takes any
// network answer, and createHandlerBoundToURL never asks the network.
// A page of another version means an update is out: the worker checks for
// it at once (and the page hears 'updateavailable' when it installed).
import { Route } from 'workbox-routing';
import { Strategy } from 'workbox-strategies';

const ALGORITHMS = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

function base64(buf) {
  let s = '';
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
  return btoa(s);
}

/** The precached page URL a navigation to `url` opens ('/x/' -> '/x/index.html'), or null. */
export function shellPageOf(precache, url) {
  const path = url.pathname.endsWith('/') ? `${url.pathname}index.html` : url.pathname;
  if (!path.endsWith('.html')) return null;
  const page = new URL(path, url).href;
  return precache.getCacheKeyForURL(page) ? page : null;
}

export class ShellNavigation extends Strategy {
  /**
   * @param {{ precache: import('workbox-precaching').PrecacheController, networkTimeoutSeconds?: number }} options
   *   and Workbox's StrategyOptions (plugins, fetchOptions)
   */
  constructor({ precache, networkTimeoutSeconds = 3, ...options }) {
    super(options);
    if (!precache) throw new TypeError('ShellNavigation needs { precache } (from precacheVersion or a PrecacheController)');
    this.precache = precache;
    this.timeoutMs = networkTimeoutSeconds * 1000;
    this.precachedDigests = new Map();   // cache key -> base64 SHA-256 of the precached copy
  }

  /** Is `body` the page this version precached for `page`? */
  async isThisVersion(page, body) {
    const key = this.precache.getCacheKeyForURL(page);
    const integrity = key && this.precache.getIntegrityForCacheKey(key);
    const wanted = [];
    for (const token of (integrity || '').split(/\s+/)) {
      const m = /^(sha256|sha384|sha512)-([A-Za-z0-9+/=]+)/.exec(token);
      if (m) wanted.push([ALGORITHMS[m[1]], m[2]]);
    }
    if (wanted.length === 0) {
      // No integrity in the manifest: compare with the precached copy itself.
      if (!this.precachedDigests.has(key)) {
        const copy = await this.precache.matchPrecache(page);
        if (!copy) return false;
        this.precachedDigests.set(key, base64(await crypto.subtle.digest('SHA-256', await copy.arrayBuffer())));
      }
      wanted.push(['SHA-256', this.precachedDigests.get(key)]);
    }
    for (const [alg, digest] of wanted) {
      if (base64(await crypto.subtle.digest(alg, body)) === digest) return true;
    }
    return false;
  }

  async _handle(request, handler) {
    const page = handler.params?.page || shellPageOf(this.precache, new URL(request.url));
    try {
      let timer;
      const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('no answer in time')), this.timeoutMs); });
      const res = await Promise.race([handler.fetch(request), late]).finally(() => clearTimeout(timer));
      if (res.ok && res.type === 'basic') {
        if (await this.isThisVersion(page, await res.clone().arrayBuffer())) return res;
        handler.waitUntil(self.registration.update().catch(() => {}));
      }
    } catch {
      // Offline or slow: the precache answers.
    }
    const hit = page && await this.precache.matchPrecache(page);
    return hit || handler.fetch(request);
  }
}

/**
 * A Workbox Route for navigations to the pages `precache` holds (HTML only;
 * '/' and '/x/' as their index.html), answered by ShellNavigation. Register
 * it before any other navigation route: registerRoute(shellRoute(precache)).
 * @param {import('workbox-precaching').PrecacheController} precache
 * @param {{ networkTimeoutSeconds?: number, plugins?: object[] }} [options]
 */
export function shellRoute(precache, options = {}) {
  const strategy = new ShellNavigation({ ...options, precache });
  return new Route(({ request, url }) => {
    if (request.mode !== 'navigate' || url.origin !== self.location.origin) return false;
    const page = shellPageOf(precache, url);
    return page ? { page } : false;
  }, strategy);
}
