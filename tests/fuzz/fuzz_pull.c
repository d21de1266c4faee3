/* Fuzz target: the input is the server's reply (HTTP 200) to a pull, applied
 * on a device that has synced rows and local edits made while the sync runs.
 *
 * The input answers the pulls of the entity it names ("entity"; the first
 * pull if it names none or is not JSON), up to four times while it says
 * "more"; the other entities get an empty page. It is applied twice: to the
 * pulls by cursor of a full sync, then to the pull by ids of a selective
 * sync (db.sync({ objects })), in slices of one to three objects.
 *
 * Invariants: the database passes integrity_check after every reply; a
 * reply that fails changes nothing at all and fails as sync_protocol (at
 * once, or at the end of the run once the other entities synced); no
 * reply touches a pending change: the outbox stays as it was and every value
 * a pending change protects is still there. */
#include "fuzz_common.h"

static const char *input_entity(const uint8_t *data, size_t size, char *buf, size_t n) {
  buf[0] = 0;
  cJSON *root = cJSON_ParseWithLength((const char *)data, size);
  const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "entity"));
  if (e) snprintf(buf, n, "%s", e);
  cJSON_Delete(root);
  return buf;
}

static char *empty_page(const ferry_request *req) {
  cJSON *b = cJSON_ParseWithLength(req->body, req->body_len);
  const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "entity"));
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(b, "cursor");
  char *page = c ? fz_printf("{\"entity\":\"%s\",\"cursor\":%.17g,\"more\":false,\"objects\":[],\"removed\":[]}", e ? e : "", c->valuedouble)
                 : fz_printf("{\"entity\":\"%s\",\"objects\":[],\"removed\":[]}", e ? e : "");
  cJSON_Delete(b);
  return page;
}

/* Runs the pulls of one sync run whose first request is in *req. */
static void pulls(fz *f, ferry_request *req, const uint8_t *data, size_t size, const char *pass,
                  const fz_str *outbox0, const fz_str *protected0) {
  char target[80];
  input_entity(data, size, target, sizeof target);
  int fed = 0, first = 1, failed = 0;
  for (int round = 0; round < 16 && req->path; round++) {
    FZ_CHECK(strcmp(req->path, "/pull") == 0, "%s: a pull run asked for %s", pass, req->path);
    const char *entity = fz_pull_entity(req);
    int mine = target[0] ? strcmp(entity, target) == 0 : first;
    first = 0;
    int rc;
    if (mine && fed < 4) {
      fed++;
      fz_str before = {0}, after = {0};
      fz_dump(f, &before);
      int had_message = ferry_sync_errmsg(f->sync)[0] != 0;
      rc = ferry_sync_feed(f->sync, 200, (const char *)data, size);
      /* The page is checked, then applied, in steps: a bad one may fail at
       * any of them, and still before any of it applies. */
      for (int more = 1; rc == FERRY_OK && more;) rc = ferry_sync_apply(f->sync, &more);
      /* A bad page of one entity may be set aside (FERRY_OK) while the
       * others sync: its message tells it failed. */
      int page_failed = rc != FERRY_OK || (!had_message && ferry_sync_errmsg(f->sync)[0]);
      fz_note(pass, page_failed && rc == FERRY_OK ? FERRY_SYNC_PROTOCOL : rc, ferry_sync_errmsg(f->sync));
      fz_integrity(f, pass);
      if (page_failed) {
        failed = 1;
        FZ_CHECK(rc == FERRY_OK || rc == FERRY_SYNC_PROTOCOL, "%s: a bad pull reply failed with %s, not sync_protocol: %s",
                 pass, ferry_errstr(rc), ferry_sync_errmsg(f->sync));
        FZ_CHECK(ferry_sync_errmsg(f->sync)[0], "%s: a failed pull has no message", pass);
        fz_dump(f, &after);
        /* This holds for "does not advance its cursor" too, which fails
         * after its page applied: that page was applied before and applying
         * the same page again changes nothing. */
        FZ_CHECK(fz_same(&before, &after), "%s: a pull reply that failed (%s) changed the database", pass, ferry_sync_errmsg(f->sync));
      }
      fz_free(&before); fz_free(&after);
    } else {
      char *page = empty_page(req);
      rc = ferry_sync_feed(f->sync, 200, page, strlen(page));
      free(page);
      FZ_CHECK(rc == FERRY_OK, "%s: an empty page for %s failed (%s): %s", pass, entity, ferry_errstr(rc), ferry_sync_errmsg(f->sync));
    }
    if (rc != FERRY_OK) break;
    rc = ferry_sync_next(f->sync, req);
    if (rc != FERRY_OK) {
      FZ_CHECK(failed && rc == FERRY_SYNC_PROTOCOL, "%s: next failed (%s) though no page did: %s", pass, ferry_errstr(rc), ferry_sync_errmsg(f->sync));
      break;
    }
  }
  fz_str outbox = {0}, protected = {0};
  fz_outbox(f, &outbox, 1);
  fz_protected(f, &protected);
  FZ_CHECK(fz_same(outbox0, &outbox), "%s: a pull changed the outbox\nbefore:\n%s\nafter:\n%s", pass, fz_text(outbox0), fz_text(&outbox));
  FZ_CHECK(fz_same(protected0, &protected), "%s: a pull overwrote values with pending changes\nbefore:\n%s\nafter:\n%s",
           pass, fz_text(protected0), fz_text(&protected));
  fz_free(&outbox); fz_free(&protected);
  fz_reports(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz f;
  fz_synced(&f);
  /* Slices of one to three objects, so that small inputs are checked and
   * applied in several steps, as large pages are. */
  ferry_sync_set_apply_slice(f.sync, 1 + (int)(size % 3));
  fz_str outbox0 = {0}, protected0 = {0};

  /* A full sync: nothing is pending when it starts, so it goes straight to
   * the pulls; the edits land while the first pull is on the wire. */
  ferry_request req;
  int rc = ferry_sync_begin(f.sync, NULL, 0);
  if (rc == FERRY_OK) rc = ferry_sync_next(f.sync, &req);
  FZ_CHECK(rc == FERRY_OK && req.path && strcmp(req.path, "/pull") == 0, "set-up: the run did not start with a pull");
  fz_edit(&f);
  fz_outbox(&f, &outbox0, 1);
  fz_protected(&f, &protected0);
  pulls(&f, &req, data, size, "pull by cursor", &outbox0, &protected0);

  /* A selective sync of objects without pending changes: nothing to push,
   * one pull by ids. */
  static const char objects[] =
    "{\"objects\":[{\"entity\":\"Item\",\"id\":\"i1\"},{\"entity\":\"Item\",\"id\":\"i6\"},{\"entity\":\"Item\",\"id\":\"i9\"}]}";
  rc = ferry_sync_begin(f.sync, objects, strlen(objects));
  if (rc == FERRY_OK) rc = ferry_sync_next(f.sync, &req);
  FZ_CHECK(rc == FERRY_OK && req.path && strcmp(req.path, "/pull") == 0, "set-up: the selective run did not start with a pull (%s)",
           req.path ? req.path : ferry_sync_errmsg(f.sync));
  pulls(&f, &req, data, size, "pull by ids", &outbox0, &protected0);

  fz_free(&outbox0); fz_free(&protected0);
  fz_close(&f);
  return 0;
}
