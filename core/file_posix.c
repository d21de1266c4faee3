/* POSIX files for the log store (native builds; the wasm build gets its
 * files from JavaScript, see bindings/). */
#ifndef __EMSCRIPTEN__
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "store.h"

typedef struct posix_file {
  ferry_file base;
  int fd;
} posix_file;

static int err_code(void) {
  return (errno == ENOSPC || errno == EDQUOT) ? FERRY_FULL : FERRY_IO;
}

static int p_read(ferry_file *f, void *buf, size_t n, int64_t off, size_t *got) {
  int fd = ((posix_file *)f)->fd;
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, (char *)buf + done, n - done, off + (off_t)done);
    if (r < 0) { if (errno == EINTR) continue; return err_code(); }
    if (r == 0) break;
    done += (size_t)r;
  }
  *got = done;
  return FERRY_OK;
}

static int p_write(ferry_file *f, const void *buf, size_t n, int64_t off) {
  int fd = ((posix_file *)f)->fd;
  size_t done = 0;
  while (done < n) {
    ssize_t r = pwrite(fd, (const char *)buf + done, n - done, off + (off_t)done);
    if (r < 0) { if (errno == EINTR) continue; return err_code(); }
    done += (size_t)r;
  }
  return FERRY_OK;
}

static int p_size(ferry_file *f, int64_t *out) {
  struct stat st;
  if (fstat(((posix_file *)f)->fd, &st) != 0) return err_code();
  *out = st.st_size;
  return FERRY_OK;
}

static int p_truncate(ferry_file *f, int64_t size) {
  return ftruncate(((posix_file *)f)->fd, size) == 0 ? FERRY_OK : err_code();
}

static int p_sync(ferry_file *f) {
  return fdatasync(((posix_file *)f)->fd) == 0 ? FERRY_OK : err_code();
}

static void p_close(ferry_file *f) {
  if (!f) return;
  close(((posix_file *)f)->fd);
  free(f);
}

static const ferry_file_methods posix_methods = {
  p_read, p_write, p_size, p_truncate, p_sync, p_close
};

int ferry_file_posix_open(ferry_file **out, const char *path) {
  *out = NULL;
  posix_file *f = calloc(1, sizeof *f);
  if (!f) return FERRY_NOMEM;
  f->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (f->fd < 0) { int rc = err_code(); free(f); return rc; }
  f->base.m = &posix_methods;
  *out = &f->base;
  return FERRY_OK;
}

int ferry_store_file_open(ferry_store **out, const char *path) {
  *out = NULL;
  ferry_file *main = NULL, *log = NULL;
  int rc = ferry_file_posix_open(&main, path);
  if (rc != FERRY_OK) return rc;
  /* One writer per database file across processes; the lock dies with us. */
  if (flock(((posix_file *)main)->fd, LOCK_EX | LOCK_NB) != 0) {
    p_close(main);
    return FERRY_BUSY;
  }
  size_t n = strlen(path) + 5;
  char *lp = malloc(n);
  if (!lp) { p_close(main); return FERRY_NOMEM; }
  snprintf(lp, n, "%s-log", path);
  rc = ferry_file_posix_open(&log, lp);
  free(lp);
  if (rc != FERRY_OK) { p_close(main); return rc; }
  return ferry_store_log_open(out, main, log, 0);
}
#endif
