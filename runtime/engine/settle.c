/*
 * settle.c — a task run that is final releases what waits on it: maps
 * finish or expand into their elements, trigger rules decide whether a
 * downstream task runs, is skipped or fails, and the stack of settled
 * nodes is worked without recursing along the graph.
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


/* ---- settling: a run is final, release what waits on it ------------------ */

static void finish_map(fl_sched *s, fl_taskrun *p) {
  fl_mapinfo *m = p->map;
  int state = FLOWLUA_TASK_SUCCESS;
  uint32_t bad = 0;
  for (uint32_t i = 0; i < m->n; i++) {
    int st = m->children[i].state;
    if (!fl__sched_is_ok_state(st)) {
      bad++;
      if (state == FLOWLUA_TASK_SUCCESS || st == FLOWLUA_TASK_CANCELLED)
        state = st == FLOWLUA_TASK_CANCELLED ? FLOWLUA_TASK_CANCELLED
                                             : FLOWLUA_TASK_FAILED;
    }
  }
  luaL_unref(s->rt->L, LUA_REGISTRYINDEX, m->args_ref);
  m->args_ref = LUA_NOREF;
  double took = fl_now() - p->first_start;
  if (state == FLOWLUA_TASK_SUCCESS) {
    lua_State *L = s->rt->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->results_ref);
    lua_rawgeti(L, -1, (lua_Integer)p->node + 1);
    fl_record_result(s, p, -1);
    lua_pop(L, 2);
    fl__sched_log_task(s, p, (task_log){FLOWLUA_LOG_INFO, state, took, NULL},
             "Success (map of %u, %.3f s)", (unsigned)m->n, took);
    fl__sched_finish_run(s, p, state, NULL);
  } else {
    fl_buf err = FL_BUF_INIT;
    fl_buf_addf(&err, "%u of %u mapped runs did not succeed", (unsigned)bad,
                (unsigned)m->n);
    fl__sched_log_task(s, p, (task_log){FLOWLUA_LOG_ERROR, state, took, NULL},
             "%s (map of %u: %s)", fl_task_state_name(state),
             (unsigned)m->n, fl_buf_str(&err));
    fl__sched_finish_run(s, p, state, fl_buf_str(&err));
    fl_buf_free(&err);
  }
}

void fl__sched_finish_run(fl_sched *s, fl_taskrun *r, int state, const char *err) {
  fl__sched_finish_run_at(s, r, state, err, fl_now());
}

void fl__sched_finish_run_at(fl_sched *s, fl_taskrun *r, int state,
                             const char *err, double now) {
  r->state = (uint8_t)state;
  r->ended = now;
  if (err && !r->error) r->error = fl__sched_keep_error(s, err);
  fl__sched_note_state(s, r, state, 1, err ? err : r->error);
  if (r->map_index) {
    fl_taskrun *p = &s->runs[r->node];
    if (++p->map->done == p->map->n) finish_map(s, p);
    return;
  }
  s->settle[s->n_settle++] = r->node;
}

/* r keeps the result of run from_run (on top of L): Success without
   running. */
static void restore(fl_sched *s, fl_taskrun *r, const char *from_run) {
  lua_State *L = s->rt->L;
  fl__sched_keep_result(s, r);
  fl_record_result(s, r, -1);
  lua_pop(L, 1);
  r->restored = 1;
  fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_SUCCESS, 0, NULL},
           "Success (kept from run %.8s)", from_run);
  fl__sched_finish_run(s, r, FLOWLUA_TASK_SUCCESS, NULL);
}

/* A map that cannot expand fails with msg, logged as it ends. */
static void fail_map(fl_sched *s, fl_taskrun *p, const char *msg) {
  fl__sched_log_task(s, p, (task_log){FLOWLUA_LOG_ERROR, FLOWLUA_TASK_FAILED, 0,
                                      msg},
                     "Failed");
  fl__sched_finish_run(s, p, FLOWLUA_TASK_FAILED, msg);
}

/* Pushes the map's resolved arguments as a list, marking in m->mapped the
   ones to iterate (the tables not wrapped in flow.unmapped), and returns
   their common length; or -1 with the problem (lists of different
   lengths, nothing to map over) pushed as a string instead. */
