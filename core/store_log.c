/* The log store: durable commits over two files.
 *
 * A commit appends one record to the log and syncs it: the record is the
 * commit point (a lazy commit, SQLite's synchronous=OFF, skips the sync;
 * the next sync carries it). A record carries the log's salt, a sequence
 * number, the new database size, the changed blocks and a checksum of all
 * of it, so a torn or stale record is recognised and ignored when the log
 * is scanned. Past half its bound, each commit also copies a few blocks of
 * the log into the main file ahead (unsynced; reads still come from the
 * log). Once the log passes its bound (at a commit), the latest copy of each
 * block not copied yet goes into the main file, the main file is synced,
 * and the log starts over with a new salt (truncated and synced).
 *
 * Opening reads no data into memory: it scans the log's records up to the
 * first that is not whole (headers and checksums, streamed; what follows
 * it is cut off before the next record is written) and builds an
 * index (block -> offset of its latest committed copy in the log), so a
 * crash at any point leaves the last synced record as the state that is
 * read. A read comes from the log through the index, else from the main
 * file (zeros past what a record cut off). The index follows each appended
 * record and empties when a checkpoint starts the log over, so its size is
 * bounded by the log's; open time grows with the log, not the database.
 *
 * A checkpoint that fails leaves nothing the store relies on changed: until
 * the main file is synced the log holds every record, the store keeps the
 * log's salt, sequence and end as they were, and the next commit appends to
 * it and tries again; once the main file is synced the records are
 * redundant, and a log that could not be started over then is started over
 * before the next record is written.
 *
 * An import (a new database from given bytes) marks the log with its own
 * header, writes and syncs main, then starts the log over: a reopen that
 * finds the mark empties main, so the database is empty or the whole copy. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "entropy.h"
#include "store.h"

#define LOG_MAGIC   0x4759524c46525259ull   /* "FERRYLG" */
#define IMPORT_MAGIC 0x4d49595252454646ull  /* the header while an import writes main */
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
  int importing;          /* an import failed part way: the store takes no more commits */
  int unsynced;           /* the last record was a lazy commit, not synced yet */
  int64_t synced_end;     /* records before this offset are synced: only they may be copied ahead */
  int64_t size;           /* committed database size */
  int64_t main_limit;     /* main's bytes from here on are cut off by a record: zeros */
  uint32_t *ikey;         /* index: block number + 1 (0: empty slot) */
  int64_t *ioff;          /* index: offset of the block's latest copy in the log (always even),
                             + 1 once main holds that copy too (COPIED); -2: cut off */
  uint32_t icursor;       /* where the next pre-copy looks in the index */
  uint32_t icap, icount;
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

static void index_clear(log_store *s);

/* Starts an empty log with a fresh salt (`magic`: LOG_MAGIC, or
 * IMPORT_MAGIC while an import writes main), truncated and synced before
 * any record of the new log is written. On failure the store's view of
 * the log (salt, sequence, end) stays as it was: the header on disk may then
 * hold either salt, or be torn, which a load reads as a log with no record
 * of the store's generation.
 * Why the sync cannot wait for the next commit's: the new records overwrite
 * the old ones in place, and in a power cut the disk may keep some of their
 * sectors but the old header, so that an open reads the old log's first
 * records only — older copies of blocks than main holds. */
static int log_start(log_store *s, uint64_t magic) {
  uint8_t hdr[LOG_HDR] = {0};
  uint64_t salt = new_salt(s);
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
  s->unsynced = 0;
  s->synced_end = LOG_HDR;
  index_clear(s);
  return FERRY_OK;
}

static int log_reset(log_store *s) { return log_start(s, LOG_MAGIC); }

/* ---- the index ---------------------------------------------------------- */

/* Records and headers have even lengths, so a block's offset in the log is
 * even: its low bit says main already holds that copy (see precopy). */
#define COPIED 1

