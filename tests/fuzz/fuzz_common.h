/* Shared set-up and invariant checks of the fuzz targets. Only the public
 * API (ferry.h, sync.h) and SQLite on ferry_db_sqlite() are used, so the
 * targets keep working while the engine's internals move around.
 * A broken invariant aborts: libFuzzer and the replay runner both report an
 * abort as a crash, with the message printed just before it. */
#ifndef FERRY_FUZZ_COMMON_H
#define FERRY_FUZZ_COMMON_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cJSON.h"
#include "ferry.h"
#include "sqlite3.h"
#include "sync.h"

#define FZ_CHECK(cond, ...) do { if (!(cond)) fz_die(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

static void fz_die(const char *file, int line, const char *cond, const char *fmt, ...) {
  fprintf(stderr, "\nfuzz invariant broken at %s:%d: %s\n  ", file, line, cond);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

/* FERRY_FUZZ_VERBOSE=1 says what each reply did: for writing seeds. */
static void fz_note(const char *what, int rc, const char *msg) {
  static int verbose = -1;
  if (verbose < 0) verbose = getenv("FERRY_FUZZ_VERBOSE") != NULL;
  if (verbose) fprintf(stderr, "  %s: %s%s%s\n", what, ferry_errstr(rc), rc ? ": " : "", rc ? msg : "");
}

/* A growable string for snapshots. Allocation failure aborts: a snapshot
 * that silently lost bytes would hide the very changes it exists to see. */
typedef struct fz_str { char *p; size_t len, cap; } fz_str;

static void fz_put(fz_str *s, const void *src, size_t n) {
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + n + 1) cap *= 2;
    char *p = realloc(s->p, cap);
    FZ_CHECK(p != NULL, "out of memory in a snapshot");
    s->p = p; s->cap = cap;
  }
  if (n) memcpy(s->p + s->len, src, n);
  s->len += n;
  s->p[s->len] = 0;
}
static void fz_puts(fz_str *s, const char *t) { fz_put(s, t, strlen(t)); }
static void fz_free(fz_str *s) { free(s->p); s->p = NULL; s->len = s->cap = 0; }
static const char *fz_text(const fz_str *s) { return s->p ? s->p : ""; }
static int fz_same(const fz_str *a, const fz_str *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

typedef struct fz {
  ferry_db *db;
  ferry_sync *sync;
  sqlite3 *sq;
} fz;

/* An empty parameter block that is not NULL: with NULL, ferry_db_run
 * computes NULL + 0 (db.c, bind_params), which clang's UBSan reports on
 * every call; that finding is reported, and the targets fuzz past it. */
static int fz_exec(fz *f, const char *sql) {
  static const uint8_t no_params[1];
  return ferry_db_run(f->db, sql, strlen(sql), no_params, 0, 0, NULL, NULL);
}

static void fz_exec_ok(fz *f, const char *sql) {
  int rc = fz_exec(f, sql);
  FZ_CHECK(rc == FERRY_OK, "set-up SQL failed (%s): %s\n  %s", ferry_errstr(rc), ferry_errmsg(f->db), sql);
}

/* One name for every run: each input closes its database before the next
 * opens, and the VFS refuses two open databases under one name. */
static void fz_open(fz *f) {
  memset(f, 0, sizeof *f);
  ferry_store *store = NULL;
  FZ_CHECK(ferry_store_memory_open(&store) == FERRY_OK, "memory store");
  int rc = ferry_db_open(&f->db, "fuzz", store);
  FZ_CHECK(rc == FERRY_OK, "ferry_db_open: %s", ferry_errmsg(f->db));
  f->sq = ferry_db_sqlite(f->db);
  rc = ferry_sync_open(&f->sync, f->db);
  FZ_CHECK(rc == FERRY_OK, "ferry_sync_open: %s", ferry_sync_errmsg(f->sync));
}

static void fz_close(fz *f) {
  ferry_sync_close(f->sync);
  ferry_db_close(f->db);
  memset(f, 0, sizeof *f);
}

static void fz_set_model(fz *f, const char *json) {
  int rc = ferry_sync_set_model(f->sync, json, strlen(json));
  FZ_CHECK(rc == FERRY_OK, "installing the fixed model failed (%s): %s", ferry_errstr(rc), ferry_sync_errmsg(f->sync));
}

static void fz_integrity(fz *f, const char *when) {
  sqlite3_stmt *st;
  FZ_CHECK(sqlite3_prepare_v2(f->sq, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK,
           "%s: cannot prepare integrity_check: %s", when, sqlite3_errmsg(f->sq));
  int rc = sqlite3_step(st);
  const char *r = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
  FZ_CHECK(r && strcmp(r, "ok") == 0, "%s: integrity_check says %s", when, r ? r : sqlite3_errmsg(f->sq));
  sqlite3_finalize(st);
  FZ_CHECK(!ferry_db_in_transaction(f->db), "%s: a transaction was left open", when);
}

/* Appends every column of the current row, typed, so that 1, '1' and x'31'
 * differ in the snapshot. */
static void fz_put_row(fz_str *out, sqlite3_stmt *st) {
  char num[64];
  for (int c = 0; c < sqlite3_column_count(st); c++) {
    switch (sqlite3_column_type(st, c)) {
      case SQLITE_NULL: fz_puts(out, "N"); break;
      case SQLITE_INTEGER: snprintf(num, sizeof num, "I%lld", (long long)sqlite3_column_int64(st, c)); fz_puts(out, num); break;
      case SQLITE_FLOAT: snprintf(num, sizeof num, "F%.17g", sqlite3_column_double(st, c)); fz_puts(out, num); break;
      case SQLITE_TEXT:
        snprintf(num, sizeof num, "T%d:", sqlite3_column_bytes(st, c));
        fz_puts(out, num);
        fz_put(out, sqlite3_column_text(st, c), (size_t)sqlite3_column_bytes(st, c));
        break;
      default: {
        /* In hex, so that a failure message shows it. */
        const uint8_t *p = sqlite3_column_blob(st, c);
        int n = sqlite3_column_bytes(st, c);
        fz_puts(out, "X");
        for (int i = 0; i < n; i++) { snprintf(num, sizeof num, "%02x", p[i]); fz_puts(out, num); }
      }
    }
    fz_puts(out, "|");
  }
  fz_puts(out, "\n");
}

static void fz_query(fz *f, fz_str *out, const char *sql, const char *bind1) {
  sqlite3_stmt *st;
  FZ_CHECK(sqlite3_prepare_v2(f->sq, sql, -1, &st, NULL) == SQLITE_OK, "snapshot query failed: %s\n  %s", sqlite3_errmsg(f->sq), sql);
  if (bind1) sqlite3_bind_text(st, 1, bind1, -1, SQLITE_TRANSIENT);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) fz_put_row(out, st);
  FZ_CHECK(rc == SQLITE_DONE, "snapshot query failed: %s\n  %s", sqlite3_errmsg(f->sq), sql);
  sqlite3_finalize(st);
}

/* The pending local changes: every outbox row, with or without its mutation
 * id (a push numbers rows, which is not a change of what is pending). */
static void fz_outbox(fz *f, fz_str *out, int with_mid) {
  fz_query(f, out, with_mid ? "SELECT seq, entity, oid, op, attrs, ts, mid FROM _ferry_outbox ORDER BY seq"
                            : "SELECT seq, entity, oid, op, attrs, ts FROM _ferry_outbox ORDER BY seq", NULL);
}

/* Everything in the database, table by table in a fixed order: what "a bad
 * reply changes nothing" is checked against. */
static void fz_dump(fz *f, fz_str *out) {
  sqlite3_stmt *tables;
  FZ_CHECK(sqlite3_prepare_v2(f->sq, "SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                              -1, &tables, NULL) == SQLITE_OK, "dump: %s", sqlite3_errmsg(f->sq));
  fz_query(f, out, "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name", NULL);
  while (sqlite3_step(tables) == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(tables, 0);
    char *sql = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY 1", t);
    fz_puts(out, "== ");
    fz_puts(out, t);
    fz_puts(out, "\n");
    fz_query(f, out, sql, NULL);
    sqlite3_free(sql);
  }
  sqlite3_finalize(tables);
}

/* Every attribute type, an association, a where-filtered entity, an
 * upload-only entity and a device-only one. Item comes first so it is the
 * first entity pulled. */
static const char FZ_MODEL[] =
  "{\"version\":\"1\",\"entities\":{"
  "\"Item\":{\"attributes\":{\"name\":\"string\",\"qty\":\"integer\",\"price\":\"decimal\",\"done\":\"boolean\","
  "\"due\":\"datetime\",\"data\":\"binary\",\"doc\":\"file\"},\"associations\":{\"tag\":\"Tag\"},\"sync\":\"all\"},"
  "\"Tag\":{\"attributes\":{\"label\":\"string\"},\"sync\":\"all\"},"
  "\"Note\":{\"attributes\":{\"text\":\"string\"},\"associations\":{\"item\":\"Item\"},\"sync\":{\"where\":\"owner = $user.id\"}},"
  "\"Log\":{\"attributes\":{\"msg\":\"string\"},\"sync\":\"nothing-clear\"},"
  "\"Pref\":{\"attributes\":{\"v\":\"string\"},\"sync\":\"never\"}}}";

/* "id" and the attributes the fixed model gives `entity` (all columns for
 * another entity): the whole object, not the columns a later model added. */
static void fz_model_columns(const char *entity, fz_str *cols) {
  static cJSON *model;
  if (!model) model = cJSON_Parse(FZ_MODEL);
  cJSON *e = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(model, "entities"), entity);
  if (!e) { fz_puts(cols, "*"); return; }
  fz_puts(cols, "id");
  const char *groups[] = { "attributes", "associations" };
  for (int g = 0; g < 2; g++) {
    cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(e, groups[g])) {
      char *q = sqlite3_mprintf(", \"%w\"", a->string);
      fz_puts(cols, q);
      sqlite3_free(q);
    }
  }
}

/* The local values that pending changes protect: the whole row (or its
 * absence) of an object inserted or deleted locally, and the changed
 * attributes of one updated locally. A pull must leave all of them as they
 * are until the push is answered. */
static void fz_protected(fz *f, fz_str *out) {
  sqlite3_stmt *objs;
  FZ_CHECK(sqlite3_prepare_v2(f->sq, "SELECT entity, oid, group_concat(CASE WHEN op='delete' THEN '[\"*\"]' ELSE attrs END, char(1)) "
                              "FROM _ferry_outbox GROUP BY entity, oid ORDER BY entity, oid", -1, &objs, NULL) == SQLITE_OK,
           "protected: %s", sqlite3_errmsg(f->sq));
  while (sqlite3_step(objs) == SQLITE_ROW) {
    const char *entity = (const char *)sqlite3_column_text(objs, 0);
    const char *oid = (const char *)sqlite3_column_text(objs, 1);
    char *lists = strdup((const char *)sqlite3_column_text(objs, 2));
    FZ_CHECK(lists != NULL, "out of memory");
    fz_puts(out, entity); fz_puts(out, "/"); fz_puts(out, oid); fz_puts(out, ": ");
    fz_str cols = {0};
    int all = 0;
    for (char *save = NULL, *part = strtok_r(lists, "\x01", &save); part; part = strtok_r(NULL, "\x01", &save)) {
      cJSON *a = cJSON_Parse(part), *it;
      cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it)) continue;
        if (strcmp(it->valuestring, "*") == 0) { all = 1; continue; }
        char *q = sqlite3_mprintf("%s\"%w\"", cols.len ? ", " : "", it->valuestring);
        fz_puts(&cols, q);
        sqlite3_free(q);
      }
      cJSON_Delete(a);
    }
    free(lists);
    /* The table may be gone (an entity the model dropped): then so is the row. */
    if (all || !cols.len) { cols.len = 0; fz_model_columns(entity, &cols); }
    char *sql = sqlite3_mprintf("SELECT %s FROM \"%w\" WHERE id=?", cols.p, entity);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(f->sq, sql, -1, &st, NULL) == SQLITE_OK) {
      sqlite3_bind_text(st, 1, oid, -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) fz_put_row(out, st); else fz_puts(out, "(absent)\n");
      sqlite3_finalize(st);
    } else {
      fz_puts(out, "(no table)\n");
    }
    sqlite3_free(sql);
    fz_free(&cols);
  }
  sqlite3_finalize(objs);
}

