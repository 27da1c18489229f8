/*
 * lsubflow.c — calling a flow inside another flow's body: `child(params)`,
 * `child:map(list)` and `flow.subflow(child, [params], [opts])`.
 *
 * A subflow call records a task run of the parent's graph, like a task
 * call: its key is the child flow's name ("child", "child#2", "child[3]"),
 * its argument the params table (which may hold nodes: their results are
 * passed), and its body runs the child flow as a run of its own
 * (runtime/engine/subflow.c). So retries, timeout, trigger rules, hooks,
 * tags and resume apply to a subflow call exactly as to a task.
 *
 * The task behind `child(...)` is made once per flow and kept in the
 * flow's FL_FLOW_UV_SUBTASK; `flow.subflow` with options makes a task per
 * call that counts its calls with that one, so keys stay "child#2"
 * whichever form the body used.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "lflowlua.h"

/* The options a subflow call takes: a task's, but for those that send the
   task's body to a worker process (a subflow runs in this process's
   engine; its own tasks may be worker tasks). */
static const char *const refused_options[] = {"worker", "queue",
                                              "queue_timeout", NULL};

static fl_graph *body_graph(lua_State *L, const char *name) {
  flowlua *rt = fl_rt(L);
  if (rt->building) return rt->building;
  if (rt->current)
    luaL_error(L, "subflow '%s' called inside a task: flows are called from "
                  "a flow body, as tasks are",
               name);
  luaL_error(L, "subflow '%s' called outside a flow body: call it inside the "
                "body function given to flow.define",
             name);
  return NULL;
}

/* Raises unless the flow at idx may run as a subflow of the graph being
   built: a task of the same name would share its task runs' keys. */
static void check_name(lua_State *L, const fl_flowdef *f) {
  if (fl_push_defined_task(L, f->name)) {
    lua_pop(L, 1);
    luaL_error(L, "subflow '%s': the script also defines a task named '%s', "
                  "and a subflow's task runs are keyed by the flow's name: "
                  "rename the flow or the task",
               f->name, f->name);
  }
}

/* Pushes the flow at idx's own subflow task, made on first use. */
static fl_taskdef *push_base_task(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_getiuservalue(L, idx, FL_FLOW_UV_SUBTASK) == LUA_TUSERDATA)
    return lua_touserdata(L, -1);
  lua_pop(L, 1);
  fl_flowdef *f = lua_touserdata(L, idx);
  check_name(L, f);
  lua_pushvalue(L, idx);
  lua_pushcclosure(L, fl_subflow_body, 1);
  fl_taskdef *d = fl_task_new(L, f->name, 0, -1, NULL);
  lua_remove(L, -2); /* the closure: the task holds it */
  d->subflow = 1;
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, idx, FL_FLOW_UV_SUBTASK);
  return d;
}

/* Records the call of the task at task_idx with the params at params_idx
   (absent: none given) in the body's graph, and pushes its node. */
static int add_call(lua_State *L, fl_graph *g, int task_idx, int params_idx,
                    int is_map) {
  int first = lua_gettop(L) + 1, nargs = 0;
  if (params_idx && !lua_isnoneornil(L, params_idx)) {
    lua_pushvalue(L, params_idx);
    nargs = 1;
  }
  int node = fl_graph_add_node(L, g, task_idx, first, nargs, is_map);
  lua_settop(L, first - 1);
  fl_push_node(L, g, (uint32_t)node);
  return 1;
}

static void check_params_arg(lua_State *L, int idx, const char *name) {
  int t = lua_type(L, idx);
  if (t != LUA_TNONE && t != LUA_TNIL && t != LUA_TTABLE &&
      !fl_testudata(L, idx, fl_rt(L)->node_mt))
    luaL_error(L, "subflow '%s': params must be a table (or a node whose "
                  "result is one), got %s",
               name, luaL_typename(L, idx));
}

/* child(params) in a flow body. */
int fl_flow_call(lua_State *L) {
  fl_flowdef *f = luaL_checkudata(L, 1, FL_FLOW_MT);
  fl_graph *g = body_graph(L, f->name);
  if (lua_gettop(L) > 2)
    return luaL_error(L, "subflow '%s' called with %d arguments: it takes "
                         "one, its params table (options go to "
                         "flow.subflow(%s, params, options))",
                      f->name, lua_gettop(L) - 1, f->name);
  check_params_arg(L, 2, f->name);
  lua_settop(L, 2); /* the params, or nil: the task goes above */
  push_base_task(L, 1);
  return add_call(L, g, lua_gettop(L), 2, 0);
}

/* child:map(list_of_params): one run of the child per element. */
int fl_flow_map(lua_State *L) {
  fl_flowdef *f = luaL_checkudata(L, 1, FL_FLOW_MT);
  fl_graph *g = body_graph(L, f->name);
  if (lua_gettop(L) != 2)
    return luaL_error(L, "subflow '%s':map takes one list (or a node) of "
                         "params tables, got %d arguments",
                      f->name, lua_gettop(L) - 1);
  if (lua_type(L, 2) != LUA_TTABLE && !fl_testudata(L, 2, fl_rt(L)->node_mt))
    return luaL_error(L, "subflow '%s':map needs a list of params tables (or "
                         "a node whose result is one), got %s",
                      f->name, luaL_typename(L, 2));
  push_base_task(L, 1);
  return add_call(L, g, lua_gettop(L), 2, 1);
}

/* flow.subflow(child, [params], [opts]) */
int fl_flow_subflow(lua_State *L) {
  fl_flowdef *f = luaL_checkudata(L, 1, FL_FLOW_MT);
  fl_graph *g = body_graph(L, f->name);
  check_params_arg(L, 2, f->name);
  int t3 = lua_type(L, 3);
  if (t3 != LUA_TNONE && t3 != LUA_TNIL && t3 != LUA_TTABLE)
    return luaL_error(L, "flow.subflow '%s': options must be a table, got %s",
                      f->name, luaL_typename(L, 3));
  if (lua_gettop(L) > 3)
    return luaL_error(L, "flow.subflow '%s': unexpected %s after the options",
                      f->name, luaL_typename(L, 4));
  lua_settop(L, 3); /* the task goes above params and options */
  fl_taskdef *base = push_base_task(L, 1);
  int base_idx = lua_gettop(L);
  if (t3 != LUA_TTABLE) return add_call(L, g, base_idx, 2, 0);
  for (const char *const *o = refused_options; *o; o++)
    if (lua_getfield(L, 3, *o) != LUA_TNIL)
      return luaL_error(L, "flow.subflow '%s': option '%s' is a task's, not "
                           "a subflow's (a subflow runs in this process; its "
                           "own tasks may be worker tasks)",
                        f->name, *o);
    else
      lua_pop(L, 1);
  /* The body closes over the flow and the base task, which keeps the
     call counter alive as long as this task is. */
  lua_pushvalue(L, 1);
  lua_pushvalue(L, base_idx);
  lua_pushcclosure(L, fl_subflow_body, 2);
  const char *who = lua_pushfstring(L, "flow.subflow '%s'", f->name);
  fl_taskdef *d = fl_task_new(L, f->name, 3, -2, who);
  d->subflow = 1;
  d->count_as = base;
  return add_call(L, g, lua_gettop(L), 2, 0);
}
