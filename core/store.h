/* Page stores: where a database's bytes are kept between commits.
 * The VFS (vfs.c) keeps the whole database image in memory as fixed-size
 * blocks and hands each commit to the store as one batch; a store makes the
 * batch durable atomically: after a crash the store holds either all of it
 * or none of it. Stores are function tables so tests can inject faults. */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include "ferry.h"

#define FERRY_BLOCK 4096   /* bytes per block; SQLite's page size must divide it or equal it */

typedef struct ferry_block {
  uint32_t no;            /* block number: byte offset / FERRY_BLOCK */
  const uint8_t *data;    /* FERRY_BLOCK bytes, owned by the caller */
} ferry_block;

/* Receives one stored block while a store loads; `data` is FERRY_BLOCK bytes
 * owned by the store, valid during the call only. Returns a ferry code. */
typedef int (*ferry_block_cb)(void *arg, uint32_t no, const uint8_t *data);

typedef struct ferry_store_methods {
  /* Reports every stored block through put_cb and the file size through
   * *size. Called once, before any commit. */
  int (*load)(ferry_store *s, ferry_block_cb put_cb, void *arg, int64_t *size);
  /* Makes `n` blocks and the new file size durable as one atomic batch.
   * Blocks at or beyond `size` may be dropped by the store. On failure the
   * store still holds exactly the previous batch. */
  int (*commit)(ferry_store *s, const ferry_block *blocks, size_t n, int64_t size);
  /* Releases the store; further calls are invalid. */
  void (*close)(ferry_store *s);
} ferry_store_methods;

#define FERRY_STORE_VOLATILE 1  /* keeps nothing beyond the process: the VFS skips change tracking */

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

/* A durable store over two files: `main` holds the database image (a plain
 * SQLite file after each checkpoint), `log` a checksummed commit log that is
 * replayed on open and checkpointed into `main`. Takes ownership of both
 * files in every case. `checkpoint_bytes` (0 = default 4 MiB) bounds the log. */
int ferry_store_log_open(ferry_store **out, ferry_file *main, ferry_file *log,
                         int64_t checkpoint_bytes);

/* POSIX files (native builds only): opens or creates `path`. Caller owns it. */
int ferry_file_posix_open(ferry_file **out, const char *path);
/* The log store over `path` and `path`-log (native builds only). */
int ferry_store_file_open(ferry_store **out, const char *path);

#endif
