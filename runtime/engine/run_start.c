/*
 * run_start.c — a run's life at both ends: made for a built graph (its id,
 * its task runs, its concurrency and tag limits), recorded and started;
 * and freed. A subflow's run (subflow.c) is started here as any other,
 * linked to the task run that called it.
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "sched_internal.h"
#include "pool.h"
#include "queue.h"
#include "record.h"
#include "store.h"
#include "states.h"

static void make_run_id(flowlua *rt, char out[40]) {
  static const char hex[] = "0123456789abcdef";
  if (rt->next_run_id[0]) { /* the caller's, once */
    memcpy(out, rt->next_run_id, sizeof rt->next_run_id);
    rt->next_run_id[0] = '\0';
    return;
  }
  unsigned char b[16];
  for (int i = 0; i < 16; i += 8) {
    uint64_t x = fl_random_u64(rt);
    for (int k = 0; k < 8; k++) b[i + k] = (unsigned char)(x >> (8 * k));
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* UUID version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  int o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 15];
  }
  out[o] = '\0';
}

void fl_sched_free(flowlua *rt, fl_sched *s) {
  if (!s) return;
  lua_State *L = rt->L;
  for (uint32_t i = 0; s->runs && i < s->g->n; i++) {
    fl_taskrun *r = &s->runs[i];
    fl__sched_free_timers(&rt->loop, r);
    if (r->co) luaL_unref(L, LUA_REGISTRYINDEX, r->co_ref);
    free(r->error);
    free(r->cache_key);
    free(r->worker_host);
    if (r->map) {
      for (uint32_t k = 0; k < r->map->n; k++) {
        fl_taskrun *c = &r->map->children[k];
        fl__sched_free_timers(&rt->loop, c);
        if (c->co) luaL_unref(L, LUA_REGISTRYINDEX, c->co_ref);
        free(c->error);
        free(c->cache_key);
        free(c->worker_host);
      }
      luaL_unref(L, LUA_REGISTRYINDEX, r->map->args_ref);
      if (r->map->children)
        fl_mem_uncharge(&rt->mem, (size_t)r->map->n * sizeof *r->map->children);
      free(r->map->children);
      free(r->map->mapped);
      free(r->map);
    }
  }
  luaL_unref(L, LUA_REGISTRYINDEX, s->results_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->fn_ref);
  for (int i = 0; i < s->pool_n; i++)
    luaL_unref(L, LUA_REGISTRYINDEX, s->pool_refs[i]);
  free(s->pool);
  free(s->pool_refs);
  free(s->runs);
  free(s->waiting);
  free(s->settle);
  free(s->tags);
  fl_store_run_detail_free(s->resume);
  free(s->rerun);
  free(s->store_error);
  free(s->parent_task);
  if (s->subflow) s->subflow->child = NULL; /* its call outlives it */
  fl_graph_free(rt, s->g);
  free(s);
}

/* A run of g, which it owns from now on, even when it fails (NULL). */
static fl_sched *sched_new(flowlua *rt, fl_graph *g) {
  fl_sched *s = calloc(1, sizeof *s);
  if (!s) {
    fl_graph_free(rt, g);
    return NULL;
  }
  s->rt = rt;
  s->g = g;
  s->results_ref = s->fn_ref = LUA_NOREF;
  size_t n = g->n ? g->n : 1;
  s->runs = calloc(n, sizeof *s->runs);
  s->waiting = calloc(n, sizeof *s->waiting);
  s->settle = calloc(n, sizeof *s->settle);
  fl_flowdef *f = g->flow;
  s->tags = calloc((size_t)(f->n_limits ? f->n_limits : 1), sizeof *s->tags);
  s->pool = calloc(FL_POOL_MAX, sizeof *s->pool);
  s->pool_refs = calloc(FL_POOL_MAX, sizeof *s->pool_refs);
  if (!s->runs || !s->waiting || !s->settle || !s->tags || !s->pool ||
      !s->pool_refs) {
    fl_sched_free(rt, s);
    return NULL;
  }
  for (int i = 0; i < f->n_limits; i++)
    s->tags[s->n_tags++] = (fl_tagcount){f->limits[i].tag, f->limits[i].limit, 0};
  s->concurrency = rt->opts.concurrency > 0 ? rt->opts.concurrency
                   : f->concurrency > 0     ? f->concurrency
                                            : FL_DEFAULT_CONCURRENCY;
  for (uint32_t i = 0; i < g->n; i++) {
    fl_taskrun *r = &s->runs[i];
    r->sched = s;
    r->node = i;
    r->state = FLOWLUA_TASK_PENDING;
    r->co_ref = LUA_NOREF;
    s->waiting[i] = fl_dag_n_up(&g->dag, i);
  }
  s->total_runs = g->n;
  /* Sized for every node's result at once: grown by doubling, its array
     was rehashed some 17 times for 100,000 tasks, each time counting
     every entry so far. */
  lua_createtable(rt->L, g->n < INT_MAX ? (int)g->n : INT_MAX, 0);
  s->results_ref = luaL_ref(rt->L, LUA_REGISTRYINDEX);
  lua_pushboolean(rt->L, 0); /* a placeholder: luaL_ref keeps no slot for nil */
  s->fn_ref = luaL_ref(rt->L, LUA_REGISTRYINDEX);
  fl__sched_guard_coroutines(rt->L);
  return s;
}

