/* Prints bindings/dist/codes.js: the JS side of core/ferry_errors.h. */
#include <stdio.h>
#include "ferry.h"

int main(void) {
  printf("// Generated from core/ferry_errors.h by bindings/gen_codes.c; do not edit.\n");
  printf("export const codes = Object.freeze([\n");
  for (int i = 0; i < ferry_errcount(); i++)
    printf("  { rc: %d, code: \"%s\", hint: \"%s\" },\n", i, ferry_errstr(i), ferry_errhint(i));
  printf("]);\n");
  return 0;
}
