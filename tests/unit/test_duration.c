/*
 * test_duration.c — the one duration formatter in each of its styles: the
 * unit changes at their edges (rounding first, so 59.97 s is "1m00s"),
 * unknown values, and the clock that never rounds up.
 */
#include <math.h>
#include <stddef.h>

#include "check.h"
#include "duration.h"

typedef struct {
  double seconds;
  const char *text;
} dcase;

static void check_style(fl_duration_style style, const dcase *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    fl_buf b = FL_BUF_INIT;
    fl_duration_add(&b, cases[i].seconds, style);
    CHECK_EQ_STR(fl_buf_str(&b), cases[i].text);
    fl_buf_free(&b);
  }
}

static void test_compact(void) {
  static const dcase cases[] = {
      {0, "0ms"},        {0.004, "4ms"},      {0.9994, "999ms"},
      {0.9996, "1.0s"},  {12.34, "12.3s"},    {59.94, "59.9s"},
      {59.97, "1m00s"},  {123, "2m03s"},      {3599.4, "59m59s"},
      {3599.6, "1h00m"}, {3720, "1h02m"},     {-1, "-"},
      {NAN, "-"},        {INFINITY, "-"}};
  check_style(FL_DURATION_COMPACT, cases, sizeof cases / sizeof cases[0]);
}

static void test_spaced(void) {
  static const dcase cases[] = {
      {0.00085, "850 \xC2\xB5s"}, {0.004, "4 ms"},     {12.34, "12.3 s"},
      {123, "2 min 03 s"},        {3720, "1 h 02 min"}, {-0.5, "?"},
      {NAN, "?"}};
  check_style(FL_DURATION_SPACED, cases, sizeof cases / sizeof cases[0]);
}

static void test_clock_rounds_down(void) {
  static const dcase cases[] = {{-1, "0.0s"},     {0.25, "0.2s"},
                                {59.96, "59.9s"}, {61, "1m01s"},
                                {3599.9, "59m59s"}, {3725, "1h02m"}};
  check_style(FL_DURATION_CLOCK, cases, sizeof cases / sizeof cases[0]);
}

static void test_seconds(void) {
  static const dcase cases[] = {
      {1, "1 s"}, {0.25, "0.25 s"}, {30, "30 s"}, {0.0015, "0.0015 s"},
      {0.0005, "0.500 ms"}};
  check_style(FL_DURATION_SECONDS, cases, sizeof cases / sizeof cases[0]);
}

/* Durations as written on a command line: units, sums, and every way one
   can be wrong, each named. */
static void test_parse(void) {
  static const struct {
    const char *text;
    double seconds;
  } ok[] = {{"30d", 30 * 86400.0}, {"12h", 43200}, {"1d12h", 129600},
            {"90s", 90},        {"1.5h", 5400},   {"2w", 14 * 86400.0},
            {"0s", 0},          {"5m30s", 330},   {".5m", 30}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    double got = -1;
    char err[160] = "";
    CHECK_EQ_INT(fl_duration_parse(ok[i].text, &got, err, sizeof err), 0);
    CHECK_EQ_DBL(got, ok[i].seconds, 1e-9);
    CHECK_EQ_STR(err, "");
  }
  static const struct {
    const char *text, *why;
  } bad[] = {{"", "an empty duration"},
             {"30", "a unit is missing after the last number"},
             {"30x", "unknown unit 'x'"},
             {"d", "a number is expected at 'd'"},
             {"-1d", "a number is expected at '-1d'"},
             {"1d-2h", "a number is expected at '-2h'"},
             {"1e3s", "unknown unit 'e'"},
             {"inf", "a number is expected at 'inf'"},
             {"1.2.3s", "unknown unit '.'"},
             {".s", "a number is expected at '.s'"},
             {"99999999999999d", "too long a duration"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    double got = 42;
    char err[160] = "";
    CHECK_EQ_INT(fl_duration_parse(bad[i].text, &got, err, sizeof err), -1);
    CHECK_CONTAINS(err, bad[i].why);
    CHECK_EQ_DBL(got, 42, 0);
  }
}

int main(void) {
  RUN(test_parse);
  RUN(test_compact);
  RUN(test_spaced);
  RUN(test_clock_rounds_down);
  RUN(test_seconds);
  return check_summary();
}
