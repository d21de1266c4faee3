// Module.ferryHost: the JS side of the stores, files and random bytes the C
// core calls synchronously (bindings/wasm_glue.c). Nothing here throws into
// wasm: each call catches, keeps the error for the bindings, and returns a code.
import { rcOfCode, storageCode } from './errors.js';

export class Host {
  constructor() {
    this.files = new Map();     // id -> { read(u8, off), write(u8, off), size(), truncate(n), sync(), close() }
    this.stores = new Map();    // id -> { read(no) -> Uint8Array|undefined, size(), commit(blocks, size), import(blocks, size, last), close() }
    this.nextId = 1;
    this.lastError = null;
    this.module = null;
  }
  attach(module) { this.module = module; }
  heap() { return this.module.HEAPU8; }
  add(map, obj) { const id = this.nextId++; map.set(id, obj); return id; }
  addFile(file) { return this.add(this.files, file); }
  addStore(store) { return this.add(this.stores, store); }
  /** Takes the error kept by the last failed host call (or null). */
  takeError() { const e = this.lastError; this.lastError = null; return e; }
  fail(e) { this.lastError = e; return rcOfCode(storageCode(e)); }

  fileRead(id, ptr, n, off) {
    try { return this.files.get(id).read(this.heap().subarray(ptr, ptr + n), off); } catch (e) { return -this.fail(e); }
  }
  fileWrite(id, ptr, n, off) {
    try { this.files.get(id).write(this.heap().subarray(ptr, ptr + n), off); return 0; } catch (e) { return this.fail(e); }
  }
  fileSize(id) {
    try { return this.files.get(id).size(); } catch (e) { return -this.fail(e); }
  }
  fileTruncate(id, size) {
    try { this.files.get(id).truncate(size); return 0; } catch (e) { return this.fail(e); }
  }
  fileSync(id) {
    try { this.files.get(id).sync(); return 0; } catch (e) { return this.fail(e); }
  }
  fileClose(id) {
    const f = this.files.get(id);
    this.files.delete(id);
    try { f && f.close(); } catch (e) { this.fail(e); }
  }

  /** Copies block `no` of the store's last commit to ptr (zeros when it holds none). */
  storeRead(id, no, ptr) {
    try {
      const data = this.stores.get(id).read(no);
      const heap = this.heap();
      if (data) heap.set(data, ptr); else heap.fill(0, ptr, ptr + 4096);
      return 0;
    } catch (e) { return this.fail(e); }
  }
  storeSize(id) {
    try { return this.stores.get(id).size(); } catch (e) { return -this.fail(e); }
  }
  storeCommit(id, ptr, n, size) {
    try {
      const heap = this.heap();
      const words = new Uint32Array(heap.buffer, ptr, n * 2);
      const blocks = new Array(n);
      for (let k = 0; k < n; k++) {
        const at = words[2 * k + 1];
        blocks[k] = { no: words[2 * k], data: heap.slice(at, at + 4096) };
      }
      this.stores.get(id).commit(blocks, size);
      return 0;
    } catch (e) { return this.fail(e); }
  }
  /** Hands n blocks (numbers first..) of a database being imported to the store; `last` ends the import. */
  storeImport(id, ptr, first, n, size, last) {
    try {
      const heap = this.heap();
      const blocks = new Array(n);
      // One copy per block: a view into a shared buffer would be stored whole.
      for (let k = 0; k < n; k++) blocks[k] = { no: first + k, data: heap.slice(ptr + k * 4096, ptr + (k + 1) * 4096) };
      this.stores.get(id).import(blocks, size, !!last);
      return 0;
    } catch (e) { return this.fail(e); }
  }
  /** Fills n bytes at ptr from the platform CSPRNG (Node and browsers alike). */
  random(ptr, n) {
    try {
      const heap = this.heap();
      // getRandomValues takes at most 65536 bytes a call.
      for (let at = 0; at < n; at += 65536) {
        globalThis.crypto.getRandomValues(heap.subarray(ptr + at, ptr + Math.min(n, at + 65536)));
      }
      return 0;
    } catch (e) { return this.fail(e); }
  }
  storeClose(id) {
    const s = this.stores.get(id);
    this.stores.delete(id);
    try { s && s.close(); } catch (e) { this.fail(e); }
  }
}
