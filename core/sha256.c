/* SHA-256 as FIPS 180-4 defines it (sections 4.1.2, 4.2.2, 5.1.1, 5.3.3,
 * 6.2): see sha256.h. Words are read and written big-endian byte by byte,
 * so the code is the same on every host and needs no intrinsics. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "ferry.h"
#include "sha256.h"

struct ferry_sha256 {
  uint32_t state[8];
  uint64_t bytes;        /* message length so far; bytes % 64 of them wait in block */
  uint8_t block[64];
};

/* 2^64 - 1 bits is the longest message the length field can say. */
#define MAX_BYTES (UINT64_MAX >> 3)

/* 4.2.2: the first 32 bits of the fractional parts of the cube roots of the
 * first 64 primes. */
static const uint32_t K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* 5.3.3: the first 32 bits of the fractional parts of the square roots of
 * the first 8 primes. */
static const uint32_t H0[8] = {
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static void reset(ferry_sha256 *h) {
  memcpy(h->state, H0, sizeof H0);
  h->bytes = 0;
}

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

/* 6.2.2: one 512-bit block into the state. */
static void compress(uint32_t s[8], const uint8_t *p) {
  uint32_t w[64];
  for (int t = 0; t < 16; t++, p += 4)
    w[t] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], hh = s[7];
  for (int t = 0; t < 64; t++) {
    uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
    uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g; g = f; f = e; e = d + t1;
    d = c; c = b; b = a; a = t1 + t2;
  }
  s[0] += a; s[1] += b; s[2] += c; s[3] += d;
  s[4] += e; s[5] += f; s[6] += g; s[7] += hh;
}

int ferry_sha256_open(ferry_sha256 **out) {
  if (!out) return FERRY_MISUSE;
  *out = malloc(sizeof **out);
  if (!*out) return FERRY_NOMEM;
  reset(*out);
  return FERRY_OK;
}

int ferry_sha256_update(ferry_sha256 *h, const void *p, size_t n) {
  if (!h || (!p && n)) return FERRY_MISUSE;
  if ((uint64_t)n > MAX_BYTES - h->bytes) return FERRY_TOOBIG;
  const uint8_t *in = p;
  size_t fill = (size_t)(h->bytes % 64);
  h->bytes += n;
  if (fill) {
    size_t take = 64 - fill < n ? 64 - fill : n;
    memcpy(h->block + fill, in, take);
    in += take;
    n -= take;
    if (fill + take < 64) return FERRY_OK;
    compress(h->state, h->block);
  }
  /* Whole blocks straight from the caller's bytes: no copy on the long path. */
  for (; n >= 64; in += 64, n -= 64) compress(h->state, in);
  if (n) memcpy(h->block, in, n);
  return FERRY_OK;
}

int ferry_sha256_final_hex(ferry_sha256 *h, char out[65]) {
  if (!h || !out) return FERRY_MISUSE;
  /* 5.1.1: a 1 bit, zeros up to 448 mod 512 bits, the length in bits as a
   * 64-bit big-endian integer. */
  size_t fill = (size_t)(h->bytes % 64);
  uint64_t bits = h->bytes << 3;
  h->block[fill++] = 0x80;
  if (fill > 56) {
    memset(h->block + fill, 0, 64 - fill);
    compress(h->state, h->block);
    fill = 0;
  }
  memset(h->block + fill, 0, 56 - fill);
  for (int i = 0; i < 8; i++) h->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
  compress(h->state, h->block);
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) out[i * 8 + j] = hex[(h->state[i] >> (28 - 4 * j)) & 15];
  out[64] = 0;
  reset(h);
  return FERRY_OK;
}

void ferry_sha256_close(ferry_sha256 *h) { free(h); }
