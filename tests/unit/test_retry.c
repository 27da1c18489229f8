/*
 * test_retry.c — retry delay arithmetic: constant, backoff, cap, explicit
 * lists, jitter, and the edges (huge retry numbers, retry < 1, zero delay).
 */
#include <limits.h>
#include <math.h>

#include "check.h"
#include "retry.h"

static const double EPS = 1e-9;

static void test_defaults(void) {
  fl_retry_policy p;
  fl_retry_policy_init(&p);
  CHECK_EQ_INT(p.retries, 0);
  CHECK_EQ_DBL(p.delay, 0, 0);
  CHECK(p.delays == NULL);
  CHECK_EQ_INT(p.n_delays, 0);
  CHECK_EQ_DBL(p.backoff, 1, 0);
  CHECK(p.max_delay < 0);
  CHECK_EQ_DBL(p.jitter, 0, 0);
  CHECK_EQ_DBL(fl_retry_delay(&p, 1, 0.5), 0, 0);
}

static void test_constant_delay(void) {
  fl_retry_policy p;
  fl_retry_policy_init(&p);
  p.delay = 2.5;
  for (int n = 1; n <= 10; n++)
    CHECK_EQ_DBL(fl_retry_delay(&p, n, 0.3), 2.5, EPS);
}

static void test_exponential_backoff(void) {
  fl_retry_policy p;
  fl_retry_policy_init(&p);
  p.delay = 1;
  p.backoff = 2;
  static const double want[] = {1, 2, 4, 8, 16};
  for (int n = 1; n <= 5; n++)
    CHECK_EQ_DBL(fl_retry_delay(&p, n, 0.0), want[n - 1], EPS);
  p.delay = 0.5;
  p.backoff = 3;
  CHECK_EQ_DBL(fl_retry_delay(&p, 3, 0.0), 4.5, EPS);
}

static void test_cap(void) {
  fl_retry_policy p;
  fl_retry_policy_init(&p);
  p.delay = 1;
  p.backoff = 2;
  p.max_delay = 5;
  static const double want[] = {1, 2, 4, 5, 5, 5};
  for (int n = 1; n <= 6; n++)
    CHECK_EQ_DBL(fl_retry_delay(&p, n, 0.0), want[n - 1], EPS);
  /* A cap of 0 means "retry at once", not "no cap". */
  p.max_delay = 0;
  CHECK_EQ_DBL(fl_retry_delay(&p, 3, 0.0), 0, 0);
  /* The cap applies to an explicit list too. */
  static const double list[] = {1, 30};
  p.delays = list;
  p.n_delays = 2;
  p.max_delay = 10;
  CHECK_EQ_DBL(fl_retry_delay(&p, 1, 0.0), 1, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, 2, 0.0), 10, EPS);
}

/* The n-th entry for retry n; past the end, the last entry repeats. The
   scalar delay and backoff are ignored when a list is given. */
static void test_explicit_list(void) {
  static const double list[] = {1, 5, 30};
  fl_retry_policy p;
  fl_retry_policy_init(&p);
  p.delay = 100;
  p.backoff = 2;
  p.delays = list;
  p.n_delays = 3;
  CHECK_EQ_DBL(fl_retry_delay(&p, 1, 0.0), 1, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, 2, 0.0), 5, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, 3, 0.0), 30, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, 4, 0.0), 30, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, 1000, 0.0), 30, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, INT_MAX, 0.0), 30, EPS);
  /* An empty list falls back to delay and backoff. */
  p.n_delays = 0;
  CHECK_EQ_DBL(fl_retry_delay(&p, 2, 0.0), 200, EPS);
}

/* unit_random 0 gives the low end, 0.5 the middle, just under 1 the high
   end of delay·(1 ± jitter). */
