/* The sync engine: push the outbox, pull changes page by page, migrate on a
 * model change. See docs/PROTOCOL.md for the wire format. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "cJSON.h"
#include "db_internal.h"
#include "model.h"
#include "schema.h"
#include "sqlite3.h"
#include "sync.h"

#define PUSH_BATCH 500
#define PULL_LIMIT 5000
#define MAX_FILTER 1000

typedef enum { P_IDLE, P_MODEL, P_PUSH, P_PULL, P_DONE, P_FAILED } phase;

typedef struct inflight {
  int64_t mid;
  char *entity, *oid, *op;
  char *values;          /* JSON of the values sent, kept for sync errors */
} inflight;

typedef struct pull_target {
  const ferry__entity *e;
  char **ids; int nids;  /* a pull by ids (db.sync({ objects }) or refresh) */
} pull_target;

struct ferry_sync {
  ferry_db *db;
  sqlite3 *sq;
  ferry__model *model;
  char *errmsg;
  phase ph;
  int need_model;        /* the server's model version moved: push, then fetch it */
  int models_fetched;
  char *req_body;
  char req_path[16];
  /* filter */
  int filtered;
  char **f_entities; int nf_entities;
  char **f_objects; int nf_objects;   /* pairs: entity, id */
  /* push */
  inflight *batch; int nbatch;
  int push_rounds;
  /* pull */
  pull_target *targets; int ntargets, cur_target;
  int64_t last_cursor; int same_cursor;
  /* report */
  int64_t pushed, pulled, removed, conflicts, rejected, changed;
  char *out;
};

/* ---- helpers ------------------------------------------------------------- */

static int fail(ferry_sync *s, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *m = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  sqlite3_free(s->errmsg);
  s->errmsg = m;
  return rc;
}

static int fail_db(ferry_sync *s, const char *what) {
  int code = sqlite3_errcode(s->sq) & 0xff;
  int rc = code == SQLITE_FULL ? FERRY_FULL : code == SQLITE_IOERR ? FERRY_IO :
           code == SQLITE_NOMEM ? FERRY_NOMEM : code == SQLITE_CORRUPT ? FERRY_CORRUPT : FERRY_SQL;
  return fail(s, rc, "%s: %s", what, sqlite3_errmsg(s->sq));
}

static char *dup(const char *p) {
  if (!p) return NULL;
  size_t n = strlen(p) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, p, n);
  return d;
}

static void set_out(ferry_sync *s, char *json) {
  cJSON_free(s->out);
  s->out = json;
}

static int64_t now_ms(ferry_sync *s) {
  sqlite3_stmt *st;
  int64_t v = 0;
  if (sqlite3_prepare_v2(s->sq, "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  return v;
}

static char *meta_get(ferry_sync *s, const char *key) {
  sqlite3_stmt *st;
  char *v = NULL;
  if (sqlite3_prepare_v2(s->sq, "SELECT value FROM _ferry_meta WHERE key=?", -1, &st, NULL) != SQLITE_OK) return NULL;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) v = dup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return v;
}

static int meta_set(ferry_sync *s, const char *key, const char *value) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "INSERT OR REPLACE INTO _ferry_meta VALUES (?, ?)", -1, &st, NULL) != SQLITE_OK) return FERRY_SQL;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? FERRY_OK : FERRY_SQL;
  sqlite3_finalize(st);
  return rc;
}

static int64_t meta_int(ferry_sync *s, const char *key) {
  char *v = meta_get(s, key);
  int64_t n = v ? strtoll(v, NULL, 10) : 0;
  free(v);
  return n;
}

