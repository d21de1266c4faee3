/* The data model (internal): entities with typed attributes, associations,
 * a sync mode and a conflict policy, parsed from the server's JSON. The
 * client trusts nothing in it: every name is checked to be a plain
 * identifier before it is ever put into SQL. */
#ifndef FERRY_MODEL_H
#define FERRY_MODEL_H

#include <stddef.h>

typedef enum { FT_STRING, FT_INTEGER, FT_DECIMAL, FT_BOOLEAN, FT_DATETIME, FT_BINARY, FT_FILE, FT_ASSOC } ferry__type;
typedef enum { SYNC_ALL, SYNC_WHERE, SYNC_NOTHING_CLEAR, SYNC_NOTHING_PRESERVE, SYNC_NEVER } ferry__mode;

typedef struct ferry__attr {
  char *name;
  ferry__type type;
  char *target;          /* association target entity, else NULL */
} ferry__attr;

typedef struct ferry__entity {
  char *name;
  ferry__attr *attrs;    /* attributes, then associations */
  int nattrs;
  ferry__mode mode;
  char *where;           /* SYNC_WHERE: the filter text (evaluated by the server) */
} ferry__entity;

typedef struct ferry__model {
  char *version;
  ferry__entity *entities;
  int nentities;
} ferry__model;

/* Parses and checks `json`. On failure returns FERRY_MODEL and writes a
 * message naming the entity and the rule into err. Caller owns *out
 * (ferry__model_free). */
int ferry__model_parse(const char *json, size_t len, ferry__model **out, char *err, size_t errlen);
void ferry__model_free(ferry__model *m);
const ferry__entity *ferry__model_entity(const ferry__model *m, const char *name);
const ferry__attr *ferry__entity_attr(const ferry__entity *e, const char *name);
/* 1 if the entity's objects are uploaded (every mode but never). */
int ferry__mode_uploads(ferry__mode m);
/* 1 if the entity's objects are downloaded (all, where). */
int ferry__mode_downloads(ferry__mode m);
/* 1 if `s` is a plain identifier ferry accepts as a name. */
int ferry__is_identifier(const char *s);
const char *ferry__type_name(ferry__type t);

#endif
