/*
 * termtext.c — escaping control characters for a terminal; see termtext.h.
 */
#include "termtext.h"

#include "utf8.h"

/* How many bytes at s must be escaped (0: none), given the n available;
   *keep is set to the length of text to copy as it is otherwise. */
static size_t dangerous(const unsigned char *s, size_t n, size_t *keep) {
  unsigned char c = s[0];
  *keep = 1;
  if (c < 0x80) return (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f;
  size_t len = fl_utf8_sequence(s, n);
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
