/* Applying the server's answer to a push: acknowledgements, conflicts and
 * rejections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sync_internal.h"

int ferry__sync_record_error(ferry_sync *s, const inflight *f, const char *kind, const char *reason,
                        const cJSON *attrs, const cJSON *server, int64_t version, int deleted) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "INSERT OR REPLACE INTO _ferry_errors(entity, oid, kind, op, reason, attrs, local, server, at, version, deleted) "
                                "VALUES (?,?,?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK) return ferry__sync_fail_db(s, "cannot record a sync error");
  char *a = attrs ? cJSON_PrintUnformatted(attrs) : NULL;
  char *sv = server ? cJSON_PrintUnformatted(server) : NULL;
  sqlite3_bind_text(st, 1, f->entity, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, f->oid, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, f->op, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, reason ? reason : "", -1, SQLITE_STATIC);
  if (a) sqlite3_bind_text(st, 6, a, -1, SQLITE_TRANSIENT); else sqlite3_bind_null(st, 6);
  sqlite3_bind_text(st, 7, f->values ? f->values : "null", -1, SQLITE_STATIC);
  if (sv) sqlite3_bind_text(st, 8, sv, -1, SQLITE_TRANSIENT); else sqlite3_bind_null(st, 8);
  sqlite3_bind_int64(st, 9, ferry__sync_now_ms(s));
  sqlite3_bind_int64(st, 10, version);
  sqlite3_bind_int(st, 11, deleted);
  int ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  cJSON_free(a); cJSON_free(sv);
  return ok ? FERRY_OK : ferry__sync_fail_db(s, "cannot record a sync error");
}

int ferry__sync_apply_server_values(ferry_sync *s, const ferry__entity *e, const char *oid, const cJSON *server, int create) {
  if (create) {
    char sql[200];
    snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO \"%s\"(id) VALUES (?)", e->name);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->sq, sql, -1, &st, NULL) != SQLITE_OK) return ferry__sync_fail_db(s, "cannot apply a conflict");
    sqlite3_bind_text(st, 1, oid, -1, SQLITE_STATIC);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    if (!ok) return ferry__sync_fail_db(s, "cannot apply a conflict");
  }
  const cJSON *v;
  cJSON_ArrayForEach(v, server) {
    const ferry__attr *a = ferry__entity_attr(e, v->string);
    if (!a) continue;
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE \"%s\" SET \"%s\"=? WHERE id=?", e->name, a->name);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->sq, sql, -1, &st, NULL) != SQLITE_OK) return ferry__sync_fail_db(s, "cannot apply a conflict");
    int rc = ferry__sync_bind_json(st, 1, v, a->type);
    if (rc != FERRY_OK) { sqlite3_finalize(st); return ferry__sync_fail(s, rc, "conflict value of %s.%s has the wrong type", e->name, a->name); }
    sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    if (!ok) return ferry__sync_fail_db(s, "cannot apply a conflict");
  }
  return FERRY_OK;
}

static int tx_push_results(ferry_sync *s, void *arg) {
  const cJSON **answer = arg;   /* answer[i]: the result for s->batch[i] */
  for (int i = 0; i < s->nbatch; i++) {
    const inflight *f = &s->batch[i];
    const cJSON *r = answer[i];
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "status"));
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(r, "version");
    const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "reason"));
    const ferry__entity *e = ferry__model_entity(s->model, f->entity);
    int rc = ferry__sync_exec_bind2(s, "DELETE FROM _ferry_outbox WHERE entity=? AND oid=? AND mid=?", f->entity, f->oid, f->mid, 1);
    if (rc != FERRY_OK) return rc;
    int still_pending = ferry__sync_object_pending(s, f->entity, f->oid);
    if (strcmp(status, "rejected") == 0) {
      s->rejected++;
      rc = ferry__sync_record_error(s, f, "rejected", reason, NULL, NULL, 0, 0);
      if (rc != FERRY_OK) return rc;
      continue;
    }
    s->pushed++;
    int64_t ver = ferry__sync_is_count(version) ? (int64_t)version->valuedouble : 0;
    int is_delete = strcmp(f->op, "delete") == 0;
    /* The base is the server version this device has seen; after a delete it
     * is the tombstone's, so re-creating the id later is not a conflict. */
    if (ver) rc = ferry__sync_exec_bind2(s, "INSERT OR REPLACE INTO _ferry_base VALUES (?, ?, ?)", f->entity, f->oid, ver, 1);
    if (rc == FERRY_OK && ver) rc = ferry__sync_exec_bind2(s, "DELETE FROM _ferry_attr_base WHERE entity=? AND oid=? AND version <= ?", f->entity, f->oid, ver, 1);
    else if (is_delete) rc = ferry__sync_exec_bind2(s, "DELETE FROM _ferry_base WHERE entity=? AND oid=?", f->entity, f->oid, 0, 0);
    if (rc != FERRY_OK) return rc;
    if (strcmp(status, "conflict") == 0) {
      s->conflicts++;
      const cJSON *server = cJSON_GetObjectItemCaseSensitive(r, "server");
      int server_deleted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "deleted"));
      /* A delete that lost brings the server's object back (the device shows
       * what the server holds); an edit that lost to a delete keeps its row
       * until the app retries or discards it. */
      if (e && cJSON_IsObject(server) && !still_pending && !server_deleted) {
        rc = ferry__sync_apply_server_values(s, e, f->oid, server, is_delete);
        if (rc != FERRY_OK) return rc;
        s->changed++;
      }
      rc = ferry__sync_record_error(s, f, "conflict", reason ? reason : "the server kept its values",
                                    cJSON_GetObjectItemCaseSensitive(r, "attrs"), server, ver, server_deleted);
      if (rc != FERRY_OK) return rc;
    } else {
      /* An applied change resolves an earlier error of the object. */
      rc = ferry__sync_exec_bind2(s, "DELETE FROM _ferry_errors WHERE entity=? AND oid=?", f->entity, f->oid, 0, 0);
      if (rc != FERRY_OK) return rc;
      /* And it may be what lets its files go up: an upload refused or given
       * up (the object was deleted on the server, and this write brought it
       * back with its references) is tried again, or the server would hold
       * a reference whose bytes no device sends. */
      rc = ferry__sync_exec_bind2(s, "UPDATE _ferry_files SET code = NULL, message = NULL WHERE entity=? AND oid=? AND code IS NOT NULL",
                                  f->entity, f->oid, 0, 0);
      if (rc != FERRY_OK) return rc;
    }
    if (e && e->mode == SYNC_NOTHING_CLEAR && !still_pending) {
      char sql[200];
      snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE id=?", e->name);
      sqlite3_stmt *st;
      if (sqlite3_prepare_v2(s->sq, sql, -1, &st, NULL) != SQLITE_OK) return ferry__sync_fail_db(s, "cannot clear an uploaded object");
      sqlite3_bind_text(st, 1, f->oid, -1, SQLITE_STATIC);
      int ok = sqlite3_step(st) == SQLITE_DONE;
      sqlite3_finalize(st);
      if (!ok) return ferry__sync_fail_db(s, "cannot clear an uploaded object");
      rc = ferry__sync_exec_bind2(s, "DELETE FROM _ferry_base WHERE entity=? AND oid=?", f->entity, f->oid, 0, 0);
      if (rc != FERRY_OK) return rc;
      s->changed++;
    }
  }
  return FERRY_OK;
}

