/* The sync engine against an in-memory server that can misbehave. */
#include "check.h"
#include "cJSON.h"
#include "store.h"
#include "sync.h"
#include "sqlite3.h"
#include "util.h"

static const char *MODEL_V1 =
  "{\"version\":\"1\",\"entities\":{"
  "\"Region\":{\"attributes\":{\"name\":\"string\"},\"sync\":\"all\"},"
  "\"Customer\":{\"attributes\":{\"name\":\"string\",\"credit\":\"decimal\",\"active\":\"boolean\",\"n\":\"integer\",\"photo\":\"binary\"},"
  "  \"associations\":{\"region\":\"Region\"},\"sync\":\"all\"},"
  "\"Feedback\":{\"attributes\":{\"text\":\"string\"},\"sync\":\"nothing-clear\"},"
  "\"Draft\":{\"attributes\":{\"text\":\"string\"},\"sync\":\"never\"}}}";
static const char *MODEL_V2 =
  "{\"version\":\"2\",\"entities\":{"
  "\"Region\":{\"attributes\":{\"name\":\"string\",\"code\":\"string\"},\"sync\":\"all\"},"
  "\"Customer\":{\"attributes\":{\"name\":\"string\",\"credit\":\"decimal\",\"active\":\"boolean\",\"n\":\"integer\",\"photo\":\"binary\"},"
  "  \"associations\":{\"region\":\"Region\"},\"sync\":\"all\"},"
  "\"Feedback\":{\"attributes\":{\"text\":\"string\"},\"sync\":\"nothing-clear\"},"
  "\"Draft\":{\"attributes\":{\"text\":\"string\"},\"sync\":\"never\"}}}";

/* The fake server: a model, canned pull pages, and a log of pushes. */
typedef struct fake {
  const char *model;
  const char *model_version;
  const char *region_page;      /* reply to a Region pull with cursor 0 */
  const char *customer_page;
  const char *ids_page;         /* reply to any pull by ids */
  int fail_mode;                /* 0 ok, 1 HTTP 500, 2 truncated, 3 HTML, 4 unreachable, 5 lose reply after apply */
  const char *fail_path;        /* which path fails ("/push", "/pull") */
  int conflict_attr;            /* answer pushes with a conflict on "name" */
  int pushes;
  cJSON *last_push;
  int64_t applied_mids[64]; int napplied;
  int64_t version;
} fake;

static char *copy(const char *s, size_t *n) { *n = strlen(s); char *d = malloc(*n + 1); memcpy(d, s, *n + 1); return d; }

