/* A small set of names in insertion order (internal): the tables a query
 * reads or a commit changed. */
#ifndef FERRY_NAMES_H
#define FERRY_NAMES_H
#include "buf.h"

typedef struct ferry__names {
  char **v;
  int n, cap;
  int oom;               /* sticky: a failed add makes the set unreliable */
} ferry__names;

/* Adds a copy of name unless it is there already. FERRY_OK or FERRY_NOMEM. */
int ferry__names_add(ferry__names *s, const char *name);
/* Adds every name of src to dst (src is left as it was). */
int ferry__names_merge(ferry__names *dst, const ferry__names *src);
/* Empties the set (keeps its capacity). */
void ferry__names_clear(ferry__names *s);
/* Frees the set's memory; the set is empty after. */
void ferry__names_free(ferry__names *s);
/* Replaces b's content with the list: u32 count, then u32 length + bytes each. */
void ferry__names_encode(const ferry__names *s, ferry__buf *b);

#endif
