/* The memory store: keeps every committed block in this process's memory,
 * indexed by block number; durable for the process lifetime only. */
#include <stdlib.h>
#include <string.h>
#include "store.h"

typedef struct mem_store {
  ferry_store base;
  uint8_t **blk;          /* blk[i]: FERRY_BLOCK bytes, or NULL for zeros */
  uint32_t nblk;          /* capacity of blk */
  int64_t size;
} mem_store;

static int mem_open(ferry_store *s, int64_t *size) {
  *size = ((mem_store *)s)->size;
  return FERRY_OK;
}

static int mem_read(ferry_store *s, uint32_t no, uint8_t *buf) {
  mem_store *m = (mem_store *)s;
  if (no < m->nblk && m->blk[no]) memcpy(buf, m->blk[no], FERRY_BLOCK);
  else memset(buf, 0, FERRY_BLOCK);
  return FERRY_OK;
}

/* Every allocation happens before the first block is copied, so a batch
 * that runs out of memory leaves the store as it was. */
static int mem_commit(ferry_store *s, const ferry_block *b, size_t n, int64_t size) {
  mem_store *m = (mem_store *)s;
  uint32_t need = 0;
  for (size_t k = 0; k < n; k++) if (b[k].no + 1 > need) need = b[k].no + 1;
  if (need > m->nblk) {
    uint32_t cap = m->nblk ? m->nblk : 64;
    while (cap < need) cap *= 2;
    uint8_t **p = realloc(m->blk, cap * sizeof *p);
    if (!p) return ferry__store_fail(s, FERRY_NOMEM, "out of memory");
    memset(p + m->nblk, 0, (cap - m->nblk) * sizeof *p);
    m->blk = p; m->nblk = cap;
  }
  for (size_t k = 0; k < n; k++) {
    if (m->blk[b[k].no]) continue;
    /* A block allocated here and left by a failure reads as zeros, as
     * before: it held none. */
    if (!(m->blk[b[k].no] = calloc(1, FERRY_BLOCK))) return ferry__store_fail(s, FERRY_NOMEM, "out of memory");
  }
  for (size_t k = 0; k < n; k++) memcpy(m->blk[b[k].no], b[k].data, FERRY_BLOCK);
  uint32_t keep = (uint32_t)((size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  for (uint32_t i = keep; i < m->nblk; i++) { free(m->blk[i]); m->blk[i] = NULL; }
  m->size = size;
  return FERRY_OK;
}

static void mem_close(ferry_store *s) {
  mem_store *m = (mem_store *)s;
  for (uint32_t i = 0; i < m->nblk; i++) free(m->blk[i]);
  free(m->blk);
  free(m);
}

static const ferry_store_methods mem_methods = { mem_open, mem_read, mem_commit, mem_close };

int ferry_store_memory_open(ferry_store **out) {
  mem_store *m = calloc(1, sizeof *m);
  *out = &m->base;
  if (!m) { *out = NULL; return FERRY_NOMEM; }
  m->base.m = &mem_methods;
  m->base.flags = FERRY_STORE_NOCACHE;
  return FERRY_OK;
}
