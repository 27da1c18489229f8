/*
 * sched.c — running a built graph: task coroutines on the event loop.
 *
 * Every attempt of a task is a fresh Lua coroutine. A primitive that waits
 * (flow.sleep now; HTTP and processes later) parks its coroutine and arms a
 * timer or a transfer; the loop resumes it when the wait is over, so one task
 * waiting never holds up another. Work flows through three queues — runs to
 * start, parked runs to resume, runs held back by a tag limit — drained by
 * pump(); a finished run's downstream is released by settle(). Neither
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

#include "engine.h"
#include "record.h"
#include "store.h"
#include "states.h"

#if LUA_VERSION_RELEASE_NUM >= 50406
#define fl_closethread(co, from) lua_closethread((co), (from))
#else
#define fl_closethread(co, from) ((void)(from), lua_resetthread(co))
#endif

static void finish_run(fl_sched *s, fl_taskrun *r, int state, const char *err);

/* A copy of an error to keep, masked: a secret never reaches the API. */
static char *keep_error(fl_sched *s, const char *msg) {
  return fl_log_mask_dup(&s->rt->log, msg);
}

/* A Retry-After longer than this (a day) is taken as this. */
#define FL_MAX_RETRY_AFTER 86400.0

/* ---- state changes: the history and the host's callback ----------------- */

static void emit(fl_sched *s, const char *task, int task_state, int flow_state,
                 int attempt, const char *err, double retry_delay) {
  flowlua *rt = s->rt;
  char *masked = err ? fl_log_mask_dup(&rt->log, err) : NULL;
  flowlua_event ev = {fl_wall_time(), s->g->flow->name, s->run_id, task,
                      task_state, flow_state, attempt, masked, retry_delay};
  rt->opts.event_fn(rt->opts.event_userdata, &ev);
  free(masked);
}

/* A task run's state changed: recorded, and told to the host. final: it
   will not change again (record.h). retry_delay: for Retrying, the wait
   before the next attempt, so that a host can show a countdown. */
static void note_change(fl_sched *s, fl_taskrun *r, int state, int final,
                        const char *err, double retry_delay) {
  fl_record_state(s, r, state, final, err);
  if (!s->rt->opts.event_fn) return;
  fl_buf key = FL_BUF_INIT;
  fl_taskrun_add_key(&key, r);
  int attempt = state == FLOWLUA_TASK_SKIPPED || state == FLOWLUA_TASK_CACHED ||
                        state == FLOWLUA_TASK_TRIGGER_FAILED
                    ? 0
                    : r->attempts;
  emit(s, fl_buf_str(&key), state, -1, attempt, err, retry_delay);
  fl_buf_free(&key);
}

static void note_state(fl_sched *s, fl_taskrun *r, int state, int final,
                       const char *err) {
  note_change(s, r, state, final, err, 0);
}

/* ---- small helpers ------------------------------------------------------- */

static void q_push(fl_runq *q, fl_taskrun *r) {
  r->next = NULL;
  if (q->tail)
    q->tail->next = r;
  else
    q->head = r;
  q->tail = r;
}

static fl_taskrun *q_pop(fl_runq *q) {
  fl_taskrun *r = q->head;
  if (r) {
    q->head = r->next;
    if (!q->head) q->tail = NULL;
    r->next = NULL;
  }
  return r;
}

/* Moves all of src to the front of dst. */
static void q_prepend(fl_runq *dst, fl_runq *src) {
  if (!src->head) return;
  src->tail->next = dst->head;
  if (!dst->head) dst->tail = src->tail;
  dst->head = src->head;
  src->head = src->tail = NULL;
}

static fl_taskdef *run_def(const fl_taskrun *r) {
  return r->sched->g->nodes[r->node].def;
}

static int is_ok_state(int state) {
  return state == FLOWLUA_TASK_SUCCESS || state == FLOWLUA_TASK_CACHED ||
         state == FLOWLUA_TASK_SKIPPED;
}


/* "1 s", "0.25 s", "1.5 ms" */
static void add_seconds(fl_buf *b, double secs) {
  if (secs < 0.001 && secs > 0)
    fl_buf_addf(b, "%.3f ms", secs * 1e3);
  else
    fl_buf_addf(b, "%.3g s", secs);
}

/* ---- logging ------------------------------------------------------------- */

typedef struct task_log {
  int level, state;
  double duration;
  const char *error;
} task_log;

