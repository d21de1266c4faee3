/* Internal to the sync engine (core/sync/): its state and the functions its
 * parts share. Nothing here is public API; see core/sync.h for that. */
#ifndef FERRY_SYNC_INTERNAL_H
#define FERRY_SYNC_INTERNAL_H

#include <stdint.h>
#include "buf.h"
#include "cJSON.h"
#include "db_internal.h"
#include "model.h"
#include "schema.h"
#include "sqlite3.h"
#include "sync.h"
#include "sync/values.h"

#define PUSH_BATCH 500
#define PUSH_BYTES (4u << 20)   /* a push body aims at this size: well under the server limit (16 MiB by default) */
#define PULL_BYTES (4u << 20)   /* a pull page asks for at most this many bytes */
#define PULL_LIMIT 5000
#define APPLY_SLICE 1000        /* objects of a pull page applied per transaction (0: the whole page) */
#define STEP_CLOCK_EVERY 32      /* objects between looks at the clock in a step with a time budget */
#define CHECK_PER_APPLY 3       /* a check slice parses this many apply slices' objects: parsing and checking one costs about a third of applying it */
#define MAX_FILTER 1000

typedef enum { P_IDLE, P_MODEL, P_PUSH, P_PULL, P_VERIFY, P_DONE, P_FAILED } phase;

typedef struct vtarget vtarget;

typedef struct inflight {
  int64_t mid;
  char *entity, *oid, *op;
  char *values;          /* JSON of the values sent, kept for sync errors */
} inflight;

typedef struct pull_target {
  const ferry__entity *e;
  char **ids; int nids;  /* a pull by ids (db.sync({ objects }) or refresh) */
  int64_t total;         /* objects the server said the entity has (its first page's "total"), or -1 */
} pull_target;

/* A pull page in progress: its objects are parsed and checked a slice at a
 * time (nothing written), then applied a slice per transaction; the last
 * slice also applies the removals and moves the cursor. */
typedef struct pull_page {
  cJSON *root;           /* the reply's members (owned; "objects" holds those parsed so far), NULL when no page is in progress */
  const ferry__entity *e;
  cJSON *objects, *removed, *cursor;
  int by_ids, more;
  char *body;            /* a copy of the reply while objects remain to be parsed (owned) */
  size_t *spans;         /* start and end in body of each object (owned) */
  int checked;           /* objects parsed and checked; the page applies once all are */
  int applied;           /* objects and removals applied: the cursor's commit is left */
  cJSON *item;           /* the first object not applied yet */
  int next, count;       /* objects applied so far, objects in the page */
  int64_t before;        /* pulled + removed when the page began */
} pull_page;

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
  size_t push_budget;    /* bytes a push batch aims at; halved on 413 */
  /* pull */
  pull_target *targets; int ntargets, cur_target;
  int64_t last_cursor; int same_cursor;
  pull_page page;        /* the page being applied (page.root != NULL) */
  int apply_slice;       /* APPLY_SLICE unless set */
  double step_ms;        /* a pull step's time budget on `clock` (0: by objects only) */
  double (*clock)(void *arg); void *clock_arg;
  double step_t0;        /* when the pull step in progress began, on `clock` */
  int deferred_rc; char *deferred_msg;
  /* verify */
  int verify, verified, resyncs;
  vtarget *verify_t; int nverify, cur_verify;   /* the first entity pull that failed in this run */
  /* report */
  int64_t pushed, pulled, removed, conflicts, rejected, changed;
  int64_t page_total;    /* the total of the entity of the last applied page, or -1 */
  char *out;
  char guard_msg[300];
};
/* ---- state.c: errors, bookkeeping, transactions ---- */
/* Sets the engine's message (printf-style) and returns rc. */
int ferry__sync_fail(ferry_sync *s, int rc, const char *fmt, ...);
/* Maps the connection's last SQLite error to a ferry code, with `what`. */
int ferry__sync_fail_db(ferry_sync *s, const char *what);
/* malloc'd copy (caller frees); NULL for NULL. */
char *ferry__sync_dup(const char *p);
/* Replaces s->out (a cJSON_Print result owned by s). */
void ferry__sync_set_out(ferry_sync *s, char *json);
int64_t ferry__sync_now_ms(ferry_sync *s);
/* _ferry_meta access; meta_get's result is malloc'd (caller frees) or NULL. */
char *ferry__sync_meta_get(ferry_sync *s, const char *key);
int ferry__sync_meta_set(ferry_sync *s, const char *key, const char *value);
int64_t ferry__sync_meta_int(ferry_sync *s, const char *key);
/* Runs fn inside one transaction with capture off; rolls back on failure. */
int ferry__sync_in_tx(ferry_sync *s, int (*fn)(ferry_sync *, void *), void *arg);
/* Runs sql with text parameters a, b and (has_v) integer v. */
int ferry__sync_exec_bind2(ferry_sync *s, const char *sql, const char *a, const char *b, int64_t v, int has_v);
/* A request body with the client id and model version; caller owns it. */
cJSON *ferry__sync_body(ferry_sync *s);
/* Makes req a POST of root (which it frees) to path. */
int ferry__sync_post(ferry_sync *s, ferry_request *req, const char *path, cJSON *root);
/* 1 if the object has captured changes not yet acknowledged. */
int ferry__sync_object_pending(ferry_sync *s, const char *entity, const char *oid);

