/* The sync engine: push the outbox, pull changes page by page, migrate on a
 * model change. See docs/PROTOCOL.md for the wire format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sync_internal.h"

/* ---- open / close ---------------------------------------------------------- */

/* Bumped whenever the capture triggers change. */
#define SCHEMA_REV "2"

static int tx_upgrade(ferry_sync *s, void *arg) {
  (void)arg;
  char err[400];
  int rc = ferry__schema_migrate(s->sq, s->model, s->model, err, sizeof err);
  if (rc != FERRY_OK) return ferry__sync_fail(s, rc, "cannot upgrade the local tables: %s", err);
  return ferry__sync_meta_set(s, "schema_rev", SCHEMA_REV) == FERRY_OK ? FERRY_OK : ferry__sync_fail_db(s, "cannot upgrade the local tables");
}

int ferry__sync_load_model(ferry_sync *s) {
  char *json = ferry__sync_meta_get(s, "model");
  if (!json) return FERRY_OK;
  char err[400];
  ferry__model *m = NULL;
  int rc = ferry__model_parse(json, strlen(json), &m, err, sizeof err);
  free(json);
  if (rc != FERRY_OK) return ferry__sync_fail(s, rc, "the stored model is damaged: %s", err);
  ferry__model_free(s->model);
  s->model = m;
  /* A database made by an older ferry gets today's capture triggers. */
  char *rev = ferry__sync_meta_get(s, "schema_rev");
  int current = rev && strcmp(rev, SCHEMA_REV) == 0;
  free(rev);
  return current ? FERRY_OK : ferry__sync_in_tx(s, tx_upgrade, NULL);
}

int ferry_sync_open(ferry_sync **out, ferry_db *db) {
  *out = NULL;
  ferry_sync *s = calloc(1, sizeof *s);
  if (!s) return FERRY_NOMEM;
  *out = s;
  s->db = db;
  s->apply_slice = APPLY_SLICE;
  s->sq = ferry_db_sqlite(db);
  if (!s->sq) return ferry__sync_fail(s, FERRY_CLOSED, "the database is not open");
  char err[400];
  int rc = ferry__schema_init(s->sq, err, sizeof err);
  if (rc != FERRY_OK) return ferry__sync_fail(s, rc, "cannot create sync tables: %s", err);
  rc = ferry__sync_load_model(s);
  if (rc == FERRY_OK) ferry__sync_guard_install(s, 1);
  return rc;
}

void ferry__sync_free_filter(ferry_sync *s) {
  for (int i = 0; i < s->nf_entities; i++) free(s->f_entities[i]);
  for (int i = 0; i < 2 * s->nf_objects; i++) free(s->f_objects[i]);
  free(s->f_entities); free(s->f_objects);
  s->f_entities = s->f_objects = NULL;
  s->nf_entities = s->nf_objects = 0;
  s->filtered = 0;
}

void ferry__sync_free_batch(ferry_sync *s) {
  for (int i = 0; i < s->nbatch; i++) {
    free(s->batch[i].entity); free(s->batch[i].oid); free(s->batch[i].op); free(s->batch[i].values);
  }
  free(s->batch);
  s->batch = NULL; s->nbatch = 0;
}

void ferry__sync_free_targets(ferry_sync *s) {
  for (int i = 0; i < s->ntargets; i++) {
    for (int k = 0; k < s->targets[i].nids; k++) free(s->targets[i].ids[k]);
    free(s->targets[i].ids);
  }
  free(s->targets);
  s->targets = NULL; s->ntargets = s->cur_target = 0;
}

void ferry_sync_close(ferry_sync *s) {
  if (!s) return;
  if (s->db && s->sq) ferry__sync_guard_install(s, 0);
  ferry__sync_free_filter(s); ferry__sync_free_batch(s); ferry__sync_free_targets(s); ferry__sync_free_verify(s);
  ferry__sync_free_page(s);
  ferry__model_free(s->model);
  sqlite3_free(s->errmsg);
  sqlite3_free(s->deferred_msg);
  cJSON_free(s->out);
  free(s->req_body);
  free(s);
}