static void log_task(fl_sched *s, fl_taskrun *r, task_log tl, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

static void log_task(fl_sched *s, fl_taskrun *r, task_log tl, const char *fmt,
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

static void log_flow(fl_sched *s, int level, int flow_state, double duration,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void log_flow(fl_sched *s, int level, int flow_state, double duration,
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

void fl_sched_log(flowlua *rt, int level, const char *msg) {
  fl_taskrun *r = rt->current;
  if (r) {
    log_task(r->sched, r, (task_log){level, -1, -1, NULL}, "%s", msg);
    return;
  }
  fl_log_printf(&rt->log, level, rt->building ? rt->building->flow->name : NULL,
                "%s", msg);
}

/* ---- context and hooks --------------------------------------------------- */

static void push_key(lua_State *L, const fl_taskrun *r) {
  fl_buf key = FL_BUF_INIT;
  fl_taskrun_add_key(&key, r);
  lua_pushstring(L, fl_buf_str(&key));
  fl_buf_free(&key);
}

void fl_sched_push_context(lua_State *L, flowlua *rt) {
  fl_taskrun *r = rt->current;
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
  push_key(L, r);
  lua_setfield(L, -2, "task");
  lua_pushstring(L, run_def(r)->name);
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
static void call_hook(fl_sched *s, fl_taskrun *r, int uv, const char *name) {
  lua_State *L = s->rt->L;
  int info = lua_gettop(L);
  lua_pushcfunction(L, fl_msgh);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->tasks_ref);
  lua_rawgeti(L, -1, (lua_Integer)r->node + 1);
  lua_getiuservalue(L, -1, uv);
  lua_replace(L, -3);
  lua_pop(L, 1);
  fl_taskrun *saved = s->rt->current;
  s->rt->current = r; /* so flow.context() and flow.log work in the hook */
  fl_sched_push_context(L, s->rt);
  lua_pushvalue(L, info);
  if (lua_pcall(L, 2, 0, info + 1) != LUA_OK)
    log_task(s, r, (task_log){FLOWLUA_LOG_WARN, -1, -1, lua_tostring(L, -1)},
             "%s hook failed (ignored)", name);
  s->rt->current = saved;
  lua_settop(L, info - 1);
}

static void push_info(lua_State *L, fl_taskrun *r, int state,
                      const char *error) {
  lua_createtable(L, 0, 6);
  push_key(L, r);
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

static int tags_available(fl_sched *s, const fl_taskdef *d) {
  for (int i = 0; i < d->n_tags; i++) {
    fl_tagcount *t = find_tag(s, d->tags[i]);
    if (t && t->running >= t->limit) return 0;
  }
  return 1;
}

static void tags_take(fl_sched *s, const fl_taskdef *d, int delta) {
  for (int i = 0; i < d->n_tags; i++) {
    fl_tagcount *t = find_tag(s, d->tags[i]);
    if (t) t->running += delta;
  }
}

/* ---- attempts ------------------------------------------------------------ */

/*
 * Pushes the value at idx with every node replaced by its result: directly,
 * inside flow.unmapped, and (when `deep`) inside plain tables. A table that
 * holds nodes is copied, so the body's table is left as it was; a table
 * without nodes is passed as it is. `memo` maps each table seen to its copy,
 * or to a boolean: whether it holds nodes.
 */
static void push_resolved(fl_sched *s, int idx, int deep, int memo);

static void push_result(fl_sched *s, uint32_t node) {
  lua_State *L = s->rt->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->results_ref);
  lua_rawgeti(L, -1, (lua_Integer)node + 1);
  lua_remove(L, -2);
}

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

static void push_table_copy(fl_sched *s, int idx, int memo) {
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
    push_resolved(s, -1, 1, memo);
    lua_pushvalue(L, -3);
    lua_insert(L, -2);
    lua_rawset(L, copy);
    lua_pop(L, 1);
  }
}

static void push_resolved(fl_sched *s, int idx, int deep, int memo) {
  lua_State *L = s->rt->L;
  idx = lua_absindex(L, idx);
  uint32_t *node = fl_testudata(L, idx, fl_rt(L)->node_mt);
  if (node) {
    push_result(s, node[1]);
  } else if (fl_testudata(L, idx, fl_rt(L)->unmapped_mt)) {
    lua_getiuservalue(L, idx, 1);
    push_resolved(s, -1, deep, memo);
    lua_remove(L, -2);
  } else if (deep && is_plain_table(L, idx) && holds_nodes(L, idx, memo)) {
    push_table_copy(s, idx, memo);
  } else {
    lua_pushvalue(L, idx);
  }
}

/* Pushes the arguments of a graph node's call; returns how many. */
static int push_node_args(fl_sched *s, uint32_t node) {
  lua_State *L = s->rt->L;
  const fl_node *n = &s->g->nodes[node];
  if (n->nargs == 0) return 0;
  luaL_checkstack(L, n->nargs + 8, "too many arguments");
  int deep = (n->flags & FL_NODE_NESTED) != 0, memo = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->args_ref);
  lua_rawgeti(L, -1, (lua_Integer)node + 1);
  lua_remove(L, -2);
  if (deep) {
    lua_newtable(L);
    memo = lua_gettop(L);
  }
  int args = lua_gettop(L) - (deep ? 1 : 0), base = lua_gettop(L);
  for (int i = 1; i <= n->nargs; i++) {
    lua_rawgeti(L, args, i);
    push_resolved(s, -1, deep, memo);
    lua_remove(L, -2);
  }
  /* drop the args table (and memo) from under the pushed values */
  for (int i = base; i >= args; i--) lua_remove(L, i);
  return n->nargs;
}

/* Pushes the arguments of element i of a map. */
static int push_map_args(fl_sched *s, fl_taskrun *parent, int i) {
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

#define FL_POOL_MAX 64

/* ---- task coroutines belong to the runtime -------------------------------
   A task can hand its own coroutine to Lua code (coroutine.running() as a
   result, in a global): resuming or closing it from another task would run
   or kill a parked task behind the scheduler's back, and a pooled one runs
   the next tasks. So the runtime marks its coroutines in a weak table
   (thread -> its run as a light userdata, or false while pooled), and
   coroutine.resume and coroutine.close refuse them. */

static const char task_threads_key = 0;

/* Marks the coroutine held by registry reference co_ref as r's, or as
   pooled when r is NULL. */
static void mark_thread(lua_State *L, int co_ref, fl_taskrun *r) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task_threads_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return; /* not guarded (no run started yet): nothing to mark */
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, co_ref);
  if (r) lua_pushlightuserdata(L, r);
  else lua_pushboolean(L, 0);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* Raises when the thread at idx is one of the runtime's task coroutines. */
static void refuse_task_thread(lua_State *L, int idx, const char *fn) {
  if (lua_type(L, idx) != LUA_TTHREAD) return; /* the original complains */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &task_threads_key);
  lua_pushvalue(L, idx);
  int kind = lua_rawget(L, -2);
  if (kind == LUA_TLIGHTUSERDATA) {
    fl_taskrun *r = lua_touserdata(L, -1);
    fl_buf key = FL_BUF_INIT;
    fl_taskrun_add_key(&key, r);
    lua_pushstring(L, fl_buf_str(&key));
    fl_buf_free(&key);
    luaL_error(L, "%s: that is the coroutine of task '%s', which flowlua "
                  "runs: only flowlua may resume or close it (do not hand "
                  "coroutine.running() to other code)",
               fn, lua_tostring(L, -1));
  }
  if (kind == LUA_TBOOLEAN)
    luaL_error(L, "%s: that coroutine ran a flowlua task that has ended, and "
                  "flowlua keeps it for its next tasks: only flowlua may "
                  "resume or close it (do not hand coroutine.running() to "
                  "other code)",
               fn);
  lua_pop(L, 2);
}

/* coroutine.resume and coroutine.close, guarded; upvalue 1 is the
   original function. */
static int guarded_call(lua_State *L, const char *fn) {
  refuse_task_thread(L, 1, fn);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static int guarded_resume(lua_State *L) {
  return guarded_call(L, "coroutine.resume");
}

static int guarded_close(lua_State *L) {
  return guarded_call(L, "coroutine.close");
}

/* Installs the guard once per Lua state, before its first run. */
static void guard_coroutines(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task_threads_key) == LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &task_threads_key);
  if (lua_getglobal(L, "coroutine") == LUA_TTABLE) {
    static const struct {
      const char *name;
      lua_CFunction guarded;
    } fns[] = {{"resume", guarded_resume}, {"close", guarded_close}};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
      lua_getfield(L, -1, fns[i].name);
      lua_pushcclosure(L, fns[i].guarded, 1);
      lua_setfield(L, -2, fns[i].name);
    }
  }
  lua_pop(L, 1);
}

