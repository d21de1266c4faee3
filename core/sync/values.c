/* Values between SQLite columns and the protocol's JSON (docs/PROTOCOL.md,
 * value encoding): the one place that encodes and decodes them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sync_internal.h"
#include "fileref.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64_encode(const unsigned char *p, size_t n) {
  char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    *o++ = b64[v >> 18 & 63];
    *o++ = b64[v >> 12 & 63];
    *o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
    *o++ = i + 2 < n ? b64[v & 63] : '=';
  }
  *o = 0;
  return out;
}

/* Decodes base64 (padding optional); returns NULL on invalid input. */
static unsigned char *base64_decode(const char *s, size_t *outlen) {
  size_t n = strlen(s);
  while (n && s[n - 1] == '=') n--;
  if (n % 4 == 1) return NULL;
  unsigned char *out = malloc(n * 3 / 4 + 1);
  if (!out) return NULL;
  uint32_t acc = 0; int bits = 0; size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    const char *c = strchr(b64, s[i]);
    if (!s[i] || !c) { free(out); return NULL; }
    acc = acc << 6 | (uint32_t)(c - b64);
    bits += 6;
    if (bits >= 8) { bits -= 8; out[o++] = (unsigned char)(acc >> bits); }
  }
  *outlen = o;
  return out;
}

/* ---- values -------------------------------------------------------------- */

/* cJSON prints numbers with 15 digits when they compare equal within a
 * relative epsilon, which rounds integers near 2^53: integers are printed
 * exactly as raw JSON instead. */
static cJSON *integer_json(int64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", (long long)v);
  return cJSON_CreateRaw(buf);
}

/* The JSON value of column `col` of a row, encoded for attribute type t. */
cJSON *ferry__sync_column_json(sqlite3_stmt *st, int col, ferry__type t) {
  int ct = sqlite3_column_type(st, col);
  if (ct == SQLITE_NULL) return cJSON_CreateNull();
  switch (t) {
    case FT_INTEGER:
      if (ct == SQLITE_INTEGER) return integer_json(sqlite3_column_int64(st, col));
      if (ct == SQLITE_FLOAT) return cJSON_CreateNumber(sqlite3_column_double(st, col));
      break;
    case FT_BOOLEAN:
      if (ct == SQLITE_INTEGER || ct == SQLITE_FLOAT) return cJSON_CreateBool(sqlite3_column_double(st, col) != 0);
      break;
    case FT_FILE:
      /* The reference travels as the object it is; anything else as it is stored, for the server to judge. */
      if (ct == SQLITE_TEXT) {
        char canon[FERRY_FILE_REF_MAX];
        if (ferry_file_ref_canon((const char *)sqlite3_column_text(st, col), (size_t)sqlite3_column_bytes(st, col), canon, sizeof canon) == FERRY_OK)
          return cJSON_Parse(canon);
      }
      break;
    case FT_BINARY: {
      const void *p = sqlite3_column_blob(st, col);
      char *enc = base64_encode(p, (size_t)sqlite3_column_bytes(st, col));
      cJSON *v = enc ? cJSON_CreateString(enc) : NULL;
      free(enc);
      return v;
    }
    default:
      break;
  }
  /* Text, or a value of the wrong type: sent as it is, for the server to judge. */
  if (ct == SQLITE_INTEGER && t != FT_STRING) return integer_json(sqlite3_column_int64(st, col));
  if (ct == SQLITE_FLOAT && t != FT_STRING && t != FT_DECIMAL) return cJSON_CreateNumber(sqlite3_column_double(st, col));
  return cJSON_CreateString((const char *)sqlite3_column_text(st, col));
}

