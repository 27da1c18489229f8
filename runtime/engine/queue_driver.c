/*
 * queue_driver.c — the driver's side of worker tasks through PostgreSQL;
 * see queue.h.
 *
 * Everything runs on the engine's thread, from the event loop, on a
 * connection of the queue's own (it LISTENs, so its socket is watched in
 * rt->loop). Jobs submitted in one turn of the loop are queued in one
 * statement (the flush timer, due at once); the database's news (claims
 * and answers) is read when a notification comes, and once a second
 * (the tick) with the leases that lapsed and the jobs past their
 * queue_timeout. A job is known by its number (seq) in a window of the
 * numbers still out.
 */
#define _GNU_SOURCE
#include "queue.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pg_queue.h"
#include "process.h"
#include "sched_internal.h"
#include "wire.h"

extern char **environ;

/* How often the queue looks without being told (a lost notification, a
   lapsed lease, a queue timeout). */
#define TICK 1.0
/* How long the local worker has to stop once asked. */
#define STOP_GRACE 5.0

struct fl_queue {
  flowlua *rt;
  fl_pgq *pgq;
  char token[160]; /* names this driver's jobs: host, pid, a random part */
  int64_t next_seq;
  /* The jobs out, by seq - base. */
  fl_pool_job **win;
  size_t cap, span, live;
  int64_t base;
  /* Submitted, not yet in the database. */
  fl_pool_job **pending;
  size_t n_pending, cap_pending;
  /* Given up by their attempts, to withdraw. */
  int64_t *gone;
  size_t n_gone, cap_gone;
  fl_timer flush, tick, news;
  int fd; /* the socket watched, or -1 */
  unsigned reconnects;
  pid_t local; /* the local `flowlua worker`, or 0 */
};

int fl_queue_in_use(const flowlua *rt) {
  const char *p = rt->state_path;
  return p && (strncmp(p, "postgresql://", 13) == 0 ||
               strncmp(p, "postgres://", 11) == 0);
}

/* ---- the window of jobs out ------------------------------------------------- */

static fl_pool_job *find(fl_queue *q, int64_t seq) {
  if (seq < q->base || (uint64_t)(seq - q->base) >= q->span) return NULL;
  return q->win[seq - q->base];
}

static int add(fl_queue *q, fl_pool_job *job) {
  if (q->live == 0) { /* empty: start afresh at this seq */
    q->base = (int64_t)job->id;
    q->span = 0;
  }
  size_t at = (size_t)((int64_t)job->id - q->base);
  if (at >= q->cap) {
    /* Slide out the empty front first, then grow. */
    size_t front = 0;
    while (front < q->span && !q->win[front]) front++;
    if (front) {
      memmove(q->win, q->win + front, (q->span - front) * sizeof *q->win);
      q->span -= front;
      q->base += (int64_t)front;
      at -= front;
    }
    if (at >= q->cap) {
      size_t cap = q->cap ? q->cap : 64;
      while (cap <= at) cap *= 2;
      fl_pool_job **w = realloc(q->win, cap * sizeof *w);
      if (!w) return -1;
      q->win = w;
      q->cap = cap;
    }
  }
  while (q->span <= at) q->win[q->span++] = NULL;
  q->win[at] = job;
  q->live++;
  return 0;
}

static void drop(fl_queue *q, fl_pool_job *job) {
  size_t at = (size_t)((int64_t)job->id - q->base);
  if (at < q->span && q->win[at] == job) {
    q->win[at] = NULL;
    q->live--;
  }
}

/* ---- a job's end --------------------------------------------------------------- */

/* The job has its answer: out of the window; its attempt resumes, or,
   given up, it is freed. */
static void deliver(fl_queue *q, fl_pool_job *job) {
  drop(q, job);
  job->state = FL_PJOB_DONE;
  if (job->run)
    fl_sched_wake(job->run);
  else
    fl_pool_job_free(job);
}