static void take_thread(fl_sched *s, fl_taskrun *r) {
  if (s->pool_n > 0) {
    s->pool_n--;
    r->co = s->pool[s->pool_n];
    r->co_ref = s->pool_refs[s->pool_n];
  } else {
    r->co = lua_newthread(s->rt->L);
    r->co_ref = luaL_ref(s->rt->L, LUA_REGISTRYINDEX);
  }
  mark_thread(s->rt->L, r->co_ref, r);
}

/* Keeps a coroutine that returned normally for reuse; any other (failed,
   or abandoned while suspended) is closed, running its __close handlers. */
static void give_thread(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L, *co = r->co;
  mark_thread(L, r->co_ref, NULL);
  lua_Debug ar;
  int clean = lua_status(co) == LUA_OK && !lua_getstack(co, 0, &ar);
  if (clean && s->pool_n < FL_POOL_MAX && s->pool) {
    lua_settop(co, 0);
    s->pool[s->pool_n] = co;
    s->pool_refs[s->pool_n++] = r->co_ref;
  } else {
    fl_closethread(co, L);
    luaL_unref(L, LUA_REGISTRYINDEX, r->co_ref);
  }
  r->co = NULL;
  r->co_ref = LUA_NOREF;
}

/* Ends an attempt's hold on the coroutine, the slot and the timeout. */
static void release(fl_sched *s, fl_taskrun *r) {
  fl_timer_stop(&s->rt->loop, &r->deadline);
  if (r->parked && r->wait && r->wait->cancel) r->wait->cancel(r->wait);
  r->wait = NULL;
  fl_timer_stop(&s->rt->loop, &r->wake);
  r->deadline_at = 0;
  r->parked = 0;
  if (r->co) {
    give_thread(s, r);
    s->running--;
    tags_take(s, run_def(r), -1);
    if (s->tag_wait.head) q_prepend(&s->start_q, &s->tag_wait);
  }
}

static void retry_due(fl_timer *t) {
  fl_taskrun *r = t->data;
  q_push(&r->sched->start_q, r);
}

/* Keeps the value on top of L as r's result (for its dependents). */
static void keep_result(fl_sched *s, fl_taskrun *r) {
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

static void succeed(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L; /* the result is on top of L */
  double took = fl_now() - r->attempt_start;
  keep_result(s, r);
  fl_record_result(s, r, -1);
  fl_record_cache_put(s, r, -1);
  release(s, r);
  r->state = FLOWLUA_TASK_SUCCESS;
  log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_SUCCESS, took, NULL},
           "Success (attempt %d, %.3f s)", r->attempts, took);
  if (run_def(r)->has_on_success) {
    push_info(L, r, FLOWLUA_TASK_SUCCESS, NULL);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "result");
    call_hook(s, r, FL_TASK_UV_ON_SUCCESS, "on_success");
  }
  lua_pop(L, 1);
  /* Earlier attempts' errors are history (their Retrying changes hold
     them); the run itself succeeded, and finish_run would report r->error. */
  free(r->error);
  r->error = NULL;
  finish_run(s, r, FLOWLUA_TASK_SUCCESS, NULL);
}

/* Asks retry_if(err) whether to retry; the error value is on top of L. */
static int retry_allowed(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L;
  int err = lua_gettop(L);
  lua_pushcfunction(L, fl_msgh);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->tasks_ref);
  lua_rawgeti(L, -1, (lua_Integer)r->node + 1);
  lua_getiuservalue(L, -1, FL_TASK_UV_RETRY_IF);
  lua_replace(L, -3);
  lua_pop(L, 1);
  lua_pushvalue(L, err);
  fl_taskrun *saved = s->rt->current;
  s->rt->current = r;
  int ok = lua_pcall(L, 1, 1, err + 1) == LUA_OK;
  s->rt->current = saved;
  int yes = ok && lua_toboolean(L, -1);
  if (!ok)
    log_task(s, r, (task_log){FLOWLUA_LOG_WARN, -1, -1, lua_tostring(L, -1)},
             "retry_if failed; not retrying");
  lua_settop(L, err);
  return yes;
}

/*
 * An attempt failed with the message `msg` (its error value on top of L).
 * Retries if the policy allows; otherwise the run ends in `final_state`.
 */
static void fail_attempt(fl_sched *s, fl_taskrun *r, int final_state,
                         const char *msg, int retryable) {
  lua_State *L = s->rt->L;
  fl_taskdef *d = run_def(r);
  double took = fl_now() - r->attempt_start;
  int retries_left = r->attempts <= d->retry.retries;
  int retry = retryable && retries_left && !s->cancelling &&
              final_state != FLOWLUA_TASK_CANCELLED;
  if (retry && d->has_retry_if) retry = retry_allowed(s, r);
  release(s, r);
  free(r->error);
  r->error = keep_error(s, msg);

  if (final_state == FLOWLUA_TASK_CANCELLED) {
    lua_pop(L, 1);
    log_task(s, r, (task_log){FLOWLUA_LOG_WARN, final_state, took, NULL},
             "Cancelled (attempt %d, %.3f s)", r->attempts, took);
    finish_run(s, r, FLOWLUA_TASK_CANCELLED, msg);
    return;
  }
  if (!retry) {
    log_task(s, r, (task_log){FLOWLUA_LOG_ERROR, final_state, took, msg},
             "%s (attempt %d of %d, %.3f s)",
             fl_task_state_name(final_state), r->attempts,
             d->retry.retries + 1, took);
    if (d->has_on_failure) {
      push_info(L, r, final_state, msg);
      call_hook(s, r, FL_TASK_UV_ON_FAILURE, "on_failure");
    }
    lua_pop(L, 1);
    finish_run(s, r, final_state, msg);
    return;
  }

  double delay = fl_retry_delay(&d->retry, r->attempts, fl_random(s->rt));
  if (r->retry_after > delay) {
    /* The server's Retry-After wins when longer, within the task's cap. */
    double cap = d->retry.max_delay >= 0 ? d->retry.max_delay : FL_MAX_RETRY_AFTER;
    delay = r->retry_after < cap ? r->retry_after : cap > delay ? cap : delay;
  }
  if (final_state == FLOWLUA_TASK_TIMED_OUT) {
    r->state = FLOWLUA_TASK_TIMED_OUT;
    note_state(s, r, FLOWLUA_TASK_TIMED_OUT, 0, msg);
    log_task(s, r, (task_log){FLOWLUA_LOG_WARN, FLOWLUA_TASK_TIMED_OUT, took,
                              msg},
             "TimedOut (attempt %d of %d)", r->attempts, d->retry.retries + 1);
  }
  r->state = FLOWLUA_TASK_RETRYING;
  note_change(s, r, FLOWLUA_TASK_RETRYING, 0, msg, delay);
  /* Only the first line of the error: the traceback is logged once, with
     the final failure. */
  const char *nl = strchr(msg, '\n');
  int first_len = nl ? (int)(nl - msg) : (int)strlen(msg);
  fl_buf delay_text = FL_BUF_INIT;
  add_seconds(&delay_text, delay);
  lua_pushlstring(L, msg, (size_t)first_len);
  log_task(s, r,
           (task_log){FLOWLUA_LOG_WARN, FLOWLUA_TASK_RETRYING, took,
                      lua_tostring(L, -1)},
           "Retrying in %s (attempt %d of %d failed after %.3f s)",
           fl_buf_str(&delay_text), r->attempts, d->retry.retries + 1, took);
  lua_pop(L, 1);
  fl_buf_free(&delay_text);
  if (d->has_on_retry) {
    push_info(L, r, FLOWLUA_TASK_RETRYING, msg);
    lua_pushnumber(L, delay);
    lua_setfield(L, -2, "delay");
    call_hook(s, r, FL_TASK_UV_ON_RETRY, "on_retry");
  }
  lua_pop(L, 1);
  r->wake.cb = retry_due;
  if (fl_timer_start(&s->rt->loop, &r->wake, delay) != 0)
    finish_run(s, r, FLOWLUA_TASK_FAILED, "out of memory arming a retry");
}

