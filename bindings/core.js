// Loads the wasm core once per JS realm and wraps its entry points.
import createFerryCore from './dist/ferry-core.mjs';
import { Host } from './host.js';
import { FerryError, codeOfRc, hintOf } from './errors.js';
import { isNode, nodeImport } from './env.js';

// Codes whose message also says what the user can do about it.
const ADVISED = new Set(['storage_full', 'io', 'corrupt', 'busy', 'storage_lost']);

let wasmUrl = new URL('./dist/ferry-core.wasm', import.meta.url);
let corePromise = null;

/** Where this realm loads the wasm from (a URL's text). */
export const wasmHref = () => wasmUrl.href;

/**
 * Loads the wasm from `href` instead (before the first loadCore()): the
 * database worker takes its page's, which the app's bundler placed.
 */
export function useWasmUrl(href) {
  if (!corePromise) wasmUrl = new URL(href);
}

async function compileWasm() {
  if (isNode && wasmUrl.protocol === 'file:') {
    const { readFile } = await nodeImport('node:fs/promises');
    return WebAssembly.compile(await readFile(wasmUrl));
  }
  const res = await fetch(wasmUrl, { credentials: 'same-origin' });
  if (!res.ok) throw new FerryError('not_found', `cannot load ${wasmUrl}: HTTP ${res.status}`);
  return WebAssembly.compileStreaming
    ? WebAssembly.compileStreaming(res)
    : WebAssembly.compile(await res.arrayBuffer());
}

/** The shared core of this realm (compiled and instantiated on first use). */
export function loadCore() {
  if (!corePromise) {
    corePromise = (async () => {
      const module = await compileWasm();
      const host = new Host();
      const M = await createFerryCore({
        ferryHost: host,
        print: (s) => console.log(s),
        printErr: (s) => console.warn(s),
        instantiateWasm(imports, receive) {
          WebAssembly.instantiate(module, imports).then((inst) => receive(inst));
          return {};
        },
      });
      host.attach(M);
      return new Core(M, host);
    })();
    corePromise.catch(() => { corePromise = null; });
  }
  return corePromise;
}

// Bytes copied into wasm per ferry_sha256_update call.
const HASH_SLICE = 1 << 20;
// Frees the wasm handle of a hasher its caller dropped without digest() or close().
const hashHandles = typeof FinalizationRegistry === 'function'
  ? new FinalizationRegistry(({ M, h }) => M._ferry_sha256_close(h)) : null;

const enc = new TextEncoder();
const dec = new TextDecoder();

export class Core {
  constructor(M, host) {
    this.M = M;
    this.host = host;
  }
  get heap() { return this.M.HEAPU8; }

  /** Copies a JS string into wasm memory as NUL-terminated UTF-8; caller frees. */
  cstring(s) {
    const bytes = enc.encode(s);
    const p = this.M._malloc(bytes.length + 1);
    if (!p) throw new FerryError('nomem', 'out of wasm memory');
    this.heap.set(bytes, p);
    this.heap[p + bytes.length] = 0;
    return p;
  }
  /** Copies bytes into wasm memory; caller frees. */
  bytes(u8) {
    const p = this.M._malloc(u8.length || 1);
    if (!p) throw new FerryError('nomem', 'out of wasm memory');
    this.heap.set(u8, p);
    return p;
  }
  readCString(p) {
    const h = this.heap;
    let e = p;
    while (h[e]) e++;
    return dec.decode(h.subarray(p, e));
  }

  /** Builds the FerryError for return code rc on db handle (0 if none). */
  error(rc, db, context) {
    const code = codeOfRc(rc);
    const kept = this.host.takeError();
    let msg = db ? this.readCString(this.M._ferry_errmsg(db)) : '';
    if (kept && kept.message && !msg.includes(kept.message)) msg = msg ? `${msg}: ${kept.message}` : kept.message;
    if (!msg) msg = code;
    if (ADVISED.has(code)) msg = `${msg}. ${hintOf(code)}`;
    const err = new FerryError(code, context ? `${context}: ${msg}` : msg, kept ? { cause: kept } : undefined);
    return err;
  }

