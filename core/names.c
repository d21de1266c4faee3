/* ferry__names: the few table names a query or a commit touches, kept in
 * a linear set (tens of names at most, so a scan beats hashing). */
#include <stdlib.h>
#include <string.h>
#include "ferry.h"
#include "names.h"

int ferry__names_add(ferry__names *s, const char *name) {
  /* A commit usually touches one table row after row: check the last first. */
  if (s->n && strcmp(s->v[s->n - 1], name) == 0) return FERRY_OK;
  for (int i = 0; i < s->n; i++) if (strcmp(s->v[i], name) == 0) return FERRY_OK;
  if (s->n == s->cap) {
    int cap = s->cap ? s->cap * 2 : 8;
    char **v = realloc(s->v, (size_t)cap * sizeof *v);
    if (!v) { s->oom = 1; return FERRY_NOMEM; }
    s->v = v;
    s->cap = cap;
  }
  size_t len = strlen(name);
  char *copy = malloc(len + 1);
  if (!copy) { s->oom = 1; return FERRY_NOMEM; }
  memcpy(copy, name, len + 1);
  s->v[s->n++] = copy;
  return FERRY_OK;
}

int ferry__names_merge(ferry__names *dst, const ferry__names *src) {
  if (src->oom) dst->oom = 1;
  for (int i = 0; i < src->n; i++) {
    int rc = ferry__names_add(dst, src->v[i]);
    if (rc != FERRY_OK) return rc;
  }
  return FERRY_OK;
}

void ferry__names_clear(ferry__names *s) {
  for (int i = 0; i < s->n; i++) free(s->v[i]);
  s->n = 0;
  s->oom = 0;
}

void ferry__names_free(ferry__names *s) {
  ferry__names_clear(s);
  free(s->v);
  s->v = NULL;
  s->cap = 0;
}

void ferry__names_encode(const ferry__names *s, ferry__buf *b) {
  b->len = 0;
  b->oom = 0;
  ferry__buf_u32(b, (uint32_t)s->n);
  for (int i = 0; i < s->n; i++) {
    uint32_t len = (uint32_t)strlen(s->v[i]);
    ferry__buf_u32(b, len);
    ferry__buf_put(b, s->v[i], len);
  }
}
