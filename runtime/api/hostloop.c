/*
 * hostloop.c — a run driven by the host's event loop: flowlua_start,
 * flowlua_fd, flowlua_timeout_ms, flowlua_step (flowlua.h).
 *
 * The runtime's own loop is an epoll set with a timer heap; a host that
 * has a loop of its own waits on the epoll descriptor (readable when a
 * transfer, a child process or a wake-up has something) and on the next
 * timer, then lets flowlua_step do what became ready, without blocking.
 */
#include <lauxlib.h>
#include <math.h>

#include "api.h"
#include "record.h"

int flowlua_start(flowlua *rt, const char *flow_name) {
  if (!rt) return FLOWLUA_EINVAL;
  if (fl_api_reentered(rt, "flowlua_start")) return FLOWLUA_ESTATE;
  if (rt->sched && rt->sched->active) {
    fl_set_error(rt, "flowlua_start: a run is already going (step it to "
                     "its end first)");
    return FLOWLUA_ESTATE;
  }
  return fl_start_run(rt, flow_name, 0, NULL, NULL);
}

int flowlua_fd(const flowlua *rt) { return rt ? rt->loop.epfd : -1; }

/* 0 whenever a step has work that needs no waiting: right after
   flowlua_start the first tasks wait to be started, and nothing makes the
   descriptor readable for them. And 0 once the run has ended, so that the
   step that reports it comes at once. */
int flowlua_timeout_ms(flowlua *rt) {
  if (!rt || !rt->sched) return -1;
  if (!rt->sched->active || fl_sched_has_ready_work(rt)) return 0;
  double due = fl_loop_next_due(&rt->loop);
  if (due < 0) return -1;
  double ms = ceil(due * 1000.0);
  return ms > 86400000.0 ? 86400000 : (int)ms;
}

/* One step, in a protected call: tasks run Lua code. */
static int step_protected(lua_State *L) {
  flowlua *rt = fl_rt(L);
  for (;;) {
    while (fl_sched_pump_all(rt)) fl_sched_collect(rt);
    if (!rt->sched->active) break;
    /* What became ready while the host waited, and due timers; then
       again, until nothing moves without waiting. */
    fl_loop_poll(&rt->loop, 0);
    if (!fl_sched_pump_all(rt)) break;
    fl_sched_collect(rt);
  }
  return 0;
}

static int flowlua_step_body(flowlua *rt, flowlua_outcome *out) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!FL_API_SIZED(rt, "flowlua_step", out)) return FLOWLUA_EINVAL;
  if (!rt->sched) {
    fl_set_error(rt, "flowlua_step: no run was started (flowlua_start)");
    return FLOWLUA_ESTATE;
  }
  if (rt->sched->active) {
    lua_State *L = rt->L;
    lua_pushcfunction(L, step_protected);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
      fl_set_error(rt, "flowlua_step: %s", lua_tostring(L, -1));
      lua_pop(L, 1);
      rt->cancel_requested = 1; /* the run cannot go on safely */
      return FLOWLUA_EIO;
    }
    if (rt->sched->active && fl_sched_stalled(rt)) {
      fl_set_error(rt, "flowlua_step: the run is stalled (nothing can move)");
      return FLOWLUA_EIO;
    }
  }
  if (rt->sched->active) return 0;
  if (out) fl_fill_outcome(rt->sched, out);
  return 1;
}

int flowlua_step(flowlua *rt, flowlua_outcome *out) {
  if (!rt) return FLOWLUA_EINVAL;
  int rc = fl_api_enter(rt, "flowlua_step", FL_API_RUN);
  if (rc) return rc;
  rc = flowlua_step_body(rt, out);
  return fl_api_leave(rt, rc);
}
