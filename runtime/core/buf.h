/*
 * buf.h — a growable byte buffer for building messages and log lines.
 *
 * Allocation failure is sticky: the buffer remembers it, later appends do
 * nothing, and fl_buf_str() still returns a valid (truncated) string, so
 * callers building text check once at the end instead of after each append.
 */
#ifndef FL_BUF_H
#define FL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct fl_buf {
  char *data;
  size_t len, cap;
  int oom;
} fl_buf;

#define FL_BUF_INIT {NULL, 0, 0, 0}

void fl_buf_free(fl_buf *b);
void fl_buf_reset(fl_buf *b); /* empty, keeps the memory */
/* Makes room for `extra` more bytes; 0, or -1 (and oom set). */
int fl_buf_reserve(fl_buf *b, size_t extra);
void fl_buf_add(fl_buf *b, const char *s, size_t n);
void fl_buf_adds(fl_buf *b, const char *s);
void fl_buf_addc(fl_buf *b, char c);
/* Appends n in decimal: the hot paths' alternative to fl_buf_addf("%u"). */
void fl_buf_addu(fl_buf *b, unsigned long long n);
/* Appends s[0..n), or, when it is longer than head + tail bytes, its first
   head bytes and its last tail bytes with "\n[… N bytes left out …]\n"
   between them; both cuts fall on UTF-8 character boundaries (the kept
   parts may be up to 3 bytes shorter). Used to bound text from outside
   (an error message) before it is stored or logged. */
void fl_buf_add_bounded(fl_buf *b, const char *s, size_t n, size_t head, size_t tail);
void fl_buf_addf(fl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fl_buf_addvf(fl_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included. */
void fl_buf_add_json_string(fl_buf *b, const char *s);
/* Appends s[0..n) percent-encoded: RFC 3986's unreserved characters
   (letters, digits, "-._~") kept, every other byte as %XX. */
void fl_buf_add_percent(fl_buf *b, const char *s, size_t n);
/* NUL-terminated contents; "" for an empty buffer. Owned by the buffer. */
const char *fl_buf_str(fl_buf *b);

#endif
