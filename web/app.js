// The demo: visits kept in ferry's on-device SQLite (window.db for consoles and tests).
import { open } from '/bindings/index.js';

const state = document.querySelector('#state');
const list = document.querySelector('#visits');
const form = document.querySelector('#add');

async function render(db) {
  const rows = await db.query('SELECT id, note, status FROM Visit ORDER BY rowid DESC LIMIT 200');
  list.replaceChildren(...rows.map((r) => {
    const li = document.createElement('li');
    const note = document.createElement('span');
    note.textContent = r.note;
    const status = document.createElement('span');
    status.className = 'status';
    status.textContent = r.status;
    li.append(note, status);
    return li;
  }));
  state.textContent = `${rows.length} visits · stored in ${db.status().storage}`;
}

try {
  const db = await open({ name: 'demo', storage: 'auto' });
  window.db = db;
  await db.exec('CREATE TABLE IF NOT EXISTS Visit(id TEXT PRIMARY KEY, note TEXT, status TEXT)');
  db.on('change', () => render(db));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    await db.exec('INSERT INTO Visit(id, note, status) VALUES (?, ?, ?)',
      [crypto.randomUUID(), data.get('note'), data.get('status')]);
    form.reset();
  });
  await render(db);
} catch (e) {
  state.textContent = `cannot open the database: ${e.code || ''} ${e.message}`;
  throw e;
}
