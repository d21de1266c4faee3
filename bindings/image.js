// A database as one plain SQLite file: the bytes db.export() gives and
// open({ from }) takes. Both go a chunk at a time, so neither needs the
// database twice in memory.
import { FerryError } from './errors.js';
import { isNode } from './env.js';

const CHUNK = 1 << 20;          // bytes per read from the core (and per Blob slice read)
const FOLD = 16 * CHUNK;        // bytes of parts gathered before they are folded into the Blob

const isBlob = (v) => typeof globalThis.Blob === 'function' && v instanceof globalThis.Blob;

/**
 * The last commit as a SQLite file: a Uint8Array in Node (filled in place,
 * chunk by chunk), a Blob in browsers. The Blob grows by folding a few
 * chunks at a time into it, so the parts never add up to a second copy;
 * browsers keep large Blobs on disk.
 */
export function exportImage(core, handle) {
  if (isNode || typeof globalThis.Blob !== 'function') {
    let out = null;
    core.exportChunks(handle, CHUNK, (view, off, size) => {
      out ??= new Uint8Array(size);
      out.set(view, off);
    });
    return out || new Uint8Array(0);
  }
  const type = 'application/vnd.sqlite3';
  let blob = new Blob([], { type }), parts = [], held = 0;
  core.exportChunks(handle, CHUNK, (view) => {
    parts.push(view.slice());
    held += view.length;
    if (held >= FOLD) { blob = new Blob([blob, ...parts], { type }); parts = []; held = 0; }
  });
  return parts.length ? new Blob([blob, ...parts], { type }) : blob;
}

/** Refuses a `from` that is not bytes, before anything is opened. */
export function checkFrom(from) {
  if (from === undefined || from === null) return;
  if (from instanceof Uint8Array || from instanceof ArrayBuffer || ArrayBuffer.isView(from) || isBlob(from)) return;
  throw new FerryError('type', 'open({ from }) takes the bytes of a SQLite database file: a Uint8Array, an ArrayBuffer or a Blob (db.export() gives one)');
}

function readOnly() {
  throw new FerryError('misuse', 'the database given as from is only read');
}

function bytesFile(u8) {
  return {
    read(buf, off) {
      const part = u8.subarray(Math.min(off, u8.length), Math.min(off + buf.length, u8.length));
      buf.set(part);
      return part.length;
    },
    size: () => u8.length,
    write: readOnly, truncate: readOnly, sync() {}, close() {},
  };
}

/** A Blob read synchronously (FileReaderSync, in workers), a CHUNK-sized window at a time. */
function blobFile(blob) {
  const reader = new FileReaderSync();
  let at = -1, win = null;
  return {
    read(buf, off) {
      let done = 0;
      while (done < buf.length && off + done < blob.size) {
        const pos = off + done;
        if (!win || pos < at || pos >= at + win.length) {
          at = pos - (pos % CHUNK);
          win = new Uint8Array(reader.readAsArrayBuffer(blob.slice(at, at + CHUNK)));
        }
        const part = win.subarray(pos - at, Math.min(win.length, pos - at + buf.length - done));
        buf.set(part, done);
        done += part.length;
      }
      return done;
    },
    size: () => blob.size,
    write: readOnly, truncate: readOnly, sync() {}, close() { win = null; },
  };
}

/**
 * The core's read-only file over `from` (null without one). A Blob is read
 * in place where it can be read synchronously (a worker), else read whole
 * first (a window, Node).
 */
export async function fromFile(from) {
  if (from === undefined || from === null) return null;
  checkFrom(from);
  if (from instanceof Uint8Array) return bytesFile(from);
  if (from instanceof ArrayBuffer) return bytesFile(new Uint8Array(from));
  if (ArrayBuffer.isView(from)) return bytesFile(new Uint8Array(from.buffer, from.byteOffset, from.byteLength));
  if (typeof globalThis.FileReaderSync === 'function') return blobFile(from);
  return bytesFile(new Uint8Array(await from.arrayBuffer()));
}
