#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sqlite3.h"
#include "entropy.h"
#include "vfs.h"

/* Marks a dirty block that did not exist at the last commit. */
static uint8_t absent_marker;
#define ABSENT (&absent_marker)

struct ferry__image {
  char *name;             /* NULL for private (temp, journal) images */
  ferry_store *store;     /* NULL for private images */
  uint8_t **blk;          /* blk[i]: FERRY_BLOCK bytes or NULL (zeros) */
  uint8_t **shadow;       /* shadow[i]: content at last commit while i is dirty */
  uint32_t nblk;          /* capacity of blk and shadow */
  uint32_t *dirty; size_t ndirty, capdirty;
  int64_t size, committed_size;
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

/* ---- image -------------------------------------------------------------- */

static void image_free_blocks(ferry__image *img) {
  for (uint32_t i = 0; i < img->nblk; i++) {
    free(img->blk[i]);
    if (img->shadow[i] && img->shadow[i] != ABSENT) free(img->shadow[i]);
  }
  free(img->blk); free(img->shadow); free(img->dirty);
  img->blk = img->shadow = NULL; img->dirty = NULL; img->nblk = 0;
}

static int image_grow(ferry__image *img, uint32_t need) {
  if (need <= img->nblk) return SQLITE_OK;
  uint32_t n = img->nblk ? img->nblk : 64;
  while (n < need) n *= 2;
  uint8_t **b = realloc(img->blk, n * sizeof *b);
  if (!b) return SQLITE_NOMEM;
  img->blk = b;
  uint8_t **s = realloc(img->shadow, n * sizeof *s);
  if (!s) return SQLITE_NOMEM;
  img->shadow = s;
  memset(b + img->nblk, 0, (n - img->nblk) * sizeof *b);
  memset(s + img->nblk, 0, (n - img->nblk) * sizeof *s);
  img->nblk = n;
  return SQLITE_OK;
}

/* Remembers block i's committed content before its first change. */
static int image_touch(ferry__image *img, uint32_t i) {
  if (!img->store || (img->store->flags & FERRY_STORE_VOLATILE) || img->shadow[i]) return SQLITE_OK;
  if (img->ndirty == img->capdirty) {
    size_t n = img->capdirty ? img->capdirty * 2 : 64;
    uint32_t *d = realloc(img->dirty, n * sizeof *d);
    if (!d) return SQLITE_NOMEM;
    img->dirty = d; img->capdirty = n;
  }
  if (img->blk[i]) {
    uint8_t *copy = malloc(FERRY_BLOCK);
    if (!copy) return SQLITE_NOMEM;
    memcpy(copy, img->blk[i], FERRY_BLOCK);
    img->shadow[i] = copy;
  } else {
    img->shadow[i] = ABSENT;
  }
  img->dirty[img->ndirty++] = i;
  return SQLITE_OK;
}

static int put_loaded_block(void *arg, uint32_t no, const uint8_t *data) {
  ferry__image *img = arg;
  if (no >= (1u << 30)) return FERRY_CORRUPT;
  if (image_grow(img, no + 1) != SQLITE_OK) return FERRY_NOMEM;
  if (!img->blk[no] && !(img->blk[no] = malloc(FERRY_BLOCK))) return FERRY_NOMEM;
  memcpy(img->blk[no], data, FERRY_BLOCK);
  return FERRY_OK;
}

static void image_forget_dirty(ferry__image *img) {
  for (size_t k = 0; k < img->ndirty; k++) {
    uint32_t i = img->dirty[k];
    if (img->shadow[i] != ABSENT) free(img->shadow[i]);
    img->shadow[i] = NULL;
  }
  img->ndirty = 0;
}

/* Puts every dirty block back as it was at the last commit. */
static void image_revert(ferry__image *img) {
  for (size_t k = 0; k < img->ndirty; k++) {
    uint32_t i = img->dirty[k];
    free(img->blk[i]);
    img->blk[i] = img->shadow[i] == ABSENT ? NULL : img->shadow[i];
    img->shadow[i] = NULL;
  }
  img->ndirty = 0;
  img->size = img->committed_size;
}

static const uint8_t zero_block[FERRY_BLOCK];

/* 1 if block 0 (SQLite's page 1) differs from `was` only in the header's
 * file change counter (bytes 24-27) and version-valid-for (92-95): SQLite
 * bumps both on every rollback-mode commit, but nothing reads them across
 * a reload (one writer; no WAL), so the store need not be sent the block. */
static int counter_only(const uint8_t *now, const uint8_t *was) {
  return memcmp(now, was, 24) == 0 && memcmp(now + 28, was + 28, 92 - 28) == 0 &&
         memcmp(now + 96, was + 96, FERRY_BLOCK - 96) == 0;
}

/* Sends the blocks that differ from the last commit to the store. */
static int image_commit(ferry__image *img) {
  if (!img->store || (img->store->flags & FERRY_STORE_VOLATILE)) return SQLITE_OK;
  if (img->ndirty == 0 && img->size == img->committed_size) return SQLITE_OK;
  uint32_t limit = (uint32_t)((img->size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  ferry_block *list = malloc((img->ndirty ? img->ndirty : 1) * sizeof *list);
  if (!list) return SQLITE_NOMEM;
  size_t n = 0;
  for (size_t k = 0; k < img->ndirty; k++) {
    uint32_t i = img->dirty[k];
    if (i >= limit) continue;
    const uint8_t *now = img->blk[i] ? img->blk[i] : zero_block;
    const uint8_t *was = img->shadow[i];
    if (was != ABSENT && memcmp(now, was, FERRY_BLOCK) == 0) continue;
    if (i == 0 && was != ABSENT && counter_only(now, was)) continue;
    list[n].no = i; list[n].data = now; n++;
  }
  int rc = FERRY_OK;
  if (n > 0 || img->size != img->committed_size) {
    img->store->errmsg[0] = 0;
    rc = img->store->m->commit(img->store, list, n, img->size);
  }
  free(list);
  if (rc != FERRY_OK) {
    img->last_rc = rc;
    snprintf(img->errmsg, sizeof img->errmsg, "commit failed: %s",
             img->store->errmsg[0] ? img->store->errmsg : ferry_errstr(rc));
    image_revert(img);
    if (rc == FERRY_FULL) return SQLITE_FULL;
    if (rc == FERRY_NOMEM) return SQLITE_NOMEM;
    return SQLITE_IOERR_FSYNC;
  }
  img->stats.commits++;
  img->stats.blocks_written += n;
  img->stats.bytes_written += (uint64_t)n * FERRY_BLOCK;
  image_forget_dirty(img);
  img->committed_size = img->size;
  return SQLITE_OK;
}

/* ---- file methods ------------------------------------------------------- */

static int x_close(sqlite3_file *f) {
  ferry__image *img = ((vfile *)f)->img;
  int rc = SQLITE_OK;
  if (img->store) {
    rc = image_commit(img);   /* a write left uncommitted by synchronous=OFF */
    img->open_files--;
  } else if (--img->open_files == 0) {
    image_free_blocks(img);
    free(img);
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
    if (i < img->nblk && img->blk[i]) memcpy(dst, img->blk[i] + in, n);
    else memset(dst, 0, n);
    dst += n; off += n; amt -= n;
  }
  return short_read ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

static int x_write(sqlite3_file *f, const void *in, int amt, sqlite3_int64 off) {
  ferry__image *img = ((vfile *)f)->img;
  const uint8_t *src = in;
  int64_t end = off + amt;
  if (end > (int64_t)FERRY_BLOCK * (1 << 30)) return SQLITE_FULL;
  if (image_grow(img, (uint32_t)((end + FERRY_BLOCK - 1) / FERRY_BLOCK)) != SQLITE_OK) return SQLITE_IOERR_NOMEM;
  while (amt > 0) {
    uint32_t i = (uint32_t)(off / FERRY_BLOCK);
    int at = (int)(off % FERRY_BLOCK);
    int n = FERRY_BLOCK - at < amt ? FERRY_BLOCK - at : amt;
    if (image_touch(img, i) != SQLITE_OK) return SQLITE_IOERR_NOMEM;
    if (!img->blk[i]) {
      if (!(img->blk[i] = calloc(1, FERRY_BLOCK))) return SQLITE_IOERR_NOMEM;
    }
    memcpy(img->blk[i] + at, src, n);
    src += n; off += n; amt -= n;
  }
  if (end > img->size) img->size = end;
  return SQLITE_OK;
}

static int x_truncate(sqlite3_file *f, sqlite3_int64 size) {
  ferry__image *img = ((vfile *)f)->img;
  if (size >= img->size) return SQLITE_OK;
  uint32_t keep = (uint32_t)((size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  for (uint32_t i = keep; i < img->nblk; i++) {
    if (!img->blk[i]) continue;
    if (image_touch(img, i) != SQLITE_OK) return SQLITE_IOERR_NOMEM;
    free(img->blk[i]); img->blk[i] = NULL;
  }
  if (size % FERRY_BLOCK && img->blk[keep - 1]) {
    if (image_touch(img, keep - 1) != SQLITE_OK) return SQLITE_IOERR_NOMEM;
    int at = (int)(size % FERRY_BLOCK);
    memset(img->blk[keep - 1] + at, 0, FERRY_BLOCK - at);
  }
  img->size = size;
  return SQLITE_OK;
}

static int x_sync(sqlite3_file *f, int flags) {
  (void)flags;
  return image_commit(((vfile *)f)->img);
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
  /* Ending a write transaction without xSync (synchronous=OFF) still commits:
   * ferry never keeps a change that its store has not been given. */
  if (level <= SQLITE_LOCK_SHARED) return image_commit(v->img);
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
    if (!(img = calloc(1, sizeof *img))) return SQLITE_NOMEM;
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

int ferry__vfs_attach(const char *name, ferry_store *store, ferry__image **out,
                      char *err, size_t errlen) {
  *out = NULL;
  for (ferry__image *i = attached; i; i = i->next) {
    if (strcmp(i->name, name) == 0) {
      snprintf(err, errlen, "database '%s' is already open in this process", name);
      ferry_store_close(store);
      return FERRY_BUSY;
    }
  }
  ferry__image *img = calloc(1, sizeof *img);
  if (!img || !(img->name = strdup(name))) {
    free(img);
    ferry_store_close(store);
    snprintf(err, errlen, "out of memory");
    return FERRY_NOMEM;
  }
  img->store = store;
  /* Without a secure source every device would draw the same ids. */
  unsigned char probe[16];
  if (ferry__entropy(probe, sizeof probe) != FERRY_OK) {
    snprintf(err, errlen, "this platform gives no secure random bytes (needed for unique ids)");
    ferry__vfs_detach(img);
    return FERRY_IO;
  }
  int64_t size = 0;
  store->errmsg[0] = 0;
  int rc = store->m->load(store, put_loaded_block, img, &size);
  if (rc != FERRY_OK) {
    snprintf(err, errlen, "loading '%s' failed: %s", name,
             store->errmsg[0] ? store->errmsg : ferry_errstr(rc));
    ferry__vfs_detach(img);
    return rc;
  }
  /* Blocks past the end (left by a shrinking commit) must read as zeros if
   * the file grows again. */
  uint32_t keep = (uint32_t)((size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  for (uint32_t i = keep; i < img->nblk; i++) { free(img->blk[i]); img->blk[i] = NULL; }
  if (size % FERRY_BLOCK && keep <= img->nblk && img->blk[keep - 1])
    memset(img->blk[keep - 1] + size % FERRY_BLOCK, 0, FERRY_BLOCK - size % FERRY_BLOCK);
  img->size = img->committed_size = size;
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
  ferry_store_close(img->store);
  image_free_blocks(img);
  free(img->name);
  free(img);
}

const char *ferry__vfs_errmsg(const ferry__image *img) { return img ? img->errmsg : ""; }
int ferry__vfs_errcode(const ferry__image *img) { return img ? img->last_rc : FERRY_OK; }
void ferry__vfs_clear_error(ferry__image *img) {
  if (img) { img->last_rc = FERRY_OK; img->errmsg[0] = 0; }
}
void ferry__vfs_stats(const ferry__image *img, ferry_vfs_stats *out) { *out = img->stats; }

void ferry_store_close(ferry_store *store) {
  if (store) store->m->close(store);
}
