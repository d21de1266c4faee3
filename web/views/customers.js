import { crudView } from '../lib/crud.js';

export const customers = {
  id: 'customers',
  title: 'Customers',
  ...crudView({
    entity: 'Customer',
    prefix: 'cust',
    title: 'Customers',
    singular: 'customer',
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'email', label: 'Email', type: 'email' },
      { name: 'region', label: 'Region', type: 'select',
        optionsSql: 'SELECT id, name FROM Region ORDER BY name' },
      { name: 'credit', label: 'Credit', inputmode: 'decimal', placeholder: '0.00' },
      { name: 'since', label: 'Customer since', type: 'date' },
      { name: 'active', label: 'Active', type: 'checkbox' },
      { name: 'photo', label: 'Photo', type: 'file', accept: 'image/*' },
    ],
    listSql: `SELECT c.id, c.name, c.email, c.active, c.credit, r.name AS regionName
              FROM Customer c LEFT JOIN Region r ON r.id = c.region ORDER BY c.name`,
    item: (r) => ({
      title: r.name || '(no name)',
      meta: [r.regionName, r.email, r.credit != null ? `credit ${r.credit}` : null].filter(Boolean).join(' · '),
      badge: r.active ? 'active' : 'inactive',
      badgeClass: r.active ? 'done' : 'archived',
    }),
  }),
};
