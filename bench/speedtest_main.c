/* speedtest1 on ferry's VFS: SQLite's speedtest1.c is compiled with
 * -Dmain=speedtest1_main and this main runs first. It attaches a ferry store
 * (memory, or the log store over files) under speedtest1's database name,
 * so that speedtest1's sqlite3_open_v2 lands on that store: ferry's VFS
 * otherwise gives a main database nobody attached a private in-memory image.
 *
 *   speedtest1 --ferry-store memory|file [--ferry-path PATH] [speedtest1 options] DBNAME
 *
 * DBNAME must not be an existing file: speedtest1 unlink()s it before it
 * starts (the store's files live at PATH and PATH-log). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench_store.h"
#include "vfs.h"

int speedtest1_main(int argc, char **argv);

static void usage(const char *argv0) {
  fprintf(stderr, "usage: %s --ferry-store memory|file [--ferry-path PATH] [speedtest1 options] DBNAME\n", argv0);
  exit(2);
}

int main(int argc, char **argv) {
  const char *kind = NULL, *path = NULL;
  char **args = calloc((size_t)argc + 1, sizeof *args);
  int n = 0;
  if (!args) return 1;
  args[n++] = argv[0];
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--ferry-store") == 0 && i + 1 < argc) kind = argv[++i];
    else if (strcmp(argv[i], "--ferry-path") == 0 && i + 1 < argc) path = argv[++i];
    else args[n++] = argv[i];
  }
  if (!kind) { free(args); return speedtest1_main(argc, argv); }   /* plain speedtest1 */
  const char *name = n > 1 ? args[n - 1] : NULL;
  if (!name || name[0] == '-') usage(argv[0]);
  if (path && strcmp(path, name) == 0) {
    fprintf(stderr, "bench: DBNAME must differ from --ferry-path (speedtest1 unlinks DBNAME)\n");
    return 2;
  }

  bench_store_stats stats;
  ferry_store *store = NULL;
  if (bench_store_open(&store, kind, path, &stats) != FERRY_OK) return 1;
  /* No SQLite call before speedtest1's own sqlite3_config/initialize. */
  ferry__image *img = NULL;
  char err[300];
  int rc = ferry__vfs_attach(name, store, 0, &img, err, sizeof err);   /* 0: the default page cache */
  if (rc != FERRY_OK) { fprintf(stderr, "bench: %s\n", err); return 1; }

  double c0 = bench_cpu_ms();
  rc = speedtest1_main(n, args);
  double cpu = bench_cpu_ms() - c0;

  printf("-- ferry cpu %.1f ms\n", cpu);
  printf("-- ferry store %s: commits %llu, blocks %llu, bytes %llu, in store %.1f ms\n", kind,
         (unsigned long long)stats.commits, (unsigned long long)stats.blocks,
         (unsigned long long)stats.bytes, stats.commit_ms);
  ferry__vfs_detach(img);
  if (path) bench_store_remove(path);
  free(args);
  return rc;
}
