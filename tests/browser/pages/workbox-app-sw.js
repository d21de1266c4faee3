// An app's own Workbox service worker with ferry's parts added, as the
// service-worker README tells an app to write it (tests/browser/workbox-app.test.js
// bundles it and injects its manifest with workbox-build and ferry/sw-build).
import { clientsClaim } from 'workbox-core';
import { PrecacheRoute } from 'workbox-precaching';
import { registerRoute } from 'workbox-routing';
import { NetworkFirst } from 'workbox-strategies';
import { ferryRoutes, precacheVersion, shellRoute } from 'ferry/sw';

const precache = precacheVersion(self.__WB_MANIFEST);
clientsClaim();
ferryRoutes({ precache });
registerRoute(shellRoute(precache));
registerRoute(new PrecacheRoute(precache));
// The app's own route, beside ferry's.
registerRoute(({ url }) => url.pathname === '/news.txt', new NetworkFirst({ cacheName: 'app-news' }));
