/* The log store: durable commits over two files.
 *
 * A commit appends one record to the log and syncs it: the record is the
 * commit point. A record carries the log's salt, a sequence number, the new
 * database size, the changed blocks and a checksum of all of it, so a torn
 * or stale record is recognised and ignored on replay. Once the log passes
 * its bound, its records are copied into the main file, the main file is
 * synced, and the log starts over with a new salt. Opening replays the log
 * the same way, so a crash at any point leaves the last synced record as the
 * state that is loaded.
 *
 * A checkpoint that fails leaves nothing the store relies on changed: until
 * the main file is synced the log holds every record, the store keeps the
 * log's salt, sequence and end as they were, and the next commit appends to
 * it and tries again; once the main file is synced the records are
 * redundant, and a log that could not be started over then is started over
 * before the next record is written. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "entropy.h"
#include "store.h"

#define LOG_MAGIC   0x4759524c46525259ull   /* "FERRYLG" */
#define REC_MAGIC   0x43455246u             /* "FREC" */
#define LOG_HDR     64
#define REC_HDR     48
#define ENTRY       (4 + FERRY_BLOCK)

typedef struct log_store {
  ferry_store base;
  ferry_file *main, *log;
  uint64_t salt, seq;     /* the log's generation; the next record's number */
  int64_t log_end;        /* where the next record goes */
  int64_t checkpoint_bytes;
  int stale;              /* main holds every record; the log must start over first */
  uint8_t *rec; size_t rec_cap;
} log_store;

typedef struct rec_hdr {
  uint32_t magic, nblocks;
  uint64_t salt, seq;
  int64_t size;
  uint64_t sum;
  uint64_t pad;
} rec_hdr;

static uint64_t checksum(uint64_t h, const uint8_t *p, size_t n) {
  /* Word-wise multiply-xorshift: catches torn and stale writes, fast enough
   * to run over every committed byte. */
  while (n >= 8) {
    uint64_t w; memcpy(&w, p, 8);
    h = (h ^ w) * 0x9E3779B97F4A7C15ull; h ^= h >> 31;
    p += 8; n -= 8;
  }
  while (n--) { h = (h ^ *p++) * 0x100000001B3ull; }
  return h;
}

static uint64_t rec_sum(const rec_hdr *h, const uint8_t *payload, size_t n) {
  rec_hdr c = *h;
  c.sum = 0;
  return checksum(checksum(0x243F6A8885A308D3ull, (const uint8_t *)&c, sizeof c), payload, n);
}

/* Never the current salt: a record left over from the old generation must
 * not pass for one of the new. */
static uint64_t new_salt(const log_store *s) {
  uint64_t x = 0;
  if (ferry__entropy(&x, sizeof x) != FERRY_OK) {
    x = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32) ^ (uint64_t)(uintptr_t)s;
    x ^= s->salt * 0xD6E8FEB86659FD93ull;
    x ^= x >> 33; x *= 0xFF51AFD7ED558CCDull; x ^= x >> 33;
  }
  x |= 1;
  return x == s->salt ? x + 2 : x;
}

/* Callers read only inside the file, so a short read is an I/O error: taken
 * for the end of the log it would drop synced records. */
static int read_full(ferry_file *f, void *buf, size_t n, int64_t off) {
  size_t got = 0;
  int rc = f->m->read(f, buf, n, off, &got);
  if (rc != FERRY_OK) return rc;
  return got == n ? FERRY_OK : FERRY_IO;
}

static int reserve(log_store *s, size_t n) {
  if (n <= s->rec_cap) return FERRY_OK;
  uint8_t *p = realloc(s->rec, n);
  if (!p) return FERRY_NOMEM;
  s->rec = p; s->rec_cap = n;
  return FERRY_OK;
}

/* Starts an empty log with a fresh salt. On failure the store's view of the
 * log (salt, sequence, end) stays as it was: the header on disk may then
 * hold either salt, or be torn, which a load reads as a log with no record
 * of the store's generation. */
static int log_reset(log_store *s) {
  uint8_t hdr[LOG_HDR] = {0};
  uint64_t magic = LOG_MAGIC, salt = new_salt(s);
  memcpy(hdr, &magic, 8);
  memcpy(hdr + 8, &salt, 8);
  uint64_t sum = checksum(7, hdr, 16);
  memcpy(hdr + 16, &sum, 8);
  int rc = s->log->m->write(s->log, hdr, LOG_HDR, 0);
  if (rc == FERRY_OK) rc = s->log->m->truncate(s->log, LOG_HDR);
  if (rc == FERRY_OK) rc = s->log->m->sync(s->log);
  if (rc != FERRY_OK) return ferry__store_fail(&s->base, rc, "cannot reset the commit log");
  s->salt = salt;
  s->seq = 1;
  s->log_end = LOG_HDR;
  s->stale = 0;
  return FERRY_OK;
}

