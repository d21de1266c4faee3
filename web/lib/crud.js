// A list + form view over one entity table: the demo's visits, customers,
// drafts and feedback are configurations of it. Writes are plain SQL on the
// entity's table; ferry captures them for sync by itself.
import { h, setOptions, newId, describe } from './dom.js';

function control(f) {
  const common = { name: f.name, required: f.required, placeholder: f.placeholder, maxlength: f.maxlength || 2000 };
  switch (f.type) {
    case 'textarea': return h('textarea', { ...common, rows: f.rows || 4 });
    case 'select': return h('select', { name: f.name, required: f.required });
    case 'checkbox': return h('input', { type: 'checkbox', name: f.name });
    case 'date': return h('input', { type: 'date', name: f.name });
    case 'email': return h('input', { ...common, type: 'email' });
    case 'file': return h('input', { type: 'file', name: f.name, accept: f.accept || '' });
    default: return h('input', { ...common, type: 'text', inputmode: f.inputmode });
  }
}

const read = (f, el) => {
  if (f.type === 'checkbox') return el.checked ? 1 : 0;
  const v = el.value.trim();
  if (v === '') return null;
  if (f.type === 'date') return `${v}T00:00:00.000Z`;
  return v;
};
const write = (f, el, v) => {
  if (f.type === 'checkbox') el.checked = !!v;
  else if (f.type === 'date') el.value = v ? String(v).slice(0, 10) : '';
  else el.value = v ?? (f.default ?? '');
};

/**
 * The view's elements, built in one place for the shell and the mounted view
 * so the two lay out alike and nothing moves when the data arrives. Without
 * `on` (the shell) the form's controls are disabled.
 */
function layout(spec, on, status) {
  const { fields, editable = true } = spec;
  const key = spec.entity.toLowerCase();
  const list = h('ul', { class: 'list', id: `${key}-list` });
  const empty = on ? h('p', { class: 'empty', hidden: true }, spec.empty || `No ${spec.title.toLowerCase()} yet.`) : status;
  const idInput = h('input', { type: 'hidden', name: 'id' });
  const controls = Object.fromEntries(fields.map((f) => [f.name, control(f)]));
  const image = (f) => (f.accept || '').startsWith('image/');
  const previews = Object.fromEntries(fields.filter((f) => f.type === 'file').map((f) => [f.name, image(f)
    ? h('img', { class: 'thumb', alt: f.label, hidden: true })
    : h('a', { class: 'attachment', target: '_blank', hidden: true })]));
  const heading = h('h2', {}, `New ${spec.singular}`);
  const del = h('button', { type: 'button', class: 'danger', hidden: true, onclick: on?.remove }, 'Delete');
  const form = h('form', { id: `${key}-form`, class: 'card', onsubmit: on?.save ?? ((ev) => ev.preventDefault()) },
    heading, idInput,
    fields.map((f) => (f.type === 'checkbox'
      ? h('label', { class: 'check' }, controls[f.name], f.label)
      : h('label', {}, f.label, controls[f.name], previews[f.name] || ''))),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, spec.saveLabel || 'Save'),
      editable ? h('button', { type: 'button', onclick: on?.new }, 'New') : null,
      editable ? del : null));
  if (!on) for (const el of form.elements) el.disabled = true;
  const nodes = [
    spec.help ? h('p', { class: 'help' }, spec.help) : '',
    h('div', { class: 'split' }, h('section', {}, h('h2', {}, spec.title), list, empty), form)];
  return { nodes, list, empty, idInput, controls, previews, image, heading, del };
}

/**
 * @param {object} spec entity, prefix (of new ids), title, singular, help,
 *   fields [{ name, label, type, options?: () => [[value, label]], optionsSql?: 'SELECT id, name …' (a live query), required, default }],
 *   listSql, item(row) -> { title, meta, badge }, editable (default true), saveLabel,
 *   fixed(context) -> { column: value } written with every new object (e.g. its owner)
 * @returns {{ shell(root, ctx, status), mount(root, ctx) }} shell paints the
 *   view before its data is there (the app shell: its text is on screen at
 *   once), with `status` (a node) where the list will be; mount replaces it
 *   with the working view.
 */
