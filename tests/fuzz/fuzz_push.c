/* Fuzz target: the input is the server's reply (HTTP 200) to a push of the
 * device's pending changes (see fz_edit: mutations 1-7 in outbox order:
 * Item i2, i3, i4 (delete), i5, Tag t2, Note n2, Log l1).
 *
 * Invariants: integrity_check passes; a reply that fails changes nothing at
 * all (outbox, rows, versions, errors) and fails as sync_protocol; a reply
 * that applies only ever removes outbox rows it answered, never adds or
 * alters one; the rest of the run (served well) completes. */
#include "fuzz_common.h"

/* Answers every later push with "applied", every pull with an empty page,
 * and a model fetch (a reply may name another model version) with the
 * fixed model. */
static char *serve_rest(void *ctx, const ferry_request *req) {
  int64_t *version = ctx;
  if (strcmp(req->path, "/model") == 0) return fz_printf("%s", FZ_MODEL);
  if (strcmp(req->path, "/pull") == 0) {
    const char *e = fz_pull_entity(req);
    return fz_printf("{\"entity\":\"%s\",\"cursor\":100,\"more\":false,\"objects\":[],\"removed\":[]}", e);
  }
  if (strcmp(req->path, "/push") != 0) return NULL;
  cJSON *b = cJSON_ParseWithLength(req->body, req->body_len), *m;
  fz_str out = {0};
  fz_puts(&out, "{\"results\":[");
  cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(b, "mutations")) {
    char *r = fz_printf("%s{\"mid\":%.17g,\"status\":\"applied\",\"version\":%lld}", out.p[out.len - 1] == '[' ? "" : ",",
                        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "mid")), (long long)++*version);
    fz_puts(&out, r);
    free(r);
  }
  fz_puts(&out, "]}");
  cJSON_Delete(b);
  return out.p;
}

/* 1 if every line of `small` is a line of `big` (both in seq order). */
static int outbox_subset(const fz_str *small, const fz_str *big) {
  const char *b = big->p ? big->p : "";
  for (const char *s = small->p ? small->p : ""; *s;) {
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) + 1 : strlen(s);
    int found = 0;
    while (*b && !found) {
      const char *bl = strchr(b, '\n');
      size_t bn = bl ? (size_t)(bl - b) + 1 : strlen(b);
      found = bn == n && memcmp(b, s, n) == 0;
      b += bn;
    }
    if (!found) return 0;
    s += n;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz f;
  fz_synced(&f);
  fz_edit(&f);
  ferry_request req;
  int rc = ferry_sync_begin(f.sync, NULL, 0);
  if (rc == FERRY_OK) rc = ferry_sync_next(f.sync, &req);
  FZ_CHECK(rc == FERRY_OK && req.path && strcmp(req.path, "/push") == 0, "set-up: the run did not start with a push");

  /* After the push was built: its mutation ids are in the outbox now. */
  fz_str before = {0}, outbox0 = {0};
  fz_dump(&f, &before);
  fz_outbox(&f, &outbox0, 1);
  rc = ferry_sync_feed(f.sync, 200, (const char *)data, size);
  fz_note("push", rc, ferry_sync_errmsg(f.sync));
  fz_integrity(&f, "push reply");
  fz_str after = {0}, outbox = {0};
  fz_outbox(&f, &outbox, 1);
  if (rc != FERRY_OK) {
    FZ_CHECK(rc == FERRY_SYNC_PROTOCOL, "a bad push reply failed with %s, not sync_protocol: %s", ferry_errstr(rc), ferry_sync_errmsg(f.sync));
    FZ_CHECK(ferry_sync_errmsg(f.sync)[0], "a failed push has no message");
    FZ_CHECK(fz_same(&outbox0, &outbox), "a push reply that failed (%s) changed the outbox\nbefore:\n%s\nafter:\n%s",
             ferry_sync_errmsg(f.sync), fz_text(&outbox0), fz_text(&outbox));
    fz_dump(&f, &after);
    FZ_CHECK(fz_same(&before, &after), "a push reply that failed (%s) changed the database", ferry_sync_errmsg(f.sync));
  } else {
    FZ_CHECK(outbox_subset(&outbox, &outbox0), "a push reply added or altered pending changes\nbefore:\n%s\nafter:\n%s", fz_text(&outbox0), fz_text(&outbox));
    fz_reports(&f);
    /* The rest of the run, against a well-behaved server. */
    int64_t version = 1000;
    for (int round = 0; round < 32; round++) {
      rc = ferry_sync_next(f.sync, &req);
      FZ_CHECK(rc == FERRY_OK, "next after a good push failed (%s): %s", ferry_errstr(rc), ferry_sync_errmsg(f.sync));
      if (!req.path) break;
      char *body = serve_rest(&version, &req);
      FZ_CHECK(body != NULL, "the run asked for %s", req.path);
      rc = ferry_sync_feed(f.sync, 200, body, strlen(body));
      free(body);
      FZ_CHECK(rc == FERRY_OK, "a good reply to %s failed after the fuzzed push (%s): %s", req.path, ferry_errstr(rc), ferry_sync_errmsg(f.sync));
      fz_integrity(&f, "rest of the run");
    }
    FZ_CHECK(req.path == NULL, "the run did not finish");
  }
  fz_reports(&f);
  fz_free(&before); fz_free(&after); fz_free(&outbox0); fz_free(&outbox);
  fz_close(&f);
  return 0;
}
