/*
 * queue_worker.c — a `flowlua worker` process: the jobs of PostgreSQL
 * queues run for drivers anywhere; see queue.h.
 *
 * One runtime per script (each loaded its script: its SHA-256 is the
 * script version it serves), each with its pool of worker processes
 * (pool.c) where the jobs run, exactly as a driver's own worker tasks
 * would. This loop claims jobs (as many as the slots free, more while the
 * jobs are quick), hands each to the pool of its script, renews the
 * leases of the jobs in hand every third of the lease, and writes the
 * answers back in batches. It sleeps in one epoll over the database
 * socket (a NOTIFY wakes it for new jobs) and every runtime's loop, and
 * looks for jobs at least once a second without being told.
 *
 * A job the database says this worker lost (its lease lapsed while the
 * process was stopped or cut off) is stopped here and its answer thrown
 * away: the job may already have run elsewhere. A job whose driver asks
 * it to stop (a cancel, a timeout) is stopped as a local attempt is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "pg_queue.h"
#include "queue.h"
#include "wire.h"

/* Look for jobs at least this often, without a notification. */
#define POLL 1.0
/* A job quicker than this (seconds, on average) lets the worker hold
   many at once (PREFETCH per slot), so that the round trips to the
   database do not bound a stream of small jobs; slower ones, one per
   slot, so that an idle worker elsewhere gets the next. */
#define QUICK_JOB 0.005
#define PREFETCH 32

typedef struct relayed {
  int64_t id;
  fl_pool_job *job; /* NULL once answered (or never submitted) */
  flowlua *rt;
  fl_buf answer;    /* its LOG frames, then its RESULT */
  double started, answered_at;
  uint8_t answered, discard, stopping;
} relayed;

typedef struct relay {
  flowlua *const *rts;
  size_t n_rts;
  const fl_queue_work_opts *o;
  fl_pgq *pgq;
  relayed **held;
  size_t n_held, cap_held;
  double avg_job; /* seconds, a moving average */
  int want_claim;
} relay;

