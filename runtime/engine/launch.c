/*
 * launch.c — starting a run of a loaded flow: the flow chosen by name, its
 * params, its graph built by the body, then checked only, run to its end,
 * or started for the caller's loop to move; and the same for the resume of
 * a stored run. Every step runs in protected mode, so an error (even out
 * of memory) comes back as a status and a message on the handle.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "params.h"
#include "resume.h"

typedef struct run_ctx {
  const char *flow_name;
  fl_run_mode mode;
  void (*on_end)(fl_sched *s, void *data); /* FL_RUN_START */
  void *on_end_data;
  int status;
  int force;             /* resume: despite a changed graph */
  const char *from_task; /* resume: run this and its downstream again */
} run_ctx;

static int protected_run(lua_State *L) {
  run_ctx *ctx = lua_touserdata(L, 1);
  flowlua *rt = fl_rt(L);
  lua_settop(L, 0);
  ctx->status = fl_push_flow(rt, ctx->flow_name);
  if (ctx->status) return 0;
  ctx->status = fl_params_push(rt, 1, ctx->mode == FL_RUN_CHECK);
  if (ctx->status) return 0;
  ctx->status = fl_graph_build(rt, 1, 2);
  if (ctx->status || ctx->mode == FL_RUN_CHECK) return 0;
  if (rt->resume) {
    ctx->status = fl_resume_check(rt, rt->graph, ctx->force, ctx->from_task);
    if (ctx->status) return 0;
  }
  if (ctx->mode == FL_RUN_WAIT) {
    ctx->status = fl_sched_run(rt, rt->graph, &rt->sched);
    return 0;
  }
  ctx->status = fl_sched_start(rt, rt->graph, &rt->sched);
  if (ctx->status == FLOWLUA_OK) {
    rt->sched->on_end = ctx->on_end;
    rt->sched->on_end_data = ctx->on_end_data;
  }
  return 0;
}

static int run_protected(flowlua *rt, run_ctx *ctx) {
  fl_forget_run(rt);
  fl_buf_reset(&rt->err);
  fl_mem_take_hit(&rt->mem); /* only this call's refusals count */
  lua_State *L = rt->L;
  int top = lua_gettop(L);
  ctx->status = FLOWLUA_OK;
  lua_pushcfunction(L, protected_run);
  lua_pushlightuserdata(L, ctx);
  int st = lua_pcall(L, 1, 0, 0);
  rt->building = NULL;
  rt->current = NULL;
  if (st != LUA_OK) {
    fl_set_error(rt, "%s: %s",
                 ctx->mode == FL_RUN_CHECK ? "checking the flow failed"
                                        : "the run aborted",
                 lua_tostring(L, -1));
    if (st == LUA_ERRMEM)
      fl_name_memory_limit(rt, rt->sched ? "between tasks (the runtime's own "
                                        "bookkeeping)"
                                      : "while building the flow");
    ctx->status = st == LUA_ERRMEM ? FLOWLUA_ENOMEM : FLOWLUA_EBUILD;
    if (rt->sched) rt->sched->state = FLOWLUA_FLOW_FAILED;
  } else if (ctx->status != FLOWLUA_OK &&
             strstr(fl_buf_str(&rt->err), "not enough memory")) {
    fl_name_memory_limit(rt, "while building the flow"); /* the body's pcall */
  }
  fl_resume_forget(rt); /* a run took it over, or it did not start */
  lua_settop(L, top);
  return ctx->status;
}

int fl_run(flowlua *rt, const char *flow_name, fl_run_mode mode) {
  run_ctx ctx = {flow_name, mode, NULL, NULL, FLOWLUA_OK, 0, NULL};
  return run_protected(rt, &ctx);
}

int fl_start_run(flowlua *rt, const char *flow_name, double scheduled_at,
                 void (*on_end)(fl_sched *s, void *data), void *data) {
  run_ctx ctx = {flow_name, FL_RUN_START, on_end, data, FLOWLUA_OK, 0, NULL};
  rt->scheduled_at = scheduled_at;
  int rc = run_protected(rt, &ctx);
  rt->scheduled_at = 0;
  return rc;
}

/* The stored run is read, then its resume runs like any other run. */
int fl_resume_run(flowlua *rt, const char *who, fl_run_mode mode,
                       const char *flow_name, const char *run_ref, int force,
                       const char *from_task) {
  if (fl_host_run_going(rt, who)) return FLOWLUA_ESTATE;
  if (!run_ref || !*run_ref) {
    fl_set_error(rt, "%s: a run id (or \"last\") is required", who);
    return FLOWLUA_EINVAL;
  }
  fl_forget_run(rt);
  fl_buf_reset(&rt->err);
  int rc = fl_resume_load(rt, flow_name, run_ref);
  if (rc) return rc;
  run_ctx ctx = {flow_name, mode, NULL, NULL, FLOWLUA_OK, force, from_task};
  return run_protected(rt, &ctx);
}

