/* A growable byte buffer (internal). */
#ifndef FERRY_BUF_H
#define FERRY_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct ferry__buf {
  uint8_t *p;
  size_t len, cap;
  int oom;               /* sticky: a failed grow makes every later append a no-op */
} ferry__buf;

int ferry__buf_reserve(ferry__buf *b, size_t extra);   /* FERRY_OK or FERRY_NOMEM */
void ferry__buf_free(ferry__buf *b);
static inline void ferry__buf_put(ferry__buf *b, const void *src, size_t n) {
  if (ferry__buf_reserve(b, n) == 0) { if (n) memcpy(b->p + b->len, src, n); b->len += n; }
}
static inline void ferry__buf_u8(ferry__buf *b, uint8_t v) { ferry__buf_put(b, &v, 1); }
/* Integers are little-endian on every target ferry builds for (x86, wasm). */
static inline void ferry__buf_u32(ferry__buf *b, uint32_t v) { ferry__buf_put(b, &v, 4); }
static inline void ferry__buf_i64(ferry__buf *b, int64_t v) { ferry__buf_put(b, &v, 8); }
static inline void ferry__buf_f64(ferry__buf *b, double v) { ferry__buf_put(b, &v, 8); }

#endif
