/*
 * test_sha256.c — SHA-256 against the FIPS 180-4 examples (NIST's
 * "SHA256.pdf" example values: one block, two blocks, a million 'a'), the
 * empty message, and the same digests fed in uneven pieces.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sha256.h"

static const char abc_hex[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char two_blocks[] =
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char two_blocks_hex[] =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";

static void test_fips_examples(void) {
  char hex[65];
  fl_sha256_hex("abc", 3, hex);
  CHECK_EQ_STR(hex, abc_hex);
  fl_sha256_hex(two_blocks, strlen(two_blocks), hex);
  CHECK_EQ_STR(hex, two_blocks_hex);
  fl_sha256_hex("", 0, hex);
  CHECK_EQ_STR(hex,
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_million_a(void) {
  size_t n = 1000000;
  char *a = malloc(n);
  CHECK(a != NULL);
  if (!a) return;
  memset(a, 'a', n);
  char hex[65];
  fl_sha256_hex(a, n, hex);
  CHECK_EQ_STR(hex,
               "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  free(a);
}

/* Lengths around the padding edges (55, 56, 63, 64 bytes), fed one byte
   at a time and whole, give the same digest. */
static void test_pieces_match_whole(void) {
  char msg[130];
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (char)('a' + i % 26);
  static const size_t lens[] = {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128};
  for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
    char whole[65], pieces[65];
    fl_sha256_hex(msg, lens[k], whole);
    fl_sha256 c;
    unsigned char d[32];
    fl_sha256_init(&c);
    for (size_t i = 0; i < lens[k]; i++) fl_sha256_update(&c, msg + i, 1);
    fl_sha256_final(&c, d);
    for (int i = 0; i < 32; i++)
      snprintf(pieces + 2 * i, 3, "%02x", d[i]);
    CHECK_EQ_STR(pieces, whole);
  }
  /* 56 bytes: the length no longer fits in the first padded block. */
  char hex[65];
  fl_sha256_hex(two_blocks, 56, hex);
  CHECK_EQ_STR(hex, two_blocks_hex);
}

int main(void) {
  RUN(test_fips_examples);
  RUN(test_million_a);
  RUN(test_pieces_match_whole);
  return check_summary();
}
