#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sqlite3.h"
#include "entropy.h"
#include "vfs.h"

/* An image is the database as SQLite sees it: the store's last commit, with
 * the open transaction's dirty blocks on top. Clean blocks are cached in a
 * bounded LRU list and read from the store on a miss; dirty blocks stay
 * until their commit (never evicted). A failed commit drops the dirty blocks,
 * so the image falls back to what the store holds. */
typedef struct centry {
  uint32_t no;
  int dirty;
  uint8_t *data;          /* FERRY_BLOCK bytes */
  uint8_t *was;           /* while dirty: the committed content, when it was at hand */
  struct centry *prev, *next;   /* LRU list (clean) */
  struct centry *hnext;         /* hash chain */
} centry;


struct ferry__image {
  char *name;             /* NULL for private (temp) images */
  ferry_store *store;     /* private images get a memory store of their own */
  centry **bucket; uint32_t nbucket, nentry;
  centry *lru_head, *lru_tail;  /* most recently used first */
  int64_t cached_bytes;   /* clean blocks and kept committed copies */
  int64_t cache_cap;
  centry **dirty; size_t ndirty, capdirty;
  int64_t size, committed_size;
  int64_t low_size;       /* smallest size since the last commit: blocks past it read as zeros unless dirty */
  uint8_t *scratch;       /* one block for reads that bypass the cache */
  int open_files;
  int last_rc;
  char errmsg[300];
  ferry_vfs_stats stats;
  struct ferry__image *next;
};

typedef struct vfile {
  sqlite3_file base;
  ferry__image *img;
  int lock;
} vfile;

static ferry__image *attached;   /* registry of attached images by name */

int ferry__store_fail(ferry_store *s, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
  va_end(ap);
  return rc;
}

static const uint8_t zero_block[FERRY_BLOCK];

/* ---- cache -------------------------------------------------------------- */

static uint32_t hash_no(uint32_t no) { return no * 2654435761u; }

static centry *cache_find(ferry__image *img, uint32_t no) {
  if (!img->nbucket) return NULL;
  for (centry *e = img->bucket[hash_no(no) & (img->nbucket - 1)]; e; e = e->hnext)
    if (e->no == no) return e;
  return NULL;
}

static int cache_rehash(ferry__image *img, uint32_t n) {
  centry **b = calloc(n, sizeof *b);
  if (!b) return SQLITE_NOMEM;
  for (uint32_t k = 0; k < img->nbucket; k++) {
    for (centry *e = img->bucket[k], *nx; e; e = nx) {
      nx = e->hnext;
      uint32_t h = hash_no(e->no) & (n - 1);
      e->hnext = b[h]; b[h] = e;
    }
  }
  free(img->bucket);
  img->bucket = b; img->nbucket = n;
  return SQLITE_OK;
}

static void lru_unlink(ferry__image *img, centry *e) {
  if (e->prev) e->prev->next = e->next; else img->lru_head = e->next;
  if (e->next) e->next->prev = e->prev; else img->lru_tail = e->prev;
  e->prev = e->next = NULL;
}

static void lru_push(ferry__image *img, centry *e) {
  e->prev = NULL; e->next = img->lru_head;
  if (img->lru_head) img->lru_head->prev = e; else img->lru_tail = e;
  img->lru_head = e;
}

/* Unhooks e from the table (and the LRU list when clean) and frees it. */
static void cache_remove(ferry__image *img, centry *e) {
  centry **p = &img->bucket[hash_no(e->no) & (img->nbucket - 1)];
  while (*p != e) p = &(*p)->hnext;
  *p = e->hnext;
  img->nentry--;
  if (!e->dirty) { lru_unlink(img, e); img->cached_bytes -= FERRY_BLOCK; }
  if (e->was) { free(e->was); img->cached_bytes -= FERRY_BLOCK; }
  free(e->data);
  free(e);
}

/* Drops least recently used clean blocks until the cache fits its bound. */
static void cache_trim(ferry__image *img) {
  while (img->cached_bytes > img->cache_cap && img->lru_tail) {
    cache_remove(img, img->lru_tail);
    img->stats.evictions++;
  }
}

