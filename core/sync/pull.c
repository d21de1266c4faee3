/* Pulls: planning which entities and objects to fetch, and applying a page
 * that page.c has parsed and checked, in slices (a transaction each, not
 * synced), then its cursor (a commit that is). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sync_internal.h"

/* ---- pull ------------------------------------------------------------------ */

static int add_target(ferry_sync *s, const ferry__entity *e) {
  pull_target *t = realloc(s->targets, (size_t)(s->ntargets + 1) * sizeof *t);
  if (!t) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  s->targets = t;
  memset(&t[s->ntargets], 0, sizeof *t);
  t[s->ntargets].e = e;
  t[s->ntargets].total = -1;
  s->ntargets++;
  return FERRY_OK;
}

static int add_target_id(ferry_sync *s, pull_target *t, const char *id) {
  char **ids = realloc(t->ids, (size_t)(t->nids + 1) * sizeof *ids);
  if (!ids) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  t->ids = ids;
  if (!(ids[t->nids] = ferry__sync_dup(id))) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  t->nids++;
  return FERRY_OK;
}

/* The pulls of this run: objects to refresh and selected objects by id,
 * then every downloaded entity by cursor. */
int ferry__sync_plan_pulls(ferry_sync *s) {
  ferry__sync_free_targets(s);
  s->last_cursor = -1; s->same_cursor = 0;
  for (int i = 0; i < s->model->nentities; i++) {
    const ferry__entity *e = &s->model->entities[i];
    if (!ferry__mode_downloads(e->mode)) continue;
    int rc = FERRY_OK;
    pull_target *t = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->sq, "SELECT oid FROM _ferry_refresh WHERE entity=?", -1, &st, NULL) != SQLITE_OK) return ferry__sync_fail_db(s, "cannot plan the pull");
    sqlite3_bind_text(st, 1, e->name, -1, SQLITE_STATIC);
    while (rc == FERRY_OK && sqlite3_step(st) == SQLITE_ROW) {
      if (!t) { if ((rc = add_target(s, e)) != FERRY_OK) break; t = &s->targets[s->ntargets - 1]; }
      rc = add_target_id(s, t, (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    for (int k = 0; rc == FERRY_OK && s->filtered && k < s->nf_objects; k++) {
      if (strcmp(s->f_objects[2 * k], e->name)) continue;
      if (!t) { if ((rc = add_target(s, e)) != FERRY_OK) break; t = &s->targets[s->ntargets - 1]; }
      rc = add_target_id(s, t, s->f_objects[2 * k + 1]);
    }
    if (rc != FERRY_OK) return rc;
  }
  for (int i = 0; i < s->model->nentities; i++) {
    const ferry__entity *e = &s->model->entities[i];
    if (!ferry__mode_downloads(e->mode) || !ferry__sync_entity_selected(s, e->name)) continue;
    int by_entity = !s->filtered;
    for (int k = 0; k < s->nf_entities; k++) if (!strcmp(s->f_entities[k], e->name)) by_entity = 1;
    if (!by_entity) continue;
    int rc = add_target(s, e);
    if (rc != FERRY_OK) return rc;
  }
  s->cur_target = 0;
  return FERRY_OK;
}

static int64_t cursor_of(ferry_sync *s, const char *entity) {
  sqlite3_stmt *st;
  int64_t c = 0;
  if (sqlite3_prepare_v2(s->sq, "SELECT cursor FROM _ferry_cursor WHERE entity=?", -1, &st, NULL) != SQLITE_OK) return 0;
  sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) c = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return c;
}

int ferry__sync_build_pull(ferry_sync *s, ferry_request *req) {
  pull_target *t = &s->targets[s->cur_target];
  cJSON *root = ferry__sync_body(s);
  cJSON_AddStringToObject(root, "entity", t->e->name);
  if (t->nids) {
    cJSON_AddItemToObject(root, "ids", cJSON_CreateStringArray((const char *const *)t->ids, t->nids));
  } else {
    cJSON_AddNumberToObject(root, "cursor", (double)cursor_of(s, t->e->name));
    cJSON_AddNumberToObject(root, "limit", PULL_LIMIT);
    cJSON_AddNumberToObject(root, "maxBytes", PULL_BYTES);
  }
  return ferry__sync_post(s, req, "/pull", root);
}