static void lose(fl_queue *q, fl_pool_job *job, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lose(fl_queue *q, fl_pool_job *job, const char *fmt, ...) {
  job->outcome = FL_PJOB_LOST;
  fl_buf_reset(&job->message);
  va_list ap;
  va_start(ap, fmt);
  fl_buf_addvf(&job->message, fmt, ap);
  va_end(ap);
  deliver(q, job);
}

/* A worker took the job: its attempt is Running from now, on that worker,
   and its timeout starts. */
static void took(fl_queue *q, fl_pool_job *job, const char *worker) {
  if (job->state != FL_PJOB_WAITING) return;
  job->state = FL_PJOB_SENT;
  free(job->worker_label);
  job->worker_label = strdup(worker ? worker : "?");
  fl_taskrun *r = job->run;
  if (!r || !job->worker_label) return;
  /* "host:pid": the pid after the last colon. */
  char *colon = strrchr(job->worker_label, ':');
  long pid = colon ? strtol(colon + 1, NULL, 10) : 0;
  if (colon) *colon = '\0';
  r->worker_pid = (int32_t)pid;
  free(r->worker_host);
  r->worker_host = strdup(job->worker_label); /* NULL: named by pid only */
  if (colon) *colon = ':';
  fl__sched_worker_took(r);
  if (job->timeout > 0) {
    fl__sched_arm_deadline(&q->rt->loop, r, fl_now(), job->timeout);
  }
}

/* The answer of a job: the frames its worker sent (LOG lines, then the
   RESULT), as this host's pool would have read them. */
static void answered(fl_queue *q, fl_pool_job *job, const char *data,
                     size_t len) {
  flowlua *rt = q->rt;
  fl_wire_reader rd;
  fl_wire_reader_init(&rd);
  char err[FL_WIRE_ERR_MAX] = "";
  int done = 0, bad = fl_wire_reader_feed(&rd, data, len) != 0;
  fl_wire_frame f;
  int got;
  while (!bad && !done && (got = fl_wire_reader_next(&rd, &f)) == 1) {
    if (f.type == FL_WIRE_LOG) {
      fl_wire_log m;
      if ((bad = fl_wire_get_log(&f, &m, err) != 0)) break;
      char *text = strndup(m.text.p, m.text.n);
      if (!text) continue;
      fl_taskrun *was = rt->current;
      rt->current = job->run;
      int level = m.level >= FLOWLUA_LOG_DEBUG && m.level <= FLOWLUA_LOG_ERROR
                      ? (int)m.level
                      : FLOWLUA_LOG_INFO;
      fl_sched_log(rt, level, text);
      rt->current = was;
      free(text);
    } else if (f.type == FL_WIRE_SECRET) {
      /* The worker's way of saying the result holds a secret it read
         (the secret itself never crosses the database). */
      job->holds_secret = 1;
    } else if (f.type == FL_WIRE_RESULT) {
      fl_wire_result m;
      if ((bad = fl_wire_get_result(&f, &m, err) != 0)) break;
      job->outcome = m.outcome;
      fl_buf_add(&job->value, m.value.p, m.value.n);
      fl_buf_add(&job->message, m.message.p, m.message.n);
      fl_buf_add(&job->traceback, m.traceback.p, m.traceback.n);
      done = 1;
    } else {
      snprintf(err, sizeof err, "a %s frame", fl_wire_type_name(f.type));
      bad = 1;
    }
  }
  if (!bad && !done) snprintf(err, sizeof err, "%s", rd.err[0] ? rd.err : "no result");
  fl_wire_reader_free(&rd);
  if (!done || bad || job->value.oom || job->message.oom || job->traceback.oom)
    lose(q, job, "the answer of worker %s cannot be read: %s",
         job->worker_label ? job->worker_label : "?",
         err[0] ? err : "out of memory");
  else
    deliver(q, job);
}

/* ---- talking to the database ------------------------------------------------- */

static void on_notify(int fd, uint32_t events, void *data);

/* The connection's socket in the loop: again after a reconnect. */
static void rewatch(fl_queue *q) {
  int fd = fl_pgq_fd(q->pgq);
  if (fd == q->fd && fl_pgq_reconnects(q->pgq) == q->reconnects) return;
  if (q->fd >= 0) fl_loop_unwatch(&q->rt->loop, q->fd);
  q->fd = -1;
  if (fd >= 0 && fl_loop_watch(&q->rt->loop, fd, EPOLLIN, on_notify, q) == 0)
    q->fd = fd;
}

/* The database failed us: every job out fails with why (retries apply). */
static void fail_all(fl_queue *q) {
  const char *why = fl_pgq_errmsg(q->pgq);
  for (size_t i = 0; i < q->span; i++)
    if (q->win[i]) lose(q, q->win[i], "the job queue failed: %s", why);
  q->n_pending = 0;
  q->n_gone = 0;
}

static int push_gone(fl_queue *q, int64_t seq) {
  if (q->n_gone == q->cap_gone) {
    size_t cap = q->cap_gone ? 2 * q->cap_gone : 64;
    int64_t *g = realloc(q->gone, cap * sizeof *g);
    if (!g) return -1;
    q->gone = g;
    q->cap_gone = cap;
  }
  q->gone[q->n_gone++] = seq;
  return 0;
}

/* Withdraws seqs[0..n): a job no worker took ends as said (with the
   queue's timeout message when expired, else freed); one taken is left
   to its answer (its worker is asked to stop). */
static int withdraw(fl_queue *q, const int64_t *seqs, size_t n, int expired) {
  if (n == 0) return 0;
  unsigned char *taken = malloc(n);
  if (!taken) return -1;
  int rc = fl_pgq_withdraw(q->pgq, q->token, seqs, n, taken);
  if (rc == FLOWLUA_OK) {
    for (size_t i = 0; i < n; i++) {
      fl_pool_job *job = find(q, seqs[i]);
      if (!job || taken[i]) continue;
      if (expired)
        lose(q, job, "no worker took the job from queue '%s' for script "
                     "version %.12s within its queue_timeout of %g s: is a "
                     "`flowlua worker` with this script serving the queue?",
             job->queue_name, q->rt->script_sha256, job->timeout_queue);
      else
        deliver(q, job); /* given up: freed */
    }
  }
  free(taken);
  return rc == FLOWLUA_OK ? 0 : -1;
}

static void read_news(fl_queue *q, int lapsed);
static void notes_waiting(fl_queue *q);

static void flush_now(fl_queue *q) {
  /* Queue what was submitted, except what was given up meanwhile. */
  size_t n = 0;
  fl_pgq_new *rows = q->n_pending ? calloc(q->n_pending, sizeof *rows) : NULL;
  for (size_t i = 0; i < q->n_pending; i++) {
    fl_pool_job *job = q->pending[i];
    if (!job->run) { /* given up before it was queued */
      deliver(q, job);
      continue;
    }
    if (!rows) {
      lose(q, job, "out of memory queueing the job");
      continue;
    }
    q->pending[n] = job;
    rows[n++] = (fl_pgq_new){.seq = (int64_t)job->id,
                             .run_id = job->run->sched->run_id,
                             .task = fl__sched_run_def(job->run)->name,
                             .queue = job->queue_name,
                             .script_sha = q->rt->script_sha256,
                             .frame = job->frame.data,
                             .frame_len = job->frame.len};
  }
  q->n_pending = 0;
  int rc = n ? fl_pgq_enqueue(q->pgq, q->token, rows, n) : FLOWLUA_OK;
  free(rows);
  rewatch(q);
  if (rc != FLOWLUA_OK) {
    for (size_t i = 0; i < n; i++)
      lose(q, q->pending[i], "cannot queue the job: %s", fl_pgq_errmsg(q->pgq));
    return;
  }
  for (size_t i = 0; i < n; i++) q->pending[i]->inserted = 1;
  notes_waiting(q);
  if (q->n_gone) {
    size_t k = q->n_gone;
    q->n_gone = 0;
    int64_t *seqs = q->gone;
    q->gone = NULL;
    q->cap_gone = 0;
    if (withdraw(q, seqs, k, 0) != 0) {
      /* The database is away: their workers' leases will lapse; only the
         memory is ours to give back. */
      for (size_t i = 0; i < k; i++) {
        fl_pool_job *job = find(q, seqs[i]);
        if (job) deliver(q, job);
      }
    }
    free(seqs);
    rewatch(q);
  }
}

static void flush_due(fl_timer *t) { flush_now(t->data); }

/* The seqs of the jobs out that are in the database. */
static int64_t *inserted_seqs(fl_queue *q, size_t *n) {
  int64_t *seqs = malloc((q->live + 1) * sizeof *seqs);
  *n = 0;
  if (!seqs) return NULL;
  for (size_t i = 0; i < q->span; i++)
    if (q->win[i] && q->win[i]->inserted) seqs[(*n)++] = (int64_t)q->win[i]->id;
  return seqs;
}

static void read_news(fl_queue *q, int lapsed) {
  unsigned before = fl_pgq_reconnects(q->pgq);
  fl_pgq_news *news;
  size_t n;
  if (fl_pgq_news_read(q->pgq, q->token, lapsed, &news, &n) != FLOWLUA_OK) {
    rewatch(q);
    fail_all(q);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    fl_pool_job *job = find(q, news[i].seq);
    if (!job) continue;
    switch (news[i].kind) {
    case FL_PGQ_DONE:
      took(q, job, news[i].worker);
      answered(q, job, news[i].answer, news[i].answer_len);
      break;
    case FL_PGQ_LAPSED:
      lose(q, job, "worker lost: worker %s stopped renewing the job's lease "
                   "(it was killed or stopped, or its host was lost or cut off "
                   "from the database)",
           news[i].worker ? news[i].worker : "?");
      break;
    }
  }
  /* A statement whose answer a reconnect lost may have taken news with
     it: the jobs the database no longer holds are lost. */
  if (fl_pgq_reconnects(q->pgq) != before || lapsed) {
    if (fl_pgq_reconnects(q->pgq) != q->reconnects) {
      size_t k;
      int64_t *seqs = inserted_seqs(q, &k);
      fl_pgq_news *gone;
      size_t n_gone;
      if (seqs && k &&
          fl_pgq_missing(q->pgq, q->token, seqs, k, &gone, &n_gone) == FLOWLUA_OK)
        for (size_t i = 0; i < n_gone; i++) {
          fl_pool_job *job = find(q, gone[i].seq);
          if (job)
            lose(q, job, "worker lost: the job left the queue while the "
                         "connection to the database was down");
        }
      free(seqs);
    }
  }
  rewatch(q);
  q->reconnects = fl_pgq_reconnects(q->pgq);
  notes_waiting(q);
}

/* Notifications libpq read while a statement ran wait in its queue, and
   the socket will not tell of them again: looked for after each
   statement, and read at once (from the loop, not from here). */
static void took_note(void *data, int64_t seq, const char *worker) {
  fl_queue *q = data;
  fl_pool_job *job = find(q, seq);
  if (job) took(q, job, worker);
}

static void notes_waiting(fl_queue *q) {
  if (fl_pgq_drain(q->pgq, q->token, took_note, q) > 0 && q->live &&
      !fl_timer_armed(&q->news))
    fl_timer_start(&q->rt->loop, &q->news, 0);
}

static void news_due(fl_timer *t) {
  fl_queue *q = t->data;
  if (q->live) read_news(q, 0);
}

static void on_notify(int fd, uint32_t events, void *data) {
  (void)fd;
  (void)events;
  fl_queue *q = data;
  int got = fl_pgq_drain(q->pgq, q->token, took_note, q);
  if (got != 0 && q->live) read_news(q, 0);
  else if (got < 0) rewatch(q);
}

static void start_local(fl_queue *q);

/* The local worker went (it failed, someone killed it): another one, so
   that a driver on its own does not wait for its jobs' queue_timeout. */
static void check_local(fl_queue *q) {
  int status;
  if (q->local <= 0 || waitpid(q->local, &status, WNOHANG) != q->local) return;
  fl_log_printf(&q->rt->log, FLOWLUA_LOG_WARN, NULL,
                "the local `flowlua worker` (pid %ld) %s %d: starting another",
                (long)q->local, WIFSIGNALED(status) ? "was killed by signal"
                                                    : "exited with status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  q->local = 0;
  start_local(q);
}

static void tick(fl_timer *t) {
  fl_queue *q = t->data;
  if (!q->live) return; /* started again by the next submit */
  check_local(q);
  read_news(q, 1);
  /* Jobs nobody took within their queue_timeout. */
  double now = fl_now();
  size_t n = 0;
  int64_t *late = malloc((q->live + 1) * sizeof *late);
  for (size_t i = 0; late && i < q->span; i++) {
    fl_pool_job *job = q->win[i];
    if (job && job->inserted && job->state == FL_PJOB_WAITING &&
        now >= job->queue_deadline)
      late[n++] = (int64_t)job->id;
  }
  if (n) withdraw(q, late, n, 1);
  free(late);
  rewatch(q);
  if (q->live) fl_timer_start(&q->rt->loop, &q->tick, TICK);
}

/* ---- the local worker ------------------------------------------------------- */

/* `flowlua worker SCRIPT --slots N`, with the history's URI in its
   environment (never on a command line, where ps shows it), SIGKILLed if
   the driver dies. Its output goes to the driver's stderr. */
static void start_local(fl_queue *q) {
  flowlua *rt = q->rt;
  if (rt->opts.workers < 0) return;
  char slots[16];
  snprintf(slots, sizeof slots, "%d", fl_pool_size(rt));
  size_t n = 0;
  while (environ[n]) n++;
  char **envp = calloc(n + 2, sizeof *envp);
  char *state = NULL;
  if (!envp || asprintf(&state, "FLOWLUA_STATE=%s", rt->state_path) < 0) {
    free(envp);
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "FLOWLUA_STATE=", 14) != 0) envp[k++] = environ[i];
  envp[k++] = state;
  envp[k] = NULL;
  /* Quiet: its start and stop are the driver's business, not news. */
  char *argv[] = {rt->worker_program, "worker", rt->script_path, "--slots",
                  slots, "--quiet", NULL};
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    setpgid(0, 0);
    dup2(2, 1);
    syscall(SYS_close_range, 3, ~0U, 0);
    execve(rt->worker_program, argv, envp);
    _exit(127);
  }
  int err = errno;
  free(state);
  free(envp);
  if (pid > 0)
    q->local = pid;
  else /* its jobs wait for another worker, or their queue_timeout */
    fl_log_printf(&rt->log, FLOWLUA_LOG_WARN, NULL,
                  "cannot start the local `flowlua worker`: %s", strerror(err));
}

