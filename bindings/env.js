// Where this module runs: Node (not a browser that happens to define
// `process`, as some bundles do; a window is a browser whatever else is there).
export const isNode = typeof process === 'object' && typeof process.versions?.node === 'string'
  && typeof globalThis.window === 'undefined';
