/*
 * attempt.c — one attempt of a task: its arguments resolved from upstream
 * results, its coroutine (pooled, and guarded so that no other Lua code can
 * resume or close it), resuming it, its outcome (success, a retry, a
 * failure), and parking a task inside a primitive. The count hook that
 * interrupts busy Lua code past a timeout is in hook.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "duration.h"
#include "sched_internal.h"
#include "record.h"
#include "store.h"
#include "states.h"

/* A Retry-After longer than this (a day) is taken as this. */
#define FL_MAX_RETRY_AFTER 86400.0

/* ---- attempts ------------------------------------------------------------ */

/* ---- task coroutines belong to the runtime -------------------------------
   A task can hand its own coroutine to Lua code (coroutine.running() as a
   result, in a global): resuming or closing it from another task would run
   or kill a parked task behind the scheduler's back, and a pooled one runs
   the next tasks. So the runtime marks its coroutines in a weak table
   (thread -> true) once, when it makes them, and coroutine.resume and
   coroutine.close refuse them. Which run a coroutine serves now is not
   marked there: that would be two table writes per task for an error
   message; the message looks for the run instead (find_run_of). */

static const char task_threads_key = 0;

/* Marks co, at the top of L, as the runtime's for good. */
static void mark_thread(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task_threads_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return; /* not guarded (no run started yet): nothing to mark */
  }
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* The task run of a run in progress whose coroutine co is, or NULL (it is
   pooled, or it ran a task that has ended). */
static fl_taskrun *find_run_of(flowlua *rt, const lua_State *co) {
  for (fl_sched *s = rt->active; s; s = s->next_active)
    for (uint32_t i = 0; i < s->g->n; i++) {
      fl_taskrun *r = &s->runs[i];
      if (r->co == co) return r;
      for (uint32_t k = 0; r->map && k < r->map->n; k++)
        if (r->map->children[k].co == co) return &r->map->children[k];
    }
  return NULL;
}

/* Raises when the thread at idx is one of the runtime's task coroutines. */
static void refuse_task_thread(lua_State *L, int idx, const char *fn) {
  if (lua_type(L, idx) != LUA_TTHREAD) return; /* the original complains */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &task_threads_key);
  lua_pushvalue(L, idx);
  int kind = lua_rawget(L, -2);
  fl_taskrun *r =
      kind == LUA_TNIL ? NULL : find_run_of(fl_rt(L), lua_tothread(L, idx));
  if (r) {
    fl_buf key = FL_BUF_INIT;
    fl_taskrun_add_key(&key, r);
    lua_pushstring(L, fl_buf_str(&key));
    fl_buf_free(&key);
    luaL_error(L, "%s: that is the coroutine of task '%s', which flowlua "
                  "runs: only flowlua may resume or close it (do not hand "
                  "coroutine.running() to other code)",
               fn, lua_tostring(L, -1));
  }
  if (kind != LUA_TNIL)
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
void fl__sched_guard_coroutines(lua_State *L) {
  int made = fl_push_weak_table(L, &task_threads_key);
  lua_pop(L, 1);
  if (!made) return; /* guarded already */
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
    mark_thread(s->rt->L);
    r->co_ref = luaL_ref(s->rt->L, LUA_REGISTRYINDEX);
  }
  fl_hook_reset(r->co); /* no hook a previous task (or the script) set */
}

/* Keeps a coroutine that returned normally for reuse; any other (failed,
   or abandoned while suspended) is closed, running its __close handlers. */