static uint32_t islot(const log_store *s, uint32_t no) {
  uint32_t h = (no * 2654435761u) & (s->icap - 1);
  while (s->ikey[h] && s->ikey[h] != no + 1) h = (h + 1) & (s->icap - 1);
  return h;
}

static int64_t index_get(const log_store *s, uint32_t no) {
  if (!s->icap) return -1;
  uint32_t h = islot(s, no);
  return s->ikey[h] ? (s->ioff[h] >= 0 ? s->ioff[h] & ~(int64_t)COPIED : s->ioff[h]) : -1;
}

/* Room for `more` new entries at a load factor of at most one half, so that
 * index_put after a durable commit cannot fail. */
static int index_reserve(log_store *s, size_t more) {
  if ((size_t)s->icount + more <= s->icap / 2) return FERRY_OK;
  uint64_t cap = s->icap ? s->icap : 256;
  while (cap / 2 < (uint64_t)s->icount + more) cap *= 2;
  if (cap > (1u << 31)) return FERRY_NOMEM;
  uint32_t *k = calloc((size_t)cap, sizeof *k);
  int64_t *o = malloc((size_t)cap * sizeof *o);
  if (!k || !o) { free(k); free(o); return FERRY_NOMEM; }
  uint32_t *ok = s->ikey; int64_t *oo = s->ioff; uint32_t ocap = s->icap;
  s->ikey = k; s->ioff = o; s->icap = (uint32_t)cap;
  for (uint32_t i = 0; i < ocap; i++) {
    if (!ok[i]) continue;
    uint32_t h = islot(s, ok[i] - 1);
    s->ikey[h] = ok[i]; s->ioff[h] = oo[i];
  }
  free(ok); free(oo);
  return FERRY_OK;
}

static void index_put(log_store *s, uint32_t no, int64_t off) {
  uint32_t h = islot(s, no);
  if (!s->ikey[h]) { s->ikey[h] = no + 1; s->icount++; }
  s->ioff[h] = off;
}

/* A record that shrinks the database cuts off every block past its end,
 * in the log and in the main file alike. */
static void index_cut(log_store *s, int64_t size) {
  if (size < s->main_limit) s->main_limit = size;
  uint32_t cap = s->icap;
  uint32_t *ok = s->ikey; int64_t *oo = s->ioff;
  int any = 0;
  for (uint32_t i = 0; i < cap; i++) if (ok[i] && (int64_t)(ok[i] - 1) * FERRY_BLOCK >= size) { any = 1; break; }
  if (!any) return;
  /* Reinserting into the same table (cleared) keeps probing chains right. */
  uint32_t *k = malloc((size_t)cap * sizeof *k);
  int64_t *o = malloc((size_t)cap * sizeof *o);
  if (k && o) {
    memcpy(k, ok, (size_t)cap * sizeof *k); memcpy(o, oo, (size_t)cap * sizeof *o);
    memset(ok, 0, (size_t)cap * sizeof *ok);
    s->icount = 0;
    for (uint32_t i = 0; i < cap; i++)
      if (k[i] && (int64_t)(k[i] - 1) * FERRY_BLOCK < size) index_put(s, k[i] - 1, o[i]);
  } else {
    /* Without memory for the copy, mark the entries dead in place: a dead
     * entry keeps its slot (probing stays right) and reads as cut off. */
    for (uint32_t i = 0; i < cap; i++)
      if (ok[i] && (int64_t)(ok[i] - 1) * FERRY_BLOCK >= size) oo[i] = -2;
  }
  free(k); free(o);
}

static void index_clear(log_store *s) {
  if (s->icap) memset(s->ikey, 0, (size_t)s->icap * sizeof *s->ikey);
  s->icount = 0;
  s->main_limit = INT64_MAX;
}

/* ---- scanning ------------------------------------------------------------ */

typedef struct pend { uint32_t no; int64_t off; } pend;

