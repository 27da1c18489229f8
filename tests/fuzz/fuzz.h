/*
 * fuzz.h — what every fuzz target shares: a property check that stops the
 * run with both sides printed, and a reader that takes typed values off the
 * front of the fuzzer's input.
 *
 * A failed FUZZ_CHECK aborts: that is how libFuzzer learns that an input is
 * a finding, and it then saves the input as a crash artifact. Header-only,
 * included by one target per program.
 */
#ifndef FL_FUZZ_H
#define FL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints the broken property and what was seen, then aborts. */
#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: property failed: %s\n  ", __FILE__, __LINE__,   \
              #cond);                                                          \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* The input, consumed from the front. Past its end every read gives 0. */
typedef struct fuzz_input {
  const uint8_t *p;
  size_t left;
} fuzz_input;

static inline uint8_t fuzz_byte(fuzz_input *in) {
  if (!in->left) return 0;
  in->left--;
  return *in->p++;
}

static inline uint64_t fuzz_u64(fuzz_input *in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | fuzz_byte(in);
  return v;
}

/* The bytes up to the next `sep` (dropped) or the end, as a malloc'd
   NUL-terminated copy of *len bytes; NULL when out of memory. */
static inline char *fuzz_take_until(fuzz_input *in, uint8_t sep, size_t *len) {
  const uint8_t *end = memchr(in->p, sep, in->left);
  size_t n = end ? (size_t)(end - in->p) : in->left;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  memcpy(s, in->p, n);
  s[n] = '\0';
  in->p += n + (end != NULL);
  in->left -= n + (end != NULL);
  if (len) *len = n;
  return s;
}

/* The rest of the input, as fuzz_take_until gives it. */
static inline char *fuzz_take_rest(fuzz_input *in, size_t *len) {
  char *s = malloc(in->left + 1);
  if (!s) return NULL;
  memcpy(s, in->p, in->left);
  s[in->left] = '\0';
  if (len) *len = in->left;
  in->p += in->left;
  in->left = 0;
  return s;
}

/* s[0..n) for a message: printable ASCII kept, other bytes as \xNN, cut
   at 200 bytes. Returns a static buffer: one use per message. */
static inline const char *fuzz_show(const char *s, size_t n) {
  static char out[4 * 200 + 8];
  size_t o = 0;
  for (size_t i = 0; i < n && i < 200; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7F && c != '\\')
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02X", c);
  }
  if (n > 200) o += (size_t)snprintf(out + o, sizeof out - o, "...");
  out[o] = '\0';
  return out;
}

#endif