static lua_Integer push_map_args(fl_sched *s, fl_taskrun *p, fl_mapinfo *m) {
  lua_State *L = s->rt->L;
  int top = lua_gettop(L);
  int nargs = fl__sched_push_node_args(s, p->node);
  lua_createtable(L, nargs, 0);
  int args = lua_gettop(L);
  lua_Integer len = -1;
  int first_mapped = 0;
  uint32_t arg_at = s->g->nodes[p->node].arg_at;
  for (int j = 1; j <= nargs; j++) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->args_ref);
    lua_rawgeti(L, -1, (lua_Integer)arg_at + j);
    int whole = fl_testudata(L, -1, fl_rt(L)->unmapped_mt) != NULL;
    lua_pop(L, 2);
    lua_pushvalue(L, top + j);
    lua_rawseti(L, args, j);
    if (whole || lua_type(L, top + j) != LUA_TTABLE) continue;
    m->mapped[j - 1] = 1;
    lua_Integer l = (lua_Integer)lua_rawlen(L, top + j);
    if (len < 0) {
      len = l;
      first_mapped = j;
    } else if (l != len) {
      lua_pushfstring(L, "map: argument %d has %d elements but argument %d "
                         "has %d (wrap an argument in flow.unmapped to pass "
                         "it whole)",
                      j, (int)l, first_mapped, (int)len);
      lua_replace(L, top + 1);
      lua_settop(L, top + 1);
      return -1;
    }
  }
  if (len < 0) {
    lua_pushfstring(L, "map: no list to map over (argument 1 is %s)",
                    nargs ? luaL_typename(L, top + 1) : "missing");
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return -1;
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return len;
}

/* Allocates the map's m->n element records, counted against the memory
   limit (the largest C allocation a flow makes); 0, or -1 with the reason
   in err. */
static int alloc_elements(fl_sched *s, fl_mapinfo *m, fl_buf *err) {
  size_t bytes = (size_t)m->n * sizeof *m->children;
  if (fl_mem_charge(&s->rt->mem, bytes) != 0) {
    char size[32];
    fl_buf_addf(err, "memory limit of %s reached expanding a map over %u "
                     "elements",
                fl_mem_format(s->rt->mem.limit, size, sizeof size),
                (unsigned)m->n);
    fl_mem_take_hit(&s->rt->mem);
    return -1;
  }
  m->children = calloc(m->n, sizeof *m->children);
  if (!m->children) {
    fl_mem_uncharge(&s->rt->mem, bytes);
    fl_buf_adds(err, "out of memory expanding a map");
    return -1;
  }
  return 0;
}

/* Declares the elements, then ends at once those kept from the run this
   one resumes and queues the rest. (Once all are set up: the last may
   finish the map.) */
static void start_elements(fl_sched *s, fl_taskrun *p) {
  fl_mapinfo *m = p->map;
  s->total_runs += m->n;
  for (uint32_t i = 0; i < m->n; i++) {
    fl_taskrun *c = &m->children[i];
    c->sched = s;
    c->node = p->node;
    c->map_index = (int32_t)i + 1;
    c->state = FLOWLUA_TASK_PENDING;
    c->co_ref = LUA_NOREF;
    fl_record_task_add(s, c);
  }
  for (uint32_t i = 0; i < m->n; i++) {
    fl_taskrun *c = &m->children[i];
    const char *from_run;
    if (fl_record_restore(s, p->node, c->map_index, &from_run))
      restore(s, c, from_run);
    else
      fl__sched_q_push(&s->start_q, c);
  }
}

/* A map node whose upstream is done: its arguments resolved, one element
   per item of the lists it maps over. */
static void expand_map(fl_sched *s, fl_taskrun *p) {
  lua_State *L = s->rt->L;
  const fl_node *n = &s->g->nodes[p->node];
  fl_mapinfo *m = calloc(1, sizeof *m);
  uint8_t *mapped = calloc(n->nargs, 1);
  if (!m || !mapped) {
    free(m);
    free(mapped);
    fl__sched_finish_run(s, p, FLOWLUA_TASK_FAILED, "out of memory expanding a map");
    return;
  }
  m->mapped = mapped;
  m->args_ref = LUA_NOREF;
  p->map = m;
  p->first_start = fl_now();
  p->state = FLOWLUA_TASK_RUNNING;
  fl__sched_note_state(s, p, FLOWLUA_TASK_RUNNING, 0, NULL);

  lua_Integer len = push_map_args(s, p, m);
  if (len < 0) {
    /* Found only now that the arguments are known: name the call's line. */
    fl_buf err = FL_BUF_INIT;
    fl_buf_addf(&err, "%s; task '%s':map called at %s:%d", lua_tostring(L, -1),
                n->def->name, s->rt->script_name ? s->rt->script_name : "?",
                (int)n->line);
    lua_pop(L, 1);
    p->map = NULL;
    free(m->mapped);
    free(m);
    fail_map(s, p, fl_buf_str(&err));
    fl_buf_free(&err);
    return;
  }
  m->args_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->results_ref);
  lua_createtable(L, (int)len, 0);
  lua_rawseti(L, -2, (lua_Integer)p->node + 1);
  lua_pop(L, 1);

  m->n = (uint32_t)len;
  fl__sched_log_task(s, p, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_RUNNING, -1, NULL},
           "Running (map over %u elements)", (unsigned)m->n);
  if (m->n == 0) {
    finish_map(s, p);
    return;
  }
  fl_buf err = FL_BUF_INIT;
  if (alloc_elements(s, m, &err) != 0) {
    m->n = 0;
    fail_map(s, p, fl_buf_str(&err));
    fl_buf_free(&err);
    return;
  }
  start_elements(s, p);
}

