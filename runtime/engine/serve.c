/*
 * serve.c — serving a scheduled flow: wait for each fire time, start a run
 * for it, and decide what a fire time that comes due during a run does.
 *
 * One loop drives everything: it pumps the runs in progress, handles a
 * fire time when one is due, starts queued runs when the way is clear, and
 * otherwise waits on the event loop for the earlier of the next fire time
 * and the runs' own events.
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
 * Overlap. A fire time that comes due while a run goes is skipped, queued
 * (one waiting run, or all of them), cancels the run so that its own
 * starts, or starts a run beside it — the schedule's overlap policy; each
 * decision is logged when it is taken.
 *
 * Pause. A flow paused through the history (flowlua pause) is looked up at
 * each fire time: while paused, fire times are claimed and recorded as
 * paused, no run starts, and a run in progress goes on.
 *
 * Reload. Before each fire time the script file is looked at (a stat, and
 * its SHA-256 when that changed): an edited script is loaded into a new
 * handle, which runs that fire time and the ones after, on its schedule;
 * the runs going on the earlier handle finish there (serve_reload.h). A
 * new version that does not load is refused once, logged, and the old one
 * serves on. The loop runs in a protected call on the current handle's
 * Lua state, so a swap leaves it and enters it again on the new one.
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "engine.h"
#include "params.h"
#include "record.h"
#include "retention.h"
#include "schedule.h"
#include "serve_reload.h"
#include "store.h"
#include "tz.h"

/* A cron wait re-reads the wall clock at least this often (seconds). */
#define WALL_RECHECK 60.0

/* A run is held back at most this long for the wall clock to reach its
   fire time; further behind, the wall clock was changed, and the
   schedule's own timeline rules. */
#define WALL_HOLD_MAX 1.0

/* Linux lets a long sleep end late by 0.1% of its length (up to 100 ms:
   50 ms on a 50 s wait). Waking a little early and sleeping the short rest
   keeps fire times exact for one extra wake-up per fire. */
static double early_wake(double wait) {
  double early = wait * 0.002 + 0.001;
  if (early > 0.2) early = 0.2;
  return wait > 2 * early ? wait - early : wait;
}

/*
 * How long to hold back the run of fire time `fire`, which has come on the
 * schedule's timeline, so that it starts no earlier than that time on the
 * wall clock its script reads: os.time() and os.date() of a run must be in
 * its fire time's second (a midnight job's os.date("%F") is that day). The
 * monotonic timer and CLOCK_REALTIME drift apart, and time() reads a
 * coarse clock up to a tick (a few ms) behind CLOCK_REALTIME: right after
 * a whole-second fire time it still says the second before. 0: start now.
 */
static double wall_clock_hold(double fire) {
  double behind = fire - fl_wall_time();
  if (behind > WALL_HOLD_MAX) return 0;
  if (behind > 0) return behind;
  time_t second = (time_t)floor(fire), coarse = time(NULL);
  if (coarse < second && second - coarse <= (time_t)WALL_HOLD_MAX)
    return 0.001; /* the coarse clock's next tick */
  return 0;
}

typedef struct serve {
  flowlua *rt;   /* the handle that starts the next runs */
  flowlua *host; /* the caller's: its stop and cancel rule them all */
  const fl_schedule *sc;
  const char *name;
  fl_tz *local;  /* the zone times are logged in, for interval schedules */
  double offset; /* interval: the timeline is fl_now() + offset */
  double due;    /* the next fire time not handled yet */
  double logged; /* the fire time last announced as "next run at" */
  int no_more;   /* no fire time after the last one (until) */
  int max_runs;  /* 0: no limit */
  size_t started, running;
  double *queue; /* fire times waiting for the runs in progress */
  size_t n_queue, cap_queue;
  flowlua_serve_result res;
  /* The clocks and the store's busy waits when the loop last went to
     wait: what tells why fire times passed unseen (stall_cause). */
  struct {
    double mono, wall, boot, cpu, busy;
  } mark;
  fl_buf msg;
  int status; /* FLOWLUA_OK, or why serving stopped */
  fl_retention retention; /* the daily prune (--retention) */
  int paused; /* the flow's pause as last read (flowlua pause) */
  const fl_reload_ops *ops; /* NULL: no reload */
  fl_reload reload;     /* the script file as last seen */
  fl_versions versions; /* handles of earlier versions, runs going */
  flowlua *next;        /* a reloaded handle waiting to be swapped in */
  int entered;          /* serve_loop's start (catch-up...) is done */
} serve;

