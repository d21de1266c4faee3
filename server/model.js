// The sync model: validation (the rules a model must follow to work offline,
// Mendix offline-profile style) and the `where` filter compiler.
//
// validateModel(json) -> { ok, errors: [{ entity, rule, message }], model }
// compileWhere(entity, whereText) -> (user) => ({ sql, params })
//
// `entity` in an error is the entity's name, or '(model)' for the model as a
// whole. `model` is the normalized model (null when the input is not an
// object): every entity has attributes, associations, sync and conflict.

export const ATTRIBUTE_TYPES = Object.freeze(['string', 'integer', 'decimal', 'boolean', 'datetime', 'binary', 'file']);
export const SYNC_MODES = Object.freeze(['all', 'nothing-clear', 'nothing-preserve', 'never']);
export const CONFLICT_POLICIES = Object.freeze(['last-write-wins', 'server-wins', 'client-wins']);
export const DEFAULT_CONFLICT = 'last-write-wins';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const ENTITY_KEYS = new Set(['attributes', 'associations', 'sync', 'conflict', 'files']);
export const FILE_DOWNLOADS = Object.freeze(['eager', 'lazy']);
const MODEL = '(model)';

/** Whether `name` is a plain identifier ferry accepts for an entity, attribute or association. */
export function isIdentifier(name) {
  return typeof name === 'string' && IDENT.test(name) && !/^(_ferry|sqlite_)/i.test(name) && name.toLowerCase() !== 'id';
}

function nameProblem(name, what) {
  if (typeof name !== 'string' || !IDENT.test(name)) {
    return ['name', `${what} name ${JSON.stringify(name)} is not a plain identifier (letters, digits and '_', not starting with a digit, at most 64 characters)`];
  }
  if (/^_ferry/i.test(name)) return ['reserved-name', `${what} name '${name}' starts with '_ferry', which ferry reserves for its own tables and columns`];
  if (/^sqlite_/i.test(name)) return ['reserved-name', `${what} name '${name}' starts with 'sqlite_', which SQLite reserves`];
  if (name.toLowerCase() === 'id') return ['reserved-name', `${what} name '${name}' is reserved: every object already has 'id'`];
  return null;
}

function isPlainObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** True when the entity's sync mode sends its data to and from the server. */
export function isSynced(entity) { return entity.sync !== 'never'; }
/** True when the server sends the entity's objects to clients (all, where). */
export function isDownloaded(entity) { return entity.sync === 'all' || isPlainObject(entity.sync); }

/**
 * Validates a model (a parsed JSON value) against every rule.
 * @returns {{ ok: boolean, errors: {entity: string, rule: string, message: string}[], model: object|null }}
 */