static void stop_local(fl_queue *q) {
  if (q->local <= 0) return;
  kill(q->local, SIGTERM);
  fl_proc_reap_by(q->local, fl_now() + STOP_GRACE);
  q->local = 0;
}

/* ---- the queue ------------------------------------------------------------------ */

static void job_cancel(fl_wait *wait);

static fl_queue *queue_open(flowlua *rt) {
  fl_queue *q = calloc(1, sizeof *q);
  if (!q) {
    fl_set_error(rt, "cannot start the job queue: out of memory");
    return NULL;
  }
  q->rt = rt;
  q->fd = -1;
  char err[1024];
  if (fl_pgq_open(rt->state_path, FL_PGQ_DRIVER, &q->pgq, err, sizeof err) !=
      FLOWLUA_OK) {
    fl_set_error(rt, "%s", err);
    free(q);
    return NULL;
  }
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
    r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  snprintf(q->token, sizeof q->token, "%.100s:%ld:%016" PRIx64, host,
           (long)getpid(), r);
  fl_timer_init(&q->flush, flush_due, q);
  fl_timer_init(&q->tick, tick, q);
  fl_timer_init(&q->news, news_due, q);
  q->reconnects = fl_pgq_reconnects(q->pgq);
  rewatch(q);
  start_local(q);
  return q;
}

