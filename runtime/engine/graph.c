/*
 * graph.c — building a flow's task graph by running its body.
 *
 * The body runs once, in protected mode, with every task call recorded as a
 * node; nodes found among the arguments (also inside plain tables and
 * flow.unmapped wrappers) become data edges. Nothing here runs a task. The
 * finished graph is validated as a whole before any task may start.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "states.h"

#define FL_MAX_ARG_DEPTH 100

fl_graph *fl_graph_new(flowlua *rt, fl_flowdef *flow) {
  fl_graph *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->id = ++rt->next_graph_id;
  g->flow = flow;
  fl_dag_init(&g->dag);
  lua_State *L = rt->L;
  lua_newtable(L);
  g->tasks_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  g->args_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  g->params_ref = LUA_NOREF;
  g->hooks_ref = LUA_NOREF;
  g->returns_ref = LUA_NOREF;
  return g;
}

void fl_graph_free(flowlua *rt, fl_graph *g) {
  if (!g) return;
  luaL_unref(rt->L, LUA_REGISTRYINDEX, g->tasks_ref);
  luaL_unref(rt->L, LUA_REGISTRYINDEX, g->args_ref);
  luaL_unref(rt->L, LUA_REGISTRYINDEX, g->params_ref);
  luaL_unref(rt->L, LUA_REGISTRYINDEX, g->hooks_ref);
  luaL_unref(rt->L, LUA_REGISTRYINDEX, g->returns_ref);
  fl_dag_free(&g->dag);
  free(g->nodes);
  free(g);
}

/* 1 the first time the table at idx is seen (marked in the table at
   seen), 0 after: a table that contains itself is walked once. */
static int first_visit(lua_State *L, int idx, int seen) {
  lua_pushvalue(L, idx);
  if (lua_rawget(L, seen) != LUA_TNIL) return lua_pop(L, 1), 0;
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  return 1;
}

/*
 * Records an edge for every node inside the value at idx. Returns 1 if a
 * node was found inside a table (the argument then needs substituting when
 * the task starts), 0 otherwise. `seen` indexes a table of visited tables,
 * so a table that contains itself is scanned once.
 */
static int scan_value(lua_State *L, fl_graph *g, uint32_t to, int idx,
                      int seen, int depth) {
  idx = lua_absindex(L, idx);
  uint32_t *node = fl_testudata(L, idx, fl_rt(L)->node_mt);
  if (node) {
    if (node[0] != g->id)
      luaL_error(L, "a node from another flow was passed to task '%s' "
                    "(nodes belong to the flow body that created them)",
                 g->nodes[to].def->name);
    if (fl_dag_add_edge(&g->dag, node[1], to, FL_EDGE_DATA) != 0)
      luaL_error(L, "out of memory");
    return 0;
  }
  if (fl_testudata(L, idx, fl_rt(L)->unmapped_mt)) {
    lua_getiuservalue(L, idx, 1);
    int nested = scan_value(L, g, to, -1, seen, depth + 1);
    lua_pop(L, 1);
    return nested;
  }
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  if (lua_getmetatable(L, idx)) { /* objects are passed as they are */
    lua_pop(L, 1);
    return 0;
  }
  if (depth > FL_MAX_ARG_DEPTH)
    luaL_error(L, "arguments of task '%s' are nested more than %d tables deep",
               g->nodes[to].def->name, FL_MAX_ARG_DEPTH);
  luaL_checkstack(L, 4, "arguments nested too deeply");
  if (!first_visit(L, idx, seen)) return 0;

  int found = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (fl_testudata(L, -1, fl_rt(L)->node_mt)) found = 1;
    if (scan_value(L, g, to, -1, seen, depth + 1)) found = 1;
    lua_pop(L, 1);
  }
  return found;
}

int fl_graph_add_node(lua_State *L, fl_graph *g, int task_idx, int first_arg,
                      int nargs, int is_map) {
  /* The callers have checked it is a task: not tested again. */
  fl_taskdef *d = lua_touserdata(L, task_idx);
  if (nargs > 250)
    luaL_error(L, "task '%s' called with %d arguments (at most 250)", d->name,
               nargs);
  if (g->n == g->cap) {
    uint32_t cap = g->cap ? g->cap * 2 : 64;
    fl_node *nodes = realloc(g->nodes, cap * sizeof *nodes);
    if (!nodes) luaL_error(L, "out of memory");
    g->nodes = nodes;
    g->cap = cap;
  }
  if ((uint32_t)nargs > UINT32_MAX - g->n_args)
    luaL_error(L, "too many task arguments in one flow");
  int64_t index = fl_dag_add_node(&g->dag);
  if (index < 0) luaL_error(L, "too many tasks in one flow");
  /* A subflow call made with options counts with the flow's own. */
  fl_taskdef *counter = d->count_as ? d->count_as : d;
  if (counter->graph_id != g->id) {
    counter->graph_id = g->id;
    counter->calls = 0;
  }
  lua_Debug ar;
  int line = -1;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar)) line = ar.currentline;
  fl_node *n = &g->nodes[g->n++];
  *n = (fl_node){.def = d, .ordinal = ++counter->calls, .line = line,
                 .arg_at = g->n_args, .nargs = (uint16_t)nargs,
                 .flags = is_map ? FL_NODE_MAP : 0};
  uint32_t to = (uint32_t)index;

  if (d != g->last_def) { /* a body mostly calls one task many times */
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->tasks_ref);
    if (lua_rawgetp(L, -1, d) == LUA_TNIL) {
      lua_pushvalue(L, task_idx);
      lua_rawsetp(L, -3, d);
    }
    lua_pop(L, 2);
    g->last_def = d;
  }
  if (nargs == 0) return (int)to;

  int top = lua_gettop(L), seen = 0;
  for (int i = 0; i < nargs && !seen; i++)
    if (lua_type(L, first_arg + i) == LUA_TTABLE ||
        fl_testudata(L, first_arg + i, fl_rt(L)->unmapped_mt)) {
      lua_newtable(L);
      seen = lua_gettop(L);
    }
  /* The slots are the node's before anything below may raise (a node of
     another flow, memory), so that the next node's never overlap them. */
  g->n_args += (uint32_t)nargs;
  lua_rawgeti(L, LUA_REGISTRYINDEX, g->args_ref);
  int args = lua_gettop(L);
  for (int i = 0; i < nargs; i++) {
    lua_pushvalue(L, first_arg + i);
    lua_rawseti(L, args, (lua_Integer)n->arg_at + i + 1);
  }
  for (int i = 0; i < nargs; i++)
    if (scan_value(L, g, to, first_arg + i, seen, 0))
      n->flags |= FL_NODE_NESTED;
  lua_settop(L, top);
  return (int)to;
}

