// The sync state bar: online/offline, pending changes, last sync, sync issues, Sync button.
import { h, timeAgo, describe } from './dom.js';

export class StatusBar {
  constructor(root, { db, onSyncFailed }) {
    this.db = db;
    this.onSyncFailed = onSyncFailed;
    this.net = h('span', { id: 'net', class: 'pill' });
    this.pending = h('span', { id: 'pending' });
    this.last = h('span', { id: 'last-sync' });
    this.issues = h('a', { id: 'issue-count', href: '#issues', hidden: true });
    this.message = h('span', { id: 'sync-message', role: 'status' });
    this.button = h('button', { id: 'sync-button', type: 'button', onclick: () => this.sync() }, 'Sync now');
    root.replaceChildren(
      h('div', { class: 'status-main' }, this.net, this.pending, this.last, this.issues),
      h('div', { class: 'status-actions' }, this.message, this.button),
    );
    addEventListener('online', () => this.render());
    addEventListener('offline', () => this.render());
    setInterval(() => this.render(), 15_000);
    this.render();
  }

  render() {
    const online = navigator.onLine !== false;
    this.net.textContent = online ? 'online' : 'offline';
    this.net.className = `pill ${online ? 'ok' : 'off'}`;
    if (!this.db) return;
    const st = this.db.status();
    this.pending.textContent = st.pendingChanges === 1 ? '1 change waiting' : `${st.pendingChanges} changes waiting`;
    this.pending.className = st.pendingChanges ? 'warn' : '';
    this.pending.dataset.count = st.pendingChanges;
    this.last.textContent = `last sync ${timeAgo(st.lastSyncAt)}`;
    this.last.title = st.lastSyncAt ? st.lastSyncAt.toLocaleString() : 'not synced yet';
    const n = st.syncErrors || 0;
    this.issues.hidden = n === 0;
    this.issues.textContent = n === 1 ? '1 sync issue' : `${n} sync issues`;
  }

  async sync() {
    if (!this.db) return null;
    this.button.disabled = true;
    this.message.textContent = 'syncing…';
    try {
      const r = await this.db.sync();
      this.message.textContent = `↑${r.pushed} ↓${r.pulled} in ${r.ms} ms${r.errors ? ` · ${r.errors} issue${r.errors > 1 ? 's' : ''}` : ''}`;
      return r;
    } catch (e) {
      this.message.textContent = e?.code === 'sync_network'
        ? 'server unreachable: changes stay on this device'
        : describe(e);
      this.onSyncFailed?.(e);
      return null;
    } finally {
      this.button.disabled = false;
      this.render();
    }
  }
}
