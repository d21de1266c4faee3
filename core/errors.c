#include "ferry.h"

static const char *const codes[] = {
#define FERRY__STR(name, code, hint) code,
  FERRY_ERRORS(FERRY__STR)
#undef FERRY__STR
};
static const char *const hints[] = {
#define FERRY__HINT(name, code, hint) hint,
  FERRY_ERRORS(FERRY__HINT)
#undef FERRY__HINT
};

const char *ferry_errstr(int rc) {
  return (rc >= 0 && rc < FERRY__NCODES) ? codes[rc] : "error";
}
const char *ferry_errhint(int rc) {
  return (rc >= 0 && rc < FERRY__NCODES) ? hints[rc] : hints[FERRY_ERROR];
}
int ferry_errcount(void) { return FERRY__NCODES; }
