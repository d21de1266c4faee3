/* ferry: the public C API of the core (storage, SQL, sync).
 * Conventions: every fallible function returns an int code (FERRY_OK == 0);
 * handles are opaque with an _open/_close pair, and closing NULL is a no-op;
 * error text lives on the handle (ferry_errmsg), never in a global. */
#ifndef FERRY_H
#define FERRY_H

#include <stddef.h>
#include <stdint.h>
#include "ferry_errors.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
#define FERRY__ENUM(name, code, hint) FERRY_##name,
  FERRY_ERRORS(FERRY__ENUM)
#undef FERRY__ENUM
  FERRY__NCODES
};

/* Stable string code of `rc` (busy, storage_full, ...); static memory.
 * Unknown codes give "error". */
const char *ferry_errstr(int rc);
/* One sentence saying what to do about `rc`; static memory. */
const char *ferry_errhint(int rc);
/* Number of codes in the list (for generators and bindings). */
int ferry_errcount(void);

/* ---- page stores -------------------------------------------------------- */
typedef struct ferry_store ferry_store;   /* function table in store.h */
struct ferry_file;                        /* function table in store.h */

/* A store that keeps pages in memory only: durable for the process lifetime.
 * It holds every block itself; the database caches nothing in front of it.
 * Caller owns the result; it is released by ferry_db_close (or ferry_store_close). */
int ferry_store_memory_open(ferry_store **out);
/* Releases a store that was not handed to a database. NULL is a no-op. */
void ferry_store_close(ferry_store *store);

/* ---- databases ---------------------------------------------------------- */
typedef struct ferry_db ferry_db;

/* Opens database `name` on `store`. The database takes ownership of `store`
 * in every case (it is closed on failure). On failure *out may still be set
 * to a handle carrying the error message: read ferry_errmsg, then close it. */
int ferry_db_open(ferry_db **out, const char *name, ferry_store *store);
/* As ferry_db_open, caching up to `cache_bytes` of the store's blocks in
 * memory (0: the default, 4 MiB; negative: none). Memory for the database
 * is this cache, the open transaction's changes and SQLite's own cache. */
int ferry_db_open_cached(ferry_db **out, const char *name, ferry_store *store, int64_t cache_bytes);
/* Flags ferry_db_open_from reports. */
#define FERRY_OPENED_EMPTY    1   /* the store held no database: this open created it */
#define FERRY_OPENED_IMPORTED 2   /* ... from the bytes of `from` */
/* Flag given to ferry_db_open_from in *flags: `from` is this device's own
 * database moved to another store, so the copy keeps its sync client id. */
#define FERRY_OPEN_MOVE       4

/* As ferry_db_open_cached; when the store holds no database yet and `from`
 * is not NULL, the database starts as a copy of the SQLite database file
 * `from` holds (read a block at a time; never written): its header is
 * checked, SQLite checks the whole file (PRAGMA quick_check), the copy's
 * sync client id is dropped so that it draws its own (schema.h), and the
 * store takes it in one atomic step (store.h, import). Bytes that are not
 * a whole SQLite database fail with FERRY_NOT_DATABASE and store nothing.
 * A store that holds a database already ignores `from`. *flags (may be
 * NULL): FERRY_OPEN_MOVE on input keeps the copy's client id (a move of
 * the same device's database, not a second device); on return it holds
 * FERRY_OPENED_*. Takes ownership of store and from in every case. */
int ferry_db_open_from(ferry_db **out, const char *name, ferry_store *store, int64_t cache_bytes,
                       struct ferry_file *from, int *flags);
/* Closes the database and its store (every commit has already reached the
 * store). NULL is a no-op. A log store's main file is then a plain SQLite
 * file only if ferry_db_checkpoint ran after the last commit. */
void ferry_db_close(ferry_db *db);
/* Folds the store's commit log into its database file, which is then a
 * plain SQLite file holding the last commit (stores without a log: no-op).
 * A failure loses nothing (every commit stays durable in the log); the
 * next checkpoint tries again. FERRY_MISUSE inside a transaction. */
int ferry_db_checkpoint(ferry_db *db);
/* Size in bytes of the database as last committed: the length of the
 * SQLite file ferry_db_export_read gives. */
int ferry_db_export_size(ferry_db *db, int64_t *size);
/* Copies bytes [off, off + n) of the database as last committed, a plain
 * SQLite file, into buf (caller's memory), reading pages not in the cache
 * from the store without caching them. FERRY_MISUSE inside a transaction,
 * FERRY_RANGE past the end. */
int ferry_db_export_read(ferry_db *db, int64_t off, void *buf, size_t n);
/* Message of the last error on `db`, or "" after success; owned by db,
 * valid until the next call on db. NULL db gives a static message. */
const char *ferry_errmsg(const ferry_db *db);

/* Flags for ferry_db_run. */
#define FERRY_RUN_ROWS 1   /* encode result rows */

/* Runs `sql` (one or more statements; parameters only with a single one)
 * with parameters encoded in `params` (see codec.h; NULL/0 for none).
 * On success out and out_len point at the encoded result (columns, rows,
 * changes, last insert rowid), owned by db and valid until the next call. */
int ferry_db_run(ferry_db *db, const char *sql, size_t sql_len,
                 const uint8_t *params, size_t params_len, int flags,
                 const uint8_t **out, size_t *out_len);

/* 1 while a transaction is open on db, else 0. */
int ferry_db_in_transaction(const ferry_db *db);

/* Number of changed rows and last insert rowid of the last ferry_db_run. */
int64_t ferry_db_changes(const ferry_db *db);
int64_t ferry_db_last_rowid(const ferry_db *db);

/* ---- live queries ------------------------------------------------------- */

/* The tables the single read-only statement `sql` reads, as SQLite's
 * authorizer reports them while preparing it (views resolved to the tables
 * beneath): a list encoded as u32 count, then u32 length and bytes of each
 * name, each name once. FERRY_MISUSE for a statement that writes or for more
 * than one statement, FERRY_SQL when it does not prepare. On success out and
 * out_len point at the list, owned by db and valid until the next call. */
int ferry_db_reads(ferry_db *db, const char *sql, size_t sql_len,
                   const uint8_t **out, size_t *out_len);

/* The tables that transactions committed since the last call changed (rows
 * inserted, updated or deleted, by app SQL, triggers or sync), in the same
 * encoding, each name once; rolled-back work is not in it. Taking the list
 * empties it. out and out_len point at memory owned by db, valid until the
 * next call. */
int ferry_db_changed(ferry_db *db, const uint8_t **out, size_t *out_len);

/* The SQLite connection, for core modules (capture, sync) and tests.
 * Owned by db. Declared as void* so this header needs no sqlite3.h. */
void *ferry_db_sqlite(ferry_db *db);

#ifdef __cplusplus
}
#endif
#endif
