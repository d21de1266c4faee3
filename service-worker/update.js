// The update flow's worker side. A new version installs and waits (no
// skipWaiting() on install) while any page runs the old one; it takes over
// only when a page asks: ferry/pwa's applyUpdate() posts
// { type: 'ferry:skip-waiting' } (workbox-window's messageSkipWaiting()
// posts { type: 'SKIP_WAITING' }, taken too), then reloads once the new
// version controls it. { type: 'ferry:version' } is answered on its port
// with the precache's version, cache and file count (pwa.version()).

/** @param {{ precache?: { version?: string, cacheName?: string, strategy?: { cacheName: string }, getCachedURLs(): string[] } }} [options] */
export function updateOnRequest({ precache } = {}) {
  self.addEventListener('message', (event) => {
    const type = event.data?.type;
    if (type === 'ferry:skip-waiting' || type === 'SKIP_WAITING') {
      event.waitUntil(self.skipWaiting());
    } else if (type === 'ferry:version') {
      event.ports[0]?.postMessage(precache
        ? { version: precache.version ?? null, cache: precache.cacheName ?? precache.strategy?.cacheName ?? null, files: precache.getCachedURLs().length }
        : { version: null, cache: null, files: 0 });
    }
  });
}
