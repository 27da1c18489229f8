/*
 * flow_hooks.c — a flow's own hooks (flow.define's on_success, on_failure
 * and on_cancel), called once at the end of each run with its summary.
 *
 * A hook runs after the run's end is recorded and logged: what it does
 * (post to a webhook, write a file) cannot change how the run ended, and a
 * hook that fails is logged and ignored. It runs outside any task, as a
 * flow body does: flow.http and flow.shell wait in place there.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "sched_internal.h"
#include "states.h"

/* The failed task runs a summary lists; the count says how many there were. */
#define SUMMARY_FAILED_MAX 100

/* The hook for a run that ended in state, by its option's name. */
static const char *hook_name(int state) {
  switch (state) {
  case FLOWLUA_FLOW_SUCCESS: return "on_success";
  case FLOWLUA_FLOW_FAILED: return "on_failure";
  case FLOWLUA_FLOW_CANCELLED: return "on_cancel";
  default: return NULL;
  }
}

/* Appends r to the summary's list of failures (the table on top), as
   { task = key, state = ..., error = its first line }. */
static void add_failure(lua_State *L, const fl_taskrun *r, lua_Integer *n) {
  if (fl__sched_is_ok_state(r->state)) return;
  if (++*n > SUMMARY_FAILED_MAX) return;
  lua_createtable(L, 0, 3);
  fl__sched_push_key(L, r);
  lua_setfield(L, -2, "task");
  lua_pushstring(L, fl_task_state_name(r->state));
  lua_setfield(L, -2, "state");
  if (r->error) {
    lua_pushlstring(L, r->error, strcspn(r->error, "\n"));
    lua_setfield(L, -2, "error");
  }
  lua_rawseti(L, -2, *n);
}

/* The run's summary: flow, run_id, state, times, params, counts by state,
   and the task runs that did not succeed (failed, failed_count). */
static void push_summary(lua_State *L, const fl_sched *s) {
  lua_createtable(L, 0, 12);
  lua_pushstring(L, s->g->flow->name);
  lua_setfield(L, -2, "flow");
  lua_pushstring(L, s->run_id);
  lua_setfield(L, -2, "run_id");
  lua_pushstring(L, fl_flow_state_name(s->state));
  lua_setfield(L, -2, "state");
  lua_pushnumber(L, s->ended - s->started);
  lua_setfield(L, -2, "duration");
  lua_pushnumber(L, s->scheduled_at);
  lua_setfield(L, -2, "scheduled_at");
  lua_pushnumber(L, s->started_wall);
  lua_setfield(L, -2, "started_at");
  lua_pushnumber(L, s->started_wall + (s->ended - s->started));
  lua_setfield(L, -2, "ended_at");
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->params_ref);
  lua_setfield(L, -2, "params");
  flowlua_outcome out;
  fl_fill_outcome(s, &out);
  lua_createtable(L, 0, 4);
  for (int st = 0; st < FLOWLUA_TASK_STATE_COUNT; st++) {
    if (!out.by_state[st]) continue;
    lua_pushinteger(L, (lua_Integer)out.by_state[st]);
    lua_setfield(L, -2, fl_task_state_name(st));
  }
  lua_setfield(L, -2, "counts");
  lua_newtable(L);
  lua_Integer n = 0;
  for (uint32_t i = 0; i < s->g->n; i++) {
    const fl_taskrun *r = &s->runs[i];
    if (r->map && r->map->n > 0)
      for (uint32_t k = 0; k < r->map->n; k++) add_failure(L, &r->map->children[k], &n);
    else
      add_failure(L, r, &n);
  }
  lua_setfield(L, -2, "failed");
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "failed_count");
}

void fl__sched_flow_hook(fl_sched *s) {
  flowlua *rt = s->rt;
  lua_State *L = rt->L;
  const char *name = hook_name(s->state);
  if (!name || s->g->hooks_ref == LUA_NOREF) return;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->hooks_ref);
  if (lua_getfield(L, -1, name) != LUA_TFUNCTION) {
    lua_settop(L, top);
    return;
  }
  lua_pushcfunction(L, fl_msgh);
  lua_insert(L, -2);
  push_summary(L, s);
  /* A run cancelled by a signal still gets its on_cancel: the signal that
     cancelled it must not interrupt the hook's own waits (a webhook). A
     second signal sets it again, and stops the hook. */
  int cancel_requested = rt->cancel_requested;
  rt->cancel_requested = 0;
  fl_taskrun *current = rt->current;
  rt->current = NULL;
  if (lua_pcall(L, 1, 0, -3) != LUA_OK) {
    const char *why = lua_tostring(L, -1);
    fl__sched_log_flow(s, FLOWLUA_LOG_WARN, -1, -1,
                       "flow '%s' run %s: %s hook failed (ignored): %s",
                       s->g->flow->name, s->run_id, name,
                       why ? why : "(an error that is not a string)");
  }
  rt->current = current;
  rt->cancel_requested |= cancel_requested;
  lua_settop(L, top);
}
