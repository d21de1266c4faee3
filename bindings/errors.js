// FerryError and the stable error codes, from the one C list (core/ferry_errors.h).
import { codes as table } from './dist/codes.js';

/** Stable string codes by name, e.g. codes.BUSY === 'busy'. */
export const codes = Object.freeze(Object.fromEntries(
  table.map(({ code }) => [code.toUpperCase(), code])));

const byRc = table.map(({ code }) => code);
const hints = Object.fromEntries(table.map(({ code, hint }) => [code, hint]));
const rcOf = Object.fromEntries(table.map(({ rc, code }) => [code, rc]));

export class FerryError extends Error {
  /** @param {string} code stable code (see `codes`) @param {string} message */
  constructor(code, message, options) {
    super(message || hints[code] || code, options);
    this.name = 'FerryError';
    this.code = code;
  }
}

/** The string code of a C return code. */
export function codeOfRc(rc) { return byRc[rc] || 'error'; }
/** The C return code of a string code (for JS host functions returning into wasm). */
export function rcOfCode(code) { return rcOf[code] ?? rcOf.io; }
export function hintOf(code) { return hints[code] || ''; }

/** Classifies an exception thrown by a storage API as a ferry code. */
export function storageCode(e) {
  if (e instanceof FerryError) return e.code;
  const name = e && (e.name || '');
  const errno = e && e.code;
  if (name === 'QuotaExceededError' || errno === 'ENOSPC' || errno === 'EDQUOT') return 'storage_full';
  if (name === 'NoModificationAllowedError' || errno === 'EBUSY') return 'busy';
  if (name === 'NotFoundError' || errno === 'ENOENT') return 'not_found';
  return 'io';
}
