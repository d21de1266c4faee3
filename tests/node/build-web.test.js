// scripts/build-web.mjs: the modulepreload block it writes into index.html
// lists the whole static import graph of the page's module scripts, so a
// browser fetches it in one round instead of one level per round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildWeb, moduleGraph } from '../../scripts/build-web.mjs';
import { tempDir } from './helpers.js';

test('the_modulepreload_block_should_list_every_static_import_once_and_nothing_else', async () => {
  const site = tempDir('build-web');
  const web = path.join(site, 'web');
  const bindings = path.join(site, 'bindings');
  for (const d of [path.join(web, 'lib'), path.join(bindings, 'dist')]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(bindings, 'dist', 'ferry-core.wasm'), 'not really wasm');
  fs.writeFileSync(path.join(bindings, 'index.js'), "import './core.js';\nexport { x } from './dist/x.js';\nconst later = () => import('./lazy.js');\n");
  fs.writeFileSync(path.join(bindings, 'core.js'), "import { y } from './index.js';\n");   // a cycle
  fs.writeFileSync(path.join(bindings, 'dist', 'x.js'), 'export const x = 1;\n');
  fs.writeFileSync(path.join(web, 'app.js'), "import { open } from '/bindings/index.js';\nimport {\n  a,\n  b,\n} from './lib/a.js';\nimport 'bare-package';\n");
  fs.writeFileSync(path.join(web, 'lib', 'a.js'), "import '/bindings/core.js';\nexport const a = 1, b = 2;\n");
  const html = (block) => `<!doctype html><head>\n  <script type="module" src="/app.js"></script>\n${block}</head><body></body>\n`;
  fs.writeFileSync(path.join(web, 'index.html'), html('  <!-- ferry:modulepreload -->\n  <link rel="modulepreload" href="/stale.js">\n  <!-- /ferry:modulepreload -->\n'));
  const expected = ['/bindings/index.js', '/bindings/core.js', '/bindings/dist/x.js', '/lib/a.js'];
  assert.deepEqual(moduleGraph({ web, bindings, html: fs.readFileSync(path.join(web, 'index.html'), 'utf8') }), expected);
  await buildWeb({ web, bindings });
  const written = fs.readFileSync(path.join(web, 'index.html'), 'utf8');
  assert.equal(written, html(`  <!-- ferry:modulepreload -->\n${expected.map((u) => `  <link rel="modulepreload" href="${u}">\n`).join('')}  <!-- /ferry:modulepreload -->\n`));
  // Written again, nothing changes; a page without the markers is left alone.
  await buildWeb({ web, bindings });
  assert.equal(fs.readFileSync(path.join(web, 'index.html'), 'utf8'), written);
  fs.writeFileSync(path.join(web, 'index.html'), html(''));
  await buildWeb({ web, bindings });
  assert.equal(fs.readFileSync(path.join(web, 'index.html'), 'utf8'), html(''));
});
