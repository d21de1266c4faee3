/* What app SQL may not do to a synced database: write ferry's bookkeeping,
 * drop or alter entity tables, or touch the capture triggers. Any of these
 * would silently lose or misnumber changes, so they are refused with
 * FERRY_FORBIDDEN while ferry's own statements still run. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "sync_internal.h"

static int is_entity(const ferry_sync *s, const char *t) {
  for (int i = 0; s->model && i < s->model->nentities; i++)
    if (strcasecmp(s->model->entities[i].name, t) == 0) return 1;
  return 0;
}

static const char *guard(void *arg, int action, const char *a1, const char *a2) {
  ferry_sync *s = arg;
  const char *what = NULL, *name = NULL;
  switch (action) {
    case SQLITE_INSERT: case SQLITE_UPDATE: case SQLITE_DELETE:
      if (a1 && ferry__schema_is_bookkeeping(a1)) { what = "write"; name = a1; }
      break;
    case SQLITE_DROP_TABLE:
      if (a1 && (ferry__schema_is_bookkeeping(a1) || is_entity(s, a1))) { what = "drop"; name = a1; }
      break;
    case SQLITE_ALTER_TABLE:
      if (a2 && (ferry__schema_is_bookkeeping(a2) || is_entity(s, a2))) { what = "alter"; name = a2; }
      break;
    case SQLITE_CREATE_TRIGGER: case SQLITE_DROP_TRIGGER: case SQLITE_CREATE_INDEX: case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TEMP_TRIGGER: case SQLITE_DROP_TEMP_TRIGGER:
      if (a1 && strncasecmp(a1, "_ferry", 6) == 0) { what = "create or drop"; name = a1; }
      break;
    case SQLITE_PRAGMA:
      if (a1 && a2 && strcasecmp(a1, "writable_schema") == 0) { what = "set"; name = "writable_schema"; }
      break;
    default:
      break;
  }
  if (!what) return NULL;
  snprintf(s->guard_msg, sizeof s->guard_msg,
           "app SQL may not %s %s: it is ferry's sync state or an entity table of the model; "
           "change the model on the server, or use ferry's API (retrySyncError, discardSyncError)", what, name);
  return s->guard_msg;
}

void ferry__sync_guard_install(ferry_sync *s, int on) {
  ferry__db_set_guard(s->db, on ? guard : NULL, on ? s : NULL);
}
