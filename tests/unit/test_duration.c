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

int main(void) {
  RUN(test_compact);
  RUN(test_spaced);
  RUN(test_clock_rounds_down);
  RUN(test_seconds);
  return check_summary();
}