static int fake_request(void *ctx, const ferry_request *req, int *status, char **resp, size_t *n) {
  fake *f = ctx;
  *status = 200;
  if (f->fail_mode && f->fail_path && strcmp(req->path, f->fail_path) == 0 && f->fail_mode != 5) {
    switch (f->fail_mode) {
      case 1: *status = 500; *resp = copy("{\"error\":\"internal\",\"message\":\"boom\"}", n); return 0;
      case 2: *resp = copy("{\"results\":[{\"mid\":1,\"sta", n); if (strcmp(req->path, "/pull") == 0) { free(*resp); *resp = copy("{\"entity\":\"Region\",\"objects\":[{\"id\":\"r", n); } return 0;
      case 3: *resp = copy("<html><body>502 Bad Gateway</body></html>", n); return 0;
      case 4: *status = 0; *resp = NULL; *n = 0; return 0;
    }
  }
  if (strcmp(req->path, "/model") == 0) { *resp = copy(f->model, n); return 0; }
  if (strcmp(req->path, "/push") == 0) {
    cJSON *body = cJSON_Parse(req->body);
    cJSON_Delete(f->last_push);
    f->last_push = body;
    f->pushes++;
    cJSON *out = cJSON_CreateObject(), *results = cJSON_AddArrayToObject(out, "results"), *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(body, "mutations")) {
      int64_t mid = (int64_t)cJSON_GetObjectItem(m, "mid")->valuedouble;
      int seen = 0;
      for (int i = 0; i < f->napplied; i++) if (f->applied_mids[i] == mid) seen = 1;
      if (!seen && f->napplied < 64) f->applied_mids[f->napplied++] = mid;
      cJSON *r = cJSON_CreateObject();
      cJSON_AddNumberToObject(r, "mid", (double)mid);
      const char *ent = cJSON_GetObjectItem(m, "entity")->valuestring;
      if (strcmp(ent, "Draft") == 0) {
        cJSON_AddStringToObject(r, "status", "rejected");
        cJSON_AddStringToObject(r, "reason", "Draft is never synced");
      } else if (f->conflict_attr) {
        cJSON_AddStringToObject(r, "status", "conflict");
        cJSON_AddNumberToObject(r, "version", (double)++f->version);
        cJSON *attrs = cJSON_AddArrayToObject(r, "attrs");
        cJSON_AddItemToArray(attrs, cJSON_CreateString("name"));
        cJSON *server = cJSON_AddObjectToObject(r, "server");
        cJSON_AddStringToObject(server, "name", "server name");
      } else {
        cJSON_AddStringToObject(r, "status", "applied");
        cJSON_AddNumberToObject(r, "version", (double)++f->version);
      }
      cJSON_AddItemToArray(results, r);
    }
    *resp = cJSON_PrintUnformatted(out);
    *n = strlen(*resp);
    cJSON_Delete(out);
    if (f->fail_mode == 5 && f->fail_path && strcmp(f->fail_path, "/push") == 0) {
      f->fail_mode = 0;   /* applied, but the reply never arrives */
      free(*resp); *resp = NULL; *n = 0; *status = 0;
    }
    return 0;
  }
  if (strcmp(req->path, "/pull") == 0) {
    cJSON *body = cJSON_Parse(req->body);
    const char *ent = cJSON_GetObjectItem(body, "entity")->valuestring;
    const char *mv = cJSON_GetObjectItem(body, "modelVersion")->valuestring;
    double cursor = cJSON_GetObjectItem(body, "cursor") ? cJSON_GetObjectItem(body, "cursor")->valuedouble : -1;
    static char buf[65536];   /* pages up to a few hundred objects */
    if (f->model_version && strcmp(mv, f->model_version) != 0) {
      *status = 409;
      snprintf(buf, sizeof buf, "{\"error\":\"model_changed\",\"modelVersion\":\"%s\"}", f->model_version);
    } else if (cJSON_GetObjectItem(body, "ids") && f->ids_page) {
      snprintf(buf, sizeof buf, "%s", f->ids_page);
    } else if (strcmp(ent, "Region") == 0 && cursor == 0 && f->region_page) {
      snprintf(buf, sizeof buf, "%s", f->region_page);
    } else if (strcmp(ent, "Customer") == 0 && cursor == 0 && f->customer_page) {
      snprintf(buf, sizeof buf, "%s", f->customer_page);
    } else {
      snprintf(buf, sizeof buf, "{\"entity\":\"%s\",\"objects\":[],\"removed\":[],\"cursor\":%g,\"more\":false}", ent, cursor < 0 ? 0 : cursor);
    }
    cJSON_Delete(body);
    *resp = copy(buf, n);
    return 0;
  }
  *status = 404;
  *resp = copy("{\"error\":\"not_found\"}", n);
  return 0;
}

typedef struct client { ferry_db *db; ferry_sync *sync; fake srv; ferry_transport t; } client;

static int client_open(client *c) {
  memset(c, 0, sizeof *c);
  ferry_store *m = NULL;
  static int n;
  char name[32];
  snprintf(name, sizeof name, "sync%d", ++n);
  if (ferry_store_memory_open(&m) != FERRY_OK || ferry_db_open(&c->db, name, m) != FERRY_OK) return 0;
  if (ferry_sync_open(&c->sync, c->db) != FERRY_OK) { fprintf(stderr, "%s\n", ferry_sync_errmsg(c->sync)); return 0; }
  c->srv.model = MODEL_V1;
  c->srv.version = 100;
  c->t.request_cb = fake_request;
  c->t.ctx = &c->srv;
  return 1;
}
static void client_close(client *c) {
  ferry_sync_close(c->sync);
  ferry_db_close(c->db);
  cJSON_Delete(c->srv.last_push);
}
static int run(client *c) { return ferry_sync_run(c->sync, NULL, 0, &c->t); }
static int64_t pending(client *c) {
  cJSON *s = cJSON_Parse(ferry_sync_status(c->sync));
  int64_t n = (int64_t)cJSON_GetObjectItem(s, "pendingChanges")->valuedouble;
  cJSON_Delete(s);
  return n;
}

