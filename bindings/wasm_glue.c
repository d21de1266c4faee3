/* The wasm boundary: stores and files whose bytes live in JavaScript
 * (IndexedDB, OPFS, Node's fs), the platform's random bytes, and the entry
 * points bindings/core.js calls.
 * JS host functions never throw into wasm: they return a ferry code (or a
 * negative one for byte counts) and keep the error text for the bindings. */
#include <emscripten.h>
#include <stdlib.h>
#include <string.h>
#include "ferry.h"
#include "store.h"

/* ---- host imports (bindings/host.js implements Module.ferryHost) -------- */
EM_JS(int, js_file_read, (int id, void *buf, int n, double off), {
  return Module['ferryHost'].fileRead(id, buf, n, off);
});
EM_JS(int, js_file_write, (int id, const void *buf, int n, double off), {
  return Module['ferryHost'].fileWrite(id, buf, n, off);
});
EM_JS(double, js_file_size, (int id), {
  return Module['ferryHost'].fileSize(id);
});
EM_JS(int, js_file_truncate, (int id, double size), {
  return Module['ferryHost'].fileTruncate(id, size);
});
EM_JS(int, js_file_sync, (int id), {
  return Module['ferryHost'].fileSync(id);
});
EM_JS(void, js_file_close, (int id), {
  Module['ferryHost'].fileClose(id);
});
EM_JS(int, js_store_read, (int id, int no, void *buf), {
  return Module['ferryHost'].storeRead(id, no >>> 0, buf);
});
EM_JS(double, js_store_size, (int id), {
  return Module['ferryHost'].storeSize(id);
});
EM_JS(int, js_store_commit, (int id, const void *blocks, int n, double size), {
  return Module['ferryHost'].storeCommit(id, blocks, n, size);
});
EM_JS(int, js_store_import, (int id, const void *buf, int first, int n, double size, int last), {
  return Module['ferryHost'].storeImport(id, buf, first >>> 0, n, size, last);
});
EM_JS(void, js_store_close, (int id), {
  Module['ferryHost'].storeClose(id);
});
EM_JS(int, js_random, (void *buf, int n), {
  return Module['ferryHost'].random(buf, n);
});

/* ---- randomness (core/entropy.h) ------------------------------------------ */
#include "entropy.h"

/* The VFS's random bytes come from crypto.getRandomValues: an address or a
 * clock would be the same on every device that starts at the same moment. */
int ferry__entropy(void *buf, size_t n) {
  return js_random(buf, (int)n) == FERRY_OK ? FERRY_OK : FERRY_IO;
}

/* ---- files over JS -------------------------------------------------------- */
typedef struct js_file { ferry_file base; int id; } js_file;

static int jf_read(ferry_file *f, void *buf, size_t n, int64_t off, size_t *got) {
  int r = js_file_read(((js_file *)f)->id, buf, (int)n, (double)off);
  if (r < 0) return -r;
  *got = (size_t)r;
  return FERRY_OK;
}
static int jf_write(ferry_file *f, const void *buf, size_t n, int64_t off) {
  return js_file_write(((js_file *)f)->id, buf, (int)n, (double)off);
}
static int jf_size(ferry_file *f, int64_t *out) {
  double s = js_file_size(((js_file *)f)->id);
  if (s < 0) return (int)-s;
  *out = (int64_t)s;
  return FERRY_OK;
}
static int jf_truncate(ferry_file *f, int64_t size) {
  return js_file_truncate(((js_file *)f)->id, (double)size);
}
static int jf_sync(ferry_file *f) { return js_file_sync(((js_file *)f)->id); }
static void jf_close(ferry_file *f) {
  js_file_close(((js_file *)f)->id);
  free(f);
}
static const ferry_file_methods jf_methods = { jf_read, jf_write, jf_size, jf_truncate, jf_sync, jf_close };

static ferry_file *js_file_new(int id) {
  js_file *f = calloc(1, sizeof *f);
  if (!f) { js_file_close(id); return NULL; }
  f->base.m = &jf_methods;
  f->id = id;
  return &f->base;
}

/* ---- a store whose pages JS keeps (IndexedDB) ---------------------------- */
/* IndexedDB has no synchronous reads, so JS loads every page before open and
 * keeps them (outside wasm memory); the core reads them on demand from there
 * and hands each commit over as one batch, which JS writes in one IndexedDB
 * transaction before the API call resolves. */
typedef struct js_store { ferry_store base; int id; } js_store;

static int js_open(ferry_store *s, int64_t *size) {
  double n = js_store_size(((js_store *)s)->id);
  if (n < 0) return (int)-n;
  *size = (int64_t)n;
  return FERRY_OK;
}
static int js_read(ferry_store *s, uint32_t no, uint8_t *buf) {
  return js_store_read(((js_store *)s)->id, (int)no, buf);
}
static int js_commit(ferry_store *s, const ferry_block *b, size_t n, int64_t size) {
  return js_store_commit(((js_store *)s)->id, b, (int)n, (double)size);
}
static void js_close(ferry_store *s) {
  js_store_close(((js_store *)s)->id);
  free(s);
}
/* The blocks go over in runs of IMPORT_RUN, the last call saying so: the JS
 * store keeps them all and stores them in one transaction at the end. */
