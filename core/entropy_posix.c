/* The OS CSPRNG for native builds (the wasm build's comes from its host). */
#ifndef __EMSCRIPTEN__
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include "entropy.h"
#include "ferry.h"

/* For kernels or sandboxes without getrandom(2). */
static int from_urandom(unsigned char *p, size_t n) {
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FERRY_IO;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { close(fd); return FERRY_IO; }
    p += r; n -= (size_t)r;
  }
  close(fd);
  return FERRY_OK;
}

int ferry__entropy(void *buf, size_t n) {
  unsigned char *p = buf;
  while (n > 0) {
    size_t k = n < 256 ? n : 256;   /* getentropy's limit per call */
    if (getentropy(p, k) != 0) return from_urandom(p, n);
    p += k; n -= k;
  }
  return FERRY_OK;
}
#endif
