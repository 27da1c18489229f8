/*
 * taskrun.c — the bookkeeping every part of the scheduler shares about a
 * task run: its state changes (to the history and the host's callback),
 * the run queues, its log lines, flow.context() and hooks, and tag limits.
 * A leaf of the scheduler: it calls nothing in args.c, attempt.c,
 * settle.c or sched.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "sched_internal.h"
#include "record.h"
#include "store.h"
#include "states.h"


/* A copy of an error to keep, masked: a secret never reaches the API. */
char *fl__sched_keep_error(fl_sched *s, const char *msg) {
  return fl_log_mask_dup(&s->rt->log, msg);
}

/* ---- state changes: the history and the host's callback ----------------- */

void fl__sched_emit(fl_sched *s, const char *task, int task_state, int flow_state,
                 int attempt, const char *err, double retry_delay,
                 long worker_pid) {
  flowlua *rt = s->rt;
  char *masked = err ? fl_log_mask_dup(&rt->log, err) : NULL;
  flowlua_event ev = {sizeof ev, fl_wall_time(), s->g->flow->name, s->run_id,
                      task, task_state, flow_state, attempt, masked,
                      retry_delay, worker_pid};
  rt->opts.event_fn(rt->opts.event_userdata, &ev);
  free(masked);
}

/* A task run's state changed: recorded, and told to the host. final: it
   will not change again (record.h). retry_delay: for Retrying, the wait
   before the next attempt, so that a host can show a countdown. */
void fl__sched_note_change(fl_sched *s, fl_taskrun *r, int state, int final,
                        const char *err, double retry_delay) {
  fl_record_state(s, r, state, final, err);
  if (!s->rt->opts.event_fn) return;
  fl_buf key = FL_BUF_INIT;
  fl_taskrun_add_key(&key, r);
  int attempt = state == FLOWLUA_TASK_SKIPPED || state == FLOWLUA_TASK_CACHED ||
                        state == FLOWLUA_TASK_TRIGGER_FAILED
                    ? 0
                    : r->attempts;
  fl__sched_emit(s, fl_buf_str(&key), state, -1, attempt, err, retry_delay,
                 state == FLOWLUA_TASK_RUNNING ? (long)r->worker_pid : 0);
  fl_buf_free(&key);
}

/* A worker took r's attempt (pool.c): the attempt starts now, in that
   worker. Until then it waited for one, which is no part of the attempt
   (fl__sched_start_attempt notes no Running for a worker task): its
   Running, its duration and its timeout all count from here. */
void fl__sched_worker_took(fl_taskrun *r) {
  fl_sched *s = r->sched;
  double now = fl_now();
  r->attempt_start = now;
  if (r->attempts == 1) r->first_start = now;
  fl__sched_note_state(s, r, FLOWLUA_TASK_RUNNING, 0, NULL);
  fl_record_worker(s, r);
  int retries = fl__sched_run_def(r)->retry.retries;
  /* A worker of this host's pool is named by its pid; one of a
     PostgreSQL queue by its host too. */
  char who[300];
  if (r->worker_host)
    snprintf(who, sizeof who, "%s:%ld", r->worker_host, (long)r->worker_pid);
  else
    snprintf(who, sizeof who, "%ld", (long)r->worker_pid);
  if (retries > 0)
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_RUNNING, -1, NULL},
                       "Running (attempt %d of %d, worker %s)", r->attempts,
                       retries + 1, who);
  else
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_RUNNING, -1, NULL},
                       "Running (worker %s)", who);
}

void fl__sched_note_state(fl_sched *s, fl_taskrun *r, int state, int final,
                       const char *err) {
  fl__sched_note_change(s, r, state, final, err, 0);
}

/* ---- small helpers ------------------------------------------------------- */

void fl__sched_push_task_uv(fl_sched *s, uint32_t node, int uv) {
  lua_State *L = s->rt->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->tasks_ref);
  lua_rawgetp(L, -1, s->g->nodes[node].def);
  lua_getiuservalue(L, -1, uv);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

fl_runtimers *fl__sched_timers(fl_taskrun *r) {
  if (r->timers) return r->timers;
  r->timers = malloc(sizeof *r->timers);
  if (!r->timers) return NULL;
  fl_timer_init(&r->timers->wake, NULL, r);
  fl_timer_init(&r->timers->deadline, NULL, r);
  return r->timers;
}

static void deadline_hit(fl_timer *t) {
  fl_taskrun *r = t->data;
  r->interrupt = FL_INT_TIMEOUT;
  if (r->parked && !r->queued) {
    r->queued = 1;
    fl__sched_q_push(&r->sched->resume_q, r);
  }
}

