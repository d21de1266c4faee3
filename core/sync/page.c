/* A pull reply, taken in steps short enough for an app's queries to run in
 * between: the feed scans the reply once for its structure and the bounds of
 * each object (and parses its small members); later steps parse and check a
 * slice of objects each, writing nothing; once every object is checked the
 * page is applied (pull.c). A bad reply is found before any of it applies,
 * so it changes nothing, though both the check and the apply go in slices. */
#include <stdlib.h>
#include <string.h>
#include "sync_internal.h"

typedef struct scan { const char *p, *end; } scan;

static int peek(const scan *sc) { return sc->p < sc->end ? (unsigned char)*sc->p : -1; }

static void skip_ws(scan *sc) {
  while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r')) sc->p++;
}

/* Moves past one JSON value, finding only where it ends: strings with their
 * escapes, brackets by depth, a number or literal up to the next delimiter.
 * What is inside is checked by cJSON when the value is parsed, so well-formed
 * JSON gets its true bounds and anything else fails here or there. 0 when
 * the value does not end. */
static int skip_value(scan *sc) {
  int depth = 0;
  do {
    int c = peek(sc);
    if (c < 0) return 0;
    if (c == '"') {
      sc->p++;
      while (sc->p < sc->end && *sc->p != '"') sc->p += *sc->p == '\\' && sc->p + 1 < sc->end ? 2 : 1;
      if (sc->p >= sc->end) return 0;
      sc->p++;
    } else if (c == '{' || c == '[') {
      depth++; sc->p++;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return 0;
      depth--; sc->p++;
    } else if (depth == 0) {
      const char *start = sc->p;
      while ((c = peek(sc)) >= 0 && c != ',' && c != ']' && c != '}' && c != ' ' && c != '\t' && c != '\n' && c != '\r') sc->p++;
      if (sc->p == start) return 0;
    } else {
      sc->p++;
    }
  } while (depth > 0);
  return 1;
}

/* The value at [p, p + n), which must be all of it; NULL when it is not JSON
 * (or out of memory). Caller owns the result. */
static cJSON *parse_span(const char *p, size_t n) {
  const char *end = NULL;
  cJSON *v = cJSON_ParseWithLengthOpts(p, n, &end, 0);
  if (v && end != p + n) { cJSON_Delete(v); v = NULL; }
  return v;
}

static int add_span(pull_page *pg, int *cap, size_t a, size_t b) {
  if (pg->count == *cap) {
    int ncap = *cap ? 2 * *cap : 256;
    size_t *sp = realloc(pg->spans, (size_t)ncap * 2 * sizeof *sp);
    if (!sp) return 0;
    pg->spans = sp;
    *cap = ncap;
  }
  pg->spans[2 * pg->count] = a;
  pg->spans[2 * pg->count + 1] = b;
  pg->count++;
  return 1;
}

/* Scans the reply in pg->body: fills pg->root with its members, each parsed
 * but "objects", which gets an empty array and pg->spans the bounds of each
 * of its elements. FERRY_SYNC_PROTOCOL (message set) when the reply is not a
 * JSON object or its "objects" not an array. */
