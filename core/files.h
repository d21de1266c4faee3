/* The upload queue of files (docs/FILES.md). The queue's rows live in the
 * bookkeeping table _ferry_files: the capture triggers add one per hash in
 * the transaction that writes a file reference, so a reference and its
 * upload are durable together. The transfers themselves (HTTP, streaming,
 * hashing, backoff) run in the bindings, which tell the queue how an upload
 * ended through these functions; app SQL may not write the table. */
#ifndef FERRY_FILES_H
#define FERRY_FILES_H

#include "sync.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The server holds the bytes of `hash`: its upload leaves the queue.
 * FERRY_OK also when it was not queued. */
int ferry_files_uploaded(ferry_sync *s, const char *hash);

/* The upload of `hash` failed for a reason other than the network: it stays
 * queued with `code` (a ferry error code, e.g. "too_big") and `message`, and
 * is not tried again until ferry_files_retry. FERRY_NOTFOUND when not queued. */
int ferry_files_fail(ferry_sync *s, const char *hash, const char *code, const char *message);

/* Clears the failure of `hash`, so its upload is tried again.
 * FERRY_NOTFOUND when not queued. */
int ferry_files_retry(ferry_sync *s, const char *hash);

#ifdef __cplusplus
}
#endif
#endif
