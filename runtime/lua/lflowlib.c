/*
 * lflowlib.c — the `flowlua` Lua module: tasks, flows, nodes and the calls a
 * task makes into the runtime (context, log, sleep, fail, skip, clocks).
 *
 * Thin by design: options are checked and turned into C structs here; the
 * graph lives in graph.c and running it in sched.c. Misuse raises an error
 * naming the function, the argument and the script line (luaL_error adds it).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "lflowlua.h"
#include "loptions.h"

/* ---- helpers ------------------------------------------------------------- */

static char *dup_or_raise(lua_State *L, const char *s) {
  char *d = strdup(s);
  if (!d) luaL_error(L, "out of memory");
  return d;
}

/* ---- tasks --------------------------------------------------------------- */

static fl_taskdef *check_task(lua_State *L, int idx) {
  fl_taskdef *d = fl_testudata(L, idx, fl_rt(L)->task_mt);
  return d ? d : luaL_checkudata(L, idx, FL_TASK_MT); /* raises */
}

static int task_gc(lua_State *L) {
  fl_taskdef *d = check_task(L, 1);
  free(d->name);
  free(d->delays);
  for (int i = 0; i < d->n_tags; i++) free(d->tags[i]);
  free(d->tags);
  free(d->queue);
  memset(d, 0, sizeof *d);
  return 0;
}

/* flow.task and flow.define take (name, [options], function): raises,
   naming the mistake, unless the arguments after the name have that shape.
   `body` is what the function is called in messages. */
static void check_call_shape(lua_State *L, const char *fn, const char *name,
                             const char *body) {
  int t2 = lua_type(L, 2), t3 = lua_type(L, 3);
  if (t2 == LUA_TFUNCTION && t3 == LUA_TTABLE)
    luaL_error(L, "%s '%s': the options go before the body: %s(name, options, "
                  "body)",
               fn, name, fn);
  if (t2 == LUA_TFUNCTION && t3 != LUA_TNONE && t3 != LUA_TNIL)
    luaL_error(L, "%s '%s': unexpected %s after %s", fn, name,
               luaL_typename(L, 3), body);
  if (t2 != LUA_TFUNCTION && t2 != LUA_TTABLE && t3 == LUA_TFUNCTION)
    luaL_error(L, "%s '%s': options must be a table, got %s", fn, name,
               luaL_typename(L, 2));
  int body_idx = t2 == LUA_TTABLE ? 3 : 2;
  if (lua_type(L, body_idx) != LUA_TFUNCTION)
    luaL_error(L, "%s '%s': %s must be a function, got %s", fn, name, body,
               luaL_typename(L, body_idx));
}

/* flow.task(name, [opts], fn) */
static int flow_task(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_argcheck(L, *name != '\0', 1, "task name must not be empty");
  check_call_shape(L, "flow.task", name, "the task body");
  fl_claim_task_name(L, name);
  int has_opts = lua_type(L, 2) == LUA_TTABLE;
  lua_pushfstring(L, "flow.task '%s'", name);
  fl_task_new(L, name, has_opts ? 2 : 0, has_opts ? 3 : 2,
              lua_tostring(L, -1));
  fl_taskdef *d = lua_touserdata(L, -1);
  /* A worker finds the task by its name among those its own load of the
     script defined: a task made while a flow body builds is not one. */
  if (d->worker && fl_rt(L)->building)
    return luaL_error(L, "flow.task '%s': a worker task must be defined "
                         "at the script's top level, not inside a flow body "
                         "(a worker loads the script, it does not build "
                         "the flow)",
                      name);
  fl_keep_defined_task(L, lua_gettop(L), name);
  return 1;
}

/* Raises unless a flow body is being built right now. */
static fl_graph *graph_or_raise(lua_State *L, const char *what) {
  flowlua *rt = fl_rt(L);
  if (rt->building) return rt->building;
  if (rt->current) {
    fl_buf key = FL_BUF_INIT;
    fl_taskrun_add_key(&key, rt->current);
    lua_pushstring(L, fl_buf_str(&key));
    fl_buf_free(&key);
    luaL_error(L,
               "%s inside task '%s': tasks are called from a flow body, "
               "not from other tasks",
               what, lua_tostring(L, -1));
  }
  luaL_error(L, "%s outside a flow body: call tasks inside the body "
                "function given to flow.define",
             what);
  return NULL;
}


