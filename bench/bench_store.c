/* See bench_store.h. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bench_store.h"

double bench_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
EM_JS(double, bench_js_cpu_ms, (void), {
  try {
    var f = require('fs').readFileSync('/proc/self/task/' + process.pid + '/stat', 'utf8');
    var v = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(v[11]) + Number(v[12])) * 10;   /* utime, stime in 1/100 s */
  } catch (e) { return -1; }
});
double bench_cpu_ms(void) { return bench_js_cpu_ms(); }
EM_JS(double, bench_js_os_write_bytes, (void), {
  try {
    var io = require('fs').readFileSync('/proc/self/io', 'utf8');
    var at = io.indexOf('write_bytes: ');
    return at < 0 ? -1 : parseInt(io.slice(at + 13), 10);
  } catch (e) { return -1; }
});
double bench_os_write_bytes(void) { return bench_js_os_write_bytes(); }
#else
double bench_os_write_bytes(void) {
  FILE *f = fopen("/proc/self/io", "r");
  if (!f) return -1;
  char line[128];
  double v = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "write_bytes: ", 13) == 0) v = strtod(line + 13, NULL);
  fclose(f);
  return v;
}
double bench_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
#endif

void bench_store_remove(const char *path) {
  char log[4096];
  snprintf(log, sizeof log, "%s-log", path);
  unlink(path);
  unlink(log);
}

/* ---- a counting wrapper around any store --------------------------------- */
typedef struct counted {
  ferry_store base;
  ferry_store *inner;
  bench_store_stats *stats;
} counted;

static int c_open(ferry_store *s, int64_t *size) {
  counted *c = (counted *)s;
  int rc = c->inner->m->open(c->inner, size);
  if (rc != FERRY_OK) memcpy(s->errmsg, c->inner->errmsg, sizeof s->errmsg);
  return rc;
}

static int c_read(ferry_store *s, uint32_t no, uint8_t *buf) {
  counted *c = (counted *)s;
  int rc = c->inner->m->read(c->inner, no, buf);
  if (rc != FERRY_OK) memcpy(s->errmsg, c->inner->errmsg, sizeof s->errmsg);
  return rc;
}

static int c_commit(ferry_store *s, const ferry_block *b, size_t n, int64_t size) {
  counted *c = (counted *)s;
  double t0 = bench_now_ms();
  int rc = c->inner->m->commit(c->inner, b, n, size);
  c->stats->commit_ms += bench_now_ms() - t0;
  if (rc != FERRY_OK) { memcpy(s->errmsg, c->inner->errmsg, sizeof s->errmsg); return rc; }
  c->stats->commits++;
  c->stats->blocks += n;
  c->stats->bytes += (uint64_t)n * FERRY_BLOCK;
  return rc;
}

static void c_close(ferry_store *s) {
  counted *c = (counted *)s;
  ferry_store_close(c->inner);
  free(c);
}

static const ferry_store_methods counted_methods = { c_open, c_read, c_commit, c_close };

/* ---- files ----------------------------------------------------------------- */
#ifdef __EMSCRIPTEN__
/* Under Node the bytes go through JS, like the product's 'file' storage
 * (bindings/storage/node-file.js over bindings/host.js); bench/node-host.js
 * (a --pre-js) implements Module.ferryHost with fs's synchronous calls. */
#include <emscripten.h>

EM_JS(int, bench_js_file_open, (const char *path), {
  return Module['ferryHost'].open(UTF8ToString(path));
});
EM_JS(int, bench_js_file_read, (int id, void *buf, int n, double off), {
  return Module['ferryHost'].fileRead(id, buf, n, off);
});
EM_JS(int, bench_js_file_write, (int id, const void *buf, int n, double off), {
  return Module['ferryHost'].fileWrite(id, buf, n, off);
});
EM_JS(double, bench_js_file_size, (int id), {
  return Module['ferryHost'].fileSize(id);
});
EM_JS(int, bench_js_file_truncate, (int id, double size), {
  return Module['ferryHost'].fileTruncate(id, size);
});
EM_JS(int, bench_js_file_sync, (int id), {
  return Module['ferryHost'].fileSync(id);
});
EM_JS(void, bench_js_file_close, (int id), {
  Module['ferryHost'].fileClose(id);
});
EM_JS(int, bench_js_random, (void *buf, int n), {
  return Module['ferryHost'].random(buf, n);
});

