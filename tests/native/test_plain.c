/* A plain SQLite file at rest: a checkpoint leaves the main file a whole
 * database (the log only its header), an export reads the same bytes, and
 * a database started from such bytes is an exact, separate copy, taken in
 * one atomic step or not at all. */
#include <fcntl.h>
#include <sys/stat.h>
#include "check.h"
#include "fault_store.h"
#include "store.h"
#include "util.h"

static ferry_db *open_path(const char *path, const char *from_path, int *flags, int *rc_out) {
  ferry_store *s = NULL;
  int rc = ferry_store_file_open(&s, path);
  ferry_db *db = NULL;
  ferry_file *from = NULL;
  if (rc == FERRY_OK && from_path) rc = ferry_file_posix_open(&from, from_path);
  if (rc == FERRY_OK) rc = ferry_db_open_from(&db, path, s, 0, from, flags);
  else ferry_store_close(s);
  if (rc_out) *rc_out = rc;
  if (rc != FERRY_OK) {
    if (!rc_out) fprintf(stderr, "open %s: %s\n", path, ferry_errmsg(db));
    ferry_db_close(db);
    return NULL;
  }
  return db;
}

static int64_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static uint8_t *read_all(const char *path, int64_t *n) {
  *n = file_size(path);
  if (*n < 0) return NULL;
  uint8_t *p = malloc((size_t)*n + 1);
  FILE *f = fopen(path, "rb");
  if (!p || !f || fread(p, 1, (size_t)*n, f) != (size_t)*n) { free(p); if (f) fclose(f); return NULL; }
  fclose(f);
  return p;
}

static void write_all(const char *path, const uint8_t *p, int64_t n) {
  FILE *f = fopen(path, "wb");
  if (f) { fwrite(p, 1, (size_t)n, f); fclose(f); }
}

/* A database of `rows` rows (with a client id, as the sync engine keeps
 * one), its log left holding records (never checkpointed). */
static void fill(ferry_db *db, int rows) {
  exec_sql(db, "CREATE TABLE _ferry_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
               "INSERT INTO _ferry_meta VALUES ('client_id', 'c-original'), ('next_mid', 7);"
               "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)");
  char sql[200];
  snprintf(sql, sizeof sql, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
                            "INSERT INTO t SELECT i, randomblob(300) FROM c", rows);
  exec_sql(db, sql);
}

/* A database of `rows` rows at a new temporary path (written to path, n
 * bytes), checkpointed and closed: a plain SQLite file to start copies from. */
static void plain_source(const char *tag, int rows, char *path, size_t n) {
  snprintf(path, n, "%s", temp_db_path(tag));
  ferry_db *db = open_path(path, NULL, NULL, NULL);
  CHECK(db);
  fill(db, rows);
  CHECK_RC(ferry_db_checkpoint(db), FERRY_OK);
  ferry_db_close(db);
}

static void checkpoint_should_leave_a_whole_main_file_and_an_empty_log(void) {
  char log[600];
  const char *path = temp_db_path("plain");
  snprintf(log, sizeof log, "%s-log", path);
  ferry_db *db = open_path(path, NULL, NULL, NULL);
  CHECK(db);
  fill(db, 500);
  CHECK(file_size(path) == 0);
  CHECK(file_size(log) > 64);
  int64_t pages = query_int(db, "PRAGMA page_count"), psize = query_int(db, "PRAGMA page_size");
  CHECK_RC(ferry_db_checkpoint(db), FERRY_OK);
  CHECK(file_size(path) == pages * psize);
  CHECK(file_size(log) == 64);
  int64_t n = 0;
  uint8_t *bytes = read_all(path, &n);
  CHECK(bytes && memcmp(bytes, "SQLite format 3", 16) == 0);
  CHECK(bytes[18] == 1 && bytes[19] == 1);
  free(bytes);
  /* A second checkpoint with nothing new has nothing to do. */
  CHECK_RC(ferry_db_checkpoint(db), FERRY_OK);
  CHECK_RC(exec_sql(db, "BEGIN; INSERT INTO t(v) VALUES (1)"), FERRY_OK);
  CHECK_RC(ferry_db_checkpoint(db), FERRY_MISUSE);
  CHECK_RC(exec_sql(db, "COMMIT"), FERRY_OK);
  ferry_db_close(db);
  db = open_path(path, NULL, NULL, NULL);
  CHECK(db);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 501);
  ferry_db_close(db);
}

