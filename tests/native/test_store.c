/* Durability of the VFS and the stores: what is committed survives a
 * reopen, what fails leaves the last good commit, what is torn is ignored. */
#include <fcntl.h>
#include <sys/stat.h>
#include "check.h"
#include "fault_store.h"
#include "store.h"
#include "util.h"

static ferry_db *open_file(const char *path) {
  ferry_store *s = NULL;
  if (ferry_store_file_open(&s, path) != FERRY_OK) return NULL;
  ferry_db *db = NULL;
  if (ferry_db_open(&db, path, s) != FERRY_OK) { fprintf(stderr, "open: %s\n", ferry_errmsg(db)); ferry_db_close(db); return NULL; }
  return db;
}

static void commit_should_survive_reopen_on_file_store(void) {
  const char *path = temp_db_path("reopen");
  ferry_db *db = open_file(path);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), FERRY_OK);
  CHECK_RC(exec_sql(db, "INSERT INTO t(v) VALUES ('a'),('b'),('c')"), FERRY_OK);
  ferry_db_close(db);
  db = open_file(path);
  CHECK(db);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 3);
  char buf[64];
  CHECK(strcmp(query_text(db, "PRAGMA integrity_check", buf, sizeof buf), "ok") == 0);
  ferry_db_close(db);
}

static void second_open_of_same_file_should_be_busy(void) {
  const char *path = temp_db_path("busy");
  ferry_db *db = open_file(path);
  CHECK(db);
  ferry_store *s = NULL;
  CHECK_RC(ferry_store_file_open(&s, path), FERRY_BUSY);
  ferry_db *again = NULL;
  ferry_store *m = NULL;
  CHECK_RC(ferry_store_memory_open(&m), FERRY_OK);
  CHECK_RC(ferry_db_open(&again, path, m), FERRY_BUSY);
  ferry_db_close(again);
  ferry_db_close(db);
}

static void failed_commit_should_leave_last_good_commit(void) {
  const char *path = temp_db_path("fault");
  ferry_store *inner = NULL;
  CHECK_RC(ferry_store_file_open(&inner, path), FERRY_OK);
  fault_store *f = fault_wrap(inner);
  ferry_db *db = NULL;
  CHECK_RC(ferry_db_open(&db, path, &f->base), FERRY_OK);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), FERRY_OK);
  CHECK_RC(exec_sql(db, "INSERT INTO t(v) VALUES ('good')"), FERRY_OK);
  f->fail_next = 1;
  CHECK_RC(exec_sql(db, "BEGIN; INSERT INTO t(v) SELECT 'bad' FROM t; CREATE TABLE u(x); COMMIT"), FERRY_FULL);
  CHECK(strstr(ferry_errmsg(db), "injected failure") != NULL);
  CHECK(!ferry_db_in_transaction(db));
  /* The same connection sees exactly the last good commit and keeps working. */
  CHECK(query_int(db, "SELECT count(*) FROM t") == 1);
  CHECK(query_int(db, "SELECT count(*) FROM sqlite_schema WHERE name='u'") == 0);
  CHECK_RC(exec_sql(db, "INSERT INTO t(v) VALUES ('after')"), FERRY_OK);
  f->fail_next = 1; f->fail_rc = FERRY_IO;
  CHECK_RC(exec_sql(db, "INSERT INTO t(v) VALUES ('lost')"), FERRY_IO);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 2);
  ferry_db_close(db);
  db = open_file(path);
  CHECK(db);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 2);
  char buf[64];
  CHECK(strcmp(query_text(db, "PRAGMA integrity_check", buf, sizeof buf), "ok") == 0);
  ferry_db_close(db);
}

static void torn_log_tail_should_be_ignored_on_open(void) {
  const char *path = temp_db_path("torn");
  ferry_db *db = open_file(path);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(v)"), FERRY_OK);
  CHECK_RC(exec_sql(db, "INSERT INTO t VALUES (1)"), FERRY_OK);
  ferry_db_close(db);
  /* Simulate a crash in the middle of the next record: append a record
   * header's worth of plausible bytes and half a block of garbage. */
  char log[600];
  snprintf(log, sizeof log, "%s-log", path);
  int fd = open(log, O_WRONLY | O_APPEND);
  CHECK(fd >= 0);
  char junk[2100];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(i * 7);
  CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
  close(fd);
  db = open_file(path);
  CHECK(db);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 1);
  CHECK_RC(exec_sql(db, "INSERT INTO t VALUES (2)"), FERRY_OK);
  ferry_db_close(db);
  db = open_file(path);
  CHECK(db);
  CHECK(query_int(db, "SELECT sum(v) FROM t") == 3);
  ferry_db_close(db);
}

static void log_should_checkpoint_and_stay_bounded(void) {
  const char *path = temp_db_path("ckpt");
  ferry_db *db = open_file(path);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"), FERRY_OK);
  for (int i = 0; i < 400; i++)
    CHECK_RC(exec_sql(db, "INSERT INTO t(v) VALUES (randomblob(3000))"), FERRY_OK);
  char log[600];
  snprintf(log, sizeof log, "%s-log", path);
  struct stat st;
  CHECK(stat(log, &st) == 0);
  CHECK(st.st_size <= (5 << 20));
  ferry_db_close(db);
  /* After a checkpoint the main file is a plain SQLite database. */
  CHECK(stat(path, &st) == 0 && st.st_size > 4096);
  db = open_file(path);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 400);
  ferry_db_close(db);
}

static void large_transaction_should_round_trip(void) {
  const char *path = temp_db_path("big");
  ferry_db *db = open_file(path);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n REAL)"), FERRY_OK);
  CHECK_RC(exec_sql(db, "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<100000) "
                        "INSERT INTO t(name, n) SELECT 'row ' || x, x * 0.5 FROM c; COMMIT"), FERRY_OK);
  ferry_db_close(db);
  db = open_file(path);
  CHECK(db);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 100000);
  CHECK(query_int(db, "SELECT sum(id) FROM t") == 5000050000ll);
  ferry_db_close(db);
}

static void rollback_should_leave_store_untouched(void) {
  const char *path = temp_db_path("rollback");
  ferry_store *inner = NULL;
  CHECK_RC(ferry_store_file_open(&inner, path), FERRY_OK);
  fault_store *f = fault_wrap(inner);
  ferry_db *db = NULL;
  CHECK_RC(ferry_db_open(&db, path, &f->base), FERRY_OK);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(v)"), FERRY_OK);
  int before = f->commits;
  CHECK_RC(exec_sql(db, "BEGIN; INSERT INTO t VALUES (1); ROLLBACK"), FERRY_OK);
  CHECK(f->commits == before);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 0);
  ferry_db_close(db);
}

int main(void) {
  RUN(commit_should_survive_reopen_on_file_store);
  RUN(second_open_of_same_file_should_be_busy);
  RUN(failed_commit_should_leave_last_good_commit);
  RUN(torn_log_tail_should_be_ignored_on_open);
  RUN(log_should_checkpoint_and_stay_bounded);
  RUN(large_transaction_should_round_trip);
  RUN(rollback_should_leave_store_untouched);
  return CHECK_DONE();
}
