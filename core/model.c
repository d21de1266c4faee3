#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cJSON.h"
#include "ferry.h"
#include "model.h"

static const char *const type_names[] = { "string", "integer", "decimal", "boolean", "datetime", "binary", "file", "association" };

const char *ferry__type_name(ferry__type t) { return type_names[t]; }
int ferry__mode_uploads(ferry__mode m) { return m != SYNC_NEVER; }
int ferry__mode_downloads(ferry__mode m) { return m == SYNC_ALL || m == SYNC_WHERE; }

int ferry__is_identifier(const char *s) {
  if (!s || !*s || strlen(s) > 64) return 0;
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
  for (const char *p = s + 1; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return 0;
  if (strncasecmp(s, "_ferry", 6) == 0 || strncasecmp(s, "sqlite_", 7) == 0) return 0;
  return 1;
}

static char *dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

void ferry__model_free(ferry__model *m) {
  if (!m) return;
  for (int i = 0; i < m->nentities; i++) {
    ferry__entity *e = &m->entities[i];
    for (int k = 0; k < e->nattrs; k++) { free(e->attrs[k].name); free(e->attrs[k].target); }
    free(e->attrs); free(e->name); free(e->where);
  }
  free(m->entities); free(m->version); free(m);
}

const ferry__entity *ferry__model_entity(const ferry__model *m, const char *name) {
  for (int i = 0; m && i < m->nentities; i++) if (strcmp(m->entities[i].name, name) == 0) return &m->entities[i];
  return NULL;
}

const ferry__attr *ferry__entity_attr(const ferry__entity *e, const char *name) {
  for (int k = 0; e && k < e->nattrs; k++) if (strcmp(e->attrs[k].name, name) == 0) return &e->attrs[k];
  return NULL;
}

/* Each attribute is a column and a term of its capture trigger's compound
 * SELECT (schema.c), which SQLite caps at 500 terms: a wider entity would
 * pass here and then fail to install with an SQL error. */
#define MAX_ATTRS 500

#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

static int add_attr(ferry__entity *e, const char *name, ferry__type t, const char *target) {
  ferry__attr *a = realloc(e->attrs, (size_t)(e->nattrs + 1) * sizeof *a);
  if (!a) return 0;
  e->attrs = a;
  a = &e->attrs[e->nattrs];
  memset(a, 0, sizeof *a);
  a->name = dup(name);
  a->type = t;
  a->target = target ? dup(target) : NULL;
  if (!a->name || (target && !a->target)) { free(a->name); free(a->target); return 0; }
  e->nattrs++;
  return 1;
}

int ferry__model_parse(const char *json, size_t len, ferry__model **out, char *err, size_t errlen) {
  *out = NULL;
  err[0] = 0;
  /* The model is stored and reloaded as a C string, and cJSON skips a NUL
   * as whitespace: a model with one would install, then fail to load on
   * every later open. JSON text never holds a raw NUL anyway. */
  if (json && memchr(json, 0, len)) {
    snprintf(err, errlen, "the model is not valid JSON text (it holds a NUL byte)");
    return FERRY_MODEL;
  }
  cJSON *root = cJSON_ParseWithLength(json, len);
  ferry__model *m = calloc(1, sizeof *m);
  if (!m) { cJSON_Delete(root); snprintf(err, errlen, "out of memory"); return FERRY_NOMEM; }
  if (!root || !cJSON_IsObject(root)) BAD("the model is not a JSON object");
  cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
  if (cJSON_IsNumber(ver)) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", ver->valuedouble);
    m->version = dup(buf);
  } else if (cJSON_IsString(ver) && ver->valuestring[0] && strlen(ver->valuestring) <= 128) {
    m->version = dup(ver->valuestring);
  } else {
    BAD("model: version: a non-empty string is required");
  }
  cJSON *ents = cJSON_GetObjectItemCaseSensitive(root, "entities");
  if (!cJSON_IsObject(ents)) BAD("model: entities: an object of entities is required");
  int n = cJSON_GetArraySize(ents);
  if (n > 1000) BAD("model: entities: more than 1000 entities");
  m->entities = calloc((size_t)(n ? n : 1), sizeof *m->entities);
  if (!m->entities || !m->version) BAD("out of memory");
  cJSON *ej;
  cJSON_ArrayForEach(ej, ents) {
    const char *en = ej->string;
    if (!ferry__is_identifier(en)) BAD("%s: name: entity names are plain identifiers (letters, digits, _; not _ferry…)", en ? en : "?");
    for (int i = 0; i < m->nentities; i++)
      if (strcasecmp(m->entities[i].name, en) == 0) BAD("%s: name: defined twice", en);
    if (!cJSON_IsObject(ej)) BAD("%s: definition: an object is required", en);
    ferry__entity *e = &m->entities[m->nentities++];
    if (!(e->name = dup(en))) BAD("out of memory");
    cJSON *attrs = cJSON_GetObjectItemCaseSensitive(ej, "attributes");
    if (attrs && !cJSON_IsObject(attrs)) BAD("%s: attributes: an object is required", en);
    cJSON *aj;
    cJSON_ArrayForEach(aj, attrs) {
      const char *an = aj->string;
      if (!ferry__is_identifier(an) || strcasecmp(an, "id") == 0)
        BAD("%s: attribute '%s': names are plain identifiers other than id", en, an ? an : "?");
      if (!cJSON_IsString(aj)) BAD("%s: attribute %s: the type must be a string", en, an);
      int t = -1;
      for (int k = 0; k < FT_ASSOC; k++) if (strcmp(aj->valuestring, type_names[k]) == 0) t = k;
      if (t < 0) BAD("%s: attribute %s: unknown type '%s' (string, integer, decimal, boolean, datetime, binary, file)", en, an, aj->valuestring);
      for (int k = 0; k < e->nattrs; k++) if (strcasecmp(e->attrs[k].name, an) == 0) BAD("%s: attribute %s: defined twice", en, an);
      if (e->nattrs >= MAX_ATTRS) BAD("%s: attributes: more than %d attributes and associations", en, MAX_ATTRS);
      if (!add_attr(e, an, (ferry__type)t, NULL)) BAD("out of memory");
    }
    cJSON *assocs = cJSON_GetObjectItemCaseSensitive(ej, "associations");
    if (assocs && !cJSON_IsObject(assocs)) BAD("%s: associations: an object is required", en);
    cJSON_ArrayForEach(aj, assocs) {
      const char *an = aj->string;
      if (!ferry__is_identifier(an) || strcasecmp(an, "id") == 0)
        BAD("%s: association '%s': names are plain identifiers other than id", en, an ? an : "?");
      if (!cJSON_IsString(aj) || !ferry__is_identifier(aj->valuestring)) BAD("%s: association %s: the target must be an entity name", en, an);
      for (int k = 0; k < e->nattrs; k++) if (strcasecmp(e->attrs[k].name, an) == 0) BAD("%s: association %s: name already used", en, an);
      if (e->nattrs >= MAX_ATTRS) BAD("%s: associations: more than %d attributes and associations", en, MAX_ATTRS);
      if (!add_attr(e, an, FT_ASSOC, aj->valuestring)) BAD("out of memory");
    }
    cJSON *sync = cJSON_GetObjectItemCaseSensitive(ej, "sync");
    if (!sync) e->mode = SYNC_ALL;
    else if (cJSON_IsString(sync)) {
      const char *s = sync->valuestring;
      if (!strcmp(s, "all")) e->mode = SYNC_ALL;
      else if (!strcmp(s, "nothing-clear")) e->mode = SYNC_NOTHING_CLEAR;
      else if (!strcmp(s, "nothing-preserve")) e->mode = SYNC_NOTHING_PRESERVE;
      else if (!strcmp(s, "never")) e->mode = SYNC_NEVER;
      else BAD("%s: sync: unknown mode '%s' (all, {where}, nothing-clear, nothing-preserve, never)", en, s);
    } else if (cJSON_IsObject(sync) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(sync, "where"))) {
      e->mode = SYNC_WHERE;
      if (!(e->where = dup(cJSON_GetObjectItemCaseSensitive(sync, "where")->valuestring))) BAD("out of memory");
    } else {
      BAD("%s: sync: a mode name or { \"where\": \"…\" } is required", en);
    }
  }
  /* Associations point at entities that exist and that travel with them. */
  for (int i = 0; i < m->nentities; i++) {
    ferry__entity *e = &m->entities[i];
    for (int k = 0; k < e->nattrs; k++) {
      if (e->attrs[k].type != FT_ASSOC) continue;
      const ferry__entity *t = ferry__model_entity(m, e->attrs[k].target);
      if (!t) BAD("%s: association %s: target entity %s does not exist", e->name, e->attrs[k].name, e->attrs[k].target);
      if (e->mode != SYNC_NEVER && t->mode == SYNC_NEVER)
        BAD("%s: association %s: a synced entity cannot reference %s, which is never synced", e->name, e->attrs[k].name, t->name);
    }
  }
  cJSON_Delete(root);
  *out = m;
  return FERRY_OK;
fail:
  cJSON_Delete(root);
  ferry__model_free(m);
  return err[0] && strcmp(err, "out of memory") == 0 ? FERRY_NOMEM : FERRY_MODEL;
}