void fl__sched_arm_deadline(fl_loop *loop, fl_taskrun *r, double now,
                            double timeout) {
  r->deadline_at = now + timeout;
  /* Without its timer (out of memory) a parked attempt outlives its
     deadline, as when fl_timer_start fails; the hook still ends one that
     runs Lua code. */
  fl_runtimers *t = fl__sched_timers(r);
  if (!t) return;
  t->deadline.cb = deadline_hit;
  fl_timer_start(loop, &t->deadline, timeout);
}

void fl__sched_free_timers(fl_loop *loop, fl_taskrun *r) {
  if (!r->timers) return;
  fl_timer_stop(loop, &r->timers->wake);
  fl_timer_stop(loop, &r->timers->deadline);
  free(r->timers);
  r->timers = NULL;
}

void fl__sched_q_push(fl_runq *q, fl_taskrun *r) {
  r->next = NULL;
  if (q->tail)
    q->tail->next = r;
  else
    q->head = r;
  q->tail = r;
}

fl_taskrun *fl__sched_q_pop(fl_runq *q) {
  fl_taskrun *r = q->head;
  if (r) {
    q->head = r->next;
    if (!q->head) q->tail = NULL;
    r->next = NULL;
  }
  return r;
}

/* Moves all of src to the front of dst. */
void fl__sched_q_prepend(fl_runq *dst, fl_runq *src) {
  if (!src->head) return;
  src->tail->next = dst->head;
  if (!dst->head) dst->tail = src->tail;
  dst->head = src->head;
  src->head = src->tail = NULL;
}

int fl__sched_is_ok_state(int state) {
  return state == FLOWLUA_TASK_SUCCESS || state == FLOWLUA_TASK_CACHED ||
         state == FLOWLUA_TASK_SKIPPED;
}


/* ---- logging ------------------------------------------------------------- */

void fl__sched_log_task(fl_sched *s, fl_taskrun *r, task_log tl, const char *fmt,
                     ...) {
  flowlua *rt = s->rt;
  if (!fl_log_enabled(&rt->log, tl.level)) return;
  fl_buf key = FL_BUF_INIT;
  fl_taskrun_add_key(&key, r);
  flowlua_log_record rec;
  fl_log_record_init(&rec, tl.level);
  rec.flow = s->g->flow->name;
  rec.run_id = s->run_id;
  rec.task = fl_buf_str(&key);
  rec.attempt = r->attempts;
  rec.task_state = tl.state;
  rec.duration = tl.duration;
  rec.error = tl.error;
  va_list ap;
  va_start(ap, fmt);
  fl_log_emitv(&rt->log, &rec, fmt, ap);
  va_end(ap);
  fl_buf_free(&key);
}

void fl__sched_log_flow(fl_sched *s, int level, int flow_state, double duration,
                     const char *fmt, ...) {
  flowlua_log_record rec;
  fl_log_record_init(&rec, level);
  rec.flow = s->g->flow->name;
  rec.run_id = s->run_id;
  rec.flow_state = flow_state;
  rec.duration = duration;
  va_list ap;
  va_start(ap, fmt);
  fl_log_emitv(&s->rt->log, &rec, fmt, ap);
  va_end(ap);
}

int fl_sched_log_wanted(flowlua *rt, int level) {
  if (fl_log_enabled(&rt->log, level)) return 1;
  if (!rt->current) return rt->job != NULL; /* the driver's level decides */
  return level >= FLOWLUA_LOG_INFO && rt->current->sched->rec != NULL;
}

void fl_sched_log(flowlua *rt, int level, const char *msg) {
  fl_taskrun *r = rt->current;
  if (!r && rt->job) {
    rt->job->log(rt->job, level, msg);
    return;
  }
  if (r) {
    /* Kept at INFO and above whatever the log prints, so that a run
       served with --quiet still has its tasks' lines in the history;
       DEBUG only when printed, as it is asked for. */
    if (level >= FLOWLUA_LOG_INFO || fl_log_enabled(&rt->log, level))
      fl_record_log(r->sched, r, level, msg);
    fl__sched_log_task(r->sched, r, (task_log){level, -1, -1, NULL}, "%s", msg);
    return;
  }
  fl_log_printf(&rt->log, level, rt->building ? rt->building->flow->name : NULL,
                "%s", msg);
}

void fl_sched_note_secret(flowlua *rt, const char *value) {
  if (!rt->current && rt->job) rt->job->secret(rt->job, value);
}

/* ---- context and hooks --------------------------------------------------- */

void fl__sched_push_key(lua_State *L, const fl_taskrun *r) {
  fl_buf key = FL_BUF_INIT;
  fl_taskrun_add_key(&key, r);
  lua_pushstring(L, fl_buf_str(&key));
  fl_buf_free(&key);
}