static void first_sync_should_create_tables_and_pull_objects(void) {
  client c;
  CHECK(client_open(&c));
  c.srv.region_page = "{\"entity\":\"Region\",\"cursor\":7,\"more\":false,\"removed\":[],\"objects\":["
    "{\"id\":\"r1\",\"version\":5,\"values\":{\"name\":\"North\"}},{\"id\":\"r2\",\"version\":7,\"values\":{\"name\":\"South\"}}]}";
  c.srv.customer_page = "{\"entity\":\"Customer\",\"cursor\":9,\"more\":false,\"objects\":["
    "{\"id\":\"c1\",\"version\":9,\"values\":{\"name\":\"Ada\",\"credit\":\"12.50\",\"active\":true,\"n\":42,\"photo\":\"AAEC/w==\",\"region\":\"r1\"}}]}";
  CHECK_RC(run(&c), FERRY_OK);
  char buf[64];
  CHECK(query_int(c.db, "SELECT count(*) FROM Region") == 2);
  CHECK(strcmp(query_text(c.db, "SELECT credit FROM Customer", buf, sizeof buf), "12.50") == 0);
  CHECK(query_int(c.db, "SELECT active FROM Customer") == 1);
  CHECK(query_int(c.db, "SELECT n FROM Customer") == 42);
  CHECK(strcmp(query_text(c.db, "SELECT hex(photo) FROM Customer", buf, sizeof buf), "000102FF") == 0);
  CHECK(query_int(c.db, "SELECT cursor FROM _ferry_cursor WHERE entity='Region'") == 7);
  /* pulled data is not an outgoing change */
  CHECK(pending(&c) == 0);
  CHECK(query_int(c.db, "SELECT count(*) FROM sqlite_schema WHERE name='Draft'") == 1);
  client_close(&c);
}

static void local_writes_should_be_captured_and_pushed_once(void) {
  client c;
  CHECK(client_open(&c));
  CHECK_RC(run(&c), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "INSERT INTO Customer(id, name, credit, active) VALUES ('c1', 'Ada', '1.10', 1)"), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "UPDATE Customer SET name = 'Ada L' WHERE id = 'c1'"), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "INSERT INTO Customer(name) VALUES ('auto id')"), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "INSERT INTO Draft(text) VALUES ('device only')"), FERRY_OK);
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer WHERE length(id) = 32") == 1);
  CHECK(pending(&c) == 2);
  CHECK_RC(run(&c), FERRY_OK);
  CHECK(pending(&c) == 0);
  cJSON *muts = cJSON_GetObjectItem(c.srv.last_push, "mutations");
  CHECK(cJSON_GetArraySize(muts) == 2);   /* insert + update coalesced; the Draft never leaves */
  cJSON *m = cJSON_GetArrayItem(muts, 0);
  CHECK(strcmp(cJSON_GetObjectItem(m, "op")->valuestring, "upsert") == 0);
  CHECK(strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "values"), "name")->valuestring, "Ada L") == 0);
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "values"), "active")));
  CHECK(query_int(c.db, "SELECT version FROM _ferry_base WHERE oid='c1'") > 100);
  int pushes = c.srv.pushes;
  CHECK_RC(run(&c), FERRY_OK);
  CHECK(c.srv.pushes == pushes);   /* nothing left to push */
  /* an update of one attribute sends just that attribute, with its base */
  CHECK_RC(exec_sql(c.db, "UPDATE Customer SET credit = '2.00' WHERE id = 'c1'"), FERRY_OK);
  CHECK_RC(run(&c), FERRY_OK);
  m = cJSON_GetArrayItem(cJSON_GetObjectItem(c.srv.last_push, "mutations"), 0);
  CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(m, "values")) == 1);
  CHECK(cJSON_GetObjectItem(m, "base")->valuedouble > 100);
  CHECK_RC(exec_sql(c.db, "DELETE FROM Customer WHERE id = 'c1'"), FERRY_OK);
  CHECK_RC(run(&c), FERRY_OK);
  m = cJSON_GetArrayItem(cJSON_GetObjectItem(c.srv.last_push, "mutations"), 0);
  CHECK(strcmp(cJSON_GetObjectItem(m, "op")->valuestring, "delete") == 0);
  /* the device remembers the tombstone's version: re-creating the id is based on it */
  CHECK(query_int(c.db, "SELECT version FROM _ferry_base WHERE oid='c1'") == c.srv.version);
  client_close(&c);
}

