/*
 * pg_queue.h — worker tasks' jobs in PostgreSQL (pg_queue.c): the queue a
 * driver fills with the attempts of its worker tasks and `flowlua worker`
 * processes, on any host, serve (DESIGN.md, "PostgreSQL"). The table and
 * its life are in pg_schema.c (version 2).
 *
 * A queue handle is a connection of its own: it LISTENs (a driver on
 * "flowlua_done", for the claims and answers of its jobs; a worker on
 * "flowlua_jobs", for new jobs), so its socket becomes readable when
 * there is news, and it reconnects (LISTENing again) when a statement
 * finds the server gone, for up to its retry time. Every statement here
 * may run twice: a job is named by its driver's token and number, a claim
 * whose answer was lost only costs its lease, and an answer is written
 * only while its worker's lease holds.
 *
 * Not thread-safe: one thread uses a handle. Every function returns 0 or
 * a FLOWLUA_* status with fl_pgq_errmsg set (the password never in it).
 */
#ifndef FL_PG_QUEUE_H
#define FL_PG_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct fl_pgq fl_pgq;

/* Who opens a queue: what it LISTENs to (a reader, to nothing). */
enum { FL_PGQ_DRIVER, FL_PGQ_WORKER, FL_PGQ_READER };

/* Connects to conninfo (within 10 s) and LISTENs as role says; its
   statements reconnect for FLOWLUA_PG_RETRY seconds, as the history's
   do. The schema must be there (the store's open migrates it). On
   failure *out is NULL and err (errlen bytes) says why. */
int fl_pgq_open(const char *conninfo, int role, fl_pgq **out, char *err,
                size_t errlen);
void fl_pgq_close(fl_pgq *q);
const char *fl_pgq_errmsg(const fl_pgq *q);

/* The socket to watch for notifications; it changes after a reconnect
   (-1 when there is no connection). */
int fl_pgq_fd(const fl_pgq *q);
/* Reads what the server sent: how many notifications came (for a
   driver, those that say answers of driver are ready, with took called
   for each of its jobs a worker took: its seq and "host:pid"); -1 when
   the connection is gone (the next statement reconnects). */
typedef void (*fl_pgq_took_fn)(void *data, int64_t seq, const char *worker);
int fl_pgq_drain(fl_pgq *q, const char *driver, fl_pgq_took_fn took,
                 void *data);
/* How many times the handle has reconnected: a caller that may have lost
   a statement's answer compares it before and after. */
unsigned fl_pgq_reconnects(const fl_pgq *q);

/* ---- the driver's side ------------------------------------------------------ */

typedef struct fl_pgq_new {
  int64_t seq;
  const char *run_id, *task, *queue, *script_sha;
  const char *frame;
  size_t frame_len;
} fl_pgq_new;

/* Queues n jobs of driver at once, and wakes the workers. */
int fl_pgq_enqueue(fl_pgq *q, const char *driver, const fl_pgq_new *jobs,
                   size_t n);

enum { FL_PGQ_DONE = 1, FL_PGQ_LAPSED, FL_PGQ_MISSING };

typedef struct fl_pgq_news {
  int64_t seq;
  int kind;           /* FL_PGQ_* */
  const char *worker; /* "host:pid" of the worker that took it */
  const char *answer; /* DONE: the worker's frames */
  size_t answer_len;
} fl_pgq_news;

/*
 * What happened to driver's jobs since the last call: answers (DONE) and,
 * with lapsed, jobs whose worker stopped renewing their lease (LAPSED),
 * deleted as they are read (claims come as notifications). The array and its strings belong to q until its next call.
 */
int fl_pgq_news_read(fl_pgq *q, const char *driver, int lapsed,
                     fl_pgq_news **news, size_t *n);
/* The jobs of driver among seqs[0..n): MISSING for each one the queue no
   longer holds (after a reconnect lost a statement's answer). */
int fl_pgq_missing(fl_pgq *q, const char *driver, const int64_t *seqs,
                   size_t n, fl_pgq_news **news, size_t *count);
/* Deletes those of driver's jobs seqs[0..n) that no worker has taken,
   setting taken[i] to 0 for them and 1 for the others, whose workers are
   asked to stop them (cancel). */
int fl_pgq_withdraw(fl_pgq *q, const char *driver, const int64_t *seqs,
                    size_t n, unsigned char *taken);

/* ---- the worker's side ------------------------------------------------------ */

typedef struct fl_pgq_self {
  const char *host;
  int64_t pid;
  const char *const *queues; /* none: every queue */
  size_t n_queues;
  const char *const *scripts; /* hex SHA-256 of each script loaded */
  size_t n_scripts;
  int slots;
  double lease; /* seconds */
} fl_pgq_self;

/* Enters the worker in queue_worker (listed by `flowlua workers`) and
   keeps who it is for the calls below. */
int fl_pgq_register(fl_pgq *q, const fl_pgq_self *self);
/* Removes it (a graceful stop). */
int fl_pgq_unregister(fl_pgq *q);

typedef struct fl_pgq_job {
  int64_t id;
  const char *script_sha;
  const char *frame;
  size_t frame_len;
} fl_pgq_job;

/* Claims at most limit queued jobs of its queues and scripts, oldest
   first, under a lease (FOR UPDATE SKIP LOCKED), and tells their drivers.
   Never more than its share of what is queued (among the live workers),
   so that a worker whose jobs were quick does not take a whole batch of
   slow ones from the others.
   The array belongs to q until its next call. */
int fl_pgq_claim(fl_pgq *q, int limit, fl_pgq_job **jobs, size_t *n);

/* Renews the lease of every job it holds and its heartbeat (busy: jobs in
   hand). held[0..n) are the jobs it holds; on return keep[i] is 0 for a
   job it lost (its lease lapsed: its result must be thrown away), 1 for
   one it keeps, 2 for one whose driver asks it to stop. */
int fl_pgq_renew(fl_pgq *q, int busy, const int64_t *held, size_t n,
                 unsigned char *keep);

/* Writes answers[i] of job ids[i] for each i < n, where the lease still
   holds, and wakes their drivers; *written counts those written. */
int fl_pgq_finish(fl_pgq *q, const int64_t *ids, const fl_buf *answers,
                  size_t n, size_t *written);

/* ---- reading ------------------------------------------------------------------ */

typedef struct fl_pgq_worker_row {
  const char *host;
  int64_t pid;
  const char *queues, *scripts; /* comma-separated; queues "" is every one */
  int slots, busy;
  double started_at, heartbeat_at; /* seconds since the epoch */
} fl_pgq_worker_row;

/* The live workers (lease not lapsed), by host and pid. */
int fl_pgq_workers(fl_pgq *q, fl_pgq_worker_row **rows, size_t *n);

#endif
