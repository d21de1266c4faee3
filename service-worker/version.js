// The version of a precache manifest: a 64-bit FNV-1a hash (16 hex digits)
// over each entry's URL and revision, in URL order. The service worker
// computes it at start, synchronously, because its cache name must be known
// before the install event; the build (scripts/build-web.mjs) computes the
// same to report it. It only has to change with the manifest: the manifest
// itself is what the browser byte-compares to find an update.

const OFFSET = 0xcbf29ce484222325n;
const PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;

/** The entry's URL as a string: Workbox manifests allow bare strings too. */
const urlOf = (e) => (typeof e === 'string' ? e : e.url);

/**
 * @param {Array<string | { url: string, revision?: string | null, integrity?: string }>} entries
 * @returns {string} 16 hex digits
 */
export function manifestVersion(entries) {
  const lines = entries.map((e) => `${urlOf(e)} ${typeof e === 'string' ? '' : e.revision ?? ''} ${typeof e === 'string' ? '' : e.integrity ?? ''}`);
  lines.sort();
  let h = OFFSET;
  const text = lines.join('\n');
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * PRIME) & MASK;
  }
  return h.toString(16).padStart(16, '0');
}
