/*
 * schedule.h — when a flow runs by itself: fire times and what happens when
 * one comes due while a run is still going.
 *
 * A schedule is made by flow.interval or flow.cron (lschedlib.c) and read
 * by the serving loop (serve.c). This part is plain C: the fire-time
 * arithmetic, kept apart so it can be tested without a Lua state.
 */
#ifndef FL_SCHEDULE_H
#define FL_SCHEDULE_H

#include "cron.h"
#include "tz.h"

/* What a fire time that comes due while a run is still going does. */
typedef enum fl_overlap {
  FL_OVERLAP_SKIP,         /* nothing: the fire is skipped (the default) */
  FL_OVERLAP_QUEUE,        /* one run waits; more fires collapse into it */
  FL_OVERLAP_QUEUE_ALL,    /* every fire waits its turn */
  FL_OVERLAP_CANCEL_OTHER, /* the running run is cancelled, then this starts */
  FL_OVERLAP_ALLOW         /* runs overlap */
} fl_overlap;

/* "skip", "queue"...; fl_overlap_parse returns -1 for an unknown name. */
const char *fl_overlap_name(fl_overlap o);
int fl_overlap_parse(const char *name, fl_overlap *out);
/* "skip, queue, queue_all, cancel_other, allow", for error messages. */
extern const char fl_overlap_names[];

typedef enum fl_schedule_kind { FL_SCHEDULE_INTERVAL, FL_SCHEDULE_CRON } fl_schedule_kind;

typedef struct fl_schedule {
  fl_schedule_kind kind;
  /* interval: fires at start + k * interval, k >= 0 (start: epoch seconds;
     0 by default, so fire times are whole multiples of the interval) */
  double interval, start;
  /* cron: the parsed expression in its zone, with its DST policy. The
     schedule owns tz (fl_schedule_free) and the expression's text. */
  fl_cron cron;
  fl_tz *tz;
  fl_dst_policy dst;
  char *expr;
  /* options of both kinds */
  fl_overlap overlap;
  int catchup;           /* run fires missed while flowlua was down */
  double catchup_window; /* seconds; how far back catch-up looks */
  int max_runs;          /* 0: no limit */
  double until;          /* epoch seconds of the last possible fire; 0: none */
} fl_schedule;

/* Releases what the schedule owns (not the struct). */
void fl_schedule_free(fl_schedule *s);

/* The first fire time strictly after t (epoch seconds) in *next: 0, or 1
   when there is none (past `until`), or -1 with a message in err when the
   computation fails (a cron expression with no fire time in reach). */
int fl_schedule_next(const fl_schedule *s, double t, double *next, char *err,
                     size_t errlen);

/* A short description, "every 60 s" or "cron '*\/5 * * * *' in
   Europe/Madrid", into buf. */
void fl_schedule_describe(const fl_schedule *s, char *buf, size_t len);

#endif