/* Now on the schedule's timeline. */
static double sv_now(const serve *sv) {
  return sv->sc->kind == FL_SCHEDULE_INTERVAL ? fl_now() + sv->offset
                                              : fl_wall_time();
}

/* Logs a serving message; it stays in sv->msg for record_fire. */
static void sv_vlog(serve *sv, int level, const char *fmt, va_list ap) {
  fl_buf_reset(&sv->msg);
  fl_buf_addvf(&sv->msg, fmt, ap);
  flowlua_log_record rec;
  fl_log_record_init(&rec, level);
  rec.time = fl_wall_time();
  rec.flow = sv->name;
  rec.message = fl_buf_str(&sv->msg);
  fl_log_emit(&sv->rt->log, &rec);
}

static void sv_log(serve *sv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sv_log(serve *sv, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sv_vlog(sv, level, fmt, ap);
  va_end(ap);
}

/* Records in the run history what became of fire times that did not
   simply start a run, with the message just logged (sv->msg): logged and
   recorded, never silent. first is the fire time, or the first of count;
   last the last of them (0 for one). */
static void record_fire(serve *sv, const char *outcome, double first,
                        double last, size_t count) {
  flowlua *rt = sv->rt;
  if (!rt->store) return;
  if (fl_store_fire_event(rt->store, sv->name, outcome, first, last, count,
                          fl_buf_str(&sv->msg), fl_wall_time()) != FLOWLUA_OK)
    fl_log_printf(&rt->log, FLOWLUA_LOG_ERROR, sv->name,
                  "flow '%s': recording a %s fire time failed: %s", sv->name,
                  outcome, fl_store_errmsg(rt->store));
}

static void format_time(const serve *sv, double t, char *out, size_t len) {
  fl_time_format_iso_ms(sv->sc->tz ? sv->sc->tz : sv->local, t, out, len);
}

/* Moves sv->due to the first fire time after t. */
static void advance(serve *sv, double t) {
  char err[256];
  double next;
  int rc = fl_schedule_next(sv->sc, t, &next, err, sizeof err);
  if (rc < 0) {
    fl_set_error(sv->rt, "flow '%s': %s", sv->name, err);
    sv->status = FLOWLUA_EINVAL;
  }
  if (rc != 0) {
    sv->no_more = 1;
    return;
  }
  sv->due = next;
}

/* Seconds on CLOCK_BOOTTIME, which goes on while the machine sleeps
   (CLOCK_MONOTONIC does not); -1 where there is none. */
static double boot_now(void) {
#ifdef CLOCK_BOOTTIME
  struct timespec ts;
  if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#endif
  return -1;
}

/* CPU seconds the calling thread has used. */
static double thread_cpu(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Notes the clocks and the store's busy waits as the loop goes to wait. */
static void take_mark(serve *sv) {
  sv->mark.mono = fl_now();
  sv->mark.wall = fl_wall_time();
  sv->mark.boot = boot_now();
  sv->mark.cpu = thread_cpu();
  sv->mark.busy = sv->rt->store ? fl_store_busy_seconds(sv->rt->store) : 0;
}

/* Why fire times passed unseen since the loop last went to wait, measured
   rather than guessed: the loop's thread waiting for another process's lock
   on the state database; the wall clock moving unlike the monotonic one
   (a jump); the boot clock moving more than the monotonic one (the
   machine slept); the thread using the CPU all along (busy in a task); or
   else not running at all (stopped, or starved). */
static void stall_cause(const serve *sv, char *out, size_t len) {
  flowlua *rt = sv->rt;
  double mono = fl_now() - sv->mark.mono;
  double late = sv_now(sv) - sv->due;
  double db = rt->store ? fl_store_busy_seconds(rt->store) - sv->mark.busy : 0;
  double jump = (fl_wall_time() - sv->mark.wall) - mono;
  double boot = boot_now();
  double slept = boot >= 0 && sv->mark.boot >= 0
                     ? (boot - sv->mark.boot) - mono : 0;
  if (db >= 0.05 && db >= late / 2)
    snprintf(out, len,
             "the loop's thread waited %.1f s for the state database %s "
             "(another process held a lock on it)",
             db, rt->state_name);
  else if (jump >= 1 || jump <= -1)
    snprintf(out, len, "the wall clock jumped %s by %.1f s",
             jump > 0 ? "forward" : "back", jump > 0 ? jump : -jump);
  else if (slept >= 1)
    snprintf(out, len, "the machine was suspended for %.1f s", slept);
  else if (thread_cpu() - sv->mark.cpu >= late / 2)
    snprintf(out, len,
             "the loop's thread was busy for %.1f s (a task, hook or host "
             "function running in it)",
             late);
  else
    snprintf(out, len,
             "the loop's thread did not run for %.1f s (the process was "
             "stopped, or the machine is overloaded)",
             late);
}

/* Fire times from sv->due up to now that passed unseen (the loop was
   blocked, the machine slept, the clock jumped): all but the last are
   missed, logged with the cause and counted; sv->due becomes the last,
   which is handled now. */
static void account_missed(serve *sv) {
  double now = sv_now(sv), last = sv->due, before_last = 0, next;
  size_t missed = 0;
  char err[256];
  while (fl_schedule_next(sv->sc, last, &next, err, sizeof err) == 0 &&
         next <= now) {
    before_last = last;
    last = next;
    if (++missed == 1000000) break; /* a sub-second interval, a long sleep */
  }
  if (!missed) return;
  char from[64], to[64];
  format_time(sv, sv->due, from, sizeof from);
  format_time(sv, last, to, sizeof to);
  char cause[512];
  stall_cause(sv, cause, sizeof cause);
  sv->res.missed += missed;
  sv_log(sv, FLOWLUA_LOG_WARN,
         "flow '%s': missed %zu fire time(s) from %s: %s; running once, for "
         "%s",
         sv->name, missed, from, cause, to);
  record_fire(sv, "missed", sv->due, missed > 1 ? before_last : 0, missed);
  sv->due = last;
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

static void run_ended(fl_sched *s, void *data) {
  serve *sv = data;
  sv->running--;
  sv->res.runs++;
  if (s->state == FLOWLUA_FLOW_FAILED) sv->res.failed++;
  if (s->state == FLOWLUA_FLOW_CANCELLED) sv->res.cancelled++;
}

static int may_start(const serve *sv) {
  return !sv->host->stop_requested && !sv->host->cancel_requested &&
         !sv->rt->stop_requested && !sv->rt->cancel_requested &&
         (!sv->max_runs || sv->started < (size_t)sv->max_runs);
}

/* Starts a run for the fire time `fire`. */
/* A fire time that will not run: counted, logged (a warning, or an error
   when something failed) and recorded as skipped. */
static void skip_fire(serve *sv, double fire, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void skip_fire(serve *sv, double fire, int level, const char *fmt,
                      ...) {
  sv->res.skipped++;
  va_list ap;
  va_start(ap, fmt);
  sv_vlog(sv, level, fmt, ap);
  va_end(ap);
  record_fire(sv, "skipped", fire, 0, 1);
}

/* Records the fire times waiting in the queue as `outcome`, and empties
   it. */
static void record_queue(serve *sv, const char *outcome) {
  record_fire(sv, outcome, sv->queue[0],
              sv->n_queue > 1 ? sv->queue[sv->n_queue - 1] : 0, sv->n_queue);
  sv->n_queue = 0;
}

/* How long claiming `fire` may wait for another process's lock on the
   state database: until the fire time after it (at least CLAIM_WAIT_MIN_MS).
   The claim needs the database's answer (two processes serving the flow
   on one file must not both run it), so it cannot be made without the
   lock; bounding the wait by the next fire time keeps the loop on time:
   while a lock is held for long, each fire time is reported missed, with
   its cause, as it comes, and none passes unseen. */
#define CLAIM_WAIT_MIN_MS 10

static int claim_wait_ms(const serve *sv, double fire) {
  char err[256];
  double next;
  if (fl_schedule_next(sv->sc, fire, &next, err, sizeof err) != 0) return 0;
  double ms = (next - sv_now(sv)) * 1000.0;
  if (ms < CLAIM_WAIT_MIN_MS) return CLAIM_WAIT_MIN_MS;
  return ms > INT_MAX ? 0 : (int)ms; /* 0: the store's busy timeout */
}

/* Claims the fire time in the run history, so that two processes serving
   the flow on one state file never both run it. 0: this process has it. */
static int claim(serve *sv, double fire) {
  flowlua *rt = sv->rt;
  char when[FL_TIME_ISO_SIZE + 8];
  if (fl_record_open(rt) != FLOWLUA_OK) {
    sv->status = FLOWLUA_EIO;
    return -1;
  }
  if (!rt->store) return 0;
  /* Nor are runs' starts and ends, fire claims and events to hold up the
     loop: they are journalled and written by the store's writer thread. */
  fl_store_write_in_background(rt->store);
  int wait_ms = claim_wait_ms(sv, fire);
  double t0 = fl_now();
  int got = fl_store_claim_fire_within(rt->store, sv->name, fire,
                                       fl_wall_time(), wait_ms);
  if (got == 1) return 0;
  format_time(sv, fire, when, sizeof when);
  if (got < 0 && fl_store_lock_busy(rt->store)) {
    sv->res.missed++;
    sv_log(sv, FLOWLUA_LOG_WARN,
           "flow '%s': fire time %s missed: the loop's thread waited %.1f s "
           "to claim it (%s) and waits no longer than until the next fire "
           "time",
           sv->name, when, fl_now() - t0, fl_store_errmsg(rt->store));
    record_fire(sv, "missed", fire, 0, 1);
    return -1;
  }
  if (got == 0) {
    sv->res.skipped++;
    /* Paused, the other process recorded it as paused, not ran it. */
    sv_log(sv, FLOWLUA_LOG_WARN,
           "flow '%s': fire time %s skipped: another flowlua process "
           "serving this flow on the same run history has %s",
           sv->name, when, sv->paused ? "recorded it as paused" : "run it");
    record_fire(sv, "taken", fire, 0, 1);
  } else {
    skip_fire(sv, fire, FLOWLUA_LOG_ERROR,
              "flow '%s': fire time %s skipped: it could not be claimed in "
              "the run history: %s",
              sv->name, when, fl_store_errmsg(rt->store));
  }
  return -1;
}

static void start_run(serve *sv, double fire) {
  flowlua *rt = sv->rt;
  if (claim(sv, fire) != 0) return;
  rt->cancel_current = 0;
  int rc = fl_start_run(rt, sv->name, fire, run_ended, sv);
  if (rc != FLOWLUA_OK) {
    sv->status = rc;
    return;
  }
  sv->started++;
  sv->running++;
}

/* The id of a run in progress, for messages. */
static const char *running_id(const serve *sv) {
  fl_sched *s = sv->rt->active;
  /* Not a subflow's run; or one of an earlier version of the script,
     still going. */
  while (s && s->parent) s = s->next_active;
  for (size_t i = 0; !s && i < sv->versions.n; i++) {
    s = sv->versions.old[i]->active;
    while (s && s->parent) s = s->next_active;
  }
  return s ? s->run_id : "?";
}

/* Whether the flow is paused in the history (flowlua pause), read at each
   fire time rather than polled: a pause asked for on any host is obeyed at
   the next fire time, and a flow that fires rarely costs no reads between.
   Each change is logged once. When the read fails, the state last read
   holds (logged): a history that cannot be read cannot be claimed from
   either, and claim() reports that. */
static int paused_now(serve *sv) {
  flowlua *rt = sv->rt;
  if (!rt->store) return 0; /* --state :memory: keeps no pause */
  fl_store_pause p;
  if (fl_store_get_pause(rt->store, sv->name, &p) != FLOWLUA_OK) {
    sv_log(sv, FLOWLUA_LOG_ERROR, "flow '%s': %s; serving on as %s",
           sv->name, fl_store_errmsg(rt->store),
           sv->paused ? "paused" : "not paused");
    return sv->paused;
  }
  if (p.paused && !sv->paused) {
    char since[64];
    format_time(sv, p.since, since, sizeof since);
    sv_log(sv, FLOWLUA_LOG_WARN,
           "flow '%s': paused by %s since %s: its fire times start no run "
           "and are recorded as paused until 'flowlua unpause %s'",
           sv->name, p.by, since, sv->name);
  } else if (!p.paused && sv->paused) {
    sv_log(sv, FLOWLUA_LOG_INFO,
           "flow '%s': unpaused: its fire times run again (those that "
           "passed while paused are not caught up)",
           sv->name);
  }
  sv->paused = p.paused;
  fl_store_pause_clear(&p);
  return sv->paused;
}

/* A fire time of a paused flow: claimed like one that runs, so that of
   several processes serving the flow one records it and a later catchup
   does not run it, then recorded as paused. */
static void pause_fire(serve *sv, double fire) {
  if (claim(sv, fire) != 0) return; /* taken or missed: recorded so */
  char when[64];
  format_time(sv, fire, when, sizeof when);
  sv_log(sv, FLOWLUA_LOG_INFO,
         "flow '%s': fire time %s not run: the flow is paused", sv->name,
         when);
  record_fire(sv, "paused", fire, 0, 1);
}

/* A fire time came due while a run goes: the overlap policy decides. */
static void overlap(serve *sv, double fire, const char *when) {
  const char *policy = fl_overlap_name(sv->sc->overlap);
  switch (sv->sc->overlap) {
  case FL_OVERLAP_ALLOW:
    sv_log(sv, FLOWLUA_LOG_INFO,
           "flow '%s': fire time %s starts a run beside run %s "
           "(overlap = allow)",
           sv->name, when, running_id(sv));
    start_run(sv, fire);
    return;
  case FL_OVERLAP_QUEUE:
    if (sv->n_queue) {
      skip_fire(sv, fire, FLOWLUA_LOG_WARN,
                "flow '%s': fire time %s skipped: a run is already queued "
                "behind run %s (overlap = queue)",
                sv->name, when, running_id(sv));
      return;
    }
    break;
  case FL_OVERLAP_QUEUE_ALL:
    break;
  case FL_OVERLAP_CANCEL_OTHER:
    /* Only the newest fire waits: the runs it overtook never start. */
    if (sv->n_queue) {
      char queued[64];
      format_time(sv, sv->queue[0], queued, sizeof queued);
      sv->res.skipped += sv->n_queue;
      sv_log(sv, FLOWLUA_LOG_WARN,
             "flow '%s': fire time %s skipped: fire time %s overtook it "
             "(overlap = cancel_other)",
             sv->name, queued, when);
      record_queue(sv, "skipped");
    }
    sv_log(sv, FLOWLUA_LOG_WARN,
           "flow '%s': fire time %s came due: cancelling run %s "
           "(overlap = cancel_other)",
           sv->name, when, running_id(sv));
    sv->rt->cancel_current = 1;
    fl_versions_cancel_current(&sv->versions); /* a run of an older version */
    break;
  case FL_OVERLAP_SKIP:
    skip_fire(sv, fire, FLOWLUA_LOG_WARN,
              "flow '%s': fire time %s skipped: run %s is still going "
              "(overlap = skip)",
              sv->name, when, running_id(sv));
    return;
  }
  if (push_queue(sv, fire) != 0) {
    skip_fire(sv, fire, FLOWLUA_LOG_ERROR,
              "flow '%s': fire time %s skipped: out of memory queueing it",
              sv->name, when);
    return;
  }
  if (sv->sc->overlap != FL_OVERLAP_CANCEL_OTHER) {
    sv->res.queued++;
    sv_log(sv, FLOWLUA_LOG_INFO,
           "flow '%s': fire time %s queued (%zu waiting): run %s is still "
           "going (overlap = %s)",
           sv->name, when, sv->n_queue, running_id(sv), policy);
    record_fire(sv, "queued", fire, 0, 1);
  }
}

/* The fire time sv->due has come: start its run or let overlap decide. */
static void fire_due(serve *sv) {
  account_missed(sv);
  double fire = sv->due;
  advance(sv, fire);
  if (!may_start(sv)) return;
  /* Paused: no run, whatever is going (a run in progress goes on). */
  if (paused_now(sv)) {
    pause_fire(sv, fire);
    return;
  }
  char when[64];
  format_time(sv, fire, when, sizeof when);
  if (sv->running == 0 && sv->n_queue == 0)
    start_run(sv, fire);
  else
    overlap(sv, fire, when);
}

static void log_next(serve *sv) {
  if (sv->logged == sv->due) return;
  sv->logged = sv->due;
  char when[64];
  format_time(sv, sv->due, when, sizeof when);
  sv_log(sv, FLOWLUA_LOG_INFO, "flow '%s': next run at %s", sv->name, when);
}

/* Most fire times a catch-up queues; older ones are counted missed. */
#define CATCHUP_MAX 100000

/* catchup: the fire times that passed while no process served the flow —
   after the last one claimed in the run history, up to now — are queued to
   run one after another, in order; those before catchup_window are logged
   and counted as missed. */
static void catch_up(serve *sv) {
  flowlua *rt = sv->rt;
  if (!sv->sc->catchup) return;
  if (fl_record_open(rt) != FLOWLUA_OK) {
    sv->status = FLOWLUA_EIO;
    return;
  }
  if (rt->store) fl_store_write_in_background(rt->store);
  if (!rt->store) {
    sv_log(sv, FLOWLUA_LOG_WARN,
           "flow '%s': catchup needs the run history, and this process "
           "keeps none (--state :memory:): nothing to catch up",
           sv->name);
    return;
  }
  double last;
  int got = fl_store_last_fire(rt->store, sv->name, &last);
  if (got < 0) {
    sv_log(sv, FLOWLUA_LOG_ERROR, "flow '%s': catchup skipped: %s", sv->name,
           fl_store_errmsg(rt->store));
    return;
  }
  if (got == 0) {
    sv_log(sv, FLOWLUA_LOG_INFO,
           "flow '%s': no earlier fire time recorded: nothing to catch up",
           sv->name);
    return;
  }
  double now = sv_now(sv), t = last, next;
  double from = sv->sc->catchup_window > 0 ? now - sv->sc->catchup_window
                                           : -HUGE_VAL;
  size_t queued = 0, missed = 0;
  double first_queued = 0, first_missed = 0, last_missed = 0;
  char err[256];
  while (fl_schedule_next(sv->sc, t, &next, err, sizeof err) == 0 &&
         next <= now) {
    t = next;
    /* The history keeps fire times to the millisecond: one read back a
       hair below its true value is the fire time that last ran, found
       again, not a missed one. */
    if (llround(next * 1000.0) == llround(last * 1000.0)) continue;
    if (next < from || queued == CATCHUP_MAX) {
      if (!missed++) first_missed = next;
      last_missed = next;
    } else if (push_queue(sv, next) == 0) {
      if (!queued++) first_queued = next;
    } else {
      sv->status = FLOWLUA_ENOMEM;
      fl_set_error(rt, "flow '%s': out of memory queueing catch-up runs",
                   sv->name);
      return;
    }
    if (missed >= 1000000) break; /* a sub-second interval, a long outage */
  }
  char when[64];
  if (missed) {
    format_time(sv, first_missed, when, sizeof when);
    sv->res.missed += missed;
    sv_log(sv, FLOWLUA_LOG_WARN,
           "flow '%s': catchup: %zu fire time(s) from %s missed while "
           "flowlua was not serving are older than catchup_window (or "
           "beyond %d): not run",
           sv->name, missed, when, CATCHUP_MAX);
    record_fire(sv, "missed", first_missed, missed > 1 ? last_missed : 0,
                missed);
  }
  if (queued) {
    format_time(sv, first_queued, when, sizeof when);
    sv_log(sv, FLOWLUA_LOG_INFO,
           "flow '%s': catchup: running %zu fire time(s) missed while "
           "flowlua was not serving, from %s, one after another",
           sv->name, queued, when);
  } else if (!missed) {
    sv_log(sv, FLOWLUA_LOG_INFO, "flow '%s': catchup: no fire time missed",
           sv->name);
  }
}

/* Waits for the loop's events, at most `wait` seconds (-1: no limit). */
static void wait_on_loop(serve *sv, double wait) {
  wait = fl_versions_wait(&sv->versions, wait);
  take_mark(sv);
  if (fl_loop_poll(&sv->rt->loop, wait) < 0) {
    fl_set_error(sv->rt, "flow '%s': waiting on the event loop failed",
                 sv->name);
    sv->status = FLOWLUA_EIO;
  }
}

static int check_params(flowlua *rt, const char *name);

/* Before a fire time: when the script file holds new text, the new
   version is loaded into a new handle that must still define the flow
   with a schedule, take its params and open the history (which records
   its flow_def); then it waits in sv->next to be swapped in (1). Else the
   refusal is logged once, until the file changes again, and the old
   version serves on (0). */
static int reload_due(serve *sv) {
  if (!sv->ops) return 0;
  flowlua *rt = sv->rt;
  char sha[65], err[2048];
  int changed = fl_reload_changed(&sv->reload, rt, sha, err, sizeof err);
  if (changed < 0)
    sv_log(sv, FLOWLUA_LOG_ERROR,
           "flow '%s': %s; serving on with the version loaded (sha %.12s)",
           sv->name, err, rt->script_sha256);
  if (changed <= 0) return 0;
  flowlua *next = sv->ops->load(rt, sv->name, err, sizeof err);
  int rc = next ? check_params(next, sv->name) : FLOWLUA_ELOAD;
  if (next && rc == FLOWLUA_OK) rc = fl_record_open(next);
  if (next && rc != FLOWLUA_OK)
    snprintf(err, sizeof err, "%s", fl_buf_str(&next->err));
  if (rc != FLOWLUA_OK) {
    memcpy(sv->reload.refused, sha, sizeof sha);
    sv_log(sv, FLOWLUA_LOG_ERROR,
           "flow '%s': script %s changed (sha %.12s) but is refused: %s; "
           "serving on with the version loaded (sha %.12s) until the file "
           "changes again",
           sv->name, rt->script_path, sha, err, rt->script_sha256);
    if (next) sv->ops->free(next);
    return 0;
  }
  sv_log(sv, FLOWLUA_LOG_INFO, "flow '%s': script %s changed (sha %.12s), "
                               "reloaded",
         sv->name, rt->script_path, sha);
  sv->next = next;
  return 1;
}

/* The loop, in a protected call: runs execute Lua. */
static int serve_loop(lua_State *L) {
  serve *sv = lua_touserdata(L, 1);
  flowlua *rt = sv->rt;
  if (!sv->entered) {
    /* Open the history now, not at the first fire time, which would then
       start late by the time it takes to create the file. */
    if (fl_record_open(rt) != FLOWLUA_OK) {
      sv->status = FLOWLUA_EIO;
      return 0;
    }
    catch_up(sv);
    advance(sv, sv_now(sv));
    take_mark(sv);
    fl_retention_start(&sv->retention, rt);
    sv->entered = 1;
  }
  while (sv->status == FLOWLUA_OK) {
    fl_versions_sync(&sv->versions, rt);
    if (fl_sched_pump_all(rt)) {
      fl_sched_collect(rt);
      continue;
    }
    char err[1024];
    int moved = fl_versions_pump(&sv->versions, sv->ops, err, sizeof err);
    if (moved < 0) {
      fl_set_error(rt, "flow '%s': %s", sv->name, err);
      sv->status = FLOWLUA_EIO;
      break;
    }
    if (moved) continue;
    int starting = may_start(sv);
    if (starting && sv->running == 0 && sv->n_queue) {
      double fire = pop_queue(sv);
      if (paused_now(sv))
        pause_fire(sv, fire); /* queued or caught up: paused all the same */
      else
        start_run(sv, fire);
      continue;
    }
    if (!starting || (sv->no_more && !sv->n_queue)) {
      if (sv->running == 0) break; /* let the runs in progress finish */
    } else if (sv_now(sv) >= sv->due) {
      double hold = wall_clock_hold(sv->due);
      if (hold <= 0) {
        if (reload_due(sv)) return 0; /* entered again on the new handle */
        fire_due(sv);
        continue;
      }
      wait_on_loop(sv, hold);
      continue;
    }
    double wait = -1;
    if (starting && !sv->no_more) {
      if (sv->running == 0) log_next(sv);
      wait = sv->due - sv_now(sv);
      if (wait < 0) wait = 0;
      if (sv->sc->kind == FL_SCHEDULE_CRON && wait > WALL_RECHECK)
        wait = WALL_RECHECK;
      wait = early_wake(wait);
    } else if (sv->running && fl_sched_stalled(rt)) {
      fl_set_error(rt, "flow '%s': scheduler stalled", sv->name);
      sv->status = FLOWLUA_EIO;
      break;
    }
    wait_on_loop(sv, wait);
  }
  fl_retention_stop(&sv->retention);
  if (sv->no_more && sv->status == FLOWLUA_OK && may_start(sv))
    sv_log(sv, FLOWLUA_LOG_INFO, "flow '%s': no fire time left (until)",
           sv->name);
  if (sv->n_queue) {
    sv->res.skipped += sv->n_queue;
    sv_log(sv, FLOWLUA_LOG_WARN,
           "flow '%s': %zu queued fire time(s) dropped: serving stopped",
           sv->name, sv->n_queue);
    record_queue(sv, "dropped");
  }
  return 0;
}

/* lua_pcall'd: the params of the flow named by argument 2 made as a run
   makes them, then dropped; returns the status. */
static int params_ok(lua_State *L) {
  flowlua *rt = lua_touserdata(L, 1);
  const char *name = lua_tostring(L, 2);
  lua_settop(L, 0);
  int rc = fl_push_flow(rt, name);
  if (rc == FLOWLUA_OK) rc = fl_params_push(rt, 1, 0);
  lua_settop(L, 0);
  lua_pushinteger(L, rc);
  return 1;
}

/* The params checked before serving, not at the first fire (a day away
   for a daily cron): a required one missing or a --param refused is bad
   usage now. They are made again for each run, as ever. */
static int check_params(flowlua *rt, const char *name) {
  lua_State *L = rt->L;
  lua_pushcfunction(L, params_ok);
  lua_pushlightuserdata(L, rt);
  lua_pushstring(L, name);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    fl_set_error(rt, "flow '%s': %s", name, lua_tostring(L, -1));
    lua_pop(L, 1);
    return FLOWLUA_ENOMEM; /* lua_newtable and the like, only */
  }
  int rc = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return rc;
}

/* Swaps the reloaded handle in (outside any protected call): the flow's
   schedule is the new version's from now on, and the current handle
   joins the earlier versions, its runs going on there. */
static void swap_in(serve *sv) {
  flowlua *next = sv->next, *old = sv->rt;
  sv->next = NULL;
  if (fl_push_flow(next, sv->name) != FLOWLUA_OK) { /* checked by load */
    sv->ops->free(next);
    return;
  }
  fl_flowdef *f = lua_touserdata(next->L, -1);
  lua_pop(next->L, 1);
  sv->sc = f->schedule;
  sv->rt = next;
  take_mark(sv); /* the store's busy waits are the new handle's from now */
  if (fl_versions_retire(&sv->versions, old, &next->loop, sv->ops) != 0)
    sv_log(sv, FLOWLUA_LOG_ERROR,
           "flow '%s': out of memory keeping the runs of the earlier "
           "version going: they end with the process",
           sv->name);
}

/* The loop on the current handle's Lua state, entered again after each
   swap. */
static void serve_versions(serve *sv) {
  for (;;) {
    lua_State *L = sv->rt->L;
    lua_pushcfunction(L, serve_loop);
    lua_pushlightuserdata(L, sv);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      fl_set_error(sv->rt, "flow '%s': serving failed: %s", sv->name,
                   lua_tostring(L, -1));
      lua_pop(L, 1);
      sv->status = FLOWLUA_EIO;
    }
    if (!sv->next) break;
    if (sv->status != FLOWLUA_OK) {
      sv->ops->free(sv->next);
      sv->next = NULL;
      break;
    }
    swap_in(sv);
  }
  /* The caller reads the error on its own handle. */
  if (sv->status != FLOWLUA_OK && sv->rt != sv->host)
    fl_set_error(sv->host, "%s", fl_buf_str(&sv->rt->err));
  if (sv->rt != sv->host) {
    fl_versions_retire(&sv->versions, sv->rt, NULL, sv->ops);
    sv->rt = sv->host;
  }
  fl_versions_free(&sv->versions, sv->ops);
}

int fl_serve(flowlua *rt, const char *flow_name, int max_runs,
             const fl_reload_ops *ops, flowlua_serve_result *out) {
  if (!rt || max_runs < 0) return FLOWLUA_EINVAL;
  if (fl_host_run_going(rt, "flowlua_serve")) return FLOWLUA_ESTATE;
  if (out) *out = (flowlua_serve_result){.size = sizeof *out};
  int rc = fl_push_flow(rt, flow_name);
  if (rc) return rc;
  fl_flowdef *f = lua_touserdata(rt->L, -1);
  lua_pop(rt->L, 1); /* the flow stays referenced by the loaded script */
  if (!f->schedule) {
    fl_set_error(rt, "flow '%s' has no schedule to serve", f->name);
    return FLOWLUA_EINVAL;
  }
  rc = check_params(rt, f->name);
  if (rc) return rc;
  serve sv = {.rt = rt, .host = rt, .sc = f->schedule, .msg = FL_BUF_INIT,
              .ops = ops, .versions = {.host = rt}};
  char err[256];
  if (fl_tz_load(NULL, &sv.local, err, sizeof err) != 0) {
    fl_set_error(rt, "the local time zone: %s", err);
    return FLOWLUA_EINVAL;
  }
  sv.name = strdup(f->name);
  if (!sv.name) {
    fl_tz_free(sv.local);
    return FLOWLUA_ENOMEM;
  }
  sv.offset = fl_wall_time() - fl_now();
  sv.max_runs = f->schedule->max_runs;
  if (max_runs && (!sv.max_runs || max_runs < sv.max_runs)) sv.max_runs = max_runs;
  serve_versions(&sv);
  fl_retention_stop(&sv.retention); /* also when the loop raised */
  rt->cancel_current = 0;
  if (out) {
    *out = sv.res;
    out->size = sizeof *out;
  }
  fl_buf_free(&sv.msg);
  free(sv.queue);
  free((char *)sv.name);
  fl_tz_free(sv.local);
  return sv.status;
}
