/*
 * sched.c — running a built graph: task coroutines on the event loop.
 * This file: the queues, concurrency, logging, cancellation and the run
 * loop; attempt.c runs one attempt, settle.c releases what a final task
 * run was holding up (sched_internal.h).
 *
 * Every attempt of a task is a fresh Lua coroutine. A primitive that waits
 * (flow.sleep now; HTTP and processes later) parks its coroutine and arms a
 * timer or a transfer; the loop resumes it when the wait is over, so one task
 * waiting never holds up another. Work flows through three queues — runs to
 * start, parked runs to resume, runs held back by a tag limit — drained by
 * pump(); a finished run's downstream is released by fl__sched_settle(). Neither
 * recurses along the graph, so a chain of 100,000 tasks needs no deep stack.
 *
 * Timeouts: a timer ends a parked attempt; a count hook ends one that is busy
 * in Lua code, by yielding from the hook so that a pcall in the task cannot
 * swallow it.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "sched_internal.h"
#include "pool.h"
#include "queue.h"
#include "record.h"
#include "store.h"
#include "states.h"


/* ---- cancellation -------------------------------------------------------- */

static void cancel_one(fl_sched *s, fl_taskrun *r) {
  if (r->state == FLOWLUA_TASK_RUNNING && r->parked && !r->queued) {
    r->interrupt = FL_INT_CANCEL;
    r->queued = 1;
    fl__sched_q_push(&s->resume_q, r);
  } else if (r->state == FLOWLUA_TASK_RETRYING && r->timers &&
             fl_timer_armed(&r->timers->wake)) {
    fl_timer_stop(&s->rt->loop, &r->timers->wake);
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_WARN, FLOWLUA_TASK_CANCELLED, -1,
                              NULL},
             "Cancelled (while waiting to retry)");
    fl__sched_finish_run(s, r, FLOWLUA_TASK_CANCELLED, "cancelled");
  }
}

static void cancel_all(fl_sched *s) {
  s->cancelling = 1;
  fl__sched_log_flow(s, FLOWLUA_LOG_WARN, -1, -1,
           "flow '%s': cancel requested, cancelling %d running task(s)",
           s->g->flow->name, s->running);
  for (uint32_t i = 0; i < s->g->n; i++) {
    fl_taskrun *r = &s->runs[i];
    cancel_one(s, r);
    if (r->map)
      for (uint32_t k = 0; k < r->map->n; k++) cancel_one(s, &r->map->children[k]);
  }
  fl__sched_q_prepend(&s->start_q, &s->tag_wait);
}

/* ---- the run loop -------------------------------------------------------- */

/* cache_key: computes r's key from its arguments and looks it up. Returns
   1 when r has ended — Cached with the stored result, or Failed because
   the key function failed — and 0 when r is to run. */
static int cached(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L;
  int top = lua_gettop(L);
  lua_pushcfunction(L, fl_msgh);
  fl__sched_push_task_uv(s, r->node, FL_TASK_UV_CACHE_KEY);
  int nargs = r->map_index ? fl__sched_push_map_args(s, &s->runs[r->node], r->map_index)
                           : fl__sched_push_node_args(s, r->node);
  const char *problem = NULL;
  if (lua_pcall(L, nargs, 1, top + 1) != LUA_OK)
    problem = lua_pushfstring(L, "cache_key failed: %s", lua_tostring(L, -1));
  else if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
    problem = lua_pushfstring(L, "cache_key must return a string, got %s",
                              luaL_typename(L, -1));
  if (problem) {
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_ERROR, FLOWLUA_TASK_FAILED, -1,
                              problem},
             "Failed (before it started)");
    fl__sched_finish_run(s, r, FLOWLUA_TASK_FAILED, problem);
    lua_settop(L, top);
    return 1;
  }
  free(r->cache_key);
  r->cache_key = strdup(lua_tostring(L, -1));
  lua_settop(L, top);
  if (!fl_record_cache_get(s, r)) return 0;
  fl__sched_keep_result(s, r);
  fl_record_result(s, r, -1);
  lua_pop(L, 1);
  fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_CACHED, 0, NULL},
           "Cached (key '%s')", r->cache_key);
  fl__sched_finish_run(s, r, FLOWLUA_TASK_CACHED, NULL);
  return 1;
}

