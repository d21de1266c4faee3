#ifndef FERRY_TEST_UTIL_H
#define FERRY_TEST_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include "ferry.h"
#include "sqlite3.h"

static int exec_sql(ferry_db *db, const char *sql) {
  return ferry_db_run(db, sql, strlen(sql), NULL, 0, 0, NULL, NULL);
}

/* The first column of the first row, as an integer (-1 on error). */
static int64_t query_int(ferry_db *db, const char *sql) {
  sqlite3_stmt *st;
  int64_t v = -1;
  if (sqlite3_prepare_v2(ferry_db_sqlite(db), sql, -1, &st, NULL) != SQLITE_OK) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static const char *query_text(ferry_db *db, const char *sql, char *out, size_t n) {
  sqlite3_stmt *st;
  out[0] = 0;
  if (sqlite3_prepare_v2(ferry_db_sqlite(db), sql, -1, &st, NULL) != SQLITE_OK) return out;
  if (sqlite3_step(st) == SQLITE_ROW) snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return out;
}

/* A fresh path in a temporary folder (removed with its log first). */
static const char *temp_db_path(const char *tag) {
  static char path[512];
  snprintf(path, sizeof path, "%s/ferry-test-%d-%s.db", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid(), tag);
  char log[530];
  snprintf(log, sizeof log, "%s-log", path);
  unlink(path); unlink(log);
  return path;
}
#endif
