/*
 * retry.c — retry delays. Kept apart from the scheduler so the arithmetic is
 * unit-tested on its own, with the randomness passed in.
 */
#include "retry.h"

#include <math.h>

void fl_retry_policy_init(fl_retry_policy *p) {
  *p = (fl_retry_policy){.retries = 0, .delay = 0, .delays = NULL,
                         .n_delays = 0, .backoff = 1, .max_delay = -1,
                         .jitter = 0};
}

double fl_retry_delay(const fl_retry_policy *p, int retry, double unit_random) {
  if (retry < 1) retry = 1;
  double d;
  if (p->delays && p->n_delays > 0) {
    size_t i = (size_t)retry - 1;
    d = p->delays[i < p->n_delays ? i : p->n_delays - 1];
  } else if (p->delay > 0) {
    /* pow() overflows to inf for huge exponents; the cap below handles it.
       A zero delay stays zero (0 * inf would be NaN). */
    d = p->delay * pow(p->backoff, (double)(retry - 1));
  } else {
    d = 0;
  }
  if (p->max_delay >= 0 && !(d <= p->max_delay)) d = p->max_delay;
  if (p->jitter > 0) d *= 1.0 + p->jitter * (2.0 * unit_random - 1.0);
  if (!(d >= 0) || isinf(d)) d = isinf(d) ? 1e9 : 0; /* NaN or -x: no wait */
  return d;
}
