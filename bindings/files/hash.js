// An incremental SHA-256 for streaming files: Node's crypto where there is
// one (native code, several times faster), else the core's (core/sha256.c
// through the wasm), since browsers have none (WebCrypto digests whole
// buffers only, and files may be larger than memory allows to hold twice).
import { FerryError } from '../errors.js';
import { isNode, nodeImport } from '../env.js';

// node:crypto or null, loaded once: concurrent first calls share the load
// (a second call must not see "not available" while the first still loads).
let nodeCrypto = null;
const loadingCrypto = isNode ? nodeImport('node:crypto').then((m) => { nodeCrypto = m; }, () => {}) : Promise.resolve();

/**
 * core: the wasm core (bindings/core.js), used where node:crypto is not.
 * -> { update(u8), digest() -> 64 lowercase hex digits, close() }: digest()
 * ends the hasher; close() ends it without one (after digest(), a no-op).
 */
export async function createHasher(core) {
  await loadingCrypto;
  if (nodeCrypto) {
    const h = nodeCrypto.createHash('sha256');
    return { update(u8) { h.update(u8); }, digest() { return h.digest('hex'); }, close() {} };
  }
  if (core) return core.sha256();
  throw new FerryError('unsupported', 'files need an incremental SHA-256: node:crypto, or the core\'s (pass it to createHasher)');
}

/** Up to this many bytes, a put that has its bytes whole hashes them whole. */
export const WHOLE_LIMIT = 32 << 20;

/**
 * The SHA-256 (hex) of bytes held whole, by WebCrypto (native code, in
 * browsers many times faster than the incremental hash through the wasm);
 * null where there is no WebCrypto.
 */
export async function digestWhole(u8) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return null;
  const d = new Uint8Array(await subtle.digest('SHA-256', u8));
  let hex = '';
  for (const b of d) hex += b.toString(16).padStart(2, '0');
  return hex;
}