static void export_should_read_the_bytes_a_checkpoint_writes(void) {
  const char *path = temp_db_path("export");
  ferry_db *db = open_path(path, NULL, NULL, NULL);
  CHECK(db);
  fill(db, 2000);
  int64_t size = 0;
  CHECK_RC(ferry_db_export_size(db, &size), FERRY_OK);
  CHECK(size == query_int(db, "PRAGMA page_count") * query_int(db, "PRAGMA page_size"));
  uint8_t *out = malloc((size_t)size);
  /* In odd slices, so that reads straddle blocks. */
  for (int64_t at = 0; at < size; at += 10007) {
    size_t n = size - at < 10007 ? (size_t)(size - at) : 10007;
    CHECK_RC(ferry_db_export_read(db, at, out + at, n), FERRY_OK);
  }
  CHECK_RC(ferry_db_export_read(db, size - 10, out, 11), FERRY_RANGE);
  CHECK_RC(exec_sql(db, "BEGIN; INSERT INTO t(v) VALUES (1)"), FERRY_OK);
  CHECK_RC(ferry_db_export_read(db, 0, out, 100), FERRY_MISUSE);
  CHECK_RC(exec_sql(db, "ROLLBACK"), FERRY_OK);
  CHECK_RC(ferry_db_checkpoint(db), FERRY_OK);
  int64_t n = 0;
  uint8_t *main = read_all(path, &n);
  CHECK(main && n == size);
  /* Page 1's change counters may be newer in the export (the store is not
   * sent a page whose only change is them); every other byte is the same. */
  CHECK(memcmp(main, out, 24) == 0 && memcmp(main + 28, out + 28, 92 - 28) == 0);
  CHECK(memcmp(main + 96, out + 96, (size_t)size - 96) == 0);
  free(main);
  free(out);
  ferry_db_close(db);
}

static void database_opened_from_a_file_should_be_an_exact_copy_with_no_client_id(void) {
  const char *a = temp_db_path("copy-a");
  char apath[512];
  snprintf(apath, sizeof apath, "%s", a);
  ferry_db *db = open_path(apath, NULL, NULL, NULL);
  CHECK(db);
  fill(db, 1500);
  CHECK_RC(ferry_db_checkpoint(db), FERRY_OK);
  int64_t sum = query_int(db, "SELECT sum(length(v)) + sum(id) FROM t");
  ferry_db_close(db);

  const char *b = temp_db_path("copy-b");
  int flags = 0;
  db = open_path(b, apath, &flags, NULL);
  CHECK(db);
  CHECK(flags == (FERRY_OPENED_EMPTY | FERRY_OPENED_IMPORTED));
  CHECK(query_int(db, "SELECT sum(length(v)) + sum(id) FROM t") == sum);
  CHECK(query_int(db, "SELECT count(*) FROM _ferry_meta WHERE key = 'client_id'") == 0);
  CHECK(query_int(db, "SELECT value FROM _ferry_meta WHERE key = 'next_mid'") == 7);
  char buf[64];
  CHECK(strcmp(query_text(db, "PRAGMA integrity_check", buf, sizeof buf), "ok") == 0);
  CHECK_RC(exec_sql(db, "INSERT INTO t(v) VALUES ('after')"), FERRY_OK);
  ferry_db_close(db);
  /* A database that exists ignores `from`. */
  db = open_path(b, apath, &flags, NULL);
  CHECK(db);
  CHECK(flags == 0);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 1501);
  ferry_db_close(db);
  /* The original is untouched. */
  db = open_path(apath, NULL, NULL, NULL);
  CHECK(db);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 1500);
  CHECK(query_int(db, "SELECT count(*) FROM _ferry_meta WHERE key = 'client_id'") == 1);
  ferry_db_close(db);
}