/* A reply body the set-up serves itself, malloc'd. */
static char *fz_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *m = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  FZ_CHECK(m != NULL, "out of memory");
  char *d = strdup(m);
  sqlite3_free(m);
  FZ_CHECK(d != NULL, "out of memory");
  return d;
}

/* The entity a pull request asks for (static storage, "" if none). */
static const char *fz_pull_entity(const ferry_request *req) {
  static char name[80];
  name[0] = 0;
  cJSON *b = cJSON_ParseWithLength(req->body, req->body_len);
  const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "entity"));
  if (e) snprintf(name, sizeof name, "%s", e);
  cJSON_Delete(b);
  return name;
}

/* A server for the set-up: answers a request with what `serve` returns
 * (malloc'd JSON, status 200), NULL meaning "stop before this request". */
typedef char *(*fz_serve_fn)(void *ctx, const ferry_request *req);

/* Drives one run; returns the last ferry code. Stops early when serve says
 * so, leaving the run waiting for the reply to `*stopped_at` if given. */
static int fz_drive(fz *f, const char *filter, fz_serve_fn serve, void *ctx, ferry_request *stopped_at) {
  int rc = ferry_sync_begin(f->sync, filter, filter ? strlen(filter) : 0);
  while (rc == FERRY_OK) {
    ferry_request req;
    rc = ferry_sync_next(f->sync, &req);
    if (rc != FERRY_OK || !req.path) break;
    char *body = serve(ctx, &req);
    if (!body) { if (stopped_at) *stopped_at = req; return FERRY_OK; }
    rc = ferry_sync_feed(f->sync, 200, body, strlen(body));
    free(body);
  }
  if (stopped_at) memset(stopped_at, 0, sizeof *stopped_at);
  return rc;
}