/* Reads the record at `off` into s->rec if it is whole, of this generation
 * and numbered `seq`; *len receives its total length, or 0 when there is no
 * such record (the end of the log, a torn or a stale record). */
static int read_record(log_store *s, int64_t off, int64_t file_size, uint64_t seq, rec_hdr *h, size_t *len) {
  *len = 0;
  if (off + REC_HDR > file_size) return FERRY_OK;
  int rc = read_full(s->log, h, sizeof *h, off);
  if (rc != FERRY_OK) return rc;
  if (h->magic != REC_MAGIC || h->salt != s->salt || h->seq != seq) return FERRY_OK;
  if (h->nblocks > (1u << 30) / ENTRY || h->size < 0) return FERRY_OK;
  size_t plen = (size_t)h->nblocks * ENTRY;
  if (off + REC_HDR + (int64_t)plen > file_size) return FERRY_OK;
  if ((rc = reserve(s, plen ? plen : 1)) != FERRY_OK) return rc;
  if ((rc = read_full(s->log, s->rec, plen, off + REC_HDR)) != FERRY_OK) return rc;
  if (rec_sum(h, s->rec, plen) != h->sum) return FERRY_OK;
  *len = REC_HDR + plen;
  return FERRY_OK;
}

/* Copies the log's records into the main file, syncs it, and starts a new
 * log. When loading (cb set) the records also go to cb, and the log ends at
 * the first record that is not whole; at a commit the log must hold exactly
 * the synced records up to s->log_end, so finding less is an error, not the
 * end. *size receives the size of the last record (unchanged with none). */
static int checkpoint(log_store *s, ferry_block_cb cb, void *arg, int64_t *size) {
  int loading = cb != NULL;
  int64_t file_size = 0;
  int rc = s->log->m->size(s->log, &file_size);
  if (rc != FERRY_OK) return ferry__store_fail(&s->base, rc, "cannot read the commit log's size");
  int64_t off = LOG_HDR;
  uint64_t seq = 1;
  while (loading || off < s->log_end) {
    rec_hdr h; size_t len;
    if ((rc = read_record(s, off, file_size, seq, &h, &len)) != FERRY_OK)
      return ferry__store_fail(&s->base, rc, "cannot read the commit log");
    if (len == 0) {
      if (loading) break;
      return ferry__store_fail(&s->base, FERRY_CORRUPT, "commit record %llu no longer reads back from the log",
                               (unsigned long long)seq);
    }
    for (uint32_t k = 0; k < h.nblocks; k++) {
      const uint8_t *e = s->rec + (size_t)k * ENTRY;
      uint32_t no; memcpy(&no, e, 4);
      if ((int64_t)no * FERRY_BLOCK >= h.size) continue;
      if (cb && (rc = cb(arg, no, e + 4)) != FERRY_OK) return rc;
      if ((rc = s->main->m->write(s->main, e + 4, FERRY_BLOCK, (int64_t)no * FERRY_BLOCK)) != FERRY_OK)
        return ferry__store_fail(&s->base, rc, "cannot write a checkpoint into the database file");
    }
    *size = h.size;
    off += len;
    seq++;
  }
  if (!loading && (off != s->log_end || seq != s->seq))
    return ferry__store_fail(&s->base, FERRY_CORRUPT, "the commit log does not end where its last record did");
  if (seq > 1) {
    if ((rc = s->main->m->truncate(s->main, *size)) != FERRY_OK ||
        (rc = s->main->m->sync(s->main)) != FERRY_OK)
      return ferry__store_fail(&s->base, rc, "cannot sync the database file at a checkpoint");
    s->stale = 1;
  }
  if (s->stale || file_size != LOG_HDR) return log_reset(s);
  s->seq = 1;
  s->log_end = LOG_HDR;
  return FERRY_OK;
}

