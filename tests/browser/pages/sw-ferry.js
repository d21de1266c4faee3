// A module service worker that uses ferry: it answers postMessage calls with
// the result of running SQL on a database it opens itself.
import { open } from '/bindings/index.js';

let db = null;
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (ev) => ev.waitUntil(self.clients.claim()));
self.addEventListener('message', (ev) => {
  const { id, name, sql, params } = ev.data;
  ev.waitUntil((async () => {
    try {
      db ??= await open({ name });
      const rows = await db.query(sql, params);
      ev.source.postMessage({ id, value: { rows, storage: db.status().storage } });
    } catch (e) {
      ev.source.postMessage({ id, error: { code: e.code, message: e.message } });
    }
  })());
});
