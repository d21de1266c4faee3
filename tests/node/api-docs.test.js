// docs/API.md is generated from the package's declarations (types/*.d.ts,
// scripts/api-docs.mjs): it must say what they say, so a change to the
// declarations without a regenerated reference fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { apiDocs, API_MD } from '../../scripts/api-docs.mjs';

test('the_api_reference_should_be_what_the_declarations_give', () => {
  const want = apiDocs();
  assert.ok(fs.existsSync(API_MD), 'docs/API.md is missing: run node scripts/api-docs.mjs');
  assert.ok(fs.readFileSync(API_MD, 'utf8') === want, 'docs/API.md differs from types/*.d.ts: run node scripts/api-docs.mjs');
  for (const name of ['open()', 'interface `Database`', 'createSyncServer()', 'registerServiceWorker()', 'ferryRoutes']) {
    assert.ok(want.includes(name), `the reference names ${name}`);
  }
});
