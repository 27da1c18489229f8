/*
 * retry.h — the arithmetic of retry delays.
 *
 * Plain C, no Lua. The delay before retry n (n = 1 after the first attempt)
 * is min(max_delay, delay * backoff^(n-1)) — or the n-th entry of an explicit
 * list, its last entry repeating — and then jitter moves it by up to
 * ±jitter·delay, uniformly.
 */
#ifndef FL_RETRY_H
#define FL_RETRY_H

#include <stddef.h>

typedef struct fl_retry_policy {
  int retries;          /* attempts after the first */
  double delay;         /* seconds before the first retry */
  const double *delays; /* explicit per-retry delays, or NULL */
  size_t n_delays;
  double backoff;       /* multiplier per retry, >= 1 */
  double max_delay;     /* cap in seconds; < 0 means none */
  double jitter;        /* 0..1 */
} fl_retry_policy;

/* Sets the defaults: no retries, no delay, backoff 1, no cap, no jitter. */
void fl_retry_policy_init(fl_retry_policy *p);

/* Seconds to wait before retry number `retry` (>= 1); `unit_random` is a
   uniform number in [0, 1) used for jitter. Never negative. */
double fl_retry_delay(const fl_retry_policy *p, int retry, double unit_random);

#endif