const char *ferry_sync_errmsg(const ferry_sync *s) {
  return s && s->errmsg ? s->errmsg : "";
}

/* ---- model ----------------------------------------------------------------- */

struct model_arg { ferry__model *m; const char *json; size_t len; };

static int tx_set_model(ferry_sync *s, void *p) {
  struct model_arg *a = p;
  char err[400];
  int rc = ferry__schema_migrate(s->sq, s->model, a->m, err, sizeof err);
  if (rc != FERRY_OK) return ferry__sync_fail(s, rc, "cannot migrate the local tables to model %s: %s", a->m->version, err);
  char *json = malloc(a->len + 1);
  if (!json) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  memcpy(json, a->json, a->len);
  json[a->len] = 0;
  rc = ferry__sync_meta_set(s, "model", json);
  free(json);
  if (rc == FERRY_OK) rc = ferry__sync_meta_set(s, "model_version", a->m->version);
  if (rc == FERRY_OK) rc = ferry__sync_meta_set(s, "schema_rev", SCHEMA_REV);
  return rc == FERRY_OK ? FERRY_OK : ferry__sync_fail_db(s, "cannot store the model");
}

int ferry_sync_set_model(ferry_sync *s, const char *json, size_t len) {
  char err[400];
  ferry__model *m = NULL;
  int rc = ferry__model_parse(json, len, &m, err, sizeof err);
  if (rc != FERRY_OK) return ferry__sync_fail(s, rc, "the server's model is not usable: %s", err);
  struct model_arg a = { m, json, len };
  rc = ferry__sync_in_tx(s, tx_set_model, &a);
  if (rc != FERRY_OK) { ferry__model_free(m); return rc; }
  ferry__model_free(s->model);
  s->model = m;
  return FERRY_OK;
}

/* ---- the run ----------------------------------------------------------------- */

int ferry_sync_begin(ferry_sync *s, const char *filter, size_t len) {
  sqlite3_free(s->errmsg);
  s->errmsg = NULL;
  s->pushed = s->pulled = s->removed = s->conflicts = s->rejected = s->changed = 0;
  s->page_total = -1;
  s->models_fetched = 0;
  s->push_rounds = 0;
  s->need_model = 0;
  s->deferred_rc = 0;
  s->verify = s->verified = 0;
  s->resyncs = 0;
  /* A page a failed or abandoned run left half applied is pulled again
   * from its cursor, which did not move. */
  ferry__sync_free_page(s);
  ferry__sync_free_batch(s); ferry__sync_free_targets(s); ferry__sync_free_verify(s);
  int rc = ferry__sync_parse_filter(s, filter, len);
  if (rc != FERRY_OK) { s->ph = P_FAILED; return rc; }
  s->ph = s->model ? P_PUSH : P_MODEL;
  return FERRY_OK;
}

static int defer_pull_failure(ferry_sync *s, int rc);

/* One slice of the page in progress; a bad page defers like a bad reply. */
static int pull_step(ferry_sync *s) {
  int rc = ferry__sync_pull_step(s);
  if (rc == FERRY_SYNC_PROTOCOL) return defer_pull_failure(s, rc);
  if (rc != FERRY_OK) s->ph = P_FAILED;
  return rc;
}

int ferry_sync_apply(ferry_sync *s, int *more) {
  *more = 0;
  if (s->ph == P_FAILED) return ferry__sync_fail(s, FERRY_MISUSE, "this sync run has failed; start a new one");
  int rc = s->page.root ? pull_step(s) : FERRY_OK;
  *more = rc == FERRY_OK && s->page.root != NULL;
  return rc;
}

