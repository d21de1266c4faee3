// Device: where the data lives, persistent storage, usage and quota, the app version.
import { h, bytes, describe } from '../lib/dom.js';

export const device = {
  id: 'device',
  title: 'Device',
  mount(root, { db, pwa, storage, notify }) {
    const dl = h('dl', { class: 'facts', id: 'device-facts' });
    const persistBtn = h('button', { type: 'button', onclick: async () => { await storage.persist(); refresh(); } }, 'Ask for persistent storage');
    const updateBtn = h('button', {
      type: 'button',
      onclick: async () => {
        const found = await pwa.checkForUpdate();
        notify(found ? 'a new version is ready' : 'this is the latest version');
      },
    }, 'Check for updates');
    root.replaceChildren(h('section', { class: 'card' }, h('h2', {}, 'This device'), dl, h('div', { class: 'actions' }, persistBtn, updateBtn)));

    async function refresh() {
      const st = db.status();
      const est = await storage.estimate();
      const ver = await pwa.version();
      const facts = [
        ['Database', `${db.name} in ${st.storage}`, 'storage'],
        ['Persistent storage', storage.persisted === null ? 'not supported' : storage.persisted ? 'granted: the browser will not evict it' : 'not granted: the browser may evict the data under storage pressure', 'persisted'],
        ['Usage', est ? `${bytes(est.usage)} of ${bytes(est.quota)} (${((est.usage / est.quota) * 100).toFixed(2)} %)` : 'unknown', 'usage'],
        ['Data model', st.modelVersion ? `version ${st.modelVersion}` : 'not downloaded yet', 'model'],
        ['Offline app', pwa.controlled ? `installed, version ${ver?.version ?? '?'} (${ver?.files ?? '?'} files)` : pwa.error ? `unavailable: ${describe(pwa.error)}` : 'not installed yet', 'sw'],
      ];
      dl.replaceChildren(...facts.flatMap(([k, v, id]) => [h('dt', {}, k), h('dd', { id: `fact-${id}` }, v)]));
      persistBtn.hidden = storage.persisted !== false;
    }
    return { refresh };
  },
};
