/* The one list of ferry's error codes.
 * X(NAME, "stable_code", "what to do") expands into the C enum (ferry.h),
 * ferry_errstr()/ferry_errhint() (errors.c) and the JS constants (generated
 * by tools/gen_codes.c into bindings/dist/codes.js). Append only: the
 * numbers are part of the wasm ABI and the strings are part of the JS API. */
#ifndef FERRY_ERRORS_H
#define FERRY_ERRORS_H

#define FERRY_ERRORS(X) \
  X(OK,           "ok",            "no error") \
  X(ERROR,        "error",         "internal error; report it with the message") \
  X(MISUSE,       "misuse",        "the API was called in a way it does not support") \
  X(CLOSED,       "closed",        "the database is closed; open it again") \
  X(TYPE,         "type",          "a value has a type ferry cannot store; use null, boolean, number, bigint, string or Uint8Array") \
  X(RANGE,        "range",         "a value is out of range (integer beyond 64 bits, parameter count, size)") \
  X(SQL,          "sql",           "the SQL statement failed; check its syntax and the names it uses") \
  X(CONSTRAINT,   "constraint",    "a constraint (unique, not null, check, foreign key) rejected the change") \
  X(BUSY,         "busy",          "the database is open for writing elsewhere; close it there or wait") \
  X(NOMEM,        "nomem",         "out of memory") \
  X(IO,           "io",            "the storage failed; the last committed state is kept") \
  X(FULL,         "storage_full",  "the storage quota is exhausted; free space or ask for persistent storage") \
  X(CORRUPT,      "corrupt",       "stored data is damaged and could not be recovered") \
  X(NOTFOUND,     "not_found",     "the named thing does not exist") \
  X(TOOBIG,       "too_big",       "a value or payload exceeds ferry's size limit") \
  X(UNSUPPORTED,  "unsupported",   "this storage or feature is not available in this environment") \
  X(STORAGE_LOST, "storage_lost",  "the database's storage is gone (evicted or deleted) although it was known before") \
  X(MODEL,        "model_invalid", "the model cannot work offline; fix the entity and rule named in the message") \
  X(SYNC_NETWORK, "sync_network",  "the sync server could not be reached; changes stay pending and sync retries later") \
  X(SYNC_SERVER,  "sync_server",   "the sync server failed (HTTP 5xx); changes stay pending and sync retries later") \
  X(SYNC_PROTOCOL,"sync_protocol", "the sync server's reply is not valid ferry protocol; changes stay pending") \
  X(SYNC_AUTH,    "sync_auth",     "the sync server refused the credentials; check the headers option") \
  X(SYNC_TOO_BIG, "sync_too_big",  "the sync reply exceeds the size limit; changes stay pending") \
  X(SYNC_REJECTED,"sync_rejected", "the sync server refused the request; see the message") \
  X(FORBIDDEN,    "forbidden",     "app SQL may not change ferry's own tables, triggers or entity tables; change the model on the server instead") \
  X(UNSYNCED,     "unsynced",      "changes on this device have not reached the server; sync them first, or sign out with { discard: true } to drop them") \
  X(FILE_PENDING, "file_pending",  "the file's bytes are not on this device yet; they are being downloaded, try again after db.files.flush() or a sync")

#endif
