/*
 * queue.h — worker tasks through PostgreSQL queues (DESIGN.md,
 * "PostgreSQL"): with a PostgreSQL history, a worker task's attempt is a
 * job in the database (store/pg_queue.h) instead of a frame to this
 * host's pool, and any `flowlua worker` process serving its queue, on any
 * host, runs it.
 *
 *   queue_driver.c  the driver's side: jobs queued in batches, claims and
 *                   answers read when the database says there is news (or
 *                   once a second), lapsed leases and queue timeouts
 *                   turned into failed attempts, and a local
 *                   `flowlua worker` child unless opts.workers is negative
 *   queue_worker.c  a `flowlua worker` process: claims jobs for the
 *                   scripts it loaded, runs them on its own pool of worker
 *                   processes (pool.c), renews their leases, writes their
 *                   answers back
 *
 * A job is the JOB frame a local worker would get (wire.h), and its
 * answer the frames the worker sent back (LOG lines, then RESULT), so a
 * job runs the same wherever it runs.
 */
#ifndef FL_QUEUE_H
#define FL_QUEUE_H

#include "engine.h"
#include "pool.h"

typedef struct fl_queue fl_queue;

/* Whether rt's worker tasks go through a PostgreSQL queue: its history is
   in PostgreSQL. */
int fl_queue_in_use(const flowlua *rt);

/* Whether rt can queue jobs: its script was loaded from a file. 0, or
   FLOWLUA_EINVAL with the message in rt's error. */
int fl_queue_check(flowlua *rt);

/* Queues job (m its content, d its task) for a worker; the attempt waits
   for its answer as for the pool's (fl_pool_job). 0, or a FLOWLUA_*
   status with the message in rt's error. */
int fl_queue_submit(flowlua *rt, fl_pool_job *job, fl_wire_job *m,
                    const fl_taskdef *d);

/* What a `flowlua worker` serves. */
typedef struct fl_queue_work_opts {
  const char *const *queues; /* none: every queue */
  size_t n_queues;
  int slots;    /* jobs run at once (each runtime's pool has as many) */
  double lease; /* seconds */
} fl_queue_work_opts;

/* Serves the queues in rts[0]'s PostgreSQL history with the scripts of
   rts[0..n) (one each, loaded from a file) until flowlua_stop(rts[0]),
   then finishes the jobs in hand: 0, or a FLOWLUA_* status with the
   message in rts[0]'s error. */
int fl_queue_work(flowlua *const *rts, size_t n, const fl_queue_work_opts *o);

/* Withdraws the jobs still out, stops the local worker and frees q. NULL
   is allowed. */
void fl_queue_free(fl_queue *q);

#endif