#define IMPORT_RUN 256
static int js_import(ferry_store *s, ferry_store *from, int64_t size) {
  int id = ((js_store *)s)->id;
  uint8_t *buf = malloc((size_t)IMPORT_RUN * FERRY_BLOCK);
  if (!buf) return FERRY_NOMEM;
  uint32_t nblocks = (uint32_t)((size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  int rc = FERRY_OK;
  for (uint32_t at = 0; rc == FERRY_OK; at += IMPORT_RUN) {
    uint32_t n = nblocks - at < IMPORT_RUN ? nblocks - at : IMPORT_RUN;
    for (uint32_t k = 0; rc == FERRY_OK && k < n; k++) {
      from->errmsg[0] = 0;
      if ((rc = from->m->read(from, at + k, buf + (size_t)k * FERRY_BLOCK)) != FERRY_OK)
        ferry__store_fail(s, rc, "cannot read block %u of the given database%s%s", at + k,
                          from->errmsg[0] ? ": " : "", from->errmsg);
    }
    int last = at + n >= nblocks;
    if (rc == FERRY_OK) rc = js_store_import(id, buf, (int)at, (int)n, (double)size, last);
    if (last) break;
  }
  free(buf);
  return rc;
}
static const ferry_store_methods js_store_methods = { js_open, js_read, js_commit, js_close, NULL, js_import, NULL };

/* ---- entry points ---------------------------------------------------------- */
/* cache_bytes: clean blocks the database may cache (0: the default).
 * from_id: a JS file holding a SQLite database to start a new database from
 * (0: none); *flags: FERRY_OPEN_MOVE in, FERRY_OPENED_* out. */
static int open_from(ferry_db **out, const char *name, ferry_store *s, double cache_bytes, int from_id, int *flags) {
  ferry_file *from = from_id ? js_file_new(from_id) : NULL;
  if (from_id && !from) { ferry_store_close(s); return FERRY_NOMEM; }
  return ferry_db_open_from(out, name, s, (int64_t)cache_bytes, from, flags);
}

EMSCRIPTEN_KEEPALIVE int fg_open_memory(const char *name, int from_id, ferry_db **out, int *flags) {
  ferry_store *s = NULL;
  *out = NULL;
  int rc = ferry_store_memory_open(&s);
  if (rc != FERRY_OK) { if (from_id) js_file_close(from_id); return rc; }
  return open_from(out, name, s, 0, from_id, flags);
}

EMSCRIPTEN_KEEPALIVE int fg_open_files(const char *name, int main_id, int log_id, double checkpoint_bytes,
                                       double cache_bytes, int from_id, ferry_db **out, int *flags) {
  *out = NULL;
  ferry_file *m = js_file_new(main_id), *l = js_file_new(log_id);
  if (!m || !l) {
    if (m) m->m->close(m);
    if (l) l->m->close(l);
    if (from_id) js_file_close(from_id);
    return FERRY_NOMEM;
  }
  ferry_store *s = NULL;
  int rc = ferry_store_log_open(&s, m, l, (int64_t)checkpoint_bytes);
  if (rc != FERRY_OK) { if (from_id) js_file_close(from_id); return rc; }
  return open_from(out, name, s, cache_bytes, from_id, flags);
}

EMSCRIPTEN_KEEPALIVE int fg_open_js_store(const char *name, int store_id, double cache_bytes, int from_id,
                                          ferry_db **out, int *flags) {
  *out = NULL;
  js_store *s = calloc(1, sizeof *s);
  if (!s) { js_store_close(store_id); if (from_id) js_file_close(from_id); return FERRY_NOMEM; }
  s->base.m = &js_store_methods;
  s->id = store_id;
  return open_from(out, name, &s->base, cache_bytes, from_id, flags);
}

/* The export's size as a double (exact to 2^53 bytes). */
EMSCRIPTEN_KEEPALIVE double fg_export_size(ferry_db *db) {
  int64_t n = 0;
  return ferry_db_export_size(db, &n) == FERRY_OK ? (double)n : -1;
}
EMSCRIPTEN_KEEPALIVE int fg_export_read(ferry_db *db, double off, void *buf, int n) {
  return ferry_db_export_read(db, (int64_t)off, buf, (size_t)n);
}

/* Writes changes and last insert rowid of the last run into out[0..1]. */
EMSCRIPTEN_KEEPALIVE void fg_run_info(ferry_db *db, int64_t *out) {
  out[0] = ferry_db_changes(db);
  out[1] = ferry_db_last_rowid(db);
}

/* ---- sync ----------------------------------------------------------------- */
#include "sync.h"

static double glue_now(void *arg) { (void)arg; return emscripten_get_now(); }

/* Pull steps end after ms milliseconds of this thread's performance.now()
 * (0: by objects only). */
EMSCRIPTEN_KEEPALIVE int fg_sync_set_step_budget(ferry_sync *s, double ms) {
  return ferry_sync_set_step_budget(s, ms, ms > 0 ? glue_now : NULL, NULL);
}

/* Fills out[0..3] with method, path, body pointers and body length of the
 * next request (out[1] == 0 when the run is complete). */
EMSCRIPTEN_KEEPALIVE int fg_sync_next(ferry_sync *s, uint32_t *out) {
  ferry_request req;
  int rc = ferry_sync_next(s, &req);
  out[0] = (uint32_t)(uintptr_t)req.method;
  out[1] = (uint32_t)(uintptr_t)req.path;
  out[2] = (uint32_t)(uintptr_t)req.body;
  out[3] = (uint32_t)req.body_len;
  return rc;
}