/* Runs fn inside one transaction with capture off; rolls back on failure. */
static int in_tx(ferry_sync *s, int (*fn)(ferry_sync *, void *), void *arg) {
  if (sqlite3_exec(s->sq, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) return fail_db(s, "cannot start a sync transaction");
  ferry__db_set_capture(s->db, 0);
  int rc = fn(s, arg);
  ferry__db_set_capture(s->db, 1);
  if (rc == FERRY_OK) {
    if (sqlite3_exec(s->sq, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
      rc = fail_db(s, "cannot commit sync changes");
      if (!sqlite3_get_autocommit(s->sq)) sqlite3_exec(s->sq, "ROLLBACK", NULL, NULL, NULL);
    }
  } else {
    sqlite3_exec(s->sq, "ROLLBACK", NULL, NULL, NULL);
  }
  return rc;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64_encode(const unsigned char *p, size_t n) {
  char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    *o++ = b64[v >> 18 & 63];
    *o++ = b64[v >> 12 & 63];
    *o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
    *o++ = i + 2 < n ? b64[v & 63] : '=';
  }
  *o = 0;
  return out;
}

/* Decodes base64 (padding optional); returns NULL on invalid input. */
static unsigned char *base64_decode(const char *s, size_t *outlen) {
  size_t n = strlen(s);
  while (n && s[n - 1] == '=') n--;
  if (n % 4 == 1) return NULL;
  unsigned char *out = malloc(n * 3 / 4 + 1);
  if (!out) return NULL;
  uint32_t acc = 0; int bits = 0; size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    const char *c = strchr(b64, s[i]);
    if (!s[i] || !c) { free(out); return NULL; }
    acc = acc << 6 | (uint32_t)(c - b64);
    bits += 6;
    if (bits >= 8) { bits -= 8; out[o++] = (unsigned char)(acc >> bits); }
  }
  *outlen = o;
  return out;
}

/* ---- open / close ---------------------------------------------------------- */

static int load_model(ferry_sync *s) {
  char *json = meta_get(s, "model");
  if (!json) return FERRY_OK;
  char err[400];
  ferry__model *m = NULL;
  int rc = ferry__model_parse(json, strlen(json), &m, err, sizeof err);
  free(json);
  if (rc != FERRY_OK) return fail(s, rc, "the stored model is damaged: %s", err);
  ferry__model_free(s->model);
  s->model = m;
  return FERRY_OK;
}

int ferry_sync_open(ferry_sync **out, ferry_db *db) {
  *out = NULL;
  ferry_sync *s = calloc(1, sizeof *s);
  if (!s) return FERRY_NOMEM;
  *out = s;
  s->db = db;
  s->sq = ferry_db_sqlite(db);
  if (!s->sq) return fail(s, FERRY_CLOSED, "the database is not open");
  char err[400];
  int rc = ferry__schema_init(s->sq, err, sizeof err);
  if (rc != FERRY_OK) return fail(s, rc, "cannot create sync tables: %s", err);
  return load_model(s);
}

static void free_filter(ferry_sync *s) {
  for (int i = 0; i < s->nf_entities; i++) free(s->f_entities[i]);
  for (int i = 0; i < 2 * s->nf_objects; i++) free(s->f_objects[i]);
  free(s->f_entities); free(s->f_objects);
  s->f_entities = s->f_objects = NULL;
  s->nf_entities = s->nf_objects = 0;
  s->filtered = 0;
}

static void free_batch(ferry_sync *s) {
  for (int i = 0; i < s->nbatch; i++) {
    free(s->batch[i].entity); free(s->batch[i].oid); free(s->batch[i].op); free(s->batch[i].values);
  }
  free(s->batch);
  s->batch = NULL; s->nbatch = 0;
}

static void free_targets(ferry_sync *s) {
  for (int i = 0; i < s->ntargets; i++) {
    for (int k = 0; k < s->targets[i].nids; k++) free(s->targets[i].ids[k]);
    free(s->targets[i].ids);
  }
  free(s->targets);
  s->targets = NULL; s->ntargets = s->cur_target = 0;
}

void ferry_sync_close(ferry_sync *s) {
  if (!s) return;
  free_filter(s); free_batch(s); free_targets(s);
  ferry__model_free(s->model);
  sqlite3_free(s->errmsg);
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
  if (rc != FERRY_OK) return fail(s, rc, "cannot migrate the local tables to model %s: %s", a->m->version, err);
  char *json = malloc(a->len + 1);
  if (!json) return fail(s, FERRY_NOMEM, "out of memory");
  memcpy(json, a->json, a->len);
  json[a->len] = 0;
  rc = meta_set(s, "model", json);
  free(json);
  if (rc == FERRY_OK) rc = meta_set(s, "model_version", a->m->version);
  return rc == FERRY_OK ? FERRY_OK : fail_db(s, "cannot store the model");
}

int ferry_sync_set_model(ferry_sync *s, const char *json, size_t len) {
  char err[400];
  ferry__model *m = NULL;
  int rc = ferry__model_parse(json, len, &m, err, sizeof err);
  if (rc != FERRY_OK) return fail(s, rc, "the server's model is not usable: %s", err);
  struct model_arg a = { m, json, len };
  rc = in_tx(s, tx_set_model, &a);
  if (rc != FERRY_OK) { ferry__model_free(m); return rc; }
  ferry__model_free(s->model);
  s->model = m;
  return FERRY_OK;
}

/* ---- filter ---------------------------------------------------------------- */

static int entity_selected(ferry_sync *s, const char *name) {
  if (!s->filtered) return 1;
  for (int i = 0; i < s->nf_entities; i++) if (strcmp(s->f_entities[i], name) == 0) return 1;
  for (int i = 0; i < s->nf_objects; i++) if (strcmp(s->f_objects[2 * i], name) == 0) return 1;
  return 0;
}

static int object_selected(ferry_sync *s, const char *entity, const char *id) {
  if (!s->filtered) return 1;
  for (int i = 0; i < s->nf_entities; i++) if (strcmp(s->f_entities[i], entity) == 0) return 1;
  for (int i = 0; i < s->nf_objects; i++)
    if (strcmp(s->f_objects[2 * i], entity) == 0 && strcmp(s->f_objects[2 * i + 1], id) == 0) return 1;
  return 0;
}

static int parse_filter(ferry_sync *s, const char *json, size_t len) {
  free_filter(s);
  if (!json || !len) return FERRY_OK;
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!cJSON_IsObject(root)) { cJSON_Delete(root); return fail(s, FERRY_TYPE, "the sync filter must be an object"); }
  cJSON *ents = cJSON_GetObjectItemCaseSensitive(root, "entities");
  cJSON *objs = cJSON_GetObjectItemCaseSensitive(root, "objects");
  int rc = FERRY_OK;
  if ((ents && !cJSON_IsArray(ents)) || (objs && !cJSON_IsArray(objs))) {
    rc = fail(s, FERRY_TYPE, "sync({ entities, objects }): both are arrays");
    goto done;
  }
  if (!ents && !objs) goto done;
  s->filtered = 1;
  int ne = cJSON_GetArraySize(ents), no = cJSON_GetArraySize(objs);
  if (ne > MAX_FILTER || no > MAX_FILTER) { rc = fail(s, FERRY_RANGE, "at most %d entities and %d objects per selective sync", MAX_FILTER, MAX_FILTER); goto done; }
  s->f_entities = calloc((size_t)ne + 1, sizeof(char *));
  s->f_objects = calloc(2 * (size_t)no + 1, sizeof(char *));
  if (!s->f_entities || !s->f_objects) { rc = fail(s, FERRY_NOMEM, "out of memory"); goto done; }
  cJSON *it;
  cJSON_ArrayForEach(it, ents) {
    if (!cJSON_IsString(it)) { rc = fail(s, FERRY_TYPE, "sync({ entities }): entity names are strings"); goto done; }
    if (s->model && !ferry__model_entity(s->model, it->valuestring)) {
      rc = fail(s, FERRY_NOTFOUND, "sync({ entities }): unknown entity '%s'", it->valuestring);
      goto done;
    }
    s->f_entities[s->nf_entities++] = dup(it->valuestring);
  }
  cJSON_ArrayForEach(it, objs) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(it, "entity"), *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    if (!cJSON_IsString(e) || !cJSON_IsString(id)) { rc = fail(s, FERRY_TYPE, "sync({ objects }): each object is { entity, id } with strings"); goto done; }
    if (s->model && !ferry__model_entity(s->model, e->valuestring)) {
      rc = fail(s, FERRY_NOTFOUND, "sync({ objects }): unknown entity '%s'", e->valuestring);
      goto done;
    }
    s->f_objects[2 * s->nf_objects] = dup(e->valuestring);
    s->f_objects[2 * s->nf_objects + 1] = dup(id->valuestring);
    s->nf_objects++;
  }