/* task(...) in a flow body: records the call, returns its node. */
static int task_call(lua_State *L) {
  fl_taskdef *d = check_task(L, 1);
  /* The message is made only when it is needed: this runs per call. */
  fl_graph *g = fl_rt(L)->building;
  if (!g) graph_or_raise(L, lua_pushfstring(L, "task '%s' called", d->name));
  int idx = fl_graph_add_node(L, g, 1, 2, lua_gettop(L) - 1, 0);
  fl_push_node(L, g, (uint32_t)idx);
  return 1;
}

/* task:map(list_or_node, ...) */
static int task_map(lua_State *L) {
  fl_taskdef *d = check_task(L, 1);
  fl_graph *g = fl_rt(L)->building;
  if (!g) graph_or_raise(L, lua_pushfstring(L, "task '%s':map called", d->name));
  if (lua_gettop(L) < 2)
    return luaL_error(L, "task '%s':map needs a list (or a node) to map over",
                      d->name);
  int idx = fl_graph_add_node(L, g, 1, 2, lua_gettop(L) - 1, 1);
  fl_push_node(L, g, (uint32_t)idx);
  return 1;
}

static int task_index(lua_State *L) {
  fl_taskdef *d = check_task(L, 1);
  const char *key = luaL_checkstring(L, 2);
  if (strcmp(key, "name") == 0) {
    lua_pushstring(L, d->name);
  } else if (strcmp(key, "map") == 0) {
    lua_pushcfunction(L, task_map);
  } else if (strcmp(key, "fn") == 0) {
    lua_getiuservalue(L, 1, FL_TASK_UV_FN);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

static int task_tostring(lua_State *L) {
  lua_pushfstring(L, "task '%s'", check_task(L, 1)->name);
  return 1;
}

/* ---- nodes --------------------------------------------------------------- */

static uint32_t *check_node(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, FL_NODE_MT);
}

/* node:after(other, ...) — ordering edges; lists of nodes are accepted. */
static int node_after(lua_State *L) {
  uint32_t *self = check_node(L, 1);
  fl_graph *g = graph_or_raise(L, "node:after called");
  if (self[0] != g->id)
    return luaL_error(L, "node:after: this node belongs to another flow");
  int top = lua_gettop(L);
  for (int i = 2; i <= top; i++) {
    int n_items = 1, is_list = lua_type(L, i) == LUA_TTABLE &&
                                   !lua_getmetatable(L, i);
    if (lua_type(L, i) == LUA_TTABLE && !is_list) lua_pop(L, 1);
    if (is_list) n_items = (int)lua_rawlen(L, i);
    for (int k = 1; k <= n_items; k++) {
      if (is_list) lua_rawgeti(L, i, k);
      else lua_pushvalue(L, i);
      uint32_t *up = fl_testudata(L, -1, fl_rt(L)->node_mt);
      if (!up)
        return luaL_error(L, "node:after: argument %d must be a node (the "
                             "result of calling a task), got %s",
                          i - 1, luaL_typename(L, -1));
      if (up[0] != g->id)
        return luaL_error(L, "node:after: argument %d is a node from "
                             "another flow",
                          i - 1);
      if (fl_dag_add_edge(&g->dag, up[1], self[1], FL_EDGE_ORDER) != 0)
        return luaL_error(L, "out of memory");
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 1);
  return 1;
}

/* A node used as a value (added to, joined, compared, measured, called):
   raised with what a node is and how flows branch, where Lua's own
   message ("attempt to perform arithmetic on a flowlua.node value") says
   neither. The upvalue says what was attempted. (A node in a boolean test
   cannot be caught: it is true, as every userdata; the manual's
   "Branching" says so.) */
static int node_not_a_value(lua_State *L) {
  int at = lua_touserdata(L, 1) && luaL_testudata(L, 1, FL_NODE_MT) ? 1 : 2;
  luaL_where(L, 1); /* the script's line that used it */
  luaL_tolstring(L, at, NULL);
  lua_pushfstring(
      L,
      "%s %s: a node is not a value but a future, the result its task "
      "will have once it runs (the flow's body only wires tasks together, "
      "before any runs): pass it to a task, as load(check()), and decide "
      "inside that task; to branch, end a task with flow.skip(why) and give "
      "the tasks after it a trigger rule (see \"Branching\" in "
      "docs/manual/flows-and-tasks.md)",
      lua_tostring(L, -1), lua_tostring(L, lua_upvalueindex(1)));
  lua_remove(L, -2); /* the node's name, now in the message */
  lua_concat(L, 2);
  return lua_error(L);
}

static int node_tostring(lua_State *L) {
  uint32_t *n = check_node(L, 1);
  flowlua *rt = fl_rt(L);
  fl_graph *g = rt->building && rt->building->id == n[0]     ? rt->building
                : rt->graph && rt->graph->id == n[0]       ? rt->graph
                : rt->sched && rt->sched->g->id == n[0]    ? rt->sched->g
                                                           : NULL;
  if (!g) return lua_pushfstring(L, "node #%d", (int)n[1] + 1), 1;
  fl_buf key = FL_BUF_INIT;
  fl_graph_add_key(&key, g, n[1]);
  lua_pushfstring(L, "node '%s'", fl_buf_str(&key));
  fl_buf_free(&key);
  return 1;
}

/* flow.unmapped(x) */
static int flow_unmapped(lua_State *L) {
  luaL_checkany(L, 1);
  lua_newuserdatauv(L, 0, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, FL_UNMAPPED_MT);
  return 1;
}

/* ---- flows --------------------------------------------------------------- */

static fl_flowdef *check_flow(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, FL_FLOW_MT);
}

static int flow_gc(lua_State *L) {
  fl_flowdef *f = check_flow(L, 1);
  free(f->name);
  for (int i = 0; i < f->n_limits; i++) free(f->limits[i].tag);
  free(f->limits);
  memset(f, 0, sizeof *f);
  return 0;
}

static void parse_limits(lua_State *L, fl_flowdef *f, int idx, const char *who) {
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "%s: option 'limits' must be a table { tag = n }, got %s",
               who, luaL_typename(L, idx));
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    lua_pop(L, 1);
  }
  f->limits = calloc((size_t)(n ? n : 1), sizeof *f->limits);
  if (!f->limits) luaL_error(L, "out of memory");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "%s: option 'limits' keys must be tag names", who);
    lua_pushfstring(L, "limits.%s", lua_tostring(L, -2));
    int limit = fl_opt_integer(L, -2, who, lua_tostring(L, -1), 1);
    lua_pop(L, 1);
    f->limits[f->n_limits].limit = limit;
    f->limits[f->n_limits].tag = dup_or_raise(L, lua_tostring(L, -2));
    f->n_limits++;
    lua_pop(L, 1);
  }
}