/* Checks the record at `off`: whole, of this generation, numbered `seq`,
 * checksum right. Streams its payload through a small buffer; the block
 * numbers and where their data lies go to *ents (s->rec is the buffer).
 * *len receives its total length, or 0 when there is no such record (the
 * end of the log, a torn or a stale record). */
static int scan_record(log_store *s, int64_t off, int64_t file_size, uint64_t seq, rec_hdr *h,
                       pend **ents, size_t *cap, size_t *len) {
  *len = 0;
  if (off + REC_HDR > file_size) return FERRY_OK;
  int rc = read_full(s->log, h, sizeof *h, off);
  if (rc != FERRY_OK) return rc;
  if (h->magic != REC_MAGIC || h->salt != s->salt || h->seq != seq) return FERRY_OK;
  if (h->nblocks > (1u << 30) / ENTRY || h->size < 0) return FERRY_OK;
  size_t plen = (size_t)h->nblocks * ENTRY;
  if (off + REC_HDR + (int64_t)plen > file_size) return FERRY_OK;
  if (h->nblocks > *cap) {
    pend *p = realloc(*ents, h->nblocks * sizeof *p);
    if (!p) return FERRY_NOMEM;
    *ents = p; *cap = h->nblocks;
  }
  enum { CHUNK = 64 * 1024 };   /* a multiple of 8: the checksum runs on as over one buffer */
  if ((rc = reserve(s, CHUNK)) != FERRY_OK) return rc;
  rec_hdr c = *h;
  c.sum = 0;
  uint64_t sum = checksum(0x243F6A8885A308D3ull, (const uint8_t *)&c, sizeof c);
  for (uint32_t k = 0; k < h->nblocks; k++) (*ents)[k].no = 0;
  for (size_t at = 0; at < plen; at += CHUNK) {
    size_t n = plen - at < CHUNK ? plen - at : CHUNK;
    if ((rc = read_full(s->log, s->rec, n, off + REC_HDR + (int64_t)at)) != FERRY_OK) return rc;
    sum = checksum(sum, s->rec, n);
    /* Each entry is its block number (4 bytes) and the block; a number may
     * straddle two chunks. */
    for (size_t k = at / ENTRY; k < h->nblocks && k * ENTRY < at + n; k++) {
      for (size_t b = 0; b < 4; b++) {
        size_t p = k * ENTRY + b;
        if (p >= at && p < at + n) (*ents)[k].no |= (uint32_t)s->rec[p - at] << (8 * b);
      }
    }
  }
  if (sum != h->sum) return FERRY_OK;
  for (uint32_t k = 0; k < h->nblocks; k++) (*ents)[k].off = off + REC_HDR + (int64_t)k * ENTRY + 4;
  *len = REC_HDR + plen;
  return FERRY_OK;
}

/* Copies up to `budget` blocks of the log that main does not hold yet into
 * main, unsynced, so that the checkpoint at the bound has less to copy in
 * one go. Reads never see it: an indexed block is read from the log, and
 * after a crash the log is replayed over main. Blocks at or past main_limit
 * are left for the checkpoint, which cuts main there first. A failure only
 * leaves the block for the checkpoint. */
static void precopy(log_store *s, uint32_t budget) {
  if (reserve(s, FERRY_BLOCK) != FERRY_OK) return;
  for (uint32_t seen = 0; budget > 0 && seen < s->icap; seen++, s->icursor = (s->icursor + 1) & (s->icap - 1)) {
    uint32_t i = s->icursor;
    int64_t off = s->ioff[i];
    /* A block of a record not synced yet could reach main and outlive its
     * record in a power cut: only synced records are copied ahead. */
    if (!s->ikey[i] || off < 0 || (off & COPIED) || off >= s->synced_end) continue;
    int64_t at = (int64_t)(s->ikey[i] - 1) * FERRY_BLOCK;
    if (at >= s->main_limit) continue;
    if (read_full(s->log, s->rec, FERRY_BLOCK, off) != FERRY_OK || s->main->m->write(s->main, s->rec, FERRY_BLOCK, at) != FERRY_OK) break;
    s->ioff[i] = off | COPIED;
    budget--;
  }
}

