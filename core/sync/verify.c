/* Verify: the device proves it holds what the server holds. After the pulls
 * of a run, it compares a digest per entity of its rows with the server's
 * digest of what this user may see (objects with pending changes or sync
 * errors left out on both sides); for an entity that differs it fetches the
 * server's per-object hashes in id order, finds the objects that differ, are
 * missing or are extra, and pulls those by id (pending changes untouched). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sync_internal.h"

#define VERIFY_IDS_PAGE 20000

struct vtarget {
  const ferry__entity *e;
  char *exclude;         /* JSON array of ids left out (pending or in error) */
  char *after;           /* id paging of the hash list; NULL before the first page */
  int differs, skipped;
  int64_t repaired;
};

void ferry__sync_free_verify(ferry_sync *s) {
  for (int i = 0; i < s->nverify; i++) { free(s->verify_t[i].exclude); free(s->verify_t[i].after); }
  free(s->verify_t);
  s->verify_t = NULL; s->nverify = s->cur_verify = 0;
}

/* id, 'types', "a", "b", ...: the arguments of ferry_digest/ferry_row_hash,
 * attributes in name order (the server orders them the same way). */
static char *digest_args(const ferry__entity *e, const char *prefix) {
  int n = e->nattrs;
  const ferry__attr **sorted = malloc(((size_t)n + 1) * sizeof *sorted);
  if (!sorted) return NULL;
  for (int k = 0; k < n; k++) sorted[k] = &e->attrs[k];
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && strcmp(sorted[j - 1]->name, sorted[j]->name) > 0; j--) {
      const ferry__attr *t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t;
    }
  ferry__buf b = {0};
  ferry__buf_put(&b, prefix, strlen(prefix));
  ferry__buf_put(&b, "id, '", 5);
  for (int k = 0; k < n; k++) ferry__buf_u8(&b, (uint8_t)('0' + sorted[k]->type));
  ferry__buf_put(&b, "'", 1);
  for (int k = 0; k < n; k++) {
    char part[100];
    snprintf(part, sizeof part, ", %s\"%s\"", prefix, sorted[k]->name);
    ferry__buf_put(&b, part, strlen(part));
  }
  ferry__buf_u8(&b, 0);
  free(sorted);
  if (b.oom) { ferry__buf_free(&b); return NULL; }
  return (char *)b.p;
}

static char *exclusions(ferry_sync *s, const char *entity, int *too_many) {
  sqlite3_stmt *st;
  char *out = NULL;
  *too_many = 0;
  if (sqlite3_prepare_v2(s->sq,
        "SELECT count(*), json_group_array(oid) FROM (SELECT oid FROM _ferry_outbox WHERE entity=?1 UNION "
        "SELECT oid FROM _ferry_errors WHERE entity=?1 UNION SELECT oid FROM _ferry_refresh WHERE entity=?1)", -1, &st, NULL) != SQLITE_OK) return NULL;
  sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    *too_many = sqlite3_column_int64(st, 0) > 10000;
    out = ferry__sync_dup((const char *)sqlite3_column_text(st, 1));
  }
  sqlite3_finalize(st);
  return out;
}

static int plan_verify(ferry_sync *s) {
  ferry__sync_free_verify(s);
  s->verify_t = calloc((size_t)s->model->nentities + 1, sizeof *s->verify_t);
  if (!s->verify_t) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  for (int i = 0; i < s->model->nentities; i++) {
    const ferry__entity *e = &s->model->entities[i];
    if (!ferry__mode_downloads(e->mode) || !ferry__sync_entity_selected(s, e->name)) continue;
    vtarget *t = &s->verify_t[s->nverify++];
    t->e = e;
    t->exclude = exclusions(s, e->name, &t->skipped);
    if (!t->exclude) return ferry__sync_fail_db(s, "cannot plan the verify");
  }
  s->cur_verify = -1;    /* -1: the digest round */
  return FERRY_OK;
}

