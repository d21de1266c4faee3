// The sync model: every validation rule (server/model.js), the `where`
// compiler's SQL and semantics, and the `ferry check` command.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateModel, compileWhere, isIdentifier } from '../../server/model.js';
import { open } from '../../bindings/index.js';
import { tempDir } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const demo = JSON.parse(fs.readFileSync(path.join(root, 'server/demo-model.json'), 'utf8'));

const model = (entities, version = '1') => ({ version, entities });
/** The errors of a model as "Entity rule" strings. */
const rules = (json) => validateModel(json).errors.map((e) => `${e.entity} ${e.rule}`);
function expectError(json, entity, rule, messagePart) {
  const r = validateModel(json);
  assert.equal(r.ok, false, 'the model should be invalid');
  const hit = r.errors.find((e) => e.entity === entity && e.rule === rule);
  assert.ok(hit, `expected ${entity}: ${rule}, got ${JSON.stringify(r.errors)}`);
  if (messagePart) assert.match(hit.message, messagePart);
  return hit;
}

test('demo_model_should_validate_and_be_normalized_with_defaults', () => {
  const r = validateModel(demo);
  assert.deepEqual(r.errors, []);
  assert.equal(r.ok, true);
  assert.equal(r.model.version, '5');
  assert.deepEqual(r.model.entities.Region, { attributes: { name: 'string' }, associations: {}, sync: 'all', conflict: 'last-write-wins' });
  assert.deepEqual(r.model.entities.Visit.sync, { where: "status != 'archived'" });
  assert.equal(r.model.entities.Draft.sync, 'never');
  assert.deepEqual(r.model.entities.Memo.sync, { where: 'owner = $user.id' });
  assert.equal(r.model.entities.Feedback.conflict, 'last-write-wins');
});

test('entity_without_sync_or_conflict_should_default_to_all_and_last_write_wins', () => {
  const r = validateModel(model({ A: { attributes: { x: { type: 'integer' } } } }));
  assert.equal(r.ok, true);
  assert.deepEqual(r.model.entities.A, { attributes: { x: 'integer' }, associations: {}, sync: 'all', conflict: 'last-write-wins' });
});

test('model_should_be_an_object_with_a_non_empty_string_version', () => {
  for (const bad of [null, [], 'x', 3]) expectError(bad, '(model)', 'model');
  expectError({ entities: {} }, '(model)', 'version', /version/);
  expectError({ version: '', entities: {} }, '(model)', 'version');
  expectError({ version: '  ', entities: {} }, '(model)', 'version');
  expectError({ version: 3, entities: {} }, '(model)', 'version', /string/);
  expectError({ version: '1' }, '(model)', 'entities');
  expectError({ version: '1', entities: [] }, '(model)', 'entities');
  expectError({ version: '1', entities: {}, extra: 1 }, '(model)', 'unknown-key', /extra/);
  assert.equal(validateModel({ version: '1', entities: {} }).ok, true);
});

test('entity_names_should_be_plain_identifiers', () => {
  for (const bad of ['1abc', 'a-b', 'a b', 'é', 'x'.repeat(65), '']) {
    expectError(model({ [bad]: { attributes: {} } }), bad, 'name', /plain identifier/);
  }
  assert.equal(validateModel(model({ ['x'.repeat(64)]: { attributes: {} }, _under: { attributes: {} } })).ok, true);
});

test('names_starting_with_ferry_or_sqlite_or_named_id_should_be_reserved', () => {
  expectError(model({ _ferry_x: { attributes: {} } }), '_ferry_x', 'reserved-name', /_ferry/);
  expectError(model({ _FERRYx: { attributes: {} } }), '_FERRYx', 'reserved-name');
  expectError(model({ sqlite_t: { attributes: {} } }), 'sqlite_t', 'reserved-name', /sqlite_/);
  expectError(model({ id: { attributes: {} } }), 'id', 'reserved-name');
  expectError(model({ A: { attributes: { id: 'string' } } }), 'A', 'reserved-name', /attribute name 'id'/);
  expectError(model({ A: { attributes: { ID: 'string' } } }), 'A', 'reserved-name');
  expectError(model({ A: { attributes: { _ferry_version: 'integer' } } }), 'A', 'reserved-name', /_ferry/);
  expectError(model({ A: { attributes: {}, associations: { _ferryB: 'A' } } }), 'A', 'reserved-name');
  assert.equal(isIdentifier('Customer'), true);
  assert.equal(isIdentifier('_ferry'), false);
  assert.equal(isIdentifier('Id'), false);
});