int fl_queue_check(flowlua *rt) {
  /* The driver's own worker is the flowlua program: it must be there. */
  if (rt->opts.workers >= 0) return fl_pool_check(rt);
  if (rt->script_path) return FLOWLUA_OK;
  fl_set_error(rt, "worker tasks need a script loaded from a file (a "
                   "worker loads it too); this one was loaded from a "
                   "string");
  return FLOWLUA_EINVAL;
}

int fl_queue_submit(flowlua *rt, fl_pool_job *job, fl_wire_job *m,
                    const fl_taskdef *d) {
  int rc = fl_queue_check(rt);
  if (rc) return rc;
  if (!rt->queue && !(rt->queue = queue_open(rt))) return FLOWLUA_EIO;
  fl_queue *q = rt->queue;
  job->id = m->job_id = (uint64_t)++q->next_seq;
  job->wait.cancel = job_cancel;
  job->owner = q;
  job->timeout_queue = d->queue_timeout > 0 ? d->queue_timeout
                                            : FL_DEFAULT_QUEUE_TIMEOUT;
  job->queue_deadline = fl_now() + job->timeout_queue;
  job->queue_name = strdup(d->queue ? d->queue : "default");
  char err[FL_WIRE_ERR_MAX];
  if (!job->queue_name) {
    fl_set_error(rt, "cannot queue the job: out of memory");
    return FLOWLUA_ENOMEM;
  }
  if (fl_wire_put_job(&job->frame, m, err) != 0) {
    fl_set_error(rt, "cannot queue the job: %s", err);
    return FLOWLUA_EINVAL;
  }
  if (q->n_pending == q->cap_pending) {
    size_t cap = q->cap_pending ? 2 * q->cap_pending : 64;
    fl_pool_job **p = realloc(q->pending, cap * sizeof *p);
    if (!p) {
      fl_set_error(rt, "cannot queue the job: out of memory");
      return FLOWLUA_ENOMEM;
    }
    q->pending = p;
    q->cap_pending = cap;
  }
  if (add(q, job) != 0) {
    fl_set_error(rt, "cannot queue the job: out of memory");
    return FLOWLUA_ENOMEM;
  }
  job->state = FL_PJOB_WAITING;
  q->pending[q->n_pending++] = job;
  if (!fl_timer_armed(&q->flush)) fl_timer_start(&rt->loop, &q->flush, 0);
  if (!fl_timer_armed(&q->tick)) fl_timer_start(&rt->loop, &q->tick, TICK);
  return FLOWLUA_OK;
}

