/*
 * utf8.c — checking and repairing UTF-8; see utf8.h.
 */
#include "utf8.h"

size_t fl_utf8_sequence(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
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

int fl_utf8_text(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    /* ASCII runs, the common case, a byte at a time without the call. */
    if (*p >= 0x01 && *p < 0x80) {
      p++;
      continue;
    }
    size_t len = *p ? fl_utf8_sequence(p, (size_t)(end - p)) : 0;
    if (len == 0) return 0;
    p += len;
  }
  return 1;
}

void fl_utf8_repair(fl_buf *out, const char *s, size_t n) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  const unsigned char *plain = p; /* start of the run not yet copied */
  while (p < end) {
    size_t len = *p ? fl_utf8_sequence(p, (size_t)(end - p)) : 0;
    if (len) {
      p += len;
      continue;
    }
    fl_buf_add(out, (const char *)plain, (size_t)(p - plain));
    char esc[4] = {'\\', 'x', digits[*p >> 4], digits[*p & 15]};
    fl_buf_add(out, esc, sizeof esc);
    plain = ++p;
  }
  fl_buf_add(out, (const char *)plain, (size_t)(p - plain));
}