test('attribute_and_association_names_should_be_plain_identifiers', () => {
  expectError(model({ A: { attributes: { 'bad name': 'string' } } }), 'A', 'name', /attribute name "bad name"/);
  expectError(model({ A: { attributes: {}, associations: { 'a.b': 'A' } } }), 'A', 'name', /association name/);
});

test('duplicate_names_should_be_errors_case_insensitively', () => {
  expectError(model({ A: { attributes: { name: 'string', Name: 'string' } } }), 'A', 'duplicate-name', /case-insensitive/);
  expectError(model({ A: { attributes: { region: 'string' }, associations: { Region: 'R' } }, R: { attributes: {} } }), 'A', 'duplicate-name', /association 'Region'.*attribute 'region'/);
  expectError(model({ Visit: { attributes: {} }, visit: { attributes: {} } }), 'visit', 'duplicate-name', /entity Visit/);
});

test('attribute_types_should_be_among_the_seven_types', () => {
  const ok = { string: 'string', integer: 'integer', decimal: 'decimal', boolean: 'boolean', datetime: 'datetime', binary: 'binary', file: 'file' };
  assert.equal(validateModel(model({ A: { attributes: ok } })).ok, true);
  for (const bad of ['text', 'int', 'String', '', null, 3, ['string']]) {
    expectError(model({ A: { attributes: { x: bad } } }), 'A', 'attribute-type', /attribute 'x'.*use one of string, integer/);
  }
  expectError(model({ A: { attributes: ['x'] } }), 'A', 'attributes');
  expectError(model({ A: 'nope' }), 'A', 'entity');
});

