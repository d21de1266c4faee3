// Sync issues: objects the server rejected or that lost a conflict, with the
// values this device holds beside the server's. Retry sends the device's
// values again (they win as the latest write); discard takes the server's.
import { h, describe } from '../lib/dom.js';

const show = (v) => (v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v));

// Where an entity's objects can be edited in the app.
const EDIT_VIEW = { Visit: 'visits', Customer: 'customers', Draft: 'drafts' };

function card(err, act) {
  const local = err.local || {};
  const server = err.server || {};
  const lost = new Set(err.attrs || []);
  const conflict = err.kind === 'conflict';
  // A conflict lists the attributes that lost (with the server's value) and
  // the device's other values, which were applied. A rejected object lists
  // the values it carries; the server applied none of them.
  const names = Object.keys(local).filter((n) => lost.has(n) || local[n] !== null);
  for (const n of lost) if (!names.includes(n)) names.push(n);
  const serverCell = (n) => (conflict ? (lost.has(n) ? show(server[n]) : 'applied') : 'not applied');
  const edit = EDIT_VIEW[err.entity];
  return h('article', { class: `card issue ${err.kind}`, 'data-entity': err.entity, 'data-id': err.id },
    h('header', {},
      h('span', { class: `badge ${conflict ? 'in-progress' : 'archived'}` }, err.kind),
      h('strong', {}, ` ${err.entity} `), h('code', {}, err.id),
      err.op === 'delete' ? h('span', { class: 'meta' }, ' (a delete)') : ''),
    err.reason ? h('p', { class: 'reason' }, err.reason) : '',
    names.length ? h('table', { class: 'values' },
      h('thead', {}, h('tr', {}, h('th', {}, 'attribute'), h('th', {}, 'this device'), h('th', {}, 'server'))),
      h('tbody', {}, names.map((n) => h('tr', { class: lost.has(n) ? 'lost' : '' },
        h('th', {}, n), h('td', { class: 'local' }, show(local[n])), h('td', { class: 'server' }, serverCell(n)))))) : '',
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary retry', onclick: () => act('retry', err) }, 'Keep mine (retry)'),
      h('button', { type: 'button', class: 'discard', onclick: () => act('discard', err) }, "Use the server's (discard)"),
      edit && err.op !== 'delete' ? h('a', { class: 'button edit', href: `#${edit}/${encodeURIComponent(err.id)}` }, 'Edit on this device') : ''));
}

export const issues = {
  id: 'issues',
  title: 'Sync issues',
  mount(root, { db, notify, sync }) {
    const list = h('div', { id: 'issue-list' });
    const empty = h('p', { class: 'empty' }, 'No sync issues: every change this device made was accepted.');
    root.replaceChildren(
      h('p', { class: 'help' }, 'Changes the server rejected, or that lost a conflict to a later write elsewhere. Nothing is lost: the values this device had are kept here until you decide. A rejected object can be corrected first (Edit), then retried.'),
      empty, list);

    async function act(how, err) {
      try {
        if (how === 'retry') await db.retrySyncError(err.entity, err.id);
        else await db.discardSyncError(err.entity, err.id);
        notify(how === 'retry' ? 'queued again: it goes out with the next sync' : "discarded: the server's values come with the next sync");
        if (navigator.onLine !== false) sync();
      } catch (e) {
        notify(describe(e), 'error');
      }
    }

    async function refresh() {
      const errs = await db.syncErrors();
      list.replaceChildren(...errs.map((e) => card(e, act)));
      empty.hidden = errs.length > 0;
    }
    return { refresh };
  },
};