int ferry_sync_set_apply_slice(ferry_sync *s, int objects) {
  if (objects < 0) return ferry__sync_fail(s, FERRY_RANGE, "an apply slice is 0 (whole pages) or more objects");
  s->apply_slice = objects;
  return FERRY_OK;
}

int ferry_sync_set_step_budget(ferry_sync *s, double ms, double (*clock)(void *arg), void *arg) {
  if (!(ms >= 0)) return ferry__sync_fail(s, FERRY_RANGE, "a step budget is 0 (none) or more milliseconds");
  s->step_ms = clock ? ms : 0;
  s->clock = clock;
  s->clock_arg = arg;
  return FERRY_OK;
}

int ferry_sync_next(ferry_sync *s, ferry_request *req) {
  memset(req, 0, sizeof *req);
  /* A driver that does not apply slices itself gets the page finished here. */
  while (s->page.root && s->ph != P_FAILED) {
    int rc = pull_step(s);
    if (rc != FERRY_OK) return rc;
  }
  for (;;) {
    switch (s->ph) {
      case P_MODEL:
        strcpy(s->req_path, "/model");
        req->method = "GET";
        req->path = s->req_path;
        return FERRY_OK;
      case P_PUSH: {
        int rc = ferry__sync_build_push(s, req);
        if (rc != FERRY_OK) { s->ph = P_FAILED; return rc; }
        if (req->path) return FERRY_OK;
        if (s->need_model) { s->ph = P_MODEL; continue; }
        rc = ferry__sync_plan_pulls(s);
        if (rc != FERRY_OK) { s->ph = P_FAILED; return rc; }
        s->ph = P_PULL;
        continue;
      }
      case P_PULL:
        if (s->cur_target >= s->ntargets) {
          if (s->deferred_rc) {
            /* Every other entity has synced; the run still reports the failure. */
            s->ph = P_FAILED;
            int rc = s->deferred_rc;
            s->deferred_rc = 0;
            return ferry__sync_fail(s, rc, "%s", s->deferred_msg ? s->deferred_msg : "an entity failed to sync");
          }
          if (s->verify && !s->verified) { s->ph = P_VERIFY; continue; }
          char buf[32];
          snprintf(buf, sizeof buf, "%lld", (long long)ferry__sync_now_ms(s));
          if (ferry__sync_meta_set(s, "last_sync_at", buf) != FERRY_OK) { s->ph = P_FAILED; return ferry__sync_fail_db(s, "cannot record the sync time"); }
          s->ph = P_DONE;
          continue;
        }
        {
          int rc = ferry__sync_build_pull(s, req);
          if (rc != FERRY_OK) s->ph = P_FAILED;
          return rc;
        }
      case P_VERIFY: {
        int rc = ferry__sync_build_verify(s, req);
        if (rc != FERRY_OK) { s->ph = P_FAILED; return rc; }
        if (req->path) return FERRY_OK;
        /* What differs is in the refresh list: pull it by id. */
        s->verified = 1;
        rc = ferry__sync_plan_pulls(s);
        if (rc != FERRY_OK) { s->ph = P_FAILED; return rc; }
        s->ph = P_PULL;
        continue;
      }
      case P_DONE: case P_IDLE:
        return FERRY_OK;
      case P_FAILED:
        return ferry__sync_fail(s, FERRY_MISUSE, "this sync run has failed; start a new one");
    }
  }
}

