/* Runs one SQL script on a fresh ferry database, as the product opens it
 * (ferry_db_open: ferry's VFS, journal_mode=MEMORY, synchronous=NORMAL,
 * foreign_keys=ON), and reports the time of sqlite3_exec over the whole
 * script. Built natively and to wasm from the same source.
 *
 *   runsql --store memory|file [--path PATH] [--reps N] [--hash] [--heap MB] SCRIPT
 *
 * One line per repetition:
 *   rep K ms T cpu_ms U commits C blocks B bytes Y store_ms S os_write_bytes W [hash H size Z]
 * where cpu_ms is the CPU time of the running thread (bench_cpu_ms),
 * store_ms the time spent inside the store's commits (the file store's
 * writes and fsyncs), os_write_bytes what the process had written to
 * storage meanwhile (/proc/self/io; the file store's log, checkpoints and
 * file system overhead) and hash is FNV-1a 64 of the final database
 * image (sqlite3_serialize), to show both builds computed the same thing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sqlite3.h"
#include "bench_store.h"

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 20, n = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (!buf) { fclose(f); return NULL; }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n < cap) break;
    cap *= 2;
    char *b = realloc(buf, cap + 1);
    if (!b) free(buf);
    buf = b;
  }
  fclose(f);
  buf[n] = 0;
  *len = n;
  return buf;
}

/* speedtest1's deterministic random(), in case a script calls it. */
static unsigned rx = 0xad131d0b, ry = 0x44f9eac8;
static void random_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc; (void)argv;
  rx = (rx >> 1) ^ ((1 + ~(rx & 1)) & 0xd0000001);
  ry = ry * 1103515245 + 12345;
  sqlite3_result_int64(ctx, (sqlite3_int64)(rx ^ ry));
}

int main(int argc, char **argv) {
  const char *kind = "memory", *path = NULL, *script = NULL;
  int reps = 1, want_hash = 0, heap_mb = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) kind = argv[++i];
    else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc) path = argv[++i];
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--hash") == 0) want_hash = 1;
    else if (strcmp(argv[i], "--heap") == 0 && i + 1 < argc) heap_mb = atoi(argv[++i]);
    else if (argv[i][0] != '-' && !script) script = argv[i];
    else {
      fprintf(stderr, "usage: %s --store memory|file [--path PATH] [--reps N] [--hash] [--heap MB] SCRIPT\n", argv[0]);
      return 2;
    }
  }
  if (!script) { fprintf(stderr, "runsql: no script given\n"); return 2; }
  if (heap_mb > 0) {
    /* SQLite's own allocator (memsys5 when compiled in) over one fixed heap,
     * instead of the C library's malloc. */
    void *heap = malloc((size_t)heap_mb << 20);
    if (!heap || sqlite3_config(SQLITE_CONFIG_HEAP, heap, heap_mb << 20, 64) != SQLITE_OK) {
      fprintf(stderr, "runsql: --heap needs SQLITE_ENABLE_MEMSYS5\n");
      return 2;
    }
  }
  size_t len = 0;
  char *sql = read_all(script, &len);
  if (!sql) { fprintf(stderr, "runsql: cannot read %s\n", script); return 1; }

  for (int rep = 1; rep <= reps; rep++) {
    bench_store_stats st;
    ferry_store *store = NULL;
    if (bench_store_open(&store, kind, path, &st) != FERRY_OK) return 1;
    ferry_db *db = NULL;
    int rc = ferry_db_open(&db, path ? path : "bench", store);
    if (rc != FERRY_OK) {
      fprintf(stderr, "runsql: open failed: %s\n", ferry_errmsg(db));
      ferry_db_close(db);
      return 1;
    }
    sqlite3 *sq = ferry_db_sqlite(db);
    sqlite3_create_function(sq, "random", 0, SQLITE_UTF8, 0, random_fn, 0, 0);
    rx = 0xad131d0b; ry = 0x44f9eac8;
    st.commits = st.blocks = st.bytes = 0; st.commit_ms = 0;

    char *err = NULL;
    double w0 = bench_os_write_bytes(), c0 = bench_cpu_ms(), t0 = bench_now_ms();
    rc = sqlite3_exec(sq, sql, NULL, NULL, &err);
    double ms = bench_now_ms() - t0, cpu = bench_cpu_ms() - c0, wb = bench_os_write_bytes() - w0;
    if (rc != SQLITE_OK) {
      fprintf(stderr, "runsql: script failed: %s\n", err ? err : sqlite3_errmsg(sq));
      sqlite3_free(err);
      ferry_db_close(db);
      return 1;
    }
    printf("rep %d ms %.3f cpu_ms %.1f commits %llu blocks %llu bytes %llu store_ms %.3f", rep, ms, cpu,
           (unsigned long long)st.commits, (unsigned long long)st.blocks,
           (unsigned long long)st.bytes, st.commit_ms);
    printf(" os_write_bytes %.0f", w0 < 0 ? -1 : wb);
    if (want_hash) {
      sqlite3_int64 sz = 0;
      unsigned char *img = sqlite3_serialize(sq, "main", &sz, 0);
      unsigned long long h = 0xcbf29ce484222325ull;
      for (sqlite3_int64 k = 0; img && k < sz; k++) { h ^= img[k]; h *= 0x100000001b3ull; }
      sqlite3_free(img);
      printf(" hash %016llx size %lld", h, (long long)sz);
    }
    printf("\n");
    fflush(stdout);
    ferry_db_close(db);
    if (path) bench_store_remove(path);
  }
  free(sql);
  return 0;
}
