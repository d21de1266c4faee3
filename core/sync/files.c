/* The upload queue's bookkeeping (core/files.h). The queue is a JS runner
 * over these few writes rather than a C state machine: its decisions
 * (which file next, backoff, resume offsets) are about I/O the bindings do
 * and need no durability, while what must survive a crash (that a hash
 * still has to go up, and why it failed) is one row written by the capture
 * triggers or here, protected from app SQL by the guard. */
#include <string.h>
#include "files.h"
#include "sync_internal.h"

static int changed_or_missing(ferry_sync *s, const char *hash) {
  if (sqlite3_changes(s->sq) > 0) return FERRY_OK;
  return ferry__sync_fail(s, FERRY_NOTFOUND, "no upload of the file %s is queued", hash);
}

int ferry_files_uploaded(ferry_sync *s, const char *hash) {
  if (!s || !hash) return FERRY_MISUSE;
  return ferry__sync_exec_bind2(s, "DELETE FROM _ferry_files WHERE hash = ?1", hash, NULL, 0, 0);
}

int ferry_files_fail(ferry_sync *s, const char *hash, const char *code, const char *message) {
  if (!s || !hash || !code) return FERRY_MISUSE;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->sq, "UPDATE _ferry_files SET code = ?2, message = ?3, "
                         "at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) WHERE hash = ?1", -1, &st, NULL) != SQLITE_OK)
    return ferry__sync_fail_db(s, "cannot record the file's failure");
  sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, message ? message : "", -1, SQLITE_STATIC);
  int ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  if (!ok) return ferry__sync_fail_db(s, "cannot record the file's failure");
  return changed_or_missing(s, hash);
}

int ferry_files_retry(ferry_sync *s, const char *hash) {
  if (!s || !hash) return FERRY_MISUSE;
  int rc = ferry__sync_exec_bind2(s, "UPDATE _ferry_files SET code = NULL, message = NULL WHERE hash = ?1", hash, NULL, 0, 0);
  return rc == FERRY_OK ? changed_or_missing(s, hash) : rc;
}
