// Background sync, ferry's way: the outbox is in SQLite inside the page's
// database worker, not in the service worker, and a push is built by the
// core at sync time (mutation ids, the objects' current values). So the
// 'sync' event replays no stored request (as workbox-background-sync does):
// it asks an open page (focused or visible first) to run db.sync() and
// waits for its answer; a failure or no page makes the event fail, and the
// browser retries later with backoff. The page side is ferry/pwa
// (registerServiceWorker({ sync }) answers, requestBackgroundSync() arms it).
import { ask } from './clients.js';

export const SYNC_TAG = 'ferry-sync';
const SYNC_REPLY_TIMEOUT_MS = 120000;

async function syncThroughPages() {
  const list = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const rank = (c) => (c.focused ? 2 : 0) + (c.visibilityState === 'visible' ? 1 : 0);
  list.sort((a, b) => rank(b) - rank(a));
  let error = new Error('no open page to run the sync');
  for (const client of list) {
    try {
      const reply = await ask(client, { type: 'ferry:sync' }, SYNC_REPLY_TIMEOUT_MS);
      if (reply.ok) return;
      error = new Error(reply.error || 'the sync failed');
    } catch (e) {
      error = e;
    }
  }
  throw error;   // the browser schedules a retry
}

/** Answers the Background Sync event tagged `tag` by waking a page to sync. */
export function wakePagesToSync(tag = SYNC_TAG) {
  self.addEventListener('sync', (event) => {
    if (event.tag === tag) event.waitUntil(syncThroughPages());
  });
}