/* Calls a trigger function with the upstream states { key = "State" }. */
static fl_decision decide_by_function(fl_sched *s, uint32_t node,
                                      fl_upstream_tally *t, char **why) {
  lua_State *L = s->rt->L;
  const fl_dag *d = &s->g->dag;
  int top = lua_gettop(L);
  lua_pushcfunction(L, fl_msgh);
  fl__sched_push_task_uv(s, node, FL_TASK_UV_TRIGGER);
  lua_createtable(L, 0, (int)fl_dag_n_up(d, node));
  for (uint32_t k = d->up_off[node]; k < d->up_off[node + 1]; k++) {
    fl__sched_push_key(L, &s->runs[d->up[k]]);
    lua_pushstring(L, fl_task_state_name(s->runs[d->up[k]].state));
    lua_rawset(L, -3);
  }
  fl_decision out;
  if (lua_pcall(L, 1, 1, top + 1) != LUA_OK) {
    fl_buf b = FL_BUF_INIT;
    fl_buf_addf(&b, "trigger function failed: %s", lua_tostring(L, -1));
    *why = fl__sched_keep_error(s, fl_buf_str(&b));
    fl_buf_free(&b);
    out = FL_DECIDE_TRIGGER_FAILED;
  } else {
    out = lua_toboolean(L, -1) ? FL_DECIDE_RUN
          : t->failed          ? FL_DECIDE_TRIGGER_FAILED
                               : FL_DECIDE_SKIP;
  }
  lua_settop(L, top);
  return out;
}

/* All of node's upstream runs are final: run it, or end it by its rule. */
void fl__sched_ready(fl_sched *s, uint32_t node) {
  fl_taskrun *r = &s->runs[node];
  const fl_dag *d = &s->g->dag;
  fl_taskdef *def = fl__sched_run_def(r);
  if (s->cancelling) {
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_WARN, FLOWLUA_TASK_CANCELLED, -1,
                              NULL},
             "Cancelled (before it started)");
    fl__sched_finish_run(s, r, FLOWLUA_TASK_CANCELLED, "cancelled");
    return;
  }
  fl_upstream_tally t = {0, 0, 0};
  for (uint32_t k = d->up_off[node]; k < d->up_off[node + 1]; k++)
    fl_trigger_tally_add(&t, s->runs[d->up[k]].state);
  char *why = NULL;
  fl_decision dec = def->trigger == FL_TRIGGER_FUNCTION && fl_dag_n_up(d, node)
                        ? decide_by_function(s, node, &t, &why)
                        : fl_trigger_decide(def->trigger, &t);
  const char *from_run;
  if (dec == FL_DECIDE_RUN) {
    if (fl_record_restore(s, node, 0, &from_run))
      restore(s, r, from_run);
    else if (!(s->g->nodes[node].flags & FL_NODE_MAP))
      fl__sched_q_push(&s->start_q, r);
    else if (fl_record_before_start(s, r) != 0)
      fl__sched_finish_run(s, r, FLOWLUA_TASK_FAILED, s->store_error);
    else
      expand_map(s, r);
    return;
  }
  /* Name the upstream runs that decided it. */
  fl_buf b = FL_BUF_INIT;
  if (why) {
    fl_buf_adds(&b, why);
  } else {
    fl_buf_addf(&b, "trigger rule %s not met: upstream ",
                fl_trigger_name(def->trigger));
    int listed = 0;
    for (uint32_t k = d->up_off[node]; k < d->up_off[node + 1]; k++) {
      fl_taskrun *u = &s->runs[d->up[k]];
      if (fl__sched_is_ok_state(u->state) && u->state != FLOWLUA_TASK_SKIPPED &&
          dec == FL_DECIDE_TRIGGER_FAILED)
        continue;
      if (listed++ == 5) {
        fl_buf_adds(&b, ", ...");
        break;
      }
      if (listed > 1) fl_buf_adds(&b, ", ");
      fl_taskrun_add_key(&b, u);
      fl_buf_addf(&b, " %s", fl_task_state_name(u->state));
    }
  }
  free(why);
  int state = dec == FL_DECIDE_SKIP ? FLOWLUA_TASK_SKIPPED
                                    : FLOWLUA_TASK_TRIGGER_FAILED;
  fl__sched_log_task(s, r,
           (task_log){state == FLOWLUA_TASK_SKIPPED ? FLOWLUA_LOG_INFO
                                                    : FLOWLUA_LOG_WARN,
                      state, -1, NULL},
           "%s (%s)", fl_task_state_name(state), fl_buf_str(&b));
  fl__sched_finish_run(s, r, state, fl_buf_str(&b));
  fl_buf_free(&b);
}

void fl__sched_settle(fl_sched *s) {
  const fl_dag *d = &s->g->dag;
  while (s->n_settle > 0) {
    uint32_t node = s->settle[--s->n_settle];
    s->final_nodes++;
    for (uint32_t k = d->down_off[node]; k < d->down_off[node + 1]; k++)
      if (--s->waiting[d->down[k]] == 0) fl__sched_ready(s, d->down[k]);
  }
}