/* A new entry for block no holding `data` (taken over), clean unless dirty. */
static centry *cache_insert(ferry__image *img, uint32_t no, uint8_t *data, int dirty) {
  if (img->nentry >= img->nbucket && cache_rehash(img, img->nbucket ? img->nbucket * 2 : 256) != SQLITE_OK)
    return NULL;
  centry *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->no = no; e->data = data; e->dirty = dirty;
  uint32_t h = hash_no(no) & (img->nbucket - 1);
  e->hnext = img->bucket[h]; img->bucket[h] = e;
  img->nentry++;
  if (!dirty) { lru_push(img, e); img->cached_bytes += FERRY_BLOCK; }
  return e;
}

static int dirty_push(ferry__image *img, centry *e) {
  if (img->ndirty == img->capdirty) {
    size_t n = img->capdirty ? img->capdirty * 2 : 64;
    centry **d = realloc(img->dirty, n * sizeof *d);
    if (!d) return SQLITE_NOMEM;
    img->dirty = d; img->capdirty = n;
  }
  img->dirty[img->ndirty++] = e;
  return SQLITE_OK;
}

/* 1 when block no, if not dirty, is the store's committed copy (else zeros). */
static int from_store(const ferry__image *img, uint32_t no) {
  return (int64_t)no * FERRY_BLOCK < img->low_size;
}

/* Reads the committed content of block no into buf. */
static int store_read(ferry__image *img, uint32_t no, uint8_t *buf) {
  if (!from_store(img, no)) { memset(buf, 0, FERRY_BLOCK); return SQLITE_OK; }
  img->stats.reads++;
  img->store->errmsg[0] = 0;
  int rc = img->store->m->read(img->store, no, buf);
  if (rc == FERRY_OK) return SQLITE_OK;
  img->last_rc = rc;
  snprintf(img->errmsg, sizeof img->errmsg, "read failed: %s",
           img->store->errmsg[0] ? img->store->errmsg : ferry_errstr(rc));
  return rc == FERRY_NOMEM ? SQLITE_IOERR_NOMEM : SQLITE_IOERR_READ;
}

/* Block no as SQLite sees it now, for reading: *out points at FERRY_BLOCK
 * bytes valid until the next cache call. */
static int block_get(ferry__image *img, uint32_t no, const uint8_t **out) {
  centry *e = cache_find(img, no);
  if (e) {
    if (!e->dirty && e != img->lru_head) { lru_unlink(img, e); lru_push(img, e); }
    img->stats.hits++;
    *out = e->data;
    return SQLITE_OK;
  }
  if (!from_store(img, no)) { *out = zero_block; return SQLITE_OK; }
  img->stats.misses++;
  if (img->cache_cap < FERRY_BLOCK) {
    int rc = store_read(img, no, img->scratch);
    *out = img->scratch;
    return rc;
  }
  uint8_t *data = malloc(FERRY_BLOCK);
  if (!data) return SQLITE_IOERR_NOMEM;
  int rc = store_read(img, no, data);
  if (rc != SQLITE_OK) { free(data); return rc; }
  if (!(e = cache_insert(img, no, data, 0))) { free(data); return SQLITE_IOERR_NOMEM; }
  cache_trim(img);
  *out = data;   /* just pushed to the head: trimming spares it */
  return SQLITE_OK;
}

/* Block no made dirty for a write; its current content is loaded unless
 * `whole` (the caller overwrites every byte). The committed copy is kept, to
 * skip unchanged blocks at commit, while the cache has room for it (and
 * always for block 0, whose header changes at every commit). */
