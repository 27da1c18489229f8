/*
 * store_write.c — getting buffered changes into the file: a flush freezes
 * the batch (store_batch.c) and a thread of the store's own writes it
 * (store_sqlite_write.c); see store.h ("Durability", "Threading").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_store.h"

/* ---- what is buffered, and the journals' turns --------------------------- */

size_t fl_store_buffered(const fl_store *st) {
  return st->n_events + st->n_puts + st->n_touched + st->n_ends + st->n_fires +
         st->n_begins + st->n_claims + st->n_workers + st->n_logs;
}

size_t fl_store_pending(const fl_store *st) {
  return fl_store_buffered(st) + fl__store_queued_changes(st);
}

/* The journals' records are all in the file once no run is open and
   nothing is buffered. */
void fl__store_journal_settled(fl_store *st) {
  if (st->runs || fl_store_pending(st) != 0) return;
  fl_journal_reset(st->journal);
  fl_journal_reset(st->spare);
  st->spare_cover = 0;
}

/* A journal takes its turn once it holds this much: short runs keep one. */
#define TURN_BYTES (1u << 20)

/* The journals take turns, so that a run's journal holds what the file
   does not yet, not the whole run (a 1,000,000-element map wrote 265 MB).
   At a flush, every record of the active journal is in a batch frozen so
   far (but the declarations of task runs that did not change since, which
   the next journal declares again: redeclare()); so once the batches up
   to this one are committed, none of its records is needed any more. The
   spare, when its own records are all committed, is reset and made the
   active one, with the next generation, which orders the two for a
   replay. If it is not yet (the writer is behind), the active journal
   goes on, and turns at a later flush. */
void fl__store_journal_turn(fl_store *st, uint64_t frozen) {
  if (!st->journal || st->replaying) return;
  if (st->spare_cover && fl__store_committed_seq(st) >= st->spare_cover) {
    fl_journal_reset(st->spare);
    st->spare_cover = 0;
  }
  if (st->spare_cover || fl_journal_used(st->journal) < TURN_BYTES) return;
  if (!st->spare) {
    char err[512];
    /* Without a spare the active journal goes on growing, as it did. */
    if (fl_journal_create(st->path, &st->spare, err, sizeof err) != 0) return;
  }
  fl_journal *was = st->journal;
  st->journal = st->spare;
  st->spare = was;
  st->spare_cover = frozen;
  fl_journal_set_generation(st->journal, ++st->journal_gen);
  /* How many task runs each open run has declared: the bound a replay of
     this journal puts on the task numbers its records name (J_COUNT). A
     failure to append is the next record's to report. */
  for (const fl_store_run *run = st->runs; run; run = run->next) {
    j_head h = {run->rowid, run->n_tasks, J_COUNT};
    fl_journal_part part = {&h, sizeof h};
    (void)fl_journal_append(st->journal, &part, 1);
  }
}

/* ---- the writer thread ---------------------------------------------------------- */

/* Frozen batches waiting to be written, in order, and the thread that
   writes them. The engine's thread only ever touches the queue under mu. */
typedef struct writer {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* to the thread: a batch, a retry, or stop */
  pthread_cond_t idle; /* from the thread: the queue moved or failed */
  fbatch *head, *tail;
  size_t queued;  /* changes in the queue */
  int busy;       /* writing the head now */
  int failed;     /* the head failed; not retried until asked */
  int stop;
  int status;     /* FLOWLUA_* of the last failure, until reported */
  fl_buf err;     /* its message */
  wconn *conn;    /* the thread's own: SQLite's, */
  struct fl_pg *pg; /* or PostgreSQL's (pg_store.h) */
  double pg_retry;  /* how long its writes wait for a server gone away */
  const char *path;
  int busy_ms;
  int wal_frames; /* in the WAL after the thread's last commit */
  uint64_t committed; /* seq of the last batch it committed */
  /* Run ids it reserved for the engine's thread (fl__store_refill_ids),
     and whether it was asked for more. */
  int64_t ids_first, ids_count;
  int want_ids;
} writer;

