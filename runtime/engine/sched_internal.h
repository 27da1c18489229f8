/*
 * sched_internal.h — what the files of the scheduler share, each using
 * only those listed before it: taskrun.c (state changes, queues, logs,
 * hooks, tag limits), args.c (results in, arguments out), settle.c (a task
 * run that is final releases what waits on it; maps expand), attempt.c
 * (one attempt of a task in its coroutine, parking, timeouts) and sched.c
 * (cancellation and the run loop). Private to those files.
 */
#ifndef FL_SCHED_INTERNAL_H
#define FL_SCHED_INTERNAL_H

#include <lua.h>

#include "engine.h"

/* Coroutines kept for reuse per run (creating one is most of a no-op
   task's cost). */
#define FL_POOL_MAX 64

/* What a task's log line says beside its message. */
typedef struct task_log {
  int level, state;
  double duration;
  const char *error;
} task_log;

/* taskrun.c */
/* Pushes user value uv (FL_TASK_UV_*: its body, hooks...) of the task that
   graph node `node` calls. */
void fl__sched_push_task_uv(fl_sched *s, uint32_t node, int uv);
/* r's timers, made on first use (their data is r); NULL when out of
   memory. fl__sched_free_timers stops and frees them. */
fl_runtimers *fl__sched_timers(fl_taskrun *r);
void fl__sched_free_timers(fl_loop *loop, fl_taskrun *r);
/* The attempt's deadline: now + timeout, when its timer ends it if it is
   parked (the count hook ends it if it is busy in Lua code). */
void fl__sched_arm_deadline(fl_loop *loop, fl_taskrun *r, double now,
                            double timeout);
void fl__sched_call_hook(fl_sched *s, fl_taskrun *r, int uv, const char *name);
int fl__sched_is_ok_state(int state);
char *fl__sched_keep_error(fl_sched *s, const char *msg);
void fl__sched_log_task(fl_sched *s, fl_taskrun *r, task_log tl, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void fl__sched_note_change(fl_sched *s, fl_taskrun *r, int state, int final, const char *err, double retry_delay);
void fl__sched_note_state(fl_sched *s, fl_taskrun *r, int state, int final, const char *err);
void fl__sched_push_info(lua_State *L, fl_taskrun *r, int state, const char *error);
void fl__sched_push_key(lua_State *L, const fl_taskrun *r);
void fl__sched_q_prepend(fl_runq *dst, fl_runq *src);
void fl__sched_q_push(fl_runq *q, fl_taskrun *r);
fl_taskrun *fl__sched_q_pop(fl_runq *q);
void fl__sched_emit(fl_sched *s, const char *task, int task_state,
                    int flow_state, int attempt, const char *err,
                    double retry_delay, long worker_pid);
void fl__sched_worker_took(fl_taskrun *r);
/* flow_hooks.c: the flow's hook for how the run ended (on_success,
   on_failure, on_cancel), called with the run's summary. */
void fl__sched_flow_hook(fl_sched *s);
void fl__sched_log_flow(fl_sched *s, int level, int flow_state,
                        double duration, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int fl__sched_tags_available(fl_sched *s, const fl_taskdef *d);
/* The task r runs: inline, as the scheduler asks for it several times
   per task (tags, cache, hooks), each a call into another file before. */
static inline fl_taskdef *fl__sched_run_def(const fl_taskrun *r) {
  return r->sched->g->nodes[r->node].def;
}
void fl__sched_tags_take(fl_sched *s, const fl_taskdef *d, int delta);

/* args.c: pushes the value at idx with every node of s's graph in it
   replaced by its result (inside plain tables and flow.unmapped too). */
void fl__sched_push_resolved(fl_sched *s, int idx);

/* subflow.c: a subflow call, the userdata its task run's coroutine holds
   while it waits for the child run (uservalues: 1 the child flow, 2 the
   params given, 3 the result or the error message). */
typedef struct fl_subflow {
  fl_wait wait;            /* the scheduler's handle (first member) */
  fl_taskrun *run;         /* the calling task run, parked on it */
  fl_sched *child;         /* its run while it goes; NULL before, after */
  struct fl_subflow *next; /* in rt's list of calls to start */
  uint8_t pending;         /* in that list */
  uint8_t outcome;         /* FL_SUBFLOW_* once known */
} fl_subflow;
enum {
  FL_SUBFLOW_WAITING,
  FL_SUBFLOW_DONE,   /* the child run succeeded: uservalue 3 is its result */
  FL_SUBFLOW_FAILED, /* it failed or was cancelled: retries apply */
  FL_SUBFLOW_REFUSED /* it could not start (params, body): no retry */
};
/* Starts the runs of the calls waiting to start; 1 if there were any. */
int fl__subflow_start_pending(flowlua *rt);
/* Run s, a subflow's, has ended: its call gets the result or the error,
   and its parent one child fewer. */
void fl__subflow_ended(fl_sched *s);

/* args.c, attempt.c */
void fl__sched_end_interrupted(fl_sched *s, fl_taskrun *r);
void fl__sched_guard_coroutines(lua_State *L);
void fl__sched_keep_result(fl_sched *s, fl_taskrun *r);
int fl__sched_push_map_args(fl_sched *s, fl_taskrun *parent, int i);
int fl__sched_push_node_args(fl_sched *s, uint32_t node);
void fl__sched_release(fl_sched *s, fl_taskrun *r);
void fl__sched_resume(fl_sched *s, fl_taskrun *r, int nargs);
void fl__sched_start_attempt(fl_sched *s, fl_taskrun *r);
void fl__sched_succeed(fl_sched *s, fl_taskrun *r);

/* settle.c */
void fl__sched_finish_run(fl_sched *s, fl_taskrun *r, int state, const char *err);
/* The same, with the time it ended (fl_now()) read already by the caller:
   a clock read per task less on the way of a task that succeeded. */
void fl__sched_finish_run_at(fl_sched *s, fl_taskrun *r, int state,
                             const char *err, double now);
void fl__sched_ready(fl_sched *s, uint32_t node);
void fl__sched_settle(fl_sched *s);

#endif