/* Binds JSON value v (of attribute type t) to parameter i; FERRY_SYNC_PROTOCOL when it does not fit. */
int ferry__sync_bind_json(sqlite3_stmt *st, int i, const cJSON *v, ferry__type t) {
  if (!v || cJSON_IsNull(v)) return sqlite3_bind_null(st, i) == SQLITE_OK ? FERRY_OK : FERRY_NOMEM;
  switch (t) {
    case FT_INTEGER:
      if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > FERRY__MAX_SAFE_INTEGER) return FERRY_SYNC_PROTOCOL;
      sqlite3_bind_int64(st, i, (sqlite3_int64)v->valuedouble);
      return FERRY_OK;
    case FT_BOOLEAN:
      if (cJSON_IsBool(v)) { sqlite3_bind_int(st, i, cJSON_IsTrue(v)); return FERRY_OK; }
      if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) { sqlite3_bind_int(st, i, v->valuedouble != 0); return FERRY_OK; }
      return FERRY_SYNC_PROTOCOL;
    case FT_DECIMAL:
      if (cJSON_IsNumber(v)) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
        sqlite3_bind_text(st, i, buf, -1, SQLITE_TRANSIENT);
        return FERRY_OK;
      }
      break;
    case FT_FILE: {
      if (!cJSON_IsObject(v)) return FERRY_SYNC_PROTOCOL;
      char *text = cJSON_PrintUnformatted(v);
      char canon[FERRY_FILE_REF_MAX];
      int ok = text && ferry_file_ref_canon(text, strlen(text), canon, sizeof canon) == FERRY_OK;
      cJSON_free(text);
      if (!ok) return FERRY_SYNC_PROTOCOL;
      sqlite3_bind_text(st, i, canon, -1, SQLITE_TRANSIENT);
      return FERRY_OK;
    }
    case FT_BINARY: {
      if (!cJSON_IsString(v)) return FERRY_SYNC_PROTOCOL;
      size_t n = 0;
      unsigned char *bytes = base64_decode(v->valuestring, &n);
      if (!bytes) return FERRY_SYNC_PROTOCOL;
      sqlite3_bind_blob(st, i, bytes, (int)n, free);
      return FERRY_OK;
    }
    default:
      break;
  }
  if (!cJSON_IsString(v)) return FERRY_SYNC_PROTOCOL;
  sqlite3_bind_text(st, i, v->valuestring, -1, SQLITE_TRANSIENT);
  return FERRY_OK;
}


/* ferry_check(entity_attr, type, value): the capture triggers call it for
 * every attribute a local write sets, so a value that could not travel as it
 * is (a string with U+0000 or a blob in a string attribute, an integer beyond
 * +-(2^53-1), which JSON numbers cannot carry exactly) is refused when it is
 * written, not altered on the way. */
static void fn_check(sqlite3_context *c, int argc, sqlite3_value **argv) {
  (void)argc;
  const char *name = (const char *)sqlite3_value_text(argv[0]);
  int t = sqlite3_value_int(argv[1]);
  sqlite3_value *v = argv[2];
  int vt = sqlite3_value_type(v);
  const char *why = NULL;
  int code = SQLITE_MISMATCH;
  char canon[FERRY_FILE_REF_MAX], detail[FERRY_FILE_REF_MAX + 64];   /* a file reference's refusal names it */
  switch (t) {
    case FT_INTEGER:
      if (vt == SQLITE_INTEGER) {
        sqlite3_int64 n = sqlite3_value_int64(v);
        if (n > (sqlite3_int64)FERRY__MAX_SAFE_INTEGER || n < -(sqlite3_int64)FERRY__MAX_SAFE_INTEGER) {
          why = "is an integer beyond +-(2^53-1), which sync cannot carry exactly";
          code = SQLITE_RANGE;
        }
      } else if (vt == SQLITE_BLOB) {
        why = "is an integer attribute; a blob cannot be stored in it";
      }
      break;
    case FT_BINARY:
      break;
    case FT_FILE:
      /* Only a reference in its canonical form, so what is stored is what travels. */
      if (vt != SQLITE_NULL) {
        const char *in = vt == SQLITE_TEXT ? (const char *)sqlite3_value_text(v) : NULL;
        size_t n = in ? (size_t)sqlite3_value_bytes(v) : 0;
        if (!in) why = "is a file attribute: it holds a file reference (use db.files.put), not bytes or numbers";
        else if (ferry_file_ref_canon(in, n, canon, sizeof canon) != FERRY_OK) {
          snprintf(detail, sizeof detail, "is not a file reference: %s", canon);
          why = detail;
        } else if (strlen(canon) != n || memcmp(canon, in, n) != 0) {
          snprintf(detail, sizeof detail, "holds a file reference only in its canonical form: %s", canon);
          why = detail;
        }
      }
      break;
    default:
      if (vt == SQLITE_BLOB) why = "is a text attribute; a blob (Uint8Array) cannot be stored in it";
      else if (vt == SQLITE_TEXT && (size_t)sqlite3_value_bytes(v) != strlen((const char *)sqlite3_value_text(v)))
        why = "cannot hold the character U+0000";
      break;
  }
  if (!why) { sqlite3_result_null(c); return; }
  char *msg = sqlite3_mprintf("%s %s", name ? name : "attribute", why);
  sqlite3_result_error(c, msg ? msg : "value refused", -1);
  sqlite3_result_error_code(c, code);
  sqlite3_free(msg);
}

static int ferry__values_register_digest(sqlite3 *sq);

int ferry__values_register(sqlite3 *sq) {
  int rc = sqlite3_create_function(sq, "ferry_check", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_check, NULL, NULL);
  return rc == SQLITE_OK ? ferry__values_register_digest(sq) : rc;
}

