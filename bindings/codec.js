// Parameters to bytes and result bytes to rows, in the format of core/codec.h.
import { FerryError } from './errors.js';

const T_NULL = 0, T_INT = 1, T_FLOAT = 2, T_TEXT = 3, T_BLOB = 4;
const enc = new TextEncoder();
const dec = new TextDecoder();
const I64_MIN = -(2n ** 63n), I64_MAX = 2n ** 63n - 1n;

class Writer {
  constructor() { this.buf = new Uint8Array(256); this.dv = new DataView(this.buf.buffer); this.len = 0; }
  need(n) {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b; this.dv = new DataView(b.buffer);
  }
  u8(v) { this.need(1); this.buf[this.len++] = v; }
  u16(v) { this.need(2); this.dv.setUint16(this.len, v, true); this.len += 2; }
  u32(v) { this.need(4); this.dv.setUint32(this.len, v, true); this.len += 4; }
  i64(v) { this.need(8); this.dv.setBigInt64(this.len, v, true); this.len += 8; }
  f64(v) { this.need(8); this.dv.setFloat64(this.len, v, true); this.len += 8; }
  bytes(u8) { this.need(u8.length); this.buf.set(u8, this.len); this.len += u8.length; }
}

function describe(v) {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'object') return v.constructor?.name || 'object';
  return typeof v;
}

function writeValue(w, v, where) {
  switch (typeof v) {
    case 'number':
      if (Number.isSafeInteger(v)) { w.u8(T_INT); w.i64(BigInt(v)); }
      else { w.u8(T_FLOAT); w.f64(v); }
      return;
    case 'bigint':
      if (v < I64_MIN || v > I64_MAX) throw new FerryError('range', `${where}: ${v} does not fit in a 64-bit integer`);
      w.u8(T_INT); w.i64(v);
      return;
    case 'boolean':
      w.u8(T_INT); w.i64(v ? 1n : 0n);
      return;
    case 'string': {
      const b = enc.encode(v);
      w.u8(T_TEXT); w.u32(b.length); w.bytes(b);
      return;
    }
    case 'object':
      if (v === null) { w.u8(T_NULL); return; }
      if (v instanceof Uint8Array) { w.u8(T_BLOB); w.u32(v.length); w.bytes(v); return; }
      if (v instanceof ArrayBuffer) { const b = new Uint8Array(v); w.u8(T_BLOB); w.u32(b.length); w.bytes(b); return; }
  }
  throw new FerryError('type', `${where}: cannot store a value of type ${describe(v)}; use null, boolean, number, bigint, string or Uint8Array`);
}

/** Encodes positional (array) or named (plain object) parameters; null for none. */
export function encodeParams(params) {
  if (params === undefined || params === null) return null;
  const w = new Writer();
  if (Array.isArray(params)) {
    w.u32(params.length);
    params.forEach((v, i) => { w.u16(0); writeValue(w, v, `parameter ${i + 1}`); });
  } else if (typeof params === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(params))) {
    const keys = Object.keys(params);
    w.u32(keys.length);
    for (const k of keys) {
      const name = enc.encode(k);
      if (name.length === 0 || name.length > 250) throw new FerryError('range', `parameter name '${k}' must be 1 to 250 bytes`);
      w.u16(name.length); w.bytes(name);
      writeValue(w, params[k], `parameter '${k}'`);
    }
  } else {
    throw new FerryError('type', `parameters must be an array (positional) or a plain object (named), not ${describe(params)}`);
  }
  return w.buf.subarray(0, w.len);
}

/** Decodes a result into { columns, rows } with rows as plain objects. */
export function decodeRows(u8) {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  let at = 0;
  const ncol = dv.getUint32(at, true); at += 4;
  const columns = new Array(ncol);
  for (let i = 0; i < ncol; i++) {
    const n = dv.getUint32(at, true); at += 4;
    columns[i] = dec.decode(u8.subarray(at, at + n)); at += n;
  }
  const rows = [];
  while (u8[at++] === 1) {
    const row = {};
    for (let i = 0; i < ncol; i++) {
      const t = u8[at++];
      let v;
      switch (t) {
        case T_INT: {
          const big = dv.getBigInt64(at, true); at += 8;
          v = big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
          break;
        }
        case T_FLOAT: v = dv.getFloat64(at, true); at += 8; break;
        case T_TEXT: { const n = dv.getUint32(at, true); at += 4; v = dec.decode(u8.subarray(at, at + n)); at += n; break; }
        case T_BLOB: { const n = dv.getUint32(at, true); at += 4; v = u8.slice(at, at + n); at += n; break; }
        default: v = null;
      }
      row[columns[i]] = v;
    }
    rows.push(row);
  }
  return { columns, rows };
}
