// Memos: private to the signed-in user. The server sends a user only the
// memos they own and refuses writes to anyone else's (sync filter
// "owner = $user.id"), and this device keeps each user's data in a database
// of their own, deleted at sign-out.
import { crudView } from '../lib/crud.js';

export const memos = {
  id: 'memos',
  title: 'My memos',
  // The help names the signed-in user, so the view is made per context.
  shell: (root, ctx, status) => view(ctx).shell(root, ctx, status),
  mount: (root, ctx) => view(ctx).mount(root, ctx),
};

const view = (ctx) => crudView({
  entity: 'Memo',
  prefix: 'memo',
  title: 'My memos',
  singular: 'memo',
  help: `Memos are private: only ${ctx.session.name} gets them, on any device, and nobody else can change them `
    + '(sync filter "owner = $user.id"). Switching user syncs them, then deletes them from this device.',
  fields: [{ name: 'text', label: 'Memo', type: 'textarea', required: true, rows: 4 }],
  fixed: ({ session }) => ({ owner: session.user }),
  listSql: 'SELECT id, text FROM Memo ORDER BY rowid DESC',
  item: (r) => ({ title: r.text, badge: 'private' }),
});