/* flow.define(name, [opts], body) */
static int flow_define(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_argcheck(L, *name != '\0', 1, "flow name must not be empty");
  check_call_shape(L, "flow.define", name, "the flow body");
  int has_opts = lua_type(L, 2) == LUA_TTABLE;
  int body_idx = has_opts ? 3 : 2;

  fl_flowdef *f = lua_newuserdatauv(L, sizeof *f, FL_FLOW_NUV);
  memset(f, 0, sizeof *f);
  luaL_setmetatable(L, FL_FLOW_MT);
  int flow_idx = lua_gettop(L);
  f->name = dup_or_raise(L, name);
  lua_pushvalue(L, body_idx);
  lua_setiuservalue(L, flow_idx, FL_FLOW_UV_BODY);
  lua_newtable(L);
  lua_setiuservalue(L, flow_idx, FL_FLOW_UV_PARAMS);
  if (!has_opts) return 1;

  lua_pushfstring(L, "flow.define '%s'", name);
  const char *who = lua_tostring(L, -1);
  static const char *const names[] = {"params", "schedule", "concurrency",
                                      "limits", "on_success", "on_failure",
                                      "on_cancel", NULL};
  enum { PARAMS, SCHEDULE, CONCURRENCY, LIMITS, ON_SUCCESS, ON_FAILURE,
         ON_CANCEL };
  fl_opts o;
  fl_opts_begin(&o, L, 2, who, "option", names);
  for (int k; (k = fl_opts_next(&o)) >= 0;) {
    int v = o.value;
    switch (k) {
    case PARAMS:
      if (lua_type(L, v) != LUA_TTABLE)
        luaL_error(L, "%s: option 'params' must be a table, got %s", who,
                   luaL_typename(L, v));
      lua_pushnil(L);
      while (lua_next(L, v)) {
        if (lua_type(L, -2) != LUA_TSTRING)
          luaL_error(L, "%s: parameter names must be strings", who);
        lua_pop(L, 1);
      }
      lua_pushvalue(L, v);
      lua_setiuservalue(L, flow_idx, FL_FLOW_UV_PARAMS);
      break;
    case SCHEDULE:
      f->schedule = fl_check_schedule(L, v, who);
      lua_pushvalue(L, v);
      lua_setiuservalue(L, flow_idx, FL_FLOW_UV_SCHEDULE);
      break;
    case CONCURRENCY:
      f->concurrency = fl_opt_integer(L, v, who, o.key, 1);
      break;
    case LIMITS:
      parse_limits(L, f, v, who);
      break;
    case ON_SUCCESS:
    case ON_FAILURE:
    case ON_CANCEL:
      /* Kept in a table of hooks, named as in the option. */
      fl_opt_function(L, v, who, o.key);
      if (lua_getiuservalue(L, flow_idx, FL_FLOW_UV_HOOKS) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, flow_idx, FL_FLOW_UV_HOOKS);
      }
      lua_pushvalue(L, v);
      lua_setfield(L, -2, o.key);
      lua_pop(L, 1);
      break;
    }
  }
  lua_settop(L, flow_idx);
  return 1;
}