/* The attempt was interrupted (timeout or cancel) while parked or by the
   hook; its coroutine is abandoned. */
static void end_interrupted(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L;
  fl_taskdef *d = run_def(r);
  int why = r->interrupt;
  r->interrupt = FL_INT_NONE;
  if (why == FL_INT_CANCEL) {
    lua_pushliteral(L, "cancelled");
    fail_attempt(s, r, FLOWLUA_TASK_CANCELLED, "cancelled", 0);
    return;
  }
  fl_buf msg = FL_BUF_INIT;
  fl_buf_addf(&msg, "task '%s' timed out: attempt %d ran longer than %g s",
              d->name, r->attempts, d->timeout);
  lua_pushstring(L, fl_buf_str(&msg));
  fail_attempt(s, r, FLOWLUA_TASK_TIMED_OUT, fl_buf_str(&msg), 1);
  fl_buf_free(&msg);
}

/*
 * The attempt failed for memory: the limit (or malloc) refused an
 * allocation and Lua raised "not enough memory". Its coroutine still holds
 * what it allocated, and the heap is at the limit: the message and the
 * traceback of where it allocated are made within the grace allowance,
 * then the coroutine is closed and a full collection frees its memory
 * before anything else runs. Then it fails like any error — retried when
 * retries remain, since on a heap shared by every task the memory may have
 * been held by others at the time.
 */
static void fail_for_memory(fl_sched *s, fl_taskrun *r) {
  flowlua *rt = s->rt;
  lua_State *L = rt->L;
  fl_mem_grace(&rt->mem, 1);
  fl_buf msg = FL_BUF_INIT;
  char size[32];
  if (fl_mem_take_hit(&rt->mem) && rt->mem.limit)
    fl_buf_addf(&msg, "memory limit of %s reached in task '",
                fl_mem_format(rt->mem.limit, size, sizeof size));
  else
    fl_buf_adds(&msg, "out of memory in task '");
  fl_taskrun_add_key(&msg, r);
  fl_buf_addc(&msg, '\'');
  lua_pushstring(L, fl_buf_str(&msg)); /* the error value, for retry_if */
  luaL_traceback(L, r->co, fl_buf_str(&msg), 0);
  fl_buf_reset(&msg);
  fl_buf_adds(&msg, lua_tostring(L, -1));
  lua_pop(L, 1);
  release(s, r);
  lua_gc(L, LUA_GCCOLLECT);
  fail_attempt(s, r, FLOWLUA_TASK_FAILED, fl_buf_str(&msg), 1);
  fl_buf_free(&msg);
  fl_mem_grace(&rt->mem, 0);
}

/* Resumes r's coroutine with nargs values already on its stack, and deals
   with however it stops: done, parked, failed or interrupted. */
static void resume(fl_sched *s, fl_taskrun *r, int nargs) {
  lua_State *L = s->rt->L, *co = r->co;
  int nres = 0;
  s->rt->current = r;
  int status = lua_resume(co, L, nargs, &nres);
  s->rt->current = NULL;
  if (r->interrupt) {
    end_interrupted(s, r);
    return;
  }
  if (status == LUA_YIELD) {
    if (r->parked) return; /* a primitive is waiting; the loop resumes it */
    lua_pop(co, nres);
    lua_pushliteral(L, "task yielded outside flowlua's waiting primitives "
                       "(coroutine.yield in a task body?)");
    fail_attempt(s, r, FLOWLUA_TASK_FAILED, lua_tostring(L, -1), 1);
    return;
  }
  if (status == LUA_OK) {
    if (nres > 0) {
      lua_settop(co, lua_gettop(co) - nres + 1);
      lua_xmove(co, L, 1);
    } else {
      lua_pushnil(L);
    }
    succeed(s, r);
    return;
  }
  /* An error: the coroutine's stack is intact, so it can be traced. */
  if (status == LUA_ERRMEM) {
    fail_for_memory(s, r);
    return;
  }
  const char *sigmsg = NULL;
  int sig = fl_signal_kind(co, -1, &sigmsg);
  if (sig == FL_SIGNAL_SKIP) {
    double took = fl_now() - r->attempt_start;
    lua_pushstring(L, sigmsg);
    release(s, r);
    log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_SKIPPED, took,
                              NULL},
             "Skipped: %s", lua_tostring(L, -1));
    free(r->error);
    r->error = keep_error(s, lua_tostring(L, -1));
    lua_pop(L, 1);
    finish_run(s, r, FLOWLUA_TASK_SKIPPED, NULL);
    return;
  }
  if (sig == FL_SIGNAL_FAIL) {
    lua_pushstring(L, sigmsg);
    fail_attempt(s, r, FLOWLUA_TASK_FAILED, lua_tostring(L, -1), 0);
    return;
  }
  const char *msg = fl_error_text(co, -1);
  luaL_traceback(L, co, msg, 0);
  lua_pop(co, 1);
  lua_xmove(co, L, 1); /* the error value itself, for retry_if */
  lua_insert(L, -2);
  fl_buf text = FL_BUF_INIT;
  fl_buf_adds(&text, lua_tostring(L, -1));
  lua_pop(L, 1);
  fail_attempt(s, r, FLOWLUA_TASK_FAILED, fl_buf_str(&text), 1);
  fl_buf_free(&text);
}