static void lost_push_reply_should_resend_the_same_mutation_id(void) {
  client c;
  CHECK(client_open(&c));
  CHECK_RC(run(&c), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "INSERT INTO Region(id, name) VALUES ('r9', 'East')"), FERRY_OK);
  c.srv.fail_mode = 5; c.srv.fail_path = "/push";
  CHECK_RC(run(&c), FERRY_SYNC_NETWORK);
  CHECK(pending(&c) == 1);          /* not known to be applied: still pending */
  int64_t first = c.srv.applied_mids[0];
  CHECK_RC(run(&c), FERRY_OK);
  CHECK(c.srv.napplied == 1);       /* the retry carried the same mid */
  CHECK(c.srv.applied_mids[0] == first);
  CHECK(pending(&c) == 0);
  client_close(&c);
}

static void bad_replies_should_fail_with_sync_codes_and_lose_nothing(void) {
  struct { int mode; const char *path; int want; } cases[] = {
    { 1, "/push", FERRY_SYNC_SERVER }, { 2, "/push", FERRY_SYNC_PROTOCOL }, { 3, "/push", FERRY_SYNC_PROTOCOL },
    { 4, "/push", FERRY_SYNC_NETWORK }, { 1, "/pull", FERRY_SYNC_SERVER }, { 2, "/pull", FERRY_SYNC_PROTOCOL },
    { 3, "/pull", FERRY_SYNC_PROTOCOL }, { 4, "/pull", FERRY_SYNC_NETWORK },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    client c;
    CHECK(client_open(&c));
    CHECK_RC(run(&c), FERRY_OK);
    CHECK_RC(exec_sql(c.db, "INSERT INTO Region(id, name) VALUES ('r1', 'local')"), FERRY_OK);
    if (strcmp(cases[i].path, "/pull") == 0) CHECK_RC(run(&c), FERRY_OK);   /* pushed; now break the pull */
    CHECK_RC(exec_sql(c.db, "UPDATE Region SET name = 'edited' WHERE id = 'r1'"), FERRY_OK);
    c.srv.fail_mode = cases[i].mode; c.srv.fail_path = cases[i].path;
    c.srv.region_page = NULL;
    CHECK_RC(run(&c), cases[i].want);
    CHECK(strlen(ferry_sync_errmsg(c.sync)) > 0);
    char buf[64];
    CHECK(strcmp(query_text(c.db, "SELECT name FROM Region WHERE id='r1'", buf, sizeof buf), "edited") == 0);
    if (strcmp(cases[i].path, "/push") == 0) CHECK(pending(&c) == 1);
    c.srv.fail_mode = 0;
    CHECK_RC(run(&c), FERRY_OK);    /* and the next sync works */
    CHECK(pending(&c) == 0);
    client_close(&c);
  }
}

static void wrong_types_in_a_pull_page_should_apply_nothing(void) {
  client c;
  CHECK(client_open(&c));
  /* One object per transaction: the bad one is the page's last, so only a
   * check of the whole page before its first slice keeps "ok" out. */
  CHECK_RC(ferry_sync_set_apply_slice(c.sync, 1), FERRY_OK);
  c.srv.customer_page = "{\"entity\":\"Customer\",\"cursor\":9,\"more\":false,\"objects\":["
    "{\"id\":\"ok\",\"version\":8,\"values\":{\"name\":\"fine\"}},"
    "{\"id\":\"bad\",\"version\":9,\"values\":{\"name\":\"x\",\"n\":\"not a number\"}}]}";
  CHECK_RC(run(&c), FERRY_SYNC_PROTOCOL);
  CHECK(strstr(ferry_sync_errmsg(c.sync), "attribute n") != NULL);
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer") == 0);
  CHECK(query_int(c.db, "SELECT count(*) FROM _ferry_cursor WHERE entity='Customer'") == 0);
  client_close(&c);
}

