/*
 * utf8.h — UTF-8: checking bytes as PostgreSQL's text takes them, making
 * any bytes into text that shows what they were, and the columns text
 * takes on a terminal.
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

/* The columns a terminal gives the character that starts at s (n >= 1
   bytes available), whose length is *len: 2 for East Asian wide ones and
   emoji, 0 for combining marks, else 1 (a byte that starts no character
   is one column, as terminals show a replacement). */
int fl_utf8_columns(const char *s, size_t n, size_t *len);

/* The bytes of the longest prefix of s[0..n) that fits in cols columns,
   never cutting a character; *used is the columns it takes. */
size_t fl_utf8_fit(const char *s, size_t n, int cols, int *used);

#endif
