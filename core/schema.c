#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "buf.h"
#include "ferry.h"
#include "schema.h"

static const char bookkeeping[] =
  "CREATE TABLE IF NOT EXISTS _ferry_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
  "CREATE TABLE IF NOT EXISTS _ferry_outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  entity TEXT NOT NULL, oid TEXT NOT NULL, op TEXT NOT NULL, attrs TEXT NOT NULL, ts INTEGER NOT NULL,"
  "  mid INTEGER);"
  "CREATE INDEX IF NOT EXISTS _ferry_outbox_obj ON _ferry_outbox(entity, oid, seq);"
  "CREATE TABLE IF NOT EXISTS _ferry_base(entity TEXT NOT NULL, oid TEXT NOT NULL, version INTEGER NOT NULL,"
  "  PRIMARY KEY(entity, oid)) WITHOUT ROWID;"
  "CREATE TABLE IF NOT EXISTS _ferry_cursor(entity TEXT PRIMARY KEY, cursor INTEGER NOT NULL) WITHOUT ROWID;"
  "CREATE TABLE IF NOT EXISTS _ferry_errors(entity TEXT NOT NULL, oid TEXT NOT NULL, kind TEXT NOT NULL,"
  "  op TEXT, reason TEXT, attrs TEXT, local TEXT, server TEXT, at INTEGER NOT NULL, PRIMARY KEY(entity, oid)) WITHOUT ROWID;"
  "CREATE TABLE IF NOT EXISTS _ferry_attr_base(entity TEXT NOT NULL, oid TEXT NOT NULL, attr TEXT NOT NULL, version INTEGER NOT NULL,"
  "  PRIMARY KEY(entity, oid, attr)) WITHOUT ROWID;"
  "CREATE TABLE IF NOT EXISTS _ferry_refresh(entity TEXT NOT NULL, oid TEXT NOT NULL, PRIMARY KEY(entity, oid)) WITHOUT ROWID;"
  /* The upload queue of files (core/files.h): one row per hash whose bytes
   * the server may not have yet, written by the capture triggers in the
   * transaction that set the reference; code is set when it failed for a
   * reason other than the network. */
  "CREATE TABLE IF NOT EXISTS _ferry_files(hash TEXT PRIMARY KEY, size INTEGER NOT NULL, entity TEXT NOT NULL,"
  "  oid TEXT NOT NULL, attr TEXT NOT NULL, code TEXT, message TEXT, at INTEGER NOT NULL) WITHOUT ROWID;"
  "INSERT OR IGNORE INTO _ferry_meta VALUES ('client_id', 'c-' || lower(hex(randomblob(16))));"
  "INSERT OR IGNORE INTO _ferry_meta VALUES ('next_mid', 1);";

int ferry__schema_is_bookkeeping(const char *name) {
  static const char *const tables[] = { "_ferry_meta", "_ferry_outbox", "_ferry_base", "_ferry_cursor", "_ferry_errors", "_ferry_refresh", "_ferry_attr_base", "_ferry_files" };
  for (size_t i = 0; i < sizeof tables / sizeof *tables; i++)
    if (strcasecmp(name, tables[i]) == 0) return 1;
  return 0;
}

static int exec_err(sqlite3 *sq, const char *sql, char *err, size_t errlen) {
  char *msg = NULL;
  int rc = sqlite3_exec(sq, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return FERRY_SQL;
  }
  return FERRY_OK;
}

static int column_exists(sqlite3 *sq, const char *table, const char *col);

int ferry__schema_forget_client(sqlite3 *sq, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(sq, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_ferry_meta'", -1, &st, NULL);
  int found = rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) { snprintf(err, errlen, "%s", sqlite3_errmsg(sq)); return FERRY_SQL; }
  return found ? exec_err(sq, "DELETE FROM _ferry_meta WHERE key = 'client_id'", err, errlen) : FERRY_OK;
}

int ferry__schema_init(sqlite3 *sq, char *err, size_t errlen) {
  int rc = exec_err(sq, bookkeeping, err, errlen);
  /* Columns added after the first release. */
  if (rc == FERRY_OK && !column_exists(sq, "_ferry_errors", "version"))
    rc = exec_err(sq, "ALTER TABLE _ferry_errors ADD COLUMN version INTEGER NOT NULL DEFAULT 0;"
                      "ALTER TABLE _ferry_errors ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;", err, errlen);
  return rc;
}

