/* ferry's SQLite VFS (internal): each attached database is an in-memory
 * image of blocks loaded from its page store; a commit (xSync, or the end of
 * a write transaction) sends the changed blocks to the store as one batch,
 * and a failed batch reverts the image to the last durable state. */
#ifndef FERRY_VFS_H
#define FERRY_VFS_H

#include "store.h"

#define FERRY_VFS_NAME "ferry"

typedef struct ferry__image ferry__image;

/* Registers the VFS with SQLite (idempotent); sqlite3_os_init calls it. */
int ferry__vfs_register(void);

/* Loads `store` into a new image reachable by SQLite under `name`.
 * Takes ownership of store in every case. FERRY_BUSY if name is attached. */
int ferry__vfs_attach(const char *name, ferry_store *store, ferry__image **out,
                      char *err, size_t errlen);
/* Detaches and frees the image and closes its store. NULL is a no-op. */
void ferry__vfs_detach(ferry__image *img);
/* Message of the last failed commit on img ("" if none); owned by img. */
const char *ferry__vfs_errmsg(const ferry__image *img);
/* Ferry code of the last failed commit on img (FERRY_OK if none). */
int ferry__vfs_errcode(const ferry__image *img);
/* Forgets the last commit failure (at the start of each statement run). */
void ferry__vfs_clear_error(ferry__image *img);
/* Counters for tests and benchmarks. */
typedef struct ferry_vfs_stats {
  uint64_t commits, blocks_written, bytes_written;
} ferry_vfs_stats;
void ferry__vfs_stats(const ferry__image *img, ferry_vfs_stats *out);

#endif