/* The server references a file this device gave up uploading (refused
 * while no object it could write named the hash, or discarded): now that a
 * pulled object names it, the upload is tried again, for that object, or
 * the server would hold a reference whose bytes no device sends. `rearm`
 * is prepared once per page, only for an entity with a file attribute. */
static int rearm_files(ferry_sync *s, sqlite3_stmt *rearm, const ferry__entity *e, const char *id, const cJSON *values) {
  for (int k = 0; rearm && k < e->nattrs; k++) {
    if (e->attrs[k].type != FT_FILE) continue;
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(values, e->attrs[k].name);
    const char *hash = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ref, "hash"));
    if (!hash) continue;
    sqlite3_reset(rearm);
    sqlite3_bind_text(rearm, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(rearm, 2, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(rearm, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(rearm, 4, e->attrs[k].name, -1, SQLITE_STATIC);
    if (sqlite3_step(rearm) != SQLITE_DONE) return ferry__sync_fail_db(s, "cannot queue a file again");
  }
  return FERRY_OK;
}

/* Objects [page.next, end) of the page in progress, fewer when the step's
 * time runs out (end then says where it stopped); `stop` receives the first
 * object after them. */
typedef struct slice { int end; cJSON *stop; } slice;

/* Applies a slice of the page (page.c has checked every object of it);
 * the last slice also the removals. Runs in one transaction
 * (ferry__sync_in_tx, through tx_apply_slice). */
static int apply_slice(ferry_sync *s, slice *sl) {
  pull_page *pg = &s->page;
  const ferry__entity *e = pg->e;
  sqlite3_stmt *up = NULL, *pend = NULL, *base = NULL, *del = NULL, *delbase = NULL, *refresh = NULL, *torefresh = NULL, *haserr = NULL, *attrbase = NULL, *noattrbase = NULL, *rearm = NULL;
  ferry__buf sql = {0};
  char part[200];
  int rc = FERRY_OK;
  snprintf(part, sizeof part, "INSERT INTO \"%s\"(id", e->name);
  ferry__buf_put(&sql, part, strlen(part));
  for (int k = 0; k < e->nattrs; k++) { snprintf(part, sizeof part, ", \"%s\"", e->attrs[k].name); ferry__buf_put(&sql, part, strlen(part)); }
  ferry__buf_put(&sql, ") VALUES (?", 11);
  for (int k = 0; k < e->nattrs; k++) ferry__buf_put(&sql, ", ?", 3);
  ferry__buf_put(&sql, ") ON CONFLICT(id) DO ", 21);
  if (e->nattrs == 0) ferry__buf_put(&sql, "NOTHING", 7);
  else {
    ferry__buf_put(&sql, "UPDATE SET ", 11);
    for (int k = 0; k < e->nattrs; k++) {
      snprintf(part, sizeof part, "%s\"%s\"=excluded.\"%s\"", k ? ", " : "", e->attrs[k].name, e->attrs[k].name);
      ferry__buf_put(&sql, part, strlen(part));
    }
  }
  ferry__buf_u8(&sql, 0);
  char delsql[200];
  snprintf(delsql, sizeof delsql, "DELETE FROM \"%s\" WHERE id=?", e->name);
  if (sql.oom ||
      sqlite3_prepare_v2(s->sq, (const char *)sql.p, -1, &up, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT op, attrs FROM _ferry_outbox WHERE entity=? AND oid=?", -1, &pend, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "INSERT OR REPLACE INTO _ferry_base VALUES (?, ?, ?)", -1, &base, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, delsql, -1, &del, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "DELETE FROM _ferry_base WHERE entity=? AND oid=?", -1, &delbase, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "DELETE FROM _ferry_refresh WHERE entity=? AND oid=?", -1, &refresh, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "INSERT OR IGNORE INTO _ferry_refresh VALUES (?, ?)", -1, &torefresh, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT 1 FROM _ferry_errors WHERE entity=? AND oid=?", -1, &haserr, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "INSERT OR REPLACE INTO _ferry_attr_base VALUES (?, ?, ?, ?)", -1, &attrbase, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "DELETE FROM _ferry_attr_base WHERE entity=? AND oid=?", -1, &noattrbase, NULL) != SQLITE_OK) {
    rc = sql.oom ? ferry__sync_fail(s, FERRY_NOMEM, "out of memory") : ferry__sync_fail_db(s, "cannot prepare the pull");
    goto done;
  }
  for (int k = 0; k < e->nattrs && !rearm; k++) {
    if (e->attrs[k].type != FT_FILE) continue;
    if (sqlite3_prepare_v2(s->sq, "UPDATE _ferry_files SET code = NULL, message = NULL, entity = ?2, oid = ?3, attr = ?4 "
                           "WHERE hash = ?1 AND code IS NOT NULL", -1, &rearm, NULL) != SQLITE_OK) {
      rc = ferry__sync_fail_db(s, "cannot prepare the pull");
      goto done;
    }
  }
  const cJSON *o = pg->item;
  int at;
  for (at = pg->next; at < sl->end; at++, o = o->next) {
    if (at > pg->next && (at - pg->next) % STEP_CLOCK_EVERY == 0 && ferry__sync_step_spent(s)) break;
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "id"));
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(o, "values");
    cJSON *pattrs = NULL;
    int pending = ferry__sync_pending_attrs(s, pend, e->name, id, &pattrs);
    if (pg->by_ids) {
      sqlite3_reset(refresh);
      sqlite3_bind_text(refresh, 1, e->name, -1, SQLITE_STATIC);
      sqlite3_bind_text(refresh, 2, id, -1, SQLITE_STATIC);
      sqlite3_step(refresh);
    }
    if (pending) {
      /* The local change wins until its push is answered; the object is
       * fetched again after that, as this page's cursor moves past it. */
      sqlite3_reset(torefresh);
      sqlite3_bind_text(torefresh, 1, e->name, -1, SQLITE_STATIC);
      sqlite3_bind_text(torefresh, 2, id, -1, SQLITE_STATIC);
      if (sqlite3_step(torefresh) != SQLITE_DONE) { cJSON_Delete(pattrs); rc = ferry__sync_fail_db(s, "cannot apply a pulled object"); goto done; }
    }
    if (pending == 2) continue;
    if (pending == 1) {
      /* Only attributes without a pending local change take the server's value. */
      for (int k = 0; k < e->nattrs && rc == FERRY_OK; k++) {
        const ferry__attr *a = &e->attrs[k];
        if (ferry__sync_has_attr(pattrs, a->name)) continue;
        snprintf(part, sizeof part, "UPDATE \"%s\" SET \"%s\"=? WHERE id=?", e->name, a->name);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->sq, part, -1, &st, NULL) != SQLITE_OK) { rc = ferry__sync_fail_db(s, "cannot apply a pulled object"); break; }
        int b = ferry__sync_bind_json(st, 1, cJSON_GetObjectItemCaseSensitive(values, a->name), a->type);
        if (b != FERRY_OK) rc = ferry__sync_fail(s, b, "pull reply for %s: attribute %s of %s has the wrong type", e->name, a->name, id);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        if (rc == FERRY_OK && sqlite3_step(st) != SQLITE_DONE) rc = ferry__sync_fail_db(s, "cannot apply a pulled object");
        sqlite3_finalize(st);
        /* This attribute is now seen at the object's pulled version, though
         * the object's base stays (another attribute is pending): an edit of
         * it is based on that version, not a conflict with it. */
        if (rc == FERRY_OK) {
          sqlite3_reset(attrbase);
          sqlite3_bind_text(attrbase, 1, e->name, -1, SQLITE_STATIC);
          sqlite3_bind_text(attrbase, 2, id, -1, SQLITE_STATIC);
          sqlite3_bind_text(attrbase, 3, a->name, -1, SQLITE_STATIC);
          sqlite3_bind_int64(attrbase, 4, (sqlite3_int64)ver->valuedouble);
          if (sqlite3_step(attrbase) != SQLITE_DONE) rc = ferry__sync_fail_db(s, "cannot apply a pulled object");
        }
      }
      cJSON_Delete(pattrs);
      if (rc != FERRY_OK) goto done;
      s->pulled++;
      continue;
    }
    sqlite3_reset(up);
    sqlite3_bind_text(up, 1, id, -1, SQLITE_STATIC);
    for (int k = 0; k < e->nattrs; k++) {
      int b = ferry__sync_bind_json(up, k + 2, cJSON_GetObjectItemCaseSensitive(values, e->attrs[k].name), e->attrs[k].type);
      if (b != FERRY_OK) {
        rc = ferry__sync_fail(s, b, "pull reply for %s: attribute %s of %s should be %s", e->name, e->attrs[k].name, id, ferry__type_name(e->attrs[k].type));
        goto done;
      }
    }
    if (sqlite3_step(up) != SQLITE_DONE) { rc = ferry__sync_fail_db(s, "cannot apply a pulled object"); goto done; }
    sqlite3_reset(base);
    sqlite3_bind_text(base, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(base, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(base, 3, (sqlite3_int64)ver->valuedouble);
    if (sqlite3_step(base) != SQLITE_DONE) { rc = ferry__sync_fail_db(s, "cannot apply a pulled object"); goto done; }
    sqlite3_reset(noattrbase);
    sqlite3_bind_text(noattrbase, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(noattrbase, 2, id, -1, SQLITE_STATIC);
    if (sqlite3_step(noattrbase) != SQLITE_DONE) { rc = ferry__sync_fail_db(s, "sync bookkeeping failed"); goto done; }
    if ((rc = rearm_files(s, rearm, e, id, values)) != FERRY_OK) goto done;
    s->pulled++;
  }
  sl->stop = (cJSON *)o;
  sl->end = at;
  if (at < pg->count) goto done;
  cJSON_ArrayForEach(o, pg->removed) {
    const char *id = cJSON_GetStringValue(o);
    if (pg->by_ids) {
      sqlite3_reset(refresh);
      sqlite3_bind_text(refresh, 1, e->name, -1, SQLITE_STATIC);
      sqlite3_bind_text(refresh, 2, id, -1, SQLITE_STATIC);
      sqlite3_step(refresh);
    }
    cJSON *pattrs = NULL;
    /* An object with a sync error keeps its local values until the app
     * retries or discards it (a discard fetches it again). */
    sqlite3_reset(haserr);
    sqlite3_bind_text(haserr, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(haserr, 2, id, -1, SQLITE_STATIC);
    if (sqlite3_step(haserr) == SQLITE_ROW) continue;
    if (ferry__sync_pending_attrs(s, pend, e->name, id, &pattrs)) {
      cJSON_Delete(pattrs);
      sqlite3_reset(torefresh);
      sqlite3_bind_text(torefresh, 1, e->name, -1, SQLITE_STATIC);
      sqlite3_bind_text(torefresh, 2, id, -1, SQLITE_STATIC);
      if (sqlite3_step(torefresh) != SQLITE_DONE) { rc = ferry__sync_fail_db(s, "cannot remove a pulled object"); goto done; }
      continue;
    }
    sqlite3_reset(del);
    sqlite3_bind_text(del, 1, id, -1, SQLITE_STATIC);
    /* A device that saw the removal has seen the object up to this page's
     * cursor: re-creating the id later is based on that, not a conflict. */
    sqlite3_stmt *b = pg->by_ids ? delbase : base;
    sqlite3_reset(b);
    sqlite3_bind_text(b, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(b, 2, id, -1, SQLITE_STATIC);
    if (!pg->by_ids) sqlite3_bind_int64(b, 3, (sqlite3_int64)pg->cursor->valuedouble);
    if (sqlite3_step(del) != SQLITE_DONE) { rc = ferry__sync_fail_db(s, "cannot remove a pulled object"); goto done; }
    /* Filtered entities list ids this device may never have had. */
    if (sqlite3_changes(s->sq) > 0) s->removed++;
    if (sqlite3_step(b) != SQLITE_DONE) { rc = ferry__sync_fail_db(s, "cannot remove a pulled object"); goto done; }
  }
done:
  ferry__buf_free(&sql);
  sqlite3_finalize(up); sqlite3_finalize(pend); sqlite3_finalize(base); sqlite3_finalize(del);
  sqlite3_finalize(delbase); sqlite3_finalize(refresh); sqlite3_finalize(torefresh); sqlite3_finalize(haserr); sqlite3_finalize(attrbase); sqlite3_finalize(noattrbase); sqlite3_finalize(rearm);
  return rc;
}

/* 1 if every trigger on the table is one of ferry's capture triggers, which
 * do nothing with capture off (as it is while a pull applies): the slice then
 * runs with triggers off, sparing SQLite a trigger program per row and kind.
 * A trigger of the app's own (e.g. keeping an FTS index) keeps them on;
 * asked per slice, as the app may add one between slices. */
static int only_capture_triggers(ferry_sync *s, const char *table) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1", -1, &st, NULL) != SQLITE_OK) return 0;
  sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
  int rc = SQLITE_DONE, only = 1;
  while (only && (rc = sqlite3_step(st)) == SQLITE_ROW) only = ferry__schema_is_capture_trigger((const char *)sqlite3_column_text(st, 0), table);
  sqlite3_finalize(st);
  return only && rc == SQLITE_DONE;
}

static int tx_apply_slice(ferry_sync *s, void *arg) {
  /* Switching triggers off or on expires prepared statements: done before
   * the slice prepares its own, and undone after they are finalized. */
  int was = 0;
  sqlite3_db_config(s->sq, SQLITE_DBCONFIG_ENABLE_TRIGGER, -1, &was);   /* -1 only reads the setting */
  int off = was && only_capture_triggers(s, s->page.e->name);
  if (off) sqlite3_db_config(s->sq, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
  int rc = apply_slice(s, arg);
  if (off) sqlite3_db_config(s->sq, SQLITE_DBCONFIG_ENABLE_TRIGGER, 1, NULL);
  return rc;
}

/* The connection's PRAGMA synchronous, or -1 when it cannot be read. */
static int synchronous_level(ferry_sync *s) {
  sqlite3_stmt *st;
  int level = -1;
  if (sqlite3_prepare_v2(s->sq, "PRAGMA synchronous", -1, &st, NULL) != SQLITE_OK) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) level = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return level;
}

static void set_synchronous(ferry_sync *s, int level) {
  char sql[40];
  snprintf(sql, sizeof sql, "PRAGMA synchronous=%d", level);
  (void)sqlite3_exec(s->sq, sql, NULL, NULL, NULL);
}

int ferry__sync_apply_slice(ferry_sync *s) {
  pull_page *pg = &s->page;
  int rc = FERRY_OK;
  if (!pg->applied) {
    int n = s->apply_slice > 0 ? s->apply_slice : pg->count;
    slice sl = { pg->next + n < pg->count ? pg->next + n : pg->count, pg->item };
    /* A slice need not be durable on its own: a page cut off is pulled
     * again from its cursor, which moves after the last slice, in a commit
     * whose sync makes the slices before it durable too (a local write's
     * commit does as well). The store still takes each slice as one atomic
     * commit: synchronous=OFF only spares the sync. */
    int level = synchronous_level(s);
    if (level > 0) set_synchronous(s, 0);
    rc = ferry__sync_in_tx(s, tx_apply_slice, &sl);
    if (level > 0) set_synchronous(s, level);
    if (rc != FERRY_OK) { ferry__sync_free_page(s); return rc; }
    pg->next = sl.end;
    pg->item = sl.stop;
    if (pg->next < pg->count) return FERRY_OK;
    pg->applied = 1;
    /* Sliced, the cursor's commit (the one that waits for storage) is a
     * step of its own. */
    if (s->apply_slice > 0 && !pg->by_ids) return FERRY_OK;
  }
  if (!pg->by_ids &&
      (rc = ferry__sync_exec_bind2(s, "INSERT OR REPLACE INTO _ferry_cursor VALUES (?1, ?3)", pg->e->name, NULL, (int64_t)pg->cursor->valuedouble, 1)) != FERRY_OK) {
    ferry__sync_free_page(s);
    return rc;
  }
  /* The page is applied and its cursor moved. */
  if (s->pulled + s->removed != pg->before) s->changed++;
  if (pg->by_ids || !pg->more) {
    s->cur_target++;
    s->last_cursor = -1; s->same_cursor = 0;
  }
  ferry__sync_free_page(s);
  return FERRY_OK;
}