static void log_to(flowlua *rt, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_to(flowlua *rt, int level, const char *fmt, ...) {
  fl_buf b = FL_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  fl_buf_addvf(&b, fmt, ap);
  va_end(ap);
  fl_log_printf(&rt->log, level, NULL, "%s", fl_buf_str(&b));
  fl_buf_free(&b);
}

/* ---- a job's answer ------------------------------------------------------- */

/* Text a worker process sent, masked with the secrets it read, as a
   frame's bytes. */
static void masked(flowlua *rt, const char *p, size_t n, fl_buf *out) {
  char *text = strndup(p ? p : "", n);
  if (!text) {
    fl_buf_adds(out, "(out of memory)");
    return;
  }
  fl_log_mask(&rt->log, text, out);
  free(text);
}

static void on_log(fl_pool_job *job, int level, const char *text, size_t n) {
  relayed *r = job->owner;
  fl_buf line = FL_BUF_INIT;
  masked(r->rt, text, n, &line);
  fl_wire_log m = {.job_id = (uint64_t)r->id, .level = level,
                   .text = {line.data ? line.data : "", line.len}};
  fl_wire_put_log(&r->answer, &m, NULL);
  fl_buf_free(&line);
}

static void on_answer(fl_pool_job *job) {
  relayed *r = job->owner;
  flowlua *rt = r->rt;
  fl_buf message = FL_BUF_INIT, traceback = FL_BUF_INIT;
  masked(rt, job->message.data, job->message.len, &message);
  masked(rt, job->traceback.data, job->traceback.len, &traceback);
  int outcome = job->outcome == FL_PJOB_LOST ? FL_WIRE_FAILED : job->outcome;
  if (outcome == FL_WIRE_SUCCESS && job->value.len &&
      fl_log_has_secret(&rt->log, job->value.data, job->value.len)) {
    /* An empty SECRET: the result holds one (the driver then keeps it
       out of the history); the secret itself stays here. */
    fl_wire_secret s = {.job_id = (uint64_t)r->id, .secret = {"", 0}};
    fl_wire_put_secret(&r->answer, &s, NULL);
  }
  fl_wire_result m = {.job_id = (uint64_t)r->id, .outcome = outcome,
                      .value = {job->value.data ? job->value.data : "", job->value.len},
                      .message = {message.data ? message.data : "", message.len},
                      .traceback = {traceback.data ? traceback.data : "", traceback.len}};
  char err[FL_WIRE_ERR_MAX];
  if (fl_wire_put_result(&r->answer, &m, err) != 0) {
    fl_buf_reset(&r->answer);
    fl_wire_result bad = {.job_id = (uint64_t)r->id, .outcome = FL_WIRE_FAILED,
                          .message = {err, strlen(err)}};
    fl_wire_put_result(&r->answer, &bad, NULL);
  }
  fl_buf_free(&message);
  fl_buf_free(&traceback);
  r->answered = 1;
  r->answered_at = fl_now();
  r->job = NULL;
  fl_pool_job_free(job);
}

/* A job that cannot run here (its frame does not parse, no pool): its
   answer is a failure with why. */
static void refuse(relayed *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void refuse(relayed *r, const char *fmt, ...) {
  fl_buf why = FL_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  fl_buf_addvf(&why, fmt, ap);
  va_end(ap);
  fl_wire_result m = {.job_id = (uint64_t)r->id, .outcome = FL_WIRE_FAILED,
                      .message = {fl_buf_str(&why), why.len}};
  fl_buf_reset(&r->answer);
  fl_wire_put_result(&r->answer, &m, NULL);
  fl_buf_free(&why);
  r->answered = 1;
  r->answered_at = fl_now();
}

/* ---- jobs in hand ------------------------------------------------------------ */

static int hold(relay *w, relayed *r) {
  if (w->n_held == w->cap_held) {
    size_t cap = w->cap_held ? 2 * w->cap_held : 64;
    relayed **h = realloc(w->held, cap * sizeof *h);
    if (!h) return -1;
    w->held = h;
    w->cap_held = cap;
  }
  w->held[w->n_held++] = r;
  return 0;
}

static void release(relayed *r) {
  fl_buf_free(&r->answer);
  free(r);
}

/* Stops a job running here: the pool tells its process (and kills it if
   it does not stop); its answer comes as any other. */
static void stop_job(relayed *r) {
  if (!r->job || r->stopping) return;
  r->stopping = 1;
  fl_pool_job *job = r->job;
  if (job->state == FL_PJOB_WAITING) {
    /* Not sent to a process yet: the pool frees it now. */
    r->job = NULL;
    job->wait.cancel(&job->wait);
    refuse(r, "stopped before it started");
    return;
  }
  /* Sent: the answer (or the process's death) comes back to on_answer,
     which must still find the job's owner. */
  job->on_answer = on_answer;
  job->wait.cancel(&job->wait);
}

/* The runtime that loaded the script with this SHA-256, or NULL. */
static flowlua *runtime_of(relay *w, const char *sha) {
  for (size_t i = 0; i < w->n_rts; i++)
    if (sha && strcmp(w->rts[i]->script_sha256, sha) == 0) return w->rts[i];
  return NULL;
}

static void start_job(relay *w, const fl_pgq_job *j) {
  relayed *r = calloc(1, sizeof *r);
  if (!r) return; /* its lease lapses: the driver retries it */
  r->id = j->id;
  r->started = fl_now();
  if (hold(w, r) != 0) {
    free(r);
    return;
  }
  r->rt = runtime_of(w, j->script_sha);
  if (!r->rt) {
    r->rt = w->rts[0];
    refuse(r, "script version %.12s is not loaded by worker %d",
           j->script_sha ? j->script_sha : "?", (int)getpid());
    return;
  }
  fl_wire_frame f;
  fl_wire_job m;
  char err[FL_WIRE_ERR_MAX];
  if (fl_wire_frame_parse(j->frame, j->frame_len, &f, err) != 0 ||
      (f.type != FL_WIRE_JOB && (snprintf(err, sizeof err, "a %s frame",
                                          fl_wire_type_name(f.type)), 1)) ||
      fl_wire_get_job(&f, &m, err) != 0) {
    refuse(r, "the job in the queue is malformed: %s", err);
    return;
  }
  fl_pool_job *job = calloc(1, sizeof *job);
  if (!job) {
    refuse(r, "out of memory for the job");
    return;
  }
  job->on_answer = on_answer;
  job->on_log = on_log;
  job->owner = r;
  job->timeout = (double)m.timeout_ms / 1000.0;
  r->job = job;
  if (fl_pool_submit(r->rt, job, &m) != FLOWLUA_OK) {
    if (r->job) { /* not answered inside the submit */
      r->job = NULL;
      fl_pool_job_free(job);
      refuse(r, "%s", fl_buf_str(&r->rt->err));
    }
  }
}

/* ---- the database ------------------------------------------------------------- */

static size_t in_hand(const relay *w) {
  size_t n = 0;
  for (size_t i = 0; i < w->n_held; i++) n += !w->held[i]->answered;
  return n;
}

static int quick(const relay *w) {
  return w->avg_job > 0 && w->avg_job < QUICK_JOB;
}

/* How many jobs it may hold at once. */
static size_t limit_of(const relay *w) {
  return (size_t)w->o->slots * (quick(w) ? PREFETCH : 1);
}

static int claim(relay *w) {
  size_t busy = in_hand(w), limit = limit_of(w);
  /* Quick jobs are claimed in batches: once half of the last are done. */
  if (busy >= limit || (quick(w) && busy > limit / 2)) return FLOWLUA_OK;
  fl_pgq_job *jobs;
  size_t n;
  int want = (int)(limit - busy);
  int rc = fl_pgq_claim(w->pgq, want, &jobs, &n);
  if (rc != FLOWLUA_OK) return rc;
  for (size_t i = 0; i < n; i++) start_job(w, &jobs[i]);
  /* All it asked for: there may be more. */
  w->want_claim = n == (size_t)want;
  return FLOWLUA_OK;
}

/* When the answers ready should be written (0: now; < 0: none ready):
   a slow job's at once, quick ones in batches, none held longer than
   BATCH_WAIT. */
#define BATCH_WAIT 0.002
static double answers_due(const relay *w, int stopping) {
  size_t ready = 0, busy = 0;
  double oldest = 0;
  for (size_t i = 0; i < w->n_held; i++) {
    const relayed *r = w->held[i];
    if (!r->answered) {
      busy++;
    } else {
      if (!ready || r->answered_at < oldest) oldest = r->answered_at;
      ready++;
    }
  }
  if (!ready) return -1;
  if (stopping || busy == 0 || !quick(w) || ready >= limit_of(w) / 2) return 0;
  return oldest + BATCH_WAIT;
}

/* Writes the answers ready, and forgets them. */
static int finish(relay *w) {
  size_t n = 0;
  for (size_t i = 0; i < w->n_held; i++) n += w->held[i]->answered;
  if (n == 0) return FLOWLUA_OK;
  int64_t *ids = malloc(n * sizeof *ids);
  fl_buf *answers = malloc(n * sizeof *answers);
  if (!ids || !answers) {
    free(ids);
    free(answers);
    return FLOWLUA_ENOMEM;
  }
  size_t k = 0;
  double now = fl_now();
  for (size_t i = 0; i < w->n_held; i++) {
    relayed *r = w->held[i];
    if (!r->answered || r->discard) continue;
    ids[k] = r->id;
    answers[k++] = r->answer;
    double took = now - r->started;
    w->avg_job = w->avg_job > 0 ? 0.8 * w->avg_job + 0.2 * took : took;
  }
  size_t written = 0;
  int rc = fl_pgq_finish(w->pgq, ids, answers, k, &written);
  free(ids);
  free(answers);
  if (rc != FLOWLUA_OK) return rc;
  if (written < k)
    log_to(w->rts[0], FLOWLUA_LOG_WARN,
           "%zu answer%s thrown away: the lease lapsed (the job was given up "
           "or runs elsewhere)", k - written, k - written == 1 ? "" : "s");
  size_t keep = 0;
  for (size_t i = 0; i < w->n_held; i++) {
    relayed *r = w->held[i];
    if (r->answered)
      release(r);
    else
      w->held[keep++] = r;
  }
  w->n_held = keep;
  w->want_claim = 1;
  return FLOWLUA_OK;
}

static int renew(relay *w) {
  size_t n = w->n_held;
  int64_t *ids = malloc((n + 1) * sizeof *ids);
  unsigned char *keep = malloc(n + 1);
  if (!ids || !keep) {
    free(ids);
    free(keep);
    return FLOWLUA_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) ids[i] = w->held[i]->id;
  int rc = fl_pgq_renew(w->pgq, (int)in_hand(w), ids, n, keep);
  if (rc == FLOWLUA_OK) {
    for (size_t i = 0; i < n; i++) {
      relayed *r = w->held[i];
      if (keep[i] == 0 && !r->discard) {
        log_to(w->rts[0], FLOWLUA_LOG_WARN,
               "job %" PRId64 ": its lease lapsed (this worker was stopped or "
               "cut off): stopped here, its answer thrown away", r->id);
        r->discard = 1;
        stop_job(r);
      } else if (keep[i] == 2) {
        stop_job(r); /* its driver gave it up */
      }
    }
  }
  free(ids);
  free(keep);
  return rc;
}

/* ---- the loop ------------------------------------------------------------------- */

static int watch_db(relay *w, int ep, int *fd) {
  int now = fl_pgq_fd(w->pgq);
  if (now == *fd) return 0;
  if (*fd >= 0) epoll_ctl(ep, EPOLL_CTL_DEL, *fd, NULL);
  *fd = -1;
  if (now < 0) return 0;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, now, &ev) != 0 && errno != EEXIST) return -1;
  *fd = now;
  return 0;
}