/* Checkpoint when the writer is idle and the WAL holds this many frames
   (SQLite's own default threshold, which it applies on commit instead:
   on this thread, the commit that ends a run would wait for it). */
#define CHECKPOINT_FRAMES 1000

/* "state store 'p': <what>: <SQLite's reason>", plus a hint when the
   cause is another process holding the lock. */
static void format_failure(fl_buf *out, const char *path, int rc,
                           const fl_buf *why, int busy_ms) {
  fl_buf_reset(out);
  fl_buf_addf(out, "state store '%s': %s", path, fl_buf_str((fl_buf *)why));
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
    fl_buf_addf(out, " (another process kept it locked for more than %d ms)",
                busy_ms);
}

static void *writer_main(void *arg) {
  writer *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->stop && (!w->head || w->failed))
      pthread_cond_wait(&w->wake, &w->mu);
    if (!w->head || w->failed) break; /* stopping, nothing to write */
    /* Everything queued now, in one transaction: the batches are detached
       from the queue meanwhile, so the engine can queue more. */
    fbatch *b = w->head;
    size_t n = w->queued;
    w->head = w->tail = NULL;
    w->busy = 1;
    int64_t want_ids = w->want_ids && !w->ids_count ? FL_STORE_ID_BLOCK : 0;
    int64_t ids_first = 0;
    pthread_mutex_unlock(&w->mu);
    fl_buf why = FL_BUF_INIT;
    int rc;
    if (w->pg) {
      /* No run ids to reserve: PostgreSQL's come with each run's row. */
      want_ids = 0;
      int status = fl__pg_write_chain(w->pg, b, w->pg_retry);
      rc = status == FLOWLUA_OK ? SQLITE_DONE : SQLITE_ERROR;
      if (status != FLOWLUA_OK) fl_buf_adds(&why, fl_pg_errmsg(w->pg));
    } else {
      rc = fl__wconn_write(w->conn, b, want_ids, &ids_first, &why);
    }
    pthread_mutex_lock(&w->mu);
    w->busy = 0;
    if (rc == SQLITE_DONE && want_ids) {
      w->ids_first = ids_first;
      w->ids_count = want_ids;
      w->want_ids = 0;
    }
    if (rc == SQLITE_DONE) {
      w->queued -= n;
      while (b) {
        fbatch *next = b->next;
        w->committed = b->seq;
        fl__store_fbatch_free(b);
        b = next;
      }
    } else {
      /* Back in front of whatever came meanwhile, for a retry when asked. */
      fbatch *last = b;
      while (last->next) last = last->next;
      last->next = w->head;
      if (!w->head) w->tail = last;
      w->head = b;
      if (w->pg) {
        fl_buf_reset(&w->err); /* the message names the server already */
        fl_buf_adds(&w->err, fl_buf_str(&why));
        w->status = FLOWLUA_EIO;
      } else {
        format_failure(&w->err, w->path, rc, &why, w->busy_ms);
        w->status = fl__store_status_of(rc);
      }
      w->failed = 1;
    }
    fl_buf_free(&why);
    pthread_cond_broadcast(&w->idle);
    if (rc == SQLITE_DONE && !w->head && !w->stop && w->conn &&
        w->wal_frames >= CHECKPOINT_FRAMES) {
      /* Nothing queued: copy the WAL into the file now. PASSIVE: it never
         waits for readers or writers; what it cannot copy stays for the
         next time. */
      pthread_mutex_unlock(&w->mu);
      fl__wconn_checkpoint(w->conn);
      pthread_mutex_lock(&w->mu);
      w->wal_frames = 0;
    }
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static int writer_start(fl_store *st) {
  writer *w = calloc(1, sizeof *w);
  if (!w) return fl__store_oom(st, "cannot start its writer");
  w->path = st->path;
  w->busy_ms = st->opts.busy_timeout_ms;
  int status = st->pg ? fl__pg_writer_connect(st, &w->pg, &w->pg_retry)
                      : fl__wconn_open(st, &w->conn, &w->wal_frames);
  if (status != FLOWLUA_OK) {
    free(w);
    return status;
  }
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->wake, NULL);
  pthread_cond_init(&w->idle, NULL);
  /* Signals are for the engine's thread (flowlua_stop from a handler). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&w->thread, NULL, writer_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->idle);
    fl__wconn_free(w->conn);
    fl_pg_close(w->pg);
    free(w);
    return fl__store_set_err(st, FLOWLUA_EIO, "cannot start its writer thread: %s",
                   strerror(err));
  }
  st->writer = w;
  st->writer_used = 1;
  return FLOWLUA_OK;
}

/* Stops the thread once the queue is written or has failed, and frees it
   with whatever could not be written. */
