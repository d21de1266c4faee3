// Where this module runs: Node (not a browser that happens to define
// `process`, as some bundles do; a window is a browser whatever else is there).
export const isNode = typeof process === 'object' && typeof process.versions?.node === 'string'
  && typeof globalThis.window === 'undefined';

/**
 * import() of a Node-only module (a `node:` built-in, or `specifier`
 * relative to `base`, the caller's import.meta.url) where bundlers do not
 * look: they would pull node: built-ins into a browser bundle (webpack
 * fails on the node: scheme, Vite warns about each). Call it only in Node.
 */
export function nodeImport(specifier, base) {
  const url = specifier.startsWith('.') ? new URL(specifier, base).href : specifier;
  return import(/* @vite-ignore */ /* webpackIgnore: true */ url);
}
