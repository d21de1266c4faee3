/* ferry_db: one SQLite connection on ferry's VFS, with a statement cache and
 * the encoded run interface the bindings use. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sqlite3.h"
#include "buf.h"
#include "codec.h"
#include "names.h"
#include "schema.h"
#include "store.h"
#include "vfs.h"
#include "db_internal.h"
#include "sync/values.h"

#define CACHE_SIZE 32

typedef struct cached {
  char *sql; size_t len;
  sqlite3_stmt *stmt;
  uint64_t used;
} cached;

struct ferry_db {
  sqlite3 *sq;
  ferry__image *img;
  char *errmsg;
  ferry__buf out;
  cached cache[CACHE_SIZE];
  uint64_t tick;
  int64_t changes, last_rowid;
  int capture_off;       /* set while sync applies server data */
  int app_sql;           /* set while app SQL is prepared: the guard applies */
  ferry__guard_fn guard; void *guard_arg;
  char *guard_msg;       /* why the guard refused the last statement */
  ferry__names *reading; /* set while ferry_db_reads prepares: collects SQLITE_READ tables */
  ferry__names reads;
  ferry__names pending;  /* tables the open transaction changed */
  ferry__names committed;/* tables committed transactions changed, until taken */
};

/* SQLite's authorizer: app statements are checked against the guard while
 * they are prepared; ferry's own statements (and the capture triggers'
 * bodies, named _ferry_*) are not. */
static int authorize(void *arg, int action, const char *a1, const char *a2, const char *db_name, const char *trigger) {
  ferry_db *db = arg;
  (void)db_name;
  if (db->reading && action == SQLITE_READ && a1) ferry__names_add(db->reading, a1);
  if (!db->app_sql || !db->guard) return SQLITE_OK;
  if (trigger && strncmp(trigger, "_ferry_", 7) == 0) return SQLITE_OK;
  const char *why = db->guard(db->guard_arg, action, a1, a2);
  if (!why) return SQLITE_OK;
  sqlite3_free(db->guard_msg);
  db->guard_msg = sqlite3_mprintf("%s", why);
  return SQLITE_DENY;
}

void ferry__db_set_guard(ferry_db *db, ferry__guard_fn fn, void *arg) {
  db->guard = fn;
  db->guard_arg = arg;
}

/* Change tracking for live queries. The preupdate hook sees every row
 * change of a real table, WITHOUT ROWID tables included (the update hook
 * does not); a commit moves what its transaction changed to the list the
 * bindings take, a rollback forgets it. A rolled-back savepoint's tables stay
 * in the transaction's list: a spare re-run, never a missed one. */
static void on_preupdate(void *arg, sqlite3 *sq, int op, const char *db_name, const char *table,
                         sqlite3_int64 k1, sqlite3_int64 k2) {
  (void)sq; (void)op; (void)db_name; (void)k1; (void)k2;
  ferry_db *db = arg;
  ferry__names_add(&db->pending, table);
}

static int on_commit(void *arg) {
  ferry_db *db = arg;
  ferry__names_merge(&db->committed, &db->pending);
  ferry__names_clear(&db->pending);
  return 0;
}

static void on_rollback(void *arg) {
  ferry_db *db = arg;
  ferry__names_clear(&db->pending);
}

/* ferry_capture(): 1 when local writes go to the outbox (the triggers ask). */
static void fn_capture(sqlite3_context *c, int argc, sqlite3_value **argv) {
  (void)argc; (void)argv;
  ferry_db *db = sqlite3_user_data(c);
  sqlite3_result_int(c, !db->capture_off);
}

void ferry__db_set_capture(ferry_db *db, int on) { db->capture_off = !on; }

static char oom_msg[] = "out of memory";

static int fail(ferry_db *db, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *m = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  if (db->errmsg != oom_msg) sqlite3_free(db->errmsg);
  db->errmsg = m ? m : oom_msg;
  return rc;
}