done:
  cJSON_Delete(root);
  if (rc != FERRY_OK) free_filter(s);
  return rc;
}

/* ---- values -------------------------------------------------------------- */

/* The JSON value of column `col` of a row, encoded for attribute type t. */
static cJSON *column_json(sqlite3_stmt *st, int col, ferry__type t) {
  int ct = sqlite3_column_type(st, col);
  if (ct == SQLITE_NULL) return cJSON_CreateNull();
  switch (t) {
    case FT_INTEGER:
      if (ct == SQLITE_INTEGER) return cJSON_CreateNumber((double)sqlite3_column_int64(st, col));
      if (ct == SQLITE_FLOAT) return cJSON_CreateNumber(sqlite3_column_double(st, col));
      break;
    case FT_BOOLEAN:
      if (ct == SQLITE_INTEGER || ct == SQLITE_FLOAT) return cJSON_CreateBool(sqlite3_column_double(st, col) != 0);
      break;
    case FT_BINARY: case FT_FILE: {
      const void *p = sqlite3_column_blob(st, col);
      char *enc = base64_encode(p, (size_t)sqlite3_column_bytes(st, col));
      cJSON *v = enc ? cJSON_CreateString(enc) : NULL;
      free(enc);
      return v;
    }
    default:
      break;
  }
  /* Text, or a value of the wrong type: sent as it is, for the server to judge. */
  if (ct == SQLITE_INTEGER && t != FT_STRING) return cJSON_CreateNumber((double)sqlite3_column_int64(st, col));
  if (ct == SQLITE_FLOAT && t != FT_STRING && t != FT_DECIMAL) return cJSON_CreateNumber(sqlite3_column_double(st, col));
  return cJSON_CreateString((const char *)sqlite3_column_text(st, col));
}

/* Binds JSON value v (of attribute type t) to parameter i; FERRY_SYNC_PROTOCOL when it does not fit. */
static int bind_json(sqlite3_stmt *st, int i, const cJSON *v, ferry__type t) {
  if (!v || cJSON_IsNull(v)) return sqlite3_bind_null(st, i) == SQLITE_OK ? FERRY_OK : FERRY_NOMEM;
  switch (t) {
    case FT_INTEGER:
      if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 9007199254740992.0) return FERRY_SYNC_PROTOCOL;
      sqlite3_bind_int64(st, i, (sqlite3_int64)v->valuedouble);
      return FERRY_OK;
    case FT_BOOLEAN:
      if (cJSON_IsBool(v)) { sqlite3_bind_int(st, i, cJSON_IsTrue(v)); return FERRY_OK; }
      if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) { sqlite3_bind_int(st, i, v->valuedouble != 0); return FERRY_OK; }
      return FERRY_SYNC_PROTOCOL;
    case FT_DECIMAL:
      if (cJSON_IsNumber(v)) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
        sqlite3_bind_text(st, i, buf, -1, SQLITE_TRANSIENT);
        return FERRY_OK;
      }
      break;
    case FT_BINARY: case FT_FILE: {
      if (!cJSON_IsString(v)) return FERRY_SYNC_PROTOCOL;
      size_t n = 0;
      unsigned char *bytes = base64_decode(v->valuestring, &n);
      if (!bytes) return FERRY_SYNC_PROTOCOL;
      sqlite3_bind_blob(st, i, bytes, (int)n, free);
      return FERRY_OK;
    }
    default:
      break;
  }
  if (!cJSON_IsString(v)) return FERRY_SYNC_PROTOCOL;
  sqlite3_bind_text(st, i, v->valuestring, -1, SQLITE_TRANSIENT);
  return FERRY_OK;
}

/* ---- outbox ---------------------------------------------------------------- */

/* Union of the attributes pending for one object: 0 none, 1 some (set in
 * *attrs, a cJSON array owned by the caller), 2 all or a delete. */
