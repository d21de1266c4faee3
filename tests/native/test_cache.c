/* The VFS's page cache over a store: clean blocks are bounded and evicted,
 * blocks of the open transaction never are, a failed commit falls back to
 * what the store holds, and reads keep working across checkpoints. */
#include "check.h"
#include "fault_store.h"
#include "store.h"
#include "util.h"
#include "vfs.h"
#include "db_internal.h"

#define CACHE (64 * 1024)

/* The log store over path's files with a small log bound, so that a few
 * commits checkpoint; wrapped in a fault store. */
static fault_store *file_store(const char *path, int64_t bound) {
  char lp[600];
  snprintf(lp, sizeof lp, "%s-log", path);
  ferry_file *m = NULL, *l = NULL;
  ferry_store *s = NULL;
  if (ferry_file_posix_open(&m, path) != FERRY_OK || ferry_file_posix_open(&l, lp) != FERRY_OK) return NULL;
  if (ferry_store_log_open(&s, m, l, bound) != FERRY_OK) return NULL;
  return fault_wrap(s);
}

/* SQLite's own page cache is kept tiny so that every read reaches the VFS. */
static ferry_db *open_cached(fault_store *f, const char *name, int64_t cache) {
  ferry_db *db = NULL;
  if (ferry_db_open_cached(&db, name, &f->base, cache) != FERRY_OK) {
    fprintf(stderr, "open: %s\n", ferry_errmsg(db));
    ferry_db_close(db);
    return NULL;
  }
  exec_sql(db, "PRAGMA cache_size=8");
  return db;
}

static const char *integrity(ferry_db *db) {
  static char buf[128];
  return query_text(db, "PRAGMA integrity_check", buf, sizeof buf);
}

/* Rows 1..n of about 1 KiB each whose content follows from the id. */
static int fill(ferry_db *db, int from, int n) {
  char sql[300];
  snprintf(sql, sizeof sql,
           "WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i+1 FROM c WHERE i < %d) "
           "INSERT INTO t(id, v) SELECT i, printf('%%.1000d', i * 7919) FROM c", from, from + n - 1);
  return exec_sql(db, sql);
}

/* A digest of the table that any changed or lost byte alters. */
static int64_t digest(ferry_db *db) {
  return query_int(db, "SELECT total(id * length(v)) + total(unicode(substr(v, 990))) + count(*) FROM t");
}

static void scan_larger_than_the_cache_should_keep_cached_bytes_within_the_bound(void) {
  const char *path = temp_db_path("cache-scan");
  fault_store *f = file_store(path, 0);
  CHECK(f);
  ferry_db *db = open_cached(f, path, CACHE);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), FERRY_OK);
  CHECK_RC(fill(db, 1, 2000), FERRY_OK);   /* ~2 MiB: 31 times the cache */
  int64_t want = digest(db);
  ferry_vfs_stats st;
  ferry__db_vfs_stats(db, &st);
  CHECK(st.cached_bytes <= CACHE);
  uint64_t evicted = st.evictions;
  int reads = f->reads;
  CHECK(digest(db) == want);
  ferry__db_vfs_stats(db, &st);
  CHECK(st.cached_bytes <= CACHE);
  CHECK(st.evictions > evicted);
  /* The blocks were evicted, so a second scan reads them from the store again. */
  int64_t pages = query_int(db, "PRAGMA page_count");
  CHECK(pages * FERRY_BLOCK > 30 * CACHE);
  CHECK(f->reads - reads > pages * 9 / 10);
  CHECK(strcmp(integrity(db), "ok") == 0);
  ferry_db_close(db);
}

static void cache_larger_than_the_database_should_read_each_block_once(void) {
  const char *path = temp_db_path("cache-fits");
  fault_store *f = file_store(path, 0);
  CHECK(f);
  ferry_db *db = open_cached(f, path, 8 << 20);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), FERRY_OK);
  CHECK_RC(fill(db, 1, 500), FERRY_OK);
  int64_t want = digest(db);
  int reads = f->reads;
  for (int k = 0; k < 3; k++) CHECK(digest(db) == want);
  CHECK(f->reads == reads);
  ferry_db_close(db);
}