static void clear_error(ferry_db *db) {
  if (db->errmsg != oom_msg) sqlite3_free(db->errmsg);
  db->errmsg = NULL;
}

static int map_sqlite(int rc) {
  switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return FERRY_OK;
    case SQLITE_CONSTRAINT: return FERRY_CONSTRAINT;
    case SQLITE_BUSY: case SQLITE_LOCKED: return FERRY_BUSY;
    case SQLITE_NOMEM: return FERRY_NOMEM;
    case SQLITE_IOERR: return FERRY_IO;
    case SQLITE_FULL: return FERRY_FULL;
    case SQLITE_CORRUPT: case SQLITE_NOTADB: return FERRY_CORRUPT;
    case SQLITE_TOOBIG: return FERRY_TOOBIG;
    case SQLITE_RANGE: return FERRY_RANGE;
    case SQLITE_MISMATCH: return FERRY_TYPE;
    case SQLITE_MISUSE: return FERRY_MISUSE;
    case SQLITE_AUTH: return FERRY_FORBIDDEN;
    default: return FERRY_SQL;
  }
}

/* Reports a SQLite failure, naming the store's reason when storage failed. */
static int fail_sqlite(ferry_db *db, int src) {
  int rc = map_sqlite(src);
  const char *store = ferry__vfs_errmsg(db->img);
  if ((rc == FERRY_IO || rc == FERRY_FULL) && store[0]) {
    if (ferry__vfs_errcode(db->img) != FERRY_OK) rc = ferry__vfs_errcode(db->img);
    return fail(db, rc, "%s (%s)", sqlite3_errmsg(db->sq), store);
  }
  if (rc == FERRY_FORBIDDEN && db->guard_msg) return fail(db, rc, "%s", db->guard_msg);
  return fail(db, rc, "%s", sqlite3_errmsg(db->sq));
}

int ferry_db_open(ferry_db **out, const char *name, ferry_store *store) {
  return ferry_db_open_from(out, name, store, 0, NULL, NULL);
}

int ferry_db_open_cached(ferry_db **out, const char *name, ferry_store *store, int64_t cache_bytes) {
  return ferry_db_open_from(out, name, store, cache_bytes, NULL, NULL);
}

