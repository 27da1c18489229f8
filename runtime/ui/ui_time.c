/*
 * ui_time.c — ISO 8601 UTC times of the API's filters (ui_time.h).
 *
 * One form only, the API's own: a filter that accepted local times or
 * other zones would list runs from a different window than the one the
 * caller meant, silently. A date that does not exist is refused by
 * converting it back and comparing, not by a table of month lengths.
 */
#define _DEFAULT_SOURCE /* timegm */
#include <string.h>
#include <time.h>

#include "ui_time.h"

/* n decimal digits at s into *out; 0, or -1 when one is not a digit. */
static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

int fl_ui_parse_time(const char *s, double *out) {
  int y, mo, d, h, mi, sec, ms = 0;
  if (!s || strlen(s) < 20) return -1;
  if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
      s[7] != '-' || digits(s + 8, 2, &d) || s[10] != 'T' ||
      digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
      s[16] != ':' || digits(s + 17, 2, &sec))
    return -1;
  const char *p = s + 19;
  if (*p == '.') { /* 1 to 3 digits: milliseconds at most, as written */
    int n = 0;
    while (n < 4 && p[1 + n] >= '0' && p[1 + n] <= '9') n++;
    if (n == 0 || n > 3 || digits(p + 1, n, &ms)) return -1;
    for (int k = n; k < 3; k++) ms *= 10;
    p += 1 + n;
  }
  if (strcmp(p, "Z") != 0) return -1;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
    return -1;
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                  .tm_hour = h, .tm_min = mi, .tm_sec = sec};
  time_t t = timegm(&tm);
  struct tm back;
  if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != d ||
      back.tm_mon != mo - 1)
    return -1; /* February 30 became March 2 */
  *out = (double)t + ms / 1000.0;
  return 0;
}
