/* Sync bookkeeping shared by the engine's parts: errors, meta values,
 * transactions. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sync_internal.h"

/* ---- helpers ------------------------------------------------------------- */

int ferry__sync_fail(ferry_sync *s, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *m = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  sqlite3_free(s->errmsg);
  s->errmsg = m;
  return rc;
}

int ferry__sync_fail_db(ferry_sync *s, const char *what) {
  int code = sqlite3_errcode(s->sq) & 0xff;
  int rc = code == SQLITE_FULL ? FERRY_FULL : code == SQLITE_IOERR ? FERRY_IO :
           code == SQLITE_NOMEM ? FERRY_NOMEM : code == SQLITE_CORRUPT ? FERRY_CORRUPT : FERRY_SQL;
  return ferry__sync_fail(s, rc, "%s: %s", what, sqlite3_errmsg(s->sq));
}

char *ferry__sync_dup(const char *p) {
  if (!p) return NULL;
  size_t n = strlen(p) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, p, n);
  return d;
}

void ferry__sync_set_out(ferry_sync *s, char *json) {
  cJSON_free(s->out);
  s->out = json;
}

int64_t ferry__sync_now_ms(ferry_sync *s) {
  sqlite3_stmt *st;
  int64_t v = 0;
  if (sqlite3_prepare_v2(s->sq, "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  return v;
}

char *ferry__sync_meta_get(ferry_sync *s, const char *key) {
  sqlite3_stmt *st;
  char *v = NULL;
  if (sqlite3_prepare_v2(s->sq, "SELECT value FROM _ferry_meta WHERE key=?", -1, &st, NULL) != SQLITE_OK) return NULL;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) v = ferry__sync_dup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return v;
}

int ferry__sync_meta_set(ferry_sync *s, const char *key, const char *value) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "INSERT OR REPLACE INTO _ferry_meta VALUES (?, ?)", -1, &st, NULL) != SQLITE_OK) return FERRY_SQL;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? FERRY_OK : FERRY_SQL;
  sqlite3_finalize(st);
  return rc;
}

int64_t ferry__sync_meta_int(ferry_sync *s, const char *key) {
  char *v = ferry__sync_meta_get(s, key);
  int64_t n = v ? strtoll(v, NULL, 10) : 0;
  free(v);
  return n;
}

/* Runs fn inside one transaction with capture off; rolls back on failure. */
int ferry__sync_in_tx(ferry_sync *s, int (*fn)(ferry_sync *, void *), void *arg) {
  if (sqlite3_exec(s->sq, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return ferry__sync_fail_db(s, "cannot start a sync transaction");
  ferry__db_set_capture(s->db, 0);
  int rc = fn(s, arg);
  ferry__db_set_capture(s->db, 1);
  if (rc == FERRY_OK) {
    if (sqlite3_exec(s->sq, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
      rc = ferry__sync_fail_db(s, "cannot commit sync changes");
      if (!sqlite3_get_autocommit(s->sq)) sqlite3_exec(s->sq, "ROLLBACK", NULL, NULL, NULL);
    }
  } else {
    sqlite3_exec(s->sq, "ROLLBACK", NULL, NULL, NULL);
  }
  return rc;
}
int ferry__sync_exec_bind2(ferry_sync *s, const char *sql, const char *a, const char *b, int64_t v, int has_v) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, sql, -1, &st, NULL) != SQLITE_OK) return ferry__sync_fail_db(s, "sync bookkeeping failed");
  sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
  if (has_v) sqlite3_bind_int64(st, 3, v);
  int ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  return ok ? FERRY_OK : ferry__sync_fail_db(s, "sync bookkeeping failed");
}

int ferry__sync_object_pending(ferry_sync *s, const char *entity, const char *oid) {
  sqlite3_stmt *st;
  int found = 0;
  if (sqlite3_prepare_v2(s->sq, "SELECT 1 FROM _ferry_outbox WHERE entity=? AND oid=? LIMIT 1", -1, &st, NULL) != SQLITE_OK) return 1;
  sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
  found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}


cJSON *ferry__sync_body(ferry_sync *s) {
  cJSON *root = cJSON_CreateObject();
  char *cid = ferry__sync_meta_get(s, "client_id");
  cJSON_AddStringToObject(root, "clientId", cid ? cid : "");
  free(cid);
  cJSON_AddStringToObject(root, "modelVersion", s->model ? s->model->version : "");
  return root;
}

int ferry__sync_post(ferry_sync *s, ferry_request *req, const char *path, cJSON *root) {
  free(s->req_body);
  s->req_body = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!s->req_body) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  snprintf(s->req_path, sizeof s->req_path, "%s", path);
  req->method = "POST";
  req->path = s->req_path;
  req->body = s->req_body;
  req->body_len = strlen(s->req_body);
  return FERRY_OK;
}