static void a_pull_page_checked_in_slices_should_apply_nothing_when_a_late_object_is_not_json(void) {
  client c;
  CHECK(client_open(&c));
  /* Checked three objects at a time: the first check step finds nothing
   * wrong, the second finds the sixth object broken inside its braces,
   * which the feed's scan of the page's structure does not look into. */
  CHECK_RC(ferry_sync_set_apply_slice(c.sync, 1), FERRY_OK);
  c.srv.customer_page = "{\"entity\":\"Customer\",\"cursor\":9,\"more\":false,\"objects\":["
    "{\"id\":\"c1\",\"version\":5,\"values\":{\"name\":\"a\"}},{\"id\":\"c2\",\"version\":6,\"values\":{\"name\":\"b\"}},"
    "{\"id\":\"c3\",\"version\":7,\"values\":{\"name\":\"c\"}},{\"id\":\"c4\",\"version\":8,\"values\":{\"name\":\"d\"}},"
    "{\"id\":\"c5\",\"version\":9,\"values\":{\"name\":\"e\"}},{\"id\":\"c6\",\"version\":9,\"values\":{\"name\":}}]}";
  CHECK_RC(run(&c), FERRY_SYNC_PROTOCOL);
  CHECK(strstr(ferry_sync_errmsg(c.sync), "object 5 is not JSON") != NULL);
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer") == 0);
  CHECK(query_int(c.db, "SELECT count(*) FROM _ferry_cursor WHERE entity='Customer'") == 0);
  client_close(&c);
}

static void pulled_text_with_json_punctuation_should_arrive_exactly_as_written(void) {
  client c;
  CHECK(client_open(&c));
  CHECK_RC(ferry_sync_set_apply_slice(c.sync, 1), FERRY_OK);
  /* Brackets, braces, commas and escaped quotes inside strings must not
   * move the bounds the scan finds for each object. */
  c.srv.customer_page = "{\"entity\":\"Customer\",\"objects\":[ {\"id\":\"c]1\",\"version\":5,\"values\":{\"name\":\"a}],{\\\"x\\\\\"}} ,\n"
    "{\"id\":\"c,2\",\"version\":6,\"values\":{\"name\":\"[[{\"}} ] , \"cursor\":9,\"more\":false, \"removed\":[\"gone]\"] }";
  CHECK_RC(run(&c), FERRY_OK);
  char buf[64];
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer") == 2);
  CHECK(strcmp(query_text(c.db, "SELECT name FROM Customer WHERE id = 'c]1'", buf, sizeof buf), "a}],{\"x\\") == 0);
  CHECK(strcmp(query_text(c.db, "SELECT name FROM Customer WHERE id = 'c,2'", buf, sizeof buf), "[[{") == 0);
  CHECK(query_int(c.db, "SELECT cursor FROM _ferry_cursor WHERE entity='Customer'") == 9);
  client_close(&c);
}

/* Runs the engine by hand up to the feed of the first Customer pull. */
static void feed_until_customer_pull(client *c) {
  CHECK_RC(ferry_sync_begin(c->sync, NULL, 0), FERRY_OK);
  for (;;) {
    ferry_request req;
    CHECK_RC(ferry_sync_next(c->sync, &req), FERRY_OK);
    if (!req.path) { CHECK(!"the run ended before a Customer pull"); return; }
    int status; char *resp = NULL; size_t n = 0;
    fake_request(&c->srv, &req, &status, &resp, &n);
    int customer = strcmp(req.path, "/pull") == 0 && strstr(req.body, "\"Customer\"") != NULL;
    CHECK_RC(ferry_sync_feed(c->sync, status, resp, n), FERRY_OK);
    free(resp);
    if (customer) return;
  }
}

