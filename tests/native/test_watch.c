/* What live queries rest on: the tables a query reads come from SQLite's
 * authorizer, and the tables a commit changed from its hooks, once per
 * commit, never for a rolled-back transaction. */
#include "check.h"
#include "util.h"

/* The names in an encoded list (u32 count, then u32 length + bytes each),
 * joined with ',' in their order. */
static const char *names(const uint8_t *p, size_t len, char *out, size_t cap) {
  uint32_t n, l;
  size_t at = 0, o = 0;
  out[0] = 0;
  if (len < 4) return "?";
  memcpy(&n, p, 4); at = 4;
  for (uint32_t i = 0; i < n; i++) {
    memcpy(&l, p + at, 4); at += 4;
    if (o && o < cap - 1) out[o++] = ',';
    for (uint32_t k = 0; k < l && o < cap - 1; k++) out[o++] = (char)p[at + k];
    at += l;
  }
  out[o] = 0;
  return out;
}

static ferry_db *open_mem(const char *name) {
  ferry_store *s = NULL;
  ferry_db *db = NULL;
  if (ferry_store_memory_open(&s) != FERRY_OK) return NULL;
  if (ferry_db_open(&db, name, s) != FERRY_OK) { ferry_db_close(db); return NULL; }
  return db;
}

static const char *reads(ferry_db *db, const char *sql, char *out, size_t cap) {
  const uint8_t *p; size_t n;
  if (ferry_db_reads(db, sql, strlen(sql), &p, &n) != FERRY_OK) return "error";
  return names(p, n, out, cap);
}

static const char *changed(ferry_db *db, char *out, size_t cap) {
  const uint8_t *p; size_t n;
  if (ferry_db_changed(db, &p, &n) != FERRY_OK) return "error";
  return names(p, n, out, cap);
}

static void reads_should_name_the_tables_a_query_reads_views_and_joins_included(void) {
  ferry_db *db = open_mem("watch1");
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE a(id INTEGER PRIMARY KEY, x); CREATE TABLE b(id TEXT PRIMARY KEY, a_id) WITHOUT ROWID;"
                        "CREATE TABLE c(v); CREATE VIEW ab AS SELECT a.x, b.id FROM a JOIN b ON b.a_id = a.id"), FERRY_OK);
  char buf[200];
  CHECK(strcmp(reads(db, "SELECT x FROM a WHERE id > ?", buf, sizeof buf), "a") == 0);
  CHECK(strcmp(reads(db, "SELECT count(*) FROM c", buf, sizeof buf), "c") == 0);
  /* The view names itself and, what a commit is matched against, its tables. */
  CHECK(strcmp(reads(db, "SELECT * FROM ab", buf, sizeof buf), "a,b,ab") == 0);
  CHECK(strcmp(reads(db, "SELECT (SELECT count(*) FROM c) AS n, x FROM a", buf, sizeof buf), "c,a") == 0
        || strcmp(buf, "a,c") == 0);
  CHECK(strcmp(reads(db, "SELECT 1", buf, sizeof buf), "") == 0);
  ferry_db_close(db);
}

static void reads_should_refuse_writes_scripts_and_bad_sql(void) {
  ferry_db *db = open_mem("watch2");
  CHECK(db);
  CHECK_RC(exec_sql(db, "CREATE TABLE a(x)"), FERRY_OK);
  const uint8_t *p; size_t n;
  const char *w = "INSERT INTO a VALUES (1)";
  CHECK_RC(ferry_db_reads(db, w, strlen(w), &p, &n), FERRY_MISUSE);
  const char *two = "SELECT x FROM a; SELECT 1";
  CHECK_RC(ferry_db_reads(db, two, strlen(two), &p, &n), FERRY_MISUSE);
  const char *bad = "SELECT nope FROM a";
  CHECK_RC(ferry_db_reads(db, bad, strlen(bad), &p, &n), FERRY_SQL);
  CHECK(strstr(ferry_errmsg(db), "nope"));
  CHECK(query_int(db, "SELECT count(*) FROM a") == 0);
  ferry_db_close(db);
}

static void changed_should_name_each_table_once_per_commit_and_forget_rollbacks(void) {
  ferry_db *db = open_mem("watch3");
  CHECK(db);
  char buf[200];
  CHECK_RC(exec_sql(db, "CREATE TABLE a(id INTEGER PRIMARY KEY, x); CREATE TABLE b(id TEXT PRIMARY KEY, v) WITHOUT ROWID"), FERRY_OK);
  changed(db, buf, sizeof buf);   /* whatever creating them reported */
  CHECK_RC(exec_sql(db, "BEGIN; INSERT INTO a(x) VALUES (1),(2),(3); INSERT INTO b VALUES ('k', 1); UPDATE a SET x = x + 1; COMMIT"), FERRY_OK);
  CHECK(strcmp(changed(db, buf, sizeof buf), "a,b") == 0);
  CHECK(strcmp(changed(db, buf, sizeof buf), "") == 0);   /* taken: reported once */
  CHECK_RC(exec_sql(db, "BEGIN; DELETE FROM b; ROLLBACK"), FERRY_OK);
  CHECK(strcmp(changed(db, buf, sizeof buf), "") == 0);
  CHECK_RC(exec_sql(db, "SELECT * FROM a"), FERRY_OK);
  CHECK(strcmp(changed(db, buf, sizeof buf), "") == 0);
  /* A statement that fails rolls back its own changes: nothing committed. */
  CHECK(exec_sql(db, "INSERT INTO a(id, x) VALUES (10, 1), (1, 1)") == FERRY_CONSTRAINT);
  CHECK(strcmp(changed(db, buf, sizeof buf), "") == 0);
  CHECK_RC(exec_sql(db, "DELETE FROM b"), FERRY_OK);
  CHECK(strcmp(changed(db, buf, sizeof buf), "b") == 0);
  ferry_db_close(db);
}

int main(void) {
  RUN(reads_should_name_the_tables_a_query_reads_views_and_joins_included);
  RUN(reads_should_refuse_writes_scripts_and_bad_sql);
  RUN(changed_should_name_each_table_once_per_commit_and_forget_rollbacks);
  return CHECK_DONE();
}