static int http_error(ferry_sync *s, int status, const char *body, size_t len) {
  cJSON *root = cJSON_ParseWithLength(body, len);
  const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "message"));
  const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "error"));
  int rc;
  if (status == 0) rc = FERRY_SYNC_NETWORK;
  else if (status == 401 || status == 403) rc = FERRY_SYNC_AUTH;
  else if (status >= 500) rc = FERRY_SYNC_SERVER;
  else if (status == 413) rc = FERRY_SYNC_TOO_BIG;
  else rc = FERRY_SYNC_REJECTED;
  int shown = len > 300 ? 300 : (int)len;
  if (status == 0) ferry__sync_fail(s, rc, "the sync server could not be reached%s%.*s", shown ? ": " : "", shown, body ? body : "");
  else if (code || msg) ferry__sync_fail(s, rc, "the sync server answered %s with %d %s%s%s", s->req_path, status, code ? code : "", msg ? ": " : "", msg ? msg : "");
  else ferry__sync_fail(s, rc, "the sync server answered %s with %d (not ferry protocol: %.*s)", s->req_path, status, shown > 80 ? 80 : shown, body ? body : "");
  cJSON_Delete(root);
  return rc;
}

/* One entity's pull failed (a bad reply or an HTTP error for it): nothing of
 * it was applied. The other entities still sync; the run fails at its end. */
static int defer_pull_failure(ferry_sync *s, int rc) {
  if (!s->deferred_rc) {
    s->deferred_rc = rc;
    sqlite3_free(s->deferred_msg);
    s->deferred_msg = sqlite3_mprintf("%s", ferry_sync_errmsg(s));
  }
  s->cur_target++;
  s->last_cursor = -1; s->same_cursor = 0;
  return FERRY_OK;
}

int ferry_sync_feed(ferry_sync *s, int status, const char *body, size_t len) {
  int rc = FERRY_OK;
  if (!body) len = 0;
  if ((s->ph == P_PULL || s->ph == P_VERIFY) && status == 409) {
    cJSON *root = cJSON_ParseWithLength(body, len);
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "error"));
    int model_changed = code && strcmp(code, "model_changed") == 0;
    cJSON_Delete(root);
    if (model_changed) {
      if (s->models_fetched > 1) { s->ph = P_FAILED; return ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "the server's model keeps changing during one sync"); }
      /* Migrate first (pending changes are kept), then push under the new
       * model, which sends only attributes it still has, then pull. */
      s->need_model = 0;
      s->ph = P_MODEL;
      ferry__sync_free_verify(s);
      return FERRY_OK;
    }
  }
  if (s->ph == P_PULL && status == 410 && s->cur_target < s->ntargets && !s->targets[s->cur_target].nids) {
    cJSON *root = cJSON_ParseWithLength(body, len);
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "error"));
    int resync = code && strcmp(code, "resync") == 0;
    cJSON_Delete(root);
    if (resync) {
      /* The server forgot removals this device has not seen: pull the entity
       * again from the start, then verify it, which removes what the server
       * no longer has. Pending changes are kept throughout. */
      if (++s->resyncs > 3) { s->ph = P_FAILED; return ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "the server keeps asking for a resync"); }
      rc = ferry__sync_exec_bind2(s, "DELETE FROM _ferry_cursor WHERE entity=?", s->targets[s->cur_target].e->name, NULL, 0, 0);
      if (rc != FERRY_OK) { s->ph = P_FAILED; return rc; }
      s->verify = 1;
      s->verified = 0;
      s->last_cursor = -1; s->same_cursor = 0;
      return FERRY_OK;
    }
  }
  if (s->ph == P_PUSH && status == 413) {
    rc = ferry__sync_push_too_large(s, body, len);
    if (rc != FERRY_OK) s->ph = P_FAILED;
    return rc;
  }
  if (status != 200) {
    rc = http_error(s, status, body, len);
    if (s->ph == P_PULL && status >= 400 && status != 401 && status != 403) return defer_pull_failure(s, rc);
    s->ph = P_FAILED;
    return rc;
  }
  switch (s->ph) {
    case P_MODEL:
      s->models_fetched++;
      rc = ferry_sync_set_model(s, body, len);
      if (rc == FERRY_MODEL) rc = FERRY_SYNC_PROTOCOL;
      if (rc == FERRY_OK) {
        s->need_model = 0;
        s->changed++;
        s->ph = P_PUSH;   /* pushes anything captured, then plans the pulls under the new model */
      }
      break;
    case P_PUSH:
      rc = ferry__sync_feed_push(s, body, len);
      break;
    case P_PULL:
      rc = ferry__sync_feed_pull(s, body, len);
      if (rc == FERRY_SYNC_PROTOCOL) return defer_pull_failure(s, rc);
      break;
    case P_VERIFY:
      rc = ferry__sync_feed_verify(s, body, len);
      break;
    default:
      rc = ferry__sync_fail(s, FERRY_MISUSE, "no request is waiting for a reply");
  }
  if (rc != FERRY_OK) s->ph = P_FAILED;
  return rc;
}

