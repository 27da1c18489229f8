/*
 * test_cron.c — cron expressions: every field form, names, shortcuts, the
 * day-of-month/day-of-week rule, every malformed expression's message, and
 * next fire times across leap days, month ends, and the 2026 clock changes
 * of Madrid, New York and Lord Howe under every DST policy.
 *
 * Expected fire times are written out by hand (weekdays and offsets checked
 * with GNU date and zdump) and compared as ISO strings with their offset.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "check.h"
#include "cron.h"
#include "flowlua.h"
#include "tz.h"

static char err[512];

/* A bit set from a list of values ended by -1. */
static uint64_t bits(const int *v) {
  uint64_t b = 0;
  for (; *v >= 0; v++) b |= UINT64_C(1) << *v;
  return b;
}
#define BITS(...) bits((const int[]){__VA_ARGS__, -1})

static uint64_t range(int lo, int hi) {
  uint64_t b = 0;
  for (int v = lo; v <= hi; v++) b |= UINT64_C(1) << v;
  return b;
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct parse_case {
  const char *expr;
  uint64_t minutes, hours, mdays, months, wdays;
  int mday_star, wday_star;
} parse_case;

static void check_parse(const parse_case *pc) {
  fl_cron c;
  int rc = fl_cron_parse(pc->expr, &c, err, sizeof err);
  CHECK_EQ_INT(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  '%s': %s\n", pc->expr, err);
    return;
  }
  int before = check_failures_;
  CHECK_EQ_INT(c.minutes, pc->minutes);
  CHECK_EQ_INT(c.hours, pc->hours);
  CHECK_EQ_INT(c.mdays, pc->mdays);
  CHECK_EQ_INT(c.months, pc->months);
  CHECK_EQ_INT(c.wdays, pc->wdays);
  CHECK_EQ_INT(c.mday_star, pc->mday_star);
  CHECK_EQ_INT(c.wday_star, pc->wday_star);
  if (check_failures_ != before) fprintf(stderr, "  in '%s'\n", pc->expr);
}

static void test_parse_field_forms(void) {
  const parse_case cases[] = {
      {"* * * * *", range(0, 59), range(0, 23), range(1, 31), range(1, 12),
       range(0, 6), 1, 1},
      {"5 4 3 2 1", BITS(5), BITS(4), BITS(3), BITS(2), BITS(1), 0, 0},
      /* ranges with steps, and steps over the whole field */
      {"0-10/3 */6 1-31/10 */4 1-5", BITS(0, 3, 6, 9), BITS(0, 6, 12, 18),
       BITS(1, 11, 21, 31), BITS(1, 5, 9), range(1, 5), 0, 0},
      /* a/n: from a to the field's end */
      {"10/15 3/5 28/2 6/3 2/2", BITS(10, 25, 40, 55),
       BITS(3, 8, 13, 18, 23), BITS(28, 30), BITS(6, 9, 12), BITS(2, 4, 6),
       0, 0},
      {"7/1 * * * *", range(7, 59), range(0, 23), range(1, 31), range(1, 12),
       range(0, 6), 1, 1},
      /* lists mixing every form */
      {"1,2-4,*/30 0,12 1,15,31 * *", BITS(0, 1, 2, 3, 4, 30), BITS(0, 12),
       BITS(1, 15, 31), range(1, 12), range(0, 6), 0, 1},
      {"59 23 31 12 6", BITS(59), BITS(23), BITS(31), BITS(12), BITS(6), 0,
       0},
      /* a step as large as the field: its first value only */
      {"*/60 */24 */31 */12 */7", BITS(0), BITS(0), BITS(1), BITS(1), BITS(0),
       0, 0},
      /* blanks of any kind and amount between fields */
      {"  0\t0  *\t*   *  ", BITS(0), BITS(0), range(1, 31), range(1, 12),
       range(0, 6), 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_parse(&cases[i]);
}

static void test_parse_names_and_sunday(void) {
  const parse_case cases[] = {
      {"0 0 * JAN,jul,Dec MON-fri", BITS(0), BITS(0), range(1, 31),
       BITS(1, 7, 12), range(1, 5), 1, 0},
      {"0 12 * feb-APR sun,SAT", BITS(0), BITS(12), range(1, 31),
       BITS(2, 3, 4), BITS(0, 6), 1, 0},
      {"0 0 * jan-dec/3 mon-sat", BITS(0), BITS(0), range(1, 31),
       BITS(1, 4, 7, 10), range(1, 6), 1, 0},
      /* 7 is Sunday too */
      {"0 0 * * 7", BITS(0), BITS(0), range(1, 31), range(1, 12), BITS(0), 1,
       0},
      {"0 0 * * 5-7", BITS(0), BITS(0), range(1, 31), range(1, 12),
       BITS(0, 5, 6), 1, 0},
      {"0 0 * * 0,7", BITS(0), BITS(0), range(1, 31), range(1, 12), BITS(0),
       1, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_parse(&cases[i]);
  /* Ranges that wrap past the field's end, as crontab users write them
     (SUN is 0, so MON-SUN wraps too); a step counts on across the wrap. */
  const parse_case wraps[] = {
      {"0 0 * * mon-sun", BITS(0), BITS(0), range(1, 31), range(1, 12),
       range(0, 6), 1, 0},
      {"0 0 * * SAT-SUN", BITS(0), BITS(0), range(1, 31), range(1, 12),
       BITS(6, 0), 1, 0},
      {"0 0 * * FRI-MON", BITS(0), BITS(0), range(1, 31), range(1, 12),
       BITS(5, 6, 0, 1), 1, 0},
      {"0 0 * * 7-2", BITS(0), BITS(0), range(1, 31), range(1, 12),
       range(0, 2), 1, 0},
      {"0 22-2 * * *", BITS(0), BITS(22, 23, 0, 1, 2), range(1, 31),
       range(1, 12), range(0, 6), 1, 1},
      {"58-1/2 * * * *", BITS(58, 0), range(0, 23), range(1, 31),
       range(1, 12), range(0, 6), 1, 1},
      {"0 0 30-2 * *", BITS(0), BITS(0), BITS(30, 31, 1, 2), range(1, 12),
       range(0, 6), 0, 1},
      /* 7 is Sunday in the day of the week only: in the day of the month
         7-1 wraps from the 7th (fuzz_cron found it read as day 0) */
      {"0 0 7-1/7 * *", BITS(0), BITS(0), BITS(7, 14, 21, 28), range(1, 12),
       range(0, 6), 0, 1},
      {"0 7-1 * * *", BITS(0), BITS(7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                                     19, 20, 21, 22, 23, 0, 1),
       range(1, 31), range(1, 12), range(0, 6), 1, 1},
      {"0 0 1 DEC-JAN *", BITS(0), BITS(0), BITS(1), BITS(12, 1),
       range(0, 6), 0, 1},
  };
  for (size_t i = 0; i < sizeof wraps / sizeof wraps[0]; i++)
    check_parse(&wraps[i]);
}

/* Only a bare `*` leaves a day field unrestricted: `*\/2` restricts it. */
static void test_parse_day_field_stars(void) {
  const parse_case cases[] = {
      {"0 0 */2 * *", BITS(0), BITS(0), BITS(1, 3, 5, 7, 9, 11, 13, 15, 17,
                                            19, 21, 23, 25, 27, 29, 31),
       range(1, 12), range(0, 6), 0, 1},
      {"0 0 * * */1", BITS(0), BITS(0), range(1, 31), range(1, 12),
       range(0, 6), 1, 0},
      {"0 0 1-31 * 0-6", BITS(0), BITS(0), range(1, 31), range(1, 12),
       range(0, 6), 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_parse(&cases[i]);
}

static void test_parse_shortcuts(void) {
  const parse_case cases[] = {
      {"@yearly", BITS(0), BITS(0), BITS(1), BITS(1), range(0, 6), 0, 1},
      {"@annually", BITS(0), BITS(0), BITS(1), BITS(1), range(0, 6), 0, 1},
      {"@monthly", BITS(0), BITS(0), BITS(1), range(1, 12), range(0, 6), 0,
       1},
      {"@weekly", BITS(0), BITS(0), range(1, 31), range(1, 12), BITS(0), 1,
       0},
      {"@daily", BITS(0), BITS(0), range(1, 31), range(1, 12), range(0, 6),
       1, 1},
      {"@midnight", BITS(0), BITS(0), range(1, 31), range(1, 12),
       range(0, 6), 1, 1},
      {"@hourly", BITS(0), range(0, 23), range(1, 31), range(1, 12),
       range(0, 6), 1, 1},
      {"  @DAILY\t", BITS(0), BITS(0), range(1, 31), range(1, 12),
       range(0, 6), 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_parse(&cases[i]);
}

typedef struct error_case {
  const char *expr, *msg;
} error_case;

static void check_errors(const error_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    fl_cron c = {.minutes = 123};
    err[0] = '\0';
    CHECK_EQ_INT(fl_cron_parse(cases[i].expr, &c, err, sizeof err),
                 FLOWLUA_EINVAL);
    CHECK_EQ_STR(err, cases[i].msg);
    CHECK_EQ_INT(c.minutes, 123); /* *out untouched on error */
  }
}

static void test_parse_errors_fields(void) {
  static const error_case cases[] = {
      {"* * *", "cron '* * *': expected 5 fields, got 3"},
      {"", "cron '': expected 5 fields, got 0"},
      {"   ", "cron '   ': expected 5 fields, got 0"},
      {"* * * * * *", "cron '* * * * * *': expected 5 fields, got 6"},
      {"0 0 * * * /bin/true",
       "cron '0 0 * * * /bin/true': expected 5 fields, got 6"},
      {"61 * * * *",
       "cron '61 * * * *': field 1 (minute) '61': 61 is out of range 0-59"},
      {"* 24 * * *",
       "cron '* 24 * * *': field 2 (hour) '24': 24 is out of range 0-23"},
      {"* * 0 * *", "cron '* * 0 * *': field 3 (day-of-month) '0': 0 is out "
                    "of range 1-31"},
      {"* * 32 * *", "cron '* * 32 * *': field 3 (day-of-month) '32': 32 is "
                     "out of range 1-31"},
      {"* * * 13 *",
       "cron '* * * 13 *': field 4 (month) '13': 13 is out of range 1-12"},
      {"* * * 0 *",
       "cron '* * * 0 *': field 4 (month) '0': 0 is out of range 1-12"},
      {"* * * * 8", "cron '* * * * 8': field 5 (day-of-week) '8': 8 is out "
                    "of range 0-7"},
      {"1-99 * * * *", "cron '1-99 * * * *': field 1 (minute) '1-99': 99 is "
                       "out of range 0-59"},
      {"99999999999 * * * *",
       "cron '99999999999 * * * *': field 1 (minute) '99999999999': "
       "99999999999 is out of range 0-59"},
  };
  check_errors(cases, sizeof cases / sizeof cases[0]);
}

static void test_parse_errors_syntax(void) {
  static const error_case cases[] = {
      {"*/0 * * * *",
       "cron '*/0 * * * *': field 1 (minute) '*/0': step must be at least 1"},
      {"0-30/0 * * * *", "cron '0-30/0 * * * *': field 1 (minute) '0-30/0': "
                         "step must be at least 1"},
      {"*/61 * * * *", "cron '*/61 * * * *': field 1 (minute) '*/61': step "
                       "61 is out of range 1-60"},
      {"* */25 * * *", "cron '* */25 * * *': field 2 (hour) '*/25': step 25 "
                       "is out of range 1-24"},
      {"*/ * * * *", "cron '*/ * * * *': field 1 (minute) '*/': missing step "
                     "number after '/'"},
      {"*/x * * * *", "cron '*/x * * * *': field 1 (minute) '*/x': missing "
                      "step number after '/'"},
      {"5- * * * *", "cron '5- * * * *': field 1 (minute) '5-': missing "
                     "value after '-'"},
      {"5-,6 * * * *", "cron '5-,6 * * * *': field 1 (minute) '5-,6': "
                       "missing value after '-'"},
      {"-5 * * * *",
       "cron '-5 * * * *': field 1 (minute) '-5': unexpected '-'"},
      {"1,,2 * * * *",
       "cron '1,,2 * * * *': field 1 (minute) '1,,2': empty item in list"},
      {"1, * * * *",
       "cron '1, * * * *': field 1 (minute) '1,': empty item in list"},
      {",1 * * * *",
       "cron ',1 * * * *': field 1 (minute) ',1': empty item in list"},
      {"5x * * * *",
       "cron '5x * * * *': field 1 (minute) '5x': unexpected 'x'"},
      {"1-5/2x * * * *",
       "cron '1-5/2x * * * *': field 1 (minute) '1-5/2x': unexpected 'x'"},
      {"** * * * *",
       "cron '** * * * *': field 1 (minute) '**': unexpected '*'"},
      {"*-5 * * * *",
       "cron '*-5 * * * *': field 1 (minute) '*-5': unexpected '-'"},
      {"? * * * *", "cron '? * * * *': field 1 (minute) '?': unexpected '?'"},
      {"0 0 L * *",
       "cron '0 0 L * *': field 3 (day-of-month) 'L': 'L' is not a number"},
      {"0\x01 * * * *",
       "cron '0? * * * *': field 1 (minute) '0?': unexpected 0x01"},
  };
  check_errors(cases, sizeof cases / sizeof cases[0]);
}

static void test_parse_errors_names(void) {
  static const error_case cases[] = {
      {"MON * * * *",
       "cron 'MON * * * *': field 1 (minute) 'MON': 'MON' is not a number"},
      {"* * * JANUARY *", "cron '* * * JANUARY *': field 4 (month) "
                          "'JANUARY': unknown month name 'JANUARY' (use "
                          "JAN-DEC)"},
      {"* * * FOO *", "cron '* * * FOO *': field 4 (month) 'FOO': unknown "
                      "month name 'FOO' (use JAN-DEC)"},
      {"* * * * MONDAY", "cron '* * * * MONDAY': field 5 (day-of-week) "
                         "'MONDAY': unknown day name 'MONDAY' (use SUN-SAT)"},
      {"* * * * 1-FOO", "cron '* * * * 1-FOO': field 5 (day-of-week) "
                        "'1-FOO': unknown day name 'FOO' (use SUN-SAT)"},
      {"* * * * JAN", "cron '* * * * JAN': field 5 (day-of-week) 'JAN': "
                      "unknown day name 'JAN' (use SUN-SAT)"},
      {"@reboot", "cron '@reboot': unknown shortcut '@reboot' (use @yearly, "
                  "@annually, @monthly, @weekly, @daily, @midnight or "
                  "@hourly)"},
      {"@", "cron '@': unknown shortcut '@' (use @yearly, @annually, "
            "@monthly, @weekly, @daily, @midnight or @hourly)"},
      {"@dailyx", "cron '@dailyx': unknown shortcut '@dailyx' (use @yearly, "
                  "@annually, @monthly, @weekly, @daily, @midnight or "
                  "@hourly)"},
      {"@daily 5", "cron '@daily 5': @daily takes no other fields"},
  };
  check_errors(cases, sizeof cases / sizeof cases[0]);
  fl_cron c;
  CHECK_EQ_INT(fl_cron_parse(NULL, &c, err, sizeof err), FLOWLUA_EINVAL);
  CHECK_EQ_STR(err, "missing cron expression");
  /* A message is cut to fit, and a missing buffer is fine. */
  char small[10];
  CHECK_EQ_INT(fl_cron_parse("61 * * * *", &c, small, sizeof small),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(small, "cron '61 ");
  CHECK_EQ_INT(fl_cron_parse("61 * * * *", &c, NULL, 0), FLOWLUA_EINVAL);
}

/* Days no month has are refused, unless the day-of-week OR rule saves
   them. */
static void test_parse_never_fires(void) {
  static const error_case cases[] = {
      {"0 0 30 2 *", "cron '0 0 30 2 *': never fires: February has no day 30"},
      {"0 0 31 4,6,9,11 *",
       "cron '0 0 31 4,6,9,11 *': never fires: April, June, September and "
       "November have no day 31"},
      {"0 0 30,31 FEB *",
       "cron '0 0 30,31 FEB *': never fires: February has no day 30 or 31"},
      {"0 0 31 2,4 *",
       "cron '0 0 31 2,4 *': never fires: February and April have no day 31"},
      {"0 0 30-31 2 *",
       "cron '0 0 30-31 2 *': never fires: February has no day 30 or 31"},
  };
  check_errors(cases, sizeof cases / sizeof cases[0]);
  fl_cron c;
  static const char *const fine[] = {"0 0 29 2 *", "0 0 30 2 1",
                                     "0 0 31 4 */2", "0 0 31 2,3 *",
                                     "0 0 30 4,6,9,11 *"};
  for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
    CHECK_EQ_INT(fl_cron_parse(fine[i], &c, err, sizeof err), 0);
  }
}

/* ---- DST policy names ---------------------------------------------------- */

static void test_dst_policy_names(void) {
  fl_dst_missing m = FL_DST_SKIP;
  fl_dst_repeated r = FL_DST_BOTH;
  CHECK_EQ_INT(fl_dst_parse_missing("shift", &m, err, sizeof err), 0);
  CHECK_EQ_INT(m, FL_DST_SHIFT);
  CHECK_EQ_INT(fl_dst_parse_missing("skip", &m, err, sizeof err), 0);
  CHECK_EQ_INT(m, FL_DST_SKIP);
  CHECK_EQ_INT(fl_dst_parse_repeated("first", &r, err, sizeof err), 0);
  CHECK_EQ_INT(r, FL_DST_FIRST);
  CHECK_EQ_INT(fl_dst_parse_repeated("last", &r, err, sizeof err), 0);
  CHECK_EQ_INT(r, FL_DST_LAST);
  CHECK_EQ_INT(fl_dst_parse_repeated("both", &r, err, sizeof err), 0);
  CHECK_EQ_INT(r, FL_DST_BOTH);
  CHECK_EQ_INT(fl_dst_parse_missing("later", &m, err, sizeof err),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(err, "dst.missing must be 'shift' or 'skip', not 'later'");
  CHECK_EQ_INT(fl_dst_parse_missing("Shift", &m, err, sizeof err),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(err, "dst.missing must be 'shift' or 'skip', not 'Shift'");
  CHECK_EQ_INT(fl_dst_parse_missing(NULL, &m, err, sizeof err),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(err, "dst.missing must be 'shift' or 'skip', not ''");
  CHECK_EQ_INT(fl_dst_parse_repeated("twice", &r, err, sizeof err),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(err,
               "dst.repeated must be 'first', 'last' or 'both', not 'twice'");
  CHECK_EQ_STR(fl_dst_missing_name(FL_DST_SHIFT), "shift");
  CHECK_EQ_STR(fl_dst_missing_name(FL_DST_SKIP), "skip");
  CHECK_EQ_STR(fl_dst_repeated_name(FL_DST_FIRST), "first");
  CHECK_EQ_STR(fl_dst_repeated_name(FL_DST_LAST), "last");
  CHECK_EQ_STR(fl_dst_repeated_name(FL_DST_BOTH), "both");
  fl_dst_policy p = FL_DST_POLICY_DEFAULT;
  CHECK_EQ_INT(p.missing, FL_DST_SHIFT);
  CHECK_EQ_INT(p.repeated, FL_DST_FIRST);
}

/* ---- matching ------------------------------------------------------------ */

static void test_matches(void) {
  fl_cron c;
  CHECK_EQ_INT(fl_cron_parse("*/15 9-17 * * 1-5", &c, err, sizeof err), 0);
  /* 2026-03-27 (a Friday) 00:00 local = 1774569600 */
  CHECK(fl_cron_matches(&c, 1774569600 + 9 * 3600));
  CHECK(fl_cron_matches(&c, 1774569600 + 17 * 3600 + 45 * 60));
  CHECK(fl_cron_matches(&c, 1774569600 + 9 * 3600 + 59)); /* same minute */
  CHECK(!fl_cron_matches(&c, 1774569600 + 18 * 3600));
  CHECK(!fl_cron_matches(&c, 1774569600 + 9 * 3600 + 5 * 60));
  CHECK(!fl_cron_matches(&c, 1774569600 + 86400 + 9 * 3600)); /* Saturday */
  /* before 1970 too: 1969-12-31 23:45, a Wednesday */
  CHECK(!fl_cron_matches(&c, -15 * 60));
  CHECK_EQ_INT(fl_cron_parse("45 23 31 12 3", &c, err, sizeof err), 0);
  CHECK(fl_cron_matches(&c, -15 * 60));
}

/* ---- next fire times ----------------------------------------------------- */

typedef struct next_case {
  const char *expr, *zone;
  fl_dst_missing missing;
  fl_dst_repeated repeated;
  const char *after;   /* ISO with its offset */
  const char *want[9]; /* the next fire times, in order, NULL-ended */
} next_case;

#define SHIFT_FIRST FL_DST_SHIFT, FL_DST_FIRST
#define SHIFT_LAST FL_DST_SHIFT, FL_DST_LAST
#define SHIFT_BOTH FL_DST_SHIFT, FL_DST_BOTH
#define SKIP_FIRST FL_DST_SKIP, FL_DST_FIRST
#define SKIP_BOTH FL_DST_SKIP, FL_DST_BOTH

static void check_next(const next_case *nc) {
  fl_cron c;
  fl_tz *tz = NULL;
  int64_t t;
  if (fl_cron_parse(nc->expr, &c, err, sizeof err) != 0 ||
      fl_tz_load(nc->zone, &tz, err, sizeof err) != 0 ||
      fl_time_parse_iso(nc->after, NULL, &t, err, sizeof err) != 0) {
    CHECK_EQ_STR(err, "");
    fl_tz_free(tz);
    return;
  }
  fl_dst_policy p = {nc->missing, nc->repeated};
  int before = check_failures_;
  for (int i = 0; nc->want[i]; i++) {
    int64_t next = 0;
    char got[FL_TIME_ISO_SIZE] = "";
    int rc = fl_cron_next(&c, tz, p, t, &next, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0) break;
    CHECK(next > t);
    fl_time_format_iso(next, tz, got, sizeof got);
    CHECK_EQ_STR(got, nc->want[i]);
    t = next;
  }
  if (check_failures_ != before)
    fprintf(stderr, "  '%s' in %s (%s/%s) after %s\n", nc->expr, nc->zone,
            fl_dst_missing_name(nc->missing),
            fl_dst_repeated_name(nc->repeated), nc->after);
  fl_tz_free(tz);
}

static void check_next_table(const next_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) check_next(&cases[i]);
}

static void test_next_basics(void) {
  static const next_case cases[] = {
      {"* * * * *", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2026-01-01T00:01:00+00:00", "2026-01-01T00:02:00+00:00"}},
      {"* * * * *", "UTC", SHIFT_FIRST, "2026-01-01T00:00:30+00:00",
       {"2026-01-01T00:01:00+00:00"}},
      /* strictly after: a fire time is not its own next */
      {"0 * * * *", "UTC", SHIFT_FIRST, "2026-01-01T01:00:00+00:00",
       {"2026-01-01T02:00:00+00:00"}},
      {"*/15 9-17 * * 1-5", "UTC", SHIFT_FIRST, "2026-03-27T16:50:00+00:00",
       {"2026-03-27T17:00:00+00:00", "2026-03-27T17:15:00+00:00",
        "2026-03-27T17:30:00+00:00", "2026-03-27T17:45:00+00:00",
        "2026-03-30T09:00:00+00:00"}},
      {"59 23 31 12 *", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2026-12-31T23:59:00+00:00", "2027-12-31T23:59:00+00:00"}},
      {"0 9 * * 1-5", "Asia/Kolkata", SHIFT_FIRST,
       "2026-03-27T10:00:00+05:30",
       {"2026-03-30T09:00:00+05:30", "2026-03-31T09:00:00+05:30"}},
      /* the same instant seen from another zone */
      {"0 9 * * *", "Asia/Kolkata", SHIFT_FIRST, "2026-03-27T00:00:00Z",
       {"2026-03-27T09:00:00+05:30"}},
      {"@weekly", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"}},
      {"@yearly", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2027-01-01T00:00:00+00:00"}},
      {"@monthly", "UTC", SHIFT_FIRST, "2026-01-31T12:00:00+00:00",
       {"2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"}},
      {"@hourly", "UTC", SHIFT_FIRST, "2026-01-01T00:59:59+00:00",
       {"2026-01-01T01:00:00+00:00"}},
      {"0 0 * * 7", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2026-01-04T00:00:00+00:00"}},
      /* before 1970 */
      {"30 12 * * *", "UTC", SHIFT_FIRST, "1969-12-31T00:00:00+00:00",
       {"1969-12-31T12:30:00+00:00", "1970-01-01T12:30:00+00:00"}},
  };
  check_next_table(cases, sizeof cases / sizeof cases[0]);
}

static void test_next_leap_days_and_month_ends(void) {
  static const next_case cases[] = {
      {"0 0 29 2 *", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"}},
      /* 2100 is not a leap year: eight years to the next February 29 */
      {"0 0 29 2 *", "UTC", SHIFT_FIRST, "2096-03-01T00:00:00+00:00",
       {"2104-02-29T00:00:00+00:00"}},
      {"0 12 31 * *", "UTC", SHIFT_FIRST, "2026-04-01T00:00:00+00:00",
       {"2026-05-31T12:00:00+00:00", "2026-07-31T12:00:00+00:00",
        "2026-08-31T12:00:00+00:00", "2026-10-31T12:00:00+00:00",
        "2026-12-31T12:00:00+00:00", "2027-01-31T12:00:00+00:00"}},
      {"0 0 30 * *", "UTC", SHIFT_FIRST, "2026-01-31T00:00:00+00:00",
       {"2026-03-30T00:00:00+00:00"}},
      {"0 0 28-31 2 *", "UTC", SHIFT_FIRST,
       "2028-02-27T00:00:00+00:00",
       {"2028-02-28T00:00:00+00:00", "2028-02-29T00:00:00+00:00",
        "2029-02-28T00:00:00+00:00"}},
  };
  check_next_table(cases, sizeof cases / sizeof cases[0]);
}

/* Both day fields restricted: a day matches when either does. */
static void test_next_day_or_rule(void) {
  static const next_case cases[] = {
      /* February 29 or any Monday in February: every year, not once in 28 */
      {"0 0 29 2 1", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2026-02-02T00:00:00+00:00", "2026-02-09T00:00:00+00:00",
        "2026-02-16T00:00:00+00:00", "2026-02-23T00:00:00+00:00",
        "2027-02-01T00:00:00+00:00"}},
      {"0 0 29 2 MON", "UTC", SHIFT_FIRST, "2028-02-20T00:00:00+00:00",
       {"2028-02-21T00:00:00+00:00", "2028-02-28T00:00:00+00:00",
        "2028-02-29T00:00:00+00:00", "2029-02-05T00:00:00+00:00"}},
      /* Friday the 13th style: every 13th and every Friday */
      {"0 0 13 * FRI", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00",
        "2026-01-13T00:00:00+00:00", "2026-01-16T00:00:00+00:00",
        "2026-01-23T00:00:00+00:00"}},
      /* one day field `*`: the other alone decides */
      {"0 0 13 * *", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2026-01-13T00:00:00+00:00", "2026-02-13T00:00:00+00:00"}},
      {"0 0 * * FRI", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00"}},
      /* `*\/2` restricts: odd days or Mondays (Jan 5 is both) */
      {"0 0 */2 * 1", "UTC", SHIFT_FIRST, "2026-01-01T00:00:00+00:00",
       {"2026-01-03T00:00:00+00:00", "2026-01-05T00:00:00+00:00",
        "2026-01-07T00:00:00+00:00", "2026-01-09T00:00:00+00:00",
        "2026-01-11T00:00:00+00:00", "2026-01-12T00:00:00+00:00",
        "2026-01-13T00:00:00+00:00"}},
  };
  check_next_table(cases, sizeof cases / sizeof cases[0]);
}

/* Madrid, 2026-03-29: 02:00 CET jumps to 03:00 CEST (02:xx never happens). */
static void test_next_madrid_spring(void) {
  static const next_case cases[] = {
      {"30 2 * * *", "Europe/Madrid", SHIFT_FIRST, "2026-03-28T12:00:00+01:00",
       {"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
      {"30 2 * * *", "Europe/Madrid", SKIP_FIRST, "2026-03-28T12:00:00+01:00",
       {"2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"}},
      /* four skipped times fire once, together */
      {"*/15 2 * * *", "Europe/Madrid", SHIFT_FIRST,
       "2026-03-28T12:00:00+01:00",
       {"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00",
        "2026-03-30T02:15:00+02:00"}},
      /* ... and together with 03:00 itself */
      {"0,30 2,3 * * *", "Europe/Madrid", SHIFT_FIRST,
       "2026-03-28T12:00:00+01:00",
       {"2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:00:00+02:00"}},
      {"0,30 2,3 * * *", "Europe/Madrid", SKIP_FIRST,
       "2026-03-28T12:00:00+01:00",
       {"2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:00:00+02:00"}},
      {"0 3 * * *", "Europe/Madrid", SHIFT_FIRST, "2026-03-28T12:00:00+01:00",
       {"2026-03-29T03:00:00+02:00", "2026-03-30T03:00:00+02:00"}},
      {"* * * * *", "Europe/Madrid", SHIFT_FIRST, "2026-03-29T01:58:00+01:00",
       {"2026-03-29T01:59:00+01:00", "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:01:00+02:00"}},
      {"* * * * *", "Europe/Madrid", SKIP_BOTH, "2026-03-29T01:58:00+01:00",
       {"2026-03-29T01:59:00+01:00", "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:01:00+02:00"}},
      /* skipped this year: the next March 29 is an ordinary day */
      {"30 2 29 3 *", "Europe/Madrid", SKIP_FIRST, "2026-01-01T00:00:00+01:00",
       {"2027-03-29T02:30:00+02:00"}},
      {"30 2 29 3 *", "Europe/Madrid", SHIFT_FIRST,
       "2026-01-01T00:00:00+01:00",
       {"2026-03-29T03:00:00+02:00", "2027-03-29T02:30:00+02:00"}},
      /* the repeated policy changes nothing here */
      {"30 2 * * *", "Europe/Madrid", SHIFT_BOTH, "2026-03-28T12:00:00+01:00",
       {"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
  };
  check_next_table(cases, sizeof cases / sizeof cases[0]);
}

/* Madrid, 2026-10-25: 03:00 CEST goes back to 02:00 CET (02:xx twice). */
static void test_next_madrid_fall(void) {
  static const next_case cases[] = {
      {"30 2 * * *", "Europe/Madrid", SHIFT_FIRST, "2026-10-24T12:00:00+02:00",
       {"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
      {"30 2 * * *", "Europe/Madrid", SHIFT_LAST, "2026-10-24T12:00:00+02:00",
       {"2026-10-25T02:30:00+01:00", "2026-10-26T02:30:00+01:00"}},
      {"30 2 * * *", "Europe/Madrid", SHIFT_BOTH, "2026-10-24T12:00:00+02:00",
       {"2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00",
        "2026-10-26T02:30:00+01:00"}},
      {"*/20 * * * *", "Europe/Madrid", SHIFT_FIRST,
       "2026-10-25T01:30:00+02:00",
       {"2026-10-25T01:40:00+02:00", "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:20:00+02:00", "2026-10-25T02:40:00+02:00",
        "2026-10-25T03:00:00+01:00", "2026-10-25T03:20:00+01:00"}},
      {"*/20 * * * *", "Europe/Madrid", SHIFT_LAST,
       "2026-10-25T01:30:00+02:00",
       {"2026-10-25T01:40:00+02:00", "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:20:00+01:00", "2026-10-25T02:40:00+01:00",
        "2026-10-25T03:00:00+01:00"}},
      {"*/20 * * * *", "Europe/Madrid", SKIP_BOTH,
       "2026-10-25T01:30:00+02:00",
       {"2026-10-25T01:40:00+02:00", "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:20:00+02:00", "2026-10-25T02:40:00+02:00",
        "2026-10-25T02:00:00+01:00", "2026-10-25T02:20:00+01:00",
        "2026-10-25T02:40:00+01:00", "2026-10-25T03:00:00+01:00"}},
      /* 03:00 happens once (02:00 happens twice) */
      {"0 3 * * *", "Europe/Madrid", SHIFT_BOTH, "2026-10-24T12:00:00+02:00",
       {"2026-10-25T03:00:00+01:00", "2026-10-26T03:00:00+01:00"}},
      {"0 2 * * *", "Europe/Madrid", SHIFT_BOTH, "2026-10-24T12:00:00+02:00",
       {"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00",
        "2026-10-26T02:00:00+01:00"}},
      /* starting inside the repeated hour */
      {"45 2 * * *", "Europe/Madrid", SHIFT_FIRST, "2026-10-25T02:30:00+01:00",
       {"2026-10-26T02:45:00+01:00"}},
      {"45 2 * * *", "Europe/Madrid", SHIFT_LAST, "2026-10-25T02:30:00+02:00",
       {"2026-10-25T02:45:00+01:00"}},
      {"45 2 * * *", "Europe/Madrid", SHIFT_BOTH, "2026-10-25T02:50:00+02:00",
       {"2026-10-25T02:45:00+01:00", "2026-10-26T02:45:00+01:00"}},
      {"45 2 * * *", "Europe/Madrid", SHIFT_FIRST, "2026-10-25T02:30:00+02:00",
       {"2026-10-25T02:45:00+02:00", "2026-10-26T02:45:00+01:00"}},
  };
  check_next_table(cases, sizeof cases / sizeof cases[0]);
}

/* New York 2026: 03-08 02:00 EST -> 03:00 EDT; 11-01 02:00 EDT -> 01:00
   EST (01:xx twice). */
static void test_next_new_york(void) {
  static const next_case cases[] = {
      {"30 2 * * *", "America/New_York", SHIFT_FIRST,
       "2026-03-07T12:00:00-05:00",
       {"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
      {"30 2 * * *", "America/New_York", SKIP_FIRST,
       "2026-03-07T12:00:00-05:00",
       {"2026-03-09T02:30:00-04:00"}},
      {"30 1 * * *", "America/New_York", SHIFT_FIRST,
       "2026-10-31T12:00:00-04:00",
       {"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
      {"30 1 * * *", "America/New_York", SHIFT_LAST,
       "2026-10-31T12:00:00-04:00",
       {"2026-11-01T01:30:00-05:00", "2026-11-02T01:30:00-05:00"}},
      {"30 1 * * *", "America/New_York", SHIFT_BOTH,
       "2026-10-31T12:00:00-04:00",
       {"2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00",
        "2026-11-02T01:30:00-05:00"}},
      {"0 2 * * *", "America/New_York", SHIFT_BOTH,
       "2026-10-31T12:00:00-04:00",
       {"2026-11-01T02:00:00-05:00", "2026-11-02T02:00:00-05:00"}},
      {"0 1 * * *", "America/New_York", SKIP_BOTH,
       "2026-10-31T12:00:00-04:00",
       {"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"}},
  };
  check_next_table(cases, sizeof cases / sizeof cases[0]);
}

/* Lord Howe 2026: 10-04 02:00 -> 02:30 (+10:30 to +11), 04-05 02:00 ->
   01:30 (+11 to +10:30): half-hour changes. */
static void test_next_lord_howe(void) {
  static const next_case cases[] = {
      {"15 2 * * *", "Australia/Lord_Howe", SHIFT_FIRST,
       "2026-10-03T12:00:00+10:30",
       {"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
      {"15 2 * * *", "Australia/Lord_Howe", SKIP_FIRST,
       "2026-10-03T12:00:00+10:30", {"2026-10-05T02:15:00+11:00"}},
      {"45 1 * * *", "Australia/Lord_Howe", SHIFT_FIRST,
       "2026-04-04T12:00:00+11:00",
       {"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
      {"45 1 * * *", "Australia/Lord_Howe", SHIFT_LAST,
       "2026-04-04T12:00:00+11:00", {"2026-04-05T01:45:00+10:30"}},
      {"45 1 * * *", "Australia/Lord_Howe", SHIFT_BOTH,
       "2026-04-04T12:00:00+11:00",
       {"2026-04-05T01:45:00+11:00", "2026-04-05T01:45:00+10:30"}},
  };
  check_next_table(cases, sizeof cases / sizeof cases[0]);
}

/* 2100 is past the zone files' tables: the footer rules decide. */
static void test_next_2100(void) {
  static const next_case cases[] = {
      {"30 2 * * *", "Europe/Madrid", SHIFT_FIRST, "2100-03-27T12:00:00+01:00",
       {"2100-03-28T03:00:00+02:00", "2100-03-29T02:30:00+02:00"}},
      {"30 2 * * *", "Europe/Madrid", SKIP_FIRST, "2100-03-27T12:00:00+01:00",
       {"2100-03-29T02:30:00+02:00"}},
      {"30 2 * * *", "Europe/Madrid", SHIFT_BOTH, "2100-10-30T12:00:00+02:00",
       {"2100-10-31T02:30:00+02:00", "2100-10-31T02:30:00+01:00",
        "2100-11-01T02:30:00+01:00"}},
      {"30 2 * * *", "America/New_York", SHIFT_FIRST,
       "2100-03-13T12:00:00-05:00",
       {"2100-03-14T03:00:00-04:00", "2100-03-15T02:30:00-04:00"}},
  };
  check_next_table(cases, sizeof cases / sizeof cases[0]);
}

/* A zone made of a POSIX rule alone (no transition table) behaves like the
   zone file it mirrors. */
static void test_next_posix_rule_zone(void) {
  fl_tz *tz = NULL;
  CHECK_EQ_INT(fl_tz_from_posix("EST5EDT,M3.2.0,M11.1.0", &tz, err,
                                sizeof err),
               0);
  fl_cron c;
  CHECK_EQ_INT(fl_cron_parse("30 1,2 * * *", &c, err, sizeof err), 0);
  static const char *const want[] = {
      "2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00",
      "2026-03-09T01:30:00-04:00", "2026-03-09T02:30:00-04:00"};
  fl_dst_policy p = FL_DST_POLICY_DEFAULT;
  int64_t t = 1772902800; /* 2026-03-07T12:00:00-05:00 */
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    char got[FL_TIME_ISO_SIZE] = "";
    CHECK_EQ_INT(fl_cron_next(&c, tz, p, t, &t, err, sizeof err), 0);
    fl_time_format_iso(t, tz, got, sizeof got);
    CHECK_EQ_STR(got, want[i]);
  }
  fl_tz_free(tz);
}

/* The search gives up with a message instead of looping. */
static void test_next_gives_up(void) {
  /* Built by hand: February 31, which fl_cron_parse would refuse. */
  fl_cron c = {.minutes = 1, .hours = 1, .mdays = UINT32_C(1) << 31,
               .months = 1 << 2, .wdays = 0x7f, .mday_star = 0,
               .wday_star = 1};
  fl_dst_policy p = FL_DST_POLICY_DEFAULT;
  int64_t next = 42;
  CHECK_EQ_INT(fl_cron_next(&c, NULL, p, 1767225600, &next, err, sizeof err),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(err, "no fire time within 10 years after "
                    "2026-01-01T00:00:00+00:00");
  CHECK_EQ_INT(next, 42);
  /* Nothing at all set: no month ever matches. */
  fl_cron none = {0};
  CHECK_EQ_INT(fl_cron_next(&none, NULL, p, 0, &next, err, sizeof err),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(err, "no fire time within 10 years after "
                    "1970-01-01T00:00:00+00:00");
  /* Near the end of time: 9999-06-01, then 9999-01-01 less a second. */
  CHECK_EQ_INT(fl_cron_parse("0 0 1 1 *", &c, err, sizeof err), 0);
  CHECK_EQ_INT(fl_cron_next(&c, NULL, p, INT64_C(253383811200), &next, err,
                            sizeof err),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(err, "no fire time after 9999-06-01T00:00:00+00:00 before the "
                    "year 10000");
  CHECK_EQ_INT(fl_cron_next(&c, NULL, p, FL_TIME_MAX + 1, &next, err,
                            sizeof err),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(err, "time 253402300800 is out of range (years 1 to 9999)");
  CHECK_EQ_INT(fl_cron_next(&c, NULL, p, INT64_MIN, &next, err, sizeof err),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(err, "time -9223372036854775808 is out of range (years 1 to "
                    "9999)");
  CHECK_EQ_INT(fl_cron_next(&c, NULL, p, INT64_C(253370764799), &next, err,
                            sizeof err),
               0);
  CHECK_EQ_INT(next, INT64_C(253370764800));
}

/*
 * A cross-check of the search against the definition, minute by minute,
 * in zones whose changes are whole hours: with "skip", an instant fires
 * when its wall-clock minute matches, unless "first" and the same wall-clock
 * time came an hour earlier, or "last" and it comes again an hour later.
 */
static int naive_fires(const fl_cron *c, const fl_tz *tz, fl_dst_repeated r,
                       int64_t t) {
  int off = fl_tz_offset_at(tz, t);
  if (!fl_cron_matches(c, t + off)) return 0;
  if (r == FL_DST_FIRST && fl_tz_offset_at(tz, t - 3600) == off + 3600)
    return 0;
  if (r == FL_DST_LAST && fl_tz_offset_at(tz, t + 3600) == off - 3600)
    return 0;
  return 1;
}

static void test_next_matches_minute_scan(void) {
  static const char *const exprs[] = {"* * * * *", "*/7 * * * *",
                                      "30 2 * * *", "0,15,30,45 1-3 * * *",
                                      "5 */2 * * 0", "59 1 25-31 * SUN"};
  static const char *const zones[] = {"Europe/Madrid", "America/New_York"};
  /* 2026-03-01 to 2026-04-05 and 2026-10-20 to 2026-11-05, UTC */
  static const int64_t spans[][2] = {{1772323200, 1775347200},
                                     {1792454400, 1793836800}};
  static const fl_dst_repeated reps[] = {FL_DST_FIRST, FL_DST_LAST,
                                         FL_DST_BOTH};
  int mismatches = 0;
  for (size_t z = 0; z < 2; z++) {
    fl_tz *tz = NULL;
    CHECK_EQ_INT(fl_tz_load(zones[z], &tz, err, sizeof err), 0);
    for (size_t e = 0; e < sizeof exprs / sizeof exprs[0]; e++) {
      fl_cron c;
      CHECK_EQ_INT(fl_cron_parse(exprs[e], &c, err, sizeof err), 0);
      for (size_t r = 0; r < 3; r++)
        for (size_t s = 0; s < 2; s++) {
          fl_dst_policy p = {FL_DST_SKIP, reps[r]};
          int64_t t = spans[s][0], next = 0;
          fl_cron_next(&c, tz, p, t - 1, &next, err, sizeof err);
          for (; t < spans[s][1]; t += 60) {
            int want = naive_fires(&c, tz, reps[r], t);
            if (want != (next == t)) {
              if (mismatches++ < 5)
                fprintf(stderr, "  '%s' %s %s at %lld: naive %d\n", exprs[e],
                        zones[z], fl_dst_repeated_name(reps[r]),
                        (long long)t, want);
            }
            if (next == t)
              fl_cron_next(&c, tz, p, t, &next, err, sizeof err);
          }
        }
    }
    fl_tz_free(tz);
  }
  CHECK_EQ_INT(mismatches, 0);
}

/* The search skips what cannot match: a rare schedule is found quickly. */
static void test_next_is_fast(void) {
  fl_cron c;
  CHECK_EQ_INT(fl_cron_parse("0 0 29 2 *", &c, err, sizeof err), 0);
  fl_tz *tz = NULL;
  CHECK_EQ_INT(fl_tz_load("Europe/Madrid", &tz, err, sizeof err), 0);
  fl_dst_policy p = FL_DST_POLICY_DEFAULT;
  clock_t start = clock();
  int64_t next = 0;
  for (int i = 0; i < 200; i++)
    fl_cron_next(&c, tz, p, INT64_C(3981398400), &next, err, sizeof err);
  double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
  char got[FL_TIME_ISO_SIZE];
  fl_time_format_iso(next, tz, got, sizeof got);
  CHECK_EQ_STR(got, "2104-02-29T00:00:00+01:00");
  CHECK(secs < 2.0); /* 200 searches of 8 years each; about 10 ms here */
  fl_tz_free(tz);
}

static uint32_t next_random(uint32_t *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return *seed >> 16;
}

/* One random field: a random form with numbers that may be out of range,
   now and then with a stray character. (printf ignores unused numbers.) */
static size_t random_field(uint32_t *seed, char *out, size_t size) {
  static const char *const forms[] = {"*",     "%d",       "%d-%d",
                                      "*/%d",  "%d/%d",    "%d-%d/%d",
                                      "%d,%d", "JAN-%d",   "mon,%d"};
  static const char junk[] = "*/-,x@?";
  int a = (int)(next_random(seed) % 13), b = a + (int)(next_random(seed) % 20),
      c = (int)(next_random(seed) % 7);
  const char *form = forms[next_random(seed) % 9];
  int n = snprintf(out, size, form, a, b, c);
  if (n <= 0 || (size_t)n >= size) return 0;
  if (next_random(seed) % 10 == 0)
    out[next_random(seed) % (unsigned)n] = junk[next_random(seed) % 7];
  return (size_t)n;
}

/* Random expressions never crash the parser, every refusal quotes the
   expression, and whatever parses has a next fire time after the start. */
static void test_random_expressions(void) {
  uint32_t seed = 2026;
  fl_tz *tz = NULL;
  CHECK_EQ_INT(fl_tz_load("Europe/Madrid", &tz, err, sizeof err), 0);
  int parsed = 0, wrong = 0;
  for (int round = 0; round < 20000; round++) {
    char expr[128];
    size_t len = 0;
    for (int field = 0; field < 5; field++) {
      len += random_field(&seed, expr + len, 20);
      expr[len++] = ' ';
    }
    expr[len] = '\0';
    fl_cron c;
    if (fl_cron_parse(expr, &c, err, sizeof err) != 0) {
      if (strncmp(err, "cron '", 6) != 0) wrong++;
      continue;
    }
    parsed++;
    fl_dst_policy p = {(fl_dst_missing)(round % 2),
                       (fl_dst_repeated)(round % 3)};
    int64_t next = 0, after = 1774742400 + (int64_t)round * 3607;
    if (fl_cron_next(&c, tz, p, after, &next, err, sizeof err) != 0 ||
        next <= after)
      wrong++;
  }
  CHECK(parsed > 100);
  CHECK_EQ_INT(wrong, 0);
  fl_tz_free(tz);
}

int main(void) {
  RUN(test_parse_field_forms);
  RUN(test_parse_names_and_sunday);
  RUN(test_parse_day_field_stars);
  RUN(test_parse_shortcuts);
  RUN(test_parse_errors_fields);
  RUN(test_parse_errors_syntax);
  RUN(test_parse_errors_names);
  RUN(test_parse_never_fires);
  RUN(test_dst_policy_names);
  RUN(test_matches);
  RUN(test_next_basics);
  RUN(test_next_leap_days_and_month_ends);
  RUN(test_next_day_or_rule);
  RUN(test_next_madrid_spring);
  RUN(test_next_madrid_fall);
  RUN(test_next_new_york);
  RUN(test_next_lord_howe);
  RUN(test_next_2100);
  RUN(test_next_posix_rule_zone);
  RUN(test_next_gives_up);
  RUN(test_next_matches_minute_scan);
  RUN(test_next_is_fast);
  RUN(test_random_expressions);
  return check_summary();
}
