/* A store wrapper that fails chosen commits, to prove that a failed commit
 * leaves the last good state in place. */
#ifndef FERRY_FAULT_STORE_H
#define FERRY_FAULT_STORE_H
#include <stdlib.h>
#include "store.h"

typedef struct fault_store {
  ferry_store base;
  ferry_store *inner;
  int fail_next;        /* fail this many commits from now on */
  int fail_rc;          /* code to fail with */
  int commits;
} fault_store;

static int fault_load(ferry_store *s, ferry_block_cb cb, void *arg, int64_t *size) {
  fault_store *f = (fault_store *)s;
  return f->inner->m->load(f->inner, cb, arg, size);
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
static const ferry_store_methods fault_methods = { fault_load, fault_commit, fault_close };

static fault_store *fault_wrap(ferry_store *inner) {
  fault_store *f = calloc(1, sizeof *f);
  f->base.m = &fault_methods;
  f->inner = inner;
  f->fail_rc = FERRY_FULL;
  return f;
}
#endif
