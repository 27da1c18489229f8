/*
 * duration.c — durations as text (duration.h). Each style rounds once,
 * then splits the rounded count, so "59.97 s" becomes "1m00s", never
 * "60.0s".
 */
#include "duration.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Minutes and seconds, or hours and minutes, from a rounded count of
   seconds (spaced: " min ", " s"; compact: "m", "s"). */
static void add_long(fl_buf *b, double d, int spaced, int floor_it) {
  if (d < (floor_it ? 3600.0 : 3599.5)) {
    long long s = floor_it ? (long long)d : llround(d);
    fl_buf_addf(b, spaced ? "%lld min %02lld s" : "%lldm%02llds", s / 60,
                s % 60);
  } else {
    long long m = floor_it ? (long long)(d / 60.0) : llround(d / 60.0);
    fl_buf_addf(b, spaced ? "%lld h %02lld min" : "%lldh%02lldm", m / 60,
                m % 60);
  }
}

void fl_duration_add(fl_buf *b, double d, fl_duration_style style) {
  if (style == FL_DURATION_SECONDS) {
    if (d < 0.001 && d > 0)
      fl_buf_addf(b, "%.3f ms", d * 1e3);
    else
      fl_buf_addf(b, "%.3g s", d);
    return;
  }
  if (style == FL_DURATION_CLOCK) {
    if (!(d >= 0)) d = 0;
    if (d < 60) {
      long long tenths = (long long)(d * 10);
      fl_buf_addf(b, "%lld.%llds", tenths / 10, tenths % 10);
    } else {
      add_long(b, d, 0, 1);
    }
    return;
  }
  int spaced = style == FL_DURATION_SPACED;
  if (!(d >= 0) || isinf(d)) {
    fl_buf_adds(b, spaced ? "?" : "-");
  } else if (spaced && d < 0.0009995) {
    fl_buf_addf(b, "%lld \xC2\xB5s", llround(d * 1e6));
  } else if (d < 0.9995) {
    fl_buf_addf(b, spaced ? "%lld ms" : "%lldms", llround(d * 1000.0));
  } else if (d < 59.95) {
    long long tenths = llround(d * 10.0);
    fl_buf_addf(b, spaced ? "%lld.%lld s" : "%lld.%llds", tenths / 10,
                tenths % 10);
  } else {
    add_long(b, d, spaced, 0);
  }
}

int fl_duration_parse(const char *s, double *seconds, char *err, size_t errlen) {
  double total = 0;
  const char *p = s;
  if (!*p) {
    snprintf(err, errlen, "an empty duration (write it as 30d, 12h, 1d12h)");
    return -1;
  }
  while (*p) {
    /* Digits and one '.', never a sign, an exponent or "inf" (strtod's). */
    const char *start = p;
    int dots = 0;
    while ((*p >= '0' && *p <= '9') || (*p == '.' && !dots++)) p++;
    if (p == start || (p - start == 1 && *start == '.')) {
      snprintf(err, errlen, "'%s' is not a duration: a number is expected "
                            "at '%s' (write it as 30d, 12h, 1d12h)", s, start);
      return -1;
    }
    double n = strtod(start, NULL);
    double unit;
    switch (*p) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400.0; break;
    case '\0':
      snprintf(err, errlen, "'%s' is not a duration: a unit is missing after "
                            "the last number (s, m, h, d or w)", s);
      return -1;
    default:
      snprintf(err, errlen, "'%s' is not a duration: unknown unit '%c' "
                            "(s, m, h, d or w)", s, *p);
      return -1;
    }
    p++;
    total += n * unit;
    if (!(total < 1e12)) { /* about 31,700 years: past any history */
      snprintf(err, errlen, "'%s' is too long a duration", s);
      return -1;
    }
  }
  *seconds = total;
  return 0;
}
