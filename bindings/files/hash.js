// An incremental SHA-256 for streaming files: Node's crypto where there is
// one (native code, several times faster), else the core's (core/sha256.c
// through the wasm), since browsers have none (WebCrypto digests whole
// buffers only, and files may be larger than memory allows to hold twice).
import { FerryError } from '../errors.js';

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';
let nodeCrypto;   // undefined: not tried yet; null: not available

/**
 * core: the wasm core (bindings/core.js), used where node:crypto is not.
 * -> { update(u8), digest() -> 64 lowercase hex digits, close() }: digest()
 * ends the hasher; close() ends it without one (after digest(), a no-op).
 */
export async function createHasher(core) {
  if (nodeCrypto === undefined) {
    nodeCrypto = null;
    if (isNode) nodeCrypto = await import('node:crypto').catch(() => null);
  }
  if (nodeCrypto) {
    const h = nodeCrypto.createHash('sha256');
    return { update(u8) { h.update(u8); }, digest() { return h.digest('hex'); }, close() {} };
  }
  if (core) return core.sha256();
  throw new FerryError('unsupported', 'files need an incremental SHA-256: node:crypto, or the core\'s (pass it to createHasher)');
}
