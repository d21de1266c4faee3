/* Value rules shared with the database layer (core/db.c registers them on
 * every connection, so capture triggers work with or without a sync engine). */
#ifndef FERRY_SYNC_VALUES_H
#define FERRY_SYNC_VALUES_H

#include "sqlite3.h"

/* Integers JSON numbers carry exactly: +-(2^53-1). */
#define FERRY__MAX_SAFE_INTEGER 9007199254740991.0

/* Registers ferry_check(name, type, value) and the digest functions
 * ferry_row_hash / ferry_digest(id, types, values...) on sq; a SQLite result code. */
int ferry__values_register(sqlite3 *sq);

#endif
