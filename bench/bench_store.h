/* Stores for the benchmarks (bench-only): the memory store, or the log store
 * over two files (native: POSIX files from core/file_posix.c; wasm under
 * Node: files whose bytes go through JS host functions, as in the product's
 * 'file' storage), each wrapped so the benchmark can count what reaches the
 * store and how long the store takes. */
#ifndef FERRY_BENCH_STORE_H
#define FERRY_BENCH_STORE_H

#include <stdint.h>
#include "ferry.h"
#include "store.h"

typedef struct bench_store_stats {
  uint64_t commits, blocks, bytes;   /* batches, blocks and block bytes committed */
  double commit_ms;                  /* wall time spent inside the store's commit */
} bench_store_stats;

/* kind: "memory" or "file" (path required; path and path-log are created
 * fresh). The result counts into *stats (which must outlive the store). */
int bench_store_open(ferry_store **out, const char *kind, const char *path,
                     bench_store_stats *stats);
/* Removes path and path-log (the file store's two files). */
void bench_store_remove(const char *path);
/* Monotonic milliseconds. */
double bench_now_ms(void);
/* CPU milliseconds used by the calling thread (native: CLOCK_THREAD_CPUTIME_ID;
 * wasm under Node: utime+stime of Node's main thread from /proc, 10 ms ticks).
 * Unlike wall time it does not count time the thread waited for a core, so
 * it stays meaningful on a machine other processes keep busy. */
double bench_cpu_ms(void);
/* Bytes this process has had written to storage so far (write_bytes in
 * /proc/self/io; -1 where unavailable). */
double bench_os_write_bytes(void);

#endif
