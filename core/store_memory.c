/* The memory store: the VFS image is the only copy, so load and commit
 * have nothing to do. */
#include <stdlib.h>
#include "store.h"

static int mem_load(ferry_store *s, ferry_block_cb cb, void *arg, int64_t *size) {
  (void)s; (void)cb; (void)arg;
  *size = 0;
  return FERRY_OK;
}
static int mem_commit(ferry_store *s, const ferry_block *b, size_t n, int64_t size) {
  (void)s; (void)b; (void)n; (void)size;
  return FERRY_OK;
}
static void mem_close(ferry_store *s) { free(s); }

static const ferry_store_methods mem_methods = { mem_load, mem_commit, mem_close };

int ferry_store_memory_open(ferry_store **out) {
  ferry_store *s = calloc(1, sizeof *s);
  *out = s;
  if (!s) return FERRY_NOMEM;
  s->m = &mem_methods;
  s->flags = FERRY_STORE_VOLATILE;
  return FERRY_OK;
}
