/*
 * serve.c — serving a scheduled flow: wait for each fire time, run the
 * flow, and decide what a fire time that comes due during a run does.
 *
 * Clocks. Interval schedules wait on the monotonic clock: their timeline
 * is fixed to it when serving starts, so a wall-clock change moves
 * nothing. Cron schedules name wall-clock times, so they re-read the wall
 * clock at least once a minute while waiting. After a jump forward (or a
 * suspended machine) the fire that came due runs once, late, and every
 * other fire time that passed is logged as missed: no burst of runs, no
 * silent loss. After a jump back nothing fires twice, because the next
 * fire is always searched after the last one handled.
 *
 * Overlap. While a run goes, a loop timer waits for the next fire time;
 * when it comes due the schedule's overlap policy decides: skip it, queue
 * it (one waiting run, or all of them), or cancel the run so that the
 * fire's run starts. Every such decision is logged when it happens.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "schedule.h"

/* A cron wait re-reads the wall clock at least this often (seconds). */
#define WALL_RECHECK 60.0

typedef struct serve {
  flowlua *rt;
  const fl_schedule *sc;
  const char *name;
  double offset; /* interval: the timeline is fl_now() + offset */
  double due;    /* the next fire time not handled yet */
  int no_more;   /* no fire time after the last one (until) */
  fl_timer timer;
  double *queue; /* fire times waiting for the run in progress */
  size_t n_queue, cap_queue;
  flowlua_serve_result res;
  fl_buf msg;
  int failed; /* the next-fire computation failed: rt's error says why */
} serve;

/* Now on the schedule's timeline. */
static double sv_now(const serve *sv) {
  return sv->sc->kind == FL_SCHEDULE_INTERVAL ? fl_now() + sv->offset
                                              : fl_wall_time();
}

