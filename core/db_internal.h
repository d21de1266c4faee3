/* What core modules (sync, schema) use of ferry_db beyond the public API. */
#ifndef FERRY_DB_INTERNAL_H
#define FERRY_DB_INTERNAL_H
#include "ferry.h"

/* Turns change capture (the outbox triggers) on or off for this connection. */
void ferry__db_set_capture(ferry_db *db, int on);

#endif