export function validateModel(json) {
  const errors = [];
  const err = (entity, rule, message) => errors.push({ entity, rule, message });
  if (!isPlainObject(json)) {
    err(MODEL, 'model', `the model must be a JSON object with "version" and "entities", not ${describe(json)}`);
    return { ok: false, errors, model: null };
  }
  for (const key of Object.keys(json)) {
    if (key !== 'version' && key !== 'entities') err(MODEL, 'unknown-key', `the model has an unknown key '${key}' (expected "version" and "entities")`);
  }
  if (typeof json.version !== 'string' || json.version.trim() === '') {
    err(MODEL, 'version', `the model's "version" must be a non-empty string (got ${json.version === undefined ? 'nothing' : describe(json.version)}); change it whenever the model changes`);
  }
  const model = { version: typeof json.version === 'string' ? json.version : String(json.version ?? ''), entities: {} };
  if (!isPlainObject(json.entities)) {
    err(MODEL, 'entities', `the model's "entities" must be an object of entity definitions (got ${json.entities === undefined ? 'nothing' : describe(json.entities)})`);
    return { ok: false, errors, model };
  }

  // Pass 1: names, shapes, types, modes, policies.
  const lowerEntities = new Map();
  for (const [name, def] of Object.entries(json.entities)) {
    const p = nameProblem(name, 'entity');
    if (p) err(name, p[0], `${p[1]}`);
    const lower = name.toLowerCase();
    if (lowerEntities.has(lower)) {
      err(name, 'duplicate-name', `entity ${name} has the same name as entity ${lowerEntities.get(lower)} (names are case-insensitive, as in SQLite)`);
    } else {
      lowerEntities.set(lower, name);
    }
    const entity = { attributes: {}, associations: {}, sync: 'all', conflict: DEFAULT_CONFLICT };
    model.entities[name] = entity;
    if (!isPlainObject(def)) {
      err(name, 'entity', `entity ${name} must be an object with "attributes" (and optionally "associations", "sync", "conflict"), not ${describe(def)}`);
      continue;
    }
    for (const key of Object.keys(def)) {
      if (!ENTITY_KEYS.has(key)) err(name, 'unknown-key', `entity ${name} has an unknown key '${key}' (expected attributes, associations, sync, conflict, files)`);
    }

    const seen = new Map();   // lower-case member name -> 'attribute x' / 'association y'
    const member = (kind, m) => {
      const p2 = nameProblem(m, kind);
      if (p2) err(name, p2[0], `entity ${name}: ${p2[1]}`);
      const l = typeof m === 'string' ? m.toLowerCase() : m;
      if (seen.has(l)) {
        err(name, 'duplicate-name', `entity ${name}: ${kind} '${m}' has the same name as ${seen.get(l)} (column names are case-insensitive in SQLite)`);
      } else {
        seen.set(l, `${kind} '${m}'`);
      }
    };

    if (def.attributes !== undefined && !isPlainObject(def.attributes)) {
      err(name, 'attributes', `entity ${name}: "attributes" must be an object of name: type, not ${describe(def.attributes)}`);
    } else {
      for (const [attr, spec] of Object.entries(def.attributes || {})) {
        member('attribute', attr);
        const type = isPlainObject(spec) ? spec.type : spec;
        if (!ATTRIBUTE_TYPES.includes(type)) {
          err(name, 'attribute-type', `entity ${name}: attribute '${attr}' has type ${describe(type)}; use one of ${ATTRIBUTE_TYPES.join(', ')}`);
        } else {
          entity.attributes[attr] = type;
        }
      }
    }

    if (def.associations !== undefined && !isPlainObject(def.associations)) {
      err(name, 'associations', `entity ${name}: "associations" must be an object of name: target entity, not ${describe(def.associations)}`);
    } else {
      for (const [assoc, spec] of Object.entries(def.associations || {})) {
        member('association', assoc);
        const target = isPlainObject(spec) ? spec.target ?? spec.entity : spec;
        if (typeof target !== 'string' || target === '') {
          err(name, 'association-target', `entity ${name}: association '${assoc}' must name its target entity, not ${describe(target)}`);
        } else {
          entity.associations[assoc] = target;
        }
      }
    }

    if (def.sync !== undefined) {
      if (typeof def.sync === 'string' && SYNC_MODES.includes(def.sync)) {
        entity.sync = def.sync;
      } else if (isPlainObject(def.sync) && Object.keys(def.sync).length === 1 && typeof def.sync.where === 'string' && def.sync.where.trim() !== '') {
        entity.sync = { where: def.sync.where };
      } else if (isPlainObject(def.sync) && 'where' in def.sync) {
        err(name, 'sync-mode', `entity ${name}: sync { "where": … } needs a non-empty filter string and nothing else (got ${JSON.stringify(def.sync)})`);
      } else {
        err(name, 'sync-mode', `entity ${name}: sync mode ${describe(def.sync)} is unknown; use "all", { "where": "…" }, "nothing-clear", "nothing-preserve" or "never"`);
      }
    }
    if (def.conflict !== undefined) {
      if (CONFLICT_POLICIES.includes(def.conflict)) entity.conflict = def.conflict;
      else err(name, 'conflict', `entity ${name}: conflict policy ${describe(def.conflict)} is unknown; use ${CONFLICT_POLICIES.join(', ')}`);
    }
    // When devices fetch the bytes of the entity's file attributes: at sync ("eager", the default) or on first use.
    if (def.files !== undefined) {
      if (FILE_DOWNLOADS.includes(def.files)) entity.files = def.files;
      else err(name, 'files', `entity ${name}: files ${describe(def.files)} is unknown; use "eager" (download at sync) or "lazy" (on first db.files.get)`);
    }
  }

  // Pass 2: references between entities, and filters.
  for (const [name, entity] of Object.entries(model.entities)) {
    for (const [assoc, target] of Object.entries(entity.associations)) {
      const t = model.entities[target];
      if (!Object.hasOwn(model.entities, target)) {
        const near = lowerEntities.get(target.toLowerCase());
        err(name, 'association-target', `entity ${name}: association '${assoc}' points to '${target}', which is not an entity of the model${near ? ` (did you mean ${near}?)` : ''}`);
      } else if (isSynced(entity) && t.sync === 'never') {
        err(name, 'never-reference', `entity ${name} is synced (${syncLabel(entity.sync)}) but its association '${assoc}' points to ${target}, which is never synced: the server could not resolve it; make ${target} synced or ${name} never synced`);
      }
    }
    if (isPlainObject(entity.sync)) {
      try {
        parseWhere(entity.sync.where, entity);
      } catch (e) {
        if (!(e instanceof WhereError)) throw e;
        err(name, 'where', `entity ${name}: the filter ${JSON.stringify(entity.sync.where)} ${e.message}`);
      }
    }
  }
  return { ok: errors.length === 0, errors, model };
}

