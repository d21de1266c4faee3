import { crudView } from '../lib/crud.js';

export const STATUSES = ['planned', 'in progress', 'done', 'archived'];

export const visits = {
  id: 'visits',
  title: 'Visits',
  ...crudView({
    entity: 'Visit',
    prefix: 'visit',
    title: 'Visits',
    singular: 'visit',
    help: 'Visits sync with the server; archived ones leave this device after the next sync.',
    fields: [
      { name: 'customer', label: 'Customer', type: 'select', required: true,
        optionsSql: 'SELECT id, name FROM Customer ORDER BY name' },
      { name: 'status', label: 'Status', type: 'select', default: 'planned', options: () => STATUSES.map((s) => [s, s]), required: true },
      { name: 'note', label: 'Note', type: 'textarea', required: true, placeholder: 'What is to be done, what was done' },
      { name: 'attachment', label: 'Attachment (photo, signed form, PDF)', type: 'file' },
    ],
    listSql: `SELECT v.id, v.note, v.status, c.name AS customerName
              FROM Visit v LEFT JOIN Customer c ON c.id = v.customer
              ORDER BY CASE v.status WHEN 'in progress' THEN 0 WHEN 'planned' THEN 1 WHEN 'done' THEN 2 ELSE 3 END, v.rowid DESC`,
    item: (r) => ({ title: r.note || '(no note)', meta: r.customerName || 'no customer', badge: r.status, badgeClass: (r.status || '').replace(/\s+/g, '-') }),
  }),
};
