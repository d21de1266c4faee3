/* A selective sync: which entities and objects a run covers. */
#include <stdlib.h>
#include <string.h>
#include "sync_internal.h"

/* ---- filter ---------------------------------------------------------------- */

int ferry__sync_entity_selected(ferry_sync *s, const char *name) {
  if (!s->filtered) return 1;
  for (int i = 0; i < s->nf_entities; i++) if (strcmp(s->f_entities[i], name) == 0) return 1;
  for (int i = 0; i < s->nf_objects; i++) if (strcmp(s->f_objects[2 * i], name) == 0) return 1;
  return 0;
}

int ferry__sync_object_selected(ferry_sync *s, const char *entity, const char *id) {
  if (!s->filtered) return 1;
  for (int i = 0; i < s->nf_entities; i++) if (strcmp(s->f_entities[i], entity) == 0) return 1;
  for (int i = 0; i < s->nf_objects; i++)
    if (strcmp(s->f_objects[2 * i], entity) == 0 && strcmp(s->f_objects[2 * i + 1], id) == 0) return 1;
  return 0;
}

int ferry__sync_parse_filter(ferry_sync *s, const char *json, size_t len) {
  ferry__sync_free_filter(s);
  if (!json || !len) return FERRY_OK;
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!cJSON_IsObject(root)) { cJSON_Delete(root); return ferry__sync_fail(s, FERRY_TYPE, "the sync filter must be an object"); }
  cJSON *ents = cJSON_GetObjectItemCaseSensitive(root, "entities");
  cJSON *objs = cJSON_GetObjectItemCaseSensitive(root, "objects");
  s->verify = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "verify"));
  int rc = FERRY_OK;
  if ((ents && !cJSON_IsArray(ents)) || (objs && !cJSON_IsArray(objs))) {
    rc = ferry__sync_fail(s, FERRY_TYPE, "sync({ entities, objects }): both are arrays");
    goto done;
  }
  if (!ents && !objs) goto done;
  s->filtered = 1;
  int ne = cJSON_GetArraySize(ents), no = cJSON_GetArraySize(objs);
  if (ne > MAX_FILTER || no > MAX_FILTER) { rc = ferry__sync_fail(s, FERRY_RANGE, "at most %d entities and %d objects per selective sync", MAX_FILTER, MAX_FILTER); goto done; }
  s->f_entities = calloc((size_t)ne + 1, sizeof(char *));
  s->f_objects = calloc(2 * (size_t)no + 1, sizeof(char *));
  if (!s->f_entities || !s->f_objects) { rc = ferry__sync_fail(s, FERRY_NOMEM, "out of memory"); goto done; }
  cJSON *it;
  cJSON_ArrayForEach(it, ents) {
    if (!cJSON_IsString(it)) { rc = ferry__sync_fail(s, FERRY_TYPE, "sync({ entities }): entity names are strings"); goto done; }
    if (s->model && !ferry__model_entity(s->model, it->valuestring)) {
      rc = ferry__sync_fail(s, FERRY_NOTFOUND, "sync({ entities }): unknown entity '%s'", it->valuestring);
      goto done;
    }
    s->f_entities[s->nf_entities++] = ferry__sync_dup(it->valuestring);
  }
  cJSON_ArrayForEach(it, objs) {
    cJSON *e = cJSON_GetObjectItemCaseSensitive(it, "entity"), *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    if (!cJSON_IsString(e) || !cJSON_IsString(id)) { rc = ferry__sync_fail(s, FERRY_TYPE, "sync({ objects }): each object is { entity, id } with strings"); goto done; }
    if (s->model && !ferry__model_entity(s->model, e->valuestring)) {
      rc = ferry__sync_fail(s, FERRY_NOTFOUND, "sync({ objects }): unknown entity '%s'", e->valuestring);
      goto done;
    }
    s->f_objects[2 * s->nf_objects] = ferry__sync_dup(e->valuestring);
    s->f_objects[2 * s->nf_objects + 1] = ferry__sync_dup(id->valuestring);
    s->nf_objects++;
  }
done:
  cJSON_Delete(root);
  if (rc != FERRY_OK) ferry__sync_free_filter(s);
  return rc;
}

