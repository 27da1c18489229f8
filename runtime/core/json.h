/*
 * json.h — the plain-C parts of flow.json: numbers read and written the way
 * RFC 8259 spells them, strings escaped, \u escapes turned into UTF-8, and
 * byte offsets turned into lines and columns for error messages.
 *
 * No Lua here: ljsonlib.c walks the text and the Lua values, these do the
 * character-level work, so they are unit-tested without a Lua state.
 * Nothing here depends on the C locale's decimal point.
 */
#ifndef FL_JSON_H
#define FL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Room for any number fl_json_format_* writes, NUL included. */
#define FL_JSON_NUMBER_MAX 32

/* Writes a finite double with the fewest of 15, 16 or 17 significant digits
   that read back as the same double ("0.1", not "0.10000000000000001");
   integral values have no fraction ("4", "1e+21"). NUL-terminated; returns
   the length. */
size_t fl_json_format_double(double d, char *out);

/* Writes i in decimal, NUL-terminated; returns the length. */
size_t fl_json_format_int(int64_t i, char *out);

/* Appends s[0..n) as a JSON string literal, quotes included: '"', '\' and
   the control characters below 0x20 escaped, every other byte as it is.
   Does not keep b NUL-terminated. 0, or -1 when memory ran out. */
int fl_json_add_string(fl_buf *b, const char *s, size_t n);

typedef struct fl_json_number {
  int is_int; /* no fraction, no exponent, and fits in int64 */
  int64_t i;
  double d;
} fl_json_number;

/* Reads the number that starts at p ('-' or a digit). The text must go on
   to a byte that cannot continue a number (a NUL at the end does). Returns
   the byte after the number; or NULL with *err_at set to the offending byte
   and *msg to what is wrong ("expected a digit after '.'"). */
const char *fl_json_parse_number(const char *p, fl_json_number *out,
                                 const char **err_at, const char **msg);

/* The UTF-8 form of code point cp (at most 0x10FFFF, not a surrogate) in
   out[0..3]; returns its length, 1 to 4. */
int fl_json_utf8(uint32_t cp, char *out);

/* The 1-based line and column of byte offset `off` in text. Columns count
   characters (UTF-8 sequences), not bytes; lines end at LF. */
void fl_json_position(const char *text, size_t off, size_t *line, size_t *col);

#endif