export function crudView(spec) {
  const { entity, fields, editable = true } = spec;
  const shell = (root, ctx, status) => root.replaceChildren(...layout(spec, null, status).nodes);
  return { shell, mount };

  function mount(root, ctx) {
    const { db, notify, selected } = ctx;
    const { nodes, list, empty, idInput, controls, previews, image, heading, del } = layout(spec, {
      save, remove, new: () => edit(null),
    });
    // A file attribute is not a column the form writes: its bytes go to the
    // device's file store (db.files.put) and the preview comes from there
    // through the service worker (db.files.url), offline too.
    const fileFields = fields.filter((f) => f.type === 'file');
    const columns = fields.filter((f) => f.type !== 'file');
    root.replaceChildren(...nodes);
    edit(selected || null);

    async function edit(id) {
      let row = null;
      if (id) [row] = await db.query(`SELECT * FROM "${entity}" WHERE id = ?`, [id]);
      idInput.value = row ? row.id : '';
      heading.textContent = row ? `Edit ${spec.singular}` : `New ${spec.singular}`;
      del.hidden = !row;
      for (const f of columns) write(f, controls[f.name], row ? row[f.name] : undefined);
      for (const f of fileFields) {
        controls[f.name].value = '';
        const el = previews[f.name];
        const ref = row?.[f.name] ? JSON.parse(row[f.name]) : null;
        el.hidden = !ref;
        // The URL names the attribute; the hash in the query makes a new file load anew.
        const url = ref ? `${db.files.url(entity, row.id, f.name)}?v=${ref.hash.slice(0, 16)}` : null;
        if (image(f)) {
          if (url) el.src = url; else el.removeAttribute('src');
        } else {
          el.href = url || '#';
          el.textContent = ref ? `${ref.name || 'attachment'} (${Math.ceil(ref.size / 1024)} KB)` : '';
        }
      }
      for (const li of list.children) li.classList.toggle('selected', li.dataset.id === idInput.value);
    }

    async function save(ev) {
      ev.preventDefault();
      const values = Object.fromEntries(columns.map((f) => [f.name, read(f, controls[f.name])]));
      const names = columns.map((f) => f.name);
      try {
        let id = idInput.value;
        if (id) {
          await db.exec(`UPDATE "${entity}" SET ${names.map((n) => `"${n}" = :${n}`).join(', ')} WHERE id = :id`,
            { ...values, id });
          notify(`${spec.singular} saved on this device`);
        } else {
          const all = { ...spec.fixed?.(ctx), ...values };
          const cols = Object.keys(all);
          id = newId(spec.prefix);
          await db.exec(`INSERT INTO "${entity}"(id, ${cols.map((n) => `"${n}"`).join(', ')}) VALUES (:id, ${cols.map((n) => `:${n}`).join(', ')})`,
            { ...all, id });
          notify(spec.createdMessage || `${spec.singular} added on this device`);
        }
        for (const f of fileFields) {
          const file = controls[f.name].files?.[0];
          if (file) await db.files.put(entity, id, f.name, file, { type: file.type, name: file.name });
        }
        await edit(null);
      } catch (e) {
        notify(`not saved: ${describe(e)}`, 'error');
      }
    }

    async function remove() {
      if (!idInput.value) return;
      try {
        await db.exec(`DELETE FROM "${entity}" WHERE id = ?`, [idInput.value]);
        notify(`${spec.singular} deleted`);
        await edit(null);
      } catch (e) {
        notify(`not deleted: ${describe(e)}`, 'error');
      }
    }

    // The list and the choices of a select are live queries: they follow
    // every commit that changes what they read (a save here, another tab's,
    // a pulled page) without being asked.
    const showList = (rows) => {
      list.replaceChildren(...rows.map((row) => {
        const it = spec.item(row);
        return h('li', { 'data-id': row.id, class: row.id === idInput.value ? 'selected' : '', onclick: editable ? () => edit(row.id) : null },
          h('div', { class: 'item-main' }, h('span', { class: 'item-title' }, it.title), it.meta ? h('span', { class: 'meta' }, it.meta) : ''),
          it.badge ? h('span', { class: `badge ${it.badgeClass || ''}` }, it.badge) : '');
      }));
      empty.hidden = rows.length > 0;
    };
    const live = (sql, show) => db.watch(sql, [], (rows, error) => {
      if (error) notify(`cannot list ${spec.title.toLowerCase()}: ${describe(error)}`, 'error');
      else show(rows);
    });
    const stops = [
      live(spec.listSql, showList),
      ...fields.filter((f) => f.optionsSql).map((f) => live(f.optionsSql, (rows) => {
        setOptions(controls[f.name], rows.map((r) => [r.id, r.name]), f.required ? null : '—');
      })),
    ];
    for (const f of fields) if (f.options) setOptions(controls[f.name], f.options(), f.required ? null : '—');

    return { unmount: () => { for (const stop of stops) stop(); } };
  }
}