static int flow_index(lua_State *L) {
  fl_flowdef *f = check_flow(L, 1);
  const char *key = luaL_checkstring(L, 2);
  if (strcmp(key, "name") == 0)
    lua_pushstring(L, f->name);
  else if (strcmp(key, "params") == 0)
    lua_getiuservalue(L, 1, FL_FLOW_UV_PARAMS);
  else if (strcmp(key, "map") == 0)
    lua_pushcfunction(L, fl_flow_map);
  else
    lua_pushnil(L);
  return 1;
}

static int flow_tostring(lua_State *L) {
  lua_pushfstring(L, "flow '%s'", check_flow(L, 1)->name);
  return 1;
}

/* ---- inside a task ------------------------------------------------------- */

static int raise_signal(lua_State *L, int kind) {
  const char *msg = luaL_optstring(L, 1, kind == FL_SIGNAL_FAIL
                                             ? "failed by flow.fail"
                                             : "skipped by flow.skip");
  int *k = lua_newuserdatauv(L, sizeof(int), 1);
  *k = kind;
  lua_pushstring(L, msg);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, FL_SIGNAL_MT);
  return lua_error(L);
}

static int flow_fail(lua_State *L) { return raise_signal(L, FL_SIGNAL_FAIL); }
static int flow_skip(lua_State *L) { return raise_signal(L, FL_SIGNAL_SKIP); }

static int signal_tostring(lua_State *L) {
  luaL_checkudata(L, 1, FL_SIGNAL_MT);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int flow_context(lua_State *L) {
  fl_sched_push_context(L, fl_rt(L));
  return 1;
}

/* Pushes argument i as a log line shows it: a string or number as it is,
   a table as JSON (flow.json.encode, the log functions' upvalue), or what
   tostring gives when it is not JSON (a function inside, a cycle). */
static void push_log_piece(lua_State *L, int i) {
  if (lua_type(L, i) == LUA_TTABLE) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, i);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) return;
    lua_pop(L, 1);
  }
  luaL_tolstring(L, i, NULL);
}

