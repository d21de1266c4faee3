/* Secure random bytes from the platform (internal). Random ids (client ids,
 * row ids) must differ across devices that start at the same moment, so
 * nothing here is derived from the clock. Natively the OS CSPRNG
 * (entropy_posix.c); in the wasm build the host supplies it from
 * crypto.getRandomValues (bindings/wasm_glue.c). */
#ifndef FERRY_ENTROPY_H
#define FERRY_ENTROPY_H

#include <stddef.h>

/* Fills buf with n fresh random bytes. FERRY_OK, or FERRY_IO when the
 * platform has no secure source (buf is then unusable). */
int ferry__entropy(void *buf, size_t n);

#endif