static int pending_attrs(ferry_sync *s, sqlite3_stmt *q, const char *entity, const char *oid, cJSON **attrs) {
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

static int has_attr(const cJSON *set, const char *name) {
  const cJSON *x;
  cJSON_ArrayForEach(x, set) if (cJSON_IsString(x) && strcmp(x->valuestring, name) == 0) return 1;
  return 0;
}

/* Builds the next push batch in one transaction: objects with pending
 * changes (coalesced), each with a mutation id that is reused when the very
 * same rows are sent again, so a retried push is recognised by the server. */
static int tx_build_push(ferry_sync *s, void *arg) {
  cJSON *muts = arg;
  sqlite3_stmt *groups = NULL, *rows = NULL, *setmid = NULL, *base = NULL;
  int rc = FERRY_OK;
  int64_t next_mid = meta_int(s, "next_mid");
  if (next_mid < 1) next_mid = 1;
  if (sqlite3_prepare_v2(s->sq,
        "SELECT entity, oid, min(mid), max(mid), count(mid) = count(*), max(ts), min(seq) FROM _ferry_outbox "
        "GROUP BY entity, oid ORDER BY min(seq)", -1, &groups, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT op, attrs FROM _ferry_outbox WHERE entity=? AND oid=? ORDER BY seq", -1, &rows, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "UPDATE _ferry_outbox SET mid=? WHERE entity=? AND oid=?", -1, &setmid, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "SELECT version FROM _ferry_base WHERE entity=? AND oid=?", -1, &base, NULL) != SQLITE_OK) {
    rc = fail_db(s, "cannot read the outbox");
    goto done;
  }
  while (s->nbatch < PUSH_BATCH && sqlite3_step(groups) == SQLITE_ROW) {
    const char *entity = (const char *)sqlite3_column_text(groups, 0);
    const char *oid = (const char *)sqlite3_column_text(groups, 1);
    if (!object_selected(s, entity, oid)) continue;
    const ferry__entity *e = ferry__model_entity(s->model, entity);
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
      if (sqlite3_step(setmid) != SQLITE_DONE) { rc = fail_db(s, "cannot number the outbox"); goto done; }
    }
    /* The last operation decides: a delete, or an upsert of every changed attribute. */
    cJSON *changed = NULL;
    int all = 0;
    int last_delete = 0;
    sqlite3_reset(rows);
    sqlite3_bind_text(rows, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(rows, 2, oid, -1, SQLITE_STATIC);
    while (sqlite3_step(rows) == SQLITE_ROW) {
      last_delete = strcmp((const char *)sqlite3_column_text(rows, 0), "delete") == 0;
      if (last_delete) { all = 0; cJSON_Delete(changed); changed = NULL; continue; }
      cJSON *a = cJSON_Parse((const char *)sqlite3_column_text(rows, 1));
      cJSON *it;
      cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsString(it)) continue;
        if (strcmp(it->valuestring, "*") == 0) all = 1;
        else if (!has_attr(changed, it->valuestring)) {
          if (!changed) changed = cJSON_CreateArray();
          cJSON_AddItemToArray(changed, cJSON_CreateString(it->valuestring));
        }
      }
      cJSON_Delete(a);
    }
    sqlite3_reset(rows);
    int64_t basev = 0;
    sqlite3_reset(base);
    sqlite3_bind_text(base, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(base, 2, oid, -1, SQLITE_STATIC);
    if (sqlite3_step(base) == SQLITE_ROW) basev = sqlite3_column_int64(base, 0);
    sqlite3_reset(base);

    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "mid", (double)mid);
    cJSON_AddStringToObject(m, "entity", entity);
    cJSON_AddStringToObject(m, "id", oid);
    cJSON *values = NULL;
    if (!last_delete && e) {
      /* Values are read now: the latest local state of the object. */
      char sql[200];
      snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" WHERE id=?", e->name);
      sqlite3_stmt *row = NULL;
      if (sqlite3_prepare_v2(s->sq, sql, -1, &row, NULL) != SQLITE_OK) {
        cJSON_Delete(changed); cJSON_Delete(m);
        rc = fail_db(s, "cannot read a pending object");
        goto done;
      }
      sqlite3_bind_text(row, 1, oid, -1, SQLITE_STATIC);
      if (sqlite3_step(row) == SQLITE_ROW) {
        values = cJSON_CreateObject();
        cJSON *names = cJSON_CreateArray();
        int ncol = sqlite3_column_count(row);
        for (int k = 0; k < e->nattrs; k++) {
          const ferry__attr *a = &e->attrs[k];
          if (!all && !has_attr(changed, a->name)) continue;
          for (int c = 0; c < ncol; c++) {
            if (strcmp(sqlite3_column_name(row, c), a->name) == 0) {
              cJSON_AddItemToObject(values, a->name, column_json(row, c, a->type));
              cJSON_AddItemToArray(names, cJSON_CreateString(a->name));
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
    cJSON_AddItemToArray(muts, m);

    inflight *b = realloc(s->batch, (size_t)(s->nbatch + 1) * sizeof *b);
    if (!b) { rc = fail(s, FERRY_NOMEM, "out of memory"); goto done; }
    s->batch = b;
    inflight *f = &s->batch[s->nbatch++];
    f->mid = mid;
    f->entity = dup(entity);
    f->oid = dup(oid);
    f->op = dup(cJSON_GetObjectItemCaseSensitive(m, "op")->valuestring);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "values");
    f->values = v ? cJSON_PrintUnformatted(v) : dup("null");
  }
  {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)next_mid);
    if (meta_set(s, "next_mid", buf) != FERRY_OK) rc = fail_db(s, "cannot store the mutation counter");
  }
done:
  sqlite3_finalize(groups); sqlite3_finalize(rows); sqlite3_finalize(setmid);
  sqlite3_finalize(base);
  return rc;
}

static int build_push(ferry_sync *s, ferry_request *req) {
  free_batch(s);
  cJSON *muts = cJSON_CreateArray();
  if (!muts) return fail(s, FERRY_NOMEM, "out of memory");
  int rc = in_tx(s, tx_build_push, muts);
  if (rc != FERRY_OK || s->nbatch == 0) { cJSON_Delete(muts); free_batch(s); return rc; }
  /* Results below the smallest mid still pending are never asked for again. */
  int64_t acked = 0;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "SELECT coalesce(min(mid), (SELECT value FROM _ferry_meta WHERE key='next_mid')) - 1 FROM _ferry_outbox WHERE mid IS NOT NULL", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) acked = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  cJSON *root = cJSON_CreateObject();
  char *cid = meta_get(s, "client_id");
  cJSON_AddStringToObject(root, "clientId", cid ? cid : "");
  free(cid);
  cJSON_AddStringToObject(root, "modelVersion", s->model ? s->model->version : "");
  cJSON_AddNumberToObject(root, "ackedMid", (double)acked);
  cJSON_AddItemToObject(root, "mutations", muts);
  free(s->req_body);
  s->req_body = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!s->req_body) return fail(s, FERRY_NOMEM, "out of memory");
  strcpy(s->req_path, "/push");
  req->method = "POST";
  req->path = s->req_path;
  req->body = s->req_body;
  req->body_len = strlen(s->req_body);
  return FERRY_OK;
}

static int record_error(ferry_sync *s, const inflight *f, const char *kind, const char *reason,
                        const cJSON *attrs, const cJSON *server) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "INSERT OR REPLACE INTO _ferry_errors(entity, oid, kind, op, reason, attrs, local, server, at) "
                                "VALUES (?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK) return fail_db(s, "cannot record a sync error");
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
  sqlite3_bind_int64(st, 9, now_ms(s));
  int ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  cJSON_free(a); cJSON_free(sv);
  return ok ? FERRY_OK : fail_db(s, "cannot record a sync error");
}

static int exec_bind2(ferry_sync *s, const char *sql, const char *a, const char *b, int64_t v, int has_v) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, sql, -1, &st, NULL) != SQLITE_OK) return fail_db(s, "sync bookkeeping failed");
  sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
  if (has_v) sqlite3_bind_int64(st, 3, v);
  int ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  return ok ? FERRY_OK : fail_db(s, "sync bookkeeping failed");
}