/* 1 when the value at idx holds a node of another graph than g (directly,
   in flow.unmapped, or in plain tables, as arguments may): what a body
   returns must be its own nodes, resolved from its own run's results. */
static int holds_foreign_node(lua_State *L, const fl_graph *g, int idx,
                              int seen, int depth) {
  idx = lua_absindex(L, idx);
  uint32_t *node = fl_testudata(L, idx, fl_rt(L)->node_mt);
  if (node) return node[0] != g->id;
  if (fl_testudata(L, idx, fl_rt(L)->unmapped_mt)) {
    lua_getiuservalue(L, idx, 1);
    int found = holds_foreign_node(L, g, -1, seen, depth + 1);
    lua_pop(L, 1);
    return found;
  }
  if (lua_type(L, idx) != LUA_TTABLE || depth > FL_MAX_ARG_DEPTH) return 0;
  if (lua_getmetatable(L, idx)) return lua_pop(L, 1), 0;
  luaL_checkstack(L, 4, "the body's return nested too deeply");
  if (!first_visit(L, idx, seen)) return 0;
  int found = 0;
  lua_pushnil(L);
  while (!found && lua_next(L, idx)) {
    found = holds_foreign_node(L, g, -1, seen, depth + 1);
    lua_pop(L, 1);
  }
  if (found) lua_pop(L, 1); /* the key lua_next left */
  return found;
}

/* "a (line 3) → b (line 5) → a" */
static void describe_cycle(fl_buf *b, const fl_graph *g, const uint32_t *cyc,
                           size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (i) fl_buf_adds(b, " -> ");
    fl_graph_add_key(b, g, cyc[i]);
    if (i + 1 < len && g->nodes[cyc[i]].line > 0)
      fl_buf_addf(b, " (line %d)", (int)g->nodes[cyc[i]].line);
  }
}

int fl_graph_build(flowlua *rt, int flow_idx, int params_idx) {
  lua_State *L = rt->L;
  flow_idx = lua_absindex(L, flow_idx);
  params_idx = lua_absindex(L, params_idx);
  fl_flowdef *f = luaL_checkudata(L, flow_idx, FL_FLOW_MT);
  fl_graph *g = fl_graph_new(rt, f);
  if (!g) {
    fl_set_error(rt, "flow '%s': out of memory", f->name);
    return FLOWLUA_ENOMEM;
  }
  lua_pushvalue(L, params_idx);
  g->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* The flow's hooks, called at the end of each run of this graph. */
  if (lua_getiuservalue(L, flow_idx, FL_FLOW_UV_HOOKS) == LUA_TTABLE)
    g->hooks_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_pop(L, 1);

  lua_pushcfunction(L, fl_msgh);
  lua_getiuservalue(L, flow_idx, FL_FLOW_UV_BODY);
  lua_pushvalue(L, params_idx);
  rt->building = g;
  int status = lua_pcall(L, 1, 1, -3);
  rt->building = NULL;
  if (status != LUA_OK) {
    fl_set_error(rt, "flow '%s': the flow body failed: %s", f->name,
                 lua_tostring(L, -1));
    lua_pop(L, 2);
    fl_graph_free(rt, g);
    return FLOWLUA_EBUILD;
  }
  /* What the body returns is what the flow returns as a subflow (its
     nodes replaced by their results at the end): kept unless nil. */
  lua_newtable(L);
  int foreign = holds_foreign_node(L, g, -2, lua_gettop(L), 0);
  lua_pop(L, 1);
  if (foreign) {
    fl_set_error(rt, "flow '%s': the flow body returned a node of another "
                     "flow (a body returns its own nodes, or plain values)",
                 f->name);
    lua_pop(L, 2);
    fl_graph_free(rt, g);
    return FLOWLUA_EBUILD;
  }
  if (!lua_isnil(L, -1))
    g->returns_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_pop(L, 1);
  lua_pop(L, 1);

  uint32_t *cycle = NULL;
  size_t len = 0;
  int rc = fl_dag_finalize(&g->dag, &cycle, &len);
  if (rc == FLOWLUA_EBUILD && cycle) {
    fl_buf b = FL_BUF_INIT;
    describe_cycle(&b, g, cycle, len);
    fl_set_error(rt, "flow '%s': dependency cycle: %s", f->name,
                 fl_buf_str(&b));
    fl_buf_free(&b);
  } else if (rc) {
    fl_set_error(rt, "flow '%s': %s", f->name, fl_status_text(rc));
  }
  free(cycle);
  if (rc) {
    fl_graph_free(rt, g);
    return rc;
  }
  fl_graph_free(rt, rt->graph);
  rt->graph = g;
  return FLOWLUA_OK;
}
