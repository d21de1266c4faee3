/* Fuzz target: the input is a model as the server sends it (GET /model).
 *
 * Every input goes through ferry__model_parse; what it accepts must be the
 * model the rest of the core assumes (plain identifiers, unique names,
 * associations to existing entities). An accepted model is then installed
 * with ferry_sync_set_model on a device that has synced rows and pending
 * changes under the fixed model, and the device migrates back to the fixed
 * model. Invariants: a valid model installs and migrates back; each state
 * passes integrity_check, survives reopening the engine (the stored model
 * reloads), captures local writes; no pending change is lost on the way. */
#include <strings.h>
#include "fuzz_common.h"
#include "model.h"

static void check_parsed(const ferry__model *m) {
  FZ_CHECK(m->version && m->version[0], "accepted a model without a version");
  FZ_CHECK(m->nentities >= 0 && m->nentities <= 1000, "accepted %d entities", m->nentities);
  for (int i = 0; i < m->nentities; i++) {
    const ferry__entity *e = &m->entities[i];
    FZ_CHECK(ferry__is_identifier(e->name), "accepted entity name '%s'", e->name);
    FZ_CHECK(ferry__model_entity(m, e->name) == e, "entity %s is not found by its name", e->name);
    for (int j = 0; j < i; j++) FZ_CHECK(strcasecmp(m->entities[j].name, e->name) != 0, "entities %s and %s collide", m->entities[j].name, e->name);
    FZ_CHECK((e->mode == SYNC_WHERE) == (e->where != NULL), "entity %s: mode %d with where %p", e->name, (int)e->mode, (void *)e->where);
    FZ_CHECK(e->mode >= SYNC_ALL && e->mode <= SYNC_NEVER, "entity %s: mode %d", e->name, (int)e->mode);
    for (int k = 0; k < e->nattrs; k++) {
      const ferry__attr *a = &e->attrs[k];
      FZ_CHECK(ferry__is_identifier(a->name) && strcasecmp(a->name, "id") != 0, "%s: accepted attribute name '%s'", e->name, a->name);
      FZ_CHECK(a->type >= FT_STRING && a->type <= FT_ASSOC && ferry__type_name(a->type), "%s.%s: type %d", e->name, a->name, (int)a->type);
      FZ_CHECK(ferry__entity_attr(e, a->name) == a, "%s.%s is not found by its name", e->name, a->name);
      for (int j = 0; j < k; j++) FZ_CHECK(strcasecmp(e->attrs[j].name, a->name) != 0, "%s: attributes %s and %s collide", e->name, e->attrs[j].name, a->name);
      FZ_CHECK((a->type == FT_ASSOC) == (a->target != NULL), "%s.%s: target %p for type %d", e->name, a->name, (void *)a->target, (int)a->type);
      if (a->target) {
        const ferry__entity *t = ferry__model_entity(m, a->target);
        FZ_CHECK(t, "%s.%s: association to missing entity %s", e->name, a->name, a->target);
        FZ_CHECK(e->mode == SYNC_NEVER || t->mode != SYNC_NEVER, "%s.%s: synced entity references never-synced %s", e->name, a->name, t->name);
      }
    }
  }
}

