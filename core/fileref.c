/* File references (see fileref.h): checked and written in one canonical form. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cJSON.h"
#include "ferry.h"
#include "fileref.h"

#define MAX_SAFE 9007199254740991.0

static int say(char *out, size_t cap, const char *why) {
  if (cap) snprintf(out, cap, "%s", why);
  return FERRY_TYPE;
}

static int short_text(const cJSON *v) {
  if (!cJSON_IsString(v)) return 0;
  size_t n = strlen(v->valuestring);
  if (n > 255) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v->valuestring[i];
    if (c < 0x20 || c == 0x7f) return 0;
  }
  return 1;
}

int ferry_file_ref_canon(const char *in, size_t len, char *out, size_t cap) {
  if (!out || cap < 2) return FERRY_MISUSE;
  out[0] = 0;
  if (!in) return say(out, cap, "a file reference is a JSON object {hash, size, type, name}");
  /* cJSON would cut a string at an escaped NUL: the name would change silently. */
  if (memchr(in, 0, len) || memmem(in, len, "\\u0000", 6)) return say(out, cap, "a file reference cannot hold U+0000");
  cJSON *root = cJSON_ParseWithLength(in, len);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return say(out, cap, "a file reference is a JSON object {hash, size, type, name}");
  }
  const cJSON *hash = NULL, *size = NULL, *type = NULL, *name = NULL, *it;
  int rc = FERRY_OK;
  const char *why = NULL;
  cJSON_ArrayForEach(it, root) {
    const cJSON **slot = strcmp(it->string, "hash") == 0 ? &hash : strcmp(it->string, "size") == 0 ? &size
                       : strcmp(it->string, "type") == 0 ? &type : strcmp(it->string, "name") == 0 ? &name : NULL;
    if (!slot) { why = "a file reference has only the keys hash, size, type and name"; break; }
    if (*slot) { why = "a file reference names each key once"; break; }
    *slot = it;
  }
  if (!why) {
    if (!cJSON_IsString(hash) || strlen(hash->valuestring) != 64 || strspn(hash->valuestring, "0123456789abcdef") != 64)
      why = "a file reference's hash is the SHA-256 of the bytes in 64 lowercase hex digits";
    else if (!cJSON_IsNumber(size) || size->valuedouble < 0 || size->valuedouble > MAX_SAFE || size->valuedouble != floor(size->valuedouble))
      why = "a file reference's size is a whole number of bytes";
    else if (!short_text(type)) why = "a file reference's type is a media type of at most 255 bytes (or \"\")";
    else if (!short_text(name)) why = "a file reference's name is at most 255 bytes without control characters (or \"\")";
  }
  if (why) {
    rc = say(out, cap, why);
  } else {
    cJSON *c = cJSON_CreateObject();
    char num[32];
    snprintf(num, sizeof num, "%.0f", size->valuedouble);
    cJSON_AddStringToObject(c, "hash", hash->valuestring);
    cJSON_AddItemToObject(c, "size", cJSON_CreateRaw(num));
    cJSON_AddStringToObject(c, "type", type->valuestring);
    cJSON_AddStringToObject(c, "name", name->valuestring);
    char *p = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!p) rc = FERRY_NOMEM;
    else if (strlen(p) + 1 > cap) rc = FERRY_MISUSE;
    else memcpy(out, p, strlen(p) + 1);
    cJSON_free(p);
  }
  cJSON_Delete(root);
  return rc;
}
