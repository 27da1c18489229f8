/*
 * worker_serve.c — flowlua_worker_serve: the worker side of worker tasks.
 *
 * A worker process loaded the driver's script. Here it says HELLO on its
 * connection, then runs each job (one attempt of one task: its body called
 * in a coroutine, as the engine calls an inline task's) and answers with
 * LOG, SECRET and RESULT frames, until the driver says BYE or closes the
 * connection. The driver keeps graph, retries, timeouts, caching and the
 * history; a worker keeps none of them and has no state store.
 *
 * While a job runs, rt->job (engine.h) stands where a task run would:
 * flow.context(), flow.log, flow.secret and the interrupt hook ask it. The
 * connection is watched the whole time (by the hook every few ms, and by
 * the runtime's loop while a primitive waits in place), so that a CANCEL
 * reaches a job however it is busy; frames read meanwhile stay in the
 * reader for their turn.
 *
 * Must not: run anything but the task's body (no retries, hooks or cache
 * lookups of its own: those are the driver's), or let a job's failure end
 * the worker — only a broken connection does.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine.h"
#include "lflowlua.h"
#include "value_wire.h"
#include "wire.h"

/* How often, at most, the interrupt hook looks at the connection for a
   CANCEL: a poll(2) per FL_HOOK_COUNT instructions would cost more than
   the instructions. */
#define CHECK_EVERY 0.005
/* CANCELs of jobs queued behind the one in progress that a worker keeps
   (the driver queues at most 32 jobs on a worker); one past them is run
   and its answer thrown away by the driver, as before. */
#define CANCELLED_MAX 32
/* LOG frames the driver has not taken yet, past which a job waits for it
   rather than hold them all. */
#define LOG_BACKLOG_MAX ((size_t)4 << 20)

typedef struct worker {
  flowlua *rt;
  int fd;
  fl_wire_reader rd;
  fl_wire_writer wr;
  size_t scanned;   /* bytes after rd.off already looked at for a CANCEL */
  /* CANCELs seen, while a job ran, of jobs queued behind it: they are
     answered without running when their turn comes. */
  uint64_t cancelled[CANCELLED_MAX];
  int n_cancelled;
  int eof;          /* the driver closed the connection */
  int read_failed;  /* reading it failed: rd.err says why */
  int write_failed; /* writing it failed: wr.err says why */
  double next_check; /* monotonic: when the hook may look again */

  /* The job in progress. */
  fl_job job;
  uint64_t job_id;
  int running;
  const fl_wire_job *msg;
  double timeout; /* seconds, 0: none */
  fl_timer deadline;
  fl_buf names;   /* its run id, key and name, each NUL-terminated */
  int outcome;    /* fl_wire_outcome */
  fl_buf value, message, traceback, why;

  fl_buf frame;   /* the JOB or JOBS payload being run, out of the reader */
  lua_State *co;  /* the body's coroutine, kept while jobs end cleanly */
  int co_ref;
  fl_buf params;  /* the bytes params_ref was decoded from */
  int params_ref;
  size_t base_limit; /* the runtime's own memory limit */
} worker;

static worker *worker_of(fl_job *j) {
  return (worker *)(void *)((char *)j - offsetof(worker, job));
}

/* ---- the connection while a job runs ------------------------------------ */

/* Stops the job in progress (the hook interrupts its Lua code; a primitive
   waiting in place sees fl_cancelling). */
static void stop_job(worker *w, int why) {
  if (!w->running) return;
  if (!w->job.interrupt) w->job.interrupt = (uint8_t)why;
  w->rt->cancel_current = 1;
}

/* Looks through the frames read since the last look for a CANCEL of the
   job in progress. They stay in the reader: a CANCEL of another job is
   ignored when its turn comes, the rest are run then. */