/* Opens db->sq on the attached image `name`. */
static int connect(ferry_db *db, const char *name) {
  int rc = sqlite3_open_v2(name, &db->sq, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                           SQLITE_OPEN_EXRESCODE, FERRY_VFS_NAME);
  if (rc != SQLITE_OK) {
    if (!db->sq) return fail(db, FERRY_NOMEM, "out of memory opening '%s'", name);
    return fail_sqlite(db, rc);
  }
  rc = sqlite3_create_function(db->sq, "ferry_capture", 0, SQLITE_UTF8, db, fn_capture, NULL, NULL);
  if (rc == SQLITE_OK) rc = ferry__values_register(db->sq);
  if (rc == SQLITE_OK) rc = sqlite3_set_authorizer(db->sq, authorize, db);
  if (rc != SQLITE_OK) return fail_sqlite(db, rc);
  sqlite3_preupdate_hook(db->sq, on_preupdate, db);
  sqlite3_commit_hook(db->sq, on_commit, db);
  sqlite3_rollback_hook(db->sq, on_rollback, db);
  /* The store is atomic per commit, so the journal only serves in-process
   * rollback. A first read proves the stored image is a database. */
  rc = sqlite3_exec(db->sq,
    "PRAGMA journal_mode=MEMORY; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
    "SELECT count(*) FROM sqlite_schema;", NULL, NULL, NULL);
  if (rc != SQLITE_OK) return fail_sqlite(db, rc);
  return FERRY_OK;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* What SQLite's file format promises of a whole database file, checked on
 * its first block (FERRY_BLOCK bytes, zeros past the file's end). Patches a
 * WAL-mode header to rollback mode: only the file's own bytes are given (no
 * -wal), and ferry's VFS has no WAL; *patched tells. */
static int check_header(ferry_db *db, uint8_t *b0, int64_t size, int *patched) {
  *patched = 0;
  if (size > 0 && size < 512)
    return fail(db, FERRY_NOT_DATABASE, "the given database is %lld bytes; a SQLite database file is at least 512", (long long)size);
  if (size == 0) return FERRY_OK;   /* SQLite's empty database (what an export of one gives) */
  if (memcmp(b0, "SQLite format 3", 16) != 0)
    return fail(db, FERRY_NOT_DATABASE, "the given bytes do not start with SQLite's header: not a SQLite database file");
  uint32_t page = (uint32_t)b0[16] << 8 | b0[17];
  if (page == 1) page = 65536;
  if (page < 512 || (page & (page - 1)))
    return fail(db, FERRY_NOT_DATABASE, "the given database's header names a page size of %u", page);
  if (size % page)
    return fail(db, FERRY_NOT_DATABASE, "the given database is %lld bytes, not a whole number of its %u-byte pages (cut short?)", (long long)size, page);
  if (b0[18] < 1 || b0[18] > 2 || b0[19] < 1 || b0[19] > 2)
    return fail(db, FERRY_NOT_DATABASE, "the given database has file format version %u/%u; SQLite 3 writes 1 or 2", b0[18], b0[19]);
  /* The header's page count holds when its two change counters agree. */
  uint32_t pages = be32(b0 + 28);
  if (pages && be32(b0 + 24) == be32(b0 + 92) && (int64_t)pages * page > size)
    return fail(db, FERRY_NOT_DATABASE, "the given database's header counts %u pages but the bytes hold %lld (cut short?)", pages, (long long)(size / page));
  if (b0[18] == 2 || b0[19] == 2) { b0[18] = b0[19] = 1; *patched = 1; }
  return FERRY_OK;
}

/* Checks the database `from` holds and readies it to be copied: attaches it
 * (copy on write, over the file) as *tmp, runs SQLite's quick_check on it and
 * drops its client id (unless keep_client: a move). On success the caller imports *tmp, then detaches it. */
static int prepare_copy(ferry_db *db, const char *name, ferry_file *from, int keep_client, ferry__image **tmp) {
  *tmp = NULL;
  ferry_store *over = NULL;
  int rc = ferry_store_memory_over(&over, from);
  if (rc != FERRY_OK) return fail(db, rc, "out of memory");
  size_t n = strlen(name) + 8;
  char *tname = malloc(n);
  if (!tname) { ferry_store_close(over); return fail(db, FERRY_NOMEM, "out of memory"); }
  snprintf(tname, n, "\x01from:%s", name);
  char err[400];
  rc = ferry__vfs_attach(tname, over, (int64_t)1 << 20, tmp, err, sizeof err);
  if (rc != FERRY_OK) { free(tname); return fail(db, rc, "%s", err); }
  int64_t size = ferry__vfs_size(*tmp);
  uint8_t *b0 = calloc(1, FERRY_BLOCK);
  int patched = 0;
  if (!b0) rc = fail(db, FERRY_NOMEM, "out of memory");
  else if (size >= 512 && (rc = ferry__vfs_read(*tmp, 0, b0, size < FERRY_BLOCK ? (size_t)size : FERRY_BLOCK)) != FERRY_OK)
    rc = fail(db, rc, "%s", ferry__vfs_errmsg(*tmp));
  else rc = check_header(db, b0, size, &patched);
  if (rc == FERRY_OK && patched) {
    ferry_block blk = { 0, b0 };
    if ((rc = over->m->commit(over, &blk, 1, size)) != FERRY_OK) rc = fail(db, rc, "out of memory");
  }
  free(b0);
  sqlite3 *sq = NULL;
  if (rc == FERRY_OK) {
    int src = sqlite3_open_v2(tname, &sq, SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE, FERRY_VFS_NAME);
    sqlite3_stmt *st = NULL;
    if (src == SQLITE_OK) src = sqlite3_exec(sq, "PRAGMA journal_mode=MEMORY", NULL, NULL, NULL);
    if (src == SQLITE_OK) src = sqlite3_prepare_v2(sq, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
      const char *verdict = (const char *)sqlite3_column_text(st, 0);
      if (!verdict || strcmp(verdict, "ok") != 0)
        rc = fail(db, FERRY_NOT_DATABASE, "the given database is damaged: %s", verdict ? verdict : "(no verdict)");
      src = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc == FERRY_OK && src != SQLITE_OK) {
      int code = map_sqlite(src);
      rc = fail(db, code == FERRY_CORRUPT || code == FERRY_SQL ? FERRY_NOT_DATABASE : code,
                "the given database does not open: %s", sq ? sqlite3_errmsg(sq) : sqlite3_errstr(src));
    }
    if (rc == FERRY_OK && !keep_client && (rc = ferry__schema_forget_client(sq, err, sizeof err)) != FERRY_OK)
      rc = fail(db, rc, "cannot drop the given database's client id: %s", err);
  }
  if (sq) sqlite3_close_v2(sq);
  free(tname);
  if (rc != FERRY_OK) { ferry__vfs_detach(*tmp); *tmp = NULL; }
  return rc;
}

int ferry_db_open_from(ferry_db **out, const char *name, ferry_store *store, int64_t cache_bytes,
                       struct ferry_file *from, int *flags) {
  *out = NULL;
  int move = flags && (*flags & FERRY_OPEN_MOVE);
  if (flags) *flags = 0;
  ferry_db *db = calloc(1, sizeof *db);
  if (!db) { ferry_store_close(store); if (from) from->m->close(from); return FERRY_NOMEM; }
  *out = db;
  if (!name || !name[0] || strlen(name) > 512) {
    ferry_store_close(store);
    if (from) from->m->close(from);
    return fail(db, FERRY_MISUSE, "a database needs a name of 1 to 512 bytes");
  }
  int rc = sqlite3_initialize();
  if (rc != SQLITE_OK) {
    ferry_store_close(store);
    if (from) from->m->close(from);
    return fail(db, map_sqlite(rc), "SQLite failed to start");
  }
  char err[400];
  rc = ferry__vfs_attach(name, store, cache_bytes, &db->img, err, sizeof err);
  if (rc != FERRY_OK) { if (from) from->m->close(from); return fail(db, rc, "%s", err); }
  int empty = ferry__vfs_size(db->img) == 0;
  if (flags && empty) *flags |= FERRY_OPENED_EMPTY;
  if (from && !empty) from->m->close(from);
  else if (from) {
    ferry__image *tmp = NULL;
    if ((rc = prepare_copy(db, name, from, move, &tmp)) != FERRY_OK) return rc;
    rc = ferry__vfs_import(db->img, tmp);
    if (rc != FERRY_OK) fail(db, rc, "%s", rc == FERRY_UNSUPPORTED ? "this storage cannot start from a database's bytes" : ferry__vfs_errmsg(db->img));
    ferry__vfs_detach(tmp);
    if (rc != FERRY_OK) return rc;
    if (flags) *flags |= FERRY_OPENED_IMPORTED;
  }
  return connect(db, name);
}

int ferry_db_checkpoint(ferry_db *db) {
  if (!db || !db->sq) return db ? fail(db, FERRY_CLOSED, "the database is not open") : FERRY_MISUSE;
  clear_error(db);
  if (!sqlite3_get_autocommit(db->sq)) return fail(db, FERRY_MISUSE, "a checkpoint cannot run inside a transaction");
  int rc = ferry__vfs_checkpoint(db->img);
  return rc == FERRY_OK ? rc : fail(db, rc, "%s", ferry__vfs_errmsg(db->img));
}

int ferry_db_export_size(ferry_db *db, int64_t *size) {
  *size = 0;
  if (!db || !db->sq) return db ? fail(db, FERRY_CLOSED, "the database is not open") : FERRY_MISUSE;
  *size = ferry__vfs_size(db->img);
  return FERRY_OK;
}

int ferry_db_export_read(ferry_db *db, int64_t off, void *buf, size_t n) {
  if (!db || !db->sq) return db ? fail(db, FERRY_CLOSED, "the database is not open") : FERRY_MISUSE;
  clear_error(db);
  if (!sqlite3_get_autocommit(db->sq)) return fail(db, FERRY_MISUSE, "a database cannot be exported inside a transaction");
  int rc = ferry__vfs_read(db->img, off, buf, n);
  if (rc == FERRY_RANGE) return fail(db, rc, "bytes %lld to %lld lie outside the database", (long long)off, (long long)(off + (int64_t)n));
  return rc == FERRY_OK ? rc : fail(db, rc, "%s", ferry__vfs_errmsg(db->img));
}

void ferry_db_close(ferry_db *db) {
  if (!db) return;
  for (int i = 0; i < CACHE_SIZE; i++) {
    sqlite3_finalize(db->cache[i].stmt);
    free(db->cache[i].sql);
  }
  if (db->sq) {
    if (!sqlite3_get_autocommit(db->sq)) sqlite3_exec(db->sq, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(db->sq);
  }
  ferry__vfs_detach(db->img);
  ferry__buf_free(&db->out);
  clear_error(db);
  sqlite3_free(db->guard_msg);
  ferry__names_free(&db->reads);
  ferry__names_free(&db->pending);
  ferry__names_free(&db->committed);
  free(db);
}

const char *ferry_errmsg(const ferry_db *db) {
  if (!db) return "no database (out of memory?)";
  return db->errmsg ? db->errmsg : "";
}

int ferry_db_in_transaction(const ferry_db *db) {
  return db && db->sq && !sqlite3_get_autocommit(db->sq);
}
int64_t ferry_db_changes(const ferry_db *db) { return db ? db->changes : 0; }
int64_t ferry_db_last_rowid(const ferry_db *db) { return db ? db->last_rowid : 0; }
void *ferry_db_sqlite(ferry_db *db) { return db ? db->sq : NULL; }
void ferry__db_vfs_stats(ferry_db *db, ferry_vfs_stats *out) { ferry__vfs_stats(db->img, out); }

/* ---- parameters --------------------------------------------------------- */

typedef struct reader { const uint8_t *p, *end; } reader;

static int rd(reader *r, void *dst, size_t n) {
  if ((size_t)(r->end - r->p) < n) return 0;
  memcpy(dst, r->p, n);
  r->p += n;
  return 1;
}

static int bind_params(ferry_db *db, sqlite3_stmt *st, const uint8_t *params, size_t len) {
  int nparam = sqlite3_bind_parameter_count(st);
  uint32_t count = 0;
  reader r = { params, params ? params + len : params };   /* NULL + 0 is undefined behaviour */
  if (len && !rd(&r, &count, 4)) return fail(db, FERRY_MISUSE, "malformed parameter block");
  uint8_t bound_small[64] = {0};
  uint8_t *bound = nparam <= 64 ? bound_small : calloc((size_t)nparam, 1);
  if (!bound) return fail(db, FERRY_NOMEM, "out of memory");
  int rc = FERRY_OK, next_pos = 1;
  for (uint32_t k = 0; k < count && rc == FERRY_OK; k++) {
    uint16_t nlen; uint8_t type;
    char name[256];
    if (!rd(&r, &nlen, 2) || nlen >= sizeof name - 1 || !rd(&r, name + 1, nlen) || !rd(&r, &type, 1)) {
      rc = fail(db, FERRY_MISUSE, "malformed parameter block");
      break;
    }
    int idx;
    if (nlen == 0) {
      idx = next_pos++;
      if (idx > nparam) {
        rc = fail(db, FERRY_RANGE, "%u parameters given but the statement takes %d", count, nparam);
        break;
      }
    } else {
      name[nlen + 1] = 0;
      if (name[1] == ':' || name[1] == '@' || name[1] == '$') {
        idx = sqlite3_bind_parameter_index(st, name + 1);
      } else {
        static const char prefixes[] = ":@$";
        idx = 0;
        for (int p = 0; p < 3 && !idx; p++) { name[0] = prefixes[p]; idx = sqlite3_bind_parameter_index(st, name); }
      }
      if (!idx) {
        rc = fail(db, FERRY_RANGE, "the statement has no parameter named '%s'", name + 1);
        break;
      }
    }
    int src = SQLITE_OK;
    switch (type) {
      case FERRY_T_NULL: src = sqlite3_bind_null(st, idx); break;
      case FERRY_T_INT: { int64_t v; if (!rd(&r, &v, 8)) goto bad; src = sqlite3_bind_int64(st, idx, v); break; }
      case FERRY_T_FLOAT: { double v; if (!rd(&r, &v, 8)) goto bad; src = sqlite3_bind_double(st, idx, v); break; }
      case FERRY_T_TEXT: case FERRY_T_BLOB: {
        uint32_t n;
        if (!rd(&r, &n, 4) || (size_t)(r.end - r.p) < n) goto bad;
        src = type == FERRY_T_TEXT
          ? sqlite3_bind_text(st, idx, (const char *)r.p, (int)n, SQLITE_TRANSIENT)
          : sqlite3_bind_blob(st, idx, r.p, (int)n, SQLITE_TRANSIENT);
        r.p += n;
        break;
      }
      default: goto bad;
    }
    if (src != SQLITE_OK) { rc = fail_sqlite(db, src); break; }
    bound[idx - 1] = 1;
    continue;
  bad:
    rc = fail(db, FERRY_MISUSE, "malformed parameter block");
  }
  for (int i = 0; i < nparam && rc == FERRY_OK; i++) {
    if (!bound[i]) {
      const char *n = sqlite3_bind_parameter_name(st, i + 1);
      rc = n ? fail(db, FERRY_RANGE, "no value given for parameter %s", n)
             : fail(db, FERRY_RANGE, "no value given for parameter %d (the statement takes %d)", i + 1, nparam);
    }
  }
  if (bound != bound_small) free(bound);
  return rc;
}

/* ---- statements --------------------------------------------------------- */

static cached *cache_find(ferry_db *db, const char *sql, size_t len) {
  for (int i = 0; i < CACHE_SIZE; i++) {
    cached *c = &db->cache[i];
    if (c->stmt && c->len == len && memcmp(c->sql, sql, len) == 0) return c;
  }
  return NULL;
}

static void cache_put(ferry_db *db, const char *sql, size_t len, sqlite3_stmt *st) {
  cached *victim = &db->cache[0];
  for (int i = 0; i < CACHE_SIZE; i++) {
    if (!db->cache[i].stmt) { victim = &db->cache[i]; break; }
    if (db->cache[i].used < victim->used) victim = &db->cache[i];
  }
  char *copy = malloc(len);
  if (!copy) { sqlite3_finalize(st); return; }
  memcpy(copy, sql, len);
  sqlite3_finalize(victim->stmt);
  free(victim->sql);
  victim->sql = copy; victim->len = len; victim->stmt = st; victim->used = ++db->tick;
}

static int only_space(const char *p, const char *end) {
  for (; p < end; p++) if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';') return 0;
  return 1;
}

static void encode_columns(ferry__buf *b, sqlite3_stmt *st, int ncol) {
  b->len = 0;
  ferry__buf_u32(b, (uint32_t)ncol);
  for (int i = 0; i < ncol; i++) {
    const char *n = sqlite3_column_name(st, i);
    uint32_t len = n ? (uint32_t)strlen(n) : 0;
    ferry__buf_u32(b, len);
    ferry__buf_put(b, n, len);
  }
}

static void encode_row(ferry__buf *b, sqlite3_stmt *st, int ncol) {
  ferry__buf_u8(b, 1);
  for (int i = 0; i < ncol; i++) {
    switch (sqlite3_column_type(st, i)) {
      case SQLITE_INTEGER:
        ferry__buf_u8(b, FERRY_T_INT); ferry__buf_i64(b, sqlite3_column_int64(st, i)); break;
      case SQLITE_FLOAT:
        ferry__buf_u8(b, FERRY_T_FLOAT); ferry__buf_f64(b, sqlite3_column_double(st, i)); break;
      case SQLITE_TEXT: {
        const unsigned char *t = sqlite3_column_text(st, i);
        uint32_t n = (uint32_t)sqlite3_column_bytes(st, i);
        ferry__buf_u8(b, FERRY_T_TEXT); ferry__buf_u32(b, n); ferry__buf_put(b, t, n);
        break;
      }
      case SQLITE_BLOB: {
        const void *p = sqlite3_column_blob(st, i);
        uint32_t n = (uint32_t)sqlite3_column_bytes(st, i);
        ferry__buf_u8(b, FERRY_T_BLOB); ferry__buf_u32(b, n); ferry__buf_put(b, p, n);
        break;
      }
      default: ferry__buf_u8(b, FERRY_T_NULL);
    }
  }
}

/* Steps one prepared statement to its end, encoding rows when asked. */
static int step_all(ferry_db *db, sqlite3_stmt *st, int flags) {
  int64_t total_before = sqlite3_total_changes64(db->sq);
  int ncol = sqlite3_column_count(st);
  int want = (flags & FERRY_RUN_ROWS) && ncol > 0;
  if (want) encode_columns(&db->out, st, ncol);
  int src;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (want) {
      encode_row(&db->out, st, ncol);
      if (db->out.oom) { sqlite3_reset(st); return fail(db, FERRY_NOMEM, "out of memory collecting rows"); }
    }
  }
  if (src != SQLITE_DONE) {
    int rc = fail_sqlite(db, sqlite3_reset(st) != SQLITE_OK ? sqlite3_errcode(db->sq) : src);
    return rc;
  }
  sqlite3_reset(st);
  /* Rows of this statement itself, not those its triggers touched. */
  if (sqlite3_total_changes64(db->sq) != total_before) db->changes += sqlite3_changes64(db->sq);
  return FERRY_OK;
}