static int block_dirty(ferry__image *img, uint32_t no, int whole, uint8_t **out) {
  centry *e = cache_find(img, no);
  if (e && e->dirty) { *out = e->data; return SQLITE_OK; }
  uint8_t *data = malloc(FERRY_BLOCK);
  if (!data) return SQLITE_IOERR_NOMEM;
  if (e) {
    memcpy(data, e->data, FERRY_BLOCK);
    if (dirty_push(img, e) != SQLITE_OK) { free(data); return SQLITE_IOERR_NOMEM; }
    lru_unlink(img, e);
    e->dirty = 1;
    if (img->cached_bytes <= img->cache_cap || no == 0) {
      e->was = e->data;    /* stays counted in cached_bytes */
    } else {
      free(e->data);
      img->cached_bytes -= FERRY_BLOCK;
    }
    e->data = data;
    *out = data;
    return SQLITE_OK;
  }
  uint8_t *was = NULL;
  int rc = SQLITE_OK;
  if (no == 0 && from_store(img, no)) {
    if (!(was = malloc(FERRY_BLOCK))) { free(data); return SQLITE_IOERR_NOMEM; }
    rc = store_read(img, no, was);
    if (rc == SQLITE_OK) memcpy(data, was, FERRY_BLOCK);
  } else if (!whole) {
    rc = store_read(img, no, data);
  } else {
    memset(data, 0, FERRY_BLOCK);
  }
  if (rc != SQLITE_OK) { free(data); free(was); return rc; }
  if (!(e = cache_insert(img, no, data, 1))) { free(data); free(was); return SQLITE_IOERR_NOMEM; }
  if (dirty_push(img, e) != SQLITE_OK) { cache_remove(img, e); free(was); return SQLITE_IOERR_NOMEM; }
  if (was) { e->was = was; img->cached_bytes += FERRY_BLOCK; }
  *out = data;
  return SQLITE_OK;
}

/* Ends the transaction's tracking: each dirty block becomes clean with its
 * new content (committed) or goes back to its committed copy (reverted). */
static void dirty_settle(ferry__image *img, int committed) {
  for (size_t k = 0; k < img->ndirty; k++) {
    centry *e = img->dirty[k];
    int keep = committed ? (int64_t)e->no * FERRY_BLOCK < img->size : e->was != NULL;
    if (!keep) { cache_remove(img, e); continue; }
    if (!committed) { free(e->data); e->data = e->was; e->was = NULL; img->cached_bytes -= FERRY_BLOCK; }
    if (e->was) { free(e->was); e->was = NULL; img->cached_bytes -= FERRY_BLOCK; }
    e->dirty = 0;
    lru_push(img, e);
    img->cached_bytes += FERRY_BLOCK;
  }
  img->ndirty = 0;
  cache_trim(img);
}

static void image_free_blocks(ferry__image *img) {
  for (uint32_t k = 0; k < img->nbucket; k++) {
    for (centry *e = img->bucket[k], *nx; e; e = nx) {
      nx = e->hnext;
      free(e->data); free(e->was); free(e);
    }
  }
  free(img->bucket); free(img->dirty); free(img->scratch);
  img->bucket = NULL; img->nbucket = img->nentry = 0;
  img->lru_head = img->lru_tail = NULL;
  img->dirty = NULL; img->ndirty = img->capdirty = 0;
  img->cached_bytes = 0;
  img->scratch = NULL;
}

/* 1 if block 0 (SQLite's page 1) differs from `was` only in the header's
 * file change counter (bytes 24-27) and version-valid-for (92-95): SQLite
 * bumps both on every rollback-mode commit, but nothing reads them across
 * a reload (one writer; no WAL), so the store need not be sent the block. */
static int counter_only(const uint8_t *now, const uint8_t *was) {
  return memcmp(now, was, 24) == 0 && memcmp(now + 28, was + 28, 92 - 28) == 0 &&
         memcmp(now + 96, was + 96, FERRY_BLOCK - 96) == 0;
}

/* Sends the blocks that differ from the last commit to the store; lazy: as
 * a commit that need not be durable yet, where the store has that kind. */