static int64_t outbox_count(fz *f) {
  sqlite3_stmt *st;
  int64_t n = -1;
  if (sqlite3_prepare_v2(f->sq, "SELECT count(*) FROM _ferry_outbox", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

/* Local writes to every table of `m` reach the outbox, unless the entity is
 * never synced; all of it is rolled back afterwards. */
static void check_capture(fz *f, const ferry__model *m, const char *when) {
  fz_exec_ok(f, "SAVEPOINT fuzz_capture");
  for (int i = 0; i < m->nentities; i++) {
    const ferry__entity *e = &m->entities[i];
    int64_t n0 = outbox_count(f);
    char *sql = sqlite3_mprintf("INSERT INTO \"%w\"(id) VALUES ('fuzz-capture')", e->name);
    int rc = fz_exec(f, sql);
    FZ_CHECK(rc == FERRY_OK, "%s: inserting into %s failed: %s", when, e->name, ferry_errmsg(f->db));
    sqlite3_free(sql);
    if (e->nattrs) {
      /* 1 is a value every attribute type but file accepts from a local write; a file takes a reference. */
      const char *v = e->attrs[e->nattrs - 1].type == FT_FILE
        ? "'{\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"size\":1,\"type\":\"\",\"name\":\"\"}'" : "1";
      sql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = %s WHERE id = 'fuzz-capture'", e->name, e->attrs[e->nattrs - 1].name, v);
      rc = fz_exec(f, sql);
      FZ_CHECK(rc == FERRY_OK, "%s: updating %s.%s failed: %s", when, e->name, e->attrs[e->nattrs - 1].name, ferry_errmsg(f->db));
      sqlite3_free(sql);
    }
    sql = sqlite3_mprintf("DELETE FROM \"%w\" WHERE id = 'fuzz-capture'", e->name);
    rc = fz_exec(f, sql);
    FZ_CHECK(rc == FERRY_OK, "%s: deleting from %s failed: %s", when, e->name, ferry_errmsg(f->db));
    sqlite3_free(sql);
    int64_t want = ferry__mode_uploads(e->mode) ? 2 + (e->nattrs > 0) : 0;
    FZ_CHECK(outbox_count(f) - n0 == want, "%s: writes to %s left %lld outbox rows, not %lld", when, e->name,
             (long long)(outbox_count(f) - n0), (long long)want);
  }
  fz_exec_ok(f, "ROLLBACK TO fuzz_capture");
  fz_exec_ok(f, "RELEASE fuzz_capture");
}

/* The engine closed and opened again: the stored model must load. */
static void reopen(fz *f, const char *version, const char *when) {
  ferry_sync_close(f->sync);
  f->sync = NULL;
  int rc = ferry_sync_open(&f->sync, f->db);
  FZ_CHECK(rc == FERRY_OK, "%s: the engine does not open again (%s): %s", when, ferry_errstr(rc), ferry_sync_errmsg(f->sync));
  cJSON *st = cJSON_Parse(ferry_sync_status(f->sync));
  const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "modelVersion"));
  FZ_CHECK(v && strcmp(v, version) == 0, "%s: the reopened engine has model version %s, not %s", when, v ? v : "null", version);
  cJSON_Delete(st);
}

static void check_state(fz *f, const ferry__model *m, const char *when, const fz_str *outbox0, const fz_str *protected0) {
  fz_integrity(f, when);
  reopen(f, m->version, when);
  check_capture(f, m, when);
  fz_str outbox = {0}, protected = {0};
  fz_outbox(f, &outbox, 1);
  FZ_CHECK(fz_same(outbox0, &outbox), "%s: the outbox changed\nbefore:\n%s\nafter:\n%s", when, fz_text(outbox0), fz_text(&outbox));
  if (protected0) {
    fz_protected(f, &protected);
    FZ_CHECK(fz_same(protected0, &protected), "%s: values of pending changes changed\nbefore:\n%s\nafter:\n%s", when, fz_text(protected0), fz_text(&protected));
  }
  fz_free(&outbox); fz_free(&protected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[400];
  static ferry__model stale;
  ferry__model *m = &stale;   /* the parser must reset it */
  int rc = ferry__model_parse((const char *)data, size, &m, err, sizeof err);
  fz_note("parse", rc, err);
  if (rc != FERRY_OK) {
    FZ_CHECK(m == NULL, "a failed parse left a model");
    FZ_CHECK(rc == FERRY_MODEL || rc == FERRY_NOMEM, "parse failed with %s", ferry_errstr(rc));
    FZ_CHECK(err[0] && memchr(err, 0, sizeof err), "a failed parse has no message");
    return 0;
  }
  FZ_CHECK(m != NULL, "parse succeeded without a model");
  check_parsed(m);

  ferry__model *fixed = NULL;
  FZ_CHECK(ferry__model_parse(FZ_MODEL, strlen(FZ_MODEL), &fixed, err, sizeof err) == FERRY_OK, "fixed model: %s", err);

  fz f;
  fz_synced(&f);
  fz_edit(&f);
  fz_str outbox0 = {0}, protected0 = {0};
  fz_outbox(&f, &outbox0, 1);
  fz_protected(&f, &protected0);

  rc = ferry_sync_set_model(f.sync, (const char *)data, size);
  FZ_CHECK(rc == FERRY_OK, "a model the parser accepts does not install (%s): %s", ferry_errstr(rc), ferry_sync_errmsg(f.sync));
  /* Values of pending changes are compared after the way back: on the way
   * there the fuzzed model may drop entities the fixed model has. */
  check_state(&f, m, "fixed -> fuzzed", &outbox0, NULL);

  rc = ferry_sync_set_model(f.sync, FZ_MODEL, strlen(FZ_MODEL));
  FZ_CHECK(rc == FERRY_OK, "migrating back to the fixed model fails (%s): %s", ferry_errstr(rc), ferry_sync_errmsg(f.sync));
  check_state(&f, fixed, "fuzzed -> fixed", &outbox0, &protected0);

  fz_free(&outbox0); fz_free(&protected0);
  fz_close(&f);
  ferry__model_free(fixed);
  ferry__model_free(m);
  return 0;
}