static int object_pending(ferry_sync *s, const char *entity, const char *oid) {
  sqlite3_stmt *st;
  int found = 0;
  if (sqlite3_prepare_v2(s->sq, "SELECT 1 FROM _ferry_outbox WHERE entity=? AND oid=? LIMIT 1", -1, &st, NULL) != SQLITE_OK) return 1;
  sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
  found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

/* Writes the server's values of the attributes that lost a conflict. */
static int apply_server_values(ferry_sync *s, const ferry__entity *e, const char *oid, const cJSON *server) {
  const cJSON *v;
  cJSON_ArrayForEach(v, server) {
    const ferry__attr *a = ferry__entity_attr(e, v->string);
    if (!a) continue;
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE \"%s\" SET \"%s\"=? WHERE id=?", e->name, a->name);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->sq, sql, -1, &st, NULL) != SQLITE_OK) return fail_db(s, "cannot apply a conflict");
    int rc = bind_json(st, 1, v, a->type);
    if (rc != FERRY_OK) { sqlite3_finalize(st); return fail(s, rc, "conflict value of %s.%s has the wrong type", e->name, a->name); }
    sqlite3_bind_text(st, 2, oid, -1, SQLITE_STATIC);
    int ok = sqlite3_step(st) == SQLITE_DONE;
    sqlite3_finalize(st);
    if (!ok) return fail_db(s, "cannot apply a conflict");
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
    int rc = exec_bind2(s, "DELETE FROM _ferry_outbox WHERE entity=? AND oid=? AND mid=?", f->entity, f->oid, f->mid, 1);
    if (rc != FERRY_OK) return rc;
    int still_pending = object_pending(s, f->entity, f->oid);
    if (strcmp(status, "rejected") == 0) {
      s->rejected++;
      rc = record_error(s, f, "rejected", reason, NULL, NULL);
      if (rc != FERRY_OK) return rc;
      continue;
    }
    s->pushed++;
    if (strcmp(f->op, "delete") == 0) {
      rc = exec_bind2(s, "DELETE FROM _ferry_base WHERE entity=? AND oid=?", f->entity, f->oid, 0, 0);
    } else if (cJSON_IsNumber(version)) {
      rc = exec_bind2(s, "INSERT OR REPLACE INTO _ferry_base VALUES (?, ?, ?)", f->entity, f->oid, (int64_t)version->valuedouble, 1);
    }
    if (rc != FERRY_OK) return rc;
    if (strcmp(status, "conflict") == 0) {
      s->conflicts++;
      const cJSON *server = cJSON_GetObjectItemCaseSensitive(r, "server");
      if (e && cJSON_IsObject(server) && !still_pending) {
        rc = apply_server_values(s, e, f->oid, server);
        if (rc != FERRY_OK) return rc;
        s->changed++;
      }
      rc = record_error(s, f, "conflict", reason ? reason : "the server kept its values", cJSON_GetObjectItemCaseSensitive(r, "attrs"), server);
      if (rc != FERRY_OK) return rc;
    } else {
      /* An applied change resolves an earlier error of the object. */
      rc = exec_bind2(s, "DELETE FROM _ferry_errors WHERE entity=? AND oid=?", f->entity, f->oid, 0, 0);
      if (rc != FERRY_OK) return rc;
    }
    if (e && e->mode == SYNC_NOTHING_CLEAR && !still_pending) {
      char sql[200];
      snprintf(sql, sizeof sql, "DELETE FROM \"%s\" WHERE id=?", e->name);
      sqlite3_stmt *st;
      if (sqlite3_prepare_v2(s->sq, sql, -1, &st, NULL) != SQLITE_OK) return fail_db(s, "cannot clear an uploaded object");
      sqlite3_bind_text(st, 1, f->oid, -1, SQLITE_STATIC);
      int ok = sqlite3_step(st) == SQLITE_DONE;
      sqlite3_finalize(st);
      if (!ok) return fail_db(s, "cannot clear an uploaded object");
      rc = exec_bind2(s, "DELETE FROM _ferry_base WHERE entity=? AND oid=?", f->entity, f->oid, 0, 0);
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

static int feed_push(ferry_sync *s, const char *body, size_t len) {
  cJSON *root = cJSON_ParseWithLength(body, len);
  cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
  result_ix *ix = NULL;
  const cJSON **answer = NULL;
  int rc = FERRY_OK, n = 0;
  if (!cJSON_IsArray(results)) { rc = fail(s, FERRY_SYNC_PROTOCOL, "push reply: no results array"); goto done; }
  ix = malloc(((size_t)cJSON_GetArraySize(results) + 1) * sizeof *ix);
  answer = calloc((size_t)s->nbatch + 1, sizeof *answer);
  if (!ix || !answer) { rc = fail(s, FERRY_NOMEM, "out of memory"); goto done; }
  const cJSON *it;
  cJSON_ArrayForEach(it, results) {
    const cJSON *mid = cJSON_GetObjectItemCaseSensitive(it, "mid");
    if (cJSON_IsNumber(mid)) { ix[n].mid = (int64_t)mid->valuedouble; ix[n].r = it; n++; }
  }
  qsort(ix, (size_t)n, sizeof *ix, cmp_result);
  /* Check the whole reply first: a reply that does not answer every mutation changes nothing. */
  for (int i = 0; i < s->nbatch; i++) {
    result_ix key = { s->batch[i].mid, NULL };
    const result_ix *hit = bsearch(&key, ix, (size_t)n, sizeof *ix, cmp_result);
    const char *st = hit ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(hit->r, "status")) : NULL;
    if (!st || (strcmp(st, "applied") && strcmp(st, "conflict") && strcmp(st, "rejected"))) {
      rc = fail(s, FERRY_SYNC_PROTOCOL, "push reply: no valid result for mutation %lld", (long long)s->batch[i].mid);
      goto done;
    }
    answer[i] = hit->r;
  }
  rc = in_tx(s, tx_push_results, answer);
done:
  free(ix);
  free(answer);
  cJSON_Delete(root);
  free_batch(s);
  if (rc == FERRY_OK && ++s->push_rounds > 100000) rc = fail(s, FERRY_SYNC_PROTOCOL, "push does not converge");
  return rc;
}

/* ---- pull ------------------------------------------------------------------ */

