// The build-side pieces of ferry/sw: sha256Integrity (ferry/sw-build), the
// workbox-build manifestTransform that gives every precache entry its file's
// SHA-256, and manifestVersion, which the worker and the build both compute
// to name a version's cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sha256Integrity } from '../../service-worker/integrity.js';
import { manifestVersion } from '../../service-worker/version.js';
import { tempDir } from './helpers.js';

test('the_integrity_transform_should_give_each_file_its_sha256_and_name_an_entry_with_no_file', () => {
  const dir = tempDir('sw-build');
  fs.mkdirSync(path.join(dir, 'lib'));
  fs.writeFileSync(path.join(dir, 'lib', 'a b.js'), 'export const a = 1;\n');
  const digest = crypto.createHash('sha256').update('export const a = 1;\n').digest();
  const { manifest, warnings } = sha256Integrity(dir)([
    { url: 'lib/a b.js', revision: 'md5', size: 20 },
    { url: '/lib/a b.js', revision: null, size: 20 },   // a URL that names its version: it keeps no revision
    { url: 'gone.js', revision: 'x', size: 1 },
    { url: 'kept.js', revision: 'y', size: 1, integrity: 'sha384-given' },
  ]);
  const integrity = `sha256-${digest.toString('base64')}`;
  assert.deepEqual(manifest, [
    { url: 'lib/a b.js', revision: digest.toString('hex'), size: 20, integrity },
    { url: '/lib/a b.js', revision: null, size: 20, integrity },
    { url: 'gone.js', revision: 'x', size: 1 },
    { url: 'kept.js', revision: 'y', size: 1, integrity: 'sha384-given' },
  ]);
  assert.deepEqual(warnings, ['sha256Integrity: no file for gone.js; it is precached without integrity']);
  // A URL the build rewrote (modifyURLPrefix) maps back to its file.
  const mapped = sha256Integrity(dir, { file: (url) => path.join(dir, url.replace(/^\/static\//, '')) })([{ url: '/static/lib/a b.js', revision: 'r', size: 20 }]);
  assert.equal(mapped.manifest[0].integrity, integrity);
});

test('the_manifest_version_should_change_with_any_entry_and_not_with_their_order', () => {
  const entries = [{ url: '/a.js', revision: '1' }, { url: '/b.js', revision: '2', integrity: 'sha256-x' }, '/c.js'];
  const v = manifestVersion(entries);
  assert.match(v, /^[0-9a-f]{16}$/);
  assert.equal(manifestVersion([...entries].reverse()), v);
  assert.notEqual(manifestVersion([{ url: '/a.js', revision: '3' }, ...entries.slice(1)]), v);
  assert.notEqual(manifestVersion([entries[0], { url: '/b.js', revision: '2', integrity: 'sha256-y' }, entries[2]]), v);
  assert.notEqual(manifestVersion(entries.slice(1)), v);
});
