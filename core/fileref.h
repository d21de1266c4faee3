/* File references: the value of a `file` attribute. The bytes of a file live
 * in the device's file storage and the server's blob store; the row holds
 * only this reference, as JSON text in one canonical form:
 *
 *   {"hash":"<SHA-256, 64 lowercase hex>","size":<bytes>,"type":"<media type>","name":"<file name>"}
 *
 * size is an integer 0..2^53-1; type and name are strings of at most 255
 * bytes without control characters (either may be ""). No other keys.
 * This is the one rule for devices (capture triggers, pull apply, digests)
 * and the server (which calls it through the same wasm). */
#ifndef FERRY_FILEREF_H
#define FERRY_FILEREF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest canonical reference: the JSON escapes of two 255-byte strings. */
#define FERRY_FILE_REF_MAX 3300

/* Checks the reference `in` (JSON text of len bytes) and writes its canonical
 * form, NUL-terminated, to out (cap bytes, FERRY_FILE_REF_MAX is enough).
 * FERRY_OK, or FERRY_TYPE with a sentence saying what is wrong in out
 * (FERRY_MISUSE when out is too small). The caller owns out. */
int ferry_file_ref_canon(const char *in, size_t len, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
