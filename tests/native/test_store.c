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

/* ---- faults in the files under the log store ----------------------------
 * The store's own API over real files wrapped in fault files, so every
 * call of a checkpoint can be made to fail in turn; the expected image is
 * the successful commits applied in order. */
#define CK_MAXB 8
#define CK_BOUND 30000   /* the log passes it at the third commit of CK_SCRIPT */

typedef struct ck_image { uint8_t blk[CK_MAXB][FERRY_BLOCK]; int64_t size; } ck_image;
typedef struct ck_commit { int n; uint32_t no[4]; int64_t blocks; } ck_commit;

/* A, B stay under the bound; C passes it (the faults are armed for C); then
 * a shrink, regrowth and enough to pass the bound again. */
static const ck_commit CK_SCRIPT[] = {
  {4, {0, 1, 2, 3}, 4}, {2, {1, 2}, 4}, {3, {0, 4, 5}, 6},
  {1, {2}, 3}, {2, {3, 4}, 5}, {3, {0, 1, 4}, 5}, {2, {5, 6}, 7}, {1, {6}, 7},
};
#define CK_FAULTED 2
#define CK_COMMITS ((int)(sizeof CK_SCRIPT / sizeof CK_SCRIPT[0]))

static void ck_fill(uint8_t *blk, int ci, uint32_t no) {
  memset(blk, (int)((ci * 31 + no * 7 + 1) & 0xff), FERRY_BLOCK);
  memcpy(blk, &ci, sizeof ci);
  memcpy(blk + 8, &no, sizeof no);
}

/* Applies commit ci to img (blocks at or past the new end read as zeros). */
static void ck_apply(ck_image *img, int ci) {
  const ck_commit *c = &CK_SCRIPT[ci];
  for (int k = 0; k < c->n; k++) ck_fill(img->blk[c->no[k]], ci, c->no[k]);
  img->size = c->blocks * FERRY_BLOCK;
  for (int i = (int)c->blocks; i < CK_MAXB; i++) memset(img->blk[i], 0, FERRY_BLOCK);
}

/* Commit ci of CK_SCRIPT; as a lazy commit (synchronous=OFF's) when `lazy`. */
static int ck_commit_as(ferry_store *st, int ci, int lazy) {
  const ck_commit *c = &CK_SCRIPT[ci];
  static uint8_t data[4][FERRY_BLOCK];
  ferry_block b[4];
  for (int k = 0; k < c->n; k++) { ck_fill(data[k], ci, c->no[k]); b[k].no = c->no[k]; b[k].data = data[k]; }
  st->errmsg[0] = 0;
  return (lazy ? st->m->commit_lazy : st->m->commit)(st, b, (size_t)c->n, c->blocks * FERRY_BLOCK);
}
static int ck_commit_one(ferry_store *st, int ci) { return ck_commit_as(st, ci, 0); }

typedef struct ck_files { fault_file *main, *log; ferry_store *st; int load_faults; } ck_files;

/* Opens the store over path's files and reads every block of it; the faults
 * (if any) are armed for the open and those reads only (f->load_faults: how
 * many fired). Returns the first failing code; on failure the store is
 * closed. */
static int ck_open(const char *path, ck_files *f, ck_image *img, int target_log, int fail_at, int sticky, int short_reads) {
  char lp[600];
  snprintf(lp, sizeof lp, "%s-log", path);
  ferry_file *m = NULL, *l = NULL;
  if (ferry_file_posix_open(&m, path) != FERRY_OK || ferry_file_posix_open(&l, lp) != FERRY_OK) return FERRY_IO;
  f->main = fault_file_wrap(m);
  f->log = fault_file_wrap(l);
  f->main->short_reads = f->log->short_reads = short_reads;
  if (fail_at) fault_file_arm(target_log ? f->log : f->main, fail_at, sticky);
  if (ferry_store_log_open(&f->st, &f->main->base, &f->log->base, CK_BOUND) != FERRY_OK) return FERRY_NOMEM;
  memset(img, 0, sizeof *img);
  int rc = f->st->m->open(f->st, &img->size);
  if (rc == FERRY_OK && img->size > (int64_t)CK_MAXB * FERRY_BLOCK) rc = FERRY_CORRUPT;
  for (int i = 0; rc == FERRY_OK && i < CK_MAXB; i++)
    if ((int64_t)i * FERRY_BLOCK < img->size) rc = f->st->m->read(f->st, (uint32_t)i, img->blk[i]);
  f->load_faults = f->main->fired + f->log->fired;
  fault_file_arm(f->main, 0, 0);
  fault_file_arm(f->log, 0, 0);
  if (rc != FERRY_OK) { ferry_store_close(f->st); f->st = NULL; }
  return rc;
}

