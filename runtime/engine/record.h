/*
 * record.h — the engine's side of the state store: what sched.c tells it,
 * and when it must wait for it.
 *
 * Every call is a no-op without a store (no state path, or ":memory:"), so
 * the scheduler calls them unconditionally. DESIGN.md wants a task's
 * Success durable before any task that depends on it starts. The store's
 * journal makes every change durable as it is recorded (store.h), so
 * writes are buffered and reach the file in one transaction when
 *   - the event loop is about to wait (so a turn's changes are one
 *     transaction, and `flowlua runs` in another process sees them), or
 *   - a task is about to start and many changes are buffered.
 * A store without a journal flushes instead before a task one of whose
 * upstream runs reached its final state since the last flush.
 * A failing store does not crash a run: the task that could not be made
 * safe to start fails with the store's message, and the run ends Failed.
 */
#ifndef FL_RECORD_H
#define FL_RECORD_H

#include "engine.h"

/* Logs what the store has to tell (fl_store_notices) as warnings, each
   naming the state file, and clears it. */
void fl_record_log_notices(flowlua *rt, struct fl_store *st);

/* Opens rt's store on first use (marking runs of dead processes Crashed).
   FLOWLUA_OK with rt->store NULL when there is none; an error, set on rt,
   when the file cannot be used. */
int fl_record_open(flowlua *rt);
/* The same, without recording the script's flows: for a process that runs
   other processes' jobs (flowlua worker), whose script is not where runs
   are started from. */
int fl_record_open_history(flowlua *rt);

/* flow_catalog.c: the loaded script's flows recorded in the history (its
   path, defaults, schedules), for readers that must not run it. A failure
   is logged as a warning, not returned: the run does not depend on it. */
void fl_record_flows(flowlua *rt);

/* cancel_poll.c: looks in the history for cancels of the recorded runs
   asked for by another process, about once a second while there are
   any. Armed by each recorded run; stopped when the history closes. */
void fl_cancel_poll_arm(flowlua *rt);
void fl_cancel_poll_stop(flowlua *rt);

/* A new run: recorded, with one task run per graph node, and committed
   before any task starts. An error (set on rt) means the run must not
   start. */
int fl_record_run_begin(fl_sched *s);

/* A map element run, declared when its map expands. */
void fl_record_task_add(fl_sched *s, fl_taskrun *r);

/* That r's current attempt runs in worker process r->worker_pid (of this
   host's pool), for show and the report to name it. */
void fl_record_worker(fl_sched *s, fl_taskrun *r);

/* A log line of r's current attempt (what flow.log.* wrote in it):
   masked as the printed log masks it, then kept in the history, bounded
   (store.h, FL_STORE_LOG_LINES). */
void fl_record_log(fl_sched *s, fl_taskrun *r, int level, const char *msg);

/* A state change of r (attempt r->attempts; err may be NULL); final when
   r will not change again, which its dependents then wait on. */
void fl_record_state(fl_sched *s, fl_taskrun *r, int state, int final,
                     const char *err);

/* r's result: the value at idx of the runtime's Lua state. A value that
   cannot be stored as JSON (a function, a cycle, a secret inside) is
   recorded as not resumable. */
void fl_record_result(fl_sched *s, fl_taskrun *r, int idx);

/* Called before r starts (or a map expands): flushes if an upstream run's
   final state is not durable yet. 0, or -1 with the message in
   s->store_error. */
int fl_record_before_start(fl_sched *s, fl_taskrun *r);

/* The loop is about to wait: flush what is buffered. */
void fl_record_idle(flowlua *rt);

/* The run has ended: its final state, committed. */
void fl_record_run_end(fl_sched *s);

/* cache_key: looks up r's cache key (r->cache_key) for a result younger
   than the task's cache_for. 1 on a hit with the result pushed onto the
   runtime's Lua state; 0 on a miss or without a store. */
int fl_record_cache_get(fl_sched *s, fl_taskrun *r);
/* Stores r's result under its cache key (the value at idx). */
void fl_record_cache_put(fl_sched *s, fl_taskrun *r, int idx);

/* Resume: pushes the stored result of node (a task run kept from the run
   being resumed, or from the one that run resumed when it crashed before
   recording it) or of map element i (1-based; 0 for the node), with
   *from_run the id of the run it is kept from, and returns 1; 0 when that
   task run must run again. */
int fl_record_restore(fl_sched *s, uint32_t node, int32_t map_index,
                      const char **from_run);

/* Frees what the store holds for rt (at flowlua_free). */
void fl_record_close(flowlua *rt);

#endif