static int add_target(ferry_sync *s, const ferry__entity *e) {
  pull_target *t = realloc(s->targets, (size_t)(s->ntargets + 1) * sizeof *t);
  if (!t) return fail(s, FERRY_NOMEM, "out of memory");
  s->targets = t;
  memset(&t[s->ntargets], 0, sizeof *t);
  t[s->ntargets].e = e;
  s->ntargets++;
  return FERRY_OK;
}

static int add_target_id(ferry_sync *s, pull_target *t, const char *id) {
  char **ids = realloc(t->ids, (size_t)(t->nids + 1) * sizeof *ids);
  if (!ids) return fail(s, FERRY_NOMEM, "out of memory");
  t->ids = ids;
  if (!(ids[t->nids] = dup(id))) return fail(s, FERRY_NOMEM, "out of memory");
  t->nids++;
  return FERRY_OK;
}

/* The pulls of this run: objects to refresh and selected objects by id,
 * then every downloaded entity by cursor. */
static int plan_pulls(ferry_sync *s) {
  free_targets(s);
  s->last_cursor = -1; s->same_cursor = 0;
  for (int i = 0; i < s->model->nentities; i++) {
    const ferry__entity *e = &s->model->entities[i];
    if (!ferry__mode_downloads(e->mode)) continue;
    int rc = FERRY_OK;
    pull_target *t = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->sq, "SELECT oid FROM _ferry_refresh WHERE entity=?", -1, &st, NULL) != SQLITE_OK) return fail_db(s, "cannot plan the pull");
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
    if (!ferry__mode_downloads(e->mode) || !entity_selected(s, e->name)) continue;
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

static int build_pull(ferry_sync *s, ferry_request *req) {
  pull_target *t = &s->targets[s->cur_target];
  cJSON *root = cJSON_CreateObject();
  char *cid = meta_get(s, "client_id");
  cJSON_AddStringToObject(root, "clientId", cid ? cid : "");
  free(cid);
  cJSON_AddStringToObject(root, "modelVersion", s->model->version);
  cJSON_AddStringToObject(root, "entity", t->e->name);
  if (t->nids) {
    cJSON_AddItemToObject(root, "ids", cJSON_CreateStringArray((const char *const *)t->ids, t->nids));
  } else {
    cJSON_AddNumberToObject(root, "cursor", (double)cursor_of(s, t->e->name));
    cJSON_AddNumberToObject(root, "limit", PULL_LIMIT);
  }
  free(s->req_body);
  s->req_body = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!s->req_body) return fail(s, FERRY_NOMEM, "out of memory");
  strcpy(s->req_path, "/pull");
  req->method = "POST";
  req->path = s->req_path;
  req->body = s->req_body;
  req->body_len = strlen(s->req_body);
  return FERRY_OK;
}

typedef struct page {
  const ferry__entity *e;
  cJSON *objects, *removed, *cursor;
  int by_ids;
} page;

