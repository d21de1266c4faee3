// Shared helpers for the Node suites.
import { spawn } from 'node:child_process';
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

/**
 * Starts a writer process (`node ...args`) that prints 'ready' and then each
 * number it has committed, SIGKILLs it `delayMs` after 'ready', and resolves
 * to the last number it printed (rejects if it exits on its own).
 */
export function runAndKill(args, delayMs) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '', last = 0, timer = null;
    p.stdout.on('data', (d) => {
      out += d;
      const lines = out.split('\n');
      out = lines.pop();
      for (const l of lines) {
        if (l === 'ready') timer = setTimeout(() => p.kill('SIGKILL'), delayMs);
        else if (/^\d+$/.test(l)) last = Number(l);
      }
    });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`writer exited early (${code}): ${err}`));
      else resolve(last);
    });
  });
}