static void scan_for_cancel(worker *w) {
  size_t saved = w->rd.off;
  w->rd.off += w->scanned;
  fl_wire_frame f;
  while (fl_wire_reader_next(&w->rd, &f) == 1) {
    uint64_t id;
    char err[FL_WIRE_ERR_MAX];
    if (f.type != FL_WIRE_CANCEL || fl_wire_get_cancel(&f, &id, err) != 0)
      continue;
    if (id == w->job_id)
      stop_job(w, FL_INT_CANCEL);
    else if (id > w->job_id && w->n_cancelled < CANCELLED_MAX)
      w->cancelled[w->n_cancelled++] = id; /* queued behind: see run_job */
  }
  /* A bad frame leaves the reader failed: the main loop reports it. */
  w->scanned = w->rd.off - saved;
  w->rd.off = saved;
}

/* Reads what the driver sent. The driver gone (end of file, an error)
   stops the job in progress: nobody waits for its result. */
static void read_driver(worker *w) {
  if (w->eof || w->read_failed || w->rd.failed) return;
  int k = fl_wire_reader_fill(&w->rd, w->fd);
  if (k <= 0) {
    if (k == 0) w->eof = 1;
    else w->read_failed = 1;
    fl_loop_unwatch(&w->rt->loop, w->fd); /* readable for ever now */
    stop_job(w, FL_INT_CANCEL);
  }
  if (w->running) scan_for_cancel(w);
}

static void on_readable(int fd, uint32_t events, void *data) {
  (void)fd, (void)events;
  read_driver(data);
}

/* The interrupt hook's question, every FL_HOOK_COUNT instructions. */
static void job_check(fl_job *j) {
  worker *w = worker_of(j);
  double now = fl_now();
  if (now < w->next_check) return;
  w->next_check = now + CHECK_EVERY;
  struct pollfd p = {.fd = w->fd, .events = POLLIN};
  if (poll(&p, 1, 0) > 0) read_driver(w);
}

static void deadline_hit(fl_timer *t) { stop_job(t->data, FL_INT_TIMEOUT); }

/* Writes every frame waiting, waiting for the connection as needed; what
   the driver sends meanwhile is read, so that neither end can wait on the
   other's full buffer. 0, or -1 with write_failed set (wr.err). */
static int flush_all(worker *w) {
  while (!w->write_failed) {
    int k = fl_wire_writer_flush(&w->wr, w->fd);
    if (k == 1) return 0;
    if (k < 0) {
      w->write_failed = 1;
      break;
    }
    int reading = !(w->eof || w->read_failed || w->rd.failed);
    struct pollfd p = {.fd = w->fd, .events = POLLOUT | (reading ? POLLIN : 0)};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) {
      snprintf(w->wr.err, sizeof w->wr.err,
               "waiting to write to the driver: %s", strerror(errno));
      w->write_failed = 1;
      break;
    }
    if (p.revents & POLLIN) read_driver(w);
  }
  return -1;
}

/* flow.log in a job: a LOG frame, written now if the connection takes it. */
static void job_log(fl_job *j, int level, const char *text) {
  worker *w = worker_of(j);
  if (w->write_failed || w->eof) return;
  fl_wire_log m = {w->job_id, level, {text, strlen(text)}};
  /* A line over the frame limit is lost, not the job. */
  if (fl_wire_put_log(&w->wr.out, &m, NULL) != 0 && !w->wr.out.oom) return;
  int k = fl_wire_writer_flush(&w->wr, w->fd);
  if (k == 0 && fl_wire_writer_pending(&w->wr) > LOG_BACKLOG_MAX) k = flush_all(w);
  if (k < 0) {
    w->write_failed = 1;
    stop_job(w, FL_INT_CANCEL);
  }
}

/* flow.secret in a job: a SECRET frame, ahead of every later LOG and
   RESULT of the job since frames leave in order. */
static void job_secret(fl_job *j, const char *value) {
  worker *w = worker_of(j);
  fl_wire_secret m = {w->job_id, {value, strlen(value)}};
  fl_wire_put_secret(&w->wr.out, &m, NULL); /* no memory: the flush says so */
}