typedef struct result_ix { int64_t mid; const cJSON *r; } result_ix;

static int cmp_result(const void *a, const void *b) {
  int64_t x = ((const result_ix *)a)->mid, y = ((const result_ix *)b)->mid;
  return x < y ? -1 : x > y;
}

int ferry__sync_feed_push(ferry_sync *s, const char *body, size_t len) {
  cJSON *root = cJSON_ParseWithLength(body, len);
  cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
  result_ix *ix = NULL;
  const cJSON **answer = NULL;
  int rc = FERRY_OK, n = 0;
  if (!cJSON_IsArray(results)) { rc = ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "push reply: no results array"); goto done; }
  ix = malloc(((size_t)cJSON_GetArraySize(results) + 1) * sizeof *ix);
  answer = calloc((size_t)s->nbatch + 1, sizeof *answer);
  if (!ix || !answer) { rc = ferry__sync_fail(s, FERRY_NOMEM, "out of memory"); goto done; }
  const cJSON *it;
  cJSON_ArrayForEach(it, results) {
    const cJSON *mid = cJSON_GetObjectItemCaseSensitive(it, "mid");
    if (ferry__sync_is_count(mid)) { ix[n].mid = (int64_t)mid->valuedouble; ix[n].r = it; n++; }
  }
  qsort(ix, (size_t)n, sizeof *ix, cmp_result);
  /* Check the whole reply first: a reply that does not answer every mutation changes nothing. */
  for (int i = 0; i < s->nbatch; i++) {
    result_ix key = { s->batch[i].mid, NULL };
    const result_ix *hit = bsearch(&key, ix, (size_t)n, sizeof *ix, cmp_result);
    const char *st = hit ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(hit->r, "status")) : NULL;
    if (!st || (strcmp(st, "applied") && strcmp(st, "conflict") && strcmp(st, "rejected"))) {
      rc = ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "push reply: no valid result for mutation %lld", (long long)s->batch[i].mid);
      goto done;
    }
    answer[i] = hit->r;
  }
  rc = ferry__sync_in_tx(s, tx_push_results, answer);
  /* The server moved to another model: fetch it before the pulls. */
  const char *mv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "modelVersion"));
  if (rc == FERRY_OK && mv && s->model && strcmp(mv, s->model->version) && s->models_fetched < 2) s->need_model = 1;
done:
  free(ix);
  free(answer);
  cJSON_Delete(root);
  ferry__sync_free_batch(s);
  if (rc == FERRY_OK && ++s->push_rounds > 100000) rc = ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "push does not converge");
  return rc;
}


static int tx_too_large(ferry_sync *s, void *arg) {
  const char *why = arg;
  const inflight *f = &s->batch[0];
  int rc = ferry__sync_exec_bind2(s, "DELETE FROM _ferry_outbox WHERE entity=? AND oid=? AND mid=?", f->entity, f->oid, f->mid, 1);
  if (rc == FERRY_OK) rc = ferry__sync_record_error(s, f, "rejected", why, NULL, NULL, 0, 0);
  return rc;
}

int ferry__sync_push_too_large(ferry_sync *s, const char *body, size_t len) {
  (void)body; (void)len;
  int rc = FERRY_OK;
  if (s->nbatch > 1) {
    /* Smaller batches until a lone object is left over the limit. */
    size_t sent = s->req_body ? strlen(s->req_body) : s->push_budget;
    s->push_budget = sent / 2 > 4096 ? sent / 2 : 4096;
  } else if (s->nbatch == 1) {
    char why[160];
    snprintf(why, sizeof why, "too_large: the object (%zu bytes of JSON) exceeds the sync server's request limit",
             s->req_body ? strlen(s->req_body) : (size_t)0);
    rc = ferry__sync_in_tx(s, tx_too_large, why);
    if (rc == FERRY_OK) s->rejected++;
  }
  ferry__sync_free_batch(s);
  if (rc == FERRY_OK && ++s->push_rounds > 100000) rc = ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "push does not converge");
  return rc;
}