/* A worker's job: what its JOB says, the same fields as a task run's. */
static void push_job_context(lua_State *L, const fl_job *j) {
  lua_createtable(L, 0, 9);
  if (j->flow && *j->flow) {
    lua_pushstring(L, j->flow);
    lua_setfield(L, -2, "flow");
  }
  if (j->scheduled_at > 0) {
    lua_pushnumber(L, j->scheduled_at);
    lua_setfield(L, -2, "scheduled_at");
  }
  if (j->started_at > 0) {
    lua_pushnumber(L, j->started_at);
    lua_setfield(L, -2, "started_at");
  }
  if (j->params_ref != LUA_NOREF && j->params_ref != LUA_REFNIL) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, j->params_ref);
    lua_setfield(L, -2, "params");
  }
  lua_pushstring(L, j->run_id);
  lua_setfield(L, -2, "run_id");
  lua_pushstring(L, j->task_key);
  lua_setfield(L, -2, "task");
  lua_pushstring(L, j->task_name);
  lua_setfield(L, -2, "task_name");
  lua_pushinteger(L, (lua_Integer)j->attempt);
  lua_setfield(L, -2, "attempt");
  if (j->map_index) {
    lua_pushinteger(L, (lua_Integer)j->map_index);
    lua_setfield(L, -2, "map_index");
  }
}

void fl_sched_push_context(lua_State *L, flowlua *rt) {
  fl_taskrun *r = rt->current;
  if (!r && rt->job) {
    push_job_context(L, rt->job);
    return;
  }
  fl_sched *s = r ? r->sched : NULL;
  fl_graph *g = s ? s->g : rt->building;
  lua_createtable(L, 0, 8);
  if (!g) return;
  lua_pushstring(L, g->flow->name);
  lua_setfield(L, -2, "flow");
  lua_rawgeti(L, LUA_REGISTRYINDEX, g->params_ref);
  lua_setfield(L, -2, "params");
  if (!s) return;
  lua_pushstring(L, s->run_id);
  lua_setfield(L, -2, "run_id");
  lua_pushnumber(L, s->scheduled_at);
  lua_setfield(L, -2, "scheduled_at");
  lua_pushnumber(L, s->started_wall);
  lua_setfield(L, -2, "started_at");
  fl__sched_push_key(L, r);
  lua_setfield(L, -2, "task");
  lua_pushstring(L, fl__sched_run_def(r)->name);
  lua_setfield(L, -2, "task_name");
  lua_pushinteger(L, r->attempts);
  lua_setfield(L, -2, "attempt");
  if (r->map_index) {
    lua_pushinteger(L, r->map_index);
    lua_setfield(L, -2, "map_index");
  }
}

/*
 * Calls a task's hook (user value uv) as hook(ctx, info); the info table is
 * on top of the stack and is consumed. A failing hook is logged, never
 * fatal: it must not change the outcome of the task it reports on.
 */
void fl__sched_call_hook(fl_sched *s, fl_taskrun *r, int uv, const char *name) {
  lua_State *L = s->rt->L;
  int info = lua_gettop(L);
  lua_pushcfunction(L, fl_msgh);
  fl__sched_push_task_uv(s, r->node, uv);
  fl_taskrun *saved = s->rt->current;
  s->rt->current = r; /* so flow.context() and flow.log work in the hook */
  fl_sched_push_context(L, s->rt);
  lua_pushvalue(L, info);
  if (lua_pcall(L, 2, 0, info + 1) != LUA_OK)
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_WARN, -1, -1, lua_tostring(L, -1)},
             "%s hook failed (ignored)", name);
  s->rt->current = saved;
  lua_settop(L, info - 1);
}

void fl__sched_push_info(lua_State *L, fl_taskrun *r, int state,
                      const char *error) {
  lua_createtable(L, 0, 6);
  fl__sched_push_key(L, r);
  lua_setfield(L, -2, "task");
  lua_pushstring(L, fl_task_state_name(state));
  lua_setfield(L, -2, "state");
  lua_pushinteger(L, r->attempts);
  lua_setfield(L, -2, "attempt");
  if (error) {
    lua_pushstring(L, error);
    lua_setfield(L, -2, "error");
  }
}

/* ---- concurrency --------------------------------------------------------- */

static fl_tagcount *find_tag(fl_sched *s, const char *tag) {
  for (int i = 0; i < s->n_tags; i++)
    if (strcmp(s->tags[i].tag, tag) == 0) return &s->tags[i];
  return NULL;
}

int fl__sched_tags_available(fl_sched *s, const fl_taskdef *d) {
  for (int i = 0; i < d->n_tags; i++) {
    fl_tagcount *t = find_tag(s, d->tags[i]);
    if (t && t->running >= t->limit) return 0;
  }
  return 1;
}

void fl__sched_tags_take(fl_sched *s, const fl_taskdef *d, int delta) {
  for (int i = 0; i < d->n_tags; i++) {
    fl_tagcount *t = find_tag(s, d->tags[i]);
    if (t) t->running += delta;
  }
}