static void deadline_hit(fl_timer *t) {
  fl_taskrun *r = t->data;
  r->interrupt = FL_INT_TIMEOUT;
  if (r->parked && !r->queued) {
    r->queued = 1;
    q_push(&r->sched->resume_q, r);
  }
}

static void start_attempt(fl_sched *s, fl_taskrun *r) {
  flowlua *rt = s->rt;
  lua_State *L = rt->L;
  fl_taskdef *d = run_def(r);
  double now = fl_now();
  r->attempts++;
  r->attempt_start = now;
  if (r->attempts == 1) r->first_start = now;
  r->state = FLOWLUA_TASK_RUNNING;
  r->interrupt = FL_INT_NONE;
  r->retry_after = 0;
  note_state(s, r, FLOWLUA_TASK_RUNNING, 0, NULL);
  if (d->retry.retries > 0)
    log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_RUNNING, -1, NULL},
             "Running (attempt %d of %d)", r->attempts, d->retry.retries + 1);
  else
    log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_RUNNING, -1, NULL},
             "Running");

  take_thread(s, r);
  s->running++;
  tags_take(s, d, +1);

  lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->tasks_ref);
  lua_rawgeti(L, -1, (lua_Integer)r->node + 1);
  lua_getiuservalue(L, -1, FL_TASK_UV_FN);
  lua_replace(L, -3);
  lua_pop(L, 1);
  int nargs = r->map_index ? push_map_args(s, &s->runs[r->node], r->map_index)
                           : push_node_args(s, r->node);
  lua_xmove(L, r->co, nargs + 1);

  if (d->timeout > 0) {
    r->deadline_at = now + d->timeout;
    r->deadline.cb = deadline_hit;
    fl_timer_start(&rt->loop, &r->deadline, d->timeout);
  }
  resume(s, r, nargs);
}

/* ---- parking (used by primitives) ---------------------------------------- */

fl_taskrun *fl_sched_parkable(lua_State *L) {
  fl_taskrun *r = fl_rt(L)->current;
  return r && r->co == L && lua_isyieldable(L) ? r : NULL;
}

int fl_sched_park(lua_State *L, fl_taskrun *r, fl_wait *w, lua_KContext ctx,
                  lua_KFunction k) {
  r->parked = 1;
  r->wait = w;
  return lua_yieldk(L, 0, ctx, k);
}

void fl_sched_wake(fl_taskrun *r) {
  if (!r->parked || r->queued) return;
  r->queued = 1;
  q_push(&r->sched->resume_q, r);
}

void fl_sched_note_retry_after(lua_State *L, double seconds) {
  fl_taskrun *r = fl_rt(L)->current;
  if (r && seconds > r->retry_after) r->retry_after = seconds;
}

/* flow.sleep's wait: the run's wake timer. */
static void sleep_over(fl_timer *t) { fl_sched_wake(t->data); }

static void sleep_cancel(fl_wait *w) { (void)w; }

static int sleep_done(lua_State *L, int status, lua_KContext ctx) {
  (void)L, (void)status, (void)ctx;
  return 0;
}

int fl_sched_sleep(lua_State *L, double seconds) {
  static fl_wait sleep_wait = {sleep_cancel};
  flowlua *rt = fl_rt(L);
  fl_taskrun *r = fl_sched_parkable(L);
  if (r) {
    /* The wake timer is stopped by release() if the attempt ends early. */
    r->wake.cb = sleep_over;
    if (fl_timer_start(&rt->loop, &r->wake, seconds) != 0)
      return luaL_error(L, "flow.sleep: out of memory");
    return fl_sched_park(L, r, &sleep_wait, 0, sleep_done);
  }
  if (rt->current)
    return luaL_error(L, "flow.sleep cannot wait here: call it from the task "
                         "body itself, not from a coroutine or hook it runs");
  /* Outside any task (script top level, flow body): a plain blocking wait
     that still ends early when the runtime is asked to stop. */
  double until = fl_now() + seconds;
  while (!fl_cancelling(rt)) {
    double left = until - fl_now();
    if (left <= 0) break;
    if (left > 0.05) left = 0.05;
    struct timespec ts = {(time_t)left, (long)((left - floor(left)) * 1e9)};
    nanosleep(&ts, NULL);
  }
  return 0;
}

/* ---- interrupting busy Lua code ----------------------------------------- */

void fl_interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  flowlua *rt = fl_rt(L);
  fl_taskrun *r = rt->current;
  int why = fl_cancelling(rt)                                    ? FL_INT_CANCEL
            : r && r->deadline_at > 0 && fl_now() >= r->deadline_at ? FL_INT_TIMEOUT
                                                                 : FL_INT_NONE;
  if (why == FL_INT_NONE) return;
  if (r) {
    r->interrupt = (uint8_t)why;
    /* A yield from a hook cannot be caught by the task's own pcall. */
    if (L == r->co && lua_isyieldable(L)) {
      lua_yield(L, 0);
      return;
    }
  }
  /* Not yieldable here (inside a C call such as table.sort): raise, and
     raise again at the next count if a pcall swallows it. */
  luaL_error(L, why == FL_INT_CANCEL ? "interrupted: the run was cancelled"
                                     : "interrupted: the task timed out");
}

/* ---- settling: a run is final, release what waits on it ------------------ */

static void finish_map(fl_sched *s, fl_taskrun *p) {
  fl_mapinfo *m = p->map;
  int state = FLOWLUA_TASK_SUCCESS;
  uint32_t bad = 0;
  for (uint32_t i = 0; i < m->n; i++) {
    int st = m->children[i].state;
    if (!is_ok_state(st)) {
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
    log_task(s, p, (task_log){FLOWLUA_LOG_INFO, state, took, NULL},
             "Success (map of %u, %.3f s)", (unsigned)m->n, took);
    finish_run(s, p, state, NULL);
  } else {
    fl_buf err = FL_BUF_INIT;
    fl_buf_addf(&err, "%u of %u mapped runs did not succeed", (unsigned)bad,
                (unsigned)m->n);
    log_task(s, p, (task_log){FLOWLUA_LOG_ERROR, state, took, NULL},
             "%s (map of %u: %s)", fl_task_state_name(state),
             (unsigned)m->n, fl_buf_str(&err));
    finish_run(s, p, state, fl_buf_str(&err));
    fl_buf_free(&err);
  }
}

static void finish_run(fl_sched *s, fl_taskrun *r, int state, const char *err) {
  r->state = (uint8_t)state;
  r->ended = fl_now();
  if (err && !r->error) r->error = keep_error(s, err);
  note_state(s, r, state, 1, err ? err : r->error);
  if (r->map_index) {
    fl_taskrun *p = &s->runs[r->node];
    if (++p->map->done == p->map->n) finish_map(s, p);
    return;
  }
  s->settle[s->n_settle++] = r->node;
}

/* r keeps the result of the run being resumed (on top of L): Success
   without running. */
static void restore(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L;
  keep_result(s, r);
  fl_record_result(s, r, -1);
  lua_pop(L, 1);
  r->restored = 1;
  log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_SUCCESS, 0, NULL},
           "Success (kept from run %.8s)", s->resume ? s->resume->run.run_id
                                                     : "?");
  finish_run(s, r, FLOWLUA_TASK_SUCCESS, NULL);
}