  /**
   * Opens a database through one of the glue's open functions ->
   * { handle, created, imported }: created when the store held no database,
   * imported when it was then started from `from`'s bytes. move: `from` is
   * this device's database moved from another store (its client id is kept).
   */
  open(name, opener, move = false) {
    const namePtr = this.cstring(name);
    const outPtr = this.M._malloc(8);
    try {
      this.M.HEAPU32[(outPtr + 4) >> 2] = move ? 4 : 0;   // FERRY_OPEN_MOVE
      const rc = opener(namePtr, outPtr, outPtr + 4);
      const db = this.M.HEAPU32[outPtr >> 2];
      if (rc !== 0) {
        const err = this.error(rc, db, `cannot open '${name}'`);
        if (db) this.M._ferry_db_close(db);
        throw err;
      }
      const flags = this.M.HEAPU32[(outPtr + 4) >> 2];
      return { handle: db, created: (flags & 1) !== 0, imported: (flags & 2) !== 0 };
    } finally {
      this.M._free(namePtr);
      this.M._free(outPtr);
    }
  }
  /** from: a file of the database to start from ({ read, size }; see image.js), or null. */
  #fromId(from) { return from ? this.host.addFile(from) : 0; }
  openMemory(name, from = null) {
    const fromId = this.#fromId(from);
    return this.open(name, (n, out, flags) => this.M._fg_open_memory(n, fromId, out, flags));
  }
  /** cacheSize: bytes of clean pages kept in memory (0: the core's default, 4 MiB); move: see open(). */
  openFiles(name, mainFile, logFile, checkpointBytes = 0, cacheSize = 0, from = null, move = false) {
    const mainId = this.host.addFile(mainFile);
    const logId = this.host.addFile(logFile);
    const fromId = this.#fromId(from);
    return this.open(name, (n, out, flags) => this.M._fg_open_files(n, mainId, logId, checkpointBytes, cacheSize, fromId, out, flags), move);
  }
  openJsStore(name, store, cacheSize = 0, from = null) {
    const id = this.host.addStore(store);
    const fromId = this.#fromId(from);
    return this.open(name, (n, out, flags) => this.M._fg_open_js_store(n, id, cacheSize, fromId, out, flags));
  }
  /** Folds the commit log into the database file, which is then a plain SQLite file (core ferry_db_checkpoint). */
  checkpoint(db) {
    const rc = this.M._ferry_db_checkpoint(db);
    if (rc !== 0) throw this.error(rc, db, 'checkpoint');
  }
  /**
   * Reads the last commit's bytes, a plain SQLite file, `chunk` bytes at a
   * time through one wasm buffer: each(view, offset, size) gets a view into
   * wasm memory, valid only during the call, and the total size. -> the size.
   */
  exportChunks(db, chunk, each) {
    const M = this.M;
    const size = M._fg_export_size(db);
    if (size < 0) throw new FerryError('closed', 'the database is not open');
    const p = M._malloc(Math.max(1, Math.min(chunk, size)));
    if (!p) throw new FerryError('nomem', 'out of wasm memory');
    try {
      for (let off = 0; off < size; off += chunk) {
        const n = Math.min(chunk, size - off);
        const rc = M._fg_export_read(db, off, p, n);
        if (rc !== 0) throw this.error(rc, db, 'export');
        each(M.HEAPU8.subarray(p, p + n), off, size);
      }
    } finally {
      M._free(p);
    }
    return size;
  }
  close(db) { this.M._ferry_db_close(db); }

