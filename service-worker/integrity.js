// ferry/sw-build (Node): a manifestTransform for workbox-build
// (injectManifest or getManifest) that gives every precache entry the
// SHA-256 of its file as `integrity` (and as its revision). Workbox fetches
// an entry with its integrity at install, so the browser refuses a body that
// is not the manifest's and the install fails: a server half-way through a
// deploy cannot leave a precache that mixes versions; ferry's shellRoute
// compares a network page with it.
//
//   await injectManifest({ swSrc, swDest, globDirectory: 'dist', globPatterns: ['**/*'],
//     manifestTransforms: [sha256Integrity('dist')] });
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * @param {string} directory the globDirectory the entries' URLs are relative to
 * @param {{ file?: (url: string) => string | null }} [options] file: the file behind an entry's URL
 *   (for URLs modifyURLPrefix changed); null leaves the entry as it is
 * @returns {(entries: Array<{ url: string, revision: string | null, size: number, integrity?: string }>) =>
 *   { manifest: Array<{ url: string, revision: string | null, size: number, integrity?: string }>, warnings: string[] }}
 */
export function sha256Integrity(directory, { file } = {}) {
  // workbox-build's URLs are the files' paths under globDirectory, as they are (not percent-encoded).
  const fileOf = file || ((url) => path.join(directory, url.replace(/^\//, '')));
  return (entries) => {
    const warnings = [];
    const manifest = entries.map((entry) => {
      if (entry.integrity) return entry;
      const where = fileOf(entry.url);
      let buf;
      try {
        buf = where && fs.readFileSync(where);
      } catch {
        buf = null;
      }
      if (!buf) {
        warnings.push(`sha256Integrity: no file for ${entry.url}; it is precached without integrity`);
        return entry;
      }
      const digest = crypto.createHash('sha256').update(buf).digest();
      return {
        ...entry,
        revision: entry.revision === null ? null : digest.toString('hex'),
        integrity: `sha256-${digest.toString('base64')}`,
      };
    });
    return { manifest, warnings };
  };
}