/* Does all the work that needs no waiting; returns whether any was done. */
static int pump(fl_sched *s) {
  int any = 0, progress;
  do {
    progress = 0;
    fl_taskrun *r;
    while ((r = fl__sched_q_pop(&s->resume_q))) {
      r->queued = 0;
      progress = 1;
      if (r->interrupt) {
        fl__sched_end_interrupted(s, r);
      } else {
        r->parked = 0;
        r->wait = NULL;
        fl__sched_resume(s, r, 0);
      }
    }
    while ((s->cancelling || s->running < s->concurrency) &&
           (r = fl__sched_q_pop(&s->start_q))) {
      progress = 1;
      /* A task that does not wait runs to its end inside this loop, so a
         cancel (a signal) may arrive between two starts: it is looked for
         before each one, and none starts after it. */
      if (fl_sched_cancelling(s) && !s->cancelling) cancel_all(s);
      if (s->cancelling) {
        fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_WARN, FLOWLUA_TASK_CANCELLED,
                                  -1, NULL},
                 "Cancelled (before it started)");
        fl__sched_finish_run(s, r, FLOWLUA_TASK_CANCELLED, "cancelled");
      } else if (!fl__sched_tags_available(s, fl__sched_run_def(r))) {
        fl__sched_q_push(&s->tag_wait, r);
      } else if (r->attempts == 0 && fl__sched_run_def(r)->has_cache_key &&
                 cached(s, r)) {
        /* ended Cached, or Failed by its cache_key function */
      } else if (fl_record_before_start(s, r) != 0) {
        fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_ERROR, FLOWLUA_TASK_FAILED, -1,
                                  s->store_error},
                 "Failed (not started)");
        fl__sched_finish_run(s, r, FLOWLUA_TASK_FAILED, s->store_error);
      } else {
        fl__sched_start_attempt(s, r);
      }
      if (s->resume_q.head) break;
    }
    if (s->n_settle) {
      fl__sched_settle(s);
      progress = 1;
    }
    if (fl_sched_cancelling(s) && !s->cancelling) {
      cancel_all(s); /* its wake-ups are handled in the next pass */
      progress = 1;
    }
    any |= progress;
  } while (progress);
  return any;
}

/* "6 task runs: 3 Success, 2 Failed, 1 TriggerFailed": the counts the
   summary, runs, show and report give too (fl_fill_outcome). */
static void add_counts(fl_buf *b, const fl_sched *s) {
  flowlua_outcome out;
  fl_fill_outcome(s, &out);
  fl_buf_addf(b, "%zu task run%s", out.tasks, out.tasks == 1 ? "" : "s");
  for (int st = 0, first = 1; st < FLOWLUA_TASK_STATE_COUNT; st++) {
    if (!out.by_state[st]) continue;
    fl_buf_addf(b, "%s%zu %s", first ? ": " : ", ", out.by_state[st],
                fl_task_state_name(st));
    first = 0;
  }
}

/* Every node is final: the run's state, its last log line, and out of the
   active list. An orphan moves to rt->retired, to be freed later: its
   on_end callback may still read it now. */