/* ---- values.c ---- */
/* The JSON value of column `col` of a row, encoded for attribute type t;
 * caller owns the result. */
cJSON *ferry__sync_column_json(sqlite3_stmt *st, int col, ferry__type t);
/* Binds JSON value v (of attribute type t) to parameter i; FERRY_SYNC_PROTOCOL when it does not fit. */
int ferry__sync_bind_json(sqlite3_stmt *st, int i, const cJSON *v, ferry__type t);

/* 1 if v is a JSON number that is a whole count in 0..2^53-1 (versions,
 * cursors, mids): anything else from a server is not protocol. */
int ferry__sync_is_count(const cJSON *v);

/* ---- selection.c ---- */
int ferry__sync_parse_filter(ferry_sync *s, const char *json, size_t len);
void ferry__sync_free_filter(ferry_sync *s);
int ferry__sync_entity_selected(ferry_sync *s, const char *name);
int ferry__sync_object_selected(ferry_sync *s, const char *entity, const char *id);

/* ---- outbox.c ---- */
/* Union of the attributes pending for one object: 0 none, 1 some (set in
 * *attrs, a cJSON array owned by the caller), 2 all or a delete. */
int ferry__sync_pending_attrs(ferry_sync *s, sqlite3_stmt *q, const char *entity, const char *oid, cJSON **attrs);
int ferry__sync_has_attr(const cJSON *set, const char *name);
/* Fills req with the next push, or leaves req->path NULL when nothing is pending. */
int ferry__sync_build_push(ferry_sync *s, ferry_request *req);
void ferry__sync_free_batch(ferry_sync *s);

/* ---- push_results.c ---- */
int ferry__sync_feed_push(ferry_sync *s, const char *body, size_t len);
/* The server refused the push body as too large (413): retry smaller
 * batches, or make a lone object its own too_large error. */
int ferry__sync_push_too_large(ferry_sync *s, const char *body, size_t len);
/* Records (replaces) the sync error of f's object, keeping its local values;
 * version is the server's version of the object (0 unknown), deleted 1 when
 * the server holds it deleted. */
int ferry__sync_record_error(ferry_sync *s, const inflight *f, const char *kind, const char *reason,
                             const cJSON *attrs, const cJSON *server, int64_t version, int deleted);
/* Writes the given attribute values (JSON object) into the object's row;
 * create: insert the row first when it is missing. */
int ferry__sync_apply_server_values(ferry_sync *s, const ferry__entity *e, const char *oid, const cJSON *server, int create);

/* ---- pull.c: planning and applying ---- */
int ferry__sync_plan_pulls(ferry_sync *s);
int ferry__sync_build_pull(ferry_sync *s, ferry_request *req);
/* Applies the next slice of a page whose objects are all checked, in one
 * transaction; frees the page after its last slice or on failure. */
int ferry__sync_apply_slice(ferry_sync *s);

/* ---- page.c: a pull reply, parsed and checked in slices ---- */
/* Takes a pull reply (copied; body stays the caller's): its structure and
 * members now, its objects by later steps; applies it at once when the
 * engine has no slices (apply_slice 0). */
int ferry__sync_feed_pull(ferry_sync *s, const char *body, size_t len);
/* The next step of the page in progress (a no-op without one): parses and
 * checks a slice of its objects, or once all are checked applies a slice. */
int ferry__sync_pull_step(ferry_sync *s);
/* 1 when the pull step in progress has spent its time budget (never for
 * whole pages, apply slice 0). Asked every STEP_CLOCK_EVERY objects. */
int ferry__sync_step_spent(ferry_sync *s);
/* Forgets the page in progress (what it applied stays; its cursor did not move). */
void ferry__sync_free_page(ferry_sync *s);

/* ---- guard.c ---- */
/* Checks app SQL against ferry's sync state (on) or stops checking (off). */
void ferry__sync_guard_install(ferry_sync *s, int on);

/* ---- verify.c ---- */
/* The next verify request, or req->path NULL when nothing is left to check. */
int ferry__sync_build_verify(ferry_sync *s, ferry_request *req);
int ferry__sync_feed_verify(ferry_sync *s, const char *body, size_t len);
void ferry__sync_free_verify(ferry_sync *s);
/* Adds "verified": [{entity, ok, repaired}] to a run's report. */
void ferry__sync_verify_report(ferry_sync *s, cJSON *report);

/* ---- engine.c ---- */
int ferry__sync_load_model(ferry_sync *s);
void ferry__sync_free_targets(ferry_sync *s);

#endif
