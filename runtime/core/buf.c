/* buf.c — growable byte buffer; see buf.h for the failure convention. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fl_buf_free(fl_buf *b) {
  free(b->data);
  *b = (fl_buf)FL_BUF_INIT;
}

void fl_buf_reset(fl_buf *b) {
  b->len = 0;
  b->oom = 0;
  if (b->data) b->data[0] = '\0';
}

static int reserve(fl_buf *b, size_t extra) {
  if (b->oom) return 0;
  if (b->len + extra + 1 <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 128;
  while (cap < b->len + extra + 1) {
    if (cap > ((size_t)-1) / 2) {
      b->oom = 1;
      return 0;
    }
    cap *= 2;
  }
  char *d = realloc(b->data, cap);
  if (!d) {
    b->oom = 1;
    return 0;
  }
  b->data = d;
  b->cap = cap;
  return 1;
}

int fl_buf_reserve(fl_buf *b, size_t extra) { return reserve(b, extra) ? 0 : -1; }

void fl_buf_add(fl_buf *b, const char *s, size_t n) {
  if (!reserve(b, n)) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void fl_buf_adds(fl_buf *b, const char *s) { fl_buf_add(b, s, strlen(s)); }

void fl_buf_addc(fl_buf *b, char c) { fl_buf_add(b, &c, 1); }

void fl_buf_addu(fl_buf *b, unsigned long long n) {
  char digits[20]; /* 2^64 - 1 has 20 */
  size_t i = sizeof digits;
  do digits[--i] = (char)('0' + n % 10); while (n /= 10);
  fl_buf_add(b, digits + i, sizeof digits - i);
}

void fl_buf_addvf(fl_buf *b, const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  if (n < 0) {
    va_end(again);
    return;
  }
  if ((size_t)n < sizeof small) {
    fl_buf_add(b, small, (size_t)n);
  } else if (reserve(b, (size_t)n)) {
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    b->len += (size_t)n;
  }
  va_end(again);
}

void fl_buf_addf(fl_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fl_buf_addvf(b, fmt, ap);
  va_end(ap);
}

/* Characters a JSON string cannot hold as they are (DEL is escaped too,
   for the terminal's sake, and so is 0xC2 when it leads a C1 control). */
static int needs_escape(unsigned char c) {
  return c < 0x20 || c == '"' || c == '\\' || c == 0x7f || c == 0xc2;
}

/* Whether p points at a C1 control (U+0080..U+009F) in UTF-8. */
static int is_c1_control(const unsigned char *p) {
  return p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
}

void fl_buf_add_json_string(fl_buf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  fl_buf_addc(b, '"');
  const unsigned char *p = (const unsigned char *)s;
  for (;;) {
    const unsigned char *run = p; /* copied in one go up to an escape */
    while (*p && !needs_escape(*p)) p++;
    if (p > run) fl_buf_add(b, (const char *)run, (size_t)(p - run));
    if (!*p) break;
    if (*p == 0xc2) {
      if (is_c1_control(p)) {
        char esc[6] = {'\\', 'u', '0', '0', hex[p[1] >> 4], hex[p[1] & 15]};
        fl_buf_add(b, esc, 6);
        p += 2;
      } else {
        fl_buf_addc(b, (char)*p++); /* U+00A0..U+00BF, or not UTF-8 */
      }
      continue;
    }
    switch (*p) {
    case '"': fl_buf_add(b, "\\\"", 2); break;
    case '\\': fl_buf_add(b, "\\\\", 2); break;
    case '\n': fl_buf_add(b, "\\n", 2); break;
    case '\r': fl_buf_add(b, "\\r", 2); break;
    case '\t': fl_buf_add(b, "\\t", 2); break;
    default: {
      char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
      fl_buf_add(b, esc, 6);
    }
    }
    p++;
  }
  fl_buf_addc(b, '"');
}

/* Whether c continues a UTF-8 sequence (10xxxxxx): no character starts at it. */
static int utf8_continuation(unsigned char c) { return (c & 0xc0) == 0x80; }

void fl_buf_add_bounded(fl_buf *b, const char *s, size_t n, size_t head, size_t tail) {
  if (n <= head || n - head <= tail) {
    fl_buf_add(b, s, n);
    return;
  }
  /* [0, head_end) and [tail_start, n) are kept; a cut inside a character
     drops that character rather than split it (at most 3 bytes back). */
  size_t head_end = head, tail_start = n - tail;
  for (int k = 0; k < 3 && head_end > 0 && utf8_continuation((unsigned char)s[head_end]); k++)
    head_end--;
  for (int k = 0; k < 3 && tail_start < n && utf8_continuation((unsigned char)s[tail_start]); k++)
    tail_start++;
  fl_buf_add(b, s, head_end);
  fl_buf_adds(b, "\n[\xe2\x80\xa6 ");
  fl_buf_addu(b, (unsigned long long)(tail_start - head_end));
  fl_buf_adds(b, " bytes left out \xe2\x80\xa6]\n");
  fl_buf_add(b, s + tail_start, n - tail_start);
}

void fl_buf_add_percent(fl_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      fl_buf_addc(b, (char)c);
    } else {
      char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
      fl_buf_add(b, esc, 3);
    }
  }
}

const char *fl_buf_str(fl_buf *b) { return b->data ? b->data : ""; }
