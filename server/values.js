// The server's value rules: a pushed JSON value checked against its
// attribute's type and turned into what is stored, a stored value back into
// the protocol's JSON, and ids. File references are checked by the core
// (core/sync/values.c) through the same wasm as the clients'.
import { FerryError } from '../bindings/errors.js';
import { loadCore } from '../bindings/core.js';

const core = await loadCore();

const TEXT_TYPES = new Set(['string', 'decimal', 'datetime', 'binary', 'file', 'association']);
export const MAX_ID_BYTES = 128;
const utf8 = new TextEncoder();

/** A value problem: the mutation is rejected with this reason. */
export class Rejection extends Error {}

const DECIMAL = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function kindOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

function normalizeDecimal(s) {
  let sign = '';
  if (s[0] === '-' || s[0] === '+') { if (s[0] === '-') sign = '-'; s = s.slice(1); }
  let [int, frac = ''] = s.split('.');
  int = int.replace(/^0+(?=\d)/, '') || '0';
  const out = frac ? `${int}.${frac}` : int;
  return /^0(?:\.0*)?$/.test(out) ? out : sign + out;
}

/**
 * Checks a JSON value against an attribute type and returns the value to
 * store (booleans as 0/1, decimals and datetimes normalized). Throws Rejection.
 */
export function toStored(type, v, name) {
  if (v === null) return null;
  const bad = (expected) => new Rejection(`attribute ${name}: expected ${expected}, got ${kindOf(v)}`);
  switch (type) {
    case 'string':
      if (typeof v !== 'string') throw bad('a string');
      // Devices refuse U+0000 in text when it is written (it cannot travel
      // through their JSON exactly), so the server does too.
      if (v.includes('\u0000')) throw new Rejection(`attribute ${name}: a string cannot hold the character U+0000`);
      return v;
    case 'integer':
      if (!Number.isSafeInteger(v)) throw bad('an integer (a JSON number within ±2^53)');
      return v;
    case 'decimal':
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) throw bad('a decimal');
        const s = String(v);
        if (!DECIMAL.test(s)) throw bad('a decimal (as a string like "12.50"; this number is out of range)');
        return normalizeDecimal(s);
      }
      if (typeof v !== 'string' || !DECIMAL.test(v) || v.length > 100) throw bad('a decimal (a string like "12.50")');
      return normalizeDecimal(v);
    case 'boolean':
      if (v === true || v === 1) return 1;
      if (v === false || v === 0) return 0;
      throw bad('a boolean (true or false)');
    case 'datetime': {
      if (typeof v !== 'string' || !ISO.test(v)) throw bad('a datetime (ISO 8601 UTC, like "2026-11-24T10:00:00.000Z")');
      const t = Date.parse(v);
      if (Number.isNaN(t)) throw bad('a valid datetime');
      return new Date(t).toISOString();
    }
    case 'binary':
      if (typeof v !== 'string' || !BASE64.test(v)) throw bad('binary data as a base64 string');
      return v;
    case 'file':
      if (typeof v !== 'object' || Array.isArray(v)) throw bad('a file reference {hash, size, type, name}');
      try {
        return core.fileRef(v);
      } catch (e) {
        if (e instanceof FerryError) throw new Rejection(`attribute ${name}: expected a file reference: ${e.message}`);
        throw e;
      }
    case 'association':
      if (!validId(v)) throw bad("the target object's id (a string of 1-128 bytes) or null");
      return v;
  }
  throw new Error(`unknown type ${type}`);
}

/**
 * A value written under another model, converted to `type` where nothing is
 * lost (42 -> "42", "42" -> 42, 12.5 -> "12.5", 1 -> true); else unchanged,
 * so toStored() says what is wrong with it.
 */
export function convertLossless(type, v) {
  if (v === null) return v;
  switch (type) {
    case 'string':
      return typeof v === 'number' || typeof v === 'boolean' ? String(v) : v;
    case 'integer':
      if (typeof v === 'string' && /^-?(?:0|[1-9]\d{0,15})$/.test(v) && Number.isSafeInteger(Number(v))) return Number(v);
      if (typeof v === 'boolean') return v ? 1 : 0;
      return v;
    case 'decimal':
      return typeof v === 'number' && Number.isFinite(v) ? String(v) : v;
    case 'boolean':
      if (v === 'true' || v === '1') return true;
      if (v === 'false' || v === '0') return false;
      return v;
    default:
      return v;
  }
}

/** A stored value as the protocol's JSON value. */
export function toJson(type, v) {
  if (v === null || v === undefined) return null;
  if (type === 'boolean') return v !== 0 && v !== '0';
  if (typeof v === 'bigint') return type === 'integer' ? Number(v) : String(v);
  if (type === 'file') {
    try { return JSON.parse(v); } catch { return null; }
  }
  if (TEXT_TYPES.has(type) && typeof v !== 'string') return String(v);
  return v;
}

/** Whether id is a string of 1-128 UTF-8 bytes (a UTF-16 unit is at most 3 bytes, so short ids skip encoding). */
export function validId(id) {
  return typeof id === 'string' && id.length > 0 && !id.includes('\u0000')
    && (id.length * 3 <= MAX_ID_BYTES || utf8.encode(id).length <= MAX_ID_BYTES);
}

// ---- per-entity SQL -----------------------------------------------------------