/* Expands a map node into one run per element. */
static void expand_map(fl_sched *s, fl_taskrun *p) {
  lua_State *L = s->rt->L;
  const fl_node *n = &s->g->nodes[p->node];
  fl_mapinfo *m = calloc(1, sizeof *m);
  uint8_t *mapped = calloc(n->nargs, 1);
  if (!m || !mapped) {
    free(m);
    free(mapped);
    finish_run(s, p, FLOWLUA_TASK_FAILED, "out of memory expanding a map");
    return;
  }
  m->mapped = mapped;
  m->args_ref = LUA_NOREF;
  p->map = m;
  p->first_start = fl_now();
  p->state = FLOWLUA_TASK_RUNNING;
  note_state(s, p, FLOWLUA_TASK_RUNNING, 0, NULL);

  int top = lua_gettop(L);
  int nargs = push_node_args(s, p->node);
  lua_createtable(L, nargs, 0);
  int args = lua_gettop(L);
  lua_Integer len = -1;
  int first_mapped = 0;
  const char *problem = NULL;
  for (int j = 1; j <= nargs; j++) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->args_ref);
    lua_rawgeti(L, -1, (lua_Integer)p->node + 1);
    lua_rawgeti(L, -1, j);
    int whole = fl_testudata(L, -1, fl_rt(L)->unmapped_mt) != NULL;
    lua_pop(L, 3);
    lua_pushvalue(L, top + j);
    lua_rawseti(L, args, j);
    if (whole || lua_type(L, top + j) != LUA_TTABLE) continue;
    mapped[j - 1] = 1;
    lua_Integer l = (lua_Integer)lua_rawlen(L, top + j);
    if (len < 0) {
      len = l;
      first_mapped = j;
    } else if (l != len && !problem) {
      problem = lua_pushfstring(
          L, "map: argument %d has %d elements but argument %d has %d "
             "(wrap an argument in flow.unmapped to pass it whole)",
          j, (int)l, first_mapped, (int)len);
      lua_replace(L, top + j); /* keep the message alive on the stack */
      problem = lua_tostring(L, top + j);
    }
  }
  if (!problem && len < 0)
    problem = lua_pushfstring(L, "map: no list to map over (argument 1 is %s)",
                              nargs ? luaL_typename(L, top + 1) : "missing");
  if (problem) {
    /* Found only now that the arguments are known: name the call's line. */
    const fl_node *node = &s->g->nodes[p->node];
    fl_buf err = FL_BUF_INIT;
    fl_buf_adds(&err, problem);
    fl_buf_addf(&err, "; task '%s':map called at %s:%d", node->def->name,
                s->rt->script_name ? s->rt->script_name : "?", (int)node->line);
    lua_settop(L, top);
    p->map = NULL;
    free(m->mapped);
    free(m);
    log_task(s, p, (task_log){FLOWLUA_LOG_ERROR, FLOWLUA_TASK_FAILED, 0,
                              fl_buf_str(&err)},
             "Failed");
    finish_run(s, p, FLOWLUA_TASK_FAILED, fl_buf_str(&err));
    fl_buf_free(&err);
    return;
  }
  lua_pushvalue(L, args);
  m->args_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->results_ref);
  lua_createtable(L, (int)len, 0);
  lua_rawseti(L, -2, (lua_Integer)p->node + 1);
  lua_settop(L, top);

  m->n = (uint32_t)len;
  log_task(s, p, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_RUNNING, -1, NULL},
           "Running (map over %u elements)", (unsigned)m->n);
  if (m->n == 0) {
    finish_map(s, p);
    return;
  }
  /* The largest C allocation a flow makes (a record per element): it
     counts against the memory limit like the Lua heap. */
  size_t bytes = (size_t)m->n * sizeof *m->children;
  if (fl_mem_charge(&s->rt->mem, bytes) != 0) {
    char size[32];
    fl_buf err = FL_BUF_INIT;
    fl_buf_addf(&err, "memory limit of %s reached expanding a map over %u "
                      "elements",
                fl_mem_format(s->rt->mem.limit, size, sizeof size),
                (unsigned)m->n);
    fl_mem_take_hit(&s->rt->mem);
    m->n = 0;
    log_task(s, p, (task_log){FLOWLUA_LOG_ERROR, FLOWLUA_TASK_FAILED, 0,
                              fl_buf_str(&err)},
             "Failed");
    finish_run(s, p, FLOWLUA_TASK_FAILED, fl_buf_str(&err));
    fl_buf_free(&err);
    return;
  }
  m->children = calloc(m->n, sizeof *m->children);
  if (!m->children) {
    fl_mem_uncharge(&s->rt->mem, bytes);
    m->n = 0;
    finish_run(s, p, FLOWLUA_TASK_FAILED, "out of memory expanding a map");
    return;
  }
  s->total_runs += m->n;
  for (uint32_t i = 0; i < m->n; i++) {
    fl_taskrun *c = &m->children[i];
    c->sched = s;
    c->node = p->node;
    c->map_index = (int32_t)i + 1;
    c->state = FLOWLUA_TASK_PENDING;
    c->co_ref = LUA_NOREF;
    fl_timer_init(&c->wake, NULL, c);
    fl_timer_init(&c->deadline, NULL, c);
    fl_record_task_add(s, c);
  }
  /* Elements kept from the run this one resumes end at once; the rest
     queue to start. (Once all are set up: the last may finish the map.) */
  for (uint32_t i = 0; i < m->n; i++) {
    fl_taskrun *c = &m->children[i];
    if (fl_record_restore(s, p->node, c->map_index))
      restore(s, c);
    else
      q_push(&s->start_q, c);
  }
}