static int image_commit(ferry__image *img, int lazy) {
  if (img->ndirty == 0 && img->size == img->committed_size && img->low_size == img->size) return SQLITE_OK;
  uint32_t limit = (uint32_t)((img->size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  /* Blocks cut off by a truncate and not written since must be zeros in
   * the store, as SQLite has seen them. */
  uint32_t zlo = (uint32_t)((img->low_size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  uint32_t zhi = (uint32_t)((img->committed_size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  if (zhi > limit) zhi = limit;
  size_t nzero = zhi > zlo ? zhi - zlo : 0;
  ferry_block *list = malloc((img->ndirty + nzero + 1) * sizeof *list);
  if (!list) return SQLITE_NOMEM;
  size_t n = 0;
  for (size_t k = 0; k < img->ndirty; k++) {
    centry *e = img->dirty[k];
    if (e->no >= limit) continue;
    if (e->was && memcmp(e->data, e->was, FERRY_BLOCK) == 0) continue;
    if (e->no == 0 && e->was && counter_only(e->data, e->was)) continue;
    list[n].no = e->no; list[n].data = e->data; n++;
  }
  for (uint32_t i = zlo; i < zhi; i++) {
    centry *e = cache_find(img, i);
    if (e && e->dirty) continue;
    list[n].no = i; list[n].data = zero_block; n++;
  }
  int rc = FERRY_OK;
  if (n > 0 || img->size != img->committed_size) {
    img->store->errmsg[0] = 0;
    rc = (lazy && img->store->m->commit_lazy ? img->store->m->commit_lazy : img->store->m->commit)(img->store, list, n, img->size);
  }
  free(list);
  if (rc != FERRY_OK) {
    img->last_rc = rc;
    snprintf(img->errmsg, sizeof img->errmsg, "commit failed: %s",
             img->store->errmsg[0] ? img->store->errmsg : ferry_errstr(rc));
    img->size = img->low_size = img->committed_size;
    dirty_settle(img, 0);
    if (rc == FERRY_FULL) return SQLITE_FULL;
    if (rc == FERRY_NOMEM) return SQLITE_NOMEM;
    return SQLITE_IOERR_FSYNC;
  }
  img->stats.commits++;
  img->stats.blocks_written += n;
  img->stats.bytes_written += (uint64_t)n * FERRY_BLOCK;
  /* Clean entries cut off by a truncate were dropped then; those past the
   * end now hold nothing the store keeps. */
  img->committed_size = img->low_size = img->size;
  dirty_settle(img, 1);
  return SQLITE_OK;
}

/* ---- file methods ------------------------------------------------------- */

static void image_free(ferry__image *img) {
  ferry_store_close(img->store);
  image_free_blocks(img);
  free(img->name);
  free(img);
}

static int x_close(sqlite3_file *f) {
  ferry__image *img = ((vfile *)f)->img;
  int rc = SQLITE_OK;
  if (img->name) {
    rc = image_commit(img, 0);   /* a write left uncommitted by synchronous=OFF */
    img->open_files--;
  } else if (--img->open_files == 0) {
    image_free(img);
  }
  return rc;
}

static int x_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 off) {
  ferry__image *img = ((vfile *)f)->img;
  uint8_t *dst = out;
  int short_read = 0;
  if (off + amt > img->size) {
    short_read = 1;
    memset(dst, 0, amt);
    amt = off >= img->size ? 0 : (int)(img->size - off);
  }
  while (amt > 0) {
    uint32_t i = (uint32_t)(off / FERRY_BLOCK);
    int in = (int)(off % FERRY_BLOCK);
    int n = FERRY_BLOCK - in < amt ? FERRY_BLOCK - in : amt;
    const uint8_t *b;
    int rc = block_get(img, i, &b);
    if (rc != SQLITE_OK) return rc;
    memcpy(dst, b + in, n);
    dst += n; off += n; amt -= n;
  }
  return short_read ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

static int x_write(sqlite3_file *f, const void *in, int amt, sqlite3_int64 off) {
  ferry__image *img = ((vfile *)f)->img;
  const uint8_t *src = in;
  int64_t end = off + amt;
  if (end > (int64_t)FERRY_BLOCK * (1 << 30)) return SQLITE_FULL;
  while (amt > 0) {
    uint32_t i = (uint32_t)(off / FERRY_BLOCK);
    int at = (int)(off % FERRY_BLOCK);
    int n = FERRY_BLOCK - at < amt ? FERRY_BLOCK - at : amt;
    uint8_t *b;
    int rc = block_dirty(img, i, n == FERRY_BLOCK, &b);
    if (rc != SQLITE_OK) return rc;
    memcpy(b + at, src, n);
    src += n; off += n; amt -= n;
  }
  if (end > img->size) img->size = end;
  return SQLITE_OK;
}

static int x_truncate(sqlite3_file *f, sqlite3_int64 size) {
  ferry__image *img = ((vfile *)f)->img;
  if (size >= img->size) return SQLITE_OK;
  uint32_t keep = (uint32_t)((size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  if (size % FERRY_BLOCK) {
    uint8_t *b;
    int rc = block_dirty(img, keep - 1, 0, &b);
    if (rc != SQLITE_OK) return rc;
    int at = (int)(size % FERRY_BLOCK);
    memset(b + at, 0, FERRY_BLOCK - at);
  }
  /* Cached blocks past the end go (dirty ones stay listed until the commit
   * skips them, but read as zeros once they are cleared here). */
  for (uint32_t k = 0; k < img->nbucket; k++) {
    for (centry *e = img->bucket[k], *nx; e; e = nx) {
      nx = e->hnext;
      if (e->no < keep) continue;
      if (!e->dirty) cache_remove(img, e);
      else memset(e->data, 0, FERRY_BLOCK);
    }
  }
  img->size = size;
  if (size < img->low_size) img->low_size = size;
  return SQLITE_OK;
}

static int x_sync(sqlite3_file *f, int flags) {
  (void)flags;
  return image_commit(((vfile *)f)->img, 0);
}

static int x_file_size(sqlite3_file *f, sqlite3_int64 *out) {
  *out = ((vfile *)f)->img->size;
  return SQLITE_OK;
}

static int x_lock(sqlite3_file *f, int level) {
  ((vfile *)f)->lock = level;
  return SQLITE_OK;
}

static int x_unlock(sqlite3_file *f, int level) {
  vfile *v = (vfile *)f;
  v->lock = level;
  /* Ending a write transaction without xSync (synchronous=OFF) still commits,
   * as one atomic batch: ferry never keeps a change that its store has not
   * been given. Only its sync waits, for the next durable commit, as
   * synchronous=OFF asks. */
  if (level <= SQLITE_LOCK_SHARED) return image_commit(v->img, 1);
  return SQLITE_OK;
}

static int x_check_reserved(sqlite3_file *f, int *out) {
  (void)f;
  *out = 0;
  return SQLITE_OK;
}

static int x_file_control(sqlite3_file *f, int op, void *arg) {
  vfile *v = (vfile *)f;
  if (op == SQLITE_FCNTL_PRAGMA && v->img->store) {
    char **a = arg;
    /* The store makes every commit atomic; the journal only has to undo a
     * transaction in this process, so it stays in memory. WAL needs shared
     * memory this VFS does not offer. */
    if (sqlite3_stricmp(a[1], "journal_mode") == 0 && a[2]) {
      if (sqlite3_stricmp(a[2], "memory") != 0) {
        a[0] = sqlite3_mprintf("memory");
        return SQLITE_OK;
      }
    }
  }
  return SQLITE_NOTFOUND;
}

static int x_sector_size(sqlite3_file *f) { (void)f; return FERRY_BLOCK; }

static int x_device_characteristics(sqlite3_file *f) {
  (void)f;
  return SQLITE_IOCAP_POWERSAFE_OVERWRITE | SQLITE_IOCAP_SAFE_APPEND |
         SQLITE_IOCAP_SEQUENTIAL;
}

static const sqlite3_io_methods io_methods = {
  1, x_close, x_read, x_write, x_truncate, x_sync, x_file_size, x_lock,
  x_unlock, x_check_reserved, x_file_control, x_sector_size,
  x_device_characteristics, 0, 0, 0, 0, 0, 0
};

/* ---- vfs methods -------------------------------------------------------- */

static ferry__image *image_new(ferry_store *store, int64_t cache_bytes) {
  ferry__image *img = calloc(1, sizeof *img);
  if (!img) return NULL;
  img->store = store;
  img->cache_cap = cache_bytes > 0 ? cache_bytes : cache_bytes == 0 ? FERRY_CACHE_DEFAULT : 0;
  if (store && (store->flags & FERRY_STORE_NOCACHE)) img->cache_cap = 0;
  if (!(img->scratch = malloc(FERRY_BLOCK))) { free(img); return NULL; }
  return img;
}

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags) {
  (void)vfs;
  vfile *v = (vfile *)f;
  memset(v, 0, sizeof *v);
  ferry__image *img = NULL;
  if (name && (flags & SQLITE_OPEN_MAIN_DB)) {
    for (img = attached; img && strcmp(img->name, name) != 0; img = img->next) {}
  }
  if (!img) {
    /* Journals, temp files and databases nobody attached live in memory. */
    ferry_store *m = NULL;
    if (ferry_store_memory_open(&m) != FERRY_OK) return SQLITE_NOMEM;
    if (!(img = image_new(m, -1))) { ferry_store_close(m); return SQLITE_NOMEM; }
  }
  img->open_files++;
  v->img = img;
  v->base.pMethods = &io_methods;
  if (out_flags) *out_flags = flags;
  return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync) {
  (void)vfs; (void)name; (void)sync;
  return SQLITE_OK;
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
  (void)vfs; (void)name; (void)flags;
  *out = 0;   /* no journal ever outlives its connection */
  return SQLITE_OK;
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
  (void)vfs;
  sqlite3_snprintf(n, out, "%s", name);
  return SQLITE_OK;
}

/* SQLite seeds its generator from here once per process; every byte comes
 * fresh from the platform's CSPRNG (attach has checked that there is one). */
static int v_randomness(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  if (n <= 0 || ferry__entropy(out, (size_t)n) == FERRY_OK) return n > 0 ? n : 0;
  memset(out, 0, (size_t)n);
  return 0;
}

static int v_sleep(sqlite3_vfs *vfs, int us) { (void)vfs; return us; }

static int v_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
  (void)vfs;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  /* Julian day in milliseconds */
  *out = (sqlite3_int64)210866760000000ll + (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  return SQLITE_OK;
}

static int v_current_time(sqlite3_vfs *vfs, double *out) {
  sqlite3_int64 ms;
  v_current_time64(vfs, &ms);
  *out = ms / 86400000.0;
  return SQLITE_OK;
}

static int v_last_error(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs; (void)n; (void)out;
  return 0;
}

static sqlite3_vfs ferry_vfs = {
  2, sizeof(vfile), 1024, 0, FERRY_VFS_NAME, 0,
  v_open, v_delete, v_access, v_full_pathname, 0, 0, 0, 0,
  v_randomness, v_sleep, v_current_time, v_last_error, v_current_time64,
  0, 0, 0
};

int ferry__vfs_register(void) {
  return sqlite3_vfs_find(FERRY_VFS_NAME) ? SQLITE_OK : sqlite3_vfs_register(&ferry_vfs, 1);
}

/* SQLite is built with SQLITE_OS_OTHER: ferry's VFS is the only one. */
int sqlite3_os_init(void) { return sqlite3_vfs_register(&ferry_vfs, 1); }
int sqlite3_os_end(void) { return SQLITE_OK; }

int ferry__vfs_attach(const char *name, ferry_store *store, int64_t cache_bytes,
                      ferry__image **out, char *err, size_t errlen) {
  *out = NULL;
  for (ferry__image *i = attached; i; i = i->next) {
    if (strcmp(i->name, name) == 0) {
      snprintf(err, errlen, "database '%s' is already open in this process", name);
      ferry_store_close(store);
      return FERRY_BUSY;
    }
  }
  ferry__image *img = image_new(store, cache_bytes);
  if (!img || !(img->name = strdup(name))) {
    if (img) image_free(img); else ferry_store_close(store);
    snprintf(err, errlen, "out of memory");
    return FERRY_NOMEM;
  }
  /* Without a secure source every device would draw the same ids. */
  unsigned char probe[16];
  if (ferry__entropy(probe, sizeof probe) != FERRY_OK) {
    snprintf(err, errlen, "this platform gives no secure random bytes (needed for unique ids)");
    image_free(img);
    return FERRY_IO;
  }
  int64_t size = 0;
  store->errmsg[0] = 0;
  int rc = store->m->open(store, &size);
  if (rc != FERRY_OK) {
    snprintf(err, errlen, "opening '%s' failed: %s", name,
             store->errmsg[0] ? store->errmsg : ferry_errstr(rc));
    image_free(img);
    return rc;
  }
  img->size = img->committed_size = img->low_size = size;
  img->next = attached;
  attached = img;
  *out = img;
  return FERRY_OK;
}

void ferry__vfs_detach(ferry__image *img) {
  if (!img) return;
  for (ferry__image **p = &attached; *p; p = &(*p)->next) {
    if (*p == img) { *p = img->next; break; }
  }
  image_free(img);
}

int64_t ferry__vfs_size(const ferry__image *img) { return img->committed_size; }

static int uncommitted(const ferry__image *img) {
  return img->ndirty > 0 || img->size != img->committed_size || img->low_size != img->size;
}

static int vfs_fail(ferry__image *img, int rc, const char *what) {
  img->last_rc = rc;
  snprintf(img->errmsg, sizeof img->errmsg, "%s: %s", what,
           img->store->errmsg[0] ? img->store->errmsg : ferry_errstr(rc));
  return rc;
}

int ferry__vfs_read(ferry__image *img, int64_t off, void *buf, size_t n) {
  if (uncommitted(img)) return FERRY_MISUSE;
  if (off < 0 || off > img->committed_size || (int64_t)n > img->committed_size - off) return FERRY_RANGE;
  uint8_t *dst = buf;
  while (n > 0) {
    uint32_t no = (uint32_t)(off / FERRY_BLOCK);
    size_t in = (size_t)(off % FERRY_BLOCK), len = FERRY_BLOCK - in < n ? FERRY_BLOCK - in : n;
    centry *e = cache_find(img, no);
    const uint8_t *src;
    if (e) {
      src = e->data;
    } else {
      img->store->errmsg[0] = 0;
      int rc = img->store->m->read(img->store, no, img->scratch);
      if (rc != FERRY_OK) return vfs_fail(img, rc, "read failed");
      src = img->scratch;
    }
    memcpy(dst, src + in, len);
    dst += len; off += (int64_t)len; n -= len;
  }
  return FERRY_OK;
}

int ferry__vfs_checkpoint(ferry__image *img) {
  if (uncommitted(img)) return FERRY_MISUSE;
  if (!img->store->m->checkpoint) return FERRY_OK;
  img->store->errmsg[0] = 0;
  int rc = img->store->m->checkpoint(img->store);
  return rc == FERRY_OK ? FERRY_OK : vfs_fail(img, rc, "checkpoint failed");
}

int ferry__vfs_import(ferry__image *img, ferry__image *from) {
  if (img->open_files || img->committed_size != 0 || uncommitted(img) || uncommitted(from)) return FERRY_MISUSE;
  if (!img->store->m->import) return FERRY_UNSUPPORTED;
  img->store->errmsg[0] = 0;
  int rc = img->store->m->import(img->store, from->store, from->committed_size);
  if (rc != FERRY_OK) return vfs_fail(img, rc, "import failed");
  /* An empty image caches nothing (no block lies inside it), so there is
   * no stale copy to drop. */
  img->size = img->committed_size = img->low_size = from->committed_size;
  return FERRY_OK;
}

const char *ferry__vfs_errmsg(const ferry__image *img) { return img ? img->errmsg : ""; }
int ferry__vfs_errcode(const ferry__image *img) { return img ? img->last_rc : FERRY_OK; }
void ferry__vfs_clear_error(ferry__image *img) {
  if (img) { img->last_rc = FERRY_OK; img->errmsg[0] = 0; }
}
void ferry__vfs_stats(const ferry__image *img, ferry_vfs_stats *out) {
  *out = img->stats;
  out->cached_bytes = (uint64_t)img->cached_bytes;
  out->dirty_blocks = img->ndirty;
}

void ferry_store_close(ferry_store *store) {
  if (store) store->m->close(store);
}
