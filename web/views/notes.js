// Drafts (sync mode never: device only) and feedback (nothing-clear: uploaded, then cleared).
import { crudView } from '../lib/crud.js';

export const drafts = {
  id: 'drafts',
  title: 'Drafts',
  ...crudView({
    entity: 'Draft',
    prefix: 'draft',
    title: 'Drafts',
    singular: 'draft',
    help: 'Drafts never leave this device (sync mode "never").',
    fields: [{ name: 'text', label: 'Text', type: 'textarea', required: true, rows: 6 }],
    listSql: 'SELECT id, text FROM Draft ORDER BY rowid DESC',
    item: (r) => ({ title: r.text, badge: 'device only' }),
  }),
};

export const feedback = {
  id: 'feedback',
  title: 'Feedback',
  ...crudView({
    entity: 'Feedback',
    prefix: 'feedback',
    title: 'Waiting for upload',
    singular: 'feedback',
    editable: false,
    saveLabel: 'Send',
    createdMessage: 'feedback queued: it goes out with the next sync',
    empty: 'Nothing waiting: all feedback has reached the server.',
    help: 'Feedback is uploaded at the next sync, then removed from this device (sync mode "nothing-clear").',
    fields: [{ name: 'text', label: 'Your feedback', type: 'textarea', required: true }],
    listSql: 'SELECT id, text FROM Feedback ORDER BY rowid DESC',
    item: (r) => ({ title: r.text, badge: 'pending', badgeClass: 'planned' }),
  }),
};
