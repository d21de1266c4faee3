// ferry/sw: ferry's parts for an app's own Workbox service worker.
//
//   import { registerRoute } from 'workbox-routing';
//   import { PrecacheRoute } from 'workbox-precaching';
//   import { ferryRoutes, precacheVersion, shellRoute } from 'ferry/sw';
//
//   const precache = precacheVersion(self.__WB_MANIFEST);   // one cache per version, integrity-checked
//   ferryRoutes({ precache });                               // file URLs, update flow, background sync
//   registerRoute(shellRoute(precache));                     // shell navigations never mix versions
//   registerRoute(new PrecacheRoute(precache));
//   // …the app's own routes
//
// workbox-precaching, workbox-routing and workbox-strategies are peer
// dependencies: the app's own copies, so ferry's routes land in the same
// Router as the app's. See service-worker/README.md.
import { registerRoute } from 'workbox-routing';
import { deviceFilesRoute } from './files.js';
import { wakePagesToSync, SYNC_TAG } from './sync.js';
import { updateOnRequest } from './update.js';

export { precacheVersion, PRECACHE_PREFIX } from './precache.js';
export { shellRoute, ShellNavigation, shellPageOf } from './shell.js';
export { deviceFilesRoute, FILE_ROUTE } from './files.js';
export { wakePagesToSync, SYNC_TAG } from './sync.js';
export { updateOnRequest } from './update.js';
export { manifestVersion } from './version.js';

/**
 * Registers ferry's parts in the service worker: the route for
 * db.files.url() (registered on Workbox's default Router: call this before
 * registering routes that could match the same URLs), the update flow's
 * messages (skip waiting when a page asks; the precache's version), and
 * the Background Sync event that wakes a page to run db.sync().
 * -> { files: the file Route or null }
 * @param {{ precache?: object, files?: boolean, sync?: string | false, update?: boolean }} [options]
 */
export function ferryRoutes({ precache, files = true, sync = SYNC_TAG, update = true } = {}) {
  let route = null;
  if (files) {
    route = deviceFilesRoute();
    registerRoute(route);
  }
  if (update) updateOnRequest({ precache });
  if (sync) wakePagesToSync(sync);
  return { files: route };
}
