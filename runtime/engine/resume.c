/*
 * resume.c — flowlua_resume: run a stored Failed, Cancelled or Crashed run
 * again, keeping the results of the tasks that had succeeded.
 *
 * The work is split around the graph build that runtime.c does: before it,
 * the stored run is loaded (rt->resume) so that push_params takes the
 * stored params; after it, the graph's keys are compared with the stored
 * ones and the tasks to run again whatever happened (from_task and its
 * downstream) are marked. The scheduler then asks fl_record_restore, task
 * by task, whether a stored result stands in for running it.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "record.h"
#include "resume.h"
#include "store.h"

/* A resume records the tasks it keeps as it reaches them, so one killed
   early leaves them Pending, or not even declared: a resume of that run
   must find them Success in the run it resumed, and so on up the chain
   (at most this many runs back). */
#define RESUME_CHAIN_MAX 64

/* Loads into d->resumed the run d resumes, and so on back, while a run
   that crashed resumed another. (A run that ended otherwise decided about
   every task it left Pending.) A run that cannot be read (deleted,
   unreadable) ends the chain: its tasks then simply run again. */
static void load_resumed_chain(flowlua *rt, fl_store_run_detail *d,
                               const char *flow) {
  for (int depth = 0; d->run.state == FLOWLUA_FLOW_CRASHED &&
                      d->run.resumed_from && depth < RESUME_CHAIN_MAX;
       depth++) {
    if (fl_store_load_run(rt->store, d->run.resumed_from, flow, &d->resumed))
      return;
    d = d->resumed;
  }
}

int fl_resume_load(flowlua *rt, const char *flow_name, const char *run_ref) {
  if (rt->n_params) {
    fl_set_error(rt, "a resume runs with the params stored for the run: "
                     "--param cannot be given with --resume");
    return FLOWLUA_EINVAL;
  }
  int rc = fl_record_open(rt);
  if (rc) return rc;
  if (!rt->store) {
    fl_set_error(rt, "--resume needs the run history: give --state PATH "
                     "(not :memory:)");
    return FLOWLUA_ESTATE;
  }
  rc = fl_push_flow(rt, flow_name);
  if (rc) return rc;
  const fl_flowdef *f = lua_touserdata(rt->L, -1);
  const char *name = f->name;
  lua_pop(rt->L, 1); /* the flow stays alive in rt->flows_ref */
  fl_store_run_detail *d = NULL;
  rc = fl_store_load_run(rt->store, run_ref, name, &d);
  if (rc) {
    fl_set_error(rt, "cannot resume '%s': %s", run_ref,
                 fl_store_errmsg(rt->store));
    return rc;
  }
  load_resumed_chain(rt, d, name);
  fl_store_run_detail_free(rt->resume);
  rt->resume = d;
  return FLOWLUA_OK;
}

int fl_resume_push_params(flowlua *rt, const char *flow, int defaults,
                          int params) {
  lua_State *L = rt->L;
  const char *json = rt->resume->run.params_json;
  if (!json) return FLOWLUA_OK; /* none stored: the defaults */
  if (fl_json_decode_value(L, json, strlen(json)) != 0 || !lua_istable(L, -1)) {
    fl_set_error(rt, "cannot resume run %s: its stored params are not a "
                     "JSON object",
                 rt->resume->run.run_id);
    lua_pop(L, 1);
    return FLOWLUA_EPARAM;
  }
  int stored = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, stored)) {
    int known = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      lua_pushvalue(L, -2);
      known = lua_rawget(L, defaults) != LUA_TNIL;
      lua_pop(L, 1);
    }
    if (!known) {
      fl_set_error(rt, "cannot resume run %s: it was run with parameter "
                       "'%s', which flow '%s' no longer declares",
                   rt->resume->run.run_id,
                   lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?",
                   flow);
      lua_settop(L, stored - 1);
      return FLOWLUA_EPARAM;
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, params);
  }
  lua_settop(L, stored - 1);
  return FLOWLUA_OK;
}

/* Marks node and everything downstream of it. */
static void mark_downstream(const fl_dag *d, uint32_t node, uint8_t *mark,
                            uint32_t *stack) {
  uint32_t n = 0;
  if (mark[node]) return;
  mark[node] = 1;
  stack[n++] = node;
  while (n) {
    uint32_t v = stack[--n];
    for (uint32_t k = d->down_off[v]; k < d->down_off[v + 1]; k++)
      if (!mark[d->down[k]]) {
        mark[d->down[k]] = 1;
        stack[n++] = d->down[k];
      }
  }
}

static int mark_from_task(flowlua *rt, fl_graph *g, const char *from_task) {
  uint8_t *mark = calloc(g->n ? g->n : 1, 1);
  uint32_t *stack = malloc((g->n ? g->n : 1) * sizeof *stack);
  if (!mark || !stack) {
    free(mark);
    free(stack);
    fl_set_error(rt, "out of memory marking --from-task");
    return FLOWLUA_ENOMEM;
  }
  int found = 0;
  fl_buf key = FL_BUF_INIT;
  for (uint32_t i = 0; i < g->n; i++) {
    fl_buf_reset(&key);
    fl_graph_add_key(&key, g, i);
    if (strcmp(g->nodes[i].def->name, from_task) == 0 ||
        strcmp(fl_buf_str(&key), from_task) == 0) {
      mark_downstream(&g->dag, i, mark, stack);
      found = 1;
    }
  }
  fl_buf_free(&key);
  free(stack);
  if (!found) {
    free(mark);
    fl_set_error(rt, "--from-task: flow '%s' has no task '%s'", g->flow->name,
                 from_task);
    return FLOWLUA_EINVAL;
  }
  free(rt->resume_rerun);
  rt->resume_rerun = mark;
  return FLOWLUA_OK;
}

int fl_resume_check(flowlua *rt, fl_graph *g, int force,
                    const char *from_task) {
  fl_buf msg = FL_BUF_INIT;
  const char **ptrs = fl_graph_keys(g);
  int rc = ptrs ? FLOWLUA_OK : FLOWLUA_ENOMEM;
  if (rc == FLOWLUA_OK) {
    rc = fl_store_check_resume(rt->resume, g->flow->name, ptrs, g->n, force,
                               &msg);
    if (rc != FLOWLUA_OK)
      fl_set_error(rt, "cannot resume: %s%s", fl_buf_str(&msg),
                   rc == FLOWLUA_EBUILD ? " (--force resumes anyway: tasks "
                                          "whose keys match keep their "
                                          "results)"
                                        : "");
    else if (msg.len)
      fl_log_printf(&rt->log, FLOWLUA_LOG_WARN, g->flow->name,
                    "resuming despite a changed graph (--force): %s",
                    fl_buf_str(&msg));
  } else {
    fl_set_error(rt, "out of memory comparing the graph with the stored run");
  }
  free(ptrs);
  fl_buf_free(&msg);
  if (rc == FLOWLUA_OK && from_task) rc = mark_from_task(rt, g, from_task);
  return rc; /* "resuming run ..." is logged once the run is claimed */
}

void fl_resume_forget(flowlua *rt) {
  fl_store_run_detail_free(rt->resume);
  rt->resume = NULL;
  free(rt->resume_rerun);
  rt->resume_rerun = NULL;
}