static int scan_reply(ferry_sync *s, pull_page *pg, size_t len) {
  const char *what = "pull reply is not a JSON object";
  scan sc = { pg->body, pg->body + len };
  int cap = 0, seen_objects = 0;
  if (!(pg->root = cJSON_CreateObject())) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  skip_ws(&sc);
  if (peek(&sc) != '{') goto bad;
  sc.p++;
  skip_ws(&sc);
  if (peek(&sc) == '}') sc.p++;
  else for (;;) {
    skip_ws(&sc);
    const char *k = sc.p;
    if (peek(&sc) != '"' || !skip_value(&sc)) goto bad;
    cJSON *key = parse_span(k, (size_t)(sc.p - k));
    if (!cJSON_IsString(key)) { cJSON_Delete(key); goto bad; }
    skip_ws(&sc);
    if (peek(&sc) != ':') { cJSON_Delete(key); goto bad; }
    sc.p++;
    skip_ws(&sc);
    const char *v = sc.p;
    cJSON *item = NULL;
    if (strcmp(key->valuestring, "objects") == 0) {
      cJSON_Delete(key);
      if (seen_objects++ || peek(&sc) != '[') { what = "pull reply: objects is not one array"; goto bad; }
      sc.p++;
      skip_ws(&sc);
      if (peek(&sc) == ']') sc.p++;
      else for (;;) {
        skip_ws(&sc);
        const char *a = sc.p;
        if (!skip_value(&sc)) goto bad;
        if (!add_span(pg, &cap, (size_t)(a - pg->body), (size_t)(sc.p - pg->body))) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
        skip_ws(&sc);
        int c = peek(&sc);
        if (c != ',' && c != ']') goto bad;
        sc.p++;
        if (c == ']') break;
      }
      if (!(pg->objects = cJSON_AddArrayToObject(pg->root, "objects"))) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
    } else {
      if (!skip_value(&sc) || !(item = parse_span(v, (size_t)(sc.p - v)))) { cJSON_Delete(key); goto bad; }
      int added = cJSON_AddItemToObject(pg->root, key->valuestring, item);
      cJSON_Delete(key);
      if (!added) { cJSON_Delete(item); return ferry__sync_fail(s, FERRY_NOMEM, "out of memory"); }
    }
    skip_ws(&sc);
    int c = peek(&sc);
    if (c != ',' && c != '}') goto bad;
    sc.p++;
    if (c == '}') break;
  }
  skip_ws(&sc);
  if (sc.p == sc.end) return FERRY_OK;
bad:
  return ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "%s", what);
}

/* One object well formed and of its attributes' types; `probe` is a
 * statement to bind values to, as the apply will. */
static int check_object(ferry_sync *s, sqlite3_stmt *probe, const ferry__entity *e, const cJSON *o) {
  const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "id"));
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
  const cJSON *values = cJSON_GetObjectItemCaseSensitive(o, "values");
  if (!id || !*id || strlen(id) > 128 || !ferry__sync_is_count(ver) || !cJSON_IsObject(values))
    return ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "pull reply for %s: an object needs id, version and values", e->name);
  int rc = FERRY_OK;
  for (int k = 0; k < e->nattrs && rc == FERRY_OK; k++) {
    int b = ferry__sync_bind_json(probe, 1, cJSON_GetObjectItemCaseSensitive(values, e->attrs[k].name), e->attrs[k].type);
    if (b != FERRY_OK) rc = ferry__sync_fail(s, b, "pull reply for %s: attribute %s of %s should be %s", e->name, e->attrs[k].name, id, ferry__type_name(e->attrs[k].type));
  }
  sqlite3_clear_bindings(probe);
  return rc;
}

/* Parses and checks up to n more objects of the page in progress; once all
 * are, the copy of the reply is let go and the page is ready to apply. */
static int check_slice(ferry_sync *s, int n) {
  pull_page *pg = &s->page;
  sqlite3_stmt *probe = NULL;
  if (sqlite3_prepare_v2(s->sq, "SELECT ?", -1, &probe, NULL) != SQLITE_OK) return ferry__sync_fail_db(s, "cannot check the pull");
  int rc = FERRY_OK;
  int start = pg->checked;
  int end = n > 0 && n < pg->count - pg->checked ? pg->checked + n : pg->count;
  for (; pg->checked < end; pg->checked++) {
    if (pg->checked > start && (pg->checked - start) % STEP_CLOCK_EVERY == 0 && ferry__sync_step_spent(s)) break;
    const size_t *sp = &pg->spans[2 * pg->checked];
    cJSON *o = parse_span(pg->body + sp[0], sp[1] - sp[0]);
    if (!o) { rc = ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "pull reply for %s: object %d is not JSON", pg->e->name, pg->checked); break; }
    cJSON_AddItemToArray(pg->objects, o);
    if ((rc = check_object(s, probe, pg->e, o)) != FERRY_OK) break;
  }
  sqlite3_finalize(probe);
  if (rc == FERRY_OK && pg->checked == pg->count) {
    free(pg->body); pg->body = NULL;
    free(pg->spans); pg->spans = NULL;
    pg->item = pg->objects ? pg->objects->child : NULL;
  }
  return rc;
}