/* ---- the fixed world of the sync targets --------------------------------- */

/* The first sync's pages: what the device already has from the server. */
static char *fz_serve_initial(void *ctx, const ferry_request *req) {
  (void)ctx;
  if (strcmp(req->path, "/pull") != 0) return NULL;
  const char *e = fz_pull_entity(req);
  if (strcmp(e, "Item") == 0)
    return fz_printf("{\"modelVersion\":\"1\",\"entity\":\"Item\",\"cursor\":14,\"more\":false,\"removed\":[],\"objects\":["
      "{\"id\":\"i1\",\"version\":10,\"values\":{\"name\":\"one\",\"qty\":1,\"price\":\"1.50\",\"done\":false,\"due\":\"2026-01-01T00:00:00.000Z\",\"data\":\"AAEC\",\"doc\":null,\"tag\":\"t1\"}},"
      "{\"id\":\"i2\",\"version\":11,\"values\":{\"name\":\"two\",\"qty\":2,\"price\":\"2.00\",\"done\":true,\"due\":null,\"data\":null,\"doc\":{\"hash\":\"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\",\"size\":3,\"type\":\"text/plain\",\"name\":\"d.txt\"},\"tag\":null}},"
      "{\"id\":\"i3\",\"version\":12,\"values\":{\"name\":\"three\",\"qty\":3,\"price\":\"3\",\"done\":false,\"tag\":\"t2\"}},"
      "{\"id\":\"i4\",\"version\":13,\"values\":{\"name\":\"four\",\"qty\":4}},"
      "{\"id\":\"i6\",\"version\":14,\"values\":{\"name\":\"six\",\"qty\":6}}]}");
  if (strcmp(e, "Tag") == 0)
    return fz_printf("{\"modelVersion\":\"1\",\"entity\":\"Tag\",\"cursor\":21,\"more\":false,\"removed\":[],\"objects\":["
      "{\"id\":\"t1\",\"version\":20,\"values\":{\"label\":\"red\"}},{\"id\":\"t2\",\"version\":21,\"values\":{\"label\":\"blue\"}}]}");
  if (strcmp(e, "Note") == 0)
    return fz_printf("{\"modelVersion\":\"1\",\"entity\":\"Note\",\"cursor\":30,\"more\":false,\"removed\":[],\"objects\":["
      "{\"id\":\"n1\",\"version\":30,\"values\":{\"text\":\"hello\",\"item\":\"i1\"}}]}");
  return fz_printf("{\"entity\":\"%s\",\"cursor\":0,\"more\":false,\"objects\":[],\"removed\":[]}", e);
}