void fl__store_writer_stop(fl_store *st) {
  writer *w = st->writer;
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  while (w->head) {
    fbatch *b = w->head;
    w->head = b->next;
    fl__store_fbatch_free(b);
  }
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->wake);
  pthread_cond_destroy(&w->idle);
  fl__wconn_free(w->conn);
  fl_pg_close(w->pg);
  fl_buf_free(&w->err);
  free(w);
  st->writer = NULL;
}

/* Takes over a failure of the writer as the handle's error (once). */
static int writer_take_error(fl_store *st) {
  writer *w = st->writer;
  if (!w->status) return FLOWLUA_OK;
  int status = w->status;
  fl_buf_reset(&st->err);
  fl_buf_adds(&st->err, fl_buf_str(&w->err));
  w->status = FLOWLUA_OK;
  return status;
}

/* Hands b to the writer (after the batches before it); with wait, returns
   once the queue is written, or has failed. */
static int writer_submit(fl_store *st, fbatch *b, int wait) {
  writer *w = st->writer;
  pthread_mutex_lock(&w->mu);
  if (b) {
    if (w->tail)
      w->tail->next = b;
    else
      w->head = b;
    w->tail = b;
    w->queued += fl__store_fbatch_size(b);
  }
  if (w->failed && (b || wait)) w->failed = 0; /* asked again: retry */
  pthread_cond_signal(&w->wake);
  while (wait && (w->head || w->busy) && !w->failed)
    pthread_cond_wait(&w->idle, &w->mu);
  int status = writer_take_error(st);
  if (wait && w->head && status == FLOWLUA_OK) status = FLOWLUA_EIO;
  pthread_mutex_unlock(&w->mu);
  return status;
}

uint64_t fl__store_committed_seq(fl_store *st) {
  uint64_t seq = st->mem_committed;
  if (st->writer) {
    pthread_mutex_lock(&st->writer->mu);
    if (st->writer->committed > seq) seq = st->writer->committed;
    pthread_mutex_unlock(&st->writer->mu);
  }
  return seq;
}

/* Batches are written on the handle's own connection until the writer
   thread starts (never, for ":memory:", whose one connection is the
   database). */
int fl__store_mem_conn_open(fl_store *st) {
  return fl__wconn_borrow(st, &st->mem_conn);
}

void fl__store_mem_queue_free(fl_store *st) {
  while (st->mem_head) {
    fbatch *b = st->mem_head;
    st->mem_head = b->next;
    fl__store_fbatch_free(b);
  }
  st->mem_tail = NULL;
  fl__wconn_free(st->mem_conn);
  st->mem_conn = NULL;
}

void fl__store_drop_queued(fl_store *st) {
  while (st->mem_head) {
    fbatch *b = st->mem_head;
    st->mem_head = b->next;
    fl__store_fbatch_free(b);
  }
  st->mem_tail = NULL;
}

/* Changes handed over to be written and not yet in the file. */
size_t fl__store_queued_changes(const fl_store *st) {
  size_t n = 0;
  if (st->writer) {
    pthread_mutex_lock(&st->writer->mu);
    n = st->writer->queued;
    pthread_mutex_unlock(&st->writer->mu);
  }
  for (const fbatch *b = st->mem_head; b; b = b->next) n += fl__store_fbatch_size(b);
  return n;
}

