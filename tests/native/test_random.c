/* Randomness: two devices that start at the same moment must not draw the
 * same random stream (client ids and row ids come from randomblob). A fork
 * is the closest native model of two such devices: same binary, same memory
 * layout, same clock. The parent must not draw randomness before forking,
 * or the children would inherit SQLite's seeded generator. */
#include <sys/wait.h>
#include "check.h"
#include "store.h"
#include "util.h"

#define CHILDREN 4

/* In the child: a fresh memory database's hex(randomblob(16)) on fd. */
static void child_draw(int fd) {
  ferry_store *s = NULL;
  ferry_db *db = NULL;
  char hex[64] = "";
  if (ferry_store_memory_open(&s) == FERRY_OK && ferry_db_open(&db, "rnd", s) == FERRY_OK)
    query_text(db, "SELECT hex(randomblob(16))", hex, sizeof hex);
  ferry_db_close(db);
  ssize_t n = write(fd, hex, strlen(hex));
  _exit(n == (ssize_t)strlen(hex) && strlen(hex) == 32 ? 0 : 1);
}

static void processes_started_together_should_draw_different_randomblobs(void) {
  int fds[CHILDREN][2];
  pid_t pids[CHILDREN];
  for (int i = 0; i < CHILDREN; i++) {
    CHECK(pipe(fds[i]) == 0);
    pids[i] = fork();
    CHECK(pids[i] >= 0);
    if (pids[i] == 0) { close(fds[i][0]); child_draw(fds[i][1]); }
    close(fds[i][1]);
  }
  char got[CHILDREN][64];
  for (int i = 0; i < CHILDREN; i++) {
    ssize_t n = read(fds[i][0], got[i], sizeof got[i] - 1);
    close(fds[i][0]);
    got[i][n > 0 ? n : 0] = 0;
    int status = 0;
    CHECK(waitpid(pids[i], &status, 0) == pids[i]);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  for (int i = 0; i < CHILDREN; i++)
    for (int j = i + 1; j < CHILDREN; j++) {
      if (strcmp(got[i], got[j]) == 0) fprintf(stderr, "  children %d and %d both drew %s\n", i, j, got[i]);
      CHECK(strcmp(got[i], got[j]) != 0);
    }
}

int main(void) {
  /* Alone in its binary: nothing here may seed SQLite's generator before the fork. */
  RUN(processes_started_together_should_draw_different_randomblobs);
  return CHECK_DONE();
}
