/* The outbox: captured local changes coalesced into push batches with
 * mutation ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sync_internal.h"

/* ---- outbox ---------------------------------------------------------------- */

/* Union of the attributes pending for one object: 0 none, 1 some (set in
 * *attrs, a cJSON array owned by the caller), 2 all or a delete. */
int ferry__sync_pending_attrs(ferry_sync *s, sqlite3_stmt *q, const char *entity, const char *oid, cJSON **attrs) {
  *attrs = NULL;
  sqlite3_reset(q);
  sqlite3_bind_text(q, 1, entity, -1, SQLITE_STATIC);
  sqlite3_bind_text(q, 2, oid, -1, SQLITE_STATIC);
  int any = 0, all = 0;
  cJSON *set = NULL;
  while (sqlite3_step(q) == SQLITE_ROW) {
    any = 1;
    const char *op = (const char *)sqlite3_column_text(q, 0);
    if (strcmp(op, "delete") == 0) { all = 1; continue; }
    cJSON *a = cJSON_Parse((const char *)sqlite3_column_text(q, 1));
    cJSON *it;
    cJSON_ArrayForEach(it, a) {
      if (!cJSON_IsString(it)) continue;
      if (strcmp(it->valuestring, "*") == 0) { all = 1; break; }
      if (!set) set = cJSON_CreateArray();
      int dupe = 0;
      cJSON *x;
      cJSON_ArrayForEach(x, set) if (strcmp(x->valuestring, it->valuestring) == 0) dupe = 1;
      if (!dupe) cJSON_AddItemToArray(set, cJSON_CreateString(it->valuestring));
    }
    cJSON_Delete(a);
  }
  sqlite3_reset(q);
  if (!any) { cJSON_Delete(set); return 0; }
  if (all) { cJSON_Delete(set); return 2; }
  *attrs = set;
  return 1;
}

int ferry__sync_has_attr(const cJSON *set, const char *name) {
  const cJSON *x;
  cJSON_ArrayForEach(x, set) if (cJSON_IsString(x) && strcmp(x->valuestring, name) == 0) return 1;
  return 0;
}

/* A mutation sent before (numbered, its answer not in) is sent again with
 * the object's values as they are now. What later pending writes of the
 * object changed belongs to those writes: sent with an earlier mutation, a
 * value would reach the server even if its own write is refused (a write
 * that also gives the object away). So a resend leaves those attributes
 * out (later_attrs), and one left with nothing of its own, or followed by
 * a delete or a re-creation, joins the next mutation of the object
 * instead (merge_covered): an empty upsert would bring a deleted object
 * back. Own earlier writes never count as conflicts on the server, so the
 * joined mutation conflicts only where the later write would. */
static int later_attrs(ferry_sync *s, sqlite3_stmt *q, const char *entity, const char *oid, int64_t after_seq, cJSON **attrs) {
  sqlite3_reset(q);
  sqlite3_bind_int64(q, 3, after_seq);
  return ferry__sync_pending_attrs(s, q, entity, oid, attrs);
}

static int covers(const ferry__entity *e, const cJSON *later, int later_kind, sqlite3_stmt *rows) {
  if (later_kind == 2) return 1;
  if (later_kind == 0 || !e) return 0;
  int all_covered = 1;
  while (sqlite3_step(rows) == SQLITE_ROW) {
    if (strcmp((const char *)sqlite3_column_text(rows, 0), "delete") == 0) { all_covered = 0; continue; }
    cJSON *a = cJSON_Parse((const char *)sqlite3_column_text(rows, 1));
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
      if (!cJSON_IsString(it)) continue;
      if (strcmp(it->valuestring, "*") == 0) {
        for (int k = 0; k < e->nattrs; k++) if (!ferry__sync_has_attr(later, e->attrs[k].name)) all_covered = 0;
      } else if (!ferry__sync_has_attr(later, it->valuestring)) {
        all_covered = 0;
      }
    }
    cJSON_Delete(a);
  }
  sqlite3_reset(rows);
  return all_covered;
}