/* Waits until every batch handed to the writer is in the file. */
int fl__store_writer_drain(fl_store *st) {
  return st->writer ? writer_submit(st, NULL, 1) : FLOWLUA_OK;
}

/* A flush: freezes the batch and writes it — on the writer thread, waiting
   for it when `wait` (and for every batch before it), or at once on the
   handle's connection for ":memory:". */
static int flush_batch(fl_store *st, const char *what, int wait) {
  double t0 = st->stats ? fl__store_mono_now() : 0;
  fbatch *b = NULL;
  if (fl_store_buffered(st)) {
    b = fl__store_freeze(st);
    if (!b) return fl__store_oom(st, what);
  }
  fl__store_journal_turn(st, st->batch_seq);
  /* The writer thread starts with the first flush that does not wait:
     a short run (and `runs`, `show`, a resume's checks) never needs it. */
  if (!wait && !st->writer && (st->journal || st->pg) && !st->mem_head &&
      writer_start(st) != FLOWLUA_OK)
    fl_buf_reset(&st->err); /* then this connection writes, as before */
  int status;
  if (st->writer) {
    status = !b && !wait ? FLOWLUA_OK : writer_submit(st, b, wait);
  } else {
    /* One connection: write now; a failed batch stays first in line. */
    if (b) {
      if (st->mem_tail)
        st->mem_tail->next = b;
      else
        st->mem_head = b;
      st->mem_tail = b;
    }
    status = FLOWLUA_OK;
    if (st->mem_head) {
      fl_buf why = FL_BUF_INIT;
      int64_t unused;
      int rc = st->pg ? (fl__pg_write_queue(st) ? SQLITE_ERROR : SQLITE_DONE)
                      : fl__wconn_write(st->mem_conn, st->mem_head, 0, &unused, &why);
      if (rc != SQLITE_DONE && st->pg) {
        status = FLOWLUA_EIO; /* the message is the backend's */
      } else if (rc != SQLITE_DONE) {
        format_failure(&st->err, st->path, rc, &why, st->opts.busy_timeout_ms);
        st->err_busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
        status = fl__store_status_of(rc);
      } else {
        while (st->mem_head) {
          fbatch *done = st->mem_head;
          st->mem_head = done->next;
          st->mem_committed = done->seq;
          fl__store_fbatch_free(done);
        }
        st->mem_tail = NULL;
      }
      fl_buf_free(&why);
    }
  }
  if (st->stats) st->flush_seconds += fl__store_mono_now() - t0;
  return status;
}

/* One flush, then an extra write (run begin or end) in a transaction of
   its own on the handle's connection. */
typedef int (*fl__store_extra_write)(fl_store *st, void *ctx);

int fl__store_flush_with(fl_store *st, const char *what, fl__store_extra_write extra,
                      void *ctx) {
  int status = flush_batch(st, what, 1);
  if (status || !extra) return status;
  status = fl__store_tx_begin(st, what);
  if (status) return status;
  status = extra(st, ctx);
  if (status == FLOWLUA_OK) status = fl__store_tx_commit(st, what);
  if (status != FLOWLUA_OK) fl__store_tx_rollback(st);
  return status;
}

int fl__store_flush(fl_store *st, const char *what) {
  return fl__store_flush_with(st, what, NULL, NULL);
}


int fl_store_flush(fl_store *st) {
  int status = fl__store_flush(st, "cannot write the run's changes");
  if (status == FLOWLUA_OK) fl__store_journal_settled(st);
  return status;
}

void fl__store_refill_ids(fl_store *st) {
  writer *w = st->writer;
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  if (st->ids_next >= st->ids_end && w->ids_count) {
    st->ids_next = w->ids_first;
    st->ids_end = w->ids_first + w->ids_count;
    w->ids_count = 0;
  }
  if (st->ids_end - st->ids_next < FL_STORE_ID_LOW) w->want_ids = 1;
  pthread_mutex_unlock(&w->mu);
}

void fl_store_write_in_background(fl_store *st) {
  if (st) st->background = 1;
}

int fl_store_flush_async(fl_store *st) {
  return flush_batch(st, "cannot write the run's changes", 0);
}