static int send(ferry_sync *s, ferry_request *req, cJSON *entities) {
  cJSON *root = ferry__sync_body(s);
  cJSON_AddItemToObject(root, "entities", entities);
  return ferry__sync_post(s, req, "/verify", root);
}

static cJSON *entity_item(const vtarget *t) {
  cJSON *it = cJSON_CreateObject();
  cJSON_AddStringToObject(it, "entity", t->e->name);
  cJSON_AddItemToObject(it, "exclude", cJSON_Parse(t->exclude));
  if (t->after) {
    cJSON_AddStringToObject(it, "after", t->after);
    cJSON_AddNumberToObject(it, "limit", VERIFY_IDS_PAGE);
  }
  return it;
}

int ferry__sync_build_verify(ferry_sync *s, ferry_request *req) {
  memset(req, 0, sizeof *req);
  if (!s->verify_t) {
    int rc = plan_verify(s);
    if (rc != FERRY_OK) return rc;
  }
  cJSON *entities = cJSON_CreateArray();
  if (s->cur_verify < 0) {
    for (int i = 0; i < s->nverify; i++) if (!s->verify_t[i].skipped) cJSON_AddItemToArray(entities, entity_item(&s->verify_t[i]));
  } else {
    while (s->cur_verify < s->nverify && !s->verify_t[s->cur_verify].differs) s->cur_verify++;
    if (s->cur_verify < s->nverify) cJSON_AddItemToArray(entities, entity_item(&s->verify_t[s->cur_verify]));
  }
  if (cJSON_GetArraySize(entities) == 0) { cJSON_Delete(entities); return FERRY_OK; }   /* nothing (more) to verify */
  return send(s, req, entities);
}

static int local_digest(ferry_sync *s, const vtarget *t, char *out, size_t n) {
  char *args = digest_args(t->e, "");
  if (!args) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  char *sql = sqlite3_mprintf("SELECT ferry_digest(%s) FROM \"%s\" WHERE id NOT IN (SELECT value FROM json_each(?))", args, t->e->name);
  free(args);
  sqlite3_stmt *st;
  int rc = sql && sqlite3_prepare_v2(s->sq, sql, -1, &st, NULL) == SQLITE_OK ? FERRY_OK : ferry__sync_fail_db(s, "cannot compute a digest");
  sqlite3_free(sql);
  if (rc != FERRY_OK) return rc;
  sqlite3_bind_text(st, 1, t->exclude, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
  else rc = ferry__sync_fail_db(s, "cannot compute a digest");
  sqlite3_finalize(st);
  return rc;
}

/* Marks what differs in one page of the server's hashes (ids in (after, last]
 * or beyond when it is the last page) for a pull by id. */
static int tx_compare(ferry_sync *s, void *arg) {
  const cJSON *page = arg;
  vtarget *t = &s->verify_t[s->cur_verify];
  const cJSON *objects = cJSON_GetObjectItemCaseSensitive(page, "objects");
  int more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(page, "more"));
  char *args = digest_args(t->e, "e.");
  if (!args) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  char *objs = cJSON_PrintUnformatted(objects);
  const cJSON *lastobj = cJSON_GetArrayItem(objects, cJSON_GetArraySize(objects) - 1);
  const char *last = cJSON_GetStringValue(cJSON_GetArrayItem(lastobj, 0));
  /* Server objects whose hash differs or that the device lacks, then device
   * objects in the same id range that the server did not list. */
  char *sql = sqlite3_mprintf(
    "WITH srv(id, h) AS (SELECT value->>0, value->>1 FROM json_each(?1)), "
    "ex(id) AS (SELECT value FROM json_each(?2)) "
    "INSERT OR IGNORE INTO _ferry_refresh(entity, oid) "
    "SELECT ?3, srv.id FROM srv LEFT JOIN \"%w\" e ON e.id = srv.id "
    "  WHERE srv.id NOT IN (SELECT id FROM ex) AND (e.id IS NULL OR ferry_row_hash(%s) IS NOT srv.h) "
    "UNION SELECT ?3, e.id FROM \"%w\" e WHERE e.id > ?4 AND (?5 IS NULL OR e.id <= ?5) "
    "  AND e.id NOT IN (SELECT id FROM ex) AND e.id NOT IN (SELECT id FROM srv)",
    t->e->name, args, t->e->name);
  free(args);
  int rc = FERRY_OK;
  sqlite3_stmt *st = NULL;
  if (!sql || !objs || sqlite3_prepare_v2(s->sq, sql, -1, &st, NULL) != SQLITE_OK) rc = ferry__sync_fail_db(s, "cannot compare with the server");
  if (rc == FERRY_OK) {
    sqlite3_bind_text(st, 1, objs, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->exclude, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->after ? t->after : "", -1, SQLITE_STATIC);
    if (more && last) sqlite3_bind_text(st, 5, last, -1, SQLITE_STATIC); else sqlite3_bind_null(st, 5);
    if (sqlite3_step(st) != SQLITE_DONE) rc = ferry__sync_fail_db(s, "cannot compare with the server");
    else t->repaired += sqlite3_changes(s->sq);
  }
  sqlite3_finalize(st);
  sqlite3_free(sql);
  if (rc == FERRY_OK && more && last) {
    free(t->after);
    t->after = ferry__sync_dup(last);
  } else if (rc == FERRY_OK) {
    t->differs = 0;       /* this entity is done */
    s->cur_verify++;
  }
  cJSON_free(objs);
  return rc;
}