static int ck_same(const ck_image *a, const ck_image *b) {
  return a->size == b->size && memcmp(a->blk, b->blk, sizeof a->blk) == 0;
}

/* What a clean open of path loads must be `want` (or `alt`, when not NULL). */
static int ck_reopen_matches(const char *path, const ck_image *want, const ck_image *alt, const char *what) {
  ck_files f;
  static ck_image got;
  int rc = ck_open(path, &f, &got, 0, 0, 0, 0);
  if (rc != FERRY_OK) { fprintf(stderr, "  %s: clean reopen failed: %s\n", what, ferry_errstr(rc)); return 0; }
  char buf[40];
  int ok = ck_same(&got, want) || (alt && ck_same(&got, alt));
  if (!ok) {
    snprintf(buf, sizeof buf, "%lld", (long long)(got.size / FERRY_BLOCK));
    fprintf(stderr, "  %s: reopened image differs (%s blocks, want %lld)\n", what, buf, (long long)(want->size / FERRY_BLOCK));
  }
  ferry_store_close(f.st);
  return ok;
}

/* One case: commits before C, the fault armed for C (the call `fail_at` of
 * the target file fails; sticky: and all after it during C), then either a
 * crash right after C or the rest of the script; then a clean reopen.
 * Returns -1 on a mismatch, else whether the fault fired. */
static int ck_case(int target_log, int fail_at, int sticky, int short_reads, int crash_after) {
  const char *path = temp_db_path("ckfault");
  char what[160];
  snprintf(what, sizeof what, "%s call %d%s%s, %s", target_log ? "log" : "main", fail_at,
           sticky ? " and after" : "", short_reads ? " (short reads)" : "",
           crash_after ? "crash after the checkpoint" : "committing on");
  ck_files f;
  static ck_image img, want, before;
  if (ck_open(path, &f, &img, 0, 0, 0, 0) != FERRY_OK) { fprintf(stderr, "  %s: open failed\n", what); return -1; }
  memset(&want, 0, sizeof want);
  for (int ci = 0; ci < CK_FAULTED; ci++) {
    if (ck_commit_one(f.st, ci) != FERRY_OK) { fprintf(stderr, "  %s: commit %d failed\n", what, ci); return -1; }
    ck_apply(&want, ci);
  }
  before = want;
  fault_file *t = target_log ? f.log : f.main;
  fault_file_arm(t, fail_at, sticky);
  int rc = ck_commit_one(f.st, CK_FAULTED);
  int fired = t->fired > 0;
  fault_file_arm(t, 0, 0);
  if (rc == FERRY_OK) ck_apply(&want, CK_FAULTED);
  int ok = 1;
  if (crash_after) {
    ferry_store_close(f.st);
    /* A commit whose sync failed may or may not have reached the disk; a
     * later commit settles it, a crash leaves either state (never another). */
    static ck_image maybe;
    maybe = before;
    ck_apply(&maybe, CK_FAULTED);
    ok = ck_reopen_matches(path, &want, rc != FERRY_OK && sticky ? &maybe : NULL, what);
  } else {
    for (int ci = CK_FAULTED + 1; ci < CK_COMMITS && ok; ci++) {
      int crc = ck_commit_one(f.st, ci);
      if (crc != FERRY_OK) {
        fprintf(stderr, "  %s: commit %d after the fault failed: %s (%s)\n", what, ci, ferry_errstr(crc), f.st->errmsg);
        ok = 0;
      }
      ck_apply(&want, ci);
    }
    ferry_store_close(f.st);
    if (ok) ok = ck_reopen_matches(path, &want, NULL, what);
  }
  return ok ? fired : -1;
}

static void checkpoint_fault_at_every_call_should_lose_no_commit(void) {
  int cases = 0;
  for (int target_log = 0; target_log < 2; target_log++)
    for (int sticky = 0; sticky < 2; sticky++)
      for (int short_reads = 0; short_reads < 2; short_reads++)
        for (int crash_after = 0; crash_after < 2; crash_after++)
          for (int n = 1; ; n++) {
            CHECK(n < 500);
            int fired = ck_case(target_log, n, sticky, short_reads, crash_after);
            CHECK(fired >= 0);
            cases++;
            if (!fired) break;
          }
  printf("  %d cases\n", cases);
}

/* The same for the checkpoint an open runs over a log left by a crash:
 * the open may fail, and then a clean open still finds every commit. */