static int serve(relay *w, int ep) {
  flowlua *first = w->rts[0];
  double lease = w->o->lease;
  double next_renew = fl_now() + lease / 3, next_poll = fl_now();
  int db_fd = -1, stopping = 0, rc = FLOWLUA_OK;
  unsigned reconnects = fl_pgq_reconnects(w->pgq);
  w->want_claim = 1;
  for (;;) {
    if (first->cancel_requested) {
      /* A second signal: the jobs in hand are abandoned (stopped here;
         their leases lapse and their drivers retry them elsewhere). */
      log_to(first, FLOWLUA_LOG_WARN, "abandoning %zu job%s in hand",
             in_hand(w), in_hand(w) == 1 ? "" : "s");
      break;
    }
    if (first->stop_requested && !stopping) {
      stopping = 1;
      size_t n = in_hand(w);
      log_to(first, FLOWLUA_LOG_INFO, "stopping: taking no more jobs%s",
             n ? "; finishing the ones in hand" : "");
    }
    double due = answers_due(w, stopping);
    if (due >= 0 && due <= fl_now() && (rc = finish(w)) != FLOWLUA_OK) break;
    if (stopping && w->n_held == 0) break;
    double now = fl_now();
    if (now >= next_renew) {
      if ((rc = renew(w)) != FLOWLUA_OK) break;
      next_renew = now + lease / 3;
    }
    if (now >= next_poll) {
      w->want_claim = 1;
      next_poll = now + POLL;
    }
    if (!stopping && w->want_claim) {
      w->want_claim = 0;
      if ((rc = claim(w)) != FLOWLUA_OK) break;
    }
    if (fl_pgq_reconnects(w->pgq) != reconnects) {
      reconnects = fl_pgq_reconnects(w->pgq);
      log_to(first, FLOWLUA_LOG_WARN, "reconnected to the database");
      next_renew = 0; /* see at once which jobs it still holds */
    }
    if (watch_db(w, ep, &db_fd) != 0) {
      rc = FLOWLUA_EIO;
      fl_set_error(first, "worker: cannot watch the database connection: %s",
                   strerror(errno));
      break;
    }
    /* Sleep until news, the next renewal or poll, or a runtime's timer. */
    double until = next_renew < next_poll ? next_renew : next_poll;
    for (size_t i = 0; i < w->n_rts; i++) {
      double next = fl_loop_next_due(&w->rts[i]->loop); /* from now */
      if (next >= 0 && now + next < until) until = now + next;
    }
    due = answers_due(w, stopping);
    if (due >= 0 && due < until) until = due;
    /* Notifications libpq read during a statement are in its queue, and
       the socket will not tell of them again. */
    if (fl_pgq_drain(w->pgq, NULL, NULL, NULL) > 0) w->want_claim = 1;
    int ready_now = w->want_claim || (stopping && w->n_held == 0);
    double wait = ready_now ? 0 : until - fl_now();
    int ms = wait <= 0 ? 0 : (int)(wait * 1000.0) + 1;
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, ms);
    if (n < 0 && errno != EINTR) {
      rc = FLOWLUA_EIO;
      fl_set_error(first, "worker: epoll_wait: %s", strerror(errno));
      break;
    }
    for (int i = 0; i < n; i++)
      if (evs[i].data.u64 == 0 && fl_pgq_drain(w->pgq, NULL, NULL, NULL) != 0)
        w->want_claim = 1; /* new jobs, or a lost connection to mend */
    for (size_t i = 0; i < w->n_rts; i++) fl_loop_poll(&w->rts[i]->loop, 0);
  }
  return rc;
}

