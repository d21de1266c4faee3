/* ferry_sync: the sync engine of one database. It never does I/O itself: it
 * says which request to make next and is fed the reply, so the wasm build
 * drives it with fetch and native tests with an in-memory transport. Every
 * reply is checked whole before any of it is applied (a bad reply changes
 * nothing) and applied in transactions (pull pages in slices: see
 * ferry_sync_apply). */
#ifndef FERRY_SYNC_H
#define FERRY_SYNC_H

#include "ferry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_sync ferry_sync;

/* A request the engine wants made. Strings are owned by the engine and valid
 * until the next call on it. path is NULL when the run is complete. */
typedef struct ferry_request {
  const char *method;    /* "GET" or "POST" */
  const char *path;      /* relative to the sync base: "/model", "/push", "/pull" */
  const char *body;      /* JSON, or NULL for GET */
  size_t body_len;
} ferry_request;

/* A synchronous transport for native drivers and tests. request() performs
 * one HTTP exchange: *status 0 means the server could not be reached;
 * *resp is malloc'd by the transport and freed by the caller. */
typedef struct ferry_transport {
  int (*request_cb)(void *ctx, const ferry_request *req, int *status, char **resp, size_t *resp_len);
  void *ctx;
} ferry_transport;

/* Opens the engine on db (creating ferry's bookkeeping tables); while it is
 * open, app SQL run through ferry_db_run may not write that state or drop
 * entity tables (FERRY_FORBIDDEN). db must
 * outlive it. Caller owns *out; on failure *out may hold the message. */
int ferry_sync_open(ferry_sync **out, ferry_db *db);
/* Frees the engine. NULL is a no-op. */
void ferry_sync_close(ferry_sync *s);
/* Message of the last failure ("" if none); owned by s. */
const char *ferry_sync_errmsg(const ferry_sync *s);

/* Starts a run. filter is NULL or JSON {"entities": [...], "objects": [{"entity","id"}]}. */
int ferry_sync_begin(ferry_sync *s, const char *filter, size_t len);
/* Fills req with the next request of the run, or req->path = NULL when done. */
int ferry_sync_next(ferry_sync *s, ferry_request *req);
/* Feeds the reply to the request from ferry_sync_next: HTTP status (0: the
 * server was not reached) and body. A failure ends the run; nothing of a bad
 * reply is applied and no pending change is lost. */
int ferry_sync_feed(ferry_sync *s, int status, const char *body, size_t len);
/* A pull page is taken a slice of objects at a time, so the app's queries
 * run between slices: ferry_sync_feed scans the reply's structure; each call
 * then parses and checks the next slice of its objects (writing nothing,
 * three slices' worth at once) until all are checked, then applies
 * the next slice in its own transaction (the last one also applies the
 * removals and moves the cursor), and sets *more while steps remain. A bad
 * object fails its page before any of it applies. ferry_sync_next does
 * whatever remains before the next request.
 * A page interrupted between slices (a crash, a new run) is pulled again
 * from its cursor; applying an object again changes nothing. */
int ferry_sync_apply(ferry_sync *s, int *more);
/* Objects per slice (0: a whole page in one transaction); default 1000. */
int ferry_sync_set_apply_slice(ferry_sync *s, int objects);
/* Also ends each step of ferry_sync_apply once `ms` milliseconds have passed
 * on `clock` (a monotonic clock in milliseconds, called with `arg` every 32
 * objects, so a step takes at least that many), whichever of the slice's
 * objects and its time comes first; ms 0 or clock NULL: by objects only
 * (the default). Whole pages (slice 0) are never cut. */
int ferry_sync_set_step_budget(ferry_sync *s, double ms, double (*clock)(void *arg), void *arg);
/* Runs a whole sync through a synchronous transport. */
int ferry_sync_run(ferry_sync *s, const char *filter, size_t len, const ferry_transport *t);

/* JSON of the current run: {"pushed","pulled","removed","conflicts","rejected","changed"}, and
 * "total" (objects the server counted for the entity of the last applied pull page) when known.
 * Owned by s, valid until the next call. */
const char *ferry_sync_report(ferry_sync *s);
/* JSON {"pendingChanges","lastSyncAt","modelVersion","clientId","errors"}; owned by s. */
const char *ferry_sync_status(ferry_sync *s);
/* JSON array of sync errors [{entity,id,kind,op,reason,attrs,local,server,at}]; owned by s. */
const char *ferry_sync_errors(ferry_sync *s);
/* Puts the object's local values back in the queue (with a new timestamp). */
int ferry_sync_retry(ferry_sync *s, const char *entity, const char *id);
/* Drops the error and takes the server's state of the object at the next sync. */
int ferry_sync_discard(ferry_sync *s, const char *entity, const char *id);
/* Installs `json` as the model (validated), migrating the local tables. */
int ferry_sync_set_model(ferry_sync *s, const char *json, size_t len);

#ifdef __cplusplus
}
#endif
#endif