static void give_thread(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L, *co = r->co;
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
void fl__sched_release(fl_sched *s, fl_taskrun *r) {
  if (r->timers) fl_timer_stop(&s->rt->loop, &r->timers->deadline);
  if (r->parked && r->wait && r->wait->cancel) r->wait->cancel(r->wait);
  r->wait = NULL;
  if (r->timers) fl_timer_stop(&s->rt->loop, &r->timers->wake);
  r->deadline_at = 0;
  r->parked = 0;
  if (r->co) {
    give_thread(s, r);
    s->running--;
    fl__sched_tags_take(s, fl__sched_run_def(r), -1);
    if (s->tag_wait.head) fl__sched_q_prepend(&s->start_q, &s->tag_wait);
  }
}

static void retry_due(fl_timer *t) {
  fl_taskrun *r = t->data;
  fl__sched_q_push(&r->sched->start_q, r);
}


/* ", worker PID" for the log line of an attempt that ran in a worker
   process, else "". */
static const char *on_worker(const fl_taskrun *r, char *buf, size_t len) {
  if (!r->worker_pid) return "";
  if (r->worker_host) /* a `flowlua worker` of a PostgreSQL queue */
    snprintf(buf, len, ", worker %s:%ld", r->worker_host, (long)r->worker_pid);
  else
    snprintf(buf, len, ", worker %ld", (long)r->worker_pid);
  return buf;
}

void fl__sched_succeed(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L; /* the result is on top of L */
  double now = fl_now(), took = now - r->attempt_start;
  fl__sched_keep_result(s, r);
  fl_record_result(s, r, -1);
  fl_record_cache_put(s, r, -1);
  fl__sched_release(s, r);
  r->state = FLOWLUA_TASK_SUCCESS;
  char w[40];
  /* Looked at here, not only in the call: a task's line wanted by nobody
     (--quiet) was two variadic calls per task for nothing. */
  if (fl_log_enabled(&s->rt->log, FLOWLUA_LOG_INFO))
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_SUCCESS,
                                        took, NULL},
                       "Success (attempt %d, %.3f s%s)", r->attempts, took,
                       on_worker(r, w, sizeof w));
  if (fl__sched_run_def(r)->has_on_success) {
    fl__sched_push_info(L, r, FLOWLUA_TASK_SUCCESS, NULL);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "result");
    fl__sched_call_hook(s, r, FL_TASK_UV_ON_SUCCESS, "on_success");
    now = fl_now(); /* the run ends after its hook */
  }
  lua_pop(L, 1);
  /* Earlier attempts' errors are history (their Retrying changes hold
     them); the run itself succeeded, and finish_run would report r->error. */
  free(r->error);
  r->error = NULL;
  fl__sched_finish_run_at(s, r, FLOWLUA_TASK_SUCCESS, NULL, now);
}

