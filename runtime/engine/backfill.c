/*
 * backfill.c — `flowlua backfill`: every fire time of a flow's schedule in
 * a range, oldest first, up to N runs at once, each recorded with its
 * scheduled_at like a served run. A fire time that already has a run that
 * succeeded is left alone, so a second backfill of the same range runs
 * only what did not succeed (a fresh run for each).
 *
 * The loop is the serving loop's, without the clock: every fire time is
 * due at once. A first stop (flowlua_stop, SIGINT) starts no more runs and
 * lets those going finish; a cancel cancels them.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "engine.h"
#include "record.h"
#include "schedule.h"
#include "store.h"

/* More fire times than this in one range is a mistake (a 1 s interval over
   a year): refused before anything runs. */
#define BACKFILL_MAX 100000
/* Two fire times closer than this are the same (the history keeps times
   as doubles; a fire time as milliseconds). */
#define SAME_FIRE 0.0005

typedef struct backfill {
  flowlua *rt;
  const char *name;
  double *fires;
  size_t n_fires, next;
  int concurrency, running;
  flowlua_backfill_result res;
  int status;
} backfill;

static void run_ended(fl_sched *s, void *data) {
  backfill *b = data;
  b->running--;
  b->res.runs++;
  if (s->state == FLOWLUA_FLOW_FAILED) b->res.failed++;
  if (s->state == FLOWLUA_FLOW_CANCELLED) b->res.cancelled++;
}

/* The fire times in [from, to], oldest first, without those a run of the
   flow already succeeded for. */
static int list_fires(backfill *b, const fl_schedule *sc, double from,
                      double to) {
  flowlua *rt = b->rt;
  char err[256];
  double t = from - SAME_FIRE, next;
  size_t cap = 0;
  int rc;
  while ((rc = fl_schedule_next(sc, t, &next, err, sizeof err)) == 0 &&
         next <= to + SAME_FIRE) {
    if (b->n_fires == BACKFILL_MAX) {
      fl_set_error(rt, "flow '%s': more than %d fire times in the range: "
                       "backfill a shorter one at a time", b->name,
                   BACKFILL_MAX);
      return FLOWLUA_EINVAL;
    }
    if (b->n_fires == cap) {
      cap = cap ? 2 * cap : 64;
      double *f = realloc(b->fires, cap * sizeof *f);
      if (!f) return FLOWLUA_ENOMEM;
      b->fires = f;
    }
    b->fires[b->n_fires++] = next;
    t = next;
  }
  if (rc < 0) {
    fl_set_error(rt, "flow '%s': %s", b->name, err);
    return FLOWLUA_EINVAL;
  }
  b->res.fire_times = b->n_fires;
  if (!rt->store || !b->n_fires) return FLOWLUA_OK;
  double *done = NULL;
  size_t n_done = 0;
  if (fl_store_succeeded_fires(rt->store, b->name, from - SAME_FIRE,
                               to + SAME_FIRE, &done, &n_done) != FLOWLUA_OK) {
    fl_set_error(rt, "flow '%s': reading the runs already done: %s", b->name,
                 fl_store_errmsg(rt->store));
    return FLOWLUA_EIO;
  }
  /* Both lists are in order: one pass drops the fire times done. */
  size_t k = 0, d = 0;
  for (size_t i = 0; i < b->n_fires; i++) {
    while (d < n_done && done[d] < b->fires[i] - SAME_FIRE) d++;
    if (d < n_done && fabs(done[d] - b->fires[i]) <= SAME_FIRE)
      b->res.succeeded_before++;
    else
      b->fires[k++] = b->fires[i];
  }
  b->n_fires = k;
  free(done);
  return FLOWLUA_OK;
}

static int may_start(const backfill *b) {
  return !b->rt->stop_requested && !b->rt->cancel_requested &&
         b->next < b->n_fires && b->running < b->concurrency &&
         b->status == FLOWLUA_OK;
}

/* The loop, in a protected call: runs execute Lua. */
static int backfill_loop(lua_State *L) {
  backfill *b = lua_touserdata(L, 1);
  flowlua *rt = b->rt;
  while (b->status == FLOWLUA_OK) {
    if (fl_sched_pump_all(rt)) {
      fl_sched_collect(rt);
      continue;
    }
    if (may_start(b)) {
      rt->cancel_current = 0;
      int rc = fl_start_run(rt, b->name, b->fires[b->next], run_ended, b);
      if (rc != FLOWLUA_OK) {
        b->status = rc;
        break;
      }
      b->next++;
      b->running++;
      continue;
    }
    if (b->running == 0) break; /* all done, or stopped */
    if (fl_sched_stalled(rt)) {
      fl_set_error(rt, "flow '%s': scheduler stalled", b->name);
      b->status = FLOWLUA_EIO;
      break;
    }
    if (fl_loop_poll(&rt->loop, -1) < 0) {
      fl_set_error(rt, "flow '%s': waiting on the event loop failed", b->name);
      b->status = FLOWLUA_EIO;
    }
  }
  /* Let the runs already started end (a failure above stopped the
     starting, not them). */
  while (b->running > 0 && !fl_sched_stalled(rt)) {
    if (fl_sched_pump_all(rt)) {
      fl_sched_collect(rt);
      continue;
    }
    if (b->running > 0 && fl_loop_poll(&rt->loop, -1) < 0) break;
  }
  return 0;
}

int fl_backfill(flowlua *rt, const char *flow_name, double from, double to,
                int concurrency, flowlua_backfill_result *out) {
  if (!rt || concurrency < 1 || !(from <= to)) {
    if (rt)
      fl_set_error(rt, "backfill: the range must not end before it starts, "
                       "and at least one run must go at a time");
    return FLOWLUA_EINVAL;
  }
  if (fl_host_run_going(rt, "flowlua_backfill")) return FLOWLUA_ESTATE;
  int rc = fl_push_flow(rt, flow_name);
  if (rc) return rc;
  fl_flowdef *f = lua_touserdata(rt->L, -1);
  lua_pop(rt->L, 1);
  if (!f->schedule) {
    fl_set_error(rt, "flow '%s' has no schedule: nothing to backfill "
                     "(run it with --once)", f->name);
    return FLOWLUA_EINVAL;
  }
  backfill b = {.rt = rt, .name = f->name, .concurrency = concurrency,
                .res = {.size = sizeof b.res}};
  rc = fl_record_open(rt);
  if (rc == FLOWLUA_OK) rc = list_fires(&b, f->schedule, from, to);
  if (rc == FLOWLUA_OK) {
    lua_State *L = rt->L;
    lua_pushcfunction(L, backfill_loop);
    lua_pushlightuserdata(L, &b);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      fl_set_error(rt, "flow '%s': backfilling failed: %s", b.name,
                   lua_tostring(L, -1));
      lua_pop(L, 1);
      b.status = FLOWLUA_EIO;
    }
    rc = b.status;
  }
  rt->cancel_current = 0;
  b.res.not_started = b.n_fires - b.next;
  if (out) {
    *out = b.res;
    out->size = sizeof *out;
  }
  free(b.fires);
  return rc;
}
