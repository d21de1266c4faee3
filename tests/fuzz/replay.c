/* Replays inputs through a fuzz target without libFuzzer, so the seed
 * corpus and every saved crash run in ctest with gcc's sanitizers. Each
 * argument is a file or a folder of files (a missing folder is skipped: a
 * target may have no regressions yet). Inputs are copied into buffers of
 * exactly their size, as libFuzzer does, so a read past the end is caught. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) { fprintf(stderr, "replay: cannot open %s\n", path); return 1; }
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0, n;
  uint8_t chunk[65536];
  while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
    if (len + n > cap) {
      cap = (len + n) * 2;
      uint8_t *p = realloc(buf, cap);
      if (!p) { fprintf(stderr, "replay: out of memory\n"); exit(1); }
      buf = p;
    }
    memcpy(buf + len, chunk, n);
    len += n;
  }
  fclose(fp);
  uint8_t *exact = malloc(len ? len : 1);
  if (!exact) { fprintf(stderr, "replay: out of memory\n"); exit(1); }
  if (len) memcpy(exact, buf, len);
  free(buf);
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
  int files = 0, failed = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) { fprintf(stderr, "replay: %s does not exist, skipped\n", argv[i]); continue; }
    if (!S_ISDIR(st.st_mode)) { failed += replay_file(argv[i]); files++; continue; }
    DIR *d = opendir(argv[i]);
    if (!d) { fprintf(stderr, "replay: cannot read %s\n", argv[i]); failed++; continue; }
    char **names = NULL;
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
      if (de->d_name[0] == '.') continue;
      char **p = realloc(names, (count + 1) * sizeof *p);
      if (!p || !(p[count] = malloc(strlen(argv[i]) + strlen(de->d_name) + 2))) { fprintf(stderr, "replay: out of memory\n"); exit(1); }
      names = p;
      sprintf(names[count++], "%s/%s", argv[i], de->d_name);
    }
    closedir(d);
    /* Sorted, so a failure names the same input on every machine. */
    qsort(names, count, sizeof *names, by_name);
    for (size_t k = 0; k < count; k++) {
      if (stat(names[k], &st) == 0 && S_ISREG(st.st_mode)) { failed += replay_file(names[k]); files++; }
      free(names[k]);
    }
    free(names);
  }
  printf("%d passed, %d failed\n", files - failed, failed);
  return failed ? 1 : 0;
}