/* Copies the latest copy of every indexed block into the main file, syncs
 * it, and starts a new log (see log_start). Main's bytes cut
 * off by a record go first, so that blocks the database regrew without
 * writing read as zeros. */
static int checkpoint(log_store *s) {
  if (s->seq == 1 && !s->stale) return FERRY_OK;
  int rc;
  /* Main is only written from synced records (a lazy one could be lost in
   * a power cut while main keeps part of it). */
  if (s->unsynced) {
    if ((rc = s->log->m->sync(s->log)) != FERRY_OK) return ferry__store_fail(&s->base, rc, "cannot sync the commit log");
    s->unsynced = 0;
    s->synced_end = s->log_end;
  }
  int64_t msize = 0;
  if ((rc = s->main->m->size(s->main, &msize)) != FERRY_OK)
    return ferry__store_fail(&s->base, rc, "cannot read the database file's size");
  if (s->main_limit < msize && (rc = s->main->m->truncate(s->main, s->main_limit)) != FERRY_OK)
    return ferry__store_fail(&s->base, rc, "cannot write a checkpoint into the database file");
  if ((rc = reserve(s, FERRY_BLOCK)) != FERRY_OK) return ferry__store_fail(&s->base, rc, "out of memory");
  for (uint32_t i = 0; i < s->icap; i++) {
    if (!s->ikey[i] || s->ioff[i] < 0 || (s->ioff[i] & COPIED)) continue;
    if ((rc = read_full(s->log, s->rec, FERRY_BLOCK, s->ioff[i])) != FERRY_OK)
      return ferry__store_fail(&s->base, rc, "cannot read the commit log");
    if ((rc = s->main->m->write(s->main, s->rec, FERRY_BLOCK, (int64_t)(s->ikey[i] - 1) * FERRY_BLOCK)) != FERRY_OK)
      return ferry__store_fail(&s->base, rc, "cannot write a checkpoint into the database file");
  }
  if ((rc = s->main->m->truncate(s->main, s->size)) != FERRY_OK ||
      (rc = s->main->m->sync(s->main)) != FERRY_OK)
    return ferry__store_fail(&s->base, rc, "cannot sync the database file at a checkpoint");
  s->stale = 1;
  return log_start(s, LOG_MAGIC);
}

static int log_open(ferry_store *base, int64_t *size) {
  log_store *s = (log_store *)base;
  int64_t msize = 0;
  int rc = s->main->m->size(s->main, &msize);
  if (rc != FERRY_OK) return ferry__store_fail(base, rc, "cannot read the database file's size");
  s->size = *size = msize;
  index_clear(s);

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
  if ((magic != LOG_MAGIC && magic != IMPORT_MAGIC) || sum != checksum(7, hdr, 16)) return log_reset(s);
  memcpy(&s->salt, hdr + 8, 8);
  if (magic == IMPORT_MAGIC) {
    /* An import that did not finish: the database was empty before it and
     * is empty now, whatever part of it reached main. */
    if ((rc = s->main->m->truncate(s->main, 0)) != FERRY_OK || (rc = s->main->m->sync(s->main)) != FERRY_OK)
      return ferry__store_fail(base, rc, "cannot undo an interrupted import");
    s->size = *size = 0;
    return log_reset(s);
  }

  /* The log ends at the first record that is not whole. */
  pend *ents = NULL; size_t cap = 0;
  int64_t off = LOG_HDR;
  uint64_t seq = 1;
  for (;;) {
    rec_hdr h; size_t len;
    if ((rc = scan_record(s, off, lsize, seq, &h, &ents, &cap, &len)) != FERRY_OK) {
      free(ents);
      return ferry__store_fail(base, rc, "cannot read the commit log");
    }
    if (len == 0) break;
    if ((rc = index_reserve(s, h.nblocks)) != FERRY_OK) { free(ents); return ferry__store_fail(base, rc, "out of memory indexing the commit log"); }
    for (uint32_t k = 0; k < h.nblocks; k++)
      if ((int64_t)ents[k].no * FERRY_BLOCK < h.size) index_put(s, ents[k].no, ents[k].off);
    if (h.size < s->size) index_cut(s, h.size);
    s->size = h.size;
    off += len;
    seq++;
  }
  free(ents);
  *size = s->size;
  s->log_end = off;
  s->seq = seq;
  /* What follows the last whole record (a torn one, and after a power cut
   * whole ones the disk kept beyond it) goes before a record is written:
   * one left there, of this salt and the sequence number a new record
   * reaches at its offset, would be read as the new record's successor. */
  if (lsize > off) {
    if ((rc = s->log->m->truncate(s->log, off)) != FERRY_OK || (rc = s->log->m->sync(s->log)) != FERRY_OK)
      return ferry__store_fail(base, rc, "cannot cut the torn end off the commit log");
  }
  return FERRY_OK;
}

