/* Local schema for sync (internal): ferry's own tables, and the entity
 * tables and capture triggers a model asks for. */
#ifndef FERRY_SCHEMA_H
#define FERRY_SCHEMA_H
#include "model.h"
#include "sqlite3.h"

/* Creates ferry's bookkeeping tables if missing. */
int ferry__schema_init(sqlite3 *sq, char *err, size_t errlen);
/* Brings the local tables from `old` (NULL: none) to `cur`, inside the
 * caller's transaction: creates and alters entity tables, recreates the
 * capture triggers, drops removed entities that hold no pending change, and
 * resets the pull cursor of every entity whose shape or mode changed. */
int ferry__schema_migrate(sqlite3 *sq, const ferry__model *old, const ferry__model *cur, char *err, size_t errlen);

/* For a database started from another's bytes (ferry_db_open_from): drops
 * the client id it carries, so that the copy draws its own when its sync
 * engine opens. A copy pushing under the original's id would have its
 * changes taken for the original's: answered as duplicates of mutation ids
 * the original already used, or as the original's own later writes.
 * Pending changes, pull cursors and base versions stay: the copy pushes
 * what it holds as its own and pulls on from where the original was. */
int ferry__schema_forget_client(sqlite3 *sq, char *err, size_t errlen);

/* 1 if `name` is one of the capture triggers ferry creates on `entity`'s table. */
int ferry__schema_is_capture_trigger(const char *name, const char *entity);

/* 1 if `name` is one of the client's sync bookkeeping tables. */
int ferry__schema_is_bookkeeping(const char *name);

#endif
