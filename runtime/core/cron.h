/*
 * cron.h — 5-field cron expressions and their fire times in a time zone.
 *
 * Plain C, no Lua, no allocation: a parsed expression is a few bit sets.
 *
 *   minute hour day-of-month month day-of-week
 *
 * Each field is `*`, a value, a range `a-b`, a step `*\/n`, `a-b/n` or `a/n`
 * (a to the field's end), or a comma list of those. Months may be named
 * JAN-DEC and days SUN-SAT, in any case; day-of-week is 0-7, 0 and 7 both
 * Sunday. Shortcuts: @yearly (@annually), @monthly, @weekly, @daily
 * (@midnight), @hourly.
 *
 * Days: when both day fields are restricted — anything but a bare `*`, so
 * `*\/2` is restricted — a day matches when EITHER does ("0 0 13 * FRI" fires
 * on every 13th and every Friday); otherwise it must match both. This is the
 * rule crontab(5) documents. (Vixie cron's code actually tests whether a
 * field starts with '*', so there `*\/2` counts as unrestricted.)
 *
 * Times are wall-clock minutes in a zone (tz.h); the DST policy says what
 * happens to a matching time the clocks skip or repeat.
 */
#ifndef FL_CRON_H
#define FL_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "tz.h"

typedef struct fl_cron {
  uint64_t minutes;             /* bit m: minute m, 0-59 */
  uint32_t hours;               /* bit h: hour h, 0-23 */
  uint32_t mdays;               /* bit d: day of month d, 1-31 */
  uint16_t months;              /* bit m: month m, 1-12 */
  uint8_t wdays;                /* bit w: weekday w, 0 (Sunday) - 6 */
  uint8_t mday_star, wday_star; /* the day field was a bare `*` */
} fl_cron;

/*
 * Parses expr into *out. Returns 0, or FLOWLUA_EINVAL with a one-line
 * message in err (errlen bytes, may be 0) that quotes the expression and
 * says what is wrong and where:
 *   cron '61 * * * *': field 1 (minute) '61': 61 is out of range 0-59
 *   cron '* * *': expected 5 fields, got 3
 *   cron '0 0 30 2 *': never fires: February has no day 30
 */
int fl_cron_parse(const char *expr, fl_cron *out, char *err, size_t errlen);

/* What to do with a matching local time that does not exist (the clocks
   skip it) or that happens twice (the clocks go back over it). */
typedef enum fl_dst_missing {
  FL_DST_SHIFT, /* fire once when the gap ends, for all its matching times */
  FL_DST_SKIP   /* do not fire */
} fl_dst_missing;

typedef enum fl_dst_repeated {
  FL_DST_FIRST, /* fire at the earlier of the two instants */
  FL_DST_LAST,  /* at the later one */
  FL_DST_BOTH   /* at both */
} fl_dst_repeated;

typedef struct fl_dst_policy {
  fl_dst_missing missing;
  fl_dst_repeated repeated;
} fl_dst_policy;

/* DESIGN.md's default: shift and first, so every matching day fires once. */
#define FL_DST_POLICY_DEFAULT                                                  \
  { FL_DST_SHIFT, FL_DST_FIRST }

/* "shift" / "skip" and "first" / "last" / "both". Return 0, or
   FLOWLUA_EINVAL with a message ("dst.missing must be 'shift' or 'skip',
   not 'later'"). */
int fl_dst_parse_missing(const char *s, fl_dst_missing *out, char *err,
                         size_t errlen);
int fl_dst_parse_repeated(const char *s, fl_dst_repeated *out, char *err,
                          size_t errlen);
const char *fl_dst_missing_name(fl_dst_missing m);
const char *fl_dst_repeated_name(fl_dst_repeated r);

/*
 * How far fl_cron_next looks. Every expression fl_cron_parse accepts fires
 * at least once in any 8 years (the longest is February 29, from 2096 to
 * 2104 since 2100 is not a leap year; with both day fields restricted the
 * OR rule makes "0 0 29 2 1" fire on February's Mondays every year), so
 * running out means the DST policy skipped every match.
 */
#define FL_CRON_HORIZON_YEARS 10

/*
 * The first fire instant strictly after `after` (epoch seconds) into *next.
 * Matching is on wall-clock minutes in tz (NULL: UTC). With the clocks going
 * forward, matching times in the gap fire once at the instant it ends
 * (FL_DST_SHIFT) — together with that instant's own time if it matches too
 * — or not at all (FL_DST_SKIP). With the clocks going back, a repeated
 * matching time fires per p.repeated. Returns 0; or FLOWLUA_EINVAL with a
 * message when `after` is outside [FL_TIME_MIN, FL_TIME_MAX] or nothing fires
 * within FL_CRON_HORIZON_YEARS (or before the year 10000).
 */
int fl_cron_next(const fl_cron *c, const fl_tz *tz, fl_dst_policy p,
                 int64_t after, int64_t *next, char *err, size_t errlen);

/* Whether the local wall-clock time (seconds, as in tz.h) matches. */
int fl_cron_matches(const fl_cron *c, int64_t local);

#endif