int fl_queue_work(flowlua *const *rts, size_t n, const fl_queue_work_opts *o) {
  flowlua *first = rts[0];
  fl_buf_reset(&first->err);
  relay w = {.rts = rts, .n_rts = n, .o = o};
  char err[1024];
  int rc = fl_pgq_open(first->state_path, FL_PGQ_WORKER, &w.pgq, err, sizeof err);
  if (rc != FLOWLUA_OK) {
    fl_set_error(first, "%s", err);
    return rc;
  }
  const char **shas = calloc(n, sizeof *shas);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (!shas || ep < 0) {
    free(shas);
    if (ep >= 0) close(ep);
    fl_pgq_close(w.pgq);
    fl_set_error(first, "worker: cannot start: %s",
                 shas ? strerror(errno) : "out of memory");
    return FLOWLUA_EIO;
  }
  for (size_t i = 0; i < n; i++) {
    shas[i] = rts[i]->script_sha256;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i + 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, rts[i]->loop.epfd, &ev);
  }
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  fl_pgq_self self = {.host = host, .pid = getpid(), .queues = o->queues,
                      .n_queues = o->n_queues, .scripts = shas,
                      .n_scripts = n, .slots = o->slots, .lease = o->lease};
  rc = fl_pgq_register(w.pgq, &self);
  if (rc == FLOWLUA_OK) {
    log_to(first, FLOWLUA_LOG_INFO,
           "worker %s:%d serving %s with %d slot%s, lease %g s", host,
           (int)getpid(), o->n_queues ? "the queues given" : "every queue",
           o->slots, o->slots == 1 ? "" : "s", o->lease);
    rc = serve(&w, ep);
    if (rc != FLOWLUA_OK && !first->err.len)
      fl_set_error(first, "worker: %s", fl_pgq_errmsg(w.pgq));
    /* Gone from the list; on failure its lease says so in time. */
    if (rc == FLOWLUA_OK) fl_pgq_unregister(w.pgq);
  } else {
    fl_set_error(first, "worker: %s", fl_pgq_errmsg(w.pgq));
  }
  /* Jobs still in hand after a failure: stopped; their leases lapse. */
  for (size_t i = 0; i < w.n_held; i++) {
    relayed *r = w.held[i];
    if (r->job) {
      r->job->on_answer = NULL;
      r->job->owner = NULL;
      r->job->on_log = NULL;
      r->job->wait.cancel(&r->job->wait);
    }
    release(r);
  }
  free(w.held);
  free(shas);
  close(ep);
  fl_pgq_close(w.pgq);
  return rc;
}
