/* ferry's SQLite VFS (internal): each attached database is read from its
 * page store block by block on demand, through a bounded cache of clean
 * blocks; the open transaction's dirty blocks stay in memory until a commit
 * (xSync, or the end of a write transaction) sends them to the store as one
 * batch. A failed batch drops them: the database is the last durable state. */
#ifndef FERRY_VFS_H
#define FERRY_VFS_H

#include "store.h"

#define FERRY_VFS_NAME "ferry"

typedef struct ferry__image ferry__image;

/* Registers the VFS with SQLite (idempotent); sqlite3_os_init calls it. */
int ferry__vfs_register(void);

/* Opens `store` as a new image reachable by SQLite under `name`, caching up
 * to `cache_bytes` of clean blocks (0: FERRY_CACHE_DEFAULT; negative: none).
 * Takes ownership of store in every case. FERRY_BUSY if name is attached.
 * *out is owned by the caller until ferry__vfs_detach. */
int ferry__vfs_attach(const char *name, ferry_store *store, int64_t cache_bytes,
                      ferry__image **out, char *err, size_t errlen);
/* Detaches and frees the image and closes its store. NULL is a no-op. */
void ferry__vfs_detach(ferry__image *img);
/* Message of the last failed commit on img ("" if none); owned by img. */
const char *ferry__vfs_errmsg(const ferry__image *img);
/* Ferry code of the last failed commit on img (FERRY_OK if none). */
int ferry__vfs_errcode(const ferry__image *img);
/* Forgets the last commit failure (at the start of each statement run). */
void ferry__vfs_clear_error(ferry__image *img);
/* Copies bytes [off, off + n) of the last commit to buf (caller's memory;
 * the range must lie inside the image, see ferry__vfs_size). Blocks not in
 * the cache are read from the store straight into buf, so reading the
 * whole image does not evict the cache. FERRY_MISUSE while a transaction
 * has written blocks not committed yet; FERRY_RANGE outside the image. */
int ferry__vfs_read(ferry__image *img, int64_t off, void *buf, size_t n);
/* Size in bytes of the last commit. */
int64_t ferry__vfs_size(const ferry__image *img);
/* Folds the store into a standalone image (the store's checkpoint method;
 * FERRY_OK when it has none). FERRY_MISUSE while a transaction has
 * uncommitted blocks. */
int ferry__vfs_checkpoint(ferry__image *img);
/* Fills img, which no SQLite connection has open and which is empty, with
 * the last commit of `from` through img's store's import method
 * (FERRY_UNSUPPORTED without one). from must have nothing uncommitted;
 * both stay the caller's. */
int ferry__vfs_import(ferry__image *img, ferry__image *from);
/* Counters for tests and benchmarks. */
typedef struct ferry_vfs_stats {
  uint64_t commits, blocks_written, bytes_written;
  uint64_t reads;           /* blocks read from the store */
  uint64_t hits, misses, evictions;   /* clean-block cache */
  uint64_t cached_bytes;    /* now: clean blocks and kept committed copies */
  uint64_t dirty_blocks;    /* now: blocks of the open transaction */
} ferry_vfs_stats;
/* Fills *out (caller's memory). */
void ferry__vfs_stats(const ferry__image *img, ferry_vfs_stats *out);

#endif
