/*
 * utf8.c — checking and repairing UTF-8; see utf8.h.
 */
#include "utf8.h"

#include <stdint.h>

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

/* Code points a terminal shows two columns wide (East Asian Wide and
   Fullwidth, and the emoji blocks), as wcwidth does, without the locale. */
static int wide(uint32_t c) {
  return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) ||
         (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
         (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
         (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
         (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd);
}

/* Combining marks, which take no column of their own. */
static int combining(uint32_t c) {
  return (c >= 0x0300 && c <= 0x036f) || (c >= 0x1ab0 && c <= 0x1aff) ||
         (c >= 0x1dc0 && c <= 0x1dff) || (c >= 0x20d0 && c <= 0x20ff) ||
         (c >= 0xfe20 && c <= 0xfe2f) || c == 0x200d;
}

int fl_utf8_columns(const char *s, size_t n, size_t *len) {
  const unsigned char *p = (const unsigned char *)s;
  *len = fl_utf8_sequence(p, n);
  if (*len <= 1) {
    *len = 1;
    return 1;
  }
  uint32_t c = p[0] & (0xff >> (*len + 1));
  for (size_t i = 1; i < *len; i++) c = c << 6 | (p[i] & 0x3f);
  return combining(c) ? 0 : wide(c) ? 2 : 1;
}

size_t fl_utf8_fit(const char *s, size_t n, int cols, int *used) {
  size_t at = 0;
  *used = 0;
  while (at < n) {
    size_t len;
    int w = fl_utf8_columns(s + at, n - at, &len);
    if (*used + w > cols) break;
    *used += w;
    at += len;
  }
  return at;
}
