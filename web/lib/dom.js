// Tiny DOM helpers for the demo (no framework).

/** h('button', { class: 'x', onclick }, 'text', child…) -> element. `value`/`checked` are set as properties. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  const late = {};
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'selected') late[k] = v;
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  Object.assign(el, late);
  return el;
}

/** Replaces the options of a <select>, keeping its value when still offered. */
export function setOptions(select, options, placeholder) {
  const value = select.value;
  select.replaceChildren(
    ...(placeholder ? [h('option', { value: '' }, placeholder)] : []),
    ...options.map(([v, label]) => h('option', { value: v }, label)),
  );
  if ([...select.options].some((o) => o.value === value)) select.value = value;
}

export function timeAgo(date, now = Date.now()) {
  if (!date) return 'never';
  const s = Math.round((now - date.getTime()) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return date.toLocaleDateString();
}

export function bytes(n) {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

/** A new object id (the client chooses ids; see docs/PROTOCOL.md). */
export const newId = (prefix) => `${prefix}-${crypto.randomUUID()}`;

/** A readable message for a FerryError or any error. */
export function describe(e) {
  return e?.code ? `${e.code}: ${e.message}` : String(e?.message || e);
}

/** Runs fn at most once per animation frame however often it is asked for. */
export function coalesce(fn) {
  let queued = null;
  return () => {
    if (!queued) queued = new Promise((r) => requestAnimationFrame(r)).then(() => { queued = null; return fn(); });
    return queued;
  };
}
