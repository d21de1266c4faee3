// One script from one entry module with Vite, kept in memory: what the build
// bundles (the demo's service worker in scripts/build-web.mjs, the database
// worker in scripts/bundle-worker.mjs). Throws unless Vite made exactly one
// file, so nothing the bundle needs is left behind as a separate chunk or
// asset.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * entry: a module's path; format 'es' or 'iife' (with `name`); define,
 * alias, plugins as Vite takes them. Dynamic imports are inlined.
 * -> the bundle's text
 */
export async function bundleOne(entry, { format, name, define = {}, alias = {}, plugins = [] }) {
  const { build } = await import('vite');
  const result = await build({
    configFile: false,
    envDir: false,
    logLevel: 'warn',
    root: path.dirname(entry),
    publicDir: false,
    resolve: { alias },
    define,
    plugins,
    build: {
      write: false,
      minify: false,
      sourcemap: false,
      reportCompressedSize: false,
      copyPublicDir: false,
      lib: { entry, formats: [format], name, fileName: () => path.basename(entry) },
      // Type annotations in JSDoc would only weigh: the sources are the documentation.
      rolldownOptions: { output: { codeSplitting: false, comments: { legal: true, annotation: false, jsdoc: false } } },
    },
  });
  const outputs = (Array.isArray(result) ? result : [result]).flatMap((r) => r.output);
  if (outputs.length !== 1 || outputs[0].type !== 'chunk') {
    throw new Error(`bundling ${path.relative(root, entry)} gave ${outputs.map((o) => o.fileName).join(', ')}, not one script`);
  }
  return outputs[0].code;
}