/* Asks retry_if(err) whether to retry; the error value is on top of L. */
static int retry_allowed(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L;
  int err = lua_gettop(L);
  lua_pushcfunction(L, fl_msgh);
  fl__sched_push_task_uv(s, r->node, FL_TASK_UV_RETRY_IF);
  lua_pushvalue(L, err);
  fl_taskrun *saved = s->rt->current;
  s->rt->current = r;
  int ok = lua_pcall(L, 1, 1, err + 1) == LUA_OK;
  s->rt->current = saved;
  int yes = ok && lua_toboolean(L, -1);
  if (!ok)
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_WARN, -1, -1, lua_tostring(L, -1)},
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
  fl_taskdef *d = fl__sched_run_def(r);
  double took = fl_now() - r->attempt_start;
  int retries_left = r->attempts <= d->retry.retries;
  int retry = retryable && retries_left && !s->cancelling &&
              final_state != FLOWLUA_TASK_CANCELLED;
  if (retry && d->has_retry_if) retry = retry_allowed(s, r);
  fl__sched_release(s, r);
  free(r->error);
  r->error = fl__sched_keep_error(s, msg);
  char w[40];
  const char *worker = on_worker(r, w, sizeof w);

  if (final_state == FLOWLUA_TASK_CANCELLED) {
    lua_pop(L, 1);
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_WARN, final_state, took, NULL},
             "Cancelled (attempt %d, %.3f s%s)", r->attempts, took, worker);
    fl__sched_finish_run(s, r, FLOWLUA_TASK_CANCELLED, msg);
    return;
  }
  if (!retry) {
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_ERROR, final_state, took, msg},
             "%s (attempt %d of %d, %.3f s%s)",
             fl_task_state_name(final_state), r->attempts,
             d->retry.retries + 1, took, worker);
    if (d->has_on_failure) {
      fl__sched_push_info(L, r, final_state, msg);
      fl__sched_call_hook(s, r, FL_TASK_UV_ON_FAILURE, "on_failure");
    }
    lua_pop(L, 1);
    fl__sched_finish_run(s, r, final_state, msg);
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
    fl__sched_note_state(s, r, FLOWLUA_TASK_TIMED_OUT, 0, msg);
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_WARN, FLOWLUA_TASK_TIMED_OUT, took,
                              msg},
             "TimedOut (attempt %d of %d)", r->attempts, d->retry.retries + 1);
  }
  r->state = FLOWLUA_TASK_RETRYING;
  fl__sched_note_change(s, r, FLOWLUA_TASK_RETRYING, 0, msg, delay);
  /* Only the first line of the error: the traceback is logged once, with
     the final failure. */
  const char *nl = strchr(msg, '\n');
  int first_len = nl ? (int)(nl - msg) : (int)strlen(msg);
  fl_buf delay_text = FL_BUF_INIT;
  fl_duration_add(&delay_text, delay, FL_DURATION_SECONDS);
  lua_pushlstring(L, msg, (size_t)first_len);
  fl__sched_log_task(s, r,
           (task_log){FLOWLUA_LOG_WARN, FLOWLUA_TASK_RETRYING, took,
                      lua_tostring(L, -1)},
           "Retrying in %s (attempt %d of %d failed after %.3f s%s)",
           fl_buf_str(&delay_text), r->attempts, d->retry.retries + 1, took,
           worker);
  lua_pop(L, 1);
  fl_buf_free(&delay_text);
  if (d->has_on_retry) {
    fl__sched_push_info(L, r, FLOWLUA_TASK_RETRYING, msg);
    lua_pushnumber(L, delay);
    lua_setfield(L, -2, "delay");
    fl__sched_call_hook(s, r, FL_TASK_UV_ON_RETRY, "on_retry");
  }
  lua_pop(L, 1);
  fl_runtimers *t = fl__sched_timers(r);
  if (t) t->wake.cb = retry_due;
  if (!t || fl_timer_start(&s->rt->loop, &t->wake, delay) != 0)
    fl__sched_finish_run(s, r, FLOWLUA_TASK_FAILED, "out of memory arming a retry");
}

/* The attempt was interrupted (timeout or cancel) while parked or by the
   hook; its coroutine is abandoned. */
void fl__sched_end_interrupted(fl_sched *s, fl_taskrun *r) {
  lua_State *L = s->rt->L;
  fl_taskdef *d = fl__sched_run_def(r);
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
  fl_error_traceback(L, r->co, fl_buf_str(&msg), 0);
  fl_buf_reset(&msg);
  fl_buf_adds(&msg, lua_tostring(L, -1));
  lua_pop(L, 1);
  fl__sched_release(s, r);
  lua_gc(L, LUA_GCCOLLECT);
  fail_attempt(s, r, FLOWLUA_TASK_FAILED, fl_buf_str(&msg), 1);
  fl_buf_free(&msg);
  fl_mem_grace(&rt->mem, 0);
}

/* Resumes r's coroutine with nargs values already on its stack, and deals
   with however it stops: done, parked, failed or interrupted. */
