// `ferry/sw-build` (Node): ferry's part for building an app's service
// worker with workbox-build.

export interface IntegrityEntry {
  url: string;
  revision: string | null;
  size: number;
  integrity?: string;
}

/**
 * A workbox-build manifestTransform: each entry gets the SHA-256 of its
 * file (under `directory`, the globDirectory) as `integrity` and revision,
 * so the browser checks every file when the worker installs.
 */
export function sha256Integrity(
  directory: string,
  options?: { file?: (url: string) => string | null },
): (entries: IntegrityEntry[]) => { manifest: IntegrityEntry[]; warnings: string[] };
