/* The core's SHA-256 (core/sha256.h): the FIPS 180-4 / NIST example vectors,
 * messages whose padding falls on each side of a block edge, and the same
 * bytes fed in every kind of split giving the same digest (streams arrive
 * in chunks of any size, and the split must never show in the hash). */
#include <stdint.h>
#include "check.h"
#include "ferry.h"
#include "sha256.h"

static const char *const MSG448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char *const MSG896 =
  "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

/* Digest of n bytes at p fed in pieces of the sizes in cuts (cycled; 0 ends
 * the list). NULL/0 cuts feed everything at once. Writes "" on any error. */
static void digest_cut(const void *p, size_t n, const size_t *cuts, char out[65]) {
  ferry_sha256 *h = NULL;
  out[0] = 0;
  if (ferry_sha256_open(&h) != FERRY_OK) return;
  const uint8_t *b = p;
  size_t at = 0, k = 0;
  while (at < n) {
    size_t step = cuts && cuts[0] ? cuts[k] : n;
    if (cuts && cuts[0] && !cuts[++k]) k = 0;
    if (step > n - at) step = n - at;
    if (ferry_sha256_update(h, b + at, step) != FERRY_OK) { ferry_sha256_close(h); return; }
    at += step;
  }
  if (ferry_sha256_final_hex(h, out) != FERRY_OK) out[0] = 0;
  ferry_sha256_close(h);
}

static void digest_of(const void *p, size_t n, char out[65]) { digest_cut(p, n, NULL, out); }