static void open_checkpoint_fault_at_every_call_should_lose_no_commit(void) {
  int cases = 0;
  for (int target_log = 0; target_log < 2; target_log++)
    for (int sticky = 0; sticky < 2; sticky++)
      for (int short_reads = 0; short_reads < 2; short_reads++)
        for (int n = 1; ; n++) {
          CHECK(n < 500);
          const char *path = temp_db_path("ckopen");
          ck_files f;
          static ck_image img, want;
          CHECK(ck_open(path, &f, &img, 0, 0, 0, 0) == FERRY_OK);
          memset(&want, 0, sizeof want);
          /* Through one checkpoint, then records left in the log (D, E, F). */
          for (int ci = 0; ci < CK_COMMITS - 2; ci++) {
            CHECK_RC(ck_commit_one(f.st, ci), FERRY_OK);
            ck_apply(&want, ci);
          }
          ferry_store_close(f.st);
          int rc = ck_open(path, &f, &img, target_log, n, sticky, short_reads);
          int fired = f.load_faults;
          char what[100];
          snprintf(what, sizeof what, "open, %s call %d%s%s", target_log ? "log" : "main", n,
                   sticky ? " and after" : "", short_reads ? " (short reads)" : "");
          if (rc == FERRY_OK) {
            /* An open that succeeds has loaded exactly the last commit. */
            int same = ck_same(&img, &want), crc = FERRY_OK;
            for (int ci = CK_COMMITS - 2; ci < CK_COMMITS && crc == FERRY_OK; ci++) {
              crc = ck_commit_one(f.st, ci);
              ck_apply(&want, ci);
            }
            ferry_store_close(f.st);
            if (!same || crc != FERRY_OK) fprintf(stderr, "  %s: %s\n", what, !same ? "loaded image differs" : "next commit failed");
            CHECK(same && crc == FERRY_OK);
          }
          CHECK(ck_reopen_matches(path, &want, NULL, what));
          cases++;
          if (!fired) break;
        }
  printf("  %d cases\n", cases);
}

/* Through SQL: every call to the main file a checkpoint makes fails in turn
 * (a full or failing disk) while rows go on being inserted; each insert was
 * durable in the log, so every one must be there after a reopen. */
static ferry_db *sql_open_faulty(const char *path, fault_file **mainf) {
  char lp[600];
  snprintf(lp, sizeof lp, "%s-log", path);
  ferry_file *m = NULL, *l = NULL;
  if (ferry_file_posix_open(&m, path) != FERRY_OK) return NULL;
  if (ferry_file_posix_open(&l, lp) != FERRY_OK) { m->m->close(m); return NULL; }
  *mainf = fault_file_wrap(m);
  ferry_store *st = NULL;
  ferry_db *db = NULL;
  if (ferry_store_log_open(&st, &(*mainf)->base, l, 40000) != FERRY_OK) return NULL;
  if (ferry_db_open(&db, path, st) != FERRY_OK) { ferry_db_close(db); return NULL; }
  return db;
}

static void sql_rows_should_survive_a_failing_main_file_at_each_checkpoint_call(void) {
  /* How many main-file calls the first checkpoint makes. */
  const char *path = temp_db_path("sqlckpt");
  fault_file *mf = NULL;
  ferry_db *db = sql_open_faulty(path, &mf);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"), FERRY_OK);
  fault_file_arm(mf, 1 << 30, 0);
  int calls = 0;
  for (int i = 0; i < 200 && (calls == 0 || mf->calls > calls); i++) {
    calls = mf->calls;
    CHECK_RC(exec_sql(db, "INSERT INTO t(v) VALUES (randomblob(3000))"), FERRY_OK);
  }
  ferry_db_close(db);
  CHECK(calls > 0);
  for (int n = 1; n <= calls; n++) {
    path = temp_db_path("sqlckpt");
    db = sql_open_faulty(path, &mf);
    CHECK(db);
    CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"), FERRY_OK);
    fault_file_arm(mf, n, 0);
    int rows = 0;
    while (mf->fired == 0 && rows < 200) { CHECK_RC(exec_sql(db, "INSERT INTO t(v) VALUES (randomblob(3000))"), FERRY_OK); rows++; }
    CHECK(mf->fired == 1);
    for (int i = 0; i < 30; i++, rows++) CHECK_RC(exec_sql(db, "INSERT INTO t(v) VALUES (randomblob(3000))"), FERRY_OK);
    ferry_db_close(db);
    db = open_file(path);
    CHECK(db);
    int64_t got = query_int(db, "SELECT count(*) FROM t");
    char buf[64];
    query_text(db, "PRAGMA integrity_check", buf, sizeof buf);
    ferry_db_close(db);
    if (got != rows || strcmp(buf, "ok") != 0)
      fprintf(stderr, "  main call %d of %d failed: %lld rows of %d after reopen, integrity %s\n", n, calls, (long long)got, rows, buf);
    CHECK(got == rows && strcmp(buf, "ok") == 0);
  }
}