static void sv_log(serve *sv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sv_log(serve *sv, int level, const char *fmt, ...) {
  fl_buf_reset(&sv->msg);
  va_list ap;
  va_start(ap, fmt);
  fl_buf_addvf(&sv->msg, fmt, ap);
  va_end(ap);
  flowlua_log_record rec;
  fl_log_record_init(&rec, level);
  rec.time = fl_wall_time();
  rec.flow = sv->name;
  rec.message = fl_buf_str(&sv->msg);
  fl_log_emit(&sv->rt->log, &rec);
}

/* "2026-11-28T16:10:00.250+01:00": in the cron schedule's zone, else in
   local time. */
static void format_time(const serve *sv, double t, char *out, size_t len) {
  fl_tz *local = NULL;
  const fl_tz *tz = sv->sc->tz;
  char err[8];
  if (!tz && fl_tz_load(NULL, &local, err, sizeof err) == 0) tz = local;
  if (!tz) {
    snprintf(out, len, "%.3f (epoch seconds)", t);
    return;
  }
  double secs = floor(t);
  int ms = (int)((t - secs) * 1000.0 + 0.5);
  if (ms > 999) ms = 999;
  char iso[64];
  fl_time_format_iso((int64_t)secs, tz, iso, sizeof iso);
  /* Milliseconds go before the offset, which starts at the 20th byte. */
  if (ms && strlen(iso) > 19)
    snprintf(out, len, "%.19s.%03d%.6s", iso, ms, iso + 19);
  else
    snprintf(out, len, "%s", iso);
  fl_tz_free(local);
}

/* Moves sv->due to the first fire time after t. */
static void advance(serve *sv, double t) {
  char err[256];
  double next;
  int rc = fl_schedule_next(sv->sc, t, &next, err, sizeof err);
  if (rc < 0) {
    fl_set_error(sv->rt, "flow '%s': %s", sv->name, err);
    sv->failed = 1;
  }
  if (rc != 0) {
    sv->no_more = 1;
    return;
  }
  sv->due = next;
}

/* Fire times from sv->due up to now have passed unseen (the machine slept
   or the clock jumped): all but the last are missed, logged and counted;
   sv->due becomes the last, which runs now. */
static void account_missed(serve *sv) {
  double now = sv_now(sv);
  double last = sv->due;
  size_t missed = 0;
  for (;;) {
    double next;
    char err[8];
    if (fl_schedule_next(sv->sc, last, &next, err, sizeof err) != 0 ||
        next > now)
      break;
    last = next;
    if (++missed > 1000000) break; /* a sub-second interval after a long sleep */
  }
  if (!missed) return;
  char from[64], to[64];
  format_time(sv, sv->due, from, sizeof from);
  format_time(sv, last, to, sizeof to);
  sv->res.missed += missed;
  sv_log(sv, FLOWLUA_LOG_WARN,
         "flow '%s': missed %zu fire time(s) from %s: the clock jumped or the "
         "machine was suspended; running once, for %s",
         sv->name, missed, from, to);
  sv->due = last;
}

/* Waits until the timeline reaches t, or a stop. 1 if stopped. */
static int wait_for(serve *sv, double t) {
  flowlua *rt = sv->rt;
  while (!rt->stop_requested) {
    double left = t - sv_now(sv);
    if (left <= 0) return 0;
    if (sv->sc->kind == FL_SCHEDULE_CRON && left > WALL_RECHECK)
      left = WALL_RECHECK;
    if (fl_loop_poll(&rt->loop, left) < 0) return 1;
  }
  return 1;
}

static int push_queue(serve *sv, double t) {
  if (sv->n_queue == sv->cap_queue) {
    size_t cap = sv->cap_queue ? 2 * sv->cap_queue : 8;
    double *q = realloc(sv->queue, cap * sizeof *q);
    if (!q) return -1;
    sv->queue = q;
    sv->cap_queue = cap;
  }
  sv->queue[sv->n_queue++] = t;
  return 0;
}

static double pop_queue(serve *sv) {
  double t = sv->queue[0];
  memmove(sv->queue, sv->queue + 1, --sv->n_queue * sizeof *sv->queue);
  return t;
}

/* A fire time came due during a run: the overlap policy decides. */
static void overlap_due(serve *sv, double fire) {
  char when[64];
  format_time(sv, fire, when, sizeof when);
  const char *run_id = sv->rt->sched ? sv->rt->sched->run_id : "?";
  switch (sv->sc->overlap) {
  case FL_OVERLAP_QUEUE:
    if (sv->n_queue == 0 && push_queue(sv, fire) == 0) {
      sv->res.queued++;
      sv_log(sv, FLOWLUA_LOG_INFO,
             "flow '%s': fire time %s queued: run %s is still going "
             "(overlap = queue)",
             sv->name, when, run_id);
      return;
    }
    sv->res.skipped++;
    sv_log(sv, FLOWLUA_LOG_WARN,
           "flow '%s': fire time %s skipped: a run is already queued behind "
           "run %s (overlap = queue)",
           sv->name, when, run_id);
    return;
  case FL_OVERLAP_QUEUE_ALL:
    if (push_queue(sv, fire) == 0) {
      sv->res.queued++;
      sv_log(sv, FLOWLUA_LOG_INFO,
             "flow '%s': fire time %s queued (%zu waiting): run %s is still "
             "going (overlap = queue_all)",
             sv->name, when, sv->n_queue, run_id);
      return;
    }
    sv->res.skipped++;
    sv_log(sv, FLOWLUA_LOG_ERROR,
           "flow '%s': fire time %s skipped: out of memory queueing it",
           sv->name, when);
    return;
  case FL_OVERLAP_CANCEL_OTHER:
    /* Only the newest fire waits: a run cancelled for a fire that is then
       itself overtaken would be two cancellations for one run. */
    if (sv->n_queue) {
      sv->res.skipped++;
      sv->queue[0] = fire;
    } else if (push_queue(sv, fire) != 0) {
      sv->res.skipped++;
      return;
    }
    sv_log(sv, FLOWLUA_LOG_WARN,
           "flow '%s': fire time %s came due: cancelling run %s "
           "(overlap = cancel_other)",
           sv->name, when, run_id);
    sv->rt->cancel_current = 1;
    return;
  case FL_OVERLAP_SKIP:
  case FL_OVERLAP_ALLOW: /* refused when the schedule is made */
    break;
  }
  sv->res.skipped++;
  sv_log(sv, FLOWLUA_LOG_WARN,
         "flow '%s': fire time %s skipped: run %s is still going "
         "(overlap = skip)",
         sv->name, when, run_id);
}

static void arm(serve *sv) {
  if (sv->no_more) return;
  double left = sv->due - sv_now(sv);
  if (sv->sc->kind == FL_SCHEDULE_CRON && left > WALL_RECHECK) left = WALL_RECHECK;
  if (fl_timer_start(&sv->rt->loop, &sv->timer, left > 0 ? left : 0) != 0)
    sv_log(sv, FLOWLUA_LOG_ERROR,
           "flow '%s': cannot watch for the next fire time during the run",
           sv->name);
}

static void overlap_timer_cb(fl_timer *t) {
  serve *sv = t->data;
  if (sv_now(sv) >= sv->due) {
    overlap_due(sv, sv->due);
    advance(sv, sv->due);
  }
  arm(sv);
}

/* One run for the fire time `fire`, watching the fire times after it. */
static int run_once(serve *sv, double fire) {
  flowlua *rt = sv->rt;
  rt->scheduled_at = fire;
  rt->cancel_current = 0;
  arm(sv);
  flowlua_outcome outcome;
  int rc = flowlua_run(rt, sv->name, &outcome);
  fl_timer_stop(&rt->loop, &sv->timer);
  rt->scheduled_at = 0;
  rt->cancel_current = 0;
  if (rc != FLOWLUA_OK) return rc;
  sv->res.runs++;
  if (outcome.state == FLOWLUA_FLOW_FAILED) sv->res.failed++;
  if (outcome.state == FLOWLUA_FLOW_CANCELLED) sv->res.cancelled++;
  return FLOWLUA_OK;
}

static int serve_loop(serve *sv, int max_runs) {
  flowlua *rt = sv->rt;
  advance(sv, sv_now(sv));
  while (!rt->stop_requested && !sv->failed) {
    if (max_runs && sv->res.runs >= (size_t)max_runs) break;
    double fire;
    if (sv->n_queue) {
      fire = pop_queue(sv);
    } else {
      if (sv->no_more) {
        sv_log(sv, FLOWLUA_LOG_INFO, "flow '%s': no fire time left (until)",
               sv->name);
        break;
      }
      char when[64];
      format_time(sv, sv->due, when, sizeof when);
      sv_log(sv, FLOWLUA_LOG_INFO, "flow '%s': next run at %s", sv->name, when);
      if (wait_for(sv, sv->due)) break;
      account_missed(sv);
      fire = sv->due;
      advance(sv, fire);
    }
    int rc = run_once(sv, fire);
    if (rc != FLOWLUA_OK) return rc;
    if (rt->cancel_requested) break;
  }
  return sv->failed ? FLOWLUA_EINVAL : FLOWLUA_OK;
}

int flowlua_serve(flowlua *rt, const char *flow_name, int max_runs,
                  flowlua_serve_result *out) {
  if (!rt || max_runs < 0) return FLOWLUA_EINVAL;
  if (out) memset(out, 0, sizeof *out);
  int rc = fl_push_flow(rt, flow_name);
  if (rc) return rc;
  fl_flowdef *f = lua_touserdata(rt->L, -1);
  lua_pop(rt->L, 1); /* the flow stays referenced by the loaded script */
  if (!f->schedule) {
    fl_set_error(rt, "flow '%s' has no schedule to serve", f->name);
    return FLOWLUA_EINVAL;
  }
  serve sv = {.rt = rt, .sc = f->schedule, .msg = FL_BUF_INIT};
  sv.name = strdup(f->name);
  if (!sv.name) return FLOWLUA_ENOMEM;
  sv.offset = fl_wall_time() - fl_now();
  fl_timer_init(&sv.timer, overlap_timer_cb, &sv);
  if (f->schedule->max_runs &&
      (max_runs == 0 || f->schedule->max_runs < max_runs))
    max_runs = f->schedule->max_runs;
  rc = serve_loop(&sv, max_runs);
  fl_timer_stop(&rt->loop, &sv.timer);
  if (out) *out = sv.res;
  fl_buf_free(&sv.msg);
  free(sv.queue);
  free((char *)sv.name);
  return rc;
}

/* ---- fire times for `flowlua next` and embedders ------------------------ */

/* The flow's schedule, or NULL with the error set. */
static const fl_schedule *flow_schedule(flowlua *rt, const char *flow_name,
                                        int *status) {
  *status = fl_push_flow(rt, flow_name);
  if (*status) return NULL;
  fl_flowdef *f = lua_touserdata(rt->L, -1);
  lua_pop(rt->L, 1);
  if (!f->schedule) {
    fl_set_error(rt, "flow '%s' has no schedule", f->name);
    *status = FLOWLUA_EINVAL;
  }
  return f->schedule;
}

/* The zone times of this schedule are shown in: the cron's, or local time
   (loaded into *local, which the caller frees). */
static const fl_tz *schedule_zone(flowlua *rt, const fl_schedule *sc,
                                  fl_tz **local) {
  *local = NULL;
  if (sc->tz) return sc->tz;
  char err[256];
  if (fl_tz_load(NULL, local, err, sizeof err) != 0) {
    fl_set_error(rt, "the local time zone: %s", err);
    return NULL;
  }
  return *local;
}

int flowlua_next_fires(flowlua *rt, const char *flow_name, double after,
                       double *times, int count) {
  if (!rt || !times || count < 0) return FLOWLUA_EINVAL;
  int rc;
  const fl_schedule *sc = flow_schedule(rt, flow_name, &rc);
  if (!sc) return rc;
  int n = 0;
  double t = after;
  char err[256];
  while (n < count) {
    rc = fl_schedule_next(sc, t, &t, err, sizeof err);
    if (rc < 0) {
      fl_set_error(rt, "%s", err);
      return FLOWLUA_EINVAL;
    }
    if (rc > 0) break;
    times[n++] = t;
  }
  return n;
}

int flowlua_format_time(flowlua *rt, const char *flow_name, double t,
                        char *buf, size_t len) {
  if (!rt || !buf || len == 0) return FLOWLUA_EINVAL;
  int rc;
  const fl_schedule *sc = flow_schedule(rt, flow_name, &rc);
  if (!sc) return rc;
  fl_tz *local;
  const fl_tz *tz = schedule_zone(rt, sc, &local);
  if (!tz) return FLOWLUA_EINVAL;
  double secs = floor(t);
  int ms = (int)((t - secs) * 1000.0 + 0.5);
  char iso[64];
  fl_time_format_iso((int64_t)secs, tz, iso, sizeof iso);
  if (ms > 0 && ms < 1000 && strlen(iso) > 19)
    snprintf(buf, len, "%.19s.%03d%.6s", iso, ms, iso + 19);
  else
    snprintf(buf, len, "%s", iso);
  fl_tz_free(local);
  return FLOWLUA_OK;
}

int flowlua_parse_time(flowlua *rt, const char *flow_name, const char *text,
                       double *out) {
  if (!rt || !text || !out) return FLOWLUA_EINVAL;
  int rc;
  const fl_schedule *sc = flow_schedule(rt, flow_name, &rc);
  if (!sc) return rc;
  fl_tz *local;
  const fl_tz *tz = schedule_zone(rt, sc, &local);
  if (!tz) return FLOWLUA_EINVAL;
  char err[256];
  int64_t t;
  rc = fl_time_parse_iso(text, tz, &t, err, sizeof err);
  fl_tz_free(local);
  if (rc != 0) {
    fl_set_error(rt, "%s", err);
    return FLOWLUA_EINVAL;
  }
  *out = (double)t;
  return FLOWLUA_OK;
}