/* Calls a trigger function with the upstream states { key = "State" }. */
static fl_decision decide_by_function(fl_sched *s, uint32_t node,
                                      fl_upstream_tally *t, char **why) {
  lua_State *L = s->rt->L;
  const fl_dag *d = &s->g->dag;
  int top = lua_gettop(L);
  lua_pushcfunction(L, fl_msgh);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->tasks_ref);
  lua_rawgeti(L, -1, (lua_Integer)node + 1);
  lua_getiuservalue(L, -1, FL_TASK_UV_TRIGGER);
  lua_replace(L, -3);
  lua_pop(L, 1);
  lua_createtable(L, 0, (int)fl_dag_n_up(d, node));
  for (uint32_t k = d->up_off[node]; k < d->up_off[node + 1]; k++) {
    push_key(L, &s->runs[d->up[k]]);
    lua_pushstring(L, fl_task_state_name(s->runs[d->up[k]].state));
    lua_rawset(L, -3);
  }
  fl_decision out;
  if (lua_pcall(L, 1, 1, top + 1) != LUA_OK) {
    fl_buf b = FL_BUF_INIT;
    fl_buf_addf(&b, "trigger function failed: %s", lua_tostring(L, -1));
    *why = keep_error(s, fl_buf_str(&b));
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
static void ready(fl_sched *s, uint32_t node) {
  fl_taskrun *r = &s->runs[node];
  const fl_dag *d = &s->g->dag;
  fl_taskdef *def = run_def(r);
  if (s->cancelling) {
    log_task(s, r, (task_log){FLOWLUA_LOG_WARN, FLOWLUA_TASK_CANCELLED, -1,
                              NULL},
             "Cancelled (before it started)");
    finish_run(s, r, FLOWLUA_TASK_CANCELLED, "cancelled");
    return;
  }
  fl_upstream_tally t = {0, 0, 0};
  for (uint32_t k = d->up_off[node]; k < d->up_off[node + 1]; k++)
    fl_trigger_tally_add(&t, s->runs[d->up[k]].state);
  char *why = NULL;
  fl_decision dec = def->trigger == FL_TRIGGER_FUNCTION && fl_dag_n_up(d, node)
                        ? decide_by_function(s, node, &t, &why)
                        : fl_trigger_decide(def->trigger, &t);
  if (dec == FL_DECIDE_RUN) {
    if (fl_record_restore(s, node, 0))
      restore(s, r);
    else if (!(s->g->nodes[node].flags & FL_NODE_MAP))
      q_push(&s->start_q, r);
    else if (fl_record_before_start(s, r) != 0)
      finish_run(s, r, FLOWLUA_TASK_FAILED, s->store_error);
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
      if (is_ok_state(u->state) && u->state != FLOWLUA_TASK_SKIPPED &&
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
  log_task(s, r,
           (task_log){state == FLOWLUA_TASK_SKIPPED ? FLOWLUA_LOG_INFO
                                                    : FLOWLUA_LOG_WARN,
                      state, -1, NULL},
           "%s (%s)", fl_task_state_name(state), fl_buf_str(&b));
  finish_run(s, r, state, fl_buf_str(&b));
  fl_buf_free(&b);
}

static void settle(fl_sched *s) {
  const fl_dag *d = &s->g->dag;
  while (s->n_settle > 0) {
    uint32_t node = s->settle[--s->n_settle];
    s->final_nodes++;
    for (uint32_t k = d->down_off[node]; k < d->down_off[node + 1]; k++)
      if (--s->waiting[d->down[k]] == 0) ready(s, d->down[k]);
  }
}

/* ---- cancellation -------------------------------------------------------- */

static void cancel_one(fl_sched *s, fl_taskrun *r) {
  if (r->state == FLOWLUA_TASK_RUNNING && r->parked && !r->queued) {
    r->interrupt = FL_INT_CANCEL;
    r->queued = 1;
    q_push(&s->resume_q, r);
  } else if (r->state == FLOWLUA_TASK_RETRYING && fl_timer_armed(&r->wake)) {
    fl_timer_stop(&s->rt->loop, &r->wake);
    log_task(s, r, (task_log){FLOWLUA_LOG_WARN, FLOWLUA_TASK_CANCELLED, -1,
                              NULL},
             "Cancelled (while waiting to retry)");
    finish_run(s, r, FLOWLUA_TASK_CANCELLED, "cancelled");
  }
}

static void cancel_all(fl_sched *s) {
  s->cancelling = 1;
  log_flow(s, FLOWLUA_LOG_WARN, -1, -1,
           "flow '%s': cancel requested, cancelling %d running task(s)",
           s->g->flow->name, s->running);
  for (uint32_t i = 0; i < s->g->n; i++) {
    fl_taskrun *r = &s->runs[i];
    cancel_one(s, r);
    if (r->map)
      for (uint32_t k = 0; k < r->map->n; k++) cancel_one(s, &r->map->children[k]);
  }
  q_prepend(&s->start_q, &s->tag_wait);
}

/* ---- the run loop -------------------------------------------------------- */

/* cache_key: computes r's key from its arguments and looks it up. Returns
   1 when r has ended — Cached with the stored result, or Failed because
   the key function failed — and 0 when r is to run. */
static int cached(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L;
  int top = lua_gettop(L);
  lua_pushcfunction(L, fl_msgh);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->tasks_ref);
  lua_rawgeti(L, -1, (lua_Integer)r->node + 1);
  lua_getiuservalue(L, -1, FL_TASK_UV_CACHE_KEY);
  lua_replace(L, -3);
  lua_pop(L, 1);
  int nargs = r->map_index ? push_map_args(s, &s->runs[r->node], r->map_index)
                           : push_node_args(s, r->node);
  const char *problem = NULL;
  if (lua_pcall(L, nargs, 1, top + 1) != LUA_OK)
    problem = lua_pushfstring(L, "cache_key failed: %s", lua_tostring(L, -1));
  else if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
    problem = lua_pushfstring(L, "cache_key must return a string, got %s",
                              luaL_typename(L, -1));
  if (problem) {
    log_task(s, r, (task_log){FLOWLUA_LOG_ERROR, FLOWLUA_TASK_FAILED, -1,
                              problem},
             "Failed (before it started)");
    finish_run(s, r, FLOWLUA_TASK_FAILED, problem);
    lua_settop(L, top);
    return 1;
  }
  free(r->cache_key);
  r->cache_key = strdup(lua_tostring(L, -1));
  lua_settop(L, top);
  if (!fl_record_cache_get(s, r)) return 0;
  keep_result(s, r);
  fl_record_result(s, r, -1);
  lua_pop(L, 1);
  log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_CACHED, 0, NULL},
           "Cached (key '%s')", r->cache_key);
  finish_run(s, r, FLOWLUA_TASK_CACHED, NULL);
  return 1;
}

