// One precache per version, on Workbox's PrecacheController.
//
// Workbox keeps every version's entries in one cache and tells them apart by
// revision. ferry names the cache after the manifest's version instead
// ('ferry-precache-<version>'), so a cache holds exactly one deployment: an
// install that failed half-way (a file whose integrity did not match) leaves
// nothing in the cache of the version that runs, and "which version is on
// this device" is the list of cache names. Two things Workbox does not do
// for such caches are done here: before Workbox's install fetches anything,
// every entry an older ferry precache holds under the same cache key (same
// URL and revision, so the same bytes) is copied from it, so a new version
// downloads only what changed (not the 1.3 MB wasm when app.js changed);
// and on activate the other ferry precaches are deleted.
//
// Entries with `integrity` (sha256-…, what scripts/build-web.mjs and
// ferry/sw-build's integrity transform add) are fetched by Workbox with it,
// so the browser refuses a body that is not the one the manifest names and
// the install fails: a server half-way through a deploy cannot leave a
// precache that mixes versions.
import { PrecacheController } from 'workbox-precaching';
import { manifestVersion } from './version.js';

export const PRECACHE_PREFIX = 'ferry-precache-';

/** Copies into `cacheName` each entry an older precache of `prefix` already holds. */
async function seedFromOlder(precache, prefix, cacheName) {
  const older = (await caches.keys()).filter((n) => n.startsWith(prefix) && n !== cacheName);
  if (older.length === 0) return;
  const cache = await caches.open(cacheName);
  const sources = await Promise.all(older.map((n) => caches.open(n)));
  for (const key of precache.getURLsToCacheKeys().values()) {
    if (await cache.match(key)) continue;
    for (const source of sources) {
      const hit = await source.match(key);
      if (hit) {
        await cache.put(key, hit);
        break;
      }
    }
  }
}

async function dropOlder(prefix, cacheName) {
  for (const name of await caches.keys()) {
    if (name.startsWith(prefix) && name !== cacheName) await caches.delete(name);
  }
}

/**
 * Precaches `entries` (the manifest workbox-build's injectManifest writes) in
 * the cache `<prefix><version>` and installs the install and activate
 * listeners. -> the PrecacheController, with `version` (manifestVersion of
 * the entries) and `cacheName`; use it with Workbox's PrecacheRoute,
 * ferry's shellRoute and ferryRoutes({ precache }).
 * @param {Array<string | { url: string, revision?: string | null, integrity?: string }>} entries
 * @param {{ prefix?: string, plugins?: object[], fallbackToNetwork?: boolean }} [options]
 */
export function precacheVersion(entries, { prefix = PRECACHE_PREFIX, plugins = [], fallbackToNetwork = true } = {}) {
  if (!Array.isArray(entries)) throw new TypeError('precacheVersion(entries): entries is the manifest array injectManifest writes');
  const version = manifestVersion(entries);
  const cacheName = `${prefix}${version}`;
  const precache = new PrecacheController({ cacheName, plugins, fallbackToNetwork });
  precache.addToCacheList(entries);
  self.addEventListener('install', (event) => {
    // No skipWaiting(): the new version waits until a page asks (ferryRoutes).
    event.waitUntil(seedFromOlder(precache, prefix, cacheName).then(() => precache.install(event)));
  });
  self.addEventListener('activate', (event) => {
    event.waitUntil(precache.activate(event).then(() => dropOlder(prefix, cacheName)));
  });
  return Object.assign(precache, { version, cacheName });
}