static void a_pull_page_should_be_applied_in_slices_and_pulled_again_when_cut_between_them(void) {
  client c;
  CHECK(client_open(&c));
  CHECK_RC(ferry_sync_set_apply_slice(c.sync, 2), FERRY_OK);
  c.srv.customer_page = "{\"entity\":\"Customer\",\"cursor\":9,\"more\":false,\"removed\":[],\"objects\":["
    "{\"id\":\"c1\",\"version\":5,\"values\":{\"name\":\"a\"}},{\"id\":\"c2\",\"version\":6,\"values\":{\"name\":\"b\"}},"
    "{\"id\":\"c3\",\"version\":7,\"values\":{\"name\":\"c\"}},{\"id\":\"c4\",\"version\":8,\"values\":{\"name\":\"d\"}},"
    "{\"id\":\"c5\",\"version\":9,\"values\":{\"name\":\"e\"}}]}";
  feed_until_customer_pull(&c);
  /* The feed only scanned the page and the first step checks its objects
   * (three slices' worth); each slice is then committed on its own, so the
   * app's queries run in between. */
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer") == 0);
  int more = 0;
  CHECK_RC(ferry_sync_apply(c.sync, &more), FERRY_OK);
  CHECK(more == 1);
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer") == 0);
  CHECK_RC(ferry_sync_apply(c.sync, &more), FERRY_OK);
  CHECK(more == 1);
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer") == 2);
  CHECK_RC(ferry_sync_apply(c.sync, &more), FERRY_OK);
  CHECK(more == 1);
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer") == 4);
  CHECK(query_int(c.db, "SELECT count(*) FROM _ferry_cursor WHERE entity='Customer'") == 0);
  /* Cut before the last slice (a new run abandons the page): its cursor did
   * not move, so the next run pulls the page again; the objects applied
   * twice are unchanged. */
  CHECK_RC(run(&c), FERRY_OK);
  char buf[64];
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer") == 5);
  CHECK(query_int(c.db, "SELECT cursor FROM _ferry_cursor WHERE entity='Customer'") == 9);
  CHECK(strcmp(query_text(c.db, "SELECT name FROM Customer WHERE id = 'c2'", buf, sizeof buf), "b") == 0);
  /* A driver that never calls ferry_sync_apply gets every slice from next(). */
  CHECK(pending(&c) == 0);
  CHECK_RC(ferry_sync_apply(c.sync, &more), FERRY_OK);
  CHECK(more == 0);
  CHECK_RC(ferry_sync_set_apply_slice(c.sync, -1), FERRY_RANGE);
  client_close(&c);
}

/* Each look at the clock is a millisecond later. */
static double ticking_clock(void *arg) { double *t = arg; return *t += 1; }

static void a_step_budget_should_end_pull_steps_by_time_and_still_apply_every_object(void) {
  client c;
  CHECK(client_open(&c));
  static char page[200 * 80 + 200];
  size_t n = (size_t)snprintf(page, sizeof page, "{\"entity\":\"Customer\",\"cursor\":300,\"more\":false,\"objects\":[");
  for (int i = 0; i < 200; i++)
    n += (size_t)snprintf(page + n, sizeof page - n, "%s{\"id\":\"c%d\",\"version\":%d,\"values\":{\"name\":\"n%d\"}}", i ? "," : "", i, i + 1, i);
  snprintf(page + n, sizeof page - n, "]}");
  c.srv.customer_page = page;
  /* By objects a step would take the whole page; by time it ends at the
   * first look (every 32 objects) 2.5 ms after it began: the clock is read
   * at the start and at 32, 64, 96 objects, so a step takes 96. */
  CHECK_RC(ferry_sync_set_apply_slice(c.sync, 5000), FERRY_OK);
  double now = 0;
  CHECK_RC(ferry_sync_set_step_budget(c.sync, 2.5, ticking_clock, &now), FERRY_OK);
  feed_until_customer_pull(&c);
  int steps = 0, more = 1, rows_after_checks = -1;
  while (more) {
    CHECK_RC(ferry_sync_apply(c.sync, &more), FERRY_OK);
    if (++steps == 3) rows_after_checks = (int)query_int(c.db, "SELECT count(*) FROM Customer");
    if (steps > 20) break;
  }
  /* 96 + 96 + 8 checked, then 96 + 96 + 8 applied, then the cursor. */
  if (steps != 7) fprintf(stderr, "  %d steps: %s\n", steps, ferry_sync_errmsg(c.sync));
  CHECK(steps == 7);
  CHECK(rows_after_checks == 0);
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer") == 200);
  CHECK(query_int(c.db, "SELECT cursor FROM _ferry_cursor WHERE entity='Customer'") == 300);
  char buf[64];
  CHECK(strcmp(query_text(c.db, "SELECT name FROM Customer WHERE id = 'c199'", buf, sizeof buf), "n199") == 0);
  CHECK_RC(ferry_sync_set_step_budget(c.sync, -1, ticking_clock, &now), FERRY_RANGE);
  CHECK_RC(run(&c), FERRY_OK);
  client_close(&c);
}