static void memory_database_opened_from_a_file_should_hold_its_rows(void) {
  char a[512];
  plain_source("mem-a", 100, a, sizeof a);
  ferry_db *db = NULL;
  ferry_store *m = NULL;
  ferry_file *from = NULL;
  CHECK_RC(ferry_store_memory_open(&m), FERRY_OK);
  CHECK_RC(ferry_file_posix_open(&from, a), FERRY_OK);
  int flags = 0;
  CHECK_RC(ferry_db_open_from(&db, "mem-copy", m, 0, from, &flags), FERRY_OK);
  CHECK(flags == (FERRY_OPENED_EMPTY | FERRY_OPENED_IMPORTED));
  CHECK(query_int(db, "SELECT count(*) FROM t") == 100);
  ferry_db_close(db);
}

/* A move (FERRY_OPEN_MOVE: the same device's database on another store)
 * keeps the client id, so the server goes on judging its pushes as the
 * same device's: the id and its mutation counter continue. */
static void database_moved_from_a_file_should_keep_its_client_id(void) {
  char apath[512];
  plain_source("move-a", 200, apath, sizeof apath);
  int flags = FERRY_OPEN_MOVE;
  ferry_db *db = open_path(temp_db_path("move-b"), apath, &flags, NULL);
  CHECK(db);
  CHECK(flags == (FERRY_OPENED_EMPTY | FERRY_OPENED_IMPORTED));
  char buf[64];
  CHECK(strcmp(query_text(db, "SELECT value FROM _ferry_meta WHERE key = 'client_id'", buf, sizeof buf), "c-original") == 0);
  CHECK(query_int(db, "SELECT value FROM _ferry_meta WHERE key = 'next_mid'") == 7);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 200);
  ferry_db_close(db);
}

/* Writes `bytes` to a fresh file and opens a new database from it: the open
 * must fail with FERRY_NOT_DATABASE and leave the new database empty. */
static int bad_from(const uint8_t *bytes, int64_t n, const char *tag) {
  char src[600];
  const char *dst = temp_db_path(tag);
  snprintf(src, sizeof src, "%s.src", dst);
  write_all(src, bytes, n);
  int rc = FERRY_OK;
  ferry_db *db = open_path(dst, src, NULL, &rc);
  unlink(src);
  if (db) { ferry_db_close(db); return 0; }
  if (rc != FERRY_NOT_DATABASE) { fprintf(stderr, "  %s: %s\n", tag, ferry_errstr(rc)); return 0; }
  int flags = 0;
  db = open_path(dst, NULL, &flags, NULL);
  if (!db) return 0;
  int ok = flags == FERRY_OPENED_EMPTY && query_int(db, "SELECT count(*) FROM sqlite_schema") == 0;
  ferry_db_close(db);
  return ok;
}

static void bytes_that_are_not_a_whole_database_should_fail_with_not_a_database(void) {
  char apath[512];
  plain_source("bad-a", 300, apath, sizeof apath);
  int64_t n = 0;
  uint8_t *good = read_all(apath, &n);
  CHECK(good && n > 8 * 4096);
  uint8_t junk[9000];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 7 + 3);
  CHECK(bad_from(junk, sizeof junk, "bad-junk"));
  CHECK(bad_from(good, 100, "bad-header-only"));
  CHECK(bad_from(good, 511, "bad-short"));
  CHECK(bad_from(good, n / 2 + 100, "bad-cut-mid-page"));
  CHECK(bad_from(good, (n / 4096 / 2) * 4096, "bad-cut-at-page"));
  /* Zero bytes are SQLite's empty database (an export of one). */
  char src[600];
  const char *dst = temp_db_path("empty-from");
  snprintf(src, sizeof src, "%s.src", dst);
  write_all(src, good, 0);
  int flags = 0;
  ferry_db *db = open_path(dst, src, &flags, NULL);
  unlink(src);
  CHECK(db);
  CHECK(flags == (FERRY_OPENED_EMPTY | FERRY_OPENED_IMPORTED));
  CHECK(query_int(db, "SELECT count(*) FROM sqlite_schema") == 0);
  ferry_db_close(db);
  /* A page in the middle overwritten: SQLite's check finds it. */
  uint8_t *hurt = malloc((size_t)n);
  memcpy(hurt, good, (size_t)n);
  memset(hurt + 3 * 4096, 0x5a, 4096);
  CHECK(bad_from(hurt, n, "bad-damaged-page"));
  free(hurt);
  free(good);
}