static void dirty_blocks_should_never_be_evicted(void) {
  const char *path = temp_db_path("cache-dirty");
  fault_store *f = file_store(path, 0);
  CHECK(f);
  ferry_db *db = open_cached(f, path, 16 * 1024);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), FERRY_OK);
  CHECK_RC(fill(db, 1, 300), FERRY_OK);
  /* One transaction far larger than the cache and SQLite's: SQLite spills
   * its pages into the VFS before the commit, and reading the old rows
   * meanwhile pushes clean blocks through the cache. */
  CHECK_RC(exec_sql(db, "BEGIN"), FERRY_OK);
  CHECK_RC(fill(db, 301, 1500), FERRY_OK);
  CHECK(query_int(db, "SELECT count(*) FROM t WHERE id <= 300") == 300);
  ferry_vfs_stats st;
  ferry__db_vfs_stats(db, &st);
  CHECK(st.dirty_blocks > 4 * (16 * 1024 / FERRY_BLOCK));
  CHECK(st.cached_bytes <= 16 * 1024 + FERRY_BLOCK);   /* + the kept copy of block 0 */
  CHECK(query_int(db, "SELECT count(*) FROM t") == 1800);
  CHECK_RC(exec_sql(db, "COMMIT"), FERRY_OK);
  int64_t want = digest(db);
  CHECK(strcmp(integrity(db), "ok") == 0);
  ferry_db_close(db);
  f = file_store(path, 0);
  CHECK(f);
  db = open_cached(f, path, 16 * 1024);
  CHECK(db);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 1800);
  CHECK(digest(db) == want);
  CHECK(strcmp(integrity(db), "ok") == 0);
  ferry_db_close(db);
}

static void failed_commit_should_revert_cached_and_uncached_blocks(void) {
  const char *path = temp_db_path("cache-revert");
  fault_store *f = file_store(path, 0);
  CHECK(f);
  ferry_db *db = open_cached(f, path, CACHE);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), FERRY_OK);
  CHECK_RC(fill(db, 1, 1000), FERRY_OK);
  int64_t want = digest(db);
  /* Changes every row (blocks in the cache and out of it), grows the file. */
  f->fail_next = 1;
  CHECK_RC(exec_sql(db, "BEGIN; UPDATE t SET v = printf('%.1000d', id); INSERT INTO t(v) SELECT v FROM t; COMMIT"), FERRY_FULL);
  CHECK(!ferry_db_in_transaction(db));
  CHECK(query_int(db, "SELECT count(*) FROM t") == 1000);
  CHECK(digest(db) == want);
  CHECK(strcmp(integrity(db), "ok") == 0);
  /* and the connection goes on from there */
  CHECK_RC(exec_sql(db, "DELETE FROM t WHERE id > 900"), FERRY_OK);
  want = digest(db);
  ferry_db_close(db);
  f = file_store(path, 0);
  CHECK(f);
  db = open_cached(f, path, CACHE);
  CHECK(db);
  CHECK(digest(db) == want);
  CHECK(strcmp(integrity(db), "ok") == 0);
  ferry_db_close(db);
}

static void failed_read_should_fail_the_statement_and_leave_the_cache_usable(void) {
  const char *path = temp_db_path("cache-readfail");
  fault_store *f = file_store(path, 0);
  CHECK(f);
  ferry_db *db = open_cached(f, path, CACHE);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), FERRY_OK);
  CHECK_RC(fill(db, 1, 1000), FERRY_OK);
  int64_t want = digest(db);
  f->fail_reads = 1;
  CHECK_RC(exec_sql(db, "SELECT sum(length(v)) FROM t"), FERRY_IO);
  CHECK(strstr(ferry_errmsg(db), "injected read failure") != NULL);
  CHECK(digest(db) == want);
  CHECK(strcmp(integrity(db), "ok") == 0);
  ferry_db_close(db);
}

static void reads_after_checkpoints_should_see_every_commit(void) {
  const char *path = temp_db_path("cache-ckpt");
  fault_store *f = file_store(path, 256 * 1024);   /* a checkpoint every few commits */
  CHECK(f);
  ferry_db *db = open_cached(f, path, 16 * 1024);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), FERRY_OK);
  for (int k = 0; k < 12; k++) {
    CHECK_RC(fill(db, 1 + k * 100, 100), FERRY_OK);
    CHECK_RC(exec_sql(db, "UPDATE t SET v = printf('%.1000d', id * 3) WHERE id % 7 = 0"), FERRY_OK);
    CHECK(query_int(db, "SELECT count(*) FROM t") == (k + 1) * 100);
  }
  int64_t want = digest(db);
  /* A shrink (VACUUM cuts the file off) and regrowth across checkpoints. */
  CHECK_RC(exec_sql(db, "DELETE FROM t WHERE id > 300"), FERRY_OK);
  CHECK_RC(exec_sql(db, "VACUUM"), FERRY_OK);
  CHECK_RC(fill(db, 301, 900), FERRY_OK);
  CHECK_RC(exec_sql(db, "UPDATE t SET v = printf('%.1000d', id * 3) WHERE id % 7 = 0 AND id > 300"), FERRY_OK);
  CHECK(digest(db) == want);
  CHECK(strcmp(integrity(db), "ok") == 0);
  ferry_db_close(db);
  for (int round = 0; round < 2; round++) {
    f = file_store(path, 256 * 1024);
    CHECK(f);
    db = open_cached(f, path, 16 * 1024);
    CHECK(db);
    CHECK(digest(db) == want);
    CHECK(strcmp(integrity(db), "ok") == 0);
    CHECK_RC(exec_sql(db, "UPDATE t SET v = v WHERE id = 1"), FERRY_OK);
    ferry_db_close(db);
  }
}