static void test_jitter_bounds(void) {
  fl_retry_policy p;
  fl_retry_policy_init(&p);
  p.delay = 10;
  p.jitter = 0.2;
  CHECK_EQ_DBL(fl_retry_delay(&p, 1, 0.0), 8, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, 1, 0.5), 10, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, 1, 0.999), 10 * (1 + 0.2 * 0.998), EPS);
  CHECK(fl_retry_delay(&p, 1, 0.999) < 12);
  /* Every draw stays inside the band. */
  int outside = 0;
  for (int i = 0; i < 1000; i++) {
    double d = fl_retry_delay(&p, 1, i / 1000.0);
    if (d < 8 - EPS || d >= 12)
      outside++;
  }
  CHECK_EQ_INT(outside, 0);
  /* Jitter 1 can bring the delay down to 0 but never below. */
  p.jitter = 1;
  CHECK_EQ_DBL(fl_retry_delay(&p, 1, 0.0), 0, EPS);
  CHECK(fl_retry_delay(&p, 1, 0.0) >= 0);
  CHECK_EQ_DBL(fl_retry_delay(&p, 1, 0.75), 15, EPS);
  /* Jitter moves the delayed value after backoff. */
  p.jitter = 0.5;
  p.backoff = 2;
  CHECK_EQ_DBL(fl_retry_delay(&p, 3, 0.0), 20, EPS);
}

/* 2^(n-1) overflows a double past n = 1025; the result must stay finite
   and honour the cap. */
static void test_huge_retry_number(void) {
  fl_retry_policy p;
  fl_retry_policy_init(&p);
  p.delay = 1;
  p.backoff = 2;
  p.max_delay = 60;
  static const int ns[] = {1024, 1025, 1026, 5000, INT_MAX};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    double d = fl_retry_delay(&p, ns[i], 0.5);
    CHECK(isfinite(d));
    CHECK_EQ_DBL(d, 60, EPS);
  }
  /* With jitter, the capped value is moved by at most ±jitter. */
  p.jitter = 0.1;
  double lo = fl_retry_delay(&p, INT_MAX, 0.0);
  double hi = fl_retry_delay(&p, INT_MAX, 0.999);
  CHECK(isfinite(lo) && isfinite(hi));
  CHECK_EQ_DBL(lo, 54, EPS);
  CHECK(hi < 66);
  /* No cap: still a finite, non-negative number. */
  p.jitter = 0;
  p.max_delay = -1;
  double d = fl_retry_delay(&p, INT_MAX, 0.5);
  CHECK(isfinite(d));
  CHECK(d > 0);
}

static void test_retry_below_one(void) {
  fl_retry_policy p;
  fl_retry_policy_init(&p);
  p.delay = 3;
  p.backoff = 2;
  CHECK_EQ_DBL(fl_retry_delay(&p, 0, 0.0), 3, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, -5, 0.0), 3, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, INT_MIN, 0.0), 3, EPS);
  static const double list[] = {7, 9};
  p.delays = list;
  p.n_delays = 2;
  CHECK_EQ_DBL(fl_retry_delay(&p, 0, 0.0), 7, EPS);
  CHECK_EQ_DBL(fl_retry_delay(&p, -1, 0.0), 7, EPS);
}

/* No delay means no wait, whatever backoff, jitter or retry number. */
static void test_zero_delay(void) {
  fl_retry_policy p;
  fl_retry_policy_init(&p);
  p.backoff = 2;
  p.jitter = 0.5;
  static const int ns[] = {1, 2, 10, 1000};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
    CHECK_EQ_DBL(fl_retry_delay(&p, ns[i], 0.0), 0, 0);
    CHECK_EQ_DBL(fl_retry_delay(&p, ns[i], 0.999), 0, 0);
  }
  /* Past 1025 retries 0 · 2^(n-1) is 0 · inf = NaN; with no cap it must
     still come out as 0. */
  CHECK_EQ_DBL(fl_retry_delay(&p, 5000, 0.5), 0, 0);
  /* With a cap too: the cap must not replace a zero delay. */
  p.max_delay = 60;
  CHECK_EQ_DBL(fl_retry_delay(&p, 5000, 0.5), 0, 0);
  /* A negative delay never waits a negative time. */
  p.delay = -4;
  p.max_delay = -1;
  CHECK_EQ_DBL(fl_retry_delay(&p, 1, 0.5), 0, 0);
}

int main(void) {
  RUN(test_defaults);
  RUN(test_constant_delay);
  RUN(test_exponential_backoff);
  RUN(test_cap);
  RUN(test_explicit_list);
  RUN(test_jitter_bounds);
  RUN(test_huge_retry_number);
  RUN(test_retry_below_one);
  RUN(test_zero_delay);
  return check_summary();
}