static int log_read(ferry_store *base, uint32_t no, uint8_t *buf) {
  log_store *s = (log_store *)base;
  int64_t at = (int64_t)no * FERRY_BLOCK;
  if (at >= s->size) { memset(buf, 0, FERRY_BLOCK); return FERRY_OK; }
  int64_t off = index_get(s, no);
  int rc;
  if (off >= 0) {
    if ((rc = read_full(s->log, buf, FERRY_BLOCK, off)) != FERRY_OK)
      return ferry__store_fail(base, rc, "cannot read block %u from the commit log", no);
    return FERRY_OK;
  }
  if (off == -2 || at >= s->main_limit) { memset(buf, 0, FERRY_BLOCK); return FERRY_OK; }
  /* The main file may end before the database does: the rest is zeros. */
  size_t got = 0;
  if ((rc = s->main->m->read(s->main, buf, FERRY_BLOCK, at, &got)) != FERRY_OK)
    return ferry__store_fail(base, rc, "cannot read block %u from the database file", no);
  if (got < FERRY_BLOCK) memset(buf + got, 0, FERRY_BLOCK - got);
  return FERRY_OK;
}

/* A record of the batch appended to the log; synced unless lazy (an earlier
 * lazy record becomes durable with the next sync of the log). */
static int append_commit(ferry_store *base, const ferry_block *blocks, size_t n, int64_t size, int lazy) {
  log_store *s = (log_store *)base;
  int rc;
  if (s->importing) return ferry__store_fail(base, FERRY_IO, "an import into this database failed; close it (it opens empty)");
  if (s->stale && (rc = log_reset(s)) != FERRY_OK) return rc;
  size_t plen = n * ENTRY;
  rc = reserve(s, REC_HDR + plen);
  if (rc == FERRY_OK) rc = index_reserve(s, n);
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
      (!lazy && (rc = s->log->m->sync(s->log)) != FERRY_OK)) {
    if (base->errmsg[0] == 0) ferry__store_fail(base, rc, "cannot write the commit log");
    /* A record whose sync failed may be whole on disk: cut it off so that a
     * reopen does not replay a commit reported as failed. Should that fail
     * too, the next record overwrites it. */
    if (s->log->m->truncate(s->log, s->log_end) == FERRY_OK) (void)s->log->m->sync(s->log);
    return rc;
  }
  for (size_t k = 0; k < n; k++)
    if ((int64_t)blocks[k].no * FERRY_BLOCK < size)
      index_put(s, blocks[k].no, s->log_end + REC_HDR + (int64_t)k * ENTRY + 4);
  if (size < s->size) index_cut(s, size);
  s->size = size;
  s->log_end += (int64_t)(REC_HDR + plen);
  s->seq++;
  s->unsynced = lazy;
  if (!lazy) s->synced_end = s->log_end;
  if (s->log_end > s->checkpoint_bytes / 2 && s->log_end <= s->checkpoint_bytes) {
    /* Past half the bound, each commit copies three times its blocks ahead. */
    precopy(s, 3 * (uint32_t)n + 16);
    base->errmsg[0] = 0;
  }
  if (s->log_end > s->checkpoint_bytes) {
    /* The commit is already in the log; a failed checkpoint left the store
     * consistent (see the top) and is retried at the next commit. */
    (void)checkpoint(s);
    base->errmsg[0] = 0;
  }
  return FERRY_OK;
}

