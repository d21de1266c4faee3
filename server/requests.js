// What a request to the sync server is: the shape checks of push, pull and
// verify bodies (per-mutation problems are the store's: 'rejected'
// results), the identity a client id is bound to, and the error that
// becomes an HTTP reply.
import { MAX_ID_BYTES, validId } from './values.js';

export const MAX_IDS = 10000;
const utf8 = new TextEncoder();

/** An error that becomes an HTTP reply { error: code, message }. */
export class HttpError extends Error {
  constructor(status, code, message, extra) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

/** The identity a client id (and a held file, an upload) is bound to: the user's id, else the whole user object. */
export function userKeyOf(user) {
  if (user && typeof user === 'object' && (typeof user.id === 'string' || typeof user.id === 'number')) return `id:${user.id}`;
  return `user:${JSON.stringify(user ?? null)}`;
}

const bad = (message) => new HttpError(400, 'bad_request', message);

/** Throws 400 unless `id` is a client id: a string of 1-128 UTF-8 bytes. */
function checkClientId(id) {
  if (typeof id !== 'string' || id.length === 0 || utf8.encode(id).length > 128) throw bad('clientId must be a string of 1-128 bytes');
}

/** Checks a verify body: { modelVersion, entities: [{ entity, exclude, after?, limit? }] }. */
export function checkVerify(body, model) {
  if (typeof body !== 'object' || body === null || !Array.isArray(body.entities) || body.entities.length > 1000) {
    throw bad('a verify body is { clientId, modelVersion, entities: [{ entity, exclude }] } with at most 1000 entities');
  }
  if (body.modelVersion !== model.version) {
    throw new HttpError(409, 'model_changed', `the model is now version ${model.version}`, { modelVersion: model.version });
  }
  for (const e of body.entities) {
    if (typeof e !== 'object' || e === null || typeof e.entity !== 'string' || !Object.hasOwn(model.entities, e.entity)) throw bad('each entity is { entity: a model entity, exclude: [ids] }');
    if (e.exclude !== undefined && (!Array.isArray(e.exclude) || e.exclude.length > MAX_IDS || !e.exclude.every(validId))) throw bad(`exclude is an array of at most ${MAX_IDS} ids`);
    if (e.after !== undefined && typeof e.after !== 'string') throw bad('after is an id (a string)');
    if (e.limit !== undefined && !(Number.isSafeInteger(e.limit) && e.limit > 0)) throw bad('limit is a positive integer');
  }
  return body;
}

/** Checks a push body's envelope; per-mutation problems become 'rejected' results instead. */
export function checkPush(body) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('a push body is a JSON object { clientId, modelVersion, ackedMid, mutations }');
  checkClientId(body.clientId);
  if (body.ackedMid !== undefined && body.ackedMid !== null && !(Number.isSafeInteger(body.ackedMid) && body.ackedMid >= 0)) {
    throw bad('ackedMid must be a non-negative integer');
  }
  if (!Array.isArray(body.mutations)) throw bad('mutations must be an array');
  const mids = new Set();
  for (const [i, m] of body.mutations.entries()) {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw bad(`mutation ${i} is not an object`);
    if (!Number.isSafeInteger(m.mid) || m.mid <= 0) throw bad(`mutation ${i}: mid must be a positive integer`);
    if (mids.has(m.mid)) throw bad(`mutation ${i}: mid ${m.mid} appears twice in this push`);
    mids.add(m.mid);
  }
  return body;
}

/** Checks a pull body; returns it with cursor defaulted. */
export function checkPull(body, model) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('a pull body is a JSON object { clientId, modelVersion, entity, cursor, limit } or { …, ids }');
  if (body.modelVersion !== model.version) {
    throw new HttpError(409, 'model_changed', `the model is now version ${model.version} (the request has ${JSON.stringify(body.modelVersion ?? null)}); push, fetch the model, migrate, then pull`,
      { modelVersion: model.version });
  }
  if (typeof body.entity !== 'string' || !Object.hasOwn(model.entities, body.entity)) {
    throw bad(`unknown entity ${JSON.stringify(body.entity)}; the model has ${Object.keys(model.entities).join(', ')}`);
  }
  const out = { entity: body.entity };
  if (body.clientId !== undefined) {
    checkClientId(body.clientId);
    out.clientId = body.clientId;
  }
  if (body.ids !== undefined) {
    if (!Array.isArray(body.ids) || body.ids.length > MAX_IDS || !body.ids.every(validId)) {
      throw bad(`ids must be an array of at most ${MAX_IDS} ids (strings of 1-${MAX_ID_BYTES} bytes)`);
    }
    out.ids = body.ids;
    return out;
  }
  const cursor = body.cursor ?? 0;
  if (!Number.isSafeInteger(cursor) || cursor < 0) throw bad('cursor must be a non-negative integer');
  out.cursor = cursor;
  if (body.maxBytes !== undefined && body.maxBytes !== null) {
    if (!Number.isSafeInteger(body.maxBytes) || body.maxBytes < 1) throw bad('maxBytes must be a positive integer');
    out.maxBytes = body.maxBytes;
  }
  if (body.limit !== undefined && body.limit !== null) {
    if (!Number.isSafeInteger(body.limit) || body.limit < 1) throw bad('limit must be a positive integer');
    out.limit = body.limit;
  }
  return out;
}
