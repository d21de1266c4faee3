/* Prints bindings/dist/codes.js, the JS side of core/ferry_errors.h, or with
 * --dts its TypeScript declarations (bindings/dist/codes.d.ts): one list
 * gives the C enum, the JS constants and the union type of FerryError.code. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "ferry.h"

static void upper(const char *s) {
  for (; *s; s++) putchar(toupper((unsigned char)*s));
}

static int dts(void) {
  printf("// Generated from core/ferry_errors.h by bindings/gen_codes.c; do not edit.\n\n");
  printf("/** A stable error code: FerryError's `code`. */\n");
  printf("export type FerryErrorCode =\n");
  for (int i = 0; i < ferry_errcount(); i++)
    printf("  | \"%s\"%s\n", ferry_errstr(i), i + 1 < ferry_errcount() ? "" : ";");
  printf("\n/** The stable codes by name, as `codes` exports them: codes.STORAGE_FULL === 'storage_full'. */\n");
  printf("export interface FerryCodes {\n");
  for (int i = 0; i < ferry_errcount(); i++) {
    printf("  /** %s */\n  readonly ", ferry_errhint(i));
    upper(ferry_errstr(i));
    printf(": \"%s\";\n", ferry_errstr(i));
  }
  printf("}\n\n");
  printf("/** Every code with its C return code and what to do about it. */\n");
  printf("export declare const codes: readonly { readonly rc: number; readonly code: FerryErrorCode; readonly hint: string }[];\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--dts") == 0) return dts();
  printf("// Generated from core/ferry_errors.h by bindings/gen_codes.c; do not edit.\n");
  printf("export const codes = Object.freeze([\n");
  for (int i = 0; i < ferry_errcount(); i++)
    printf("  { rc: %d, code: \"%s\", hint: \"%s\" },\n", i, ferry_errstr(i), ferry_errhint(i));
  printf("]);\n");
  return 0;
}
