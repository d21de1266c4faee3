// The demo PWA's service worker: Workbox's modules and ferry's parts, as an
// app writes its own. scripts/build-web.mjs bundles it (Vite, one classic
// script) and lets workbox-build's injectManifest write the precache
// manifest into it: <web>/sw.js, a build output, never committed.
//
//   precache         the shell, the wasm and the modules, one cache per version,
//                    each file checked against its SHA-256 (precacheVersion)
//   shell pages      network first (3 s), but only this version's page (shellRoute)
//   file URLs        from the device's file store (ferryRoutes)
//   other pages      network first (3 s), the copy from the last visit, then /offline.html
//   subresources     stale-while-revalidate: what pages load by markup or CSS,
//                    and fetch() GETs under the paths the build named (--runtime)
//   everything else  not touched: API answers, sync calls (/sync, cache: 'no-store'), non-GET
import { clientsClaim } from 'workbox-core';
import { PrecacheFallbackPlugin, PrecacheRoute } from 'workbox-precaching';
import { registerRoute } from 'workbox-routing';
import { NetworkFirst, StaleWhileRevalidate } from 'workbox-strategies';
import { ferryRoutes, precacheVersion, shellRoute } from 'ferry/sw';

const NAV_TIMEOUT_SECONDS = 3;
const MAX_ENTRIES = 200;
// Path prefixes whose fetch() GETs are cached (build-web.mjs --runtime), set by the build.
const RUNTIME_PATHS = typeof __FERRY_RUNTIME__ === 'undefined' ? [] : __FERRY_RUNTIME__;
// Subresources a page loads by markup or CSS. A fetch() or XMLHttpRequest has
// no destination: it is an API call, and an API's answers (another user's,
// or stale ones) are never kept unless the app names the path.
const SUBRESOURCES = new Set(['style', 'script', 'image', 'font', 'manifest']);

const precache = precacheVersion(self.__WB_MANIFEST);
clientsClaim();   // the first version takes the page that registered it
ferryRoutes({ precache });

// ferry's sync calls (and whatever else the app fetches with no-store) never
// meet a cache; neither does anything of another origin.
const mine = ({ url, request }) => url.origin === self.location.origin
  && url.pathname !== '/sync' && !url.pathname.startsWith('/sync/') && request.cache !== 'no-store';

registerRoute(shellRoute(precache, { networkTimeoutSeconds: NAV_TIMEOUT_SECONDS }));

// Precached files, cache-first, by their exact URL (no query, no directory
// index); a navigation to one that is not a page goes to the network first below.
const precached = new PrecacheRoute(precache, { ignoreURLParametersMatching: [], directoryIndex: '', cleanURLs: false });
registerRoute((options) => options.request.mode !== 'navigate' && mine(options) && precached.match(options), precached.handler);

/** Keeps only answers worth keeping: this origin's, successful, not no-store. */
const keepable = {
  cacheWillUpdate: async ({ response }) => (response.ok && response.type === 'basic'
    && !/no-store/i.test(response.headers.get('cache-control') || '') ? response : null),
};
/** At most MAX_ENTRIES entries, the oldest out first (a cache lists its keys in insertion order). */
const bounded = {
  cacheDidUpdate: async ({ cacheName }) => {
    const cache = await caches.open(cacheName);
    const keys = await cache.keys();
    for (let i = 0; i < keys.length - MAX_ENTRIES; i++) await cache.delete(keys[i]);
  },
};

const offline = precache.getCacheKeyForURL('/offline.html')
  ? [new PrecacheFallbackPlugin({ fallbackURL: '/offline.html', precacheController: precache })]
  : [];
registerRoute(({ url, request }) => request.mode === 'navigate' && mine({ url, request }),
  new NetworkFirst({ cacheName: 'ferry-pages-v1', networkTimeoutSeconds: NAV_TIMEOUT_SECONDS, plugins: [keepable, bounded, ...offline] }));

registerRoute(({ url, request }) => mine({ url, request }) && !request.headers.has('range')
  && (SUBRESOURCES.has(request.destination) || RUNTIME_PATHS.some((p) => url.pathname.startsWith(p))),
new StaleWhileRevalidate({ cacheName: 'ferry-runtime-v1', plugins: [keepable, bounded] }));