void fl__sched_resume(fl_sched *s, fl_taskrun *r, int nargs) {
  lua_State *L = s->rt->L, *co = r->co;
  int nres = 0;
  s->rt->current = r;
  fl_task_gate_enter(s->rt);
  int status = lua_resume(co, L, nargs, &nres);
  fl_task_gate_leave(s->rt);
  s->rt->current = NULL;
  /* A body that returned did its work, even if a cancel came while it ran
     (a pcall in it swallowed the interrupt): it is recorded as it ended,
     so that a resume does not run it again. */
  if (status == LUA_OK && r->interrupt == FL_INT_CANCEL)
    r->interrupt = FL_INT_NONE;
  if (r->interrupt) {
    fl__sched_end_interrupted(s, r);
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
    fl__sched_succeed(s, r);
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
    fl_error_bounded(L, sigmsg, strlen(sigmsg));
    fl__sched_release(s, r);
    fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_SKIPPED, took,
                              NULL},
             "Skipped: %s", lua_tostring(L, -1));
    free(r->error);
    r->error = fl__sched_keep_error(s, lua_tostring(L, -1));
    lua_pop(L, 1);
    fl__sched_finish_run(s, r, FLOWLUA_TASK_SKIPPED, NULL);
    return;
  }
  if (sig == FL_SIGNAL_FAIL) {
    fl_error_bounded(L, sigmsg, strlen(sigmsg));
    fail_attempt(s, r, FLOWLUA_TASK_FAILED, lua_tostring(L, -1), 0);
    return;
  }
  if (sig == FL_SIGNAL_WORKER) { /* the worker's error and traceback */
    fl_error_bounded(L, sigmsg, strlen(sigmsg));
    fail_attempt(s, r, FLOWLUA_TASK_FAILED, lua_tostring(L, -1), 1);
    return;
  }
  const char *msg = fl_error_text(co, -1);
  fl_error_traceback(L, co, msg, 0);
  lua_pop(co, 1);
  lua_xmove(co, L, 1); /* the error value itself, for retry_if */
  lua_insert(L, -2);
  fl_buf text = FL_BUF_INIT;
  fl_buf_adds(&text, lua_tostring(L, -1));
  lua_pop(L, 1);
  fail_attempt(s, r, FLOWLUA_TASK_FAILED, fl_buf_str(&text), 1);
  fl_buf_free(&text);
}

void fl__sched_start_attempt(fl_sched *s, fl_taskrun *r) {
  flowlua *rt = s->rt;
  lua_State *L = rt->L;
  fl_taskdef *d = fl__sched_run_def(r);
  double now = fl_now();
  r->attempts++;
  r->attempt_start = now;
  if (r->attempts == 1) r->first_start = now;
  r->state = FLOWLUA_TASK_RUNNING;
  r->interrupt = FL_INT_NONE;
  r->retry_after = 0;
  r->worker_pid = 0;
  free(r->worker_host);
  r->worker_host = NULL;
  /* A worker task's attempt is Running once a worker takes it
     (fl__sched_worker_took), not while it waits for a free one. */
  if (!d->worker) {
    fl__sched_note_state(s, r, FLOWLUA_TASK_RUNNING, 0, NULL);
    if (fl_log_enabled(&rt->log, FLOWLUA_LOG_INFO)) { /* as in _succeed */
      if (d->retry.retries > 0)
        fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_RUNNING, -1, NULL},
                 "Running (attempt %d of %d)", r->attempts, d->retry.retries + 1);
      else
        fl__sched_log_task(s, r, (task_log){FLOWLUA_LOG_INFO, FLOWLUA_TASK_RUNNING, -1, NULL},
                 "Running");
    }
  }

  take_thread(s, r);
  s->running++;
  fl__sched_tags_take(s, d, +1);

  if (d->worker) {
    /* Its attempt runs in a worker process: the coroutine sends the job
       and waits for the answer (worker_call.c). */
    lua_pushcfunction(L, fl_worker_call);
  } else if (d == s->fn_def) { /* a task's body never changes */
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->fn_ref);
  } else {
    fl__sched_push_task_uv(s, r->node, FL_TASK_UV_FN);
    lua_pushvalue(L, -1);
    lua_rawseti(L, LUA_REGISTRYINDEX, s->fn_ref);
    s->fn_def = d;
  }
  int nargs = r->map_index ? fl__sched_push_map_args(s, &s->runs[r->node], r->map_index)
                           : fl__sched_push_node_args(s, r->node);
  lua_xmove(L, r->co, nargs + 1);

  /* A worker task's timeout counts from when a worker takes the job
     (pool.c), not while it waits for a free worker. */
  if (d->timeout > 0 && !d->worker)
    fl__sched_arm_deadline(&rt->loop, r, now, d->timeout);
  fl__sched_resume(s, r, nargs);
}