static void sched_end(fl_sched *s) {
  flowlua *rt = s->rt;
  fl_graph *g = s->g;
  s->ended = fl_now();
  int state = FLOWLUA_FLOW_SUCCESS;
  for (uint32_t i = 0; i < g->n; i++)
    if (!fl__sched_is_ok_state(s->runs[i].state)) state = FLOWLUA_FLOW_FAILED;
  if (s->cancelling) state = FLOWLUA_FLOW_CANCELLED;
  s->state = state;
  fl_record_run_end(s);
  if (rt->opts.event_fn) fl__sched_emit(s, NULL, -1, state, 0, s->store_error, 0, 0);
  double took = s->ended - s->started;
  int level = state == FLOWLUA_FLOW_SUCCESS ? FLOWLUA_LOG_INFO : FLOWLUA_LOG_ERROR;
  if (fl_log_enabled(&rt->log, level)) { /* the counts walk every run */
    fl_buf counts = FL_BUF_INIT;
    add_counts(&counts, s);
    fl__sched_log_flow(s, level, state, took,
                       "flow '%s' run %s: %s in %.3f s (%s)", g->flow->name,
                       s->run_id, fl_flow_state_name(state), took,
                       fl_buf_str(&counts));
    fl_buf_free(&counts);
  }
  fl_sched **p = &rt->active;
  while (*p && *p != s) p = &(*p)->next_active;
  if (*p) *p = s->next_active;
  s->active = 0;
  s->next_active = NULL;
  fl__sched_flow_hook(s);
  if (s->parent || s->subflow) fl__subflow_ended(s);
  if (s->orphan) {
    s->next_active = rt->retired;
    rt->retired = s;
  }
  if (s->on_end) s->on_end(s, s->on_end_data);
}

/* Every task run of s is final, and no run it called as a subflow is
   still going. */
static int sched_over(const fl_sched *s) {
  return s->final_nodes == s->g->n && s->children == 0;
}

int fl_sched_pump_all(flowlua *rt) {
  /* Subflow calls start their runs first: new runs go to the head of
     rt->active, so the walk below reaches them at the next pass. */
  int any = fl__subflow_start_pending(rt);
  fl_sched *next;
  for (fl_sched *s = rt->active; s; s = next) {
    any |= pump(s);
    next = s->next_active;
    if (sched_over(s)) {
      sched_end(s);
      any = 1;
    }
  }
  if (!any) fl_record_idle(rt); /* the loop is about to wait */
  return any;
}

int fl_sched_stalled(flowlua *rt) {
  /* The history's cancel poll wakes the loop but starts nothing: it does
     not count as something to wait for. */
  if (rt->loop.n > (fl_timer_armed(&rt->cancel_poll) ? 1u : 0u)) return 0;
  if (rt->subflow_head) return 0;
  for (fl_sched *s = rt->active; s; s = s->next_active)
    if (s->running || s->start_q.head || s->tag_wait.head ||
        s->resume_q.head || s->n_settle)
      return 0;
  return rt->active != NULL;
}

int fl_sched_has_ready_work(const flowlua *rt) {
  if (rt->subflow_head) return 1;
  for (const fl_sched *s = rt->active; s; s = s->next_active) {
    int can_start = s->cancelling || s->running < s->concurrency;
    if (s->resume_q.head || s->n_settle || (s->start_q.head && can_start) ||
        sched_over(s) || (fl_sched_cancelling(s) && !s->cancelling))
      return 1;
  }
  return 0;
}

void fl_sched_collect(flowlua *rt) {
  while (rt->retired) {
    fl_sched *s = rt->retired;
    rt->retired = s->next_active;
    fl_sched_free(rt, s);
  }
}

int fl_sched_run(flowlua *rt, fl_graph *g, fl_sched **out) {
  const char *name = g->flow->name;
  int rc = fl_sched_start(rt, g, out);
  if (rc) return rc;
  fl_sched *s = *out;
  while (s->active) {
    if (fl_sched_pump_all(rt)) {
      fl_sched_collect(rt); /* subflows' runs that ended */
      continue;
    }
    if (fl_sched_stalled(rt)) {
      fl_set_error(rt, "flow '%s': scheduler stalled with %u task(s) "
                       "unfinished",
                   name, (unsigned)(s->g->n - s->final_nodes));
      fl__sched_log_flow(s, FLOWLUA_LOG_ERROR, -1, -1, "%s", fl_buf_str(&rt->err));
      rt->cancel_requested = 1;
      continue;
    }
    if (fl_loop_poll(&rt->loop, -1) < 0) {
      fl_set_error(rt, "flow '%s': waiting on the event loop failed", name);
      rt->cancel_requested = 1;
    }
  }
  return FLOWLUA_OK;
}