int ferry__sync_feed_verify(ferry_sync *s, const char *body, size_t len) {
  cJSON *root = cJSON_ParseWithLength(body, len);
  const cJSON *ents = cJSON_GetObjectItemCaseSensitive(root, "entities");
  int rc = FERRY_OK;
  if (!cJSON_IsObject(ents)) { rc = ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "verify reply: no entities object"); goto done; }
  if (s->cur_verify < 0) {
    for (int i = 0; i < s->nverify && rc == FERRY_OK; i++) {
      vtarget *t = &s->verify_t[i];
      if (t->skipped) continue;
      const char *theirs = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ents, t->e->name), "digest"));
      if (!theirs) { rc = ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "verify reply: no digest for %s", t->e->name); break; }
      char mine[64] = "";
      rc = local_digest(s, t, mine, sizeof mine);
      if (rc == FERRY_OK && strcmp(mine, theirs) != 0) {
        t->differs = 1;
        free(t->after);
        t->after = ferry__sync_dup("");
      }
    }
    if (rc == FERRY_OK) s->cur_verify = 0;
  } else {
    const cJSON *page = cJSON_GetObjectItemCaseSensitive(ents, s->verify_t[s->cur_verify].e->name);
    const cJSON *objects = cJSON_GetObjectItemCaseSensitive(page, "objects"), *o;
    int ok = cJSON_IsArray(objects) && cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(page, "more"));
    cJSON_ArrayForEach(o, objects) {
      if (!cJSON_IsArray(o) || !cJSON_IsString(cJSON_GetArrayItem(o, 0)) || !cJSON_IsString(cJSON_GetArrayItem(o, 1))) ok = 0;
    }
    if (!ok) { rc = ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "verify reply for %s: objects is not a list of [id, hash]", s->verify_t[s->cur_verify].e->name); goto done; }
    rc = ferry__sync_in_tx(s, tx_compare, (void *)page);
  }
done:
  cJSON_Delete(root);
  return rc;
}

void ferry__sync_verify_report(ferry_sync *s, cJSON *report) {
  if (!s->verify || !s->verify_t) return;
  cJSON *arr = cJSON_AddArrayToObject(report, "verified");
  for (int i = 0; i < s->nverify; i++) {
    const vtarget *t = &s->verify_t[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "entity", t->e->name);
    cJSON_AddBoolToObject(o, "ok", !t->skipped && t->repaired == 0);
    cJSON_AddNumberToObject(o, "repaired", (double)t->repaired);
    if (t->skipped) cJSON_AddBoolToObject(o, "skipped", 1);
    cJSON_AddItemToArray(arr, o);
  }
}
