/* A minimal test harness: TEST(name) functions registered in main via RUN. */
#ifndef FERRY_CHECK_H
#define FERRY_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failed, check_run, check_fail_total;
#define CHECK(cond) do { if (!(cond)) { \
  fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
  check_failed = 1; return; } } while (0)
#define CHECK_RC(expr, want) do { int rc_ = (expr); if (rc_ != (want)) { \
  fprintf(stderr, "  %s:%d: %s returned %d (%s), want %d (%s)\n", __FILE__, __LINE__, #expr, \
          rc_, ferry_errstr(rc_), (want), ferry_errstr(want)); \
  check_failed = 1; return; } } while (0)
#define RUN(fn) do { check_failed = 0; check_run++; fn(); \
  printf("%s %s\n", check_failed ? "FAIL" : "ok  ", #fn); \
  check_fail_total += check_failed; } while (0)
#define CHECK_DONE() (printf("%d passed, %d failed\n", check_run - check_fail_total, check_fail_total), \
  check_fail_total ? 1 : 0)
#endif