  /**
   * The canonical JSON text of a file reference ({ hash, size, type, name },
   * as an object or JSON text); FerryError 'type' saying what is wrong.
   * The rule is the core's (core/fileref.c), for devices and the server alike.
   */
  fileRef(ref) {
    const text = typeof ref === 'string' ? ref : JSON.stringify(ref);
    if (text === undefined) throw new FerryError('type', 'a file reference is a JSON object {hash, size, type, name}');
    const bytes = enc.encode(text);
    const inPtr = this.bytes(bytes);
    const cap = 4096;
    const outPtr = this.M._malloc(cap);
    try {
      if (!outPtr) throw new FerryError('nomem', 'out of wasm memory');
      const rc = this.M._ferry_file_ref_canon(inPtr, bytes.length, outPtr, cap);
      const out = this.readCString(outPtr);
      if (rc !== 0) throw new FerryError(codeOfRc(rc), out || 'not a file reference');
      return out;
    } finally {
      this.M._free(inPtr);
      if (outPtr) this.M._free(outPtr);
    }
  }
  inTransaction(db) { return this.M._ferry_db_in_transaction(db) !== 0; }

  /** Decodes the core's name list (u32 count, then u32 length + UTF-8 bytes each). */
  #names(p, n) {
    const dv = new DataView(this.heap.buffer, p, n);
    const count = dv.getUint32(0, true);
    const names = [];
    for (let i = 0, at = 4; i < count; i++) {
      const len = dv.getUint32(at, true);
      names.push(dec.decode(this.heap.subarray(p + at + 4, p + at + 4 + len)));
      at += 4 + len;
    }
    return names;
  }

  /** The tables the one read-only statement `sql` reads, as SQLite's authorizer names them (core ferry_db_reads). */
  reads(db, sql) {
    const M = this.M;
    const sqlBytes = enc.encode(sql);
    const sqlPtr = this.bytes(sqlBytes);
    const outPtr = M._malloc(8);
    try {
      if (!outPtr) throw new FerryError('nomem', 'out of wasm memory');
      const rc = M._ferry_db_reads(db, sqlPtr, sqlBytes.length, outPtr, outPtr + 4);
      if (rc !== 0) throw this.error(rc, db);
      return this.#names(M.HEAPU32[outPtr >> 2], M.HEAPU32[(outPtr + 4) >> 2]);
    } finally {
      M._free(sqlPtr);
      if (outPtr) M._free(outPtr);
    }
  }

  /** The tables committed transactions changed since the last call, or null when the core lost count (treat all as changed). */
  changed(db) {
    const M = this.M;
    const outPtr = M._malloc(8);
    if (!outPtr) return null;
    try {
      if (M._ferry_db_changed(db, outPtr, outPtr + 4) !== 0) return null;
      return this.#names(M.HEAPU32[outPtr >> 2], M.HEAPU32[(outPtr + 4) >> 2]);
    } finally {
      M._free(outPtr);
    }
  }

  /**
   * An incremental SHA-256 in the core (core/sha256.h), for browsers, which
   * have none: -> { update(u8), digest() -> 64 lowercase hex digits, close() }.
   * digest() frees the wasm handle, close() frees it without a digest (both
   * end the hasher; close() again is a no-op). A hasher dropped unfinished
   * is freed when it is collected, where FinalizationRegistry exists.
   */
  sha256() {
    const M = this.M;
    const core = this;
    const out = M._malloc(4);
    if (!out) throw new FerryError('nomem', 'out of wasm memory');
    let h = 0;
    try {
      const rc = M._ferry_sha256_open(out);
      if (rc !== 0) throw new FerryError(codeOfRc(rc), 'cannot start a SHA-256');
      h = M.HEAPU32[out >> 2];
    } finally {
      M._free(out);
    }
    const end = () => {
      if (!h) return;
      hashHandles?.unregister(hasher);
      M._ferry_sha256_close(h);
      h = 0;
    };
    const live = () => {
      if (!h) throw new FerryError('misuse', 'this SHA-256 has ended: digest() or close() was called');
    };
    const hasher = {
      update(u8) {
        live();
        if (!(u8 instanceof Uint8Array)) throw new FerryError('type', 'sha256().update() takes a Uint8Array');
        if (!u8.length) return;
        // A slice at a time through one bounded buffer: a 50 MB file never
        // needs 50 MB of wasm memory on top of its own copy.
        const cap = Math.min(u8.length, HASH_SLICE);
        const p = M._malloc(cap);
        if (!p) throw new FerryError('nomem', 'out of wasm memory');
        try {
          for (let at = 0; at < u8.length; at += cap) {
            const part = u8.subarray(at, at + cap);
            M.HEAPU8.set(part, p);
            const rc = M._ferry_sha256_update(h, p, part.length);
            if (rc !== 0) throw new FerryError(codeOfRc(rc), 'the SHA-256 refused the bytes');
          }
        } finally {
          M._free(p);
        }
      },
      digest() {
        live();
        const p = M._malloc(65);
        try {
          if (!p) throw new FerryError('nomem', 'out of wasm memory');
          const rc = M._ferry_sha256_final_hex(h, p);
          if (rc !== 0) throw new FerryError(codeOfRc(rc), 'the SHA-256 could not finish');
          return core.readCString(p);
        } finally {
          if (p) M._free(p);
          end();
        }
      },
      close: end,
    };
    hashHandles?.register(hasher, { M, h }, hasher);
    return hasher;
  }

  /**
   * Runs sql with encoded params on db. Returns { out, info } where out is a
   * view of the encoded result in wasm memory, valid until the next call.
   */
  run(db, sql, params, wantRows) {
    const sqlBytes = enc.encode(sql);
    const M = this.M;
    const sqlPtr = this.bytes(sqlBytes);
    const parPtr = params ? this.bytes(params) : 0;
    const outPtr = M._malloc(24);
    try {
      const rc = M._ferry_db_run(db, sqlPtr, sqlBytes.length, parPtr, params ? params.length : 0,
        wantRows ? 1 : 0, outPtr, outPtr + 4);
      if (rc !== 0) throw this.error(rc, db);
      const u32 = M.HEAPU32;
      const p = u32[outPtr >> 2], n = u32[(outPtr + 4) >> 2];
      M._fg_run_info(db, outPtr + 8);
      const dv = new DataView(M.HEAPU8.buffer, outPtr + 8, 16);
      const changes = Number(dv.getBigInt64(0, true));
      const rowid = dv.getBigInt64(8, true);
      const lastInsertRowid = rowid <= BigInt(Number.MAX_SAFE_INTEGER) && rowid >= BigInt(Number.MIN_SAFE_INTEGER)
        ? Number(rowid) : rowid;
      return { out: M.HEAPU8.subarray(p, p + n), changes, lastInsertRowid };
    } finally {
      M._free(sqlPtr);
      if (parPtr) M._free(parPtr);
      M._free(outPtr);
    }
  }
}

