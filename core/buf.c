#include <stdlib.h>
#include "buf.h"
#include "ferry.h"

int ferry__buf_reserve(ferry__buf *b, size_t extra) {
  if (b->oom) return FERRY_NOMEM;
  if (b->len + extra <= b->cap) return FERRY_OK;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) { b->oom = 1; return FERRY_NOMEM; }
  b->p = p; b->cap = cap;
  return FERRY_OK;
}

void ferry__buf_free(ferry__buf *b) {
  free(b->p);
  b->p = NULL; b->len = b->cap = 0; b->oom = 0;
}