/* The core's random bytes (core/entropy.h), from the host as in the product. */
#include "entropy.h"
int ferry__entropy(void *buf, size_t n) {
  return bench_js_random(buf, (int)n) ? FERRY_IO : FERRY_OK;
}

typedef struct js_file { ferry_file base; int id; } js_file;

static int jf_read(ferry_file *f, void *buf, size_t n, int64_t off, size_t *got) {
  int r = bench_js_file_read(((js_file *)f)->id, buf, (int)n, (double)off);
  if (r < 0) return FERRY_IO;
  *got = (size_t)r;
  return FERRY_OK;
}
static int jf_write(ferry_file *f, const void *buf, size_t n, int64_t off) {
  return bench_js_file_write(((js_file *)f)->id, buf, (int)n, (double)off) ? FERRY_IO : FERRY_OK;
}
static int jf_size(ferry_file *f, int64_t *out) {
  double s = bench_js_file_size(((js_file *)f)->id);
  if (s < 0) return FERRY_IO;
  *out = (int64_t)s;
  return FERRY_OK;
}
static int jf_truncate(ferry_file *f, int64_t size) {
  return bench_js_file_truncate(((js_file *)f)->id, (double)size) ? FERRY_IO : FERRY_OK;
}
static int jf_sync(ferry_file *f) {
  return bench_js_file_sync(((js_file *)f)->id) ? FERRY_IO : FERRY_OK;
}
static void jf_close(ferry_file *f) {
  bench_js_file_close(((js_file *)f)->id);
  free(f);
}
static const ferry_file_methods jf_methods = { jf_read, jf_write, jf_size, jf_truncate, jf_sync, jf_close };

static int js_file_open(ferry_file **out, const char *path) {
  *out = NULL;
  int id = bench_js_file_open(path);
  if (id <= 0) return FERRY_IO;
  js_file *f = calloc(1, sizeof *f);
  if (!f) { bench_js_file_close(id); return FERRY_NOMEM; }
  f->base.m = &jf_methods;
  f->id = id;
  *out = &f->base;
  return FERRY_OK;
}

static int file_store_open(ferry_store **out, const char *path) {
  char log[4096];
  snprintf(log, sizeof log, "%s-log", path);
  ferry_file *m = NULL, *l = NULL;
  int rc = js_file_open(&m, path);
  if (rc == FERRY_OK) rc = js_file_open(&l, log);
  if (rc != FERRY_OK) {
    if (m) m->m->close(m);
    return rc;
  }
  return ferry_store_log_open(out, m, l, 0);
}
#else
static int file_store_open(ferry_store **out, const char *path) {
  return ferry_store_file_open(out, path);
}
#endif

int bench_store_open(ferry_store **out, const char *kind, const char *path,
                     bench_store_stats *stats) {
  *out = NULL;
  ferry_store *inner = NULL;
  int rc;
  if (strcmp(kind, "memory") == 0) {
    rc = ferry_store_memory_open(&inner);
  } else if (strcmp(kind, "file") == 0 && path) {
    bench_store_remove(path);
    rc = file_store_open(&inner, path);
  } else {
    fprintf(stderr, "bench: unknown store '%s' (memory, or file with a path)\n", kind);
    return FERRY_MISUSE;
  }
  if (rc != FERRY_OK) {
    fprintf(stderr, "bench: cannot open the %s store%s%s: %s\n", kind,
            path ? " at " : "", path ? path : "", ferry_errstr(rc));
    return rc;
  }
  counted *c = calloc(1, sizeof *c);
  if (!c) { ferry_store_close(inner); return FERRY_NOMEM; }
  c->base.m = &counted_methods;
  c->base.flags = inner->flags;
  c->inner = inner;
  c->stats = stats;
  memset(stats, 0, sizeof *stats);
  *out = &c->base;
  return FERRY_OK;
}