int ferry_db_run(ferry_db *db, const char *sql, size_t sql_len,
                 const uint8_t *params, size_t params_len, int flags,
                 const uint8_t **out, size_t *out_len) {
  if (out) *out = NULL;
  if (out_len) *out_len = 0;
  if (!db) return FERRY_MISUSE;
  if (!db->sq) return fail(db, FERRY_CLOSED, "the database is not open");
  if (sql_len > 100 * 1000 * 1000) return fail(db, FERRY_TOOBIG, "SQL text over 100 MB");
  clear_error(db);
  ferry__vfs_clear_error(db->img);
  db->out.len = 0;
  db->out.oom = 0;
  ferry__buf_u32(&db->out, 0);     /* no columns unless a statement has some */
  int rc = FERRY_OK;
  db->changes = 0;

  cached *c = cache_find(db, sql, sql_len);
  if (c) {
    c->used = ++db->tick;
    sqlite3_clear_bindings(c->stmt);
    rc = bind_params(db, c->stmt, params, params_len);
    if (rc == FERRY_OK) rc = step_all(db, c->stmt, flags);
  } else {
    const char *p = sql, *end = sql + sql_len;
    int first = 1;
    while (rc == FERRY_OK && p < end && !only_space(p, end)) {
      sqlite3_stmt *st = NULL;
      const char *tail = NULL;
      db->app_sql = 1;
      int src = sqlite3_prepare_v3(db->sq, p, (int)(end - p), SQLITE_PREPARE_PERSISTENT, &st, &tail);
      db->app_sql = 0;
      if (src != SQLITE_OK) { rc = fail_sqlite(db, src); break; }
      if (!st) { p = tail; continue; }        /* a comment or empty statement */
      int single = first && only_space(tail, end);
      if (!single && params_len > 4) {
        sqlite3_finalize(st);
        rc = fail(db, FERRY_MISUSE, "parameters go with a single statement; split the script");
        break;
      }
      rc = bind_params(db, st, single ? params : NULL, single ? params_len : 0);
      if (rc == FERRY_OK) rc = step_all(db, st, flags);
      if (single && rc == FERRY_OK) cache_put(db, sql, sql_len, st);
      else sqlite3_finalize(st);
      first = 0;
      p = tail;
    }
  }
  if (rc != FERRY_OK) return rc;
  ferry__buf_u8(&db->out, 0);
  if (db->out.oom) return fail(db, FERRY_NOMEM, "out of memory collecting rows");
  db->last_rowid = sqlite3_last_insert_rowid(db->sq);
  if (out) *out = db->out.p;
  if (out_len) *out_len = db->out.len;
  return FERRY_OK;
}

