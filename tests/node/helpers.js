// Shared helpers for the Node suites.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh temporary folder, removed when the process exits. */
export function tempDir(tag) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ferry-${tag}-`));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs fn and returns the FerryError it rejects with (fails if it resolves). */
export async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** A DOMException-like error carrying a name, as browsers throw. */
export function namedError(name, message = name) {
  const e = new Error(message);
  e.name = name;
  return e;
}
