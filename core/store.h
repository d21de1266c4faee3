/* Page stores: where a database's bytes are kept between commits.
 * The VFS (vfs.c) reads blocks from the store on demand, keeps a bounded
 * cache of them and the open transaction's changes, and hands each commit to
 * the store as one batch; a store makes the batch durable atomically: after a
 * crash the store holds either all of it or none of it. Stores are function
 * tables so tests can inject faults. */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include "ferry.h"

#define FERRY_BLOCK 4096   /* bytes per block; SQLite's page size must divide it or equal it */

typedef struct ferry_block {
  uint32_t no;            /* block number: byte offset / FERRY_BLOCK */
  const uint8_t *data;    /* FERRY_BLOCK bytes, owned by the caller */
} ferry_block;

typedef struct ferry_store_methods {
  /* Recovers the store (finds its last durable commit) and reports the
   * committed file size through *size. Called once, before any read or
   * commit; its cost must not grow with the database size (a store may
   * scan a bounded log, never the whole image). */
  int (*open)(ferry_store *s, int64_t *size);
  /* Copies the last committed content of block `no` into buf (FERRY_BLOCK
   * bytes, owned by the caller). A block never written, or at or past the
   * committed size since it was last cut off, reads as zeros. The store
   * never sees uncommitted data: the VFS keeps it. */
  int (*read)(ferry_store *s, uint32_t no, uint8_t *buf);
  /* Makes `n` blocks and the new file size durable as one atomic batch.
   * Blocks at or beyond `size` are dropped by the store (they read as zeros
   * if the file grows again). `blocks` stays the caller's. On failure the
   * store still holds exactly the previous batch. */
  int (*commit)(ferry_store *s, const ferry_block *blocks, size_t n, int64_t size);
  /* Releases the store; further calls are invalid. */
  void (*close)(ferry_store *s);
  /* Optional (NULL: nothing to fold). Makes the store's backing file a
   * standalone image of the last commit: the log store copies its log into
   * the main file, syncs it, then starts the log over. A failure loses
   * nothing: the last commit stays durable and readable. */
  int (*checkpoint)(ferry_store *s);
  /* Optional (NULL: FERRY_UNSUPPORTED). Fills the store, which holds
   * nothing yet (size 0), with the first `size` bytes of `from`'s last
   * commit, read through from->m->read one block at a time (the whole
   * image is never in memory at once unless the store keeps it there),
   * atomically: after a failure or a crash the store holds all of it or
   * stays empty. `from` stays the caller's. */
  int (*import)(ferry_store *s, ferry_store *from, int64_t size);
  /* Optional (NULL: the VFS calls commit). As commit, one atomic batch, but
   * not yet durable: it outlives this process (a crash, a kill), while a
   * power cut may take it and the lazy commits after it, never a part of
   * one; the next commit, a checkpoint or the close makes it durable. For
   * the commits SQLite ends without xSync (PRAGMA synchronous=OFF), which
   * the sync engine uses for a pull page's inner slices. */
  int (*commit_lazy)(ferry_store *s, const ferry_block *blocks, size_t n, int64_t size);
} ferry_store_methods;

/* Reads cost no more than a cache hit (the store keeps its blocks in this
 * process's memory): the VFS caches nothing in front of it. */
#define FERRY_STORE_NOCACHE 1

#define FERRY_CACHE_DEFAULT ((int64_t)4 << 20)  /* bytes of clean blocks the VFS caches by default */

struct ferry_store {
  const ferry_store_methods *m;
  unsigned flags;         /* FERRY_STORE_* */
  char errmsg[256];       /* last failure, for the database's error message */
};

/* Sets s->errmsg printf-style and returns rc. */
int ferry__store_fail(ferry_store *s, int rc, const char *fmt, ...);

/* ---- files: what the log store is built on ------------------------------- */
typedef struct ferry_file ferry_file;
typedef struct ferry_file_methods {
  /* Reads up to n bytes at off; *got receives how many were read (short at EOF). */
  int (*read)(ferry_file *f, void *buf, size_t n, int64_t off, size_t *got);
  int (*write)(ferry_file *f, const void *buf, size_t n, int64_t off);
  int (*size)(ferry_file *f, int64_t *out);
  int (*truncate)(ferry_file *f, int64_t size);
  /* Returns once everything written is on stable storage. */
  int (*sync)(ferry_file *f);
  void (*close)(ferry_file *f);
} ferry_file_methods;
struct ferry_file { const ferry_file_methods *m; };

/* A memory store over `base`: blocks never committed read from the file
 * (zeros past its end, or past where a commit cut the size off), committed
 * ones from memory; the file is never written. It lets SQLite check and
 * adjust a database given as bytes before any of it is stored. Takes
 * ownership of base in every case. */
int ferry_store_memory_over(ferry_store **out, ferry_file *base);

/* A durable store over two files: `main` holds the database image (a plain
 * SQLite file after each checkpoint), `log` a checksummed commit log whose
 * records are indexed at open and read in place, and checkpointed into
 * `main` once the log passes its bound (and by the checkpoint method).
 * Takes ownership of both files in every case. `checkpoint_bytes` (0 =
 * default 4 MiB) bounds the log. */
int ferry_store_log_open(ferry_store **out, ferry_file *main, ferry_file *log,
                         int64_t checkpoint_bytes);

/* POSIX files (native builds only): opens or creates `path`. Caller owns it. */
int ferry_file_posix_open(ferry_file **out, const char *path);
/* The log store over `path` and `path`-log (native builds only). */
int ferry_store_file_open(ferry_store **out, const char *path);

#endif