function syncLabel(sync) { return typeof sync === 'string' ? `'${sync}'` : 'where'; }

/** A one-line summary of errors: "Entity: rule: message; …". */
export function formatErrors(errors) {
  return errors.map((e) => `${e.entity}: ${e.rule}: ${e.message}`).join('\n');
}

// ---- where filters ----------------------------------------------------------
//
//   expr       := and ('or' and)*
//   and        := unary ('and' unary)*
//   unary      := 'not' unary | '(' expr ')' | condition
//   condition  := operand op operand | operand 'is' ['not'] 'null'
//               | operand ['not'] 'in' '(' operand (',' operand)* ')'
//               | operand ['not'] 'in' $user.field          (the field holds an array)
//               | boolean-attribute | 'true' | 'false'
//   op         := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
//   operand    := name | 'string' | number | true | false | null | $user | $user.field
//
// Names are the entity's attributes, associations and `id`. `$user` is the
// user's `id`. Every condition is two-valued (never SQL NULL): a comparison
// with null is false, except `!=`/`<>`, which is true when exactly one side
// is null, and `= null` / `!= null`, which mean `is null` / `is not null`.

export class WhereError extends Error {}

const KEYWORDS = new Set(['and', 'or', 'not', 'is', 'null', 'in', 'true', 'false']);

function tokenize(text) {
  const tokens = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (/\s/.test(c)) { i++; continue; }
    const at = i;
    if (c === "'") {
      let s = '';
      i++;
      for (;;) {
        if (i >= n) throw new WhereError(`does not parse: the string starting at position ${at + 1} is not closed with '`);
        if (text[i] === "'") {
          if (text[i + 1] === "'") { s += "'"; i += 2; continue; }
          i++;
          break;
        }
        s += text[i++];
      }
      tokens.push({ t: 'str', v: s, at });
      continue;
    }
    const num = /^-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(text.slice(i));
    if (num && (c !== '-' || !tokens.length || !['name', 'str', 'num', 'user', ')'].includes(tokens.at(-1).t))) {
      const v = Number(num[0]);
      if (!Number.isFinite(v)) throw new WhereError(`does not parse: the number ${num[0]} at position ${at + 1} is out of range`);
      tokens.push({ t: 'num', v, at });
      i += num[0].length;
      continue;
    }
    const user = /^\$user(?:\.([A-Za-z_][A-Za-z0-9_]*))?/.exec(text.slice(i));
    if (user) {
      tokens.push({ t: 'user', v: user[1] ?? 'id', at });
      i += user[0].length;
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (word) {
      const lw = word[0].toLowerCase();
      tokens.push(KEYWORDS.has(lw) ? { t: lw, at } : { t: 'name', v: word[0], at });
      i += word[0].length;
      continue;
    }
    const op = /^(?:!=|<>|<=|>=|=|<|>)/.exec(text.slice(i));
    if (op) { tokens.push({ t: 'op', v: op[0] === '<>' ? '!=' : op[0], at }); i += op[0].length; continue; }
    if (c === '(' || c === ')' || c === ',') { tokens.push({ t: c, at }); i++; continue; }
    throw new WhereError(`does not parse: unexpected character ${JSON.stringify(c)} at position ${at + 1}`);
  }
  tokens.push({ t: 'end', at: n });
  return tokens;
}