/* Does all the work that needs no waiting; returns whether any was done. */
static int pump(fl_sched *s) {
  int any = 0, progress;
  do {
    progress = 0;
    fl_taskrun *r;
    while ((r = q_pop(&s->resume_q))) {
      r->queued = 0;
      progress = 1;
      if (r->interrupt) {
        end_interrupted(s, r);
      } else {
        r->parked = 0;
        r->wait = NULL;
        resume(s, r, 0);
      }
    }
    while ((s->cancelling || s->running < s->concurrency) &&
           (r = q_pop(&s->start_q))) {
      progress = 1;
      if (s->cancelling) {
        log_task(s, r, (task_log){FLOWLUA_LOG_WARN, FLOWLUA_TASK_CANCELLED,
                                  -1, NULL},
                 "Cancelled (before it started)");
        finish_run(s, r, FLOWLUA_TASK_CANCELLED, "cancelled");
      } else if (!tags_available(s, run_def(r))) {
        q_push(&s->tag_wait, r);
      } else if (r->attempts == 0 && run_def(r)->has_cache_key &&
                 cached(s, r)) {
        /* ended Cached, or Failed by its cache_key function */
      } else if (fl_record_before_start(s, r) != 0) {
        log_task(s, r, (task_log){FLOWLUA_LOG_ERROR, FLOWLUA_TASK_FAILED, -1,
                                  s->store_error},
                 "Failed (not started)");
        finish_run(s, r, FLOWLUA_TASK_FAILED, s->store_error);
      } else {
        start_attempt(s, r);
      }
      if (s->resume_q.head) break;
    }
    if (s->n_settle) {
      settle(s);
      progress = 1;
    }
    if (fl_cancelling(s->rt) && !s->cancelling) {
      cancel_all(s); /* its wake-ups are handled in the next pass */
      progress = 1;
    }
    any |= progress;
  } while (progress);
  return any;
}

static void make_run_id(flowlua *rt, char out[40]) {
  static const char hex[] = "0123456789abcdef";
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
    fl_timer_stop(&rt->loop, &r->wake);
    fl_timer_stop(&rt->loop, &r->deadline);
    if (r->co) luaL_unref(L, LUA_REGISTRYINDEX, r->co_ref);
    free(r->error);
    free(r->cache_key);
    if (r->map) {
      for (uint32_t k = 0; k < r->map->n; k++) {
        fl_taskrun *c = &r->map->children[k];
        fl_timer_stop(&rt->loop, &c->wake);
        fl_timer_stop(&rt->loop, &c->deadline);
        if (c->co) luaL_unref(L, LUA_REGISTRYINDEX, c->co_ref);
        free(c->error);
        free(c->cache_key);
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
  s->results_ref = LUA_NOREF;
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
    fl_timer_init(&r->wake, NULL, r);
    fl_timer_init(&r->deadline, NULL, r);
    s->waiting[i] = fl_dag_n_up(&g->dag, i);
  }
  s->total_runs = g->n;
  lua_newtable(rt->L);
  s->results_ref = luaL_ref(rt->L, LUA_REGISTRYINDEX);
  guard_coroutines(rt->L);
  return s;
}

int fl_sched_start(flowlua *rt, fl_graph *g, fl_sched **out) {
  const char *name = g->flow->name; /* the flow outlives the graph */
  if (rt->graph == g) rt->graph = NULL; /* the run owns it now */
  fl_sched *s = sched_new(rt, g);
  *out = s;
  if (!s) {
    fl_set_error(rt, "flow '%s': out of memory starting the run", name);
    return FLOWLUA_ENOMEM;
  }
  make_run_id(rt, s->run_id);
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
  if (rt->opts.event_fn) emit(s, NULL, -1, FLOWLUA_FLOW_RUNNING, 0, NULL, 0);
  log_flow(s, FLOWLUA_LOG_INFO, FLOWLUA_FLOW_RUNNING, -1,
           "flow '%s' run %s: Running (%u tasks)", g->flow->name, s->run_id,
           (unsigned)g->n);
  for (uint32_t i = 0; i < g->n; i++)
    if (s->waiting[i] == 0) ready(s, i);
  return FLOWLUA_OK;
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
    if (!is_ok_state(s->runs[i].state)) state = FLOWLUA_FLOW_FAILED;
  if (s->cancelling) state = FLOWLUA_FLOW_CANCELLED;
  s->state = state;
  fl_record_run_end(s);
  if (rt->opts.event_fn) emit(s, NULL, -1, state, 0, s->store_error, 0);
  double took = s->ended - s->started;
  log_flow(s, state == FLOWLUA_FLOW_SUCCESS ? FLOWLUA_LOG_INFO
                                            : FLOWLUA_LOG_ERROR,
           state, took, "flow '%s' run %s: %s in %.3f s", g->flow->name,
           s->run_id, fl_flow_state_name(state), took);
  fl_sched **p = &rt->active;
  while (*p && *p != s) p = &(*p)->next_active;
  if (*p) *p = s->next_active;
  s->active = 0;
  s->next_active = NULL;
  if (s->orphan) {
    s->next_active = rt->retired;
    rt->retired = s;
  }
  if (s->on_end) s->on_end(s, s->on_end_data);
}

int fl_sched_pump_all(flowlua *rt) {
  int any = 0;
  fl_sched *next;
  for (fl_sched *s = rt->active; s; s = next) {
    any |= pump(s);
    next = s->next_active;
    if (s->final_nodes == s->g->n) {
      sched_end(s);
      any = 1;
    }
  }
  if (!any) fl_record_idle(rt); /* the loop is about to wait */
  return any;
}

int fl_sched_stalled(flowlua *rt) {
  if (rt->loop.n) return 0;
  for (fl_sched *s = rt->active; s; s = s->next_active)
    if (s->running || s->start_q.head || s->tag_wait.head ||
        s->resume_q.head || s->n_settle)
      return 0;
  return rt->active != NULL;
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
    if (fl_sched_pump_all(rt)) continue;
    if (fl_sched_stalled(rt)) {
      fl_set_error(rt, "flow '%s': scheduler stalled with %u task(s) "
                       "unfinished",
                   name, (unsigned)(s->g->n - s->final_nodes));
      log_flow(s, FLOWLUA_LOG_ERROR, -1, -1, "%s", fl_buf_str(&rt->err));
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
