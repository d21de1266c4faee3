// The device file store for 'memory' storage: the same function table as
// node-store.js over Maps (lost with the process, as the database is).
const READ_CHUNK = 1 << 20;

function* slices(u8, start, end) {
  for (let at = start; at < end; at += READ_CHUNK) yield u8.slice(at, Math.min(end, at + READ_CHUNK));
}

export function memoryFileStore() {
  const blobs = new Map();
  const partial = new Map();   // name -> { chunks, size }
  const flat = (p) => {
    const out = new Uint8Array(p.size);
    let at = 0;
    for (const c of p.chunks) { out.set(c, at); at += c.length; }
    p.chunks = [out];
    return out;
  };
  return {
    kind: 'memory',
    async has(hash) { return blobs.has(hash); },
    async size(hash) { return blobs.has(hash) ? blobs.get(hash).length : null; },
    async partialSize(name) { return partial.get(name)?.size ?? 0; },
    async openPartial(name, offset = 0) {
      const prev = partial.get(name);
      const p = { chunks: prev ? [flat(prev).slice(0, offset)] : [], size: prev ? Math.min(offset, prev.size) : 0 };
      partial.set(name, p);
      return {
        async write(u8) { p.chunks.push(u8.slice()); p.size += u8.length; },
        async sync() {},
        async close() {},
      };
    },
    async commit(name, hash) {
      const p = partial.get(name);
      partial.delete(name);
      if (!blobs.has(hash)) blobs.set(hash, flat(p));
    },
    async removePartial(name) { partial.delete(name); },
    async remove(hash) { blobs.delete(hash); },
    async list() { return [...blobs.keys()]; },
    async listPartials() { return [...partial.keys()]; },
    async* read(hash, start, end) { yield* slices(blobs.get(hash), start, end); },
    async readInto(hash, start, target) {
      const src = blobs.get(hash).subarray(start, start + target.length);
      target.set(src);
      return src.length;
    },
    async* readPartial(name, start, end) { yield* slices(flat(partial.get(name)), start, end); },
    async destroy() { blobs.clear(); partial.clear(); },
  };
}
