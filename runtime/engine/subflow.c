/*
 * subflow.c — a flow called inside another flow's body (a subflow) runs
 * as a task run of the parent: its body (fl_subflow_body) starts a run of
 * the child flow and waits, parked like any primitive, for that run's end.
 * The child's result table is the task run's result; a child that fails
 * fails the attempt, so the call's retries, timeout and trigger rules
 * apply as to a task.
 *
 * The child run is not started from inside the parent's coroutine: the
 * call is queued (rt->subflow_head) and started by fl_sched_pump_all
 * between tasks, where every run starts, so a child's body is built and
 * recorded exactly as a top-level run's. From then on it is one more run
 * in rt->active, an orphan freed once it has ended, linked both ways:
 * run->subflow is the call that waits, call->child the run. Whichever ends
 * first unlinks the other — the child's end delivers its outcome, an
 * interrupted attempt (timeout, cancel) cancels the child and lets it go —
 * and a parent never ends while it has children going.
 */
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "params.h"
#include "sched_internal.h"
#include "states.h"

/* A flow that calls itself, directly or not, would nest without end. */
#define FL_SUBFLOW_MAX_DEPTH 32
#define SUBFLOW_MT "flowlua.subflow_call"

/* Registry: light userdata (a call) -> its userdata, from the call until
   its outcome is known or its attempt ended: what keeps the userdata
   alive while a child run points to it, and finds it from the run. */
static const char calls_key = 0;

/* Pushes the registry's table of calls, made on first use. */
static int push_calls(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &calls_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &calls_key);
  }
  return lua_gettop(L);
}

/* Pushes c's userdata and drops it from the table of calls. */
static void take_call(lua_State *L, fl_subflow *c) {
  int calls = push_calls(L);
  lua_rawgetp(L, calls, c);
  lua_pushnil(L);
  lua_rawsetp(L, calls, c);
  lua_remove(L, calls);
}

/* The attempt that waits on c ended early (timeout, cancel): a call not
   started yet never starts; a child run going is cancelled and let go. */
static void call_cancel(fl_wait *w) {
  fl_subflow *c = (fl_subflow *)w;
  flowlua *rt = c->run->sched->rt;
  if (c->pending) {
    fl_subflow **p = &rt->subflow_head, *prev = NULL;
    while (*p && *p != c) prev = *p, p = &(*p)->next;
    if (*p) {
      *p = c->next;
      if (rt->subflow_tail == c) rt->subflow_tail = prev;
    }
    c->next = NULL;
    c->pending = 0;
  }
  if (c->child) {
    c->child->cancel_asked = 1; /* as a cancel through the history would */
    c->child->subflow = NULL;
    c->child = NULL;
  }
  take_call(rt->L, c);
  lua_pop(rt->L, 1);
}

static int call_gc(lua_State *L) {
  fl_subflow *c = lua_touserdata(L, 1);
  if (c->child) c->child->subflow = NULL;
  c->child = NULL;
  return 0;
}

/* After the wait: the child's result, or its failure raised. */
static int call_done(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  fl_subflow *c = (fl_subflow *)ctx;
  lua_getiuservalue(L, 2, 3);
  switch (c->outcome) {
  case FL_SUBFLOW_DONE:
    return 1;
  case FL_SUBFLOW_REFUSED: {
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    return fl_raise_signal(L, FL_SIGNAL_FAIL, msg ? msg : "", msg ? n : 0);
  }
  default: { /* recorded as it is (no traceback of this C call); retried */
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    return fl_raise_signal(L, FL_SIGNAL_WORKER, msg ? msg : "", msg ? n : 0);
  }
  }
}