static int log_load(ferry_store *base, ferry_block_cb cb, void *arg, int64_t *size) {
  log_store *s = (log_store *)base;
  int64_t msize = 0;
  int rc = s->main->m->size(s->main, &msize);
  if (rc != FERRY_OK) return ferry__store_fail(base, rc, "cannot read the database file's size");
  uint8_t *blk = malloc(FERRY_BLOCK);
  if (!blk) return FERRY_NOMEM;
  for (int64_t off = 0; off < msize; off += FERRY_BLOCK) {
    size_t want = msize - off < FERRY_BLOCK ? (size_t)(msize - off) : FERRY_BLOCK;
    memset(blk, 0, FERRY_BLOCK);
    if ((rc = read_full(s->main, blk, want, off)) != FERRY_OK) {
      free(blk);
      return ferry__store_fail(base, rc, "cannot read the database file");
    }
    if ((rc = cb(arg, (uint32_t)(off / FERRY_BLOCK), blk)) != FERRY_OK) { free(blk); return rc; }
  }
  free(blk);
  *size = msize;

  /* Recognise this log's generation by the salt in its header. A header
   * that is not whole is a new log, or one torn while starting over, which
   * happens only once the main file holds every record. */
  int64_t lsize = 0;
  if ((rc = s->log->m->size(s->log, &lsize)) != FERRY_OK)
    return ferry__store_fail(base, rc, "cannot read the commit log's size");
  if (lsize < LOG_HDR) return log_reset(s);
  uint8_t hdr[LOG_HDR];
  uint64_t magic = 0, sum = 0;
  if ((rc = read_full(s->log, hdr, LOG_HDR, 0)) != FERRY_OK)
    return ferry__store_fail(base, rc, "cannot read the commit log");
  memcpy(&magic, hdr, 8);
  memcpy(&sum, hdr + 16, 8);
  if (magic != LOG_MAGIC || sum != checksum(7, hdr, 16)) return log_reset(s);
  memcpy(&s->salt, hdr + 8, 8);
  return checkpoint(s, cb, arg, size);
}

static int log_commit(ferry_store *base, const ferry_block *blocks, size_t n, int64_t size) {
  log_store *s = (log_store *)base;
  int rc;
  if (s->stale && (rc = log_reset(s)) != FERRY_OK) return rc;
  size_t plen = n * ENTRY;
  rc = reserve(s, REC_HDR + plen);
  if (rc != FERRY_OK) return ferry__store_fail(base, rc, "out of memory building a commit");
  uint8_t *p = s->rec + REC_HDR;
  for (size_t k = 0; k < n; k++, p += ENTRY) {
    memcpy(p, &blocks[k].no, 4);
    memcpy(p + 4, blocks[k].data, FERRY_BLOCK);
  }
  rec_hdr h = { REC_MAGIC, (uint32_t)n, s->salt, s->seq, size, 0, 0 };
  h.sum = rec_sum(&h, s->rec + REC_HDR, plen);
  memcpy(s->rec, &h, sizeof h);
  if ((rc = s->log->m->write(s->log, s->rec, REC_HDR + plen, s->log_end)) != FERRY_OK ||
      (rc = s->log->m->sync(s->log)) != FERRY_OK) {
    if (base->errmsg[0] == 0) ferry__store_fail(base, rc, "cannot write the commit log");
    /* A record whose sync failed may be whole on disk: cut it off so that a
     * reopen does not replay a commit reported as failed. Should that fail
     * too, the next record overwrites it. */
    if (s->log->m->truncate(s->log, s->log_end) == FERRY_OK) (void)s->log->m->sync(s->log);
    return rc;
  }
  s->log_end += (int64_t)(REC_HDR + plen);
  s->seq++;
  if (s->log_end > s->checkpoint_bytes) {
    /* The commit is already durable in the log; a failed checkpoint left
     * the store consistent (see the top) and is retried at the next commit
     * or open. */
    int64_t sz = size;
    (void)checkpoint(s, NULL, NULL, &sz);
    base->errmsg[0] = 0;
  }
  return FERRY_OK;
}

static void log_close(ferry_store *base) {
  log_store *s = (log_store *)base;
  if (s->main) s->main->m->close(s->main);
  if (s->log) s->log->m->close(s->log);
  free(s->rec);
  free(s);
}

static const ferry_store_methods log_methods = { log_load, log_commit, log_close };

int ferry_store_log_open(ferry_store **out, ferry_file *main, ferry_file *log,
                         int64_t checkpoint_bytes) {
  log_store *s = calloc(1, sizeof *s);
  *out = NULL;
  if (!s) {
    main->m->close(main); log->m->close(log);
    return FERRY_NOMEM;
  }
  s->base.m = &log_methods;
  s->main = main; s->log = log;
  s->checkpoint_bytes = checkpoint_bytes > 0 ? checkpoint_bytes : 4 << 20;
  *out = &s->base;
  return FERRY_OK;
}
