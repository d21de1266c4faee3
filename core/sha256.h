/* An incremental SHA-256 (FIPS 180-4) for file bytes that stream in: the
 * browser has no incremental one (WebCrypto digests whole buffers only), so
 * the bindings hash through this one in the wasm. Portable C, no state
 * outside the handle; a handle is used by one caller at a time. */
#ifndef FERRY_SHA256_H
#define FERRY_SHA256_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_sha256 ferry_sha256;

/* Starts a hash of an empty message in a new handle at *out. The caller owns
 * the handle and releases it with ferry_sha256_close. FERRY_OK, FERRY_NOMEM
 * (*out is NULL then) or FERRY_MISUSE when out is NULL. */
int ferry_sha256_open(ferry_sha256 **out);

/* Appends the n bytes at p (owned by the caller, read during the call only;
 * p may be NULL when n is 0). FERRY_OK; FERRY_MISUSE when h is NULL or p is
 * NULL with n > 0; FERRY_TOOBIG when the message would exceed SHA-256's
 * limit of 2^64 - 1 bits (the state is unchanged then). */
int ferry_sha256_update(ferry_sha256 *h, const void *p, size_t n);

/* Writes the digest of every byte given since open (or the last final) to
 * out (caller-owned, 65 bytes): 64 lowercase hex digits and a NUL. The
 * handle is then reset to the empty message and may hash another one; it
 * still has to be closed. FERRY_OK, or FERRY_MISUSE when h or out is NULL. */
int ferry_sha256_final_hex(ferry_sha256 *h, char out[65]);

/* Releases the handle. NULL is a no-op. */
void ferry_sha256_close(ferry_sha256 *h);

#ifdef __cplusplus
}
#endif
#endif
