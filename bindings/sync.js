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
export async function exchange(opts, req, signal) {
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
        signal: signal && AbortSignal.any
          ? AbortSignal.any([signal, AbortSignal.timeout(opts.syncTimeout ?? 60_000)])
          : AbortSignal.timeout(opts.syncTimeout ?? 60_000),
        cache: 'no-store',
      });
      break;
    } catch (e) {
      if (signal?.aborted) return { status: 0, aborted: true, body: enc.encode(`${url}: aborted`) };
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
    if (signal?.aborted) return { status: 0, aborted: true, body: enc.encode(`${url}: aborted`) };
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
    throw new FerryError('type', 'sync() takes { entities: [names], objects: [{ entity, id }], signal } or nothing');
  }
  const { entities, objects, signal } = filter;
  if (signal !== undefined && !(typeof signal === 'object' && signal !== null && typeof signal.aborted === 'boolean')) {
    throw new FerryError('type', 'sync({ signal }) takes an AbortSignal');
  }
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

function abortedError(signal) {
  const why = signal?.reason instanceof Error && signal.reason.name !== 'AbortError' ? `: ${signal.reason.message}` : '';
  return new FerryError('aborted', `the sync was aborted${why}; pending changes stay pending and the next sync goes on from the last applied page`,
    signal?.reason !== undefined ? { cause: signal.reason } : undefined);
}

/** The shared run's outcome, or 'aborted' as soon as this caller's signal fires (the run goes on for the others). */
function raceAbort(running, signal) {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    running.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
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
    const signal = filter?.signal;
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    if (this.running) {
      if (!verify) return signal ? raceAbort(this.running, signal) : this.running;
      return this.running.catch(() => {}).then(() => this.sync(filter, { verify }));
    }
    let checked;
    try { checked = checkFilter(filter); } catch (e) { return Promise.reject(e); }
    const every = this.opts.verifyEvery ?? 10;
    if (!checked && !verify && every > 0 && ++this.fullSyncs % every === 0) verify = true;
    const engineFilter = verify ? { ...(checked || {}), verify: true } : checked;
    this.running = this.#run(engineFilter, signal).finally(() => { this.running = null; });
    return this.running;
  }

  async #run(filter, signal) {
    const t0 = Date.now();
    const { db } = this;
    // Progress per entity: what the engine's report counted since the run began.
    let phase = null, entity = null, base = 0;
    const progress = async (req) => {
      const r = await db.step((e) => e.report(), false);
      if (phase) {
        const pull = phase === 'pull';
        db.emit('progress', { sync: phase, entity: pull ? entity : null, done: (pull ? r.pulled + r.removed : r.pushed) - base, total: pull ? r.total ?? null : null });
      }
      phase = null;
      if (!req) return;
      if (req.path === '/push') {
        phase = 'push';
        if (entity !== null) { entity = null; base = 0; }
      } else if (req.path === '/pull' && req.body) {
        const next = JSON.parse(new TextDecoder().decode(req.body)).entity;
        if (next !== entity) { entity = next; base = r.pulled + r.removed; }
        phase = 'pull';
      }
    };
    // A safe point: between requests, where every page so far is applied and durable.
    const stopIfAborted = async () => {
      if (!signal?.aborted) return;
      await db.step((eng) => { try { eng.feed(0, enc.encode('aborted')); } catch { /* ends the run */ } }, false);
      throw abortedError(signal);
    };
    try {
      await db.step((e) => e.begin(filter));
      for (;;) {
        await stopIfAborted();
        // next() may commit (the push numbers the outbox with mutation ids,
        // the end of a run records its time): a request leaves only once
        // that is durable, or a crash could give the same ids to other
        // changes. Costs nothing when next() wrote nothing.
        const req = await db.step((e) => e.next());
        await progress(req);
        if (!req) break;
        let reply;
        try {
          reply = await exchange(this.opts, req, signal);
        } catch (e) {
          await db.step((eng) => { try { eng.feed(0, enc.encode(e.message)); } catch { /* the run ends either way */ } }, false);
          throw e;
        }
        // Aborted in flight: the reply (if any) is not applied; what the
        // server did with a push comes back with the next run (mutation ids).
        if (reply.aborted) await stopIfAborted();
        await db.step((e) => e.feed(reply.status, reply.body));
        // A pull page goes in slices, each a call of its own in the queue,
        // so the app's queries and writes wait for one slice, not a page;
        // between slices the event loop turns, so what events ask for gets
        // in line before the next slice. Only the last step waits for
        // storage: until it moves the cursor a page cut off is pulled again,
        // and its flush carries the slices before it.
        while (await db.step((e) => e.applyMore(), (more) => !more)) {
          await yieldToEvents();
          await stopIfAborted();   // between slices is a safe point too: each is committed, the cursor moves with the last
        }
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
      // Stopping on request is not a failure the app has to show.
      if (error?.code !== 'aborted') db.emit('syncerror', { error });
      throw error;
    }
  }
}