/* flow.log.LEVEL(...): a format and its values when the first argument
   is a string holding '%' and more follow (string.format's rules);
   otherwise every argument, joined with spaces, as print() would, but
   tables as JSON. */
static int log_at(lua_State *L, int level) {
  flowlua *rt = fl_rt(L);
  /* A worker's job sends every line (its driver's level decides), and a
     task's lines are kept in the history whatever is printed. */
  if (!fl_sched_log_wanted(rt, level)) return 0;
  int n = lua_gettop(L);
  if (n > 1 && lua_type(L, 1) == LUA_TSTRING && strchr(lua_tostring(L, 1), '%')) {
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "format");
    lua_insert(L, 1);
    lua_pop(L, 1);
    /* Protected, so that a format that does not fit its values is raised
       again from here: the message then names the script's line. */
    if (lua_pcall(L, n, 1, 0) != LUA_OK)
      return luaL_error(L, "flow.log.%s: %s", fl_log_level_name(level),
                        lua_tostring(L, -1));
  } else {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
      if (i > 1) luaL_addchar(&b, ' ');
      push_log_piece(L, i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
  }
  fl_sched_log(rt, level, lua_tostring(L, -1));
  return 0;
}

static int log_debug(lua_State *L) { return log_at(L, FLOWLUA_LOG_DEBUG); }
static int log_info(lua_State *L) { return log_at(L, FLOWLUA_LOG_INFO); }
static int log_warn(lua_State *L) { return log_at(L, FLOWLUA_LOG_WARN); }
static int log_error(lua_State *L) { return log_at(L, FLOWLUA_LOG_ERROR); }

static int flow_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0 && !isinf(s), 1, "seconds must be a number >= 0");
  return fl_sched_sleep(L, s);
}

static int flow_now(lua_State *L) {
  lua_pushnumber(L, fl_now());
  return 1;
}

static int flow_time(lua_State *L) {
  lua_pushnumber(L, fl_wall_time());
  return 1;
}

static int flow_env(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *v = getenv(name);
  if (v)
    lua_pushstring(L, v);
  else
    lua_settop(L, 2); /* the default, or nil */
  return 1;
}

/* flow.secret(name): the environment value, remembered so that it is masked
   in every log line, error message and stored record from now on. */
static int flow_secret(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *v = getenv(name);
  if (!v)
    return luaL_error(L, "flow.secret: environment variable '%s' is not set",
                      name);
  if (fl_log_add_secret(&fl_rt(L)->log, v) != 0)
    return luaL_error(L, "flow.secret: out of memory");
  fl_sched_note_secret(fl_rt(L), v);
  lua_pushstring(L, v);
  return 1;
}

/* ---- the module ---------------------------------------------------------- */

static void new_metatable(lua_State *L, const char *name, const luaL_Reg *m) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, m, 0);
  lua_pushliteral(L, "flowlua");
  lua_setfield(L, -2, "__metatable"); /* scripts may not swap it out */
  lua_pop(L, 1);
}