static void memory_store_should_keep_its_blocks_past_the_cache(void) {
  ferry_store *m = NULL;
  CHECK_RC(ferry_store_memory_open(&m), FERRY_OK);
  fault_store *f = fault_wrap(m);
  f->base.flags = m->flags;
  ferry_db *db = open_cached(f, "cache-memory", CACHE);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), FERRY_OK);
  CHECK_RC(fill(db, 1, 2000), FERRY_OK);
  int64_t want = digest(db);
  f->fail_next = 1;
  CHECK_RC(exec_sql(db, "UPDATE t SET v = 'x'"), FERRY_FULL);
  CHECK(digest(db) == want);
  ferry_vfs_stats st;
  ferry__db_vfs_stats(db, &st);
  CHECK(st.cached_bytes == 0);   /* the store is the only copy */
  CHECK(strcmp(integrity(db), "ok") == 0);
  ferry_db_close(db);
}

/* Counts the bytes read through a file. */
typedef struct counting_file { ferry_file base; ferry_file *inner; int64_t read_bytes; } counting_file;
static int cf_read(ferry_file *b, void *buf, size_t n, int64_t off, size_t *got) {
  counting_file *f = (counting_file *)b;
  int rc = f->inner->m->read(f->inner, buf, n, off, got);
  f->read_bytes += (int64_t)*got;
  return rc;
}
static int cf_write(ferry_file *b, const void *buf, size_t n, int64_t off) { return ((counting_file *)b)->inner->m->write(((counting_file *)b)->inner, buf, n, off); }
static int cf_size(ferry_file *b, int64_t *out) { return ((counting_file *)b)->inner->m->size(((counting_file *)b)->inner, out); }
static int cf_truncate(ferry_file *b, int64_t n) { return ((counting_file *)b)->inner->m->truncate(((counting_file *)b)->inner, n); }
static int cf_sync(ferry_file *b) { return ((counting_file *)b)->inner->m->sync(((counting_file *)b)->inner); }
static void cf_close(ferry_file *b) { ((counting_file *)b)->inner->m->close(((counting_file *)b)->inner); free(b); }
static const ferry_file_methods cf_methods = { cf_read, cf_write, cf_size, cf_truncate, cf_sync, cf_close };
static counting_file *counting(ferry_file *inner) {
  counting_file *f = calloc(1, sizeof *f);
  f->base.m = &cf_methods;
  f->inner = inner;
  return f;
}

static void opening_a_large_database_should_read_only_the_log_not_the_database(void) {
  const char *path = temp_db_path("cache-open");
  fault_store *f = file_store(path, 0);
  CHECK(f);
  ferry_db *db = open_cached(f, path, CACHE);
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), FERRY_OK);
  CHECK_RC(fill(db, 1, 8000), FERRY_OK);   /* ~8 MB: checkpointed into the main file */
  CHECK_RC(exec_sql(db, "UPDATE t SET v = 'changed' WHERE id % 100 = 0"), FERRY_OK);   /* stays in the log */
  int64_t want = digest(db);
  ferry_db_close(db);

  char lp[600];
  snprintf(lp, sizeof lp, "%s-log", path);
  ferry_file *m = NULL, *l = NULL;
  CHECK_RC(ferry_file_posix_open(&m, path), FERRY_OK);
  CHECK_RC(ferry_file_posix_open(&l, lp), FERRY_OK);
  counting_file *cm = counting(m), *cl = counting(l);
  int64_t msize = 0, lsize = 0;
  CHECK_RC(m->m->size(m, &msize), FERRY_OK);
  CHECK_RC(l->m->size(l, &lsize), FERRY_OK);
  CHECK(msize > 6 << 20);
  CHECK(lsize > FERRY_BLOCK);
  ferry_store *st = NULL;
  CHECK_RC(ferry_store_log_open(&st, &cm->base, &cl->base, 0), FERRY_OK);
  CHECK_RC(ferry_db_open_cached(&db, path, st, CACHE), FERRY_OK);
  /* The log is read once (headers and checksums); of the database, only
   * what the first query (the schema) needs. */
  CHECK(cl->read_bytes <= lsize);
  CHECK(cm->read_bytes <= 4 * FERRY_BLOCK);
  CHECK(digest(db) == want);
  ferry_db_close(db);
}