/* ---- one job ------------------------------------------------------------- */

static void set_outcome(worker *w, int outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_outcome(worker *w, int outcome, const char *fmt, ...) {
  w->outcome = outcome;
  fl_buf_reset(&w->message);
  va_list ap;
  va_start(ap, fmt);
  fl_buf_addvf(&w->message, fmt, ap);
  va_end(ap);
}

/* The body's coroutine: the last one again when its job ended cleanly. */
static lua_State *take_thread(worker *w, lua_State *L) {
  if (!w->co) {
    lua_State *co = lua_newthread(L);
    w->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    w->co = co;
  }
  lua_settop(w->co, 0);
  fl_hook_reset(w->co); /* no hook a previous job set */
  return w->co;
}

/* Drops a coroutine that did not end cleanly (failed, interrupted while
   suspended), running its pending __close handlers. */
static void drop_thread(worker *w, lua_State *L) {
  if (!w->co) return;
  lua_Debug ar;
  if (lua_status(w->co) == LUA_OK && !lua_getstack(w->co, 0, &ar)) return;
  fl_closethread(w->co, L);
  luaL_unref(L, LUA_REGISTRYINDEX, w->co_ref);
  w->co = NULL;
  w->co_ref = LUA_NOREF;
}

/* Pushes nothing; sets job.params_ref to the job's params, decoded once
   for as long as the driver sends the same bytes (a run's params). 0, or
   -1 with the outcome set. */
static int load_params(worker *w, lua_State *L) {
  const fl_wire_bytes *p = &w->msg->params;
  w->job.params_ref = LUA_NOREF;
  if (p->n == 0) return 0;
  if (w->params_ref != LUA_NOREF && w->params.len == p->n &&
      memcmp(w->params.data, p->p, p->n) == 0) {
    w->job.params_ref = w->params_ref;
    return 0;
  }
  fl_buf_reset(&w->why);
  if (fl_wire_decode_lua(L, p->p, p->n, &w->why) != 0) {
    set_outcome(w, FL_WIRE_FAILED, "worker: the params of task '%s' cannot "
                                   "be read: %s",
                w->job.task_key, fl_buf_str(&w->why));
    return -1;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, w->params_ref);
  w->params_ref = LUA_NOREF;
  fl_buf_reset(&w->params);
  fl_buf_add(&w->params, p->p, p->n);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (w->params.oom) fl_buf_free(&w->params); /* used once, not kept */
  w->params_ref = ref;
  w->job.params_ref = ref;
  return 0;
}

/* A body that ran out of memory: the limit (or malloc) refused an
   allocation. The message and the traceback are made within the grace
   allowance, then its coroutine is closed and a full collection frees
   what it held, so that the next job finds the heap as the job found it. */
static void failed_for_memory(worker *w, lua_State *L) {
  flowlua *rt = w->rt;
  fl_mem_grace(&rt->mem, 1);
  char size[32];
  if (fl_mem_take_hit(&rt->mem) && rt->mem.limit)
    set_outcome(w, FL_WIRE_FAILED, "memory limit of %s reached in task '%s'",
                fl_mem_format(rt->mem.limit, size, sizeof size),
                w->job.task_key);
  else
    set_outcome(w, FL_WIRE_FAILED, "out of memory in task '%s'", w->job.task_key);
  luaL_traceback(L, w->co, NULL, 0);
  size_t n;
  const char *trace = lua_tolstring(L, -1, &n);
  fl_buf_add_bounded(&w->traceback, trace, n, FL_ERROR_HEAD, FL_ERROR_TAIL);
  lua_pop(L, 1);
  drop_thread(w, L);
  lua_gc(L, LUA_GCCOLLECT);
  fl_mem_grace(&rt->mem, 0);
}

/* An error raised by the body, on top of co: flow.fail, flow.skip, or any
   other with its message and the traceback of where it was raised. */
static void failed_with_error(worker *w, lua_State *L, lua_State *co) {
  const char *sigmsg = NULL;
  int sig = fl_signal_kind(co, -1, &sigmsg);
  if (sig) {
    w->outcome = sig == FL_SIGNAL_SKIP ? FL_WIRE_SKIPPED : FL_WIRE_FAILED_FINAL;
    fl_buf_reset(&w->message);
    fl_buf_add_bounded(&w->message, sigmsg, strlen(sigmsg), FL_ERROR_HEAD,
                       FL_ERROR_TAIL);
    return;
  }
  size_t n;
  const char *msg = fl_error_text(co, -1);
  w->outcome = FL_WIRE_FAILED;
  fl_buf_reset(&w->message);
  fl_buf_adds(&w->message, msg);
  luaL_traceback(L, co, NULL, 0);
  const char *trace = lua_tolstring(L, -1, &n);
  fl_buf_add_bounded(&w->traceback, trace, n, FL_ERROR_HEAD, FL_ERROR_TAIL);
  lua_pop(L, 1);
}

/* How the body's coroutine stopped (status st, nres results on co), as
   the engine reads an inline attempt's (attempt.c, fl__sched_resume). */
static void read_outcome(worker *w, lua_State *L, lua_State *co, int st,
                         int nres) {
  int why = w->job.interrupt;
  /* A body that returned did its work, even if a cancel came meanwhile. */
  if (st == LUA_OK && why == FL_INT_CANCEL) why = FL_INT_NONE;
  if (why == FL_INT_TIMEOUT) {
    set_outcome(w, FL_WIRE_FAILED,
                "task '%s' timed out: attempt %lld ran longer than %g s",
                w->job.task_name, (long long)w->job.attempt, w->timeout);
  } else if (why == FL_INT_CANCEL) {
    set_outcome(w, FL_WIRE_FAILED, "%s",
                w->rt->cancel_requested ? "cancelled: the worker was stopped"
                                        : "cancelled by the driver");
  } else if (st == LUA_YIELD) {
    set_outcome(w, FL_WIRE_FAILED,
                "task yielded outside flowlua's waiting primitives "
                "(coroutine.yield in a task body?)");
  } else if (st == LUA_OK) {
    if (nres > 0) {
      lua_settop(co, lua_gettop(co) - nres + 1);
      lua_xmove(co, L, 1);
    } else {
      lua_pushnil(L);
    }
    fl_buf_reset(&w->why);
    if (fl_wire_encode_lua(L, -1, "result", &w->value, &w->why) == 0)
      w->outcome = FL_WIRE_SUCCESS;
    else
      set_outcome(w, FL_WIRE_FAILED, "task '%s': %s", w->job.task_key,
                  fl_buf_str(&w->why));
    lua_pop(L, 1);
  } else if (st == LUA_ERRMEM) {
    failed_for_memory(w, L);
  } else {
    failed_with_error(w, L, co);
  }
}

/* The job, in a protected call (argument 1: the worker): whatever fails
   here for memory outside the body fails the job, not the worker. */
static int job_protected(lua_State *L) {
  worker *w = lua_touserdata(L, 1);
  flowlua *rt = w->rt;
  const fl_wire_job *m = w->msg;
  lua_settop(L, 0);
  if (memchr(m->task_name.p, '\0', m->task_name.n) ||
      !fl_push_defined_task(L, w->job.task_name)) {
    set_outcome(w, FL_WIRE_FAILED,
                "worker: task '%s' is not defined by %s (was the script "
                "changed?)",
                w->job.task_name, rt->script_name);
    return 0;
  }
  lua_getiuservalue(L, 1, FL_TASK_UV_FN);
  lua_remove(L, 1);
  if (load_params(w, L) != 0) return 0;
  int nargs = 0;
  fl_buf_reset(&w->why);
  if (fl_wire_decode_lua_args(L, m->args.p, m->args.n, &nargs, &w->why) != 0) {
    set_outcome(w, FL_WIRE_FAILED, "worker: the arguments of task '%s' "
                                   "cannot be read: %s",
                w->job.task_key, fl_buf_str(&w->why));
    return 0;
  }
  lua_State *co = take_thread(w, L);
  lua_xmove(L, co, nargs + 1);

  w->job.co = co;
  w->job.interrupt = FL_INT_NONE;
  w->next_check = fl_now() + CHECK_EVERY;
  if (w->timeout > 0) {
    w->job.deadline_at = fl_now() + w->timeout;
    fl_timer_start(&rt->loop, &w->deadline, w->timeout);
  }
  w->running = 1;
  rt->job = &w->job;
  int nres = 0;
  int st = lua_resume(co, L, nargs, &nres);
  rt->job = NULL;
  w->running = 0;
  rt->cancel_current = 0; /* before a __close handler runs (drop_thread) */
  fl_timer_stop(&rt->loop, &w->deadline);
  read_outcome(w, L, co, st, nres);
  drop_thread(w, L);
  return 0;
}

/* Fills w->job from the JOB message; -1 when memory ran out. */
static int set_job(worker *w, const fl_wire_job *m) {
  fl_buf *b = &w->names;
  fl_buf_reset(b);
  fl_buf_add(b, m->run_id.p, m->run_id.n);
  fl_buf_addc(b, '\0');
  fl_buf_add(b, m->task_key.p, m->task_key.n);
  fl_buf_addc(b, '\0');
  fl_buf_add(b, m->task_name.p, m->task_name.n);
  fl_buf_addc(b, '\0');
  fl_buf_add(b, m->flow.p, m->flow.n);
  fl_buf_addc(b, '\0');
  if (b->oom) return -1;
  size_t flow_at = m->run_id.n + m->task_key.n + m->task_name.n + 3;
  w->job = (fl_job){.run_id = b->data,
                    .task_key = b->data + m->run_id.n + 1,
                    .task_name = b->data + m->run_id.n + m->task_key.n + 2,
                    .flow = b->data + flow_at,
                    .scheduled_at = m->scheduled_at,
                    .started_at = m->started_at,
                    .map_index = m->map_index,
                    .attempt = (int64_t)m->attempt,
                    .params_ref = LUA_NOREF,
                    .check = job_check,
                    .log = job_log,
                    .secret = job_secret};
  w->msg = m;
  w->job_id = m->job_id;
  w->timeout = (double)m->timeout_ms / 1000.0;
  return 0;
}

/* Runs one job and sends its RESULT. 0, or -1 when the connection failed
   (write_failed). */
/* Whether the driver cancelled job id while it waited behind another
   (forgotten once asked). */
static int take_cancelled(worker *w, uint64_t id) {
  for (int i = 0; i < w->n_cancelled; i++)
    if (w->cancelled[i] == id) {
      w->cancelled[i] = w->cancelled[--w->n_cancelled];
      return 1;
    }
  return 0;
}

static int run_job(worker *w, const fl_wire_job *m) {
  flowlua *rt = w->rt;
  lua_State *L = rt->L;
  w->outcome = FL_WIRE_FAILED;
  fl_buf_reset(&w->value);
  fl_buf_reset(&w->message);
  fl_buf_reset(&w->traceback);
  if (take_cancelled(w, m->job_id)) {
    w->job_id = m->job_id;
    set_outcome(w, FL_WIRE_FAILED, "cancelled by the driver (before it started)");
  } else if (set_job(w, m) != 0) {
    w->job_id = m->job_id;
    set_outcome(w, FL_WIRE_FAILED, "worker: out of memory starting job %llu",
                (unsigned long long)m->job_id);
  } else {
    size_t limit = w->base_limit;
    if (m->memory_limit && (!limit || m->memory_limit < limit))
      limit = (size_t)m->memory_limit;
    fl_mem_take_hit(&rt->mem);
    rt->mem.limit = limit;
    int top = lua_gettop(L);
    lua_pushcfunction(L, job_protected);
    lua_pushlightuserdata(L, w);
    int st = lua_pcall(L, 1, 0, 0);
    if (st != LUA_OK) {
      /* Outside the body (its arguments, its coroutine, its error's
         text): the job fails, named as the body's own failure would be. */
      char size[32];
      rt->job = NULL;
      w->running = 0;
      rt->cancel_current = 0;
      fl_timer_stop(&rt->loop, &w->deadline);
      fl_buf_reset(&w->value);
      fl_buf_reset(&w->traceback);
      if (st == LUA_ERRMEM && fl_mem_take_hit(&rt->mem) && rt->mem.limit)
        set_outcome(w, FL_WIRE_FAILED, "memory limit of %s reached in task '%s'",
                    fl_mem_format(rt->mem.limit, size, sizeof size),
                    w->job.task_key);
      else if (st == LUA_ERRMEM)
        set_outcome(w, FL_WIRE_FAILED, "out of memory in task '%s'", w->job.task_key);
      else
        set_outcome(w, FL_WIRE_FAILED, "worker: task '%s': %s", w->job.task_key,
                    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error");
      lua_settop(L, top);
      fl_mem_grace(&rt->mem, 1);
      drop_thread(w, L);
      lua_gc(L, LUA_GCCOLLECT);
      fl_mem_grace(&rt->mem, 0);
    }
    lua_settop(L, top);
    rt->mem.limit = w->base_limit;
  }
  if (w->eof || w->read_failed) return 0; /* nobody to tell */
  static const char oom[] = "worker: out of memory reporting the outcome";
  fl_wire_result r = {.job_id = w->job_id, .outcome = w->outcome};
  /* fl_buf_str: never a NULL pointer, even for an empty buffer. */
  if (w->outcome == FL_WIRE_SUCCESS) {
    r.value = (fl_wire_bytes){fl_buf_str(&w->value), w->value.len};
  } else if (w->message.oom || w->traceback.oom) {
    r.outcome = FL_WIRE_FAILED;
    r.message = (fl_wire_bytes){oom, sizeof oom - 1};
  } else {
    r.message = (fl_wire_bytes){fl_buf_str(&w->message), w->message.len};
    r.traceback = (fl_wire_bytes){fl_buf_str(&w->traceback), w->traceback.len};
  }
  char err[FL_WIRE_ERR_MAX];
  if (fl_wire_put_result(&w->wr.out, &r, err) != 0 && !w->wr.out.oom) {
    /* Over the frame limit (a result of 256 MiB and more): a failure. */
    fl_wire_result too_big = {.job_id = w->job_id, .outcome = FL_WIRE_FAILED,
                              .message = {err, strlen(err)}};
    fl_wire_put_result(&w->wr.out, &too_big, NULL);
  }
  return flush_all(w);
}

/* ---- serving ------------------------------------------------------------- */

static int protocol_error(worker *w, const char *what, const char *err) {
  fl_set_error(w->rt, "worker: %s: %s", what, err);
  return FLOWLUA_EIO;
}

static int connection_error(worker *w) {
  if (w->write_failed)
    return protocol_error(w, "the connection to the driver", w->wr.err);
  return protocol_error(w, "the connection to the driver", w->rd.err);
}

/* Whether the host asked the runtime to stop (flowlua_stop, _cancel, a
   flowlua_free from a callback): then serving ends between jobs. */
static int asked_to_stop(const worker *w) {
  return w->rt->stop_requested || w->rt->cancel_requested;
}

/* Runs the job(s) of a JOB or JOBS frame, copied out of the reader first
   (reading more while a job runs may move the reader's bytes). */
static int run_frame(worker *w, const fl_wire_frame *f) {
  char err[FL_WIRE_ERR_MAX];
  fl_buf_reset(&w->frame);
  fl_buf_add(&w->frame, f->payload, f->len);
  if (w->frame.oom)
    return protocol_error(w, "a job frame", "out of memory copying it");
  fl_wire_frame own = {f->type, w->frame.data, f->len};
  fl_wire_job m;
  if (f->type == FL_WIRE_JOB) {
    if (fl_wire_get_job(&own, &m, err) != 0)
      return protocol_error(w, "a JOB frame from the driver", err);
    return run_job(w, &m) == 0 ? FLOWLUA_OK : connection_error(w);
  }
  fl_wire_jobs_iter it;
  if (fl_wire_jobs_open(&it, &own) != 0)
    return protocol_error(w, "a JOBS frame from the driver", it.in.err);
  int k;
  while ((k = fl_wire_jobs_next(&it, &m)) == 1) {
    if (run_job(w, &m) != 0) return connection_error(w);
    if (w->eof || w->read_failed || asked_to_stop(w)) return FLOWLUA_OK;
  }
  if (k < 0) return protocol_error(w, "a JOBS frame from the driver", it.in.err);
  return FLOWLUA_OK;
}

static int say_hello(worker *w) {
  char runtime[64];
  snprintf(runtime, sizeof runtime, "flowlua %s, %s", FLOWLUA_VERSION, LUA_RELEASE);
  const char *sha = fl_script_sha256(w->rt);
  fl_wire_hello h = {.version = FL_WIRE_VERSION,
                     .pid = (int64_t)getpid(),
                     .script_sha256 = {sha, strlen(sha)},
                     .runtime = {runtime, strlen(runtime)}};
  char err[FL_WIRE_ERR_MAX];
  if (fl_wire_put_hello(&w->wr.out, &h, err) != 0)
    return protocol_error(w, "HELLO", err);
  return flush_all(w) == 0 ? FLOWLUA_OK : connection_error(w);
}

/* Says BYE back, as far as the connection takes it: the driver then
   knows the worker left on purpose. */
static int say_bye(worker *w) {
  if (!w->write_failed && !w->eof && fl_wire_put_bye(&w->wr.out, NULL) == 0)
    flush_all(w);
  return FLOWLUA_OK;
}

/* One frame from the driver. FLOWLUA_OK to go on, 1 to stop serving (BYE),
   or an error. */
static int handle_frame(worker *w, const fl_wire_frame *f) {
  char err[FL_WIRE_ERR_MAX];
  uint64_t id;
  switch (f->type) {
  case FL_WIRE_JOB:
  case FL_WIRE_JOBS:
    return run_frame(w, f);
  case FL_WIRE_CANCEL: /* of a job that is not running (any more): nothing */
    if (fl_wire_get_cancel(f, &id, err) != 0)
      return protocol_error(w, "a CANCEL frame from the driver", err);
    return FLOWLUA_OK;
  case FL_WIRE_BYE:
    if (fl_wire_get_bye(f, err) != 0)
      return protocol_error(w, "a BYE frame from the driver", err);
    return 1;
  default:
    snprintf(err, sizeof err, "a %s frame (a worker takes JOB, JOBS, CANCEL "
                              "and BYE)",
             fl_wire_type_name(f->type));
    return protocol_error(w, "unexpected frame from the driver", err);
  }
}

static int serve_frames(worker *w) {
  int rc = say_hello(w);
  while (rc == FLOWLUA_OK) {
    if (asked_to_stop(w)) return say_bye(w);
    if (w->read_failed) return connection_error(w);
    fl_wire_frame f;
    if (w->eof) {
      /* The driver closed the connection: nothing more is run, but what
         it sent must have been whole frames. */
      int k;
      while ((k = fl_wire_reader_next(&w->rd, &f)) == 1) {
      }
      if (k < 0 || fl_wire_reader_at_eof(&w->rd) != 0)
        return protocol_error(w, "the connection to the driver", w->rd.err);
      return FLOWLUA_OK;
    }
    size_t before = w->rd.off;
    int k = fl_wire_reader_next(&w->rd, &f);
    if (k < 0) return protocol_error(w, "the bytes from the driver", w->rd.err);
    if (k == 1) {
      size_t used = w->rd.off - before;
      w->scanned = w->scanned > used ? w->scanned - used : 0;
      rc = handle_frame(w, &f);
      if (rc == 1) return say_bye(w);
      continue;
    }
    /* Idle: a little of the garbage the jobs left, then wait. */
    lua_gc(w->rt->L, LUA_GCSTEP, 0);
    if (fl_loop_poll(&w->rt->loop, -1) < 0)
      return protocol_error(w, "waiting for the driver", strerror(errno));
  }
  return rc;
}

static void worker_free(worker *w) {
  lua_State *L = w->rt->L;
  if (w->co) {
    fl_closethread(w->co, L);
    luaL_unref(L, LUA_REGISTRYINDEX, w->co_ref);
  }
  luaL_unref(L, LUA_REGISTRYINDEX, w->params_ref);
  fl_wire_reader_free(&w->rd);
  fl_wire_writer_free(&w->wr);
  fl_buf_free(&w->names);
  fl_buf_free(&w->value);
  fl_buf_free(&w->message);
  fl_buf_free(&w->traceback);
  fl_buf_free(&w->why);
  fl_buf_free(&w->frame);
  fl_buf_free(&w->params);
}

static int serve(flowlua *rt, int fd) {
  if (fd < 0) {
    fl_set_error(rt, "flowlua_worker_serve: no connection (fd %d)", fd);
    return FLOWLUA_EINVAL;
  }
  if (rt->flows_ref == LUA_NOREF) {
    fl_set_error(rt, "flowlua_worker_serve: no script loaded (call "
                     "flowlua_load_file first)");
    return FLOWLUA_ESTATE;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    fl_set_error(rt, "flowlua_worker_serve: fd %d: %s", fd, strerror(errno));
    return FLOWLUA_EINVAL;
  }
  worker *w = calloc(1, sizeof *w);
  if (!w) {
    fcntl(fd, F_SETFL, flags);
    fl_set_error(rt, "flowlua_worker_serve: out of memory");
    return FLOWLUA_ENOMEM;
  }
  w->rt = rt;
  w->fd = fd;
  w->co_ref = w->params_ref = LUA_NOREF;
  w->base_limit = rt->mem.limit;
  rt->cancel_current = 0;
  fl_wire_reader_init(&w->rd);
  fl_wire_writer_init(&w->wr);
  fl_timer_init(&w->deadline, deadline_hit, w);
  int rc;
  if (fl_loop_watch(&rt->loop, fd, EPOLLIN, on_readable, w) != 0) {
    fl_set_error(rt, "flowlua_worker_serve: fd %d cannot be waited on "
                     "(not a socket or a pipe?)",
                 fd);
    rc = FLOWLUA_EIO;
  } else {
    rc = serve_frames(w);
    fl_loop_unwatch(&rt->loop, fd);
  }
  worker_free(w);
  free(w);
  fcntl(fd, F_SETFL, flags);
  return rc;
}

int flowlua_worker_serve(flowlua *rt, int fd) {
  if (!rt) return FLOWLUA_EINVAL;
  int rc = fl_api_enter(rt, "flowlua_worker_serve", FL_API_RUN);
  if (rc) return rc;
  if (fl_host_run_going(rt, "flowlua_worker_serve"))
    return fl_api_leave(rt, FLOWLUA_ESTATE);
  fl_buf_reset(&rt->err);
  rc = serve(rt, fd);
  return fl_api_leave(rt, rc);
}