/* ---- live queries ------------------------------------------------------- */

int ferry_db_reads(ferry_db *db, const char *sql, size_t sql_len,
                   const uint8_t **out, size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  if (!db) return FERRY_MISUSE;
  if (!db->sq) return fail(db, FERRY_CLOSED, "the database is not open");
  if (sql_len > 100 * 1000 * 1000) return fail(db, FERRY_TOOBIG, "SQL text over 100 MB");
  clear_error(db);
  ferry__names_clear(&db->reads);
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  /* Prepared afresh, not from the cache: the authorizer only speaks while
   * a statement is prepared. */
  db->reading = &db->reads;
  db->app_sql = 1;
  int src = sqlite3_prepare_v3(db->sq, sql, (int)sql_len, 0, &st, &tail);
  db->app_sql = 0;
  db->reading = NULL;
  int rc = FERRY_OK;
  if (src != SQLITE_OK) rc = fail_sqlite(db, src);
  else if (!st) rc = fail(db, FERRY_MISUSE, "a live query needs a SELECT statement; the SQL is empty");
  else if (!only_space(tail, sql + sql_len)) rc = fail(db, FERRY_MISUSE, "a live query is one SELECT statement; the SQL holds more than one");
  else if (!sqlite3_stmt_readonly(st)) rc = fail(db, FERRY_MISUSE, "a live query must only read (a SELECT); this statement writes");
  sqlite3_finalize(st);
  if (rc != FERRY_OK) return rc;
  if (db->reads.oom) return fail(db, FERRY_NOMEM, "out of memory listing the tables a query reads");
  ferry__names_encode(&db->reads, &db->out);
  if (db->out.oom) return fail(db, FERRY_NOMEM, "out of memory listing the tables a query reads");
  *out = db->out.p;
  *out_len = db->out.len;
  return FERRY_OK;
}

int ferry_db_changed(ferry_db *db, const uint8_t **out, size_t *out_len) {
  *out = NULL;
  *out_len = 0;
  if (!db) return FERRY_MISUSE;
  /* Memory ran out while a name was recorded: the list is incomplete, so
   * the caller must treat every table as changed. */
  int lost = db->committed.oom;
  ferry__names_encode(&db->committed, &db->out);
  ferry__names_clear(&db->committed);
  if (lost || db->out.oom) return fail(db, FERRY_NOMEM, "out of memory recording changed tables; treat every table as changed");
  *out = db->out.p;
  *out_len = db->out.len;
  return FERRY_OK;
}