void ferry__sync_free_page(ferry_sync *s) {
  cJSON_Delete(s->page.root);
  free(s->page.body);
  free(s->page.spans);
  memset(&s->page, 0, sizeof s->page);
}

int ferry__sync_step_spent(ferry_sync *s) {
  return s->apply_slice > 0 && s->step_ms > 0 && s->clock(s->clock_arg) - s->step_t0 >= s->step_ms;
}

int ferry__sync_pull_step(ferry_sync *s) {
  pull_page *pg = &s->page;
  if (!pg->root) return FERRY_OK;
  if (s->step_ms > 0) s->step_t0 = s->clock(s->clock_arg);
  if (pg->checked < pg->count) {
    int rc = check_slice(s, s->apply_slice * CHECK_PER_APPLY);
    if (rc != FERRY_OK) { ferry__sync_free_page(s); return rc == FERRY_NOMEM ? rc : FERRY_SYNC_PROTOCOL; }
    /* Sliced, a check is a step of its own; whole pages go on to apply. */
    if (s->apply_slice > 0) return FERRY_OK;
  }
  return ferry__sync_apply_slice(s);
}

int ferry__sync_feed_pull(ferry_sync *s, const char *body, size_t len) {
  pull_target *t = &s->targets[s->cur_target];
  ferry__sync_free_page(s);
  pull_page *pg = &s->page;
  if (!(pg->body = malloc(len ? len : 1))) return ferry__sync_fail(s, FERRY_NOMEM, "out of memory");
  if (len) memcpy(pg->body, body, len);
  int rc = scan_reply(s, pg, len);
  if (rc != FERRY_OK) { ferry__sync_free_page(s); return rc; }
  const cJSON *root = pg->root;
  pg->e = t->e;
  pg->removed = cJSON_GetObjectItemCaseSensitive(root, "removed");
  pg->cursor = cJSON_GetObjectItemCaseSensitive(root, "cursor");
  pg->by_ids = t->nids > 0;
  pg->before = s->pulled + s->removed;
  const char *ent = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "entity"));
  const cJSON *more = cJSON_GetObjectItemCaseSensitive(root, "more");
  if (!ent || strcmp(ent, t->e->name) || (pg->removed && !cJSON_IsArray(pg->removed)) ||
      (!pg->by_ids && (!ferry__sync_is_count(pg->cursor) || !cJSON_IsBool(more)))) {
    ferry__sync_free_page(s);
    return ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "pull reply for %s: entity, objects, removed, cursor and more do not match the protocol", t->e->name);
  }
  const cJSON *o;
  cJSON_ArrayForEach(o, pg->removed) {
    if (!cJSON_IsString(o)) { ferry__sync_free_page(s); return ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "pull reply for %s: removed holds a non-string", t->e->name); }
  }
  pg->more = cJSON_IsTrue(more);
  if (!pg->by_ids && pg->more) {
    /* A server that keeps answering "more" from the same cursor would hold
     * the run forever: refused before anything of the page is applied. */
    int64_t c = (int64_t)pg->cursor->valuedouble;
    if (c == s->last_cursor && ++s->same_cursor > 2) {
      ferry__sync_free_page(s);
      return ferry__sync_fail(s, FERRY_SYNC_PROTOCOL, "pull of %s does not advance its cursor", t->e->name);
    }
    s->last_cursor = c;
  }
  /* Optional (a first pull of several pages): kept for the entity's later pages. */
  const cJSON *total = cJSON_GetObjectItemCaseSensitive(root, "total");
  if (ferry__sync_is_count(total)) t->total = (int64_t)total->valuedouble;
  s->page_total = t->total;
  /* Sliced, the page waits for ferry_sync_apply (or next()): the scan was
   * this call's work, a check or an apply slice is each next call's. */
  return s->apply_slice > 0 ? FERRY_OK : ferry__sync_pull_step(s);
}
