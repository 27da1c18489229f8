/*
 * schedule.c — fire times of interval and cron schedules.
 *
 * An interval schedule's fire times are start + k * interval, computed
 * from k rather than by adding the interval to the last fire, so that
 * neither the length of a run nor rounding makes the schedule drift.
 */
#include "schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const overlap_names[] = {"skip", "queue", "queue_all",
                                            "cancel_other", "allow"};

const char fl_overlap_names[] = "skip, queue, queue_all, cancel_other, allow";

const char *fl_overlap_name(fl_overlap o) {
  if ((unsigned)o >= sizeof overlap_names / sizeof overlap_names[0]) return "?";
  return overlap_names[o];
}

int fl_overlap_parse(const char *name, fl_overlap *out) {
  for (size_t i = 0; i < sizeof overlap_names / sizeof overlap_names[0]; i++)
    if (strcmp(name, overlap_names[i]) == 0) {
      *out = (fl_overlap)i;
      return 0;
    }
  return -1;
}

void fl_schedule_free(fl_schedule *s) {
  fl_tz_free(s->tz);
  s->tz = NULL;
  free(s->expr);
  s->expr = NULL;
}

static double interval_next(const fl_schedule *s, double t) {
  if (t < s->start) return s->start;
  double k = floor((t - s->start) / s->interval) + 1;
  double next = s->start + k * s->interval;
  /* Rounding may land on t itself when t is a fire time: step past it. */
  while (next <= t) next = s->start + ++k * s->interval;
  return next;
}

int fl_schedule_next(const fl_schedule *s, double t, double *next, char *err,
                     size_t errlen) {
  double when;
  if (s->kind == FL_SCHEDULE_INTERVAL) {
    when = interval_next(s, t);
  } else {
    /* Cron fires on whole seconds: strictly after t is strictly after
       floor(t), whatever fraction t has. */
    int64_t at;
    if (fl_cron_next(&s->cron, s->tz, s->dst, (int64_t)floor(t), &at, err,
                     errlen) != 0)
      return -1;
    when = (double)at;
  }
  if (s->until > 0 && when > s->until) return 1;
  *next = when;
  return 0;
}

void fl_schedule_describe(const fl_schedule *s, char *buf, size_t len) {
  if (s->kind == FL_SCHEDULE_INTERVAL)
    snprintf(buf, len, "every %g s", s->interval);
  else
    snprintf(buf, len, "cron '%s' in %s", s->expr ? s->expr : "?",
             fl_tz_name(s->tz));
}