test('sync_modes_should_be_all_where_nothing_or_never', () => {
  for (const sync of ['all', 'nothing-clear', 'nothing-preserve', 'never', { where: 'x = 1' }]) {
    const r = validateModel(model({ A: { attributes: { x: 'integer' }, sync } }));
    assert.equal(r.ok, true, JSON.stringify(sync));
    assert.deepEqual(r.model.entities.A.sync, sync);
  }
  for (const bad of ['some', 'nothing', 'All', 3, null, [], {}, { filter: 'x = 1' }]) {
    expectError(model({ A: { attributes: { x: 'integer' }, sync: bad } }), 'A', 'sync-mode', /sync mode|sync \{/);
  }
  expectError(model({ A: { attributes: { x: 'integer' }, sync: { where: '' } } }), 'A', 'sync-mode', /non-empty/);
  expectError(model({ A: { attributes: { x: 'integer' }, sync: { where: 'x = 1', extra: 1 } } }), 'A', 'sync-mode');
});

test('conflict_policies_should_be_known', () => {
  for (const conflict of ['last-write-wins', 'server-wins', 'client-wins']) {
    assert.equal(validateModel(model({ A: { attributes: {}, conflict } })).model.entities.A.conflict, conflict);
  }
  for (const bad of ['lww', 'merge', '', 1]) expectError(model({ A: { attributes: {}, conflict: bad } }), 'A', 'conflict', /last-write-wins, server-wins, client-wins/);
});

test('association_target_should_exist', () => {
  expectError(model({ A: { attributes: {}, associations: { b: 'B' } } }), 'A', 'association-target', /'B'.*not an entity/);
  expectError(model({ A: { attributes: {}, associations: { b: 'a2' } }, A2: { attributes: {} } }), 'A', 'association-target', /did you mean A2/);
  expectError(model({ A: { attributes: {}, associations: { b: 3 } } }), 'A', 'association-target');
  assert.equal(validateModel(model({ A: { attributes: {}, associations: { self: 'A', b: { target: 'B' } } }, B: { attributes: {} } })).ok, true);
});

test('synced_entity_referencing_a_never_entity_should_be_an_error', () => {
  for (const sync of ['all', 'nothing-clear', 'nothing-preserve', { where: 'x = 1' }]) {
    expectError(model({
      A: { attributes: { x: 'integer' }, associations: { d: 'D' }, sync },
      D: { attributes: {}, sync: 'never' },
    }), 'A', 'never-reference', /A is synced .* 'd' points to D, which is never synced/);
  }
  // device-only data may reference device-only or synced data
  assert.equal(validateModel(model({
    D: { attributes: {}, associations: { e: 'E', a: 'A' }, sync: 'never' },
    E: { attributes: {}, sync: 'never' },
    A: { attributes: {} },
  })).ok, true);
});

test('where_that_does_not_parse_should_be_an_error_naming_the_entity', () => {
  const attrs = { status: 'string', n: 'integer' };
  for (const where of ["status = 'open", 'status =', 'status == 1', '(status = 1', 'status = 1)', 'status like 1',
    'status = 1 and', 'status', '1 = 1', 'status in ()', 'status in (1,', 'status is 1', 'n = 1 ;', '$user.', '#']) {
    const hit = expectError(model({ V: { attributes: attrs, sync: { where } } }), 'V', 'where', /does not parse|compares two constants|expected/);
    assert.match(hit.message, /^entity V: the filter/);
  }
});

test('where_naming_unknown_attributes_should_be_an_error', () => {
  expectError(model({ V: { attributes: { status: 'string' }, sync: { where: "state = 'x'" } } }), 'V', 'where', /names 'state'.*known: id, status/);
  expectError(model({ V: { attributes: {}, sync: { where: 'owner = $user' } } }), 'V', 'where', /owner/);
  // associations, id and keywords in any case are fine
  const r = validateModel(model({
    C: { attributes: {} },
    V: { attributes: { status: 'string', done: 'boolean' }, associations: { customer: 'C' },
      sync: { where: "customer = $user.customer AND id != 'x' Or NOT done OR status IS NOT NULL" } },
  }));
  assert.deepEqual(r.errors, []);
});

test('every_error_should_name_entity_rule_and_message', () => {
  const r = validateModel(model({ A: { attributes: { x: 'nope' }, associations: { d: 'D' }, sync: 'bad' } }));
  assert.ok(r.errors.length >= 2);
  for (const e of r.errors) {
    assert.equal(typeof e.entity, 'string');
    assert.match(e.rule, /^[a-z-]+$/);
    assert.ok(e.message.length > 10);
  }
  assert.deepEqual(rules(model({ A: { attributes: {}, bogus: 1 } })), ['A unknown-key']);
});

// ---- compileWhere ---------------------------------------------------------------

const V = validateModel(model({
  C: { attributes: {} },
  V: {
    attributes: { status: 'string', n: 'integer', credit: 'decimal', done: 'boolean', owner: 'string' },
    associations: { customer: 'C' },
  },
})).model.entities.V;

const ROWS = [
  { id: 'a', status: 'open', n: 1, credit: '9.50', done: 0, owner: 'u1', customer: 'c1' },
  { id: 'b', status: 'archived', n: 2, credit: '10.00', done: 1, owner: 'u2', customer: 'c2' },
  { id: 'c', status: null, n: null, credit: null, done: null, owner: null, customer: null },
  { id: 'd', status: "O'Brien", n: 10, credit: '100', done: 1, owner: 'u1', customer: 'c1' },
];

let vdb;
after(() => vdb?.close());
async function matching(where, user = {}) {
  if (!vdb) {
    vdb = await open({ name: 'where', storage: 'memory' });
    await vdb.exec('CREATE TABLE "V"(id TEXT PRIMARY KEY, status TEXT, n INTEGER, credit TEXT, done INTEGER, owner TEXT, customer TEXT)');
    for (const r of ROWS) await vdb.exec('INSERT INTO "V" VALUES (?, ?, ?, ?, ?, ?, ?)', Object.values(r));
  }
  const { sql, params } = compileWhere(V, where)(user);
  const rows = await vdb.query(`SELECT id, (${sql}) AS m FROM "V" WHERE ${sql} ORDER BY id`, [...params, ...params]);
  for (const r of rows) assert.equal(r.m, 1, 'a condition is 0 or 1, never NULL');
  return rows.map((r) => r.id).join('');
}

test('compile_where_should_bind_every_literal_and_quote_every_column', () => {
  const { sql, params } = compileWhere(V, "status = 'x''); DROP TABLE V; --' and n >= 3 and done = true")({});
  assert.deepEqual(params, ["x'); DROP TABLE V; --", 3, 1]);
  assert.ok(!sql.includes('DROP'), sql);
  assert.ok(!/\b3\b/.test(sql), 'numbers are bound too');
  assert.match(sql, /"status"/);
  assert.match(sql, /"n"/);
});

test('where_should_filter_with_comparisons_and_logic', async () => {
  assert.equal(await matching("status = 'open'"), 'a');
  assert.equal(await matching("status = 'O''Brien'"), 'd');
  assert.equal(await matching('n > 1'), 'bd');
  assert.equal(await matching('n >= 1 and n <= 2'), 'ab');
  assert.equal(await matching('n < 2 or n > 5'), 'ad');
  assert.equal(await matching('not (n < 2 or n > 5)'), 'bc');
  assert.equal(await matching("status in ('open', 'archived')"), 'ab');
  assert.equal(await matching("status not in ('open', 'archived')"), 'cd');
  assert.equal(await matching('done'), 'bd');
  assert.equal(await matching('not done'), 'ac');
  assert.equal(await matching('done = false'), 'a');
  assert.equal(await matching('true'), 'abcd');
  assert.equal(await matching("customer = 'c1'"), 'ad');
  assert.equal(await matching("id = 'c' or id = 'b'"), 'bc');
  assert.equal(await matching('n = -1 or n > -1'), 'abd');
});

test('where_should_treat_null_as_documented', async () => {
  // != is true when exactly one side is null; other comparisons with null are false
  assert.equal(await matching("status != 'archived'"), 'acd');
  assert.equal(await matching("status <> 'archived'"), 'acd');
  assert.equal(await matching('n < 100'), 'abd');
  assert.equal(await matching('status is null'), 'c');
  assert.equal(await matching('status is not null'), 'abd');
  assert.equal(await matching('status = null'), 'c');
  assert.equal(await matching('status != null'), 'abd');
});

test('where_should_compare_decimals_as_numbers', async () => {
  assert.equal(await matching('credit > 9.6'), 'bd');
  assert.equal(await matching("credit = '10'"), 'b');
  assert.equal(await matching('credit in (100, 9.5)'), 'ad');
});

test('where_should_take_user_values_and_treat_missing_fields_as_null', async () => {
  assert.equal(await matching('owner = $user.id', { id: 'u1' }), 'ad');
  assert.equal(await matching('owner = $user', { id: 'u2' }), 'b');
  assert.equal(await matching('owner = $user.id', {}), '');
  assert.equal(await matching('owner = $user.id', null), '');
  assert.equal(await matching('owner = $user.id', { id: { nested: 1 } }), '');
  assert.equal(await matching('n >= $user.level', { level: 2 }), 'bd');
  assert.equal(await matching('done = $user.flag', { flag: true }), 'bd');
  assert.equal(await matching('customer in $user.customers', { customers: ['c2', 'c1'] }), 'abd');
  assert.equal(await matching('customer in $user.customers', { customers: [] }), '');
  assert.equal(await matching('customer not in $user.customers', { customers: ['c1'] }), 'bc');
  assert.equal(await matching('customer in $user.customers', { customers: 'c2' }), 'b');
  assert.equal(await matching("$user.role = 'admin' or owner = $user.id", { role: 'admin' }), 'abcd');
  assert.equal(await matching("$user.role = 'admin' or owner = $user.id", { role: 'field', id: 'u2' }), 'b');
});

// ---- ferry check ----------------------------------------------------------------

const dir = tempDir('model');
function ferry(...args) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin/ferry.js'), ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
function file(name, text) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, typeof text === 'string' ? text : JSON.stringify(text));
  return p;
}

