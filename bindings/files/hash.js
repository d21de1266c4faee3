// An incremental SHA-256 for streaming files: Node's crypto here. Browsers
// need an incremental hash too (WebCrypto only digests whole buffers); the
// browser slice brings one behind the same { update, digest } shape.
import { FerryError } from '../errors.js';

let nodeCrypto = null;

/** -> { update(u8), digest() -> 64 lowercase hex digits } */
export async function createHasher() {
  if (!nodeCrypto) {
    try {
      nodeCrypto = await import('node:crypto');
    } catch (e) {
      throw new FerryError('unsupported', 'files need an incremental SHA-256, available in Node for now', { cause: e });
    }
  }
  const h = nodeCrypto.createHash('sha256');
  return { update(u8) { h.update(u8); }, digest() { return h.digest('hex'); } };
}