static const char *column_type(ferry__type t) {
  switch (t) {
    case FT_INTEGER: case FT_BOOLEAN: return "INTEGER";
    case FT_BINARY: case FT_FILE: return "BLOB";
    default: return "TEXT";
  }
}

static int table_exists(sqlite3 *sq, const char *name) {
  sqlite3_stmt *st;
  int found = 0;
  if (sqlite3_prepare_v2(sq, "SELECT 1 FROM sqlite_schema WHERE type='table' AND name=? COLLATE NOCASE", -1, &st, NULL) != SQLITE_OK) return 0;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

static int column_exists(sqlite3 *sq, const char *table, const char *col) {
  sqlite3_stmt *st;
  int found = 0;
  if (sqlite3_prepare_v2(sq, "SELECT 1 FROM pragma_table_info(?) WHERE name=? COLLATE NOCASE", -1, &st, NULL) != SQLITE_OK) return 0;
  sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
  found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

static int has_pending(sqlite3 *sq, const char *entity) {
  sqlite3_stmt *st;
  int found = 0;
  if (sqlite3_prepare_v2(sq, "SELECT 1 FROM _ferry_outbox WHERE entity=? LIMIT 1", -1, &st, NULL) != SQLITE_OK) return 1;
  sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
  found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

/* Same name, type and target: an attribute whose stored values still fit. */
static int same_shape(const ferry__entity *a, const ferry__entity *b) {
  if (!a || !b || a->mode != b->mode || a->nattrs != b->nattrs) return 0;
  if ((a->where == NULL) != (b->where == NULL) || (a->where && strcmp(a->where, b->where))) return 0;
  for (int k = 0; k < a->nattrs; k++) {
    const ferry__attr *x = &a->attrs[k], *y = ferry__entity_attr(b, x->name);
    if (!y || x->type != y->type) return 0;
  }
  return 1;
}

/* The capture triggers of an entity are named _ferry_<kind>_<entity>. */
static const char *const trigger_kinds[] = { "i", "u", "k", "d", "ci", "cu", "f", "fu" };

int ferry__schema_is_capture_trigger(const char *name, const char *entity) {
  for (size_t i = 0; i < sizeof trigger_kinds / sizeof *trigger_kinds; i++) {
    char own[160];   /* names are at most 64 bytes */
    snprintf(own, sizeof own, "_ferry_%s_%s", trigger_kinds[i], entity);
    if (strcmp(name, own) == 0) return 1;
  }
  return 0;
}

static void drop_triggers(ferry__buf *b, const char *e) {
  for (size_t i = 0; i < sizeof trigger_kinds / sizeof *trigger_kinds; i++) {
    char sql[160];   /* names are at most 64 bytes */
    snprintf(sql, sizeof sql, "DROP TRIGGER IF EXISTS \"_ferry_%s_%s\";", trigger_kinds[i], e);
    ferry__buf_put(b, sql, strlen(sql));
  }
}

static void put(ferry__buf *b, const char *s) { ferry__buf_put(b, s, strlen(s)); }

/* A local write of a file reference queues its upload in the same
 * transaction (pulled references are written with capture off and are not
 * queued): _ferry_files keeps one row per hash, naming the object whose push
 * makes the server accept the bytes. */
static void create_file_triggers(ferry__buf *b, const ferry__entity *e) {
  int any = 0;
  for (int k = 0; k < e->nattrs; k++) if (e->attrs[k].type == FT_FILE) any = 1;
  if (!any) return;
  char part[1400];
  const char *n = e->name;
  for (int when = 0; when < 2; when++) {
    snprintf(part, sizeof part, "CREATE TRIGGER \"_ferry_f%s_%s\" AFTER %s ON \"%s\" WHEN ferry_capture() BEGIN ",
             when ? "u" : "", n, when ? "UPDATE" : "INSERT", n);
    put(b, part);
    for (int k = 0; k < e->nattrs; k++) {
      const char *a = e->attrs[k].name;
      if (e->attrs[k].type != FT_FILE) continue;
      char changed[200] = "";
      if (when) snprintf(changed, sizeof changed, " AND NEW.\"%s\" IS NOT OLD.\"%s\"", a, a);
      snprintf(part, sizeof part,
        "INSERT INTO _ferry_files(hash, size, entity, oid, attr, at) SELECT json_extract(NEW.\"%s\", '$.hash'), "
        "json_extract(NEW.\"%s\", '$.size'), '%s', NEW.id, '%s', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) "
        "WHERE NEW.\"%s\" IS NOT NULL%s ON CONFLICT(hash) DO UPDATE SET entity = excluded.entity, oid = excluded.oid, "
        "attr = excluded.attr, code = NULL, message = NULL, at = excluded.at;",
        a, a, n, a, a, changed);
      put(b, part);
    }
    put(b, "END;");
  }
}

/* The capture triggers: every local insert, update and delete leaves an
 * outbox row naming the object and the attributes it changed. */
static void create_triggers(ferry__buf *b, const ferry__entity *e) {
  char head[2400];
  const char *n = e->name;
  snprintf(head, sizeof head,
    "CREATE TRIGGER \"_ferry_i_%s\" AFTER INSERT ON \"%s\" WHEN ferry_capture() BEGIN "
    "INSERT INTO _ferry_outbox(entity, oid, op, attrs, ts) VALUES ('%s', NEW.id, 'upsert', '[\"*\"]', "
    "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END;"
    "CREATE TRIGGER \"_ferry_d_%s\" AFTER DELETE ON \"%s\" WHEN ferry_capture() BEGIN "
    "INSERT INTO _ferry_outbox(entity, oid, op, attrs, ts) VALUES ('%s', OLD.id, 'delete', '[]', "
    "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END;"
    "CREATE TRIGGER \"_ferry_k_%s\" AFTER UPDATE OF id ON \"%s\" WHEN ferry_capture() AND OLD.id IS NOT NEW.id BEGIN "
    "INSERT INTO _ferry_outbox(entity, oid, op, attrs, ts) VALUES ('%s', OLD.id, 'delete', '[]', "
    "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)), ('%s', NEW.id, 'upsert', '[\"*\"]', "
    "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END;",
    n, n, n, n, n, n, n, n, n, n);
  put(b, head);
  if (e->nattrs == 0) return;
  char part[400];
  /* Values that could not travel as written are refused at write time. */
  for (int when = 0; when < 2; when++) {
    snprintf(part, sizeof part, "CREATE TRIGGER \"_ferry_c%s_%s\" BEFORE %s ON \"%s\" WHEN ferry_capture() BEGIN SELECT ",
             when ? "u" : "i", n, when ? "UPDATE" : "INSERT", n);
    put(b, part);
    for (int k = 0; k < e->nattrs; k++) {
      snprintf(part, sizeof part, "%sferry_check('%s.%s', %d, NEW.\"%s\")", k ? ", " : "", n, e->attrs[k].name,
               (int)e->attrs[k].type, e->attrs[k].name);
      put(b, part);
    }
    put(b, "; END;");
  }
  snprintf(part, sizeof part,
    "CREATE TRIGGER \"_ferry_u_%s\" AFTER UPDATE ON \"%s\" WHEN ferry_capture() AND OLD.id IS NEW.id AND (", n, n);
  put(b, part);
  for (int k = 0; k < e->nattrs; k++) {
    snprintf(part, sizeof part, "%sOLD.\"%s\" IS NOT NEW.\"%s\"", k ? " OR " : "", e->attrs[k].name, e->attrs[k].name);
    put(b, part);
  }
  snprintf(part, sizeof part, ") BEGIN INSERT INTO _ferry_outbox(entity, oid, op, attrs, ts) VALUES ('%s', NEW.id, 'upsert', "
           "(SELECT json_group_array(n) FROM (", n);
  put(b, part);
  for (int k = 0; k < e->nattrs; k++) {
    snprintf(part, sizeof part, "%sSELECT '%s' AS n WHERE OLD.\"%s\" IS NOT NEW.\"%s\"",
             k ? " UNION ALL " : "", e->attrs[k].name, e->attrs[k].name, e->attrs[k].name);
    put(b, part);
  }
  put(b, ")), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END;");
}

/* 1 if an attribute's column was declared with another type than the model
 * now gives it: SQLite cannot change a column's type (its affinity would
 * turn the text "43" of a string attribute back into the integer 43). */
static int needs_rebuild(sqlite3 *sq, const ferry__entity *e) {
  sqlite3_stmt *st;
  int differs = 0;
  if (sqlite3_prepare_v2(sq, "SELECT type FROM pragma_table_info(?) WHERE name=? COLLATE NOCASE", -1, &st, NULL) != SQLITE_OK) return 0;
  for (int k = 0; k < e->nattrs && !differs; k++) {
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->attrs[k].name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && strcasecmp((const char *)sqlite3_column_text(st, 0), column_type(e->attrs[k].type)) != 0) differs = 1;
  }
  sqlite3_finalize(st);
  return differs;
}

/* Rebuilds an entity table with the model's column types, keeping every row
 * (values converted by the new affinity; numbers become text for text
 * columns), the columns the model no longer has, and the app's indexes and
 * triggers on it. The capture triggers are recreated by the caller. */
static void rebuild_table(sqlite3 *sq, ferry__buf *b, const ferry__entity *e) {
  char sql[600];
  const char *n = e->name;
  snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS \"_ferry_rebuild\"; CREATE TABLE \"_ferry_rebuild\"(id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16))))");
  put(b, sql);
  ferry__buf cols = {0}, vals = {0};
  put(&cols, "id");
  put(&vals, "id");
  for (int k = 0; k < e->nattrs; k++) {
    const char *a = e->attrs[k].name;
    const char *t = column_type(e->attrs[k].type);
    snprintf(sql, sizeof sql, ", \"%s\" %s", a, t);
    put(b, sql);
    if (!column_exists(sq, n, a)) continue;
    snprintf(sql, sizeof sql, ", \"%s\"", a);
    put(&cols, sql);
    if (strcmp(t, "TEXT") == 0) snprintf(sql, sizeof sql, ", CASE WHEN typeof(\"%s\") IN ('integer','real') THEN CAST(\"%s\" AS TEXT) ELSE \"%s\" END", a, a, a);
    else snprintf(sql, sizeof sql, ", \"%s\"", a);
    put(&vals, sql);
  }
  /* Columns the model dropped while changes were pending stay as they were. */
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(sq, "SELECT name, type FROM pragma_table_info(?) WHERE name <> 'id'", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, n, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *c = (const char *)sqlite3_column_text(st, 0);
      int kept = 0;
      for (int k = 0; k < e->nattrs; k++) if (strcasecmp(e->attrs[k].name, c) == 0) kept = 1;
      if (kept) continue;
      snprintf(sql, sizeof sql, ", \"%s\" %s", c, (const char *)sqlite3_column_text(st, 1));
      put(b, sql);
      snprintf(sql, sizeof sql, ", \"%s\"", c);
      put(&cols, sql);
      put(&vals, sql);
    }
    sqlite3_finalize(st);
  }
  put(b, ");");
  ferry__buf_u8(&cols, 0);
  ferry__buf_u8(&vals, 0);
  put(b, "INSERT INTO \"_ferry_rebuild\"(");
  put(b, cols.oom ? "id" : (const char *)cols.p);
  put(b, ") SELECT ");
  put(b, vals.oom ? "id" : (const char *)vals.p);
  snprintf(sql, sizeof sql, " FROM \"%s\";", n);
  put(b, sql);
  ferry__buf_free(&cols);
  ferry__buf_free(&vals);
  /* The app's own indexes and triggers on the table come back after it. */
  ferry__buf keep = {0};
  if (sqlite3_prepare_v2(sq, "SELECT sql FROM sqlite_schema WHERE tbl_name=? COLLATE NOCASE AND type IN ('index','trigger') "
                             "AND sql IS NOT NULL AND name NOT LIKE '\\_ferry%' ESCAPE '\\'", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, n, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
      put(&keep, (const char *)sqlite3_column_text(st, 0));
      put(&keep, ";");
    }
    sqlite3_finalize(st);
  }
  snprintf(sql, sizeof sql, "DROP TABLE \"%s\"; PRAGMA legacy_alter_table=ON; ALTER TABLE \"_ferry_rebuild\" RENAME TO \"%s\"; PRAGMA legacy_alter_table=OFF;", n, n);
  put(b, sql);
  if (keep.len) ferry__buf_put(b, keep.p, keep.len);
  ferry__buf_free(&keep);
}