static void pulled_values_should_not_overwrite_pending_attributes(void) {
  client c;
  CHECK(client_open(&c));
  CHECK_RC(run(&c), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "INSERT INTO Customer(id, name, credit) VALUES ('c1', 'Ada', '1'), ('c2', 'Bo', '2')"), FERRY_OK);
  CHECK_RC(run(&c), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "UPDATE Customer SET name = 'mine' WHERE id = 'c1'"), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "UPDATE Customer SET credit = '5' WHERE id = 'c2'"), FERRY_OK);
  /* A run that pushes nothing of Customer (only Region is selected) but pulls
   * c1 and c2 by id: the server changed both attributes of c1 and removed c2. */
  c.srv.ids_page = "{\"entity\":\"Customer\",\"objects\":["
    "{\"id\":\"c1\",\"version\":500,\"values\":{\"name\":\"theirs\",\"credit\":\"9\"}}],\"removed\":[\"c2\"]}";
  const char *filter = "{\"entities\":[\"Region\"],\"objects\":[{\"entity\":\"Customer\",\"id\":\"c1\"},{\"entity\":\"Customer\",\"id\":\"c2\"}]}";
  CHECK_RC(ferry_sync_run(c.sync, filter, strlen(filter), &c.t), FERRY_OK);
  char buf[64];
  /* selected objects are pushed first: both were sent, so nothing stayed pending */
  CHECK(pending(&c) == 0);
  /* now the same with the push failing: pending attributes survive the pull */
  CHECK_RC(exec_sql(c.db, "UPDATE Customer SET name = 'mine again' WHERE id = 'c1'"), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "INSERT OR REPLACE INTO Customer(id, name, credit) VALUES ('c2', 'Bo', '6')"), FERRY_OK);
  const char *only_ids = "{\"entities\":[\"Region\"]}";
  CHECK_RC(ferry_sync_run(c.sync, only_ids, strlen(only_ids), &c.t), FERRY_OK);   /* Customer not pushed */
  CHECK(pending(&c) == 2);
  CHECK_RC(ferry_sync_discard(c.sync, "Customer", "none"), FERRY_NOTFOUND);
  /* pull by ids through the refresh list, with the outbox intact */
  /* ferry's own bookkeeping, written behind the guard app SQL goes through. */
  CHECK_RC(sqlite3_exec(ferry_db_sqlite(c.db), "INSERT INTO _ferry_refresh VALUES ('Customer','c1'), ('Customer','c2')", NULL, NULL, NULL), SQLITE_OK);
  CHECK_RC(ferry_sync_run(c.sync, only_ids, strlen(only_ids), &c.t), FERRY_OK);
  CHECK(strcmp(query_text(c.db, "SELECT name FROM Customer WHERE id='c1'", buf, sizeof buf), "mine again") == 0);
  CHECK(strcmp(query_text(c.db, "SELECT credit FROM Customer WHERE id='c1'", buf, sizeof buf), "9") == 0);
  CHECK(query_int(c.db, "SELECT count(*) FROM Customer WHERE id='c2'") == 1);   /* pending: not removed */
  /* both are pending, so both are fetched again once their push is answered */
  CHECK(query_int(c.db, "SELECT count(*) FROM _ferry_refresh") == 2);
  CHECK(pending(&c) == 2);
  client_close(&c);
}

static void model_change_should_push_then_migrate_keeping_pending_changes(void) {
  client c;
  CHECK(client_open(&c));
  c.srv.model_version = "1";
  CHECK_RC(run(&c), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "INSERT INTO Region(id, name) VALUES ('r1', 'kept')"), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "INSERT INTO Feedback(text) VALUES ('great')"), FERRY_OK);
  c.srv.model = MODEL_V2; c.srv.model_version = "2";
  c.srv.fail_mode = 1; c.srv.fail_path = "/push";
  CHECK_RC(run(&c), FERRY_SYNC_SERVER);
  /* the server is down for pushes: nothing migrates, nothing is lost */
  CHECK(pending(&c) == 2);
  CHECK(query_int(c.db, "SELECT count(*) FROM pragma_table_info('Region') WHERE name='code'") == 0);
  c.srv.fail_mode = 0;
  CHECK_RC(run(&c), FERRY_OK);
  CHECK(pending(&c) == 0);
  CHECK(query_int(c.db, "SELECT count(*) FROM pragma_table_info('Region') WHERE name='code'") == 1);
  CHECK(query_int(c.db, "SELECT count(*) FROM Region WHERE id='r1'") == 1);
  /* nothing-clear: uploaded feedback leaves the device */
  CHECK(query_int(c.db, "SELECT count(*) FROM Feedback") == 0);
  cJSON *st = cJSON_Parse(ferry_sync_status(c.sync));
  CHECK(strcmp(cJSON_GetObjectItem(st, "modelVersion")->valuestring, "2") == 0);
  cJSON_Delete(st);
  client_close(&c);
}