static int tx_apply_page(ferry_sync *s, void *arg) {
  page *pg = arg;
  const ferry__entity *e = pg->e;
  sqlite3_stmt *up = NULL, *pend = NULL, *base = NULL, *del = NULL, *delbase = NULL, *cur = NULL, *refresh = NULL;
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
      sqlite3_prepare_v2(s->sq, "INSERT OR REPLACE INTO _ferry_cursor VALUES (?, ?)", -1, &cur, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->sq, "DELETE FROM _ferry_refresh WHERE entity=? AND oid=?", -1, &refresh, NULL) != SQLITE_OK) {
    rc = sql.oom ? fail(s, FERRY_NOMEM, "out of memory") : fail_db(s, "cannot prepare the pull");
    goto done;
  }
  const cJSON *o;
  cJSON_ArrayForEach(o, pg->objects) {
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "id"));
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(o, "values");
    if (!id || !*id || strlen(id) > 128 || !cJSON_IsNumber(ver) || !cJSON_IsObject(values)) {
      rc = fail(s, FERRY_SYNC_PROTOCOL, "pull reply for %s: an object needs id, version and values", e->name);
      goto done;
    }
    cJSON *pattrs = NULL;
    int pending = pending_attrs(s, pend, e->name, id, &pattrs);
    if (pg->by_ids) {
      sqlite3_reset(refresh);
      sqlite3_bind_text(refresh, 1, e->name, -1, SQLITE_STATIC);
      sqlite3_bind_text(refresh, 2, id, -1, SQLITE_STATIC);
      sqlite3_step(refresh);
    }
    if (pending == 2) continue;   /* the local object wins until its push is answered */
    if (pending == 1) {
      /* Only attributes without a pending local change take the server's value. */
      for (int k = 0; k < e->nattrs && rc == FERRY_OK; k++) {
        const ferry__attr *a = &e->attrs[k];
        if (has_attr(pattrs, a->name)) continue;
        snprintf(part, sizeof part, "UPDATE \"%s\" SET \"%s\"=? WHERE id=?", e->name, a->name);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->sq, part, -1, &st, NULL) != SQLITE_OK) { rc = fail_db(s, "cannot apply a pulled object"); break; }
        int b = bind_json(st, 1, cJSON_GetObjectItemCaseSensitive(values, a->name), a->type);
        if (b != FERRY_OK) rc = fail(s, b, "pull reply for %s: attribute %s of %s has the wrong type", e->name, a->name, id);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        if (rc == FERRY_OK && sqlite3_step(st) != SQLITE_DONE) rc = fail_db(s, "cannot apply a pulled object");
        sqlite3_finalize(st);
      }
      cJSON_Delete(pattrs);
      if (rc != FERRY_OK) goto done;
      s->pulled++;
      continue;
    }
    sqlite3_reset(up);
    sqlite3_bind_text(up, 1, id, -1, SQLITE_STATIC);
    for (int k = 0; k < e->nattrs; k++) {
      int b = bind_json(up, k + 2, cJSON_GetObjectItemCaseSensitive(values, e->attrs[k].name), e->attrs[k].type);
      if (b != FERRY_OK) {
        rc = fail(s, b, "pull reply for %s: attribute %s of %s should be %s", e->name, e->attrs[k].name, id, ferry__type_name(e->attrs[k].type));
        goto done;
      }
    }
    if (sqlite3_step(up) != SQLITE_DONE) { rc = fail_db(s, "cannot apply a pulled object"); goto done; }
    sqlite3_reset(base);
    sqlite3_bind_text(base, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(base, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(base, 3, (sqlite3_int64)ver->valuedouble);
    if (sqlite3_step(base) != SQLITE_DONE) { rc = fail_db(s, "cannot apply a pulled object"); goto done; }
    s->pulled++;
  }
  cJSON_ArrayForEach(o, pg->removed) {
    const char *id = cJSON_GetStringValue(o);
    if (!id) { rc = fail(s, FERRY_SYNC_PROTOCOL, "pull reply for %s: removed holds a non-string", e->name); goto done; }
    if (pg->by_ids) {
      sqlite3_reset(refresh);
      sqlite3_bind_text(refresh, 1, e->name, -1, SQLITE_STATIC);
      sqlite3_bind_text(refresh, 2, id, -1, SQLITE_STATIC);
      sqlite3_step(refresh);
    }
    cJSON *pattrs = NULL;
    if (pending_attrs(s, pend, e->name, id, &pattrs)) { cJSON_Delete(pattrs); continue; }
    sqlite3_reset(del);
    sqlite3_bind_text(del, 1, id, -1, SQLITE_STATIC);
    sqlite3_reset(delbase);
    sqlite3_bind_text(delbase, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(delbase, 2, id, -1, SQLITE_STATIC);
    if (sqlite3_step(del) != SQLITE_DONE) { rc = fail_db(s, "cannot remove a pulled object"); goto done; }
    /* Filtered entities list ids this device may never have had. */
    if (sqlite3_changes(s->sq) > 0) s->removed++;
    if (sqlite3_step(delbase) != SQLITE_DONE) { rc = fail_db(s, "cannot remove a pulled object"); goto done; }
  }
  if (!pg->by_ids) {
    /* The cursor moves in the transaction that applied its page. */
    sqlite3_reset(cur);
    sqlite3_bind_text(cur, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(cur, 2, (sqlite3_int64)pg->cursor->valuedouble);
    if (sqlite3_step(cur) != SQLITE_DONE) { rc = fail_db(s, "cannot store the pull cursor"); goto done; }
  }
done:
  ferry__buf_free(&sql);
  sqlite3_finalize(up); sqlite3_finalize(pend); sqlite3_finalize(base); sqlite3_finalize(del);
  sqlite3_finalize(delbase); sqlite3_finalize(cur); sqlite3_finalize(refresh);
  return rc;
}

static int feed_pull(ferry_sync *s, const char *body, size_t len) {
  pull_target *t = &s->targets[s->cur_target];
  cJSON *root = cJSON_ParseWithLength(body, len);
  int rc = FERRY_OK;
  if (!cJSON_IsObject(root)) { rc = fail(s, FERRY_SYNC_PROTOCOL, "pull reply is not a JSON object"); goto done; }
  page pg = { t->e, cJSON_GetObjectItemCaseSensitive(root, "objects"), cJSON_GetObjectItemCaseSensitive(root, "removed"),
              cJSON_GetObjectItemCaseSensitive(root, "cursor"), t->nids > 0 };
  const char *ent = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "entity"));
  const cJSON *more = cJSON_GetObjectItemCaseSensitive(root, "more");
  if (!ent || strcmp(ent, t->e->name) || (pg.objects && !cJSON_IsArray(pg.objects)) || (pg.removed && !cJSON_IsArray(pg.removed)) ||
      (!pg.by_ids && (!cJSON_IsNumber(pg.cursor) || !cJSON_IsBool(more)))) {
    rc = fail(s, FERRY_SYNC_PROTOCOL, "pull reply for %s: entity, objects, removed, cursor and more do not match the protocol", t->e->name);
    goto done;
  }
  int64_t before = s->pulled + s->removed;
  rc = in_tx(s, tx_apply_page, &pg);
  if (rc != FERRY_OK) goto done;
  if (s->pulled + s->removed != before) s->changed++;
  if (pg.by_ids || !cJSON_IsTrue(more)) {
    s->cur_target++;
    s->last_cursor = -1; s->same_cursor = 0;
  } else {
    int64_t c = (int64_t)pg.cursor->valuedouble;
    if (c == s->last_cursor && ++s->same_cursor > 2) { rc = fail(s, FERRY_SYNC_PROTOCOL, "pull of %s does not advance its cursor", t->e->name); goto done; }
    s->last_cursor = c;
  }
done:
  cJSON_Delete(root);
  return rc;
}

/* ---- the run ----------------------------------------------------------------- */

int ferry_sync_begin(ferry_sync *s, const char *filter, size_t len) {
  sqlite3_free(s->errmsg);
  s->errmsg = NULL;
  s->pushed = s->pulled = s->removed = s->conflicts = s->rejected = s->changed = 0;
  s->models_fetched = 0;
  s->push_rounds = 0;
  s->need_model = 0;
  free_batch(s); free_targets(s);
  int rc = parse_filter(s, filter, len);
  if (rc != FERRY_OK) { s->ph = P_FAILED; return rc; }
  s->ph = s->model ? P_PUSH : P_MODEL;
  return FERRY_OK;
}

