/*
 * args.c — what flows between task runs through the results table: a
 * finished run's result kept for its dependents, and a run's arguments
 * pushed with every node replaced by its upstream result (directly, inside
 * flow.unmapped, and inside plain tables), or one element of a map's.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "sched_internal.h"
#include "record.h"
#include "store.h"
#include "states.h"


/*
 * Pushes the value at idx with every node replaced by its result (from the
 * results table at stack index `results`): directly, inside
 * flow.unmapped, and (when `deep`) inside plain tables. A table that
 * holds nodes is copied, so the body's table is left as it was; a table
 * without nodes is passed as it is. `memo` maps each table seen to its copy,
 * or to a boolean: whether it holds nodes.
 */
static void push_resolved(fl_sched *s, int idx, int deep, int memo,
                          int results);

static int is_plain_table(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  if (!lua_getmetatable(L, idx)) return 1;
  lua_pop(L, 1);
  return 0;
}

static int holds_nodes(lua_State *L, int idx, int memo) {
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 6, "arguments nested too deeply");
  lua_pushvalue(L, idx);
  int known = lua_rawget(L, memo);
  if (known != LUA_TNIL) {
    int yes = known == LUA_TTABLE || lua_toboolean(L, -1);
    lua_pop(L, 1);
    return yes;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 0); /* while in progress: a cycle adds nothing */
  lua_rawset(L, memo);
  int found = 0;
  lua_pushnil(L);
  while (!found && lua_next(L, idx)) {
    if (fl_testudata(L, -1, fl_rt(L)->node_mt) ||
        fl_testudata(L, -1, fl_rt(L)->unmapped_mt) ||
        (is_plain_table(L, -1) && holds_nodes(L, -1, memo)))
      found = 1;
    lua_pop(L, 1);
  }
  if (found) lua_pop(L, 1); /* the key lua_next left */
  lua_pushvalue(L, idx);
  lua_pushboolean(L, found);
  lua_rawset(L, memo);
  return found;
}

static void push_table_copy(fl_sched *s, int idx, int memo, int results) {
  lua_State *L = s->rt->L;
  luaL_checkstack(L, 6, "arguments nested too deeply");
  lua_pushvalue(L, idx);
  if (lua_rawget(L, memo) == LUA_TTABLE) return; /* already copied: reuse */
  lua_pop(L, 1);
  lua_newtable(L);
  int copy = lua_gettop(L);
  lua_pushvalue(L, idx);
  lua_pushvalue(L, copy);
  lua_rawset(L, memo);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    push_resolved(s, -1, 1, memo, results);
    lua_pushvalue(L, -3);
    lua_insert(L, -2);
    lua_rawset(L, copy);
    lua_pop(L, 1);
  }
}

static void push_resolved(fl_sched *s, int idx, int deep, int memo,
                          int results) {
  lua_State *L = s->rt->L;
  idx = lua_absindex(L, idx);
  uint32_t *node = fl_testudata(L, idx, fl_rt(L)->node_mt);
  if (node) {
    lua_rawgeti(L, results, (lua_Integer)node[1] + 1);
  } else if (fl_testudata(L, idx, fl_rt(L)->unmapped_mt)) {
    lua_getiuservalue(L, idx, 1);
    push_resolved(s, -1, deep, memo, results);
    lua_remove(L, -2);
  } else if (deep && is_plain_table(L, idx) && holds_nodes(L, idx, memo)) {
    push_table_copy(s, idx, memo, results);
  } else {
    lua_pushvalue(L, idx);
  }
}

/* Pushes the arguments of a graph node's call; returns how many. */
int fl__sched_push_node_args(fl_sched *s, uint32_t node) {
  lua_State *L = s->rt->L;
  const fl_node *n = &s->g->nodes[node];
  if (n->nargs == 0) return 0;
  luaL_checkstack(L, n->nargs + 8, "too many arguments");
  int deep = (n->flags & FL_NODE_NESTED) != 0, memo = 0;
  /* The tables it reads are fetched once for all the arguments, and
     dropped at once from under them. */
  int args = lua_gettop(L) + 1, results = args + 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->args_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->results_ref);
  if (deep) {
    lua_newtable(L);
    memo = lua_gettop(L);
  }
  int helpers = lua_gettop(L) - args + 1;
  for (int i = 1; i <= n->nargs; i++) {
    lua_rawgeti(L, args, (lua_Integer)n->arg_at + i);
    push_resolved(s, -1, deep, memo, results);
    lua_remove(L, -2);
  }
  lua_rotate(L, args, -helpers);
  lua_pop(L, helpers);
  return n->nargs;
}

void fl__sched_push_resolved(fl_sched *s, int idx) {
  lua_State *L = s->rt->L;
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->results_ref);
  lua_newtable(L);
  int memo = lua_gettop(L);
  push_resolved(s, idx, 1, memo, memo - 1);
  lua_rotate(L, memo - 1, -2);
  lua_pop(L, 2);
}

/* Pushes the arguments of element i of a map. */
int fl__sched_push_map_args(fl_sched *s, fl_taskrun *parent, int i) {
  lua_State *L = s->rt->L;
  fl_mapinfo *m = parent->map;
  int nargs = s->g->nodes[parent->node].nargs;
  luaL_checkstack(L, nargs + 4, "too many arguments");
  lua_rawgeti(L, LUA_REGISTRYINDEX, m->args_ref);
  int args = lua_gettop(L);
  for (int j = 1; j <= nargs; j++) {
    lua_rawgeti(L, args, j);
    if (m->mapped[j - 1]) {
      lua_rawgeti(L, -1, i);
      lua_remove(L, -2);
    }
  }
  lua_remove(L, args);
  return nargs;
}



/* Keeps the value on top of L as r's result (for its dependents). */
void fl__sched_keep_result(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->results_ref);
  if (r->map_index) {
    lua_rawgeti(L, -1, (lua_Integer)r->node + 1);
    lua_pushvalue(L, -3);
    lua_rawseti(L, -2, r->map_index);
    lua_pop(L, 1);
  } else {
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)r->node + 1);
  }
  lua_pop(L, 1);
}
