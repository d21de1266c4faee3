/* Fuzz target: the core's incremental SHA-256 (core/sha256.h).
 *
 * Input: a byte n (0..15), then n piece sizes (one byte each), then the
 * message. The message is hashed three ways: whole in one update; in the
 * input's piece sizes, cycled (0 is an empty update); and byte by byte up
 * to a point, then the rest, on a handle reused after an earlier digest.
 * Invariant: the three digests are the same 64 lowercase hex digits. The
 * NIST vectors (tests/native/test_sha256.c) prove the digest right; this
 * proves that how the bytes arrive never shows in it. */
#include "fuzz_common.h"
#include "sha256.h"

static void hex_ok(const char *d) {
  FZ_CHECK(strlen(d) == 64 && strspn(d, "0123456789abcdef") == 64, "digest '%s' is not 64 lowercase hex digits", d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t ncuts = data[0] % 16;
  if (size < 1 + ncuts) return 0;
  const uint8_t *cuts = data + 1, *msg = data + 1 + ncuts;
  size_t n = size - 1 - ncuts;

  ferry_sha256 *h = NULL;
  char whole[65], pieces[65], bytes[65];
  FZ_CHECK(ferry_sha256_open(&h) == FERRY_OK, "open failed");
  FZ_CHECK(ferry_sha256_update(h, msg, n) == FERRY_OK, "update of %zu bytes failed", n);
  FZ_CHECK(ferry_sha256_final_hex(h, whole) == FERRY_OK, "final failed");
  hex_ok(whole);

  /* The same handle again: final reset it to the empty message. */
  int progress = 0;
  for (size_t i = 0; i < ncuts; i++) progress |= cuts[i];
  for (size_t at = 0, k = 0; at < n; k = ncuts ? (k + 1) % ncuts : 0) {
    size_t step = progress ? cuts[k] : 1;
    if (step > n - at) step = n - at;
    FZ_CHECK(ferry_sha256_update(h, msg + at, step) == FERRY_OK, "update of %zu bytes at %zu failed", step, at);
    at += step;
  }
  FZ_CHECK(ferry_sha256_final_hex(h, pieces) == FERRY_OK, "final failed");
  FZ_CHECK(strcmp(whole, pieces) == 0, "%zu bytes: whole %s, in %zu piece sizes %s", n, whole, ncuts, pieces);
  ferry_sha256_close(h);

  h = NULL;
  FZ_CHECK(ferry_sha256_open(&h) == FERRY_OK, "open failed");
  FZ_CHECK(ferry_sha256_update(h, "junk", 4) == FERRY_OK && ferry_sha256_final_hex(h, bytes) == FERRY_OK, "junk hash failed");
  size_t split = ncuts ? (size_t)cuts[0] * 4 % (n + 1) : n / 2;
  for (size_t i = 0; i < split; i++) FZ_CHECK(ferry_sha256_update(h, msg + i, 1) == FERRY_OK, "update at %zu failed", i);
  FZ_CHECK(ferry_sha256_update(h, msg + split, n - split) == FERRY_OK, "update of the rest failed");
  FZ_CHECK(ferry_sha256_final_hex(h, bytes) == FERRY_OK, "final failed");
  FZ_CHECK(strcmp(whole, bytes) == 0, "%zu bytes: whole %s, byte by byte to %zu then the rest %s", n, whole, split, bytes);
  ferry_sha256_close(h);
  return 0;
}