test('ferry_check_should_exit_0_and_summarize_a_valid_model', () => {
  const r = ferry('check', path.join(root, 'server/demo-model.json'));
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), 'model ok: 6 entities (version 5)');
});

test('ferry_check_should_exit_1_and_print_entity_rule_message_per_error', () => {
  const p = file('bad.json', model({
    Visit: { attributes: { note: 'text' }, associations: { d: 'Draft' }, sync: { where: 'note = ' } },
    Draft: { attributes: {}, sync: 'never' },
  }));
  const r = ferry('check', p);
  assert.equal(r.code, 1);
  const lines = r.out.trim().split('\n');
  assert.equal(lines.length, 3, r.out);
  assert.match(r.out, /^Visit: attribute-type: .*attribute 'note'/m);
  assert.match(r.out, /^Visit: never-reference: /m);
  assert.match(r.out, /^Visit: where: /m);
  for (const l of lines) assert.match(l, /^[^:]+: [a-z-]+: .+/);
});

test('ferry_check_should_exit_1_with_a_clear_message_for_bad_json_or_a_missing_file', () => {
  const r = ferry('check', file('broken.json', '{"version": "1", "entities": {'));
  assert.equal(r.code, 1);
  assert.match(r.err, /broken\.json is not valid JSON/);
  const m = ferry('check', path.join(dir, 'missing.json'));
  assert.equal(m.code, 1);
  assert.match(m.err, /cannot read .*missing\.json: no such file/);
});