/* The device after a first sync: Item i1-i4 and i6, Tag t1 and t2, Note n1,
 * each with a server version and a cursor per entity. */
static void fz_synced(fz *f) {
  fz_open(f);
  fz_set_model(f, FZ_MODEL);
  int rc = fz_drive(f, NULL, fz_serve_initial, NULL, NULL);
  FZ_CHECK(rc == FERRY_OK, "the first sync failed (%s): %s", ferry_errstr(rc), ferry_sync_errmsg(f->sync));
}

/* Offline edits: pending changes of each kind (insert, update of some
 * attributes, delete, a delete then re-insert), an upload-only row and a
 * device-only row. i1, i6, t1 and n1 keep nothing pending. */
static void fz_edit(fz *f) {
  fz_exec_ok(f, "UPDATE Item SET name='mine', price='9.99' WHERE id='i2'");
  fz_exec_ok(f, "UPDATE Item SET qty=30 WHERE id='i3'");
  fz_exec_ok(f, "UPDATE Item SET done=1 WHERE id='i3'");
  fz_exec_ok(f, "DELETE FROM Item WHERE id='i4'");
  fz_exec_ok(f, "INSERT INTO Item(id, name, qty, price, done, due, data, doc, tag) VALUES "
                "('i5', 'new', 5, '5.05', 1, '2026-02-02T10:00:00.000Z', x'00ff', NULL, 't1')");
  fz_exec_ok(f, "DELETE FROM Tag WHERE id='t2'");
  fz_exec_ok(f, "INSERT INTO Tag(id, label) VALUES ('t2', 'back')");
  fz_exec_ok(f, "INSERT INTO Note(id, text, item) VALUES ('n2', 'mine', 'i5')");
  fz_exec_ok(f, "INSERT INTO Log(id, msg) VALUES ('l1', 'started')");
  fz_exec_ok(f, "INSERT INTO Pref(id, v) VALUES ('p1', 'dark')");
}

/* The public reports must stay valid JSON whatever a reply did. */
static void fz_reports(fz *f) {
  const char *r[3] = { ferry_sync_report(f->sync), NULL, NULL };
  cJSON *j = cJSON_Parse(r[0]);
  FZ_CHECK(cJSON_IsObject(j), "ferry_sync_report is not a JSON object: %s", r[0]);
  cJSON_Delete(j);
  r[1] = ferry_sync_status(f->sync);
  j = cJSON_Parse(r[1]);
  FZ_CHECK(cJSON_IsObject(j), "ferry_sync_status is not a JSON object: %s", r[1]);
  cJSON_Delete(j);
  r[2] = ferry_sync_errors(f->sync);
  j = cJSON_Parse(r[2]);
  FZ_CHECK(cJSON_IsArray(j), "ferry_sync_errors is not a JSON array: %s", r[2]);
  cJSON_Delete(j);
}

#endif