/* A reproducible pseudo-random stream (xorshift64*), so a failure repeats. */
static uint64_t rng_state;
static uint64_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static void nist_examples_should_give_their_published_digests(void) {
  char d[65];
  digest_of("", 0, d);
  CHECK(strcmp(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
  digest_of("abc", 3, d);
  CHECK(strcmp(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
  digest_of(MSG448, strlen(MSG448), d);
  CHECK(strcmp(d, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
  digest_of(MSG896, strlen(MSG896), d);
  CHECK(strcmp(d, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1") == 0);
}

static void one_million_a_should_give_its_published_digest_however_fed(void) {
  size_t n = 1000000;
  char *a = malloc(n), d[65];
  CHECK(a);
  memset(a, 'a', n);
  static const size_t whole[] = { 0 }, ones[] = { 1, 0 }, odd[] = { 63, 64, 65, 1, 4096, 7, 0 };
  const size_t *ways[] = { whole, ones, odd };
  for (size_t w = 0; w < sizeof ways / sizeof *ways; w++) {
    digest_cut(a, n, ways[w], d);
    if (strcmp(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") != 0) {
      fprintf(stderr, "  way %zu gave %s\n", w, d);
      free(a);
      CHECK(0);
    }
  }
  free(a);
}

/* Lengths where the 0x80 byte and the 8-byte length fit in the last block,
 * only just fit, or push the padding into one more block. */
static void lengths_around_a_block_edge_should_pad_correctly(void) {
  static const struct { size_t n; const char *hex; } v[] = {
    { 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
    { 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
    { 57, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6" },
    { 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
    { 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
    { 65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
    { 111, "6374f73208854473827f6f6a3f43b1f53eaa3b82c21c1a6d69a2110b2a79baad" },
    { 112, "f54353008a2553262ecdc4a34749563ba0950e8b0fc8652780b0a614b99683c1" },
    { 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
    { 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c" },
    { 127, "c57e9278af78fa3cab38667bef4ce29d783787a2f731d4e12200270f0c32320a" },
    { 128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e" },
    { 129, "c12cb024a2e5551cca0e08fce8f1c5e314555cc3fef6329ee994a3db752166ae" },
  };
  char a[129], d[65];
  memset(a, 'a', sizeof a);
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    digest_of(a, v[i].n, d);
    if (strcmp(d, v[i].hex) != 0) fprintf(stderr, "  %zu x 'a' gave %s\n", v[i].n, d);
    CHECK(strcmp(d, v[i].hex) == 0);
  }
}

/* Every two-piece split of the vectors, and fixed piece sizes on each side
 * of the block size, give the one-piece digest. */
static void vectors_split_anywhere_should_give_the_same_digest(void) {
  const char *msgs[] = { "abc", MSG448, MSG896 };
  static const size_t sizes[][4] = { { 1, 0 }, { 2, 0 }, { 3, 0 }, { 55, 0 }, { 56, 0 }, { 63, 0 }, { 64, 0 }, { 65, 0 },
                                     { 63, 1, 0 }, { 1, 64, 0 }, { 65, 63, 0 } };
  for (size_t m = 0; m < sizeof msgs / sizeof *msgs; m++) {
    size_t n = strlen(msgs[m]);
    char want[65], got[65];
    digest_of(msgs[m], n, want);
    CHECK(want[0]);
    for (size_t cut = 0; cut <= n; cut++) {
      ferry_sha256 *h = NULL;
      CHECK_RC(ferry_sha256_open(&h), FERRY_OK);
      int rc1 = ferry_sha256_update(h, msgs[m], cut), rc2 = ferry_sha256_update(h, msgs[m] + cut, n - cut);
      int rc3 = ferry_sha256_final_hex(h, got);
      ferry_sha256_close(h);
      CHECK(rc1 == FERRY_OK && rc2 == FERRY_OK && rc3 == FERRY_OK);
      if (strcmp(got, want) != 0) fprintf(stderr, "  message %zu cut at %zu gave %s\n", m, cut, got);
      CHECK(strcmp(got, want) == 0);
    }
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
      digest_cut(msgs[m], n, sizes[s], got);
      CHECK(strcmp(got, want) == 0);
    }
  }
}

/* Random bytes of random lengths fed in random pieces (up to a few blocks:
 * 1..199 bytes) against the same bytes fed whole. */
static void random_splits_should_give_the_same_digest(void) {
  rng_state = 0x5eed5a256ULL;
  size_t cap = 20000;
  uint8_t *buf = malloc(cap);
  CHECK(buf);
  for (int round = 0; round < 300; round++) {
    size_t n = (size_t)(rng() % cap);
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)rng();
    size_t cuts[17];
    for (int k = 0; k < 16; k++) cuts[k] = (size_t)(rng() % 200);
    cuts[16] = 0;
    for (int k = 0; k < 16; k++) if (!cuts[k]) cuts[k] = 1;   /* 0 would end the list */
    char want[65], got[65];
    digest_of(buf, n, want);
    digest_cut(buf, n, cuts, got);
    if (!want[0] || strcmp(got, want) != 0) {
      fprintf(stderr, "  round %d (%zu bytes) gave %s, whole %s\n", round, n, got, want);
      free(buf);
      CHECK(0);
    }
  }
  free(buf);
}

static void final_should_reset_the_handle_for_the_next_message(void) {
  ferry_sha256 *h = NULL;
  char d[65];
  CHECK_RC(ferry_sha256_open(&h), FERRY_OK);
  CHECK_RC(ferry_sha256_update(h, MSG896, strlen(MSG896)), FERRY_OK);
  CHECK_RC(ferry_sha256_final_hex(h, d), FERRY_OK);
  CHECK_RC(ferry_sha256_update(h, "abc", 3), FERRY_OK);
  CHECK_RC(ferry_sha256_final_hex(h, d), FERRY_OK);
  int abc = strcmp(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0;
  CHECK_RC(ferry_sha256_final_hex(h, d), FERRY_OK);
  ferry_sha256_close(h);
  CHECK(abc);
  CHECK(strcmp(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
}

static void misuse_should_return_misuse_and_close_null_should_do_nothing(void) {
  ferry_sha256 *h = NULL;
  char d[65];
  CHECK_RC(ferry_sha256_open(NULL), FERRY_MISUSE);
  CHECK_RC(ferry_sha256_update(NULL, "a", 1), FERRY_MISUSE);
  CHECK_RC(ferry_sha256_final_hex(NULL, d), FERRY_MISUSE);
  CHECK_RC(ferry_sha256_open(&h), FERRY_OK);
  int rc_null_bytes = ferry_sha256_update(h, NULL, 1);
  int rc_empty = ferry_sha256_update(h, NULL, 0);
  int rc_null_out = ferry_sha256_final_hex(h, NULL);
  int rc_final = ferry_sha256_final_hex(h, d);
  ferry_sha256_close(h);
  ferry_sha256_close(NULL);
  CHECK(rc_null_bytes == FERRY_MISUSE && rc_empty == FERRY_OK && rc_null_out == FERRY_MISUSE && rc_final == FERRY_OK);
  /* The refused calls left the state alone: the empty message's digest. */
  CHECK(strcmp(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
}

int main(void) {
  RUN(nist_examples_should_give_their_published_digests);
  RUN(one_million_a_should_give_its_published_digest_however_fed);
  RUN(lengths_around_a_block_edge_should_pad_correctly);
  RUN(vectors_split_anywhere_should_give_the_same_digest);
  RUN(random_splits_should_give_the_same_digest);
  RUN(final_should_reset_the_handle_for_the_next_message);
  RUN(misuse_should_return_misuse_and_close_null_should_do_nothing);
  return CHECK_DONE();
}