static void wal_mode_file_should_open_as_a_rollback_mode_copy(void) {
  const char *a = temp_db_path("wal-a");
  char apath[512];
  snprintf(apath, sizeof apath, "%s", a);
  ferry_db *db = open_path(apath, NULL, NULL, NULL);
  CHECK(db);
  fill(db, 50);
  CHECK_RC(ferry_db_checkpoint(db), FERRY_OK);
  ferry_db_close(db);
  int64_t n = 0;
  uint8_t *bytes = read_all(apath, &n);
  CHECK(bytes);
  bytes[18] = bytes[19] = 2;   /* as a WAL-mode database, checkpointed, reads */
  write_all(apath, bytes, n);
  free(bytes);
  const char *b = temp_db_path("wal-b");
  db = open_path(b, apath, NULL, NULL);
  CHECK(db);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 50);
  ferry_db_close(db);
}

/* An import whose main-file (or log) call `n` fails, and every call after
 * it, as a crash there leaves the files: a clean reopen finds the database
 * empty or the whole copy, never a part of it. */
static void import_failing_at_any_call_should_leave_the_database_empty_or_whole(void) {
  const char *a = temp_db_path("atomic-a");
  char apath[512];
  snprintf(apath, sizeof apath, "%s", a);
  ferry_db *db = open_path(apath, NULL, NULL, NULL);
  CHECK(db);
  fill(db, 400);
  CHECK_RC(ferry_db_checkpoint(db), FERRY_OK);
  ferry_db_close(db);
  int cases = 0, whole = 0;
  for (int target_log = 0; target_log < 2; target_log++) {
    for (int n = 1; ; n++) {
      CHECK(n < 500);
      const char *b = temp_db_path("atomic-b");
      char lp[600];
      snprintf(lp, sizeof lp, "%s-log", b);
      ferry_file *m = NULL, *l = NULL, *from = NULL;
      CHECK_RC(ferry_file_posix_open(&m, b), FERRY_OK);
      CHECK_RC(ferry_file_posix_open(&l, lp), FERRY_OK);
      CHECK_RC(ferry_file_posix_open(&from, apath), FERRY_OK);
      fault_file *fm = fault_file_wrap(m), *fl = fault_file_wrap(l);
      fault_file *t = target_log ? fl : fm;
      fault_file_arm(t, n, 1);
      int fired = 0;
      t->fired_out = &fired;
      ferry_store *s = NULL;
      CHECK_RC(ferry_store_log_open(&s, &fm->base, &fl->base, 0), FERRY_OK);
      int rc = ferry_db_open_from(&db, b, s, 0, from, NULL);
      ferry_db_close(db);
      int flags = 0;
      db = open_path(b, NULL, &flags, NULL);
      CHECK(db);
      int64_t rows = query_int(db, "SELECT count(*) FROM t");
      int64_t tables = query_int(db, "SELECT count(*) FROM sqlite_schema");
      if (rc == FERRY_OK) CHECK(rows == 400);
      if (tables) {
        char buf[64];
        CHECK(rows == 400 && strcmp(query_text(db, "PRAGMA integrity_check", buf, sizeof buf), "ok") == 0);
        whole++;
      } else {
        CHECK(flags == FERRY_OPENED_EMPTY);
      }
      /* Either way the database takes commits again. */
      CHECK_RC(exec_sql(db, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB); INSERT INTO t(v) VALUES (1)"), FERRY_OK);
      ferry_db_close(db);
      cases++;
      if (!fired) break;
    }
  }
  printf("  %d cases, %d of them left the whole copy\n", cases, whole);
}

int main(void) {
  RUN(checkpoint_should_leave_a_whole_main_file_and_an_empty_log);
  RUN(export_should_read_the_bytes_a_checkpoint_writes);
  RUN(database_opened_from_a_file_should_be_an_exact_copy_with_no_client_id);
  RUN(database_moved_from_a_file_should_keep_its_client_id);
  RUN(memory_database_opened_from_a_file_should_hold_its_rows);
  RUN(bytes_that_are_not_a_whole_database_should_fail_with_not_a_database);
  RUN(wal_mode_file_should_open_as_a_rollback_mode_copy);
  RUN(import_failing_at_any_call_should_leave_the_database_empty_or_whole);
  return CHECK_DONE();
}