int ferry_sync_next(ferry_sync *s, ferry_request *req) {
  memset(req, 0, sizeof *req);
  for (;;) {
    switch (s->ph) {
      case P_MODEL:
        strcpy(s->req_path, "/model");
        req->method = "GET";
        req->path = s->req_path;
        return FERRY_OK;
      case P_PUSH: {
        int rc = build_push(s, req);
        if (rc != FERRY_OK) { s->ph = P_FAILED; return rc; }
        if (req->path) return FERRY_OK;
        if (s->need_model) { s->ph = P_MODEL; continue; }
        rc = plan_pulls(s);
        if (rc != FERRY_OK) { s->ph = P_FAILED; return rc; }
        s->ph = P_PULL;
        continue;
      }
      case P_PULL:
        if (s->cur_target >= s->ntargets) {
          char buf[32];
          snprintf(buf, sizeof buf, "%lld", (long long)now_ms(s));
          if (meta_set(s, "last_sync_at", buf) != FERRY_OK) { s->ph = P_FAILED; return fail_db(s, "cannot record the sync time"); }
          s->ph = P_DONE;
          continue;
        }
        {
          int rc = build_pull(s, req);
          if (rc != FERRY_OK) s->ph = P_FAILED;
          return rc;
        }
      case P_DONE: case P_IDLE:
        return FERRY_OK;
      case P_FAILED:
        return fail(s, FERRY_MISUSE, "this sync run has failed; start a new one");
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
  if (status == 0) fail(s, rc, "the sync server could not be reached%s%.*s", shown ? ": " : "", shown, body ? body : "");
  else if (code || msg) fail(s, rc, "the sync server answered %s with %d %s%s%s", s->req_path, status, code ? code : "", msg ? ": " : "", msg ? msg : "");
  else fail(s, rc, "the sync server answered %s with %d (not ferry protocol: %.*s)", s->req_path, status, shown > 80 ? 80 : shown, body ? body : "");
  cJSON_Delete(root);
  return rc;
}

int ferry_sync_feed(ferry_sync *s, int status, const char *body, size_t len) {
  int rc = FERRY_OK;
  if (!body) len = 0;
  if (s->ph == P_PULL && status == 409) {
    cJSON *root = cJSON_ParseWithLength(body, len);
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "error"));
    int model_changed = code && strcmp(code, "model_changed") == 0;
    cJSON_Delete(root);
    if (model_changed) {
      if (s->models_fetched > 1) { s->ph = P_FAILED; return fail(s, FERRY_SYNC_PROTOCOL, "the server's model keeps changing during one sync"); }
      /* Push what is pending under the old model, then migrate, then pull. */
      s->need_model = 1;
      s->ph = P_PUSH;
      return FERRY_OK;
    }
  }
  if (status != 200) { s->ph = P_FAILED; return http_error(s, status, body, len); }
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
      rc = feed_push(s, body, len);
      break;
    case P_PULL:
      rc = feed_pull(s, body, len);
      break;
    default:
      rc = fail(s, FERRY_MISUSE, "no request is waiting for a reply");
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
  set_out(s, cJSON_PrintUnformatted(r));
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
  int64_t last = meta_int(s, "last_sync_at");
  if (last) cJSON_AddNumberToObject(r, "lastSyncAt", (double)last); else cJSON_AddNullToObject(r, "lastSyncAt");
  if (s->model) cJSON_AddStringToObject(r, "modelVersion", s->model->version); else cJSON_AddNullToObject(r, "modelVersion");
  char *cid = meta_get(s, "client_id");
  cJSON_AddStringToObject(r, "clientId", cid ? cid : "");
  free(cid);
  cJSON_AddNumberToObject(r, "errors", (double)count_of(s, "SELECT count(*) FROM _ferry_errors"));
  set_out(s, cJSON_PrintUnformatted(r));
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
  set_out(s, cJSON_PrintUnformatted(arr));
  cJSON_Delete(arr);
  return s->out ? s->out : "[]";
}

struct err_arg { const char *entity, *id; int retry; };

static int tx_resolve(ferry_sync *s, void *p) {
  struct err_arg *a = p;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "SELECT kind, op, attrs, local FROM _ferry_errors WHERE entity=? AND oid=?", -1, &st, NULL) != SQLITE_OK)
    return fail_db(s, "cannot read sync errors");
  sqlite3_bind_text(st, 1, a->entity, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, a->id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_finalize(st);
    return fail(s, FERRY_NOTFOUND, "no sync error for %s %s", a->entity, a->id);
  }
  char *kind = dup((const char *)sqlite3_column_text(st, 0));
  char *op = dup(sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "upsert");
  cJSON *attrs = sqlite3_column_text(st, 2) ? cJSON_Parse((const char *)sqlite3_column_text(st, 2)) : NULL;
  cJSON *local = sqlite3_column_text(st, 3) ? cJSON_Parse((const char *)sqlite3_column_text(st, 3)) : NULL;
  sqlite3_finalize(st);
  const ferry__entity *e = ferry__model_entity(s->model, a->entity);
  int rc = exec_bind2(s, "DELETE FROM _ferry_errors WHERE entity=? AND oid=?", a->entity, a->id, 0, 0);
  if (rc == FERRY_OK && a->retry) {
    /* Local values go back into the row and into the queue, stamped now so
     * that last-write-wins sees the retry as the latest write. */
    if (e && cJSON_IsObject(local) && strcmp(op, "delete")) rc = apply_server_values(s, e, a->id, local);
    if (rc == FERRY_OK) {
      const char *attrs_json = "[\"*\"]";
      char *owned = NULL;
      if (strcmp(kind, "conflict") == 0 && cJSON_IsArray(attrs)) attrs_json = owned = cJSON_PrintUnformatted(attrs);
      sqlite3_stmt *ins;
      if (sqlite3_prepare_v2(s->sq, "INSERT INTO _ferry_outbox(entity, oid, op, attrs, ts) VALUES (?,?,?,?,?)", -1, &ins, NULL) != SQLITE_OK) {
        rc = fail_db(s, "cannot queue the retry");
      } else {
        sqlite3_bind_text(ins, 1, a->entity, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, a->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, strcmp(op, "delete") ? "upsert" : "delete", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, strcmp(op, "delete") ? attrs_json : "[]", -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 5, now_ms(s));
        if (sqlite3_step(ins) != SQLITE_DONE) rc = fail_db(s, "cannot queue the retry");
        sqlite3_finalize(ins);
      }
      cJSON_free(owned);
    }
  } else if (rc == FERRY_OK && e) {
    /* Discard: take the server's state at the next sync. */
    rc = exec_bind2(s, "INSERT OR IGNORE INTO _ferry_refresh VALUES (?, ?)", a->entity, a->id, 0, 0);
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
  return in_tx(s, tx_resolve, &a);
}

int ferry_sync_discard(ferry_sync *s, const char *entity, const char *id) {
  struct err_arg a = { entity, id, 0 };
  return in_tx(s, tx_resolve, &a);
}