/* ---- digests: what a device holds vs what the server holds ---------------
 * ferry_digest(id, types, v1, v2, ...) (aggregate) and ferry_row_hash(...)
 * (scalar) hash objects in one canonical form that both sides compute from
 * their own storage: the client's typed columns and the server's (booleans
 * 0/1, binaries as base64 text). `types` has one digit per value, the
 * ferry__type of each attribute, in the order of the attribute names. */

typedef struct digest { uint64_t sum, count; } digest;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) { h ^= c[i]; h *= 0x100000001b3ull; }
  return h;
}

static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t hash_value(uint64_t h, int t, sqlite3_value *v) {
  int vt = sqlite3_value_type(v);
  char buf[32];
  if (vt == SQLITE_NULL) return fnv(h, "N", 2);
  switch (t) {
    case FT_INTEGER:
      if (vt == SQLITE_INTEGER || (vt == SQLITE_FLOAT && sqlite3_value_double(v) == floor(sqlite3_value_double(v)))) {
        snprintf(buf, sizeof buf, "I%lld", (long long)sqlite3_value_int64(v));
        return fnv(h, buf, strlen(buf) + 1);
      }
      break;
    case FT_BOOLEAN:
      if (vt == SQLITE_INTEGER || vt == SQLITE_FLOAT) return fnv(h, sqlite3_value_double(v) != 0 ? "B1" : "B0", 3);
      break;
    case FT_FILE:
      break;   /* canonical text on both sides: hashed as text */
    case FT_BINARY: {
      h = fnv(h, "Y", 1);
      if (vt == SQLITE_TEXT) {
        size_t n = 0;
        unsigned char *bytes = base64_decode((const char *)sqlite3_value_text(v), &n);
        if (bytes) { h = fnv(h, bytes, n); free(bytes); return fnv(h, "", 1); }
      }
      const void *p = sqlite3_value_blob(v);
      return fnv(fnv(h, p, (size_t)sqlite3_value_bytes(v)), "", 1);
    }
    default:
      break;
  }
  const unsigned char *txt = sqlite3_value_text(v);
  h = fnv(h, "T", 1);
  return fnv(fnv(h, txt, (size_t)sqlite3_value_bytes(v)), "", 1);
}

static int row_hash(int argc, sqlite3_value **argv, uint64_t *out) {
  if (argc < 2 || sqlite3_value_type(argv[0]) == SQLITE_NULL) return 0;
  const char *types = (const char *)sqlite3_value_text(argv[1]);
  if (!types || (int)strlen(types) != argc - 2) return -1;
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv(h, sqlite3_value_text(argv[0]), (size_t)sqlite3_value_bytes(argv[0]) + 1);
  for (int i = 2; i < argc; i++) h = hash_value(h, types[i - 2] - '0', argv[i]);
  *out = mix(h);
  return 1;
}

static void fn_row_hash(sqlite3_context *c, int argc, sqlite3_value **argv) {
  uint64_t h;
  int r = row_hash(argc, argv, &h);
  if (r < 0) { sqlite3_result_error(c, "ferry_row_hash(id, types, values...): one type digit per value", -1); return; }
  if (r == 0) { sqlite3_result_null(c); return; }
  char buf[20];
  snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  sqlite3_result_text(c, buf, -1, SQLITE_TRANSIENT);
}

static void fn_digest_step(sqlite3_context *c, int argc, sqlite3_value **argv) {
  digest *d = sqlite3_aggregate_context(c, sizeof *d);
  if (!d) { sqlite3_result_error_nomem(c); return; }
  uint64_t h;
  int r = row_hash(argc, argv, &h);
  if (r < 0) { sqlite3_result_error(c, "ferry_digest(id, types, values...): one type digit per value", -1); return; }
  if (r == 1) { d->sum += h; d->count++; }
}

static void fn_digest_final(sqlite3_context *c) {
  digest *d = sqlite3_aggregate_context(c, 0);
  char buf[48];
  snprintf(buf, sizeof buf, "%llu:%016llx", (unsigned long long)(d ? d->count : 0), (unsigned long long)(d ? d->sum : 0));
  sqlite3_result_text(c, buf, -1, SQLITE_TRANSIENT);
}

static int ferry__values_register_digest(sqlite3 *sq) {
  int rc = sqlite3_create_function(sq, "ferry_row_hash", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_row_hash, NULL, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(sq, "ferry_digest", -1, SQLITE_UTF8, NULL, NULL, fn_digest_step, fn_digest_final);
  return rc;
}

int ferry__sync_is_count(const cJSON *v) {
  return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= FERRY__MAX_SAFE_INTEGER && v->valuedouble == floor(v->valuedouble);
}
