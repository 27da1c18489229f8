/*
 * park.c — parking a task's coroutine while a primitive waits (an HTTP
 * transfer, a child process, flow.sleep, a worker's answer), and waking it:
 * what the primitives use of the scheduler, apart from the attempt itself
 * (attempt.c), so that they depend on it no further.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "sched_internal.h"

/* ---- parking (used by primitives) ---------------------------------------- */

fl_taskrun *fl_sched_parkable(lua_State *L) {
  fl_taskrun *r = fl_rt(L)->current;
  return r && r->co == L && lua_isyieldable(L) ? r : NULL;
}

int fl_sched_park(lua_State *L, fl_taskrun *r, fl_wait *w, lua_KContext ctx,
                  lua_KFunction k) {
  r->parked = 1;
  r->wait = w;
  return lua_yieldk(L, 0, ctx, k);
}

void fl_sched_wake(fl_taskrun *r) {
  if (!r->parked || r->queued) return;
  r->queued = 1;
  fl__sched_q_push(&r->sched->resume_q, r);
}

void fl_sched_note_retry_after(lua_State *L, double seconds) {
  fl_taskrun *r = fl_rt(L)->current;
  if (r && seconds > r->retry_after) r->retry_after = seconds;
}

/* flow.sleep's wait: the run's wake timer. */
static void sleep_over(fl_timer *t) { fl_sched_wake(t->data); }

static void sleep_cancel(fl_wait *w) { (void)w; }

static int sleep_done(lua_State *L, int status, lua_KContext ctx) {
  (void)L, (void)status, (void)ctx;
  return 0;
}

int fl_sched_sleep(lua_State *L, double seconds) {
  static fl_wait sleep_wait = {sleep_cancel};
  flowlua *rt = fl_rt(L);
  fl_taskrun *r = fl_sched_parkable(L);
  if (r) {
    /* The wake timer is stopped by fl__sched_release() if the attempt ends early. */
    fl_runtimers *t = fl__sched_timers(r);
    if (!t) return luaL_error(L, "flow.sleep: out of memory");
    t->wake.cb = sleep_over;
    if (fl_timer_start(&rt->loop, &t->wake, seconds) != 0)
      return luaL_error(L, "flow.sleep: out of memory");
    return fl_sched_park(L, r, &sleep_wait, 0, sleep_done);
  }
  if (rt->current)
    return luaL_error(L, "flow.sleep cannot wait here: call it from the task "
                         "body itself, not from a coroutine or hook it runs");
  double until = fl_now() + seconds;
  if (rt->job) {
    /* A worker's job: the worker's loop watches its connection and the
       job's deadline, and a CANCEL or the deadline sets fl_cancelling. */
    while (!fl_cancelling(rt)) {
      double left = until - fl_now();
      if (left <= 0) break;
      if (fl_loop_poll(&rt->loop, left) < 0)
        return luaL_error(L, "flow.sleep: waiting on the event loop failed");
    }
    if (fl_cancelling(rt)) return luaL_error(L, "flow.sleep: interrupted");
    return 0;
  }
  /* Outside any task (script top level, flow body): a plain blocking wait
     that still ends early when the runtime is asked to stop. */
  while (!fl_cancelling(rt)) {
    double left = until - fl_now();
    if (left <= 0) break;
    if (left > 0.05) left = 0.05;
    struct timespec ts = {(time_t)left, (long)((left - floor(left)) * 1e9)};
    nanosleep(&ts, NULL);
  }
  return 0;
}
