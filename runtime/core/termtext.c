/*
 * termtext.c — escaping control characters for a terminal; see termtext.h.
 */
#include "termtext.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
  if (c >= 0xc2 && c <= 0xdf)
    len = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0; /* no overlong forms */
    if (c == 0xed) hi = 0x9f; /* no surrogates */
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f; /* nothing above U+10FFFF */
  } else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  return len;
}

/* How many bytes at s must be escaped (0: none), given the n available;
   *keep is set to the length of text to copy as it is otherwise. */
static size_t dangerous(const unsigned char *s, size_t n, size_t *keep) {
  unsigned char c = s[0];
  *keep = 1;
  if (c < 0x80) return (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f;
  size_t len = utf8_sequence(s, n);
  if (len == 0) return c <= 0x9f; /* a stray byte: a C1 control or not */
  if (len == 2 && c == 0xc2 && s[1] <= 0x9f) return 2; /* U+0080-U+009F */
  *keep = len;
  return 0;
}

static void add_hex(fl_buf *out, unsigned char c) {
  static const char digits[] = "0123456789abcdef";
  char esc[4] = {'\\', 'x', digits[c >> 4], digits[c & 15]};
  fl_buf_add(out, esc, sizeof esc);
}

void fl_term_escape(fl_buf *out, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  const unsigned char *plain = p; /* start of the run not yet copied */
  while (p < end) {
    size_t keep, bad = dangerous(p, (size_t)(end - p), &keep);
    if (!bad) {
      p += keep;
      continue;
    }
    fl_buf_add(out, (const char *)plain, (size_t)(p - plain));
    for (size_t i = 0; i < bad; i++) add_hex(out, p[i]);
    p += bad;
    plain = p;
  }
  fl_buf_add(out, (const char *)plain, (size_t)(p - plain));
}

int fl_term_needs_escape(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    size_t keep;
    if (dangerous(p, (size_t)(end - p), &keep)) return 1;
    p += keep;
  }
  return 0;
}
