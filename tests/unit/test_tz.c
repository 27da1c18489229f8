/*
 * test_tz.c — time zones, civil dates and ISO 8601 times.
 *
 * Expected values were worked out with GNU date and zdump (which use glibc
 * and tzcode, not this code), e.g. `date -u -d '2026-03-29 01:00' +%s` and
 * `zdump -v -c 2026,2027 Europe/Madrid`. They need the system's tzdata
 * (tests/install-deps.sh installs it).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "flowlua.h"
#include "tz.h"

static char err[256];

/* Loads a zone the test needs; a failure is reported and gives NULL. */
static fl_tz *zone(const char *name) {
  fl_tz *tz = NULL;
  int rc = fl_tz_load(name, &tz, err, sizeof err);
  CHECK_EQ_INT(rc, 0);
  if (rc != 0) fprintf(stderr, "  loading %s: %s\n", name, err);
  return tz;
}

/* ---- civil dates --------------------------------------------------------- */

static void test_civil_dates(void) {
  static const struct {
    int64_t y;
    int m, d;
    int64_t days;
    int weekday;
  } cases[] = {
      {1970, 1, 1, 0, 4},          {1969, 12, 31, -1, 3},
      {2000, 3, 1, 11017, 3},      {2026, 3, 29, 20541, 0},
      {2028, 2, 29, 21243, 2},     {2028, 3, 1, 21244, 3},
      {1, 1, 1, -719162, 1},       {9999, 12, 31, 2932896, 5},
      {2104, 2, 29, 49001, 5},     {1900, 12, 31, -25203, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK_EQ_INT(fl_days_from_civil(cases[i].y, cases[i].m, cases[i].d),
                 cases[i].days);
    int64_t y;
    int m, d;
    fl_civil_from_days(cases[i].days, &y, &m, &d);
    CHECK_EQ_INT(y, cases[i].y);
    CHECK_EQ_INT(m, cases[i].m);
    CHECK_EQ_INT(d, cases[i].d);
    CHECK_EQ_INT(fl_weekday(cases[i].days), cases[i].weekday);
  }
  /* Every day from year 1 to 9999 comes back as itself, one after another. */
  int64_t prev_y = 0;
  int prev_m = 12, prev_d = 31, broken = 0;
  for (int64_t z = -719162; z <= 2932896; z++) {
    int64_t y;
    int m, d;
    fl_civil_from_days(z, &y, &m, &d);
    int next_day = d == prev_d + 1 && m == prev_m && y == prev_y;
    int next_month = d == 1 && m == prev_m + 1 && y == prev_y;
    int next_year = d == 1 && m == 1 && prev_m == 12 && y == prev_y + 1;
    if (fl_days_from_civil(y, m, d) != z ||
        !(next_day || next_month || next_year))
      broken++;
    prev_y = y, prev_m = m, prev_d = d;
  }
  CHECK_EQ_INT(broken, 0);
}

static void test_leap_years_and_month_lengths(void) {
  CHECK(fl_is_leap_year(2000));
  CHECK(fl_is_leap_year(2024));
  CHECK(fl_is_leap_year(2028));
  CHECK(!fl_is_leap_year(1900));
  CHECK(!fl_is_leap_year(2026));
  CHECK(!fl_is_leap_year(2100));
  CHECK_EQ_INT(fl_days_in_month(2026, 1), 31);
  CHECK_EQ_INT(fl_days_in_month(2026, 2), 28);
  CHECK_EQ_INT(fl_days_in_month(2028, 2), 29);
  CHECK_EQ_INT(fl_days_in_month(2100, 2), 28);
  CHECK_EQ_INT(fl_days_in_month(2000, 2), 29);
  CHECK_EQ_INT(fl_days_in_month(2026, 4), 30);
  CHECK_EQ_INT(fl_days_in_month(2026, 12), 31);
  CHECK_EQ_INT(fl_days_in_month(2026, 0), 0);
  CHECK_EQ_INT(fl_days_in_month(2026, 13), 0);
}

/* ---- offsets ------------------------------------------------------------- */

typedef struct offset_case {
  int64_t t;
  int offset;
} offset_case;

static void check_offsets(const char *name, const offset_case *cases,
                          size_t n) {
  fl_tz *tz = zone(name);
  if (!tz) return;
  CHECK_EQ_STR(fl_tz_name(tz), name);
  for (size_t i = 0; i < n; i++) {
    int got = fl_tz_offset_at(tz, cases[i].t);
    CHECK_EQ_INT(got, cases[i].offset);
    if (got != cases[i].offset)
      fprintf(stderr, "  %s at %lld\n", name, (long long)cases[i].t);
  }
  fl_tz_free(tz);
}

static void test_utc(void) {
  fl_tz *tz = zone("UTC");
  if (!tz) return;
  CHECK_EQ_STR(fl_tz_name(tz), "UTC");
  CHECK_EQ_INT(fl_tz_offset_at(tz, 1774746000), 0);
  CHECK_EQ_INT(fl_tz_offset_at(tz, FL_TIME_MIN), 0);
  CHECK_EQ_INT(fl_tz_offset_at(tz, INT64_MAX), 0);
  int64_t out[2], at;
  CHECK_EQ_INT(fl_tz_local_to_utc(tz, 1774751400, out), 1);
  CHECK_EQ_INT(out[0], 1774751400);
  CHECK_EQ_INT(fl_tz_next_transition(tz, 0, &at), 0);
  fl_tz_free(tz);
  /* NULL stands for UTC in every query. */
  CHECK_EQ_INT(fl_tz_offset_at(NULL, 1774746000), 0);
  CHECK_EQ_INT(fl_tz_local_to_utc(NULL, 1774751400, out), 1);
  CHECK_EQ_INT(out[0], 1774751400);
  CHECK_EQ_STR(fl_tz_name(NULL), "UTC");
  /* Etc/UTC is a file in the database. */
  static const offset_case etc[] = {{0, 0}, {4102444800, 0}};
  check_offsets("Etc/UTC", etc, 2);
}

/* zdump -v -c 2026,2027 Europe/Madrid: 2026-03-29 01:00Z CET -> CEST,
   2026-10-25 01:00Z CEST -> CET. */
static void test_madrid_offsets(void) {
  static const offset_case cases[] = {
      {1774745999, 3600},  {1774746000, 7200},  {1792889999, 7200},
      {1792890000, 3600},  {1782907200, 7200},  {0, 3600},
      /* the first transition: LMT -0:14:44 until 1901 */
      {-2177452801, -884}, {-2177452800, 0},
  };
  check_offsets("Europe/Madrid", cases, sizeof cases / sizeof cases[0]);
}

/* zdump: 2026-03-08 07:00Z EST -> EDT, 2026-11-01 06:00Z EDT -> EST. */
static void test_new_york_offsets(void) {
  static const offset_case cases[] = {
      {1772953199, -18000}, {1772953200, -14400}, {1793512799, -14400},
      {1793512800, -18000}, {1782907200, -14400},
  };
  check_offsets("America/New_York", cases, sizeof cases / sizeof cases[0]);
}

/* Past the file's table (it ends in 2037): the footer's rule. zdump -c
   2100,2101: Madrid 2100-03-28 01:00Z and 2100-10-31 01:00Z, New York
   2100-03-14 07:00Z and 2100-11-07 06:00Z, Nuuk (rule times -1 and 0
   hours, a version 3 extension) 2100-03-28 01:00Z and 2100-10-31 01:00Z,
   Lord Howe (30-minute daylight time, southern) 2100-04-03 15:00Z and
   2100-10-02 15:30Z. */
static void test_footer_rule_in_2100(void) {
  static const offset_case madrid[] = {{4109878799, 3600},
                                       {4109878800, 7200},
                                       {4128627599, 7200},
                                       {4128627600, 3600},
                                       {4102444800, 3600}};
  check_offsets("Europe/Madrid", madrid, 5);
  static const offset_case new_york[] = {{4108690799, -18000},
                                         {4108690800, -14400},
                                         {4129250399, -14400},
                                         {4129250400, -18000}};
  check_offsets("America/New_York", new_york, 4);
  static const offset_case nuuk[] = {{4109878799, -7200},
                                     {4109878800, -3600},
                                     {4128627599, -3600},
                                     {4128627600, -7200}};
  check_offsets("America/Nuuk", nuuk, 4);
  static const offset_case lord_howe[] = {{4110447599, 39600},
                                          {4110447600, 37800},
                                          {4126174199, 37800},
                                          {4126174200, 39600},
                                          {4118083200, 37800},
                                          {4102444800, 39600}};
  check_offsets("Australia/Lord_Howe", lord_howe, 6);
}

/* Asia/Kolkata: +05:30 since 1945 (and +06:30 in 1941-42 and 1942-45). */
static void test_fixed_offset_zone(void) {
  static const offset_case cases[] = {
      {0, 19800},           {1774746000, 19800}, {4118083200, 19800},
      {-891561600, 23400},  {FL_TIME_MAX, 19800},
  };
  check_offsets("Asia/Kolkata", cases, sizeof cases / sizeof cases[0]);
  fl_tz *tz = zone("Asia/Kolkata");
  int64_t at;
  CHECK_EQ_INT(fl_tz_next_transition(tz, 1774746000, &at), 0);
  fl_tz_free(tz);
}

static void test_next_transition(void) {
  fl_tz *tz = zone("Europe/Madrid");
  if (!tz) return;
  int64_t at = 0;
  CHECK_EQ_INT(fl_tz_next_transition(tz, 1767225600, &at), 1);
  CHECK_EQ_INT(at, 1774746000);
  CHECK_EQ_INT(fl_tz_next_transition(tz, 1774746000, &at), 1);
  CHECK_EQ_INT(at, 1792890000);
  /* from the footer's rule */
  CHECK_EQ_INT(fl_tz_next_transition(tz, 4102444800, &at), 1);
  CHECK_EQ_INT(at, 4109878800);
  CHECK_EQ_INT(fl_tz_next_transition(tz, 4109878800, &at), 1);
  CHECK_EQ_INT(at, 4128627600);
  fl_tz_free(tz);
}

/* ---- wall-clock time to instants ----------------------------------------- */

typedef struct local_case {
  int64_t local; /* wall-clock seconds as if UTC */
  int n;
  int64_t out0, out1;
} local_case;

static void check_locals(const char *name, const local_case *cases,
                         size_t n) {
  fl_tz *tz = zone(name);
  if (!tz) return;
  for (size_t i = 0; i < n; i++) {
    int64_t out[2] = {-1, -1};
    int got = fl_tz_local_to_utc(tz, cases[i].local, out);
    CHECK_EQ_INT(got, cases[i].n);
    CHECK_EQ_INT(out[0], cases[i].out0);
    if (cases[i].n == 2) CHECK_EQ_INT(out[1], cases[i].out1);
    if (got != cases[i].n || out[0] != cases[i].out0)
      fprintf(stderr, "  %s, local %lld\n", name, (long long)cases[i].local);
  }
  fl_tz_free(tz);
}

static void test_local_to_utc_madrid(void) {
  /* 2026-03-29 00:00 local = 1774742400 as if UTC; the clocks jump from
     02:00 to 03:00 at 1774746000. 2026-10-25 00:00 = 1792886400; 02:00 to
     02:59:59 happen twice, from 00:00Z and from 01:00Z. */
  static const local_case cases[] = {
      {1774742400 + 12 * 3600, 1, 1774742400 + 10 * 3600, 0}, /* noon */
      {1774742400 + 7140, 1, 1774745940, 0},   /* 01:59, CET */
      {1774742400 + 7200, 0, 1774746000, 0},   /* 02:00, gap */
      {1774742400 + 9000, 0, 1774746000, 0},   /* 02:30, gap */
      {1774742400 + 10799, 0, 1774746000, 0},  /* 02:59:59, gap */
      {1774742400 + 10800, 1, 1774746000, 0},  /* 03:00, CEST */
      {1792886400 + 7199, 1, 1792886399, 0},   /* 01:59:59 */
      {1792886400 + 7200, 2, 1792886400, 1792890000},   /* 02:00 twice */
      {1792886400 + 9000, 2, 1792888200, 1792891800},   /* 02:30 twice */
      {1792886400 + 10799, 2, 1792889999, 1792893599},  /* 02:59:59 */
      {1792886400 + 10800, 1, 1792893600, 0},  /* 03:00, CET only */
  };
  check_locals("Europe/Madrid", cases, sizeof cases / sizeof cases[0]);
}

static void test_local_to_utc_new_york(void) {
  /* 2026-03-08 00:00 local = 1772928000, gap 02:00-03:00 ends at
     1772953200; 2026-11-01 00:00 = 1793491200, 01:00-01:59 twice. */
  static const local_case cases[] = {
      {1772928000 + 9000, 0, 1772953200, 0},               /* 02:30 */
      {1772928000 + 10800, 1, 1772953200, 0},              /* 03:00 */
      {1772928000 + 5400, 1, 1772951400, 0},               /* 01:30 EST */
      {1793491200 + 5400, 2, 1793511000, 1793514600},      /* 01:30 */
      {1793491200 + 7200, 1, 1793516400, 0},               /* 02:00 EST */
      {1793491200 + 3599, 1, 1793509199, 0},               /* 00:59:59 */
  };
  check_locals("America/New_York", cases, sizeof cases / sizeof cases[0]);
}

static void test_local_to_utc_half_hour_dst(void) {
  /* Lord Howe 2026: 10-04 02:00-02:30 skipped (ends 1791041400); 04-05
     01:30-02:00 twice (+11 then +10:30; the change at 1775314800).
     2026-10-04 00:00 local = 1791072000, 2026-04-05 00:00 = 1775347200. */
  static const local_case cases[] = {
      {1791072000 + 8100, 0, 1791041400, 0},               /* 02:15 */
      {1791072000 + 9000, 1, 1791041400, 0},               /* 02:30 */
      {1775347200 + 6300, 2, 1775313900, 1775315700},      /* 01:45 */
      {1775347200 + 7200, 1, 1775316600, 0},               /* 02:00 */
  };
  check_locals("Australia/Lord_Howe", cases, sizeof cases / sizeof cases[0]);
}

/* ---- POSIX TZ strings ---------------------------------------------------- */

static void check_posix(const char *spec, const offset_case *cases,
                        size_t n) {
  fl_tz *tz = NULL;
  int rc = fl_tz_from_posix(spec, &tz, err, sizeof err);
  CHECK_EQ_INT(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  %s: %s\n", spec, err);
    return;
  }
  CHECK_EQ_STR(fl_tz_name(tz), spec);
  for (size_t i = 0; i < n; i++) {
    int got = fl_tz_offset_at(tz, cases[i].t);
    CHECK_EQ_INT(got, cases[i].offset);
    if (got != cases[i].offset)
      fprintf(stderr, "  %s at %lld\n", spec, (long long)cases[i].t);
  }
  fl_tz_free(tz);
}

static void test_posix_strings(void) {
  /* The same as the New York transitions of 2026. */
  static const offset_case us[] = {{1772953199, -18000},
                                   {1772953200, -14400},
                                   {1793512799, -14400},
                                   {1793512800, -18000}};
  check_posix("EST5EDT,M3.2.0,M11.1.0", us, 4);
  check_posix("EST5EDT", us, 4); /* no rules: the US ones */
  static const offset_case eu[] = {{1774745999, 3600},
                                   {1774746000, 7200},
                                   {1792889999, 7200},
                                   {1792890000, 3600}};
  check_posix("CET-1CEST,M3.5.0,M10.5.0/3", eu, 4);
  check_posix("<+01>-1<+02>-2,M3.5.0/2:00:00,M10.5.0/3", eu, 4);
  static const offset_case india[] = {{0, 19800}, {4118083200, 19800}};
  check_posix("<+0530>-5:30", india, 2);
  static const offset_case utc[] = {{0, 0}, {1774746000, 0}};
  check_posix("UTC0", utc, 2);
  /* Daylight time all year (a TZif version 3 idiom): never standard. */
  static const offset_case always[] = {
      {1767227400, -14400}, /* 2026-01-01 00:30Z */
      {1767243600, -14400}, /* 2026-01-01 05:00Z, the "change" */
      {1798759800, -14400}, /* 2026-12-31 23:30Z */
      {1782907200, -14400}};
  check_posix("EST5EDT4,0/0,J365/25", always, 4);
  /* Jn never counts February 29: J60 is March 1 in every year. n counts
     it: 59 is February 29 in 2028 and March 1 in 2027. */
  static const offset_case julian[] = {{1835481599, 0},
                                       {1835481600, 3600},
                                       {1803859199, 0},
                                       {1803859200, 3600}};
  check_posix("AAA0BBB,J60/0,J300/0", julian, 4);
  static const offset_case zero_based[] = {{1835395199, 0},
                                           {1835395200, 3600},
                                           {1803859199, 0},
                                           {1803859200, 3600}};
  check_posix("AAA0BBB,59/0,J300/0", zero_based, 4);
}

static void test_posix_string_errors(void) {
  static const struct {
    const char *spec, *msg;
  } cases[] = {
      {"", "bad POSIX TZ string '': bad standard time name"},
      {"E5", "bad POSIX TZ string 'E5': bad standard time name"},
      {"EST", "bad POSIX TZ string 'EST': bad standard time offset"},
      {"EST25", "bad POSIX TZ string 'EST25': bad standard time offset"},
      {"EST5ED", "bad POSIX TZ string 'EST5ED': bad daylight time name"},
      {"EST5EDT,M13.1.0,M11.1.0",
       "bad POSIX TZ string 'EST5EDT,M13.1.0,M11.1.0': bad start rule"},
      {"EST5EDT,M3.2.0",
       "bad POSIX TZ string 'EST5EDT,M3.2.0': bad end rule"},
      {"EST5EDT,M3.2.0,M11.1.0/168",
       "bad POSIX TZ string 'EST5EDT,M3.2.0,M11.1.0/168': bad end rule"},
      {"EST5EDT,J0,J300", "bad POSIX TZ string 'EST5EDT,J0,J300': "
                          "bad start rule"},
      {"EST5EDT,M3.2.0,M11.1.0x",
       "bad POSIX TZ string 'EST5EDT,M3.2.0,M11.1.0x': unexpected text "
       "after the rules"},
      {"<+05>-5x", "bad POSIX TZ string '<+05>-5x': bad daylight time name"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fl_tz *tz = (fl_tz *)&err; /* must be reset to NULL */
    err[0] = '\0';
    CHECK_EQ_INT(fl_tz_from_posix(cases[i].spec, &tz, err, sizeof err),
                 FLOWLUA_EINVAL);
    CHECK(tz == NULL);
    CHECK_EQ_STR(err, cases[i].msg);
  }
}

/* ---- names and files ----------------------------------------------------- */

static void check_load_error(const char *name, int status, const char *msg) {
  fl_tz *tz = NULL;
  err[0] = '\0';
  CHECK_EQ_INT(fl_tz_load(name, &tz, err, sizeof err), status);
  CHECK(tz == NULL);
  CHECK_EQ_STR(err, msg);
  fl_tz_free(tz);
}

static void test_bad_zone_names(void) {
  check_load_error("Europe/Madird", FLOWLUA_EINVAL,
                   "unknown time zone 'Europe/Madird' (no such file in "
                   "/usr/share/zoneinfo)");
  check_load_error("America", FLOWLUA_EINVAL,
                   "unknown time zone 'America' (a folder in "
                   "/usr/share/zoneinfo, not a zone)");
  check_load_error("../etc/passwd", FLOWLUA_EINVAL,
                   "invalid time zone name '../etc/passwd': '..' is not "
                   "allowed");
  check_load_error("Europe/../../../etc/passwd", FLOWLUA_EINVAL,
                   "invalid time zone name 'Europe/../../../etc/passwd': "
                   "'..' is not allowed");
  check_load_error("/etc/localtime", FLOWLUA_EINVAL,
                   "invalid time zone name '/etc/localtime': it must not "
                   "start with '/'");
  check_load_error("Europe/Ma drid", FLOWLUA_EINVAL,
                   "invalid time zone name 'Europe/Ma drid': character ' ' "
                   "is not allowed (only letters, digits and _ + - /)");
  check_load_error("Europe/Madrid\n", FLOWLUA_EINVAL,
                   "invalid time zone name 'Europe/Madrid?': character 0x0a "
                   "is not allowed (only letters, digits and _ + - /)");
  check_load_error("zone.tab", FLOWLUA_EINVAL,
                   "invalid time zone name 'zone.tab': character '.' is not "
                   "allowed (only letters, digits and _ + - /)");
  /* The name is quoted cut to 76 characters. */
  char long_name[301], want[200];
  memset(long_name, 'A', 300);
  long_name[300] = '\0';
  snprintf(want, sizeof want,
           "invalid time zone name '%.76s...': longer than 255 characters",
           long_name);
  check_load_error(long_name, FLOWLUA_EINVAL, want);
  /* A message is cut to fit and the call still fails cleanly. */
  fl_tz *tz = NULL;
  char small[8];
  CHECK_EQ_INT(fl_tz_load("No/Such", &tz, small, sizeof small),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(small, "unknown");
  CHECK_EQ_INT(fl_tz_load("No/Such", &tz, NULL, 0), FLOWLUA_EINVAL);
}

/* ---- TZif data built by hand (RFC 8536) ---------------------------------- */

typedef struct bytes {
  unsigned char b[1024];
  size_t n;
} bytes;

static void put(bytes *o, const void *p, size_t n) {
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void put8(bytes *o, unsigned v) { o->b[o->n++] = (unsigned char)v; }
static void put32(bytes *o, int64_t v) {
  for (int s = 24; s >= 0; s -= 8) put8(o, (unsigned)((uint64_t)v >> s) & 255);
}
static void put64(bytes *o, int64_t v) {
  put32(o, (int64_t)((uint64_t)v >> 32));
  put32(o, v);
}

/* A header: magic, version, 15 zero bytes, then isut, isstd, leap, time,
   type and char counts. */
static void put_header(bytes *o, char version, unsigned leap, unsigned time,
                       unsigned types, unsigned chars) {
  put(o, "TZif", 4);
  put8(o, (unsigned char)version);
  for (int i = 0; i < 15; i++) put8(o, 0);
  put32(o, 0);
  put32(o, 0);
  put32(o, leap);
  put32(o, time);
  put32(o, types);
  put32(o, chars);
}

/* Two types, STD +1h and DST +2h, and transitions at 1000000 (to DST) and
   2000000 (back), with 4- or 8-byte times. */
static void put_two_transitions(bytes *o, int time_size) {
  if (time_size == 4) {
    put32(o, 1000000);
    put32(o, 2000000);
  } else {
    put64(o, 1000000);
    put64(o, 2000000);
  }
  put8(o, 1);
  put8(o, 0);
  put32(o, 3600), put8(o, 0), put8(o, 0);
  put32(o, 7200), put8(o, 1), put8(o, 4);
  put(o, "STD\0DST\0", 8);
}

static bytes v1_file(void) {
  bytes o = {.n = 0};
  put_header(&o, 0, 0, 2, 2, 8);
  put_two_transitions(&o, 4);
  return o;
}

/* Version 2: a minimal 32-bit block, the 64-bit block, then a footer. */
static bytes v2_file(const char *footer) {
  bytes o = {.n = 0};
  put_header(&o, '2', 0, 0, 1, 4);
  put32(&o, 0), put8(&o, 0), put8(&o, 0);
  put(&o, "UTC\0", 4);
  put_header(&o, '2', 0, 2, 2, 8);
  put_two_transitions(&o, 8);
  put(&o, footer, strlen(footer));
  return o;
}

static fl_tz *from_bytes(const bytes *o, int want_rc) {
  fl_tz *tz = NULL;
  err[0] = '\0';
  int rc = fl_tz_from_tzif("Test/Zone", o->b, o->n, &tz, err, sizeof err);
  CHECK_EQ_INT(rc, want_rc);
  if (rc != want_rc) fprintf(stderr, "  message: %s\n", err);
  return tz;
}

static void test_tzif_version_1(void) {
  bytes o = v1_file();
  fl_tz *tz = from_bytes(&o, 0);
  if (!tz) return;
  CHECK_EQ_STR(fl_tz_name(tz), "Test/Zone");
  CHECK_EQ_INT(fl_tz_offset_at(tz, -5000000), 3600); /* type 0 before */
  CHECK_EQ_INT(fl_tz_offset_at(tz, 999999), 3600);
  CHECK_EQ_INT(fl_tz_offset_at(tz, 1000000), 7200);
  CHECK_EQ_INT(fl_tz_offset_at(tz, 1999999), 7200);
  CHECK_EQ_INT(fl_tz_offset_at(tz, 2000000), 3600);
  CHECK_EQ_INT(fl_tz_offset_at(tz, 4102444800), 3600); /* no footer */
  int64_t at;
  CHECK_EQ_INT(fl_tz_next_transition(tz, 2000000, &at), 0);
  fl_tz_free(tz);
}

static void test_tzif_version_2_footer(void) {
  bytes o = v2_file("\nCET-1CEST,M3.5.0,M10.5.0/3\n");
  fl_tz *tz = from_bytes(&o, 0);
  if (tz) {
    CHECK_EQ_INT(fl_tz_offset_at(tz, 1500000), 7200);
    CHECK_EQ_INT(fl_tz_offset_at(tz, 1774745999), 3600);
    CHECK_EQ_INT(fl_tz_offset_at(tz, 1774746000), 7200);
    fl_tz_free(tz);
  }
  /* An empty footer: the last offset stays. */
  o = v2_file("\n\n");
  tz = from_bytes(&o, 0);
  if (tz) {
    CHECK_EQ_INT(fl_tz_offset_at(tz, 1774746000), 3600);
    fl_tz_free(tz);
  }
}

typedef struct corrupt_case {
  size_t at;          /* byte to overwrite, or SIZE_MAX for none */
  unsigned char with;
  size_t len;         /* bytes kept, or 0 for all */
  const char *msg;
} corrupt_case;

static void test_tzif_corrupt(void) {
  static const corrupt_case v1_cases[] = {
      {0, 'X', 0, "not a TZif file"},
      {4, '1', 0, "unknown TZif version"},
      {SIZE_MAX, 0, 43, "truncated header"},
      {SIZE_MAX, 0, 60, "truncated data"},
      {39, 0, 0, "no local time types"},           /* typecnt 2 -> 0 */
      {43, 0, 0, "no time zone abbreviations"},    /* charcnt 8 -> 0 */
      {39, 3, 0, "truncated data"},                /* typecnt 2 -> 3 */
      {44 + 8, 2, 0, "time type index out of range"},
      {44 + 4, 0x80, 0, "transition times out of order"}, /* 2nd < 0 */
      {44 + 10 + 4, 2, 0, "bad daylight flag"},
      {44 + 10 + 5, 9, 0, "abbreviation index out of range"},
      {44 + 10 + 1, 0x7f, 0, "UTC offset out of range"},
  };
  for (size_t i = 0; i < sizeof v1_cases / sizeof v1_cases[0]; i++) {
    bytes o = v1_file();
    if (v1_cases[i].at != SIZE_MAX) o.b[v1_cases[i].at] = v1_cases[i].with;
    if (v1_cases[i].len) o.n = v1_cases[i].len;
    fl_tz *tz = from_bytes(&o, FLOWLUA_EIO);
    CHECK(tz == NULL);
    char want[160];
    snprintf(want, sizeof want, "corrupt time zone file 'Test/Zone': %s",
             v1_cases[i].msg);
    CHECK_EQ_STR(err, want);
  }
  static const struct {
    const char *footer, *msg;
  } footers[] = {
      {"", "missing TZ string footer"},
      {"x", "missing TZ string footer"},
      {"\nCET-1", "unterminated TZ string footer"},
      {"\nCET-1CEST,M3.5.0\n",
       "bad TZ string 'CET-1CEST,M3.5.0' in footer: bad end rule"},
  };
  for (size_t i = 0; i < sizeof footers / sizeof footers[0]; i++) {
    bytes o = v2_file(footers[i].footer);
    fl_tz *tz = from_bytes(&o, FLOWLUA_EIO);
    CHECK(tz == NULL);
    char want[160];
    snprintf(want, sizeof want, "corrupt time zone file 'Test/Zone': %s",
             footers[i].msg);
    CHECK_EQ_STR(err, want);
  }
  /* A NUL inside the footer ("CET-1\0EST"). */
  bytes o = v2_file("\nCET-1CEST\n");
  o.b[o.n - 5] = '\0';
  CHECK(from_bytes(&o, FLOWLUA_EIO) == NULL);
  CHECK_EQ_STR(err, "corrupt time zone file 'Test/Zone': bad TZ string "
                    "footer");
  /* A second header that claims version 1. */
  o = v2_file("\n\n");
  o.b[44 + 6 + 4 + 4] = 0;
  CHECK(from_bytes(&o, FLOWLUA_EIO) == NULL);
  CHECK_EQ_STR(err, "corrupt time zone file 'Test/Zone': second header has "
                    "version 1");
  /* Leap-second records: refused, not misread. */
  o = (bytes){.n = 0};
  put_header(&o, 0, 1, 0, 1, 4);
  put32(&o, 0), put8(&o, 0), put8(&o, 0);
  put(&o, "UTC\0", 4);
  put32(&o, 78796800), put32(&o, 1);
  CHECK(from_bytes(&o, FLOWLUA_EINVAL) == NULL);
  CHECK_EQ_STR(err, "time zone file 'Test/Zone' counts leap seconds, which "
                    "POSIX time does not (use the zone without 'right/')");
  /* No data at all. */
  fl_tz *tz = NULL;
  CHECK_EQ_INT(fl_tz_from_tzif("Empty", NULL, 0, &tz, err, sizeof err),
               FLOWLUA_EIO);
  CHECK_EQ_STR(err, "corrupt time zone file 'Empty': not a TZif file");
}

static unsigned char *read_whole(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char *buf = malloc(1 << 16);
  *len = buf ? fread(buf, 1, 1 << 16, f) : 0;
  fclose(f);
  return buf;
}

/* Every proper prefix of a real zone file is an error, and random damage
   never crashes (the sanitizer build would catch a stray read). */
static void test_tzif_truncated_and_garbage(void) {
  size_t len = 0;
  unsigned char *data = read_whole("/usr/share/zoneinfo/Europe/Madrid", &len);
  CHECK(data != NULL && len > 1000);
  if (!data) return;
  fl_tz *tz = NULL;
  CHECK_EQ_INT(fl_tz_from_tzif("Europe/Madrid", data, len, &tz, err,
                               sizeof err), 0);
  CHECK_EQ_INT(fl_tz_offset_at(tz, 1774746000), 7200);
  fl_tz_free(tz);
  int accepted = 0;
  for (size_t n = 0; n < len; n++) {
    unsigned char *copy = malloc(n ? n : 1); /* exact size for ASan */
    memcpy(copy, data, n);
    if (fl_tz_from_tzif("Europe/Madrid", copy, n, &tz, err, sizeof err) == 0) {
      accepted++;
      fl_tz_free(tz);
    }
    free(copy);
  }
  CHECK_EQ_INT(accepted, 0);
  /* Flip bytes at random; whatever parses must answer queries sanely. */
  uint32_t seed = 12345;
  int insane = 0;
  for (int round = 0; round < 3000; round++) {
    unsigned char *copy = malloc(len);
    memcpy(copy, data, len);
    for (int k = 0; k < 1 + round % 4; k++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = (seed >> 8) % (round % 2 ? 200 : len);
      seed = seed * 1103515245u + 12345u;
      copy[at] = (unsigned char)(seed >> 16);
    }
    if (fl_tz_from_tzif("X", copy, len, &tz, NULL, 0) == 0) {
      int64_t out[2];
      int off = fl_tz_offset_at(tz, 1774746000);
      if (off < -89999 || off > 93599) insane++;
      if (fl_tz_local_to_utc(tz, 1774751400, out) > 2) insane++;
      fl_tz_free(tz);
    }
    free(copy);
  }
  CHECK_EQ_INT(insane, 0);
  free(data);
}

/* Zone files found through $TZDIR: a corrupt one is named in the error. */
static void test_tzdir_and_corrupt_files(void) {
  char dir[] = "/tmp/fl_tz_" MKDTEMP_SUFFIX;
  CHECK(mkdtemp(dir) != NULL);
  char path[128], msg[256];
  snprintf(path, sizeof path, "%s/Bad", dir);
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f) {
    fputs("hello, not a zone\n", f);
    fclose(f);
  }
  snprintf(path, sizeof path, "%s/Sub", dir);
  CHECK_EQ_INT(mkdir(path, 0700), 0);
  setenv("TZDIR", dir, 1);
  snprintf(msg, sizeof msg,
           "corrupt time zone file '%s/Bad': not a TZif file", dir);
  check_load_error("Bad", FLOWLUA_EIO, msg);
  snprintf(msg, sizeof msg,
           "unknown time zone 'Europe/Madrid' (no such file in %s)", dir);
  check_load_error("Europe/Madrid", FLOWLUA_EINVAL, msg);
  snprintf(msg, sizeof msg,
           "unknown time zone 'Sub' (a folder in %s, not a zone)", dir);
  check_load_error("Sub", FLOWLUA_EINVAL, msg);
  /* UTC needs no file. */
  fl_tz *tz = NULL;
  CHECK_EQ_INT(fl_tz_load("UTC", &tz, err, sizeof err), 0);
  CHECK_EQ_INT(fl_tz_offset_at(tz, 1774746000), 0);
  fl_tz_free(tz);
  unsetenv("TZDIR");
  snprintf(path, sizeof path, "%s/Bad", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/Sub", dir);
  rmdir(path);
  rmdir(dir);
}

/* ---- local time ---------------------------------------------------------- */

static void check_local(const char *tz_env, const char *want_name,
                        int64_t t, int want_offset) {
  setenv("TZ", tz_env, 1);
  fl_tz *tz = NULL;
  int rc = fl_tz_load(NULL, &tz, err, sizeof err);
  CHECK_EQ_INT(rc, 0);
  if (rc == 0) {
    CHECK_EQ_STR(fl_tz_name(tz), want_name);
    CHECK_EQ_INT(fl_tz_offset_at(tz, t), want_offset);
  } else {
    fprintf(stderr, "  TZ=%s: %s\n", tz_env, err);
  }
  fl_tz_free(tz);
}

static void test_local_time(void) {
  check_local("Europe/Madrid", "Europe/Madrid", 1774746000, 7200);
  check_local(":America/New_York", "America/New_York", 1774746000, -14400);
  check_local(":/usr/share/zoneinfo/Asia/Kolkata",
              "/usr/share/zoneinfo/Asia/Kolkata", 0, 19800);
  check_local("CET-1CEST,M3.5.0,M10.5.0/3", "CET-1CEST,M3.5.0,M10.5.0/3",
              1774746000, 7200);
  check_local("EST5", "EST5", 1774746000, -18000); /* not a file: POSIX */
  check_local("", "UTC", 1774746000, 0);
  /* "" as a name is local time too. */
  setenv("TZ", "Asia/Kolkata", 1);
  fl_tz *tz = NULL;
  CHECK_EQ_INT(fl_tz_load("", &tz, err, sizeof err), 0);
  CHECK_EQ_STR(fl_tz_name(tz), "Asia/Kolkata");
  fl_tz_free(tz);
  setenv("TZ", "Nowhere/Zone", 1);
  check_load_error(NULL, FLOWLUA_EINVAL,
                   "unknown time zone 'Nowhere/Zone' (no such file in "
                   "/usr/share/zoneinfo)");
  setenv("TZ", "CET-1CEST,M3.5.0", 1);
  check_load_error(NULL, FLOWLUA_EINVAL,
                   "bad POSIX TZ string 'CET-1CEST,M3.5.0': bad end rule");
  setenv("TZ", ":/nonexistent/zone", 1);
  check_load_error(NULL, FLOWLUA_EINVAL,
                   "unknown time zone '/nonexistent/zone' (from TZ: no such "
                   "file)");
  /* Unset: /etc/localtime (whatever this machine has), else UTC. */
  unsetenv("TZ");
  tz = NULL;
  CHECK_EQ_INT(fl_tz_load(NULL, &tz, err, sizeof err), 0);
  CHECK(tz != NULL && fl_tz_name(tz)[0] != '\0');
  fl_tz_free(tz);
}

/* ---- ISO 8601 ------------------------------------------------------------ */

static void check_format(int64_t t, const char *zone_name, const char *want) {
  fl_tz *tz = zone_name ? zone(zone_name) : NULL;
  char buf[FL_TIME_ISO_SIZE];
  size_t n = fl_time_format_iso(t, tz, buf, sizeof buf);
  CHECK_EQ_STR(buf, want);
  CHECK_EQ_INT(n, strlen(want));
  fl_tz_free(tz);
}

static void test_format_iso(void) {
  check_format(1774746000, "Europe/Madrid", "2026-03-29T03:00:00+02:00");
  check_format(1774745999, "Europe/Madrid", "2026-03-29T01:59:59+01:00");
  check_format(1792888200, "Europe/Madrid", "2026-10-25T02:30:00+02:00");
  check_format(1792891800, "Europe/Madrid", "2026-10-25T02:30:00+01:00");
  check_format(1793514600, "America/New_York", "2026-11-01T01:30:00-05:00");
  check_format(1791041400, "Australia/Lord_Howe",
               "2026-10-04T02:30:00+11:00");
  check_format(0, "Asia/Kolkata", "1970-01-01T05:30:00+05:30");
  check_format(0, NULL, "1970-01-01T00:00:00+00:00");
  check_format(0, "UTC", "1970-01-01T00:00:00+00:00");
  check_format(-1, NULL, "1969-12-31T23:59:59+00:00");
  check_format(-2177452801, "Europe/Madrid", "1900-12-31T23:45:15-00:14:44");
  check_format(FL_TIME_MIN, NULL, "0001-01-01T00:00:00+00:00");
  check_format(FL_TIME_MAX, NULL, "9999-12-31T23:59:59+00:00");
  check_format(FL_TIME_MAX + 1, NULL, "");
  check_format(FL_TIME_MIN - 1, NULL, "");
  char small[25] = "x";
  CHECK_EQ_INT(fl_time_format_iso(0, NULL, small, sizeof small), 0);
  CHECK_EQ_STR(small, "");
  CHECK_EQ_INT(fl_time_format_iso(0, NULL, small, 0), 0);
}

static void test_parse_iso(void) {
  fl_tz *madrid = zone("Europe/Madrid");
  static const struct {
    const char *s;
    int local_madrid; /* 1: read in Madrid, else in UTC */
    int64_t want;
  } cases[] = {
      {"2026-03-29T01:30:00+01:00", 0, 1774744200},
      {"2026-03-29T00:30:00Z", 0, 1774744200},
      {"2026-03-29t00:30:00z", 0, 1774744200},
      {"2026-03-29T02:30:00+0200", 0, 1774744200},
      {"2026-03-29T02:30+02", 0, 1774744200},
      {"2026-03-29T00:30:00.999Z", 0, 1774744200},
      {"2026-03-29T00:30:00,5+00:00", 0, 1774744200},
      {"2026-03-28T19:30:00-05:00", 0, 1774744200},
      {"2026-03-29T01:30", 1, 1774744200},
      {"2026-03-29 01:30:00", 1, 1774744200},
      {"2026-03-29T02:30", 1, 1774746000}, /* in the gap: its end */
      {"2026-10-25T02:30", 1, 1792888200}, /* twice: the earlier */
      {"2026-03-29", 1, 1774738800},       /* midnight local */
      {"2026-03-29", 0, 1774742400},
      {"0001-01-01T00:00:00Z", 0, FL_TIME_MIN},
      {"9999-12-31T23:59:59+00:00", 0, FL_TIME_MAX},
      {"2028-02-29T00:00:00Z", 0, 1835395200},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t t = -1;
    const fl_tz *tz = cases[i].local_madrid ? madrid : NULL;
    int rc = fl_time_parse_iso(cases[i].s, tz, &t, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(t, cases[i].want);
    if (rc != 0 || t != cases[i].want)
      fprintf(stderr, "  parsing '%s': %s\n", cases[i].s, err);
  }
  fl_tz_free(madrid);
}

static void test_parse_iso_errors(void) {
  static const char *const shape[] = {
      "yesterday", "",  "2026-3-29", "2026-03-29T1:30", "2026-03-29T",
      "2026-03-29T01:30:00+1", "2026-03-29T01:30:00+01:00x",
      "2026-03-29T01", "2026-03-29+01:00", "2026-03-29T01:30:00+24:00",
      " 2026-03-29", "2026-03-29T01:30:00.",
  };
  for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++) {
    int64_t t = 0;
    char want[200];
    snprintf(want, sizeof want,
             "invalid time '%s': expected ISO 8601 like "
             "2026-03-29T01:30:00+01:00, 2026-03-29T01:30 or 2026-03-29",
             shape[i]);
    CHECK_EQ_INT(fl_time_parse_iso(shape[i], NULL, &t, err, sizeof err),
                 FLOWLUA_EINVAL);
    CHECK_EQ_STR(err, want);
  }
  static const struct {
    const char *s, *msg;
  } ranges[] = {
      {"2026-13-01",
       "invalid time '2026-13-01': month 13 is out of range 1-12"},
      {"2026-00-10", "invalid time '2026-00-10': month 0 is out of range 1-12"},
      {"2026-02-29", "invalid time '2026-02-29': day 29 is out of range for "
                     "February 2026 (1-28)"},
      {"2026-04-31", "invalid time '2026-04-31': day 31 is out of range for "
                     "April 2026 (1-30)"},
      {"2026-03-29T24:00",
       "invalid time '2026-03-29T24:00': hour 24 is out of range 0-23"},
      {"2026-03-29T12:60",
       "invalid time '2026-03-29T12:60': minute 60 is out of range 0-59"},
      {"2026-03-29T12:00:60",
       "invalid time '2026-03-29T12:00:60': second 60 is out of range 0-59"},
      {"0000-01-01",
       "invalid time '0000-01-01': year 0 is out of range 1-9999"},
      {"0001-01-01T00:00:00+01:00",
       "invalid time '0001-01-01T00:00:00+01:00': out of range (years 1 to "
       "9999 UTC)"},
      {"2026-03-29\n", "invalid time '2026-03-29?': expected ISO 8601 like "
                       "2026-03-29T01:30:00+01:00, 2026-03-29T01:30 or "
                       "2026-03-29"},
  };
  for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
    int64_t t = 0;
    CHECK_EQ_INT(fl_time_parse_iso(ranges[i].s, NULL, &t, err, sizeof err),
                 FLOWLUA_EINVAL);
    CHECK_EQ_STR(err, ranges[i].msg);
  }
  int64_t t = 0;
  CHECK_EQ_INT(fl_time_parse_iso(NULL, NULL, &t, err, sizeof err),
               FLOWLUA_EINVAL);
  CHECK_EQ_STR(err, "missing time (expected ISO 8601)");
}

/* Formatting then parsing gives the instant back, across both changes. */
static void test_iso_round_trip(void) {
  fl_tz *tz = zone("America/New_York");
  int bad = 0;
  for (int64_t t = 1772900000; t < 1772900000 + 40 * 86400; t += 617) {
    char buf[FL_TIME_ISO_SIZE];
    int64_t back = 0;
    fl_time_format_iso(t, tz, buf, sizeof buf);
    if (fl_time_parse_iso(buf, NULL, &back, err, sizeof err) != 0 ||
        back != t)
      bad++;
  }
  CHECK_EQ_INT(bad, 0);
  fl_tz_free(tz);
}

/* Random POSIX TZ strings and ISO times never crash their parsers; a zone
   that parses gives sane offsets. */
static void test_random_text(void) {
  static const char tz_chars[] = "ESTCDT<>+-0123456789:,./JM";
  static const char iso_chars[] = "20261-0329T:+Zz. 5";
  uint32_t seed = 7;
  int parsed = 0, insane = 0;
  for (int round = 0; round < 20000; round++) {
    char text[40];
    const char *chars = round % 2 ? tz_chars : iso_chars;
    size_t n_chars = round % 2 ? sizeof tz_chars - 1 : sizeof iso_chars - 1;
    seed = seed * 1103515245u + 12345u;
    size_t len = (seed >> 16) % sizeof text;
    for (size_t i = 0; i < len; i++) {
      seed = seed * 1103515245u + 12345u;
      text[i] = chars[(seed >> 16) % n_chars];
    }
    text[len] = '\0';
    if (round % 2 == 0) {
      int64_t t;
      if (fl_time_parse_iso(text, NULL, &t, err, sizeof err) == 0 &&
          (t < FL_TIME_MIN || t > FL_TIME_MAX))
        insane++;
      continue;
    }
    fl_tz *tz = NULL;
    if (fl_tz_from_posix(text, &tz, err, sizeof err) != 0) continue;
    parsed++;
    for (int64_t t = 1767225600; t < 1798761600; t += 86400 * 7) {
      int off = fl_tz_offset_at(tz, t);
      int64_t out[2];
      if (off < -89999 || off > 93599 ||
          fl_tz_local_to_utc(tz, t + off, out) < 1)
        insane++;
    }
    fl_tz_free(tz);
  }
  CHECK(parsed > 0);
  CHECK_EQ_INT(insane, 0);
}

int main(void) {
  unsetenv("TZDIR");
  RUN(test_civil_dates);
  RUN(test_leap_years_and_month_lengths);
  RUN(test_utc);
  RUN(test_madrid_offsets);
  RUN(test_new_york_offsets);
  RUN(test_footer_rule_in_2100);
  RUN(test_fixed_offset_zone);
  RUN(test_next_transition);
  RUN(test_local_to_utc_madrid);
  RUN(test_local_to_utc_new_york);
  RUN(test_local_to_utc_half_hour_dst);
  RUN(test_posix_strings);
  RUN(test_posix_string_errors);
  RUN(test_bad_zone_names);
  RUN(test_tzif_version_1);
  RUN(test_tzif_version_2_footer);
  RUN(test_tzif_corrupt);
  RUN(test_tzif_truncated_and_garbage);
  RUN(test_tzdir_and_corrupt_files);
  RUN(test_local_time);
  RUN(test_format_iso);
  RUN(test_parse_iso);
  RUN(test_parse_iso_errors);
  RUN(test_iso_round_trip);
  RUN(test_random_text);
  return check_summary();
}