static void conflicts_and_rejections_should_show_as_errors_and_retry(void) {
  client c;
  CHECK(client_open(&c));
  CHECK_RC(run(&c), FERRY_OK);
  CHECK_RC(exec_sql(c.db, "INSERT INTO Customer(id, name) VALUES ('c1', 'mine')"), FERRY_OK);
  c.srv.conflict_attr = 1;
  CHECK_RC(run(&c), FERRY_OK);
  char buf[256];
  CHECK(strcmp(query_text(c.db, "SELECT name FROM Customer WHERE id='c1'", buf, sizeof buf), "server name") == 0);
  cJSON *errs = cJSON_Parse(ferry_sync_errors(c.sync));
  CHECK(cJSON_GetArraySize(errs) == 1);
  cJSON *e = cJSON_GetArrayItem(errs, 0);
  CHECK(strcmp(cJSON_GetObjectItem(e, "kind")->valuestring, "conflict") == 0);
  CHECK(strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "local"), "name")->valuestring, "mine") == 0);
  cJSON_Delete(errs);
  CHECK(pending(&c) == 0);
  /* retry puts the local value back and queues it */
  CHECK_RC(ferry_sync_retry(c.sync, "Customer", "c1"), FERRY_OK);
  CHECK(strcmp(query_text(c.db, "SELECT name FROM Customer WHERE id='c1'", buf, sizeof buf), "mine") == 0);
  CHECK(pending(&c) == 1);
  c.srv.conflict_attr = 0;
  CHECK_RC(run(&c), FERRY_OK);
  CHECK(strcmp(ferry_sync_errors(c.sync), "[]") == 0);
  CHECK_RC(ferry_sync_retry(c.sync, "Customer", "c1"), FERRY_NOTFOUND);
  client_close(&c);
}

static void garbage_model_from_server_should_fail_cleanly(void) {
  client c;
  CHECK(client_open(&c));
  const char *bad[] = {
    "not json", "{\"version\":\"1\"}",
    "{\"version\":\"1\",\"entities\":{\"x; DROP TABLE t\":{\"attributes\":{}}}}",
    "{\"version\":\"1\",\"entities\":{\"A\":{\"attributes\":{\"a\":\"money\"}}}}",
    "{\"version\":\"1\",\"entities\":{\"A\":{\"associations\":{\"b\":\"B\"}},\"B\":{\"sync\":\"never\"}}}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    c.srv.model = bad[i];
    CHECK_RC(run(&c), FERRY_SYNC_PROTOCOL);
  }
  c.srv.model = MODEL_V1;
  CHECK_RC(run(&c), FERRY_OK);
  client_close(&c);
}

int main(void) {
  RUN(first_sync_should_create_tables_and_pull_objects);
  RUN(local_writes_should_be_captured_and_pushed_once);
  RUN(lost_push_reply_should_resend_the_same_mutation_id);
  RUN(bad_replies_should_fail_with_sync_codes_and_lose_nothing);
  RUN(wrong_types_in_a_pull_page_should_apply_nothing);
  RUN(a_pull_page_should_be_applied_in_slices_and_pulled_again_when_cut_between_them);
  RUN(a_pull_page_checked_in_slices_should_apply_nothing_when_a_late_object_is_not_json);
  RUN(pulled_text_with_json_punctuation_should_arrive_exactly_as_written);
  RUN(a_step_budget_should_end_pull_steps_by_time_and_still_apply_every_object);
  RUN(pulled_values_should_not_overwrite_pending_attributes);
  RUN(model_change_should_push_then_migrate_keeping_pending_changes);
  RUN(conflicts_and_rejections_should_show_as_errors_and_retry);
  RUN(garbage_model_from_server_should_fail_cleanly);
  return CHECK_DONE();
}
