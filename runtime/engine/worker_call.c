/*
 * worker_call.c — a worker task's attempt as the driver runs it.
 *
 * The attempt's coroutine runs fl_worker_call in place of the task's body,
 * with the same arguments: it turns them into wire values (refusing, with
 * the path, what cannot cross: nothing is sent then), submits the job to
 * the pool and parks the coroutine until the worker answers. The answer
 * comes back as the body's own would: a result, an error with the
 * worker's traceback (retries apply), flow.fail, flow.skip. Timeouts and
 * cancels end the wait like any parked primitive's (the pool then tells
 * the worker, and kills it when it does not stop).
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "pool.h"
#include "queue.h"
#include "sched_internal.h"
#include "value_wire.h"

/* Raises the job's failure (the job is freed first: lua_error does not
   return). */
static int raise_failure(lua_State *L, fl_pool_job *job, int kind) {
  fl_buf text = FL_BUF_INIT;
  fl_buf_add(&text, job->message.data ? job->message.data : "", job->message.len);
  if (job->traceback.len) {
    fl_buf_addc(&text, '\n');
    fl_buf_add(&text, job->traceback.data, job->traceback.len);
  }
  fl_pool_job_free(job);
  /* The text goes onto the Lua stack before the buffer is freed. */
  lua_pushlstring(L, text.oom ? "a worker task failed (out of memory for "
                                "its message)"
                              : fl_buf_str(&text),
                  text.oom ? 40 : text.len);
  fl_buf_free(&text);
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  return fl_raise_signal(L, kind, s, n);
}

/* After the wait: the worker's answer, as the body's return or error. */
static int worker_answer(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  fl_pool_job *job = (fl_pool_job *)ctx;
  /* The worker stops an attempt at its own deadline, at about the time
     the driver's fires: a failure that comes after the deadline is the
     timeout, whichever end saw it first. */
  fl_taskrun *r = job->run;
  if (job->outcome != FL_WIRE_SUCCESS && r && r->deadline_at > 0 &&
      fl_now() >= r->deadline_at - 0.005)
    r->interrupt = FL_INT_TIMEOUT;
  switch (job->outcome) {
  case FL_WIRE_SUCCESS: {
    if (r) r->secret_result = job->holds_secret;
    fl_buf why = FL_BUF_INIT;
    int rc = fl_wire_decode_lua(L, job->value.data, job->value.len, &why);
    fl_pool_job_free(job);
    if (rc != 0) {
      lua_pushfstring(L, "the worker's result cannot be read: %s",
                      fl_buf_str(&why));
      fl_buf_free(&why);
      return lua_error(L);
    }
    fl_buf_free(&why);
    return 1;
  }
  case FL_WIRE_SKIPPED:
    return raise_failure(L, job, FL_SIGNAL_SKIP);
  case FL_WIRE_FAILED_FINAL:
    return raise_failure(L, job, FL_SIGNAL_FAIL);
  default: /* FL_WIRE_FAILED, FL_PJOB_LOST */
    return raise_failure(L, job, FL_SIGNAL_WORKER);
  }
}

int fl_worker_call(lua_State *L) {
  flowlua *rt = fl_rt(L);
  fl_taskrun *r = fl_sched_parkable(L);
  int nargs = lua_gettop(L);
  if (!r) return luaL_error(L, "a worker task can only run as a task of a run");
  const fl_taskdef *d = fl__sched_run_def(r);
  fl_sched *s = r->sched;
  fl_buf args = FL_BUF_INIT, params = FL_BUF_INIT, why = FL_BUF_INIT,
         key = FL_BUF_INIT;
  int rc = fl_wire_encode_lua_args(L, 1, nargs, &args, &why);
  if (rc == 0) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->g->params_ref);
    rc = fl_wire_encode_lua(L, -1, "params", &params, &why);
    lua_pop(L, 1);
  }
  if (rc != 0) {
    lua_pushfstring(L, "task '%s': %s (nothing was sent to a worker)",
                    d->name, fl_buf_str(&why));
    fl_buf_free(&args);
    fl_buf_free(&params);
    fl_buf_free(&why);
    return lua_error(L);
  }
  fl_buf_free(&why);
  fl_taskrun_add_key(&key, r);
  fl_pool_job *job = calloc(1, sizeof *job);
  fl_wire_job m = {
      .run_id = {s->run_id, strlen(s->run_id)},
      .task_key = {fl_buf_str(&key), key.len},
      .task_name = {d->name, strlen(d->name)},
      .map_index = r->map_index,
      .attempt = (uint64_t)r->attempts,
      .timeout_ms = d->timeout > 0 ? (uint64_t)(d->timeout * 1000.0) : 0,
      .memory_limit = rt->opts.memory_limit,
      .args = {args.data, args.len},
      .params = {params.data, params.len},
      .flow = {s->g->flow->name, strlen(s->g->flow->name)},
      .scheduled_at = s->scheduled_at,
      .started_at = s->started_wall};
  /* The run is the job's before it is submitted: a job that fails at once
     (no worker could start) is answered inside fl_pool_submit. */
  if (job) {
    job->run = r;
    job->timeout = d->timeout;
  }
  /* With a PostgreSQL history the job goes through its queue, to any
     `flowlua worker` serving it; else to this host's pool. */
  int status = !job                  ? FLOWLUA_ENOMEM
               : fl_queue_in_use(rt) ? fl_queue_submit(rt, job, &m, d)
                                     : fl_pool_submit(rt, job, &m);
  fl_buf_free(&args);
  fl_buf_free(&params);
  fl_buf_free(&key);
  if (status != FLOWLUA_OK) {
    fl_pool_job_free(job);
    if (status == FLOWLUA_ENOMEM && !job)
      return luaL_error(L, "task '%s': out of memory for its job", d->name);
    lua_pushfstring(L, "task '%s': %s", d->name, fl_buf_str(&rt->err));
    return lua_error(L);
  }
  if (job->state == FL_PJOB_DONE) return worker_answer(L, LUA_OK, (lua_KContext)job);
  return fl_sched_park(L, r, &job->wait, (lua_KContext)job, worker_answer);
}