test('ferry_should_exit_2_with_usage_for_unknown_or_missing_commands', () => {
  for (const args of [['frobnicate'], [], ['check'], ['check', 'a.json', 'b.json']]) {
    const r = ferry(...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, /usage: ferry check <model\.json>/);
  }
  assert.equal(ferry('help').code, 0);
});

test('ferry_check_previous_should_warn_about_changes_that_need_care', () => {
  const v1 = file('v1.json', { version: '1', entities: {
    Item: { attributes: { n: 'integer', s: 'string', gone: 'string' }, sync: 'all' },
    Old: { attributes: { x: 'string' }, sync: 'all' },
    Same: { attributes: { x: 'string' }, sync: 'all' },
  } });
  const v2 = file('v2.json', { version: '2', entities: {
    Item: { attributes: { n: 'string', s: 'integer' }, sync: { where: "s != 0" } },
    Same: { attributes: { x: 'string' }, sync: 'all' },
  } });
  const r = ferry('check', v2, '--previous', v1);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^warning: Item: attribute-type: 'n' changes from integer to string: every stored value converts/m);
  assert.match(r.out, /^warning: Item: attribute-type: 's' changes from string to integer: stored values that are not valid integer values are sent as null/m);
  assert.match(r.out, /^warning: Item: attribute-removed: 'gone'/m);
  assert.match(r.out, /^warning: Item: sync-mode: /m);
  assert.match(r.out, /^warning: Old: entity-removed: /m);
  assert.doesNotMatch(r.out, /Same:/);
  assert.match(r.out, /5 changes from version 1 need care/);
  const unchangedVersion = ferry('check', file('v1b.json', { version: '1', entities: { Same: { attributes: { x: 'string' }, sync: 'all' } } }), '--previous', v1);
  assert.match(unchangedVersion.out, /version: the model changed but its version is still "1"/);
  assert.equal(ferry('check', v2, '--previous').code, 2);
});

test('an_entity_should_say_when_devices_fetch_its_files', () => {
  const base = { attributes: { doc: 'file' }, sync: 'all' };
  for (const files of ['eager', 'lazy']) {
    const r = validateModel({ version: '1', entities: { Scan: { ...base, files } } });
    assert.equal(r.ok, true, files);
    assert.equal(r.model.entities.Scan.files, files);
  }
  assert.equal(validateModel({ version: '1', entities: { Scan: base } }).model.entities.Scan.files, undefined, 'eager unless said');
  const bad = validateModel({ version: '1', entities: { Scan: { ...base, files: 'sometimes' } } });
  assert.equal(bad.ok, false);
  assert.deepEqual(bad.errors.map((e) => e.rule), ['files']);
});