int luaopen_flowlua(lua_State *L) {
  static const luaL_Reg task_meta[] = {{"__call", task_call},
                                       {"__index", task_index},
                                       {"__gc", task_gc},
                                       {"__tostring", task_tostring},
                                       {NULL, NULL}};
  static const luaL_Reg flow_meta[] = {{"__index", flow_index},
                                       {"__call", fl_flow_call},
                                       {"__gc", flow_gc},
                                       {"__tostring", flow_tostring},
                                       {NULL, NULL}};
  static const luaL_Reg node_meta[] = {{"__index", NULL},
                                       {"__tostring", node_tostring},
                                       {NULL, NULL}};
  static const luaL_Reg node_methods[] = {{"after", node_after}, {NULL, NULL}};
  static const luaL_Reg unmapped_meta[] = {{NULL, NULL}};
  static const luaL_Reg signal_meta[] = {{"__tostring", signal_tostring},
                                         {NULL, NULL}};
  static const luaL_Reg log_funcs[] = {{"debug", log_debug},
                                       {"info", log_info},
                                       {"warn", log_warn},
                                       {"error", log_error},
                                       {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"task", flow_task},
                                   {"define", flow_define},
                                   {"unmapped", flow_unmapped},
                                   {"subflow", fl_flow_subflow},
                                   {"fail", flow_fail},
                                   {"skip", flow_skip},
                                   {"context", flow_context},
                                   {"sleep", flow_sleep},
                                   {"now", flow_now},
                                   {"time", flow_time},
                                   {"env", flow_env},
                                   {"secret", flow_secret},
                                   {NULL, NULL}};

  new_metatable(L, FL_TASK_MT, task_meta);
  new_metatable(L, FL_FLOW_MT, flow_meta);
  new_metatable(L, FL_UNMAPPED_MT, unmapped_meta);
  new_metatable(L, FL_SIGNAL_MT, signal_meta);
  new_metatable(L, FL_NODE_MT, node_meta);
  luaL_getmetatable(L, FL_NODE_MT);
  static const char *const misuse[][2] = {
      {"__add", "used as a number"},  {"__sub", "used as a number"},
      {"__mul", "used as a number"},  {"__div", "used as a number"},
      {"__mod", "used as a number"},  {"__pow", "used as a number"},
      {"__unm", "used as a number"},  {"__idiv", "used as a number"},
      {"__band", "used as a number"}, {"__bor", "used as a number"},
      {"__bxor", "used as a number"}, {"__shl", "used as a number"},
      {"__shr", "used as a number"},  {"__bnot", "used as a number"},
      {"__lt", "compared"},           {"__le", "compared"},
      {"__concat", "joined as a string"}, {"__len", "measured with #"},
      {"__call", "called"}};
  for (size_t i = 0; i < sizeof misuse / sizeof misuse[0]; i++) {
    lua_pushstring(L, misuse[i][1]);
    lua_pushcclosure(L, node_not_a_value, 1);
    lua_setfield(L, -2, misuse[i][0]);
  }
  lua_pop(L, 1);
  flowlua *rt = fl_rt(L);
  const char *const names[] = {FL_TASK_MT, FL_NODE_MT, FL_UNMAPPED_MT};
  const void **slots[] = {&rt->task_mt, &rt->node_mt, &rt->unmapped_mt};
  for (int i = 0; i < 3; i++) {
    luaL_getmetatable(L, names[i]);
    *slots[i] = lua_topointer(L, -1); /* alive: the registry holds it */
    lua_pop(L, 1);
  }
  /* In a registry slot of its own too, for fl_push_node: once per state
     (opening the module again finds the same metatable). */
  if (rt->node_mt_ref <= 0) {
    luaL_getmetatable(L, FL_NODE_MT);
    rt->node_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  luaL_getmetatable(L, FL_NODE_MT);
  luaL_newlib(L, node_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  luaL_newlib(L, funcs);
  fl_open_schedules(L);
  fl_open_params(L);
  /* The log functions show tables as JSON, with flow.json.encode. */
  lua_newtable(L);
  luaopen_flowlua_json(L);
  lua_getfield(L, -1, "encode");
  lua_remove(L, -2);
  luaL_setfuncs(L, log_funcs, 1);
  lua_setfield(L, -2, "log");
  /* The primitives, each a table of its own: flow.json, flow.csv, ... */
  static const luaL_Reg submodules[] = {
      {"http", luaopen_flowlua_http},
      {"shell", luaopen_flowlua_shell},
      {"csv", luaopen_flowlua_csv},
      {"json", luaopen_flowlua_json},
      {"fs", luaopen_flowlua_fs},
      {NULL, NULL}};
  for (const luaL_Reg *m = submodules; m->name; m++) {
    m->func(L);
    lua_setfield(L, -2, m->name);
  }
  lua_pushliteral(L, FLOWLUA_VERSION);
  lua_setfield(L, -2, "version");
  /* The host's own functions (flowlua_register_function). */
  if (lua_getfield(L, LUA_REGISTRYINDEX, FL_HOST_FUNCS) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_settable(L, -5);
    }
  }
  lua_pop(L, 1);
  return 1;
}
