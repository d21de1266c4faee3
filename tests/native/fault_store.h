/* Fault injection for the durability tests: a store wrapper that fails
 * chosen commits (or reads), to prove that a failed commit leaves the last good state in
 * place, and a file wrapper that fails a chosen call (read, write, size,
 * truncate or sync) of the files under the log store, the way a disk that
 * fills up or errs does. */
#ifndef FERRY_FAULT_STORE_H
#define FERRY_FAULT_STORE_H
#include <stdlib.h>
#include <string.h>
#include "store.h"

typedef struct fault_store {
  ferry_store base;
  ferry_store *inner;
  int fail_next;        /* fail this many commits from now on */
  int fail_rc;          /* code to fail with */
  int commits;
  int fail_reads;       /* fail this many reads from now on */
  int reads;            /* blocks read through the store */
} fault_store;

static int fault_open(ferry_store *s, int64_t *size) {
  fault_store *f = (fault_store *)s;
  return f->inner->m->open(f->inner, size);
}
static int fault_read(ferry_store *s, uint32_t no, uint8_t *buf) {
  fault_store *f = (fault_store *)s;
  f->reads++;
  if (f->fail_reads > 0) {
    f->fail_reads--;
    return ferry__store_fail(s, FERRY_IO, "injected read failure");
  }
  return f->inner->m->read(f->inner, no, buf);
}
static int fault_commit(ferry_store *s, const ferry_block *b, size_t n, int64_t size) {
  fault_store *f = (fault_store *)s;
  if (f->fail_next > 0) {
    f->fail_next--;
    return ferry__store_fail(s, f->fail_rc, "injected failure");
  }
  f->commits++;
  return f->inner->m->commit(f->inner, b, n, size);
}
static void fault_close(ferry_store *s) {
  fault_store *f = (fault_store *)s;
  ferry_store_close(f->inner);
  free(f);
}
static const ferry_store_methods fault_methods = { fault_open, fault_read, fault_commit, fault_close };

static fault_store *fault_wrap(ferry_store *inner) {
  fault_store *f = calloc(1, sizeof *f);
  f->base.m = &fault_methods;
  f->inner = inner;
  f->fail_rc = FERRY_FULL;
  return f;
}

/* Counts every call from fault_file_arm on and fails the `fail_at`th (and,
 * when sticky, every one after it) with fail_rc. A failing write first
 * writes half of its bytes (torn); a failing read fills half of the buffer
 * with garbage, or with short_reads returns FERRY_OK and half of the bytes
 * (a read that comes back short inside the file); a failing truncate or
 * sync does nothing. */
typedef struct fault_file {
  ferry_file base;
  ferry_file *inner;
  int fail_at;          /* 1-based call number since arming; 0: never */
  int sticky;
  int calls;
  int fired;            /* failures injected since arming */
  int *fired_out;       /* when set, also counts them (outlives the file's close) */
  int fail_rc;
  int short_reads;
  int syncs;            /* sync calls that reached the file, armed or not */
  int *syncs_out;       /* when set, also counts them (outlives the file's close) */
} fault_file;

static int fault_file_hit(fault_file *f) {
  if (f->fail_at == 0) return 0;
  f->calls++;
  if (f->calls == f->fail_at || (f->sticky && f->calls > f->fail_at)) {
    f->fired++;
    if (f->fired_out) (*f->fired_out)++;
    return 1;
  }
  return 0;
}
static int ff_read(ferry_file *b, void *buf, size_t n, int64_t off, size_t *got) {
  fault_file *f = (fault_file *)b;
  if (fault_file_hit(f)) {
    if (f->short_reads) return f->inner->m->read(f->inner, buf, n / 2, off, got);
    memset(buf, 0xA5, n / 2);
    *got = 0;
    return f->fail_rc;
  }
  return f->inner->m->read(f->inner, buf, n, off, got);
}
static int ff_write(ferry_file *b, const void *buf, size_t n, int64_t off) {
  fault_file *f = (fault_file *)b;
  if (fault_file_hit(f)) { f->inner->m->write(f->inner, buf, n / 2, off); return f->fail_rc; }
  return f->inner->m->write(f->inner, buf, n, off);
}
static int ff_size(ferry_file *b, int64_t *out) {
  fault_file *f = (fault_file *)b;
  if (fault_file_hit(f)) return f->fail_rc;
  return f->inner->m->size(f->inner, out);
}
static int ff_truncate(ferry_file *b, int64_t size) {
  fault_file *f = (fault_file *)b;
  if (fault_file_hit(f)) return f->fail_rc;
  return f->inner->m->truncate(f->inner, size);
}
static int ff_sync(ferry_file *b) {
  fault_file *f = (fault_file *)b;
  if (fault_file_hit(f)) return f->fail_rc;
  f->syncs++;
  if (f->syncs_out) (*f->syncs_out)++;
  return f->inner->m->sync(f->inner);
}
static void ff_close(ferry_file *b) {
  fault_file *f = (fault_file *)b;
  f->inner->m->close(f->inner);
  free(f);
}
static const ferry_file_methods fault_file_methods = { ff_read, ff_write, ff_size, ff_truncate, ff_sync, ff_close };

static fault_file *fault_file_wrap(ferry_file *inner) {
  fault_file *f = calloc(1, sizeof *f);
  f->base.m = &fault_file_methods;
  f->inner = inner;
  f->fail_rc = FERRY_IO;
  return f;
}
static void fault_file_arm(fault_file *f, int fail_at, int sticky) {
  f->fail_at = fail_at; f->sticky = sticky; f->calls = 0; f->fired = 0;
}
#endif