/* The VFS alone, as SQLite's pager drives it, without the journal rollback
 * SQLite runs after a failed commit: the image itself must fall back to the
 * store's last commit, for blocks that were cached and those that were not. */
static void failed_commit_should_put_the_image_back_without_sqlite_rollback(void) {
  const char *path = temp_db_path("cache-vfs");
  fault_store *f = file_store(path, 0);
  CHECK(f);
  CHECK_RC(sqlite3_initialize(), SQLITE_OK);
  ferry__image *img = NULL;
  char err[300];
  CHECK_RC(ferry__vfs_attach("cache-vfs", &f->base, 16 * 1024, &img, err, sizeof err), FERRY_OK);
  sqlite3_vfs *vfs = sqlite3_vfs_find(FERRY_VFS_NAME);
  sqlite3_file *file = calloc(1, (size_t)vfs->szOsFile);
  int flags = 0;
  CHECK_RC(vfs->xOpen(vfs, "cache-vfs", file, SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &flags), SQLITE_OK);
  static uint8_t blk[FERRY_BLOCK], got[FERRY_BLOCK];
  for (int i = 0; i < 10; i++) {
    memset(blk, 'A' + i, sizeof blk);
    CHECK_RC(file->pMethods->xWrite(file, blk, FERRY_BLOCK, (sqlite3_int64)i * FERRY_BLOCK), SQLITE_OK);
  }
  CHECK_RC(file->pMethods->xSync(file, 0), SQLITE_OK);
  /* Block 3 is read (cached) before it changes; 2, 4 and 5 are not. */
  CHECK_RC(file->pMethods->xRead(file, got, FERRY_BLOCK, 3 * FERRY_BLOCK), SQLITE_OK);
  memset(blk, 'z', sizeof blk);
  for (int i = 2; i < 6; i++) CHECK_RC(file->pMethods->xWrite(file, blk, FERRY_BLOCK, (sqlite3_int64)i * FERRY_BLOCK), SQLITE_OK);
  CHECK_RC(file->pMethods->xWrite(file, blk, 100, 12 * FERRY_BLOCK + 50), SQLITE_OK);   /* grows the file */
  f->fail_next = 1;
  CHECK(file->pMethods->xSync(file, 0) != SQLITE_OK);
  sqlite3_int64 size = 0;
  CHECK_RC(file->pMethods->xFileSize(file, &size), SQLITE_OK);
  CHECK(size == 10 * FERRY_BLOCK);
  for (int i = 0; i < 10; i++) {
    CHECK_RC(file->pMethods->xRead(file, got, FERRY_BLOCK, (sqlite3_int64)i * FERRY_BLOCK), SQLITE_OK);
    memset(blk, 'A' + i, sizeof blk);
    if (memcmp(got, blk, FERRY_BLOCK) != 0) fprintf(stderr, "  block %d reads '%c'\n", i, got[0]);
    CHECK(memcmp(got, blk, FERRY_BLOCK) == 0);
  }
  /* and the next commit goes through */
  memset(blk, 'q', sizeof blk);
  CHECK_RC(file->pMethods->xWrite(file, blk, FERRY_BLOCK, 4 * FERRY_BLOCK), SQLITE_OK);
  CHECK_RC(file->pMethods->xSync(file, 0), SQLITE_OK);
  CHECK_RC(file->pMethods->xRead(file, got, FERRY_BLOCK, 4 * FERRY_BLOCK), SQLITE_OK);
  CHECK(got[0] == 'q' && got[FERRY_BLOCK - 1] == 'q');
  CHECK_RC(file->pMethods->xClose(file), SQLITE_OK);
  free(file);
  ferry__vfs_detach(img);
}

int main(void) {
  RUN(scan_larger_than_the_cache_should_keep_cached_bytes_within_the_bound);
  RUN(cache_larger_than_the_database_should_read_each_block_once);
  RUN(dirty_blocks_should_never_be_evicted);
  RUN(failed_commit_should_revert_cached_and_uncached_blocks);
  RUN(failed_read_should_fail_the_statement_and_leave_the_cache_usable);
  RUN(reads_after_checkpoints_should_see_every_commit);
  RUN(memory_store_should_keep_its_blocks_past_the_cache);
  RUN(opening_a_large_database_should_read_only_the_log_not_the_database);
  RUN(failed_commit_should_put_the_image_back_without_sqlite_rollback);
  return CHECK_DONE();
}