static int log_commit(ferry_store *base, const ferry_block *blocks, size_t n, int64_t size) {
  return append_commit(base, blocks, n, size, 0);
}

static int log_commit_lazy(ferry_store *base, const ferry_block *blocks, size_t n, int64_t size) {
  return append_commit(base, blocks, n, size, 1);
}

static int log_checkpoint(ferry_store *base) {
  log_store *s = (log_store *)base;
  if (s->importing) return FERRY_OK;
  return checkpoint(s);
}

/* The log's IMPORT_MAGIC header is the import's commit point turned
 * around: from the moment it is synced until the log is started over with
 * LOG_MAGIC (after main is whole and synced), an open finds an empty
 * database, whatever part of the import main holds. */
static int log_import(ferry_store *base, ferry_store *from, int64_t size) {
  log_store *s = (log_store *)base;
  if (s->size != 0) return ferry__store_fail(base, FERRY_MISUSE, "the store already holds a database");
  enum { RUN = 16 };   /* blocks per write */
  int rc = reserve(s, RUN * FERRY_BLOCK);
  if (rc != FERRY_OK) return ferry__store_fail(base, rc, "out of memory");
  if ((rc = log_start(s, IMPORT_MAGIC)) != FERRY_OK) return rc;
  /* Until it is whole, main may hold anything; a reopen empties it. */
  s->importing = 1;
  if ((rc = s->main->m->truncate(s->main, 0)) != FERRY_OK)
    return ferry__store_fail(base, rc, "cannot write the database file");
  uint32_t nblocks = (uint32_t)((size + FERRY_BLOCK - 1) / FERRY_BLOCK);
  for (uint32_t at = 0; at < nblocks; at += RUN) {
    uint32_t n = nblocks - at < RUN ? nblocks - at : RUN;
    for (uint32_t k = 0; k < n; k++) {
      from->errmsg[0] = 0;
      if ((rc = from->m->read(from, at + k, s->rec + (size_t)k * FERRY_BLOCK)) != FERRY_OK)
        return ferry__store_fail(base, rc, "cannot read block %u of the given database%s%s", at + k,
                                 from->errmsg[0] ? ": " : "", from->errmsg);
    }
    int64_t off = (int64_t)at * FERRY_BLOCK;
    size_t len = size - off < (int64_t)n * FERRY_BLOCK ? (size_t)(size - off) : (size_t)n * FERRY_BLOCK;
    if ((rc = s->main->m->write(s->main, s->rec, len, off)) != FERRY_OK)
      return ferry__store_fail(base, rc, "cannot write the database file");
  }
  if ((rc = s->main->m->sync(s->main)) != FERRY_OK)
    return ferry__store_fail(base, rc, "cannot sync the database file");
  if ((rc = log_reset(s)) != FERRY_OK) return rc;
  s->importing = 0;
  s->size = size;
  return FERRY_OK;
}

static void log_close(ferry_store *base) {
  log_store *s = (log_store *)base;
  if (s->unsynced && s->log) (void)s->log->m->sync(s->log);
  if (s->main) s->main->m->close(s->main);
  if (s->log) s->log->m->close(s->log);
  free(s->rec);
  free(s->ikey); free(s->ioff);
  free(s);
}

static const ferry_store_methods log_methods = { log_open, log_read, log_commit, log_close, log_checkpoint, log_import, log_commit_lazy };

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
  s->main_limit = INT64_MAX;
  *out = &s->base;
  return FERRY_OK;
}
