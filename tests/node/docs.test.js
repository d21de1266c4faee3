// The docs stand alone: every relative link in the project's Markdown
// reaches a file of the repository, and none points outside it (a path of
// a machine, a folder beside the checkout).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SKIP = new Set(['node_modules', '.git', '.deps', 'build', 'dist']);

function markdown(dir = ROOT) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (SKIP.has(e.name) || e.name.startsWith('.')) return [];
    const p = path.join(dir, e.name);
    return e.isDirectory() ? markdown(p) : e.name.endsWith('.md') ? [p] : [];
  });
}

test('every_relative_link_in_the_docs_should_reach_a_file_of_the_repository', () => {
  const files = markdown();
  assert.ok(files.length >= 8, `found ${files.length} Markdown files`);
  const broken = [];
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
      const to = path.resolve(path.dirname(file), decodeURIComponent(target.split('#')[0]));
      if (!to.startsWith(ROOT + path.sep) || !fs.existsSync(to)) broken.push(`${path.relative(ROOT, file)}: ${target}`);
    }
    if (/\.\.\/shared\/|DESIGN\.md|\/work\/|\/home\/|\/tmp\/ferry/.test(text)) broken.push(`${path.relative(ROOT, file)}: names a path outside the repository`);
  }
  assert.deepEqual(broken, []);
});