/** The C sync engine of one database handle (core/sync.h). */
export class CoreSync {
  constructor(core, db) {
    this.core = core;
    const M = core.M;
    const out = M._malloc(4);
    try {
      const rc = M._ferry_sync_open(out, db);
      this.s = M.HEAPU32[out >> 2];
      if (rc !== 0) {
        const err = this.#error(rc, 'cannot start sync');
        M._ferry_sync_close(this.s);
        this.s = 0;
        throw err;
      }
    } finally {
      M._free(out);
    }
  }
  #error(rc, context) {
    const msg = this.s ? this.core.readCString(this.core.M._ferry_sync_errmsg(this.s)) : '';
    const code = codeOfRc(rc);
    return new FerryError(code, `${context ? `${context}: ` : ''}${msg || code}${ADVISED.has(code) || code.startsWith('sync_') ? `. ${hintOf(code)}` : ''}`);
  }
  close() { if (this.s) this.core.M._ferry_sync_close(this.s); this.s = 0; }
  #json(fn) { return JSON.parse(this.core.readCString(fn(this.s))); }
  status() { return this.#json(this.core.M._ferry_sync_status); }
  report() { return this.#json(this.core.M._ferry_sync_report); }
  errors() { return this.#json(this.core.M._ferry_sync_errors); }

  begin(filter) {
    const M = this.core.M;
    const bytes = filter ? enc.encode(JSON.stringify(filter)) : null;
    const p = bytes ? this.core.bytes(bytes) : 0;
    try {
      const rc = M._ferry_sync_begin(this.s, p, bytes ? bytes.length : 0);
      if (rc !== 0) throw this.#error(rc);
    } finally {
      if (p) M._free(p);
    }
  }
  /** The next request as { method, path, body } (body a Uint8Array copy), or null when done. */
  next() {
    const M = this.core.M;
    const out = M._malloc(16);
    try {
      const rc = M._fg_sync_next(this.s, out);
      if (rc !== 0) throw this.#error(rc);
      const [method, path, body, len] = M.HEAPU32.subarray(out >> 2, (out >> 2) + 4);
      if (!path) return null;
      return {
        method: this.core.readCString(method),
        path: this.core.readCString(path),
        body: body ? M.HEAPU8.slice(body, body + len) : null,
      };
    } finally {
      M._free(out);
    }
  }
  /**
   * Applies the next slice of the pull page being applied (each slice its
   * own transaction); true while slices remain. Throws the FerryError of a
   * failed run.
   */
  applyMore() {
    const M = this.core.M;
    const out = M._malloc(4);
    try {
      const rc = M._ferry_sync_apply(this.s, out);
      if (rc !== 0) throw this.#error(rc);
      return M.HEAP32[out >> 2] !== 0;
    } finally {
      M._free(out);
    }
  }
  /** Objects per pull slice (0: whole pages). */
  setApplySlice(n) {
    const rc = this.core.M._ferry_sync_set_apply_slice(this.s, n);
    if (rc !== 0) throw this.#error(rc);
  }
  /** Each pull step also ends after ms milliseconds (0: by objects only). */
  setStepBudget(ms) {
    const rc = this.core.M._fg_sync_set_step_budget(this.s, ms);
    if (rc !== 0) throw this.#error(rc);
  }
  /** Feeds a reply; throws the FerryError of a failed run. */
  feed(status, body) {
    const M = this.core.M;
    const p = body && body.length ? this.core.bytes(body) : 0;
    try {
      const rc = M._ferry_sync_feed(this.s, status, p, p ? body.length : 0);
      if (rc !== 0) throw this.#error(rc);
    } finally {
      if (p) M._free(p);
    }
  }
  #pair(fn, entity, id) {
    const M = this.core.M;
    const e = this.core.cstring(String(entity));
    const i = this.core.cstring(String(id));
    try {
      const rc = fn(this.s, e, i);
      if (rc !== 0) throw this.#error(rc);
    } finally {
      M._free(e);
      M._free(i);
    }
  }
  retry(entity, id) { this.#pair(this.core.M._ferry_sync_retry, entity, id); }

  // The upload queue's bookkeeping (core/files.h).
  #strings(fn, ...args) {
    const M = this.core.M;
    const ptrs = args.map((a) => (a == null ? 0 : this.core.cstring(String(a))));
    try {
      const rc = fn(this.s, ...ptrs);
      if (rc !== 0) throw this.#error(rc);
    } finally {
      for (const p of ptrs) if (p) M._free(p);
    }
  }
  fileUploaded(hash) { this.#strings(this.core.M._ferry_files_uploaded, hash); }
  fileFailed(hash, code, message) { this.#strings(this.core.M._ferry_files_fail, hash, code, message); }
  fileRetry(hash) { this.#strings(this.core.M._ferry_files_retry, hash); }
  discard(entity, id) { this.#pair(this.core.M._ferry_sync_discard, entity, id); }
}