/* Opens a new store at path (no faults) with `want` its empty image. */
static int ck_open_empty(const char *path, ck_files *f, ck_image *want) {
  static ck_image img;
  memset(want, 0, sizeof *want);
  return ck_open(path, f, &img, 0, 0, 0, 0);
}

/* A lazy commit (what SQLite's synchronous=OFF asks for: a pull page's inner
 * slices) is written whole but not synced; what a killed process leaves, a
 * second open reads; the next commit's sync, or the close, makes it durable. */
static void a_lazy_commit_should_be_read_back_unsynced_and_synced_by_the_next_commit_or_the_close(void) {
  const char *path = temp_db_path("lazy");
  ck_files f;
  static ck_image want;
  CHECK_RC(ck_open_empty(path, &f, &want), FERRY_OK);
  CHECK_RC(ck_commit_one(f.st, 0), FERRY_OK);
  ck_apply(&want, 0);
  int syncs = f.log->syncs;
  CHECK_RC(ck_commit_as(f.st, 1, 1), FERRY_OK);
  ck_apply(&want, 1);
  CHECK(f.log->syncs == syncs);
  CHECK(ck_reopen_matches(path, &want, NULL, "after a lazy commit, as a kill leaves it"));
  CHECK_RC(ck_commit_one(f.st, 2), FERRY_OK);   /* passes the bound: a checkpoint syncs too */
  ck_apply(&want, 2);
  CHECK(f.log->syncs > syncs);
  syncs = f.log->syncs;
  CHECK_RC(ck_commit_as(f.st, 3, 1), FERRY_OK);
  ck_apply(&want, 3);
  CHECK(f.log->syncs == syncs);
  int total = f.log->syncs;
  f.log->syncs_out = &total;
  ferry_store_close(f.st);
  CHECK(total == syncs + 1);
  CHECK(ck_reopen_matches(path, &want, NULL, "after a lazy commit and the close"));
}

/* A checkpoint that a commit starts leaves an empty, synced log: its new
 * records overwrite the old ones in place, so the old log must be gone
 * before they are written (a power cut could keep some of their sectors
 * and the old header; test_power.c shows what that reopened). */
static void a_log_started_over_by_a_commit_should_be_empty_and_reopen_to_the_same_image(void) {
  const char *path = temp_db_path("restart");
  ck_files f;
  static ck_image want;
  CHECK_RC(ck_open_empty(path, &f, &want), FERRY_OK);
  for (int ci = 0; ci <= CK_FAULTED; ci++) { CHECK_RC(ck_commit_one(f.st, ci), FERRY_OK); ck_apply(&want, ci); }
  int64_t lsize = 0;
  CHECK_RC(f.log->base.m->size(&f.log->base, &lsize), FERRY_OK);
  CHECK(lsize <= 4096);
  CHECK(ck_reopen_matches(path, &want, NULL, "right after the checkpoint, as a crash leaves it"));
  for (int ci = CK_FAULTED + 1; ci < CK_FAULTED + 3; ci++) {
    CHECK_RC(ck_commit_one(f.st, ci), FERRY_OK);
    ck_apply(&want, ci);
    CHECK(ck_reopen_matches(path, &want, NULL, "after commits on the new log"));
  }
  CHECK_RC(f.st->m->checkpoint(f.st), FERRY_OK);
  CHECK_RC(f.log->base.m->size(&f.log->base, &lsize), FERRY_OK);
  CHECK(lsize <= 4096);
  ferry_store_close(f.st);
  CHECK(ck_reopen_matches(path, &want, NULL, "after the explicit checkpoint and the close"));
}

int main(void) {
  RUN(commit_should_survive_reopen_on_file_store);
  RUN(second_open_of_same_file_should_be_busy);
  RUN(failed_commit_should_leave_last_good_commit);
  RUN(torn_log_tail_should_be_ignored_on_open);
  RUN(log_should_checkpoint_and_stay_bounded);
  RUN(large_transaction_should_round_trip);
  RUN(rollback_should_leave_store_untouched);
  RUN(checkpoint_fault_at_every_call_should_lose_no_commit);
  RUN(open_checkpoint_fault_at_every_call_should_lose_no_commit);
  RUN(sql_rows_should_survive_a_failing_main_file_at_each_checkpoint_call);
  RUN(a_lazy_commit_should_be_read_back_unsynced_and_synced_by_the_next_commit_or_the_close);
  RUN(a_log_started_over_by_a_commit_should_be_empty_and_reopen_to_the_same_image);
  return CHECK_DONE();
}