static int merge_covered(ferry_sync *s) {
  sqlite3_stmt *groups = NULL, *later = NULL, *rows = NULL, *next = NULL, *move = NULL;
  int rc = FERRY_OK;
  if (sqlite3_prepare_v2(s->sq, "SELECT entity, oid, mid, max(seq) FROM _ferry_outbox WHERE mid IS NOT NULL "
                         "GROUP BY entity, oid, mid ORDER BY entity, oid, mid", -1, &groups, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT op, attrs FROM _ferry_outbox WHERE entity=?1 AND oid=?2 AND seq > ?3", -1, &later, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT op, attrs FROM _ferry_outbox WHERE entity=?1 AND oid=?2 AND mid=?3", -1, &rows, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT mid FROM _ferry_outbox WHERE entity=?1 AND oid=?2 AND seq > ?3 ORDER BY seq LIMIT 1", -1, &next, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "UPDATE _ferry_outbox SET mid=?4 WHERE entity=?1 AND oid=?2 AND mid=?3", -1, &move, NULL) != SQLITE_OK) {
    rc = ferry__sync_fail_db(s, "cannot read the outbox");
    goto done;
  }
  /* Collected first: moving rows while the grouping query runs would change what it reads. */
  typedef struct { char *entity, *oid; int64_t mid, seq; } group;
  group *list = NULL;
  size_t n = 0;
  while (sqlite3_step(groups) == SQLITE_ROW) {
    group *g = realloc(list, (n + 1) * sizeof *g);
    if (!g) { rc = ferry__sync_fail(s, FERRY_NOMEM, "out of memory"); break; }
    list = g;
    list[n].entity = ferry__sync_dup((const char *)sqlite3_column_text(groups, 0));
    list[n].oid = ferry__sync_dup((const char *)sqlite3_column_text(groups, 1));
    list[n].mid = sqlite3_column_int64(groups, 2);
    list[n].seq = sqlite3_column_int64(groups, 3);
    n++;
  }
  for (size_t i = 0; rc == FERRY_OK && i < n; i++) {
    const group *g = &list[i];
    sqlite3_bind_text(later, 1, g->entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(later, 2, g->oid, -1, SQLITE_STATIC);
    cJSON *after = NULL;
    int kind = later_attrs(s, later, g->entity, g->oid, g->seq, &after);
    sqlite3_reset(rows);
    sqlite3_bind_text(rows, 1, g->entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(rows, 2, g->oid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(rows, 3, g->mid);
    int covered = covers(ferry__model_entity(s->model, g->entity), after, kind, rows);
    cJSON_Delete(after);
    if (!covered) continue;
    sqlite3_reset(next);
    sqlite3_bind_text(next, 1, g->entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(next, 2, g->oid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(next, 3, g->seq);
    if (sqlite3_step(next) != SQLITE_ROW) { sqlite3_reset(next); continue; }
    int joins_unnumbered = sqlite3_column_type(next, 0) == SQLITE_NULL;
    int64_t into = sqlite3_column_int64(next, 0);
    sqlite3_reset(next);
    sqlite3_reset(move);
    sqlite3_bind_text(move, 1, g->entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(move, 2, g->oid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(move, 3, g->mid);
    if (joins_unnumbered) sqlite3_bind_null(move, 4); else sqlite3_bind_int64(move, 4, into);
    if (sqlite3_step(move) != SQLITE_DONE) rc = ferry__sync_fail_db(s, "cannot renumber the outbox");
    sqlite3_reset(move);
  }
  for (size_t i = 0; i < n; i++) { free(list[i].entity); free(list[i].oid); }
  free(list);
done:
  sqlite3_finalize(groups); sqlite3_finalize(later); sqlite3_finalize(rows); sqlite3_finalize(next); sqlite3_finalize(move);
  return rc;
}

/* Builds the next push batch in one transaction: objects with pending
 * changes (coalesced), each with a mutation id that is reused when the very
 * same rows are sent again, so a retried push is recognised by the server.
 * Rows already numbered (sent, answer not yet in) stay their own mutation and
 * newer rows of the object get another, so a resend never carries values the
 * server may already have applied and others may have overwritten since. */
static int tx_build_push(ferry_sync *s, void *arg) {
  cJSON *muts = arg;
  sqlite3_stmt *groups = NULL, *rows = NULL, *setmid = NULL, *base = NULL, *abase = NULL;
  int rc = FERRY_OK;
  int64_t next_mid = ferry__sync_meta_int(s, "next_mid");
  if (next_mid < 1) next_mid = 1;
  size_t bytes = 0;
  if (!s->push_budget) s->push_budget = PUSH_BYTES;
  sqlite3_stmt *later = NULL;
  rc = merge_covered(s);
  if (rc != FERRY_OK) goto done;
  if (sqlite3_prepare_v2(s->sq,
        "SELECT entity, oid, min(mid), max(mid), count(mid) = count(*), max(ts), min(seq), max(seq) FROM _ferry_outbox "
        "GROUP BY entity, oid, mid ORDER BY min(seq)", -1, &groups, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT op, attrs FROM _ferry_outbox WHERE entity=?1 AND oid=?2 AND seq > ?3", -1, &later, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT op, attrs, ts FROM _ferry_outbox WHERE entity=? AND oid=? AND mid IS ? ORDER BY seq", -1, &rows, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "UPDATE _ferry_outbox SET mid=? WHERE entity=? AND oid=? AND mid IS NULL", -1, &setmid, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT version FROM _ferry_base WHERE entity=? AND oid=?", -1, &base, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT attr, version FROM _ferry_attr_base WHERE entity=? AND oid=? AND version > ?", -1, &abase, NULL) != SQLITE_OK) {
    rc = ferry__sync_fail_db(s, "cannot read the outbox");
    goto done;
  }
  while (s->nbatch < PUSH_BATCH && sqlite3_step(groups) == SQLITE_ROW) {
    const char *entity = (const char *)sqlite3_column_text(groups, 0);
    const char *oid = (const char *)sqlite3_column_text(groups, 1);
    if (!ferry__sync_object_selected(s, entity, oid)) continue;
    const ferry__entity *e = ferry__model_entity(s->model, entity);
    /* The last operation decides: a delete, or an upsert of every changed attribute. */
    cJSON *changed = NULL;
    int all = 0;
    int last_delete = 0;
    sqlite3_reset(rows);
    sqlite3_bind_text(rows, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(rows, 2, oid, -1, SQLITE_STATIC);
    if (sqlite3_column_type(groups, 2) == SQLITE_NULL) sqlite3_bind_null(rows, 3);
    else sqlite3_bind_int64(rows, 3, sqlite3_column_int64(groups, 2));
    /* Each attribute keeps the time of its own latest local write, so a
     * resend that coalesces an old insert with a new edit does not make the
     * insert's values look new under last-write-wins. */
    cJSON *attr_ts = cJSON_CreateObject();
    int64_t star_ts = 0;
    while (sqlite3_step(rows) == SQLITE_ROW) {
      last_delete = strcmp((const char *)sqlite3_column_text(rows, 0), "delete") == 0;
      int64_t row_ts = sqlite3_column_int64(rows, 2);
      if (last_delete) {
        all = 0; star_ts = 0;
        cJSON_Delete(changed); changed = NULL;
        cJSON_Delete(attr_ts); attr_ts = cJSON_CreateObject();
        continue;
      }
      cJSON *a = cJSON_Parse((const char *)sqlite3_column_text(rows, 1));
      cJSON *it;
      cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it)) continue;
        if (strcmp(it->valuestring, "*") == 0) { all = 1; if (row_ts > star_ts) star_ts = row_ts; continue; }
        if (!ferry__sync_has_attr(changed, it->valuestring)) {
          if (!changed) changed = cJSON_CreateArray();
          cJSON_AddItemToArray(changed, cJSON_CreateString(it->valuestring));
        }
        cJSON *prev = cJSON_GetObjectItemCaseSensitive(attr_ts, it->valuestring);
        if (!prev) cJSON_AddNumberToObject(attr_ts, it->valuestring, (double)row_ts);
        else if ((double)row_ts > prev->valuedouble) cJSON_SetNumberValue(prev, (double)row_ts);
      }
      cJSON_Delete(a);
    }
    sqlite3_reset(rows);
    if (sqlite3_column_type(groups, 2) != SQLITE_NULL && !last_delete && e) {
      /* A resend: what later pending writes changed goes with them (see merge_covered). */
      cJSON *after = NULL;
      sqlite3_bind_text(later, 1, entity, -1, SQLITE_STATIC);
      sqlite3_bind_text(later, 2, oid, -1, SQLITE_STATIC);
      if (later_attrs(s, later, entity, oid, sqlite3_column_int64(groups, 7), &after) == 1) {
        cJSON *kept = cJSON_CreateArray();
        for (int k = 0; k < e->nattrs; k++) {
          const char *an = e->attrs[k].name;
          if ((all || ferry__sync_has_attr(changed, an)) && !ferry__sync_has_attr(after, an)) cJSON_AddItemToArray(kept, cJSON_CreateString(an));
        }
        cJSON_Delete(changed);
        changed = kept;
        all = 0;
      }
      cJSON_Delete(after);
    }
    int64_t basev = 0;
    sqlite3_reset(base);
    sqlite3_bind_text(base, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(base, 2, oid, -1, SQLITE_STATIC);
    if (sqlite3_step(base) == SQLITE_ROW) basev = sqlite3_column_int64(base, 0);
    sqlite3_reset(base);

    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "entity", entity);
    cJSON_AddStringToObject(m, "id", oid);
    cJSON *values = NULL, *older = NULL;
    if (!last_delete && e) {
      /* Values are read now: the latest local state of the object. */
      char sql[200];
      snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" WHERE id=?", e->name);
      sqlite3_stmt *row = NULL;
      if (sqlite3_prepare_v2(s->sq, sql, -1, &row, NULL) != SQLITE_OK) {
        cJSON_Delete(changed); cJSON_Delete(m); cJSON_Delete(attr_ts);
        rc = ferry__sync_fail_db(s, "cannot read a pending object");
        goto done;
      }
      sqlite3_bind_text(row, 1, oid, -1, SQLITE_STATIC);
      if (sqlite3_step(row) == SQLITE_ROW) {
        values = cJSON_CreateObject();
        cJSON *names = cJSON_CreateArray();
        int ncol = sqlite3_column_count(row);
        for (int k = 0; k < e->nattrs; k++) {
          const ferry__attr *a = &e->attrs[k];
          if (!all && !ferry__sync_has_attr(changed, a->name)) continue;
          for (int c = 0; c < ncol; c++) {
            if (strcmp(sqlite3_column_name(row, c), a->name) == 0) {
              cJSON_AddItemToObject(values, a->name, ferry__sync_column_json(row, c, a->type));
              cJSON_AddItemToArray(names, cJSON_CreateString(a->name));
              const cJSON *own = cJSON_GetObjectItemCaseSensitive(attr_ts, a->name);
              int64_t t = own && (int64_t)own->valuedouble > star_ts ? (int64_t)own->valuedouble : star_ts;
              if (t && t < sqlite3_column_int64(groups, 5)) {
                if (!older) older = cJSON_CreateObject();
                cJSON_AddNumberToObject(older, a->name, (double)t);
              }
              break;
            }
          }
        }
        cJSON_AddStringToObject(m, "op", "upsert");
        cJSON_AddItemToObject(m, "changed", names);
        cJSON_AddItemToObject(m, "values", values);
      } else {
        last_delete = 1;   /* gone without a captured delete: delete it remotely too */
      }
      sqlite3_finalize(row);
    }
    cJSON_Delete(changed);
    if (last_delete || !e) {
      if (!e) {
        /* An entity the model no longer has: send what we know so the server can say why it refuses. */
        cJSON_AddStringToObject(m, "op", last_delete ? "delete" : "upsert");
        if (!last_delete) { cJSON_AddItemToObject(m, "changed", cJSON_CreateArray()); cJSON_AddItemToObject(m, "values", cJSON_CreateObject()); }
      } else {
        cJSON_AddStringToObject(m, "op", "delete");
      }
    }
    cJSON_AddNumberToObject(m, "base", (double)basev);
    cJSON_AddNumberToObject(m, "ts", (double)sqlite3_column_int64(groups, 5));
    if (older) cJSON_AddItemToObject(m, "attrTs", older);
    if (values) {
      /* Attributes seen at a newer version than the object's base. */
      cJSON *ab = NULL;
      sqlite3_reset(abase);
      sqlite3_bind_text(abase, 1, entity, -1, SQLITE_STATIC);
      sqlite3_bind_text(abase, 2, oid, -1, SQLITE_STATIC);
      sqlite3_bind_int64(abase, 3, basev);
      while (sqlite3_step(abase) == SQLITE_ROW) {
        const char *an = (const char *)sqlite3_column_text(abase, 0);
        if (!cJSON_GetObjectItemCaseSensitive(values, an)) continue;
        if (!ab) ab = cJSON_CreateObject();
        cJSON_AddNumberToObject(ab, an, (double)sqlite3_column_int64(abase, 1));
      }
      if (ab) cJSON_AddItemToObject(m, "attrBase", ab);
    }
    cJSON_Delete(attr_ts);
    /* Batches are bounded by bytes so that they fit the server's body limit;
     * an object is numbered only once it is in the batch. A single object
     * larger than the budget goes alone (a 413 then makes it an error). */
    char *printed = cJSON_PrintUnformatted(m);
    size_t size = printed ? strlen(printed) + 32 : 0;
    cJSON_free(printed);
    if (!size) { cJSON_Delete(m); rc = ferry__sync_fail(s, FERRY_NOMEM, "out of memory"); goto done; }
    if (s->nbatch > 0 && bytes + size > s->push_budget) { cJSON_Delete(m); break; }
    bytes += size;
    int64_t mid;
    int same = sqlite3_column_int(groups, 4) && sqlite3_column_int64(groups, 2) == sqlite3_column_int64(groups, 3);
    if (same) {
      mid = sqlite3_column_int64(groups, 2);
    } else {
      mid = next_mid++;
      sqlite3_reset(setmid);
      sqlite3_bind_int64(setmid, 1, mid);
      sqlite3_bind_text(setmid, 2, entity, -1, SQLITE_STATIC);
      sqlite3_bind_text(setmid, 3, oid, -1, SQLITE_STATIC);
      if (sqlite3_step(setmid) != SQLITE_DONE) { cJSON_Delete(m); rc = ferry__sync_fail_db(s, "cannot number the outbox"); goto done; }
    }
    cJSON_AddNumberToObject(m, "mid", (double)mid);
    cJSON_AddItemToArray(muts, m);

    inflight *b = realloc(s->batch, (size_t)(s->nbatch + 1) * sizeof *b);
    if (!b) { rc = ferry__sync_fail(s, FERRY_NOMEM, "out of memory"); goto done; }
    s->batch = b;
    inflight *f = &s->batch[s->nbatch++];
    f->mid = mid;
    f->entity = ferry__sync_dup(entity);
    f->oid = ferry__sync_dup(oid);
    f->op = ferry__sync_dup(cJSON_GetObjectItemCaseSensitive(m, "op")->valuestring);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "values");
    f->values = v ? cJSON_PrintUnformatted(v) : ferry__sync_dup("null");
  }
  {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)next_mid);
    if (ferry__sync_meta_set(s, "next_mid", buf) != FERRY_OK) rc = ferry__sync_fail_db(s, "cannot store the mutation counter");
  }
done:
  sqlite3_finalize(groups); sqlite3_finalize(rows); sqlite3_finalize(setmid);
  sqlite3_finalize(base); sqlite3_finalize(abase); sqlite3_finalize(later);
  return rc;
}

int ferry__sync_build_push(ferry_sync *s, ferry_request *req) {
  ferry__sync_free_batch(s);
  cJSON *muts = cJSON_CreateArray();
  if (!muts) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  int rc = ferry__sync_in_tx(s, tx_build_push, muts);
  if (rc != FERRY_OK || s->nbatch == 0) { cJSON_Delete(muts); ferry__sync_free_batch(s); return rc; }
  /* Results below the smallest mid still pending are never asked for again. */
  int64_t acked = 0;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "SELECT coalesce(min(mid), (SELECT value FROM _ferry_meta WHERE key='next_mid')) - 1 FROM _ferry_outbox WHERE mid IS NOT NULL", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) acked = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  cJSON *root = ferry__sync_body(s);
  cJSON_AddNumberToObject(root, "ackedMid", (double)acked);
  cJSON_AddItemToObject(root, "mutations", muts);
  return ferry__sync_post(s, req, "/push", root);
}