int fl_sched_start(flowlua *rt, fl_graph *g, fl_sched **out) {
  const char *name = g->flow->name; /* the flow outlives the graph */
  /* Worker tasks need a program to run them: refused before anything is
     recorded or started, rather than failing each attempt. (The graph is
     still the runtime's then, freed with it.) */
  for (uint32_t i = 0; i < g->n; i++)
    if (g->nodes[i].def->worker) {
      /* Through a PostgreSQL queue, the jobs need only a script file:
         `flowlua worker` processes anywhere may run them. */
      int rc = fl_queue_in_use(rt) ? fl_queue_check(rt) : fl_pool_check(rt);
      if (rc != FLOWLUA_OK) {
        *out = NULL;
        return rc;
      }
      break;
    }
  if (rt->graph == g) rt->graph = NULL; /* the run owns it now */
  fl_sched *s = sched_new(rt, g);
  *out = s;
  if (!s) {
    fl_set_error(rt, "flow '%s': out of memory starting the run", name);
    return FLOWLUA_ENOMEM;
  }
  make_run_id(rt, s->run_id);
  if (rt->start_parent) { /* a subflow's run: linked before it is recorded */
    fl_taskrun *by = rt->start_parent;
    fl_buf key = FL_BUF_INIT;
    fl_taskrun_add_key(&key, by);
    s->parent = by->sched;
    s->depth = by->sched->depth + 1;
    s->parent_task = key.oom ? NULL : strdup(fl_buf_str(&key));
    fl_buf_free(&key);
    if (!s->parent_task) {
      fl_set_error(rt, "flow '%s': out of memory starting the run", name);
      fl_sched_free(rt, s);
      *out = NULL;
      return FLOWLUA_ENOMEM;
    }
  }
  s->started = fl_now();
  s->started_wall = fl_wall_time();
  s->scheduled_at = rt->scheduled_at > 0 ? rt->scheduled_at : s->started_wall;
  s->state = FLOWLUA_FLOW_RUNNING;
  s->resume = rt->resume; /* the run owns what it resumes */
  s->rerun = rt->resume_rerun;
  rt->resume = NULL;
  rt->resume_rerun = NULL;
  int rc = fl_record_open(rt);
  if (rc == FLOWLUA_OK) rc = fl_record_run_begin(s);
  if (rc != FLOWLUA_OK) {
    fl_sched_free(rt, s);
    *out = NULL;
    return rc;
  }
  s->active = 1;
  s->next_active = rt->active;
  rt->active = s;
  if (rt->opts.event_fn) fl__sched_emit(s, NULL, -1, FLOWLUA_FLOW_RUNNING, 0, NULL, 0, 0);
  fl__sched_log_flow(s, FLOWLUA_LOG_INFO, FLOWLUA_FLOW_RUNNING, -1,
           "flow '%s' run %s: Running (%u tasks)", g->flow->name, s->run_id,
           (unsigned)g->n);
  for (uint32_t i = 0; i < g->n; i++)
    if (s->waiting[i] == 0) fl__sched_ready(s, i);
  return FLOWLUA_OK;
}