int ferry__schema_migrate(sqlite3 *sq, const ferry__model *old, const ferry__model *cur, char *err, size_t errlen) {
  ferry__buf b = {0};
  char sql[600];
  for (int i = 0; i < cur->nentities; i++) {
    const ferry__entity *e = &cur->entities[i];
    if (!table_exists(sq, e->name)) {
      snprintf(sql, sizeof sql, "CREATE TABLE \"%s\"(id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16))))", e->name);
      put(&b, sql);
      for (int k = 0; k < e->nattrs; k++) {
        snprintf(sql, sizeof sql, ", \"%s\" %s", e->attrs[k].name, column_type(e->attrs[k].type));
        put(&b, sql);
      }
      put(&b, ");");
    } else if (needs_rebuild(sq, e)) {
      rebuild_table(sq, &b, e);
    } else {
      for (int k = 0; k < e->nattrs; k++) {
        if (column_exists(sq, e->name, e->attrs[k].name)) continue;
        snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" ADD COLUMN \"%s\" %s;", e->name, e->attrs[k].name, column_type(e->attrs[k].type));
        put(&b, sql);
      }
    }
    drop_triggers(&b, e->name);
    if (ferry__mode_uploads(e->mode)) { create_triggers(&b, e); create_file_triggers(&b, e); }
    const ferry__entity *was = ferry__model_entity(old, e->name);
    if (!same_shape(was, e)) {
      snprintf(sql, sizeof sql, "DELETE FROM _ferry_cursor WHERE entity='%s';", e->name);
      put(&b, sql);
    }
  }
  /* Attributes and entities the new model removed: their pending changes
   * are pushed before a migration, so only what is already synced goes. */
  for (int i = 0; old && i < old->nentities; i++) {
    const ferry__entity *e = &old->entities[i];
    const ferry__entity *now = ferry__model_entity(cur, e->name);
    /* Renamed only in case: the same table to SQLite, already migrated above. */
    for (int j = 0; !now && j < cur->nentities; j++) if (strcasecmp(cur->entities[j].name, e->name) == 0) now = &cur->entities[j];
    if (!now) {
      drop_triggers(&b, e->name);
      if (!has_pending(sq, e->name) && table_exists(sq, e->name)) {
        snprintf(sql, sizeof sql, "DROP TABLE \"%s\"; DELETE FROM _ferry_base WHERE entity='%s'; DELETE FROM _ferry_cursor WHERE entity='%s';",
                 e->name, e->name, e->name);
        put(&b, sql);
      }
      continue;
    }
  }
  ferry__buf_u8(&b, 0);
  if (b.oom) { ferry__buf_free(&b); snprintf(err, errlen, "out of memory"); return FERRY_NOMEM; }
  int rc = exec_err(sq, (const char *)b.p, err, errlen);
  ferry__buf_free(&b);
  if (rc != FERRY_OK) return rc;
  /* Removed attributes go when nothing pending needs them; a column an app
   * index or view still uses stays (its statement fails alone). */
  for (int i = 0; old && i < old->nentities; i++) {
    const ferry__entity *e = &old->entities[i];
    const ferry__entity *now = ferry__model_entity(cur, e->name);
    for (int j = 0; !now && j < cur->nentities; j++) if (strcasecmp(cur->entities[j].name, e->name) == 0) now = &cur->entities[j];
    if (!now || has_pending(sq, e->name)) continue;
    for (int k = 0; k < e->nattrs; k++) {
      /* SQLite names are case-insensitive: an attribute renamed only in case keeps its column. */
      int kept = 0;
      for (int j = 0; j < now->nattrs; j++) if (strcasecmp(now->attrs[j].name, e->attrs[k].name) == 0) kept = 1;
      if (kept || !column_exists(sq, e->name, e->attrs[k].name)) continue;
      snprintf(sql, sizeof sql, "ALTER TABLE \"%s\" DROP COLUMN \"%s\";", e->name, e->attrs[k].name);
      sqlite3_exec(sq, sql, NULL, NULL, NULL);
    }
  }
  return FERRY_OK;
}
