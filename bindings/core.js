// Loads the wasm core once per JS realm and wraps its entry points.
import createFerryCore from './dist/ferry-core.mjs';
import { Host } from './host.js';
import { FerryError, codeOfRc, hintOf } from './errors.js';

// Codes whose message also says what the user can do about it.
const ADVISED = new Set(['storage_full', 'io', 'corrupt', 'busy', 'storage_lost']);

const wasmUrl = new URL('./dist/ferry-core.wasm', import.meta.url);
const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';
let corePromise = null;

async function compileWasm() {
  if (isNode && wasmUrl.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
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

  /** Opens a database through one of the glue's open functions; returns the handle. */
  open(name, opener) {
    const namePtr = this.cstring(name);
    const outPtr = this.M._malloc(4);
    try {
      const rc = opener(namePtr, outPtr);
      const db = this.M.HEAPU32[outPtr >> 2];
      if (rc !== 0) {
        const err = this.error(rc, db, `cannot open '${name}'`);
        if (db) this.M._ferry_db_close(db);
        throw err;
      }
      return db;
    } finally {
      this.M._free(namePtr);
      this.M._free(outPtr);
    }
  }
  openMemory(name) { return this.open(name, (n, out) => this.M._fg_open_memory(n, out)); }
  openFiles(name, mainFile, logFile, checkpointBytes = 0) {
    const mainId = this.host.addFile(mainFile);
    const logId = this.host.addFile(logFile);
    return this.open(name, (n, out) => this.M._fg_open_files(n, mainId, logId, checkpointBytes, out));
  }
  openJsStore(name, store) {
    const id = this.host.addStore(store);
    return this.open(name, (n, out) => this.M._fg_open_js_store(n, id, out));
  }
  close(db) { this.M._ferry_db_close(db); }
  inTransaction(db) { return this.M._ferry_db_in_transaction(db) !== 0; }

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