function tokenText(tok) {
  switch (tok.t) {
    case 'end': return 'the end';
    case 'str': return `'${tok.v}'`;
    case 'num': return String(tok.v);
    case 'name': return `'${tok.v}'`;
    case 'user': return `$user.${tok.v}`;
    case 'op': return `'${tok.v}'`;
    default: return `'${tok.t}'`;
  }
}

/**
 * Parses a filter into a tree, checking the names against the entity
 * (normalized form: { attributes, associations }). Throws WhereError.
 */
export function parseWhere(text, entity) {
  if (typeof text !== 'string' || text.trim() === '') throw new WhereError('is empty');
  const tokens = tokenize(text);
  let p = 0;
  const peek = () => tokens[p];
  const next = () => tokens[p++];
  const fail = (what) => {
    const tok = peek();
    throw new WhereError(`does not parse: expected ${what} at position ${tok.at + 1}, found ${tokenText(tok)}`);
  };
  const expect = (t, what) => { if (peek().t !== t) fail(what); return next(); };

  const typeOf = (name) => {
    if (name === 'id') return 'id';
    if (Object.hasOwn(entity.attributes, name)) return entity.attributes[name];
    if (Object.hasOwn(entity.associations, name)) return 'association';
    return null;
  };

  function operand() {
    const tok = peek();
    switch (tok.t) {
      case 'name': {
        next();
        const type = typeOf(tok.v);
        if (!type) {
          const known = ['id', ...Object.keys(entity.attributes), ...Object.keys(entity.associations)];
          throw new WhereError(`names '${tok.v}', which is not an attribute or association of the entity (known: ${known.join(', ')})`);
        }
        return { k: 'col', name: tok.v, type };
      }
      case 'str': next(); return { k: 'lit', v: tok.v };
      case 'num': next(); return { k: 'lit', v: tok.v };
      case 'true': next(); return { k: 'lit', v: 1, bool: true };
      case 'false': next(); return { k: 'lit', v: 0, bool: true };
      case 'null': next(); return { k: 'null' };
      case 'user': next(); return { k: 'user', field: tok.v };
      default: return fail('a name, a value or $user');
    }
  }

  function condition() {
    const left = operand();
    const tok = peek();
    if (tok.t === 'op') {
      next();
      const right = operand();
      if (left.k !== 'col' && right.k !== 'col' && left.k !== 'user' && right.k !== 'user') {
        throw new WhereError(`compares two constants at position ${tok.at + 1}; one side must be an attribute, an association or $user`);
      }
      return { k: 'cmp', op: tok.v, left, right };
    }
    if (tok.t === 'is') {
      next();
      let negate = false;
      if (peek().t === 'not') { next(); negate = true; }
      expect('null', "'null' after 'is'");
      return { k: 'isnull', negate, arg: left };
    }
    if (tok.t === 'in' || (tok.t === 'not' && tokens[p + 1]?.t === 'in')) {
      let negate = false;
      if (tok.t === 'not') { next(); negate = true; }
      next();
      if (peek().t === 'user') {
        return { k: 'in', negate, arg: left, userList: next().v };
      }
      expect('(', "'(' or $user.field after 'in'");
      const list = [operand()];
      while (peek().t === ',') { next(); list.push(operand()); }
      expect(')', "',' or ')' in the list after 'in'");
      return { k: 'in', negate, arg: left, list };
    }
    if (left.k === 'col' && left.type === 'boolean') return { k: 'truth', arg: left };
    if (left.k === 'lit' && left.bool) return { k: 'const', v: left.v };
    return fail("a comparison (=, !=, <, <=, >, >=, is null, in) after the operand");
  }

  function unary() {
    const tok = peek();
    if (tok.t === 'not') { next(); return { k: 'not', arg: unary() }; }
    if (tok.t === '(') {
      next();
      const e = expr();
      expect(')', "')'");
      return e;
    }
    return condition();
  }

  function and() {
    let left = unary();
    while (peek().t === 'and') { next(); left = { k: 'and', left, right: unary() }; }
    return left;
  }

  function expr() {
    let left = and();
    while (peek().t === 'or') { next(); left = { k: 'or', left, right: and() }; }
    return left;
  }

  const tree = expr();
  if (peek().t !== 'end') fail("'and', 'or' or the end of the filter");
  return tree;
}

