// Drives the C sync engine (core/sync.h) over fetch. The engine says which
// request to make; this module makes it and feeds the reply back. Each step
// runs in the database's call queue, so local queries wait at most one page.
import { FerryError } from './errors.js';

export const MAX_REPLY_BYTES = 32 * 1024 * 1024;

async function readCapped(res, max) {
  const declared = Number(res.headers.get('content-length'));
  if (declared > max) {
    await res.body?.cancel().catch(() => {});
    return null;
  }
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

const enc = new TextEncoder();

/**
 * One HTTP exchange for the engine. Never throws for transport problems:
 * they come back as status 0 with a message, which the engine turns into
 * sync_network. A reply over the size cap throws FerryError sync_too_big.
 */
export async function exchange(opts, req) {
  let headers;
  try {
    headers = { accept: 'application/json', ...(opts.headers ? await opts.headers() : {}) };
  } catch (e) {
    throw new FerryError('sync_auth', `the headers() option failed: ${e?.message || e}`, { cause: e });
  }
  if (req.body) headers['content-type'] = 'application/json';
  const url = opts.server.replace(/\/+$/, '') + req.path;
  let res;
  // Every ferry request may be repeated (pushes carry mutation ids), so a
  // connection that fails before any reply (a pooled socket the server closed
  // on restart, a blip) is tried again a couple of times before giving up.
  for (let attempt = 0; ; attempt++) {
    try {
      res = await opts.fetch(url, {
        method: req.method,
        headers,
        body: req.body || undefined,
        signal: AbortSignal.timeout(opts.syncTimeout ?? 60_000),
        cache: 'no-store',
      });
      break;
    } catch (e) {
      if (attempt >= (opts.syncRetries ?? 2) || e?.name === 'TimeoutError') {
        return { status: 0, body: enc.encode(`${url}: ${e?.cause?.code || e?.cause?.message || e?.message || e}`) };
      }
      await new Promise((r) => setTimeout(r, 50 * 4 ** attempt));
    }
  }
  let body;
  try {
    body = await readCapped(res, opts.maxReplyBytes ?? MAX_REPLY_BYTES);
  } catch (e) {
    return { status: 0, body: enc.encode(`${url}: the reply was cut off (${e?.message || e})`) };
  }
  if (body === null) {
    throw new FerryError('sync_too_big', `the reply of ${url} exceeds ${opts.maxReplyBytes ?? MAX_REPLY_BYTES} bytes; changes stay pending`);
  }
  return { status: res.status, body };
}

function checkFilter(filter) {
  if (filter === undefined || filter === null) return null;
  if (typeof filter !== 'object' || Array.isArray(filter)) {
    throw new FerryError('type', 'sync() takes { entities: [names], objects: [{ entity, id }] } or nothing');
  }
  const { entities, objects } = filter;
  if (entities !== undefined && (!Array.isArray(entities) || entities.some((e) => typeof e !== 'string'))) {
    throw new FerryError('type', 'sync({ entities }) takes an array of entity names');
  }
  if (objects !== undefined && (!Array.isArray(objects)
      || objects.some((o) => !o || typeof o.entity !== 'string' || typeof o.id !== 'string'))) {
    throw new FerryError('type', 'sync({ objects }) takes an array of { entity, id } with strings');
  }
  if (entities === undefined && objects === undefined) return null;
  return { entities: entities || [], objects: objects || [] };
}

/** Resolves after the event loop has turned once (a macrotask, not clamped like setTimeout). */
function yieldToEvents() {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => { ch.port1.close(); resolve(); };
    ch.port2.postMessage(0);
  });
}

/**
 * Runs sync rounds for one database. `db` gives: step(fn, write = true) to
 * run fn on the CoreSync in the call queue and, when write, wait until its
 * commits are durable; emit().
 */
export class SyncRunner {
  constructor(db, opts) {
    this.db = db;
    this.opts = opts;
    this.running = null;
    this.fullSyncs = 0;
  }

  /**
   * Overlapping calls share the run in progress. Every `verifyEvery`th full
   * sync (default 10, 0 never) also verifies; verify: true always does, in a
   * run of its own.
   */
  sync(filter, { verify = false } = {}) {
    if (this.running) {
      if (!verify) return this.running;
      return this.running.catch(() => {}).then(() => this.sync(filter, { verify }));
    }
    let checked;
    try { checked = checkFilter(filter); } catch (e) { return Promise.reject(e); }
    const every = this.opts.verifyEvery ?? 10;
    if (!checked && !verify && every > 0 && ++this.fullSyncs % every === 0) verify = true;
    const engineFilter = verify ? { ...(checked || {}), verify: true } : checked;
    this.running = this.#run(engineFilter).finally(() => { this.running = null; });
    return this.running;
  }

  async #run(filter) {
    const t0 = Date.now();
    const { db } = this;
    try {
      await db.step((e) => e.begin(filter));
      for (;;) {
        // next() may commit (the push numbers the outbox with mutation ids,
        // the end of a run records its time): a request leaves only once
        // that is durable, or a crash could give the same ids to other
        // changes. Costs nothing when next() wrote nothing.
        const req = await db.step((e) => e.next());
        if (!req) break;
        let reply;
        try {
          reply = await exchange(this.opts, req);
        } catch (e) {
          await db.step((eng) => { try { eng.feed(0, enc.encode(e.message)); } catch { /* the run ends either way */ } }, false);
          throw e;
        }
        await db.step((e) => e.feed(reply.status, reply.body));
        // A pull page goes in slices, each a call of its own in the queue,
        // so the app's queries and writes wait for one slice, not a page;
        // between slices the event loop turns, so what events ask for gets
        // in line before the next slice.
        while (await db.step((e) => e.applyMore())) await yieldToEvents();
      }
      const report = await db.step((e) => e.report(), false);
      const result = {
        pushed: report.pushed,
        pulled: report.pulled,
        removed: report.removed,
        conflicts: report.conflicts,
        errors: report.rejected + report.conflicts,
        ms: Date.now() - t0,
      };
      if (report.verified) result.verified = report.verified;
      if (report.changed) db.emit('change', { sync: true });
      if (result.errors) db.emit('syncerror', { conflicts: report.conflicts, rejected: report.rejected });
      db.emit('sync', result);
      return result;
    } catch (error) {
      db.emit('syncerror', { error });
      throw error;
    }
  }
}