int ferry_sync_run(ferry_sync *s, const char *filter, size_t len, const ferry_transport *t) {
  int rc = ferry_sync_begin(s, filter, len);
  while (rc == FERRY_OK) {
    ferry_request req;
    rc = ferry_sync_next(s, &req);
    if (rc != FERRY_OK || !req.path) break;
    int status = 0;
    char *resp = NULL;
    size_t n = 0;
    t->request_cb(t->ctx, &req, &status, &resp, &n);
    rc = ferry_sync_feed(s, status, resp, n);
    free(resp);
  }
  return rc;
}

/* ---- reports ----------------------------------------------------------------- */

const char *ferry_sync_report(ferry_sync *s) {
  cJSON *r = cJSON_CreateObject();
  cJSON_AddNumberToObject(r, "pushed", (double)s->pushed);
  cJSON_AddNumberToObject(r, "pulled", (double)s->pulled);
  cJSON_AddNumberToObject(r, "removed", (double)s->removed);
  cJSON_AddNumberToObject(r, "conflicts", (double)s->conflicts);
  cJSON_AddNumberToObject(r, "rejected", (double)s->rejected);
  cJSON_AddNumberToObject(r, "changed", (double)s->changed);
  if (s->page_total >= 0) cJSON_AddNumberToObject(r, "total", (double)s->page_total);
  ferry__sync_verify_report(s, r);
  ferry__sync_set_out(s, cJSON_PrintUnformatted(r));
  cJSON_Delete(r);
  return s->out ? s->out : "{}";
}

static int64_t count_of(ferry_sync *s, const char *sql) {
  sqlite3_stmt *st;
  int64_t n = 0;
  if (sqlite3_prepare_v2(s->sq, sql, -1, &st, NULL) != SQLITE_OK) return 0;
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

const char *ferry_sync_status(ferry_sync *s) {
  cJSON *r = cJSON_CreateObject();
  cJSON_AddNumberToObject(r, "pendingChanges", (double)count_of(s, "SELECT count(*) FROM (SELECT 1 FROM _ferry_outbox GROUP BY entity, oid)"));
  int64_t last = ferry__sync_meta_int(s, "last_sync_at");
  if (last) cJSON_AddNumberToObject(r, "lastSyncAt", (double)last); else cJSON_AddNullToObject(r, "lastSyncAt");
  if (s->model) cJSON_AddStringToObject(r, "modelVersion", s->model->version); else cJSON_AddNullToObject(r, "modelVersion");
  char *cid = ferry__sync_meta_get(s, "client_id");
  cJSON_AddStringToObject(r, "clientId", cid ? cid : "");
  free(cid);
  cJSON_AddNumberToObject(r, "errors", (double)count_of(s, "SELECT count(*) FROM _ferry_errors"));
  ferry__sync_set_out(s, cJSON_PrintUnformatted(r));
  cJSON_Delete(r);
  return s->out ? s->out : "{}";
}

const char *ferry_sync_errors(ferry_sync *s) {
  cJSON *arr = cJSON_CreateArray();
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "SELECT entity, oid, kind, op, reason, attrs, local, server, at FROM _ferry_errors ORDER BY at, entity, oid", -1, &st, NULL) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "entity", (const char *)sqlite3_column_text(st, 0));
      cJSON_AddStringToObject(o, "id", (const char *)sqlite3_column_text(st, 1));
      cJSON_AddStringToObject(o, "kind", (const char *)sqlite3_column_text(st, 2));
      cJSON_AddStringToObject(o, "op", sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "upsert");
      cJSON_AddStringToObject(o, "reason", sqlite3_column_text(st, 4) ? (const char *)sqlite3_column_text(st, 4) : "");
      const char *json_cols[] = { "attrs", "local", "server" };
      for (int k = 0; k < 3; k++) {
        const char *txt = (const char *)sqlite3_column_text(st, 5 + k);
        cJSON *v = txt ? cJSON_Parse(txt) : NULL;
        cJSON_AddItemToObject(o, json_cols[k], v ? v : cJSON_CreateNull());
      }
      cJSON_AddNumberToObject(o, "at", (double)sqlite3_column_int64(st, 8));
      cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(st);
  }
  ferry__sync_set_out(s, cJSON_PrintUnformatted(arr));
  cJSON_Delete(arr);
  return s->out ? s->out : "[]";
}