/** A user's field as a bindable value: strings, numbers, booleans (1/0); else null. */
function userValue(user, field) {
  const v = user && typeof user === 'object' ? user[field] : undefined;
  if (typeof v === 'string' || typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

function quoteIdent(name) { return `"${name.replace(/"/g, '""')}"`; }

/**
 * What a filter's SQL spells differently per database: SQLite's (the
 * default) and PostgreSQL's, where a comparison is a boolean, not 0/1.
 */
export const SQLITE_WHERE = { TRUE: '1', FALSE: '0', distinct: 'IS NOT', real: 'REAL' };
export const POSTGRES_WHERE = { TRUE: 'TRUE', FALSE: 'FALSE', distinct: 'IS DISTINCT FROM', real: 'DOUBLE PRECISION' };

/**
 * Compiles the `where` filter of `entity` (normalized entity object) into a
 * function of the user returning a SQL boolean expression (always 0 or 1)
 * over the entity table's quoted columns, with `?` parameters.
 * Throws WhereError when the filter does not parse or names unknown attributes.
 */
export function compileWhere(entity, whereText, dialect = SQLITE_WHERE) {
  const tree = parseWhere(whereText, entity);
  const { TRUE, FALSE, distinct, real } = dialect;
  return (user) => {
    const params = [];
    const numeric = (node) => node.k === 'col' && node.type === 'decimal';

    // An operand as SQL; `cast` compares decimals numerically.
    const sqlOf = (node, cast) => {
      let s;
      switch (node.k) {
        case 'col': s = quoteIdent(node.name); break;
        case 'lit': params.push(node.v); s = '?'; break;
        case 'user': params.push(userValue(user, node.field)); s = '?'; break;
        case 'null': return 'NULL';
      }
      return cast ? `CAST(${s} AS ${real})` : s;
    };

    const gen = (node) => {
      switch (node.k) {
        case 'or': return `(${gen(node.left)} OR ${gen(node.right)})`;
        case 'and': return `(${gen(node.left)} AND ${gen(node.right)})`;
        case 'not': return `(NOT ${gen(node.arg)})`;
        case 'const': return node.v ? TRUE : FALSE;
        case 'truth': return `coalesce(${quoteIdent(node.arg.name)} <> 0, ${FALSE})`;
        case 'isnull': {
          const a = sqlOf(node.arg, false);
          return `(${a} IS ${node.negate ? 'NOT ' : ''}NULL)`;
        }
        case 'cmp': {
          const { op, left, right } = node;
          if (left.k === 'null' || right.k === 'null') {
            if (op !== '=' && op !== '!=') return FALSE;
            const other = left.k === 'null' ? right : left;
            return `(${sqlOf(other, false)} IS ${op === '!=' ? 'NOT ' : ''}NULL)`;
          }
          const cast = numeric(left) || numeric(right);
          const l = sqlOf(left, cast);
          const r = sqlOf(right, cast);
          if (op === '!=') return `(${l} ${distinct} ${r})`;
          return `coalesce(${l} ${op} ${r}, ${FALSE})`;
        }
        case 'in': {
          const cast = numeric(node.arg);
          const a = sqlOf(node.arg, cast);
          let items;
          if (node.userList !== undefined) {
            const raw = user && typeof user === 'object' ? user[node.userList] : undefined;
            const values = (Array.isArray(raw) ? raw : [raw]).map((v) => userValue({ v }, 'v')).filter((v) => v !== null);
            if (values.length === 0) return node.negate ? TRUE : FALSE;
            items = values.map((v) => { params.push(v); return cast ? `CAST(? AS ${real})` : '?'; });
          } else {
            items = node.list.map((x) => sqlOf(x, cast));
          }
          const inSql = `coalesce(${a} IN (${items.join(', ')}), ${FALSE})`;
          return node.negate ? `(NOT ${inSql})` : inSql;
        }
      }
      throw new Error(`unknown filter node ${node.k}`);
    };

    // gen() pushes parameters in the order their '?' appear in the text.
    const sql = gen(tree);
    return { sql, params };
  };
}

// Type changes whose every stored value converts to the new type.
const LOSSLESS = new Set(['integer>string', 'integer>decimal', 'boolean>integer', 'boolean>string', 'decimal>string',
  'datetime>string', 'association>string', 'string>association', 'file>binary', 'binary>file']);

/**
 * Compares a new model with the one devices have now and lists what needs
 * care (both already validated). Each warning is { entity, rule, message }.
 */
export function compareModels(prev, next) {
  const out = [];
  const warn = (entity, rule, message) => out.push({ entity, rule, message });
  const same = JSON.stringify(prev) === JSON.stringify(next);
  if (!same && prev.version === next.version) {
    warn(MODEL, 'version', `the model changed but its version is still ${JSON.stringify(next.version)}: devices only migrate when the version changes`);
  }
  const members = (e) => ({ ...e.attributes, ...Object.fromEntries(Object.keys(e.associations || {}).map((n) => [n, 'association'])) });
  for (const [name, was] of Object.entries(prev.entities)) {
    const now = next.entities[name];
    if (!now) {
      warn(name, 'entity-removed', 'devices drop the table once none of its changes is pending; changes still pending are rejected by the server (unknown entity)');
      continue;
    }
    const a = members(was);
    const b = members(now);
    for (const [attr, type] of Object.entries(a)) {
      if (!(attr in b)) {
        warn(name, 'attribute-removed', `'${attr}' is gone: pending changes to it are ignored by the server (the rest of each change applies); the server keeps its stored values`);
      } else if (b[attr] !== type) {
        const lossless = LOSSLESS.has(`${type}>${b[attr]}`);
        warn(name, 'attribute-type', `'${attr}' changes from ${type} to ${b[attr]}: ${lossless
          ? 'every stored value converts; devices rebuild the column'
          : `stored values that are not valid ${b[attr]} values are sent as null (the server keeps them); devices rebuild the column`}`);
      }
    }
    const mode = (e) => (isPlainObject(e.sync) ? `where ${e.sync.where}` : e.sync);
    if (mode(was) !== mode(now)) {
      const stops = isDownloaded(was) && !isDownloaded(now);
      warn(name, 'sync-mode', `the sync mode changes from ${JSON.stringify(mode(was))} to ${JSON.stringify(mode(now))}: ${stops
        ? 'devices stop downloading it (rows already there stay)'
        : 'devices pull it again from the start'}`);
    }
    if ((was.conflict || 'last-write-wins') !== (now.conflict || 'last-write-wins')) {
      warn(name, 'conflict', `the conflict policy changes from ${was.conflict || 'last-write-wins'} to ${now.conflict || 'last-write-wins'}: pending changes are judged by the new one`);
    }
  }
  return out;
}
