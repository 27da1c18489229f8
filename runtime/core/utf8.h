/*
 * utf8.h — UTF-8 as PostgreSQL's text takes it: checking bytes, and
 * making any bytes into text that shows what they were.
 */
#ifndef FL_UTF8_H
#define FL_UTF8_H

#include <stddef.h>

#include "buf.h"

/* The length of the well-formed UTF-8 sequence at s (at most n bytes, n
   >= 1): 1 for ASCII (NUL included), 2 to 4, or 0 when none starts there
   (a stray or overlong byte, a surrogate, past U+10FFFF, cut short). */
size_t fl_utf8_sequence(const unsigned char *s, size_t n);

/* Whether s[0..n) is well-formed UTF-8 without a NUL: what a PostgreSQL
   text value in a UTF8 database may hold. */
int fl_utf8_text(const char *s, size_t n);

/* Appends s[0..n) to out with each byte that is not part of well-formed
   UTF-8, and each NUL, written as \xNN: text that says what the bytes
   were. */
void fl_utf8_repair(fl_buf *out, const char *s, size_t n);

#endif
