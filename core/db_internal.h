/* What core modules (sync, schema) use of ferry_db beyond the public API. */
#ifndef FERRY_DB_INTERNAL_H
#define FERRY_DB_INTERNAL_H
#include "ferry.h"

/* Turns change capture (the outbox triggers) on or off for this connection. */
void ferry__db_set_capture(ferry_db *db, int on);

/* Says why app SQL may not do `action` (a SQLite authorizer action code on
 * a1/a2), or NULL to allow it. The returned text is copied. */
typedef const char *(*ferry__guard_fn)(void *arg, int action, const char *a1, const char *a2);
/* Installs the guard app statements are checked against (NULL: none). */
void ferry__db_set_guard(ferry_db *db, ferry__guard_fn fn, void *arg);

/* The VFS counters of db's image (cache, reads, commits) into *out, the
 * caller's; for tests and benchmarks. */
struct ferry_vfs_stats;
void ferry__db_vfs_stats(ferry_db *db, struct ferry_vfs_stats *out);

#endif
