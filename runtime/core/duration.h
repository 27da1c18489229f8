/*
 * duration.h — the one formatter of durations, in the styles flowlua
 * shows them: `show` and logs, the HTML report, the live terminal clock.
 * Integer arithmetic where it can, so the decimal point is always '.'.
 */
#ifndef FL_DURATION_H
#define FL_DURATION_H

#include "buf.h"

typedef enum fl_duration_style {
  /* "4ms", "12.3s", "2m03s", "1h02m"; "-" when unknown (negative, NaN). */
  FL_DURATION_COMPACT,
  /* "850 µs", "4 ms", "12.3 s", "2 min 03 s", "1 h 02 min"; "?" when
     unknown. For pages people read. */
  FL_DURATION_SPACED,
  /* "0.4s", "12.3s", "2m03s", "1h02m", rounded down, a negative taken as
     0: a countdown never shows more than is left and a clock never shows
     a tenth before it has passed. */
  FL_DURATION_CLOCK,
  /* Three significant digits of seconds, "1 s", "0.25 s", and "1.500 ms"
     under a millisecond: a delay as a log line gives it. */
  FL_DURATION_SECONDS
} fl_duration_style;

/* Appends the duration of `seconds` to b in the given style. */
void fl_duration_add(fl_buf *b, double seconds, fl_duration_style style);

/*
 * Reads a duration as people write one on a command line: one or more
 * numbers, each with a unit — s, m (minutes), h, d, w — as in "30d",
 * "12h", "1d12h", "1.5h", "90s". 0 with *seconds set, or -1 with a
 * one-line reason in err (errlen bytes): no unit, an unknown unit, a
 * number that is not one, a negative or overflowing total.
 */
int fl_duration_parse(const char *s, double *seconds, char *err, size_t errlen);

#endif