int fl_subflow_body(lua_State *L) {
  flowlua *rt = fl_rt(L);
  fl_flowdef *f = lua_touserdata(L, lua_upvalueindex(1));
  fl_taskrun *r = fl_sched_parkable(L);
  if (!r)
    return luaL_error(L, "subflow '%s' runs only as a task run of a flow run",
                      f->name);
  lua_settop(L, 1);
  if (!lua_isnil(L, 1) && !lua_istable(L, 1)) {
    lua_pushfstring(L, "subflow '%s': params must be a table, got %s",
                    f->name, luaL_typename(L, 1));
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    return fl_raise_signal(L, FL_SIGNAL_FAIL, msg, n);
  }
  if (r->sched->depth >= FL_SUBFLOW_MAX_DEPTH) {
    lua_pushfstring(L, "subflow '%s': subflows nested %d deep (does the flow "
                       "call itself?)",
                    f->name, FL_SUBFLOW_MAX_DEPTH);
    size_t n;
    const char *msg = lua_tolstring(L, -1, &n);
    return fl_raise_signal(L, FL_SIGNAL_FAIL, msg, n);
  }
  fl_subflow *c = lua_newuserdatauv(L, sizeof *c, 3); /* index 2 */
  memset(c, 0, sizeof *c);
  c->wait.cancel = call_cancel;
  c->run = r;
  if (luaL_newmetatable(L, SUBFLOW_MT)) {
    lua_pushcfunction(L, call_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setiuservalue(L, 2, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 2, 2);
  push_calls(L);
  lua_pushvalue(L, 2);
  lua_rawsetp(L, -2, c);
  lua_pop(L, 1);
  c->pending = 1;
  if (rt->subflow_tail)
    rt->subflow_tail->next = c;
  else
    rt->subflow_head = c;
  rt->subflow_tail = c;
  return fl_sched_park(L, r, &c->wait, (lua_KContext)c, call_done);
}

/* Builds and starts the child run of the call whose userdata is on top of
   L (in protected mode: the body may raise anything). */
static int start_protected(lua_State *L) {
  flowlua *rt = fl_rt(L);
  fl_subflow *c = lua_touserdata(L, 1);
  lua_getiuservalue(L, 1, 1); /* 2: the flow */
  lua_getiuservalue(L, 1, 2); /* 3: the params given */
  int status = fl_params_push_given(rt, 2, 3); /* 4: the params */
  if (status == FLOWLUA_OK) {
    fl_graph *saved = rt->graph; /* the host's last built graph, if any */
    rt->graph = NULL;
    status = fl_graph_build(rt, 2, 4);
    fl_graph *g = rt->graph;
    if (status == FLOWLUA_OK) {
      fl_sched *parent = c->run->sched, *child = NULL;
      double scheduled_at = rt->scheduled_at;
      rt->scheduled_at = parent->scheduled_at;
      rt->start_parent = c->run;
      status = fl_sched_start(rt, g, &child);
      rt->start_parent = NULL;
      rt->scheduled_at = scheduled_at;
      /* A start refused before the run took the graph (worker tasks with
         no program to run them) leaves it to the runtime. */
      if (rt->graph == g) fl_graph_free(rt, g);
      if (status == FLOWLUA_OK) {
        child->orphan = 1; /* freed once it has ended */
        child->subflow = c;
        c->child = child;
        parent->children++;
        fl__sched_log_task(parent, c->run,
                           (task_log){FLOWLUA_LOG_INFO, -1, -1, NULL},
                           "subflow '%s' run %s started", g->flow->name,
                           child->run_id);
      }
    }
    rt->graph = saved;
  }
  lua_pushinteger(L, status);
  return 1;
}

int fl__subflow_start_pending(flowlua *rt) {
  if (!rt->subflow_head) return 0;
  lua_State *L = rt->L;
  int top = lua_gettop(L);
  int calls = push_calls(L);
  while (rt->subflow_head) {
    fl_subflow *c = rt->subflow_head;
    rt->subflow_head = c->next;
    if (!rt->subflow_head) rt->subflow_tail = NULL;
    c->next = NULL;
    c->pending = 0;
    lua_rawgetp(L, calls, c); /* the call's userdata */
    int call = lua_gettop(L);
    const char *name = ((fl_flowdef *)(lua_getiuservalue(L, call, 1),
                                       lua_touserdata(L, -1)))->name;
    lua_pop(L, 1);
    fl_buf_reset(&rt->err);
    lua_pushcfunction(L, start_protected);
    lua_pushvalue(L, call);
    int st = lua_pcall(L, 1, 1, 0);
    int status = st == LUA_OK ? (int)lua_tointeger(L, -1) : FLOWLUA_EBUILD;
    if (status != FLOWLUA_OK) {
      if (st == LUA_OK) lua_pop(L, 1);
      const char *why = st != LUA_OK        ? lua_tostring(L, -1)
                        : rt->err.len        ? fl_buf_str(&rt->err)
                                             : fl_status_text(status);
      /* Its params or its body: no retry would start it. */
      lua_pushfstring(L, "subflow '%s' could not start: %s", name,
                      why ? why : "an error that is not a string");
      lua_setiuservalue(L, call, 3);
      c->outcome = FL_SUBFLOW_REFUSED;
      take_call(L, c);
      lua_pop(L, 1);
      fl_sched_wake(c->run);
    }
    lua_settop(L, call - 1);
  }
  lua_settop(L, top);
  return 1;
}

/* Pushes the child run's result: what its body returned, its nodes
   replaced by their results; else its final task runs' results by key
   (the task runs nothing in the graph waits on). */
static void push_result(fl_sched *s) {
  lua_State *L = s->rt->L;
  fl_graph *g = s->g;
  if (g->returns_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->returns_ref);
    fl__sched_push_resolved(s, -1);
    lua_remove(L, -2);
    return;
  }
  lua_newtable(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->results_ref);
  fl_buf key = FL_BUF_INIT;
  for (uint32_t i = 0; i < g->n; i++) {
    if (fl_dag_n_down(&g->dag, i) != 0) continue;
    fl_buf_reset(&key);
    fl_graph_add_key(&key, g, i);
    lua_pushlstring(L, key.data ? key.data : "", key.len);
    lua_rawgeti(L, -2, (lua_Integer)i + 1);
    lua_rawset(L, -4);
  }
  fl_buf_free(&key);
  lua_pop(L, 1);
}

/* Pushes why the child run did not succeed: its state and its first
   failed task run with the first line of its error. */
static void push_failure(fl_sched *s) {
  lua_State *L = s->rt->L;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "subflow '%s' run %s ended %s", s->g->flow->name,
                  s->run_id, fl_flow_state_name(s->state));
  luaL_addvalue(&b);
  for (uint32_t i = 0; i < s->g->n; i++) {
    const fl_taskrun *r = &s->runs[i];
    if (r->map && r->map->n > 0)
      for (uint32_t k = 0; k < r->map->n; k++)
        if (!fl__sched_is_ok_state(r->map->children[k].state)) {
          r = &r->map->children[k];
          break;
        }
    if (fl__sched_is_ok_state(r->state)) continue;
    luaL_addstring(&b, ": task '");
    fl__sched_push_key(L, r);
    luaL_addvalue(&b);
    lua_pushfstring(L, "' %s", fl_task_state_name(r->state));
    luaL_addvalue(&b);
    if (r->error) {
      luaL_addstring(&b, ": ");
      luaL_addlstring(&b, r->error, strcspn(r->error, "\n"));
    }
    break;
  }
  luaL_pushresult(&b);
}

void fl__subflow_ended(fl_sched *s) {
  if (s->parent) s->parent->children--;
  fl_subflow *c = s->subflow;
  if (!c) return; /* its call stopped waiting (timeout, cancel) */
  s->subflow = NULL;
  c->child = NULL;
  lua_State *L = s->rt->L;
  int top = lua_gettop(L);
  take_call(L, c); /* its coroutine's stack keeps it until it resumes */
  if (s->state == FLOWLUA_FLOW_SUCCESS) {
    push_result(s);
    c->outcome = FL_SUBFLOW_DONE;
  } else {
    push_failure(s);
    c->outcome = FL_SUBFLOW_FAILED;
  }
  lua_setiuservalue(L, -2, 3);
  lua_settop(L, top);
  fl_sched_wake(c->run);
}
