/* The memory store: keeps every committed block in this process's memory,
 * indexed by block number; durable for the process lifetime only. Over a
 * base file (ferry_store_memory_over), blocks it holds no copy of are read
 * from that file: a copy-on-write view of bytes given to ferry. */
#include <stdlib.h>
#include <string.h>
#include "store.h"

typedef struct mem_store {
  ferry_store base;
  uint8_t **blk;          /* blk[i]: FERRY_BLOCK bytes, or NULL for zeros (or the base's) */
  uint32_t nblk;          /* capacity of blk */
  int64_t size;
  ferry_file *file;       /* the base, or NULL */
  int64_t file_limit;     /* the base's bytes from here on were cut off: zeros */
} mem_store;

static int mem_open(ferry_store *s, int64_t *size) {
  mem_store *m = (mem_store *)s;
  if (m->file) {
    int rc = m->file->m->size(m->file, &m->size);
    if (rc != FERRY_OK) return ferry__store_fail(s, rc, "cannot read the size of the given database");
    m->file_limit = m->size;
  }
  *size = m->size;
  return FERRY_OK;
}

static int mem_read(ferry_store *s, uint32_t no, uint8_t *buf) {
  mem_store *m = (mem_store *)s;
  if (no < m->nblk && m->blk[no]) { memcpy(buf, m->blk[no], FERRY_BLOCK); return FERRY_OK; }
  memset(buf, 0, FERRY_BLOCK);
  int64_t at = (int64_t)no * FERRY_BLOCK;
  if (!m->file || at >= m->file_limit) return FERRY_OK;
  size_t want = m->file_limit - at < FERRY_BLOCK ? (size_t)(m->file_limit - at) : FERRY_BLOCK, got = 0;
  int rc = m->file->m->read(m->file, buf, want, at, &got);
  if (rc != FERRY_OK) return ferry__store_fail(s, rc, "cannot read block %u of the given database", no);
  return FERRY_OK;
}

/* Room for blocks below `need`; NULL slots are new. */
static int mem_grow(mem_store *m, uint32_t need) {
  if (need <= m->nblk) return FERRY_OK;
  uint32_t cap = m->nblk ? m->nblk : 64;
  while (cap < need) cap *= 2;
  uint8_t **p = realloc(m->blk, cap * sizeof *p);
  if (!p) return ferry__store_fail(&m->base, FERRY_NOMEM, "out of memory");
  memset(p + m->nblk, 0, (cap - m->nblk) * sizeof *p);
  m->blk = p; m->nblk = cap;
  return FERRY_OK;
}

static void mem_cut(mem_store *m, int64_t size) {
  uint32_t keep = (uint32_t)((size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  for (uint32_t i = keep; i < m->nblk; i++) { free(m->blk[i]); m->blk[i] = NULL; }
  if (size < m->file_limit) m->file_limit = size;
  m->size = size;
}

/* Every allocation happens before the first block is copied, and a batch
 * that runs out of memory frees the slots it filled, so it leaves the store
 * as it was (an empty slot must stay empty: it may stand for a base block). */
static int mem_commit(ferry_store *s, const ferry_block *b, size_t n, int64_t size) {
  mem_store *m = (mem_store *)s;
  uint32_t need = 0;
  for (size_t k = 0; k < n; k++) if (b[k].no + 1 > need) need = b[k].no + 1;
  int rc = mem_grow(m, need);
  uint32_t *fresh = n ? malloc(n * sizeof *fresh) : NULL;
  if (rc == FERRY_OK && n && !fresh) rc = ferry__store_fail(s, FERRY_NOMEM, "out of memory");
  size_t nfresh = 0;
  for (size_t k = 0; rc == FERRY_OK && k < n; k++) {
    if (m->blk[b[k].no]) continue;
    if (!(m->blk[b[k].no] = malloc(FERRY_BLOCK))) rc = ferry__store_fail(s, FERRY_NOMEM, "out of memory");
    else fresh[nfresh++] = b[k].no;
  }
  if (rc != FERRY_OK) {
    for (size_t j = 0; j < nfresh; j++) { free(m->blk[fresh[j]]); m->blk[fresh[j]] = NULL; }
    free(fresh);
    return rc;
  }
  free(fresh);
  for (size_t k = 0; k < n; k++) memcpy(m->blk[b[k].no], b[k].data, FERRY_BLOCK);
  mem_cut(m, size);
  return FERRY_OK;
}

static int mem_import(ferry_store *s, ferry_store *from, int64_t size) {
  mem_store *m = (mem_store *)s;
  if (m->size != 0) return ferry__store_fail(s, FERRY_MISUSE, "the store already holds a database");
  uint32_t n = (uint32_t)((size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  int rc = mem_grow(m, n);
  for (uint32_t i = 0; rc == FERRY_OK && i < n; i++) {
    if (!(m->blk[i] = malloc(FERRY_BLOCK))) rc = ferry__store_fail(s, FERRY_NOMEM, "out of memory");
    else if ((rc = from->m->read(from, i, m->blk[i])) != FERRY_OK)
      ferry__store_fail(s, rc, "cannot read block %u of the given database: %s", i, from->errmsg);
  }
  if (rc != FERRY_OK) { mem_cut(m, 0); return rc; }
  m->size = size;
  return FERRY_OK;
}

static void mem_close(ferry_store *s) {
  mem_store *m = (mem_store *)s;
  for (uint32_t i = 0; i < m->nblk; i++) free(m->blk[i]);
  free(m->blk);
  if (m->file) m->file->m->close(m->file);
  free(m);
}

static const ferry_store_methods mem_methods = { mem_open, mem_read, mem_commit, mem_close, NULL, mem_import, NULL };

int ferry_store_memory_open(ferry_store **out) {
  mem_store *m = calloc(1, sizeof *m);
  *out = &m->base;
  if (!m) { *out = NULL; return FERRY_NOMEM; }
  m->base.m = &mem_methods;
  m->base.flags = FERRY_STORE_NOCACHE;
  return FERRY_OK;
}

int ferry_store_memory_over(ferry_store **out, ferry_file *base) {
  int rc = ferry_store_memory_open(out);
  if (rc != FERRY_OK) { base->m->close(base); return rc; }
  mem_store *m = (mem_store *)*out;
  m->file = base;
  /* Reads of the base may cost a copy out of JavaScript: let the VFS cache them. */
  m->base.flags = 0;
  return FERRY_OK;
}