/* The attempt gave up on the job (a timeout, a cancel, its run ended). */
static void job_cancel(fl_wait *wait) {
  fl_pool_job *job = (fl_pool_job *)wait;
  job->run = NULL;
  if (job->state == FL_PJOB_DONE) {
    fl_pool_job_free(job);
    return;
  }
  fl_queue *queue = job->owner;
  if (!job->inserted) return; /* the flush frees it */
  if (push_gone(queue, (int64_t)job->id) != 0) {
    deliver(queue, job); /* its worker's lease will lapse */
    return;
  }
  if (!fl_timer_armed(&queue->flush))
    fl_timer_start(&queue->rt->loop, &queue->flush, 0);
}

void fl_queue_free(fl_queue *q) {
  if (!q) return;
  flowlua *rt = q->rt;
  fl_timer_stop(&rt->loop, &q->flush);
  fl_timer_stop(&rt->loop, &q->tick);
  fl_timer_stop(&rt->loop, &q->news);
  /* Nothing of ours stays queued: what was given up is withdrawn, and
     every job still out too (its run is over). */
  for (size_t i = 0; i < q->n_pending; i++) q->pending[i]->run = NULL;
  for (size_t i = 0; i < q->span; i++)
    if (q->win[i]) q->win[i]->run = NULL;
  size_t n = 0;
  int64_t *seqs = inserted_seqs(q, &n);
  if (seqs && n) withdraw(q, seqs, n, 0);
  free(seqs);
  for (size_t i = 0; i < q->span; i++)
    if (q->win[i]) {
      fl_pool_job *job = q->win[i];
      q->win[i] = NULL;
      fl_pool_job_free(job);
    }
  if (q->fd >= 0) fl_loop_unwatch(&rt->loop, q->fd);
  stop_local(q);
  fl_pgq_close(q->pgq);
  free(q->win);
  free(q->pending);
  free(q->gone);
  free(q);
}
