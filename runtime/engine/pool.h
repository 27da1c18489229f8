/*
 * pool.h — the local pool of worker processes (pool.c): where the attempts
 * of worker tasks run when the history is SQLite or ":memory:".
 *
 * A worker is the flowlua program itself (`flowlua __worker SCRIPT`, the
 * runtime's worker_program), started when the first worker task is ready,
 * with a socket on its descriptor 3 that carries the frames of wire.h. It
 * loads the same script, says HELLO (with the SHA-256 of the script it
 * loaded, which must be the driver's), and runs one job at a time. Workers
 * are reused across attempts and runs of the runtime, up to
 * opts.workers of them, and stopped when the runtime is freed. A worker
 * that dies fails the attempt it ran (naming the signal), and is replaced
 * when work is waiting. Workers get SIGKILL when the driver dies
 * (PR_SET_PDEATHSIG), so none outlives it.
 */
#ifndef FL_POOL_H
#define FL_POOL_H

#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "engine.h"
#include "wire.h"

typedef struct fl_pool fl_pool;
typedef struct fl_pool_job fl_pool_job;

enum { FL_PJOB_WAITING, FL_PJOB_SENT, FL_PJOB_DONE };
/* The outcome of a job whose worker could not answer (it died, it spoke
   nonsense): beside fl_wire_outcome's. */
#define FL_PJOB_LOST (-1)

/* One attempt of a worker task, from its submission to its answer. Owned
   by the attempt (worker_call.c) while the attempt waits for it; handed to
   the pool when the attempt gives up on it (a timeout, a cancel), which
   frees it once its worker has answered or died. */
struct fl_pool_job {
  fl_wait wait; /* the scheduler's handle (fl_sched_park); its cancel
                   hands the job to the pool */
  fl_pool_job *next; /* in the pool's queue */
  fl_pool *pool;
  uint64_t id;
  fl_taskrun *run; /* woken when the job is done; NULL once abandoned */
  double timeout;  /* the task's, in seconds (0: none): its deadline is
                      armed when a worker takes the job */
  int state;       /* FL_JOB_* */
  fl_buf frame;    /* the JOB frame, sent as it is */
  pid_t worker_pid; /* the worker that ran it (0: none yet) */
  /* The answer, once FL_PJOB_DONE. */
  int outcome;         /* fl_wire_outcome, or FL_PJOB_LOST */
  fl_buf value;        /* FL_WIRE_SUCCESS: the encoded result */
  fl_buf message;      /* otherwise: the error, the reason, or why lost */
  fl_buf traceback;    /* FL_WIRE_FAILED: the worker's traceback */
  /* A job relayed from a PostgreSQL queue (queue_worker.c) has no
     attempt here: its answer and its log lines go to these instead of to
     a run. on_answer owns the job from then on. */
  void (*on_answer)(fl_pool_job *job);
  /* A job of a PostgreSQL queue, on the driver's side (queue_driver.c). */
  char *queue_name;      /* owned */
  char *worker_label;    /* owned: "host:pid" of the worker that took it */
  double timeout_queue;  /* the task's queue_timeout, seconds */
  double queue_deadline; /* monotonic: no worker took it by then */
  uint8_t inserted;      /* in the database */
  uint8_t holds_secret;  /* its result holds a secret: not to be stored */
  void (*on_log)(fl_pool_job *job, int level, const char *text, size_t n);
  void *owner;
};

/* Sends job (its frame built from m, whose job_id the pool sets) to a
   worker of rt's pool, starting the pool and a worker if need be: 0, or a
   FLOWLUA_* status with the message in rt's error. */
int fl_pool_submit(flowlua *rt, fl_pool_job *job, fl_wire_job *m);

/* Frees a job that is done, or was never submitted. */
void fl_pool_job_free(fl_pool_job *job);

/* Whether rt can start workers: its worker program is set and can be run,
   and its script was loaded from a file. 0, or FLOWLUA_EINVAL with the
   message in rt's error. */
int fl_pool_check(flowlua *rt);

/* Stops every worker (BYE, then SIGTERM, then SIGKILL after a grace) and
   frees the pool. NULL is allowed. */
void fl_pool_free(fl_pool *pool);

/* How many workers the pool may run: opts.workers, or the online CPUs. */
int fl_pool_size(const flowlua *rt);

#endif