struct err_arg { const char *entity, *id; int retry; };

/* The object's latest captured local operation: 0 none, 1 an upsert, 2 a delete. */
static int last_local_op(ferry_sync *s, const char *entity, const char *id) {
  sqlite3_stmt *st;
  int r = 0;
  if (sqlite3_prepare_v2(s->sq, "SELECT op FROM _ferry_outbox WHERE entity=? AND oid=? ORDER BY seq DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) return 0;
  sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) r = strcmp((const char *)sqlite3_column_text(st, 0), "delete") == 0 ? 2 : 1;
  sqlite3_finalize(st);
  return r;
}

static int tx_resolve(ferry_sync *s, void *p) {
  struct err_arg *a = p;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "SELECT kind, op, attrs, local, version, deleted FROM _ferry_errors WHERE entity=? AND oid=?", -1, &st, NULL) != SQLITE_OK)
    return ferry__sync_fail_db(s, "cannot read sync errors");
  sqlite3_bind_text(st, 1, a->entity, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, a->id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_finalize(st);
    return ferry__sync_fail(s, FERRY_NOTFOUND, "no sync error for %s %s", a->entity, a->id);
  }
  char *kind = ferry__sync_dup((const char *)sqlite3_column_text(st, 0));
  char *op = ferry__sync_dup(sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "upsert");
  cJSON *attrs = sqlite3_column_text(st, 2) ? cJSON_Parse((const char *)sqlite3_column_text(st, 2)) : NULL;
  cJSON *local = sqlite3_column_text(st, 3) ? cJSON_Parse((const char *)sqlite3_column_text(st, 3)) : NULL;
  int64_t version = sqlite3_column_int64(st, 4);
  int server_deleted = sqlite3_column_int(st, 5);
  sqlite3_finalize(st);
  const ferry__entity *e = ferry__model_entity(s->model, a->entity);
  int rc = ferry__sync_exec_bind2(s, "DELETE FROM _ferry_errors WHERE entity=? AND oid=?", a->entity, a->id, 0, 0);
  if (rc == FERRY_OK && a->retry) {
    /* Local values go back into the row (reviving it if the server's delete
     * removed it) and into the queue, stamped now so that last-write-wins
     * sees the retry as the latest write, and based on the server version
     * the conflict showed, so server-wins lets a deliberate retry through. */
    int is_delete = strcmp(op, "delete") == 0;
    /* What the app did to the object since the conflict wins over the
     * values kept in the error: a later delete or re-creation makes the
     * retry moot, and a later edit of an attribute keeps that edit. */
    int later = last_local_op(s, a->entity, a->id);
    if (later && (later == 2) != is_delete) goto resolved;
    if (e && is_delete) {
      char sql[200];
      snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE id=?", e->name);
      rc = ferry__sync_exec_bind2(s, sql, a->id, NULL, 0, 0);
    } else if (e && cJSON_IsObject(local)) {
      sqlite3_stmt *q = NULL;
      cJSON *pending = NULL;
      int kind_pending = 0;
      if (sqlite3_prepare_v2(s->sq, "SELECT op, attrs FROM _ferry_outbox WHERE entity=? AND oid=?", -1, &q, NULL) == SQLITE_OK)
        kind_pending = ferry__sync_pending_attrs(s, q, a->entity, a->id, &pending);
      sqlite3_finalize(q);
      cJSON *restore = cJSON_CreateObject();
      const cJSON *v;
      cJSON_ArrayForEach(v, local) {
        if (kind_pending == 2 || (kind_pending == 1 && ferry__sync_has_attr(pending, v->string))) continue;
        cJSON_AddItemToObject(restore, v->string, cJSON_Duplicate(v, 1));
      }
      cJSON_Delete(pending);
      rc = ferry__sync_apply_server_values(s, e, a->id, restore, 1);
      cJSON_Delete(restore);
    }
    if (rc == FERRY_OK && version > 0)
      rc = ferry__sync_exec_bind2(s, "INSERT OR REPLACE INTO _ferry_base VALUES (?, ?, ?)", a->entity, a->id, version, 1);
    if (rc == FERRY_OK) {
      const char *attrs_json = "[\"*\"]";
      char *owned = NULL;
      if (strcmp(kind, "conflict") == 0 && !server_deleted && cJSON_IsArray(attrs)) attrs_json = owned = cJSON_PrintUnformatted(attrs);
      sqlite3_stmt *ins;
      if (sqlite3_prepare_v2(s->sq, "INSERT INTO _ferry_outbox(entity, oid, op, attrs, ts) VALUES (?,?,?,?,?)", -1, &ins, NULL) != SQLITE_OK) {
        rc = ferry__sync_fail_db(s, "cannot queue the retry");
      } else {
        sqlite3_bind_text(ins, 1, a->entity, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, a->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, strcmp(op, "delete") ? "upsert" : "delete", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, strcmp(op, "delete") ? attrs_json : "[]", -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 5, ferry__sync_now_ms(s));
        if (sqlite3_step(ins) != SQLITE_DONE) rc = ferry__sync_fail_db(s, "cannot queue the retry");
        sqlite3_finalize(ins);
      }
      cJSON_free(owned);
    }
  resolved:;
  } else if (rc == FERRY_OK && e) {
    /* Discard: take the server's state at the next sync. */
    rc = ferry__sync_exec_bind2(s, "INSERT OR IGNORE INTO _ferry_refresh VALUES (?, ?)", a->entity, a->id, 0, 0);
    if (rc == FERRY_OK && strcmp(kind, "rejected") == 0 && !ferry__mode_downloads(e->mode) && strcmp(op, "delete")) {
      /* Nothing to download for it: the rejected local object simply goes. */
      char sql[200];
      snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE id=?", e->name);
      sqlite3_stmt *d;
      if (sqlite3_prepare_v2(s->sq, sql, -1, &d, NULL) == SQLITE_OK) {
        sqlite3_bind_text(d, 1, a->id, -1, SQLITE_STATIC);
        sqlite3_step(d);
        sqlite3_finalize(d);
      }
    }
  }
  free(kind); free(op);
  cJSON_Delete(attrs); cJSON_Delete(local);
  return rc;
}

int ferry_sync_retry(ferry_sync *s, const char *entity, const char *id) {
  struct err_arg a = { entity, id, 1 };
  return ferry__sync_in_tx(s, tx_resolve, &a);
}

int ferry_sync_discard(ferry_sync *s, const char *entity, const char *id) {
  struct err_arg a = { entity, id, 0 };
  return ferry__sync_in_tx(s, tx_resolve, &a);
}
