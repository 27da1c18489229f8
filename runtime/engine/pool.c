/*
 * pool.c — the local pool of worker processes; see pool.h.
 *
 * Everything here runs on the engine's thread, from the event loop: a
 * worker's socket is watched in rt->loop, frames are read and written
 * without blocking (wire.h), and a job's answer wakes its parked attempt
 * (fl_sched_wake). The only waits are bounded: for a worker that closed
 * its socket to be reaped, and for workers to stop when the pool is freed.
 */
#define _GNU_SOURCE
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "process.h"
#include "sched_internal.h"

extern char **environ;

/* The descriptor a worker finds its socket on (`flowlua __worker`). */
#define WORKER_FD 3
/* After a CANCEL, how long a worker may take to end the job (a Lua loop
   ends at the next hook; a C call does not) before it is killed. */
#define CANCEL_GRACE 1.0
/* How long the pool waits for a worker to exit once asked (freeing the
   pool), and for one that closed its socket to be reaped, before SIGKILL. */
#define STOP_GRACE 2.0
#define REAP_GRACE 1.0
/* Jobs a worker may hold at once: it runs them one after another, in
   order, and the next ones wait in its socket, so that it never waits for
   the driver between two quick jobs (a map of no-op elements is bound by
   the round trip otherwise). A job with a timeout is only given to a
   worker that holds nothing, and nothing is queued behind it: its timeout
   starts when it is sent, so it must start at once. */
#define PIPELINE 32
/* A job this long (seconds) makes its worker "slow" (see depth()). */
#define SLOW_JOB 0.005

typedef struct worker {
  fl_pool *pool;
  struct worker *next;
  pid_t pid;
  int fd;
  int ready; /* its HELLO was checked: it may take jobs */
  fl_wire_reader rd;
  fl_wire_writer wr;
  /* The jobs sent to it, in order: the first is the one it runs. */
  fl_pool_job *first, *last;
  int n_jobs;
  int timed;      /* it holds a job with a timeout: nothing more for it */
  int slow;       /* its last job took more than SLOW_JOB */
  double job_start; /* when its current first job became first */
  fl_timer grace; /* armed after a CANCEL: SIGKILL when it fires */
} worker;

struct fl_pool {
  flowlua *rt;
  worker *workers;
  int n_workers;
  fl_pool_job *head, *tail; /* waiting for a worker */
  size_t n_waiting;
  uint64_t next_id;
  char **envp; /* the workers' environment, made before any fork */
  char *env_parent, *env_memory;
};

static void pump(fl_pool *p);

int fl_pool_size(const flowlua *rt) {
  if (rt->opts.workers > 0) return rt->opts.workers;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)(n < 4096 ? n : 4096) : 1;
}

int fl_pool_check(flowlua *rt) {
  if (rt->opts.workers < 0) {
    fl_set_error(rt, "worker tasks need workers, and this runtime starts "
                     "none (--workers 0): with a PostgreSQL history, "
                     "`flowlua worker` processes serve its queues");
    return FLOWLUA_EINVAL;
  }
  if (!rt->worker_program) {
    fl_set_error(rt, "worker tasks need the flowlua program to start "
                     "workers: set flowlua_options.worker_program or "
                     "FLOWLUA_WORKER_PROGRAM to it");
    return FLOWLUA_EINVAL;
  }
  struct stat sb;
  int found = access(rt->worker_program, X_OK) == 0 &&
              stat(rt->worker_program, &sb) == 0;
  if (!found || !S_ISREG(sb.st_mode)) {
    fl_set_error(rt, "the worker program '%s' cannot be run: %s",
                 rt->worker_program,
                 !found ? strerror(errno) : "not a regular file");
    return FLOWLUA_EINVAL;
  }
  if (!rt->script_path) {
    fl_set_error(rt, "worker tasks need a script loaded from a file (a "
                     "worker loads it too); this one was loaded from a "
                     "string");
    return FLOWLUA_EINVAL;
  }
  return FLOWLUA_OK;
}

void fl_pool_job_free(fl_pool_job *job) {
  if (!job) return;
  fl_buf_free(&job->frame);
  fl_buf_free(&job->value);
  fl_buf_free(&job->message);
  fl_buf_free(&job->traceback);
  free(job->queue_name);
  free(job->worker_label);
  free(job);
}

/* ---- the environment and the start of a worker ----------------------------- */

static int make_env(fl_pool *p) {
  flowlua *rt = p->rt;
  size_t n = 0;
  while (environ[n]) n++;
  p->envp = calloc(n + 3, sizeof *p->envp);
  if (asprintf(&p->env_parent, "FLOWLUA_WORKER_PARENT=%ld", (long)getpid()) < 0)
    p->env_parent = NULL;
  if (asprintf(&p->env_memory, "FLOWLUA_WORKER_MEMORY_LIMIT=%zu",
               rt->opts.memory_limit) < 0)
    p->env_memory = NULL;
  if (!p->envp || !p->env_parent || !p->env_memory) return -1;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "FLOWLUA_WORKER_", 15) != 0) p->envp[k++] = environ[i];
  p->envp[k++] = p->env_parent;
  p->envp[k++] = p->env_memory;
  p->envp[k] = NULL;
  return 0;
}

/* In the child between fork and exec: async-signal-safe calls only. */
static void exec_worker(fl_pool *p, int fd, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1); /* the driver died already */
  setpgid(0, 0); /* its own group: a terminal's ^C is the driver's to handle */
  if (fd == WORKER_FD) {
    fcntl(fd, F_SETFD, 0);
  } else if (dup2(fd, WORKER_FD) < 0) {
    _exit(126);
  }
  syscall(SYS_close_range, WORKER_FD + 1, ~0U, 0);
  char *argv[] = {p->rt->worker_program, "__worker", p->rt->script_path, NULL};
  execve(p->rt->worker_program, argv, p->envp);
  _exit(127);
}

static void on_event(int fd, uint32_t events, void *data);
static void grace_over(fl_timer *t);

static int spawn(fl_pool *p) {
  flowlua *rt = p->rt;
  if (!p->envp && make_env(p) != 0) {
    fl_set_error(rt, "cannot start a worker: out of memory");
    return FLOWLUA_ENOMEM;
  }
  worker *w = calloc(1, sizeof *w);
  int sv[2];
  if (!w || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    fl_set_error(rt, "cannot start a worker: %s",
                 w ? strerror(errno) : "out of memory");
    free(w);
    return FLOWLUA_EIO;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    exec_worker(p, sv[1], parent);
  }
  int err = errno;
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    free(w);
    fl_set_error(rt, "cannot start a worker: %s", strerror(err));
    return FLOWLUA_EIO;
  }
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  w->pool = p;
  w->pid = pid;
  w->fd = sv[0];
  fl_wire_reader_init(&w->rd);
  fl_wire_writer_init(&w->wr);
  fl_timer_init(&w->grace, grace_over, w);
  if (fl_loop_watch(&rt->loop, w->fd, EPOLLIN, on_event, w) != 0) {
    close(w->fd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fl_wire_reader_free(&w->rd);
    fl_wire_writer_free(&w->wr);
    free(w);
    fl_set_error(rt, "cannot start a worker: cannot watch its socket");
    return FLOWLUA_EIO;
  }
  w->next = p->workers;
  p->workers = w;
  p->n_workers++;
  return FLOWLUA_OK;
}

/* ---- a job's end ------------------------------------------------------------ */

/* The job has its answer: its attempt resumes, or, abandoned, it is freed. */
static void job_done(fl_pool_job *job) {
  job->state = FL_PJOB_DONE;
  if (job->on_answer)
    job->on_answer(job);
  else if (job->run)
    fl_sched_wake(job->run);
  else
    fl_pool_job_free(job);
}

static void job_lost(fl_pool_job *job, const char *why) {
  job->outcome = FL_PJOB_LOST;
  fl_buf_reset(&job->message);
  fl_buf_adds(&job->message, why);
  job_done(job);
}

/* How a reaped process ended, for a message. */
static void describe_status(int status, char *out, size_t len) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char *abbrev = sigabbrev_np(sig);
    snprintf(out, len, "killed by signal %d (SIG%s)%s", sig,
             abbrev ? abbrev : "?",
             sig == SIGKILL ? ", perhaps by the kernel's OOM killer" : "");
  } else if (WIFEXITED(status)) {
    snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
  } else {
    snprintf(out, len, "ended (wait status %d)", status);
  }
}

/* Reaps w's process: waits a little for one that closed its socket, then
   kills it. */
static void reap(worker *w, char *how, size_t len) {
  int status = 0;
  double until = fl_now() + REAP_GRACE;
  pid_t got;
  while ((got = waitpid(w->pid, &status, WNOHANG)) == 0 && fl_now() < until) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  if (got == 0) {
    kill(w->pid, SIGKILL);
    got = waitpid(w->pid, &status, 0);
  }
  if (got == w->pid)
    describe_status(status, how, len);
  else
    snprintf(how, len, "gone (%s)", strerror(errno));
}

static void unlink_worker(fl_pool *p, worker *w) {
  for (worker **pp = &p->workers; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      p->n_workers--;
      return;
    }
}

static void free_worker(fl_pool *p, worker *w) {
  fl_timer_stop(&p->rt->loop, &w->grace);
  fl_loop_unwatch(&p->rt->loop, w->fd);
  close(w->fd);
  fl_wire_reader_free(&w->rd);
  fl_wire_writer_free(&w->wr);
  free(w);
}

/* The worker is gone or unusable (its socket closed, a protocol error):
   it is reaped, the job it ran fails, and if it died before its HELLO
   (the program or the script would not start) so do the jobs waiting,
   rather than starting workers that die the same way for ever. */
static void worker_lost(worker *w, const char *problem) {
  fl_pool *p = w->pool;
  unlink_worker(p, w);
  char how[160];
  if (problem) kill(w->pid, SIGKILL);
  reap(w, how, sizeof how);
  fl_buf msg = FL_BUF_INIT;
  if (w->first) {
    fl_pool_job *running = w->first, *rest = running->next;
    running->next = NULL;
    /* The ones queued behind it never started: back to the front of the
       pool's queue, in order, for another worker. */
    fl_pool_job *back = NULL, **end = &back, *back_last = NULL;
    for (fl_pool_job *j = rest, *next; j; j = next) {
      next = j->next;
      if (!j->run) { /* given up on meanwhile */
        fl_pool_job_free(j);
        continue;
      }
      j->state = FL_PJOB_WAITING;
      j->next = NULL;
      *end = back_last = j;
      end = &j->next;
      p->n_waiting++;
    }
    if (back) {
      back_last->next = p->head;
      if (!p->head) p->tail = back_last;
      p->head = back;
    }
    w->first = w->last = NULL;
    w->n_jobs = 0;
    if (problem)
      fl_buf_addf(&msg, "the worker process (pid %ld) running it failed: %s",
                  (long)w->pid, problem);
    else
      fl_buf_addf(&msg, "the worker process (pid %ld) running it ended: %s",
                  (long)w->pid, how);
    job_lost(running, fl_buf_str(&msg));
  } else if (!w->ready) {
    fl_buf_reset(&msg);
    fl_buf_addf(&msg, "the worker process (%s __worker %s) %s before it was "
                      "ready%s%s",
                p->rt->worker_program, p->rt->script_path,
                problem ? "failed" : how, problem ? ": " : "",
                problem ? problem : " (its messages are above)");
    for (fl_pool_job *j; (j = p->head);) {
      p->head = j->next;
      p->n_waiting--;
      job_lost(j, fl_buf_str(&msg));
    }
    p->tail = NULL;
  }
  fl_buf_free(&msg);
  free_worker(p, w);
  /* The caller pumps: the jobs it put back, and a replacement. */
}

/* ---- frames from a worker ---------------------------------------------------- */

static int check_hello(worker *w, const fl_wire_frame *f, char *err) {
  fl_wire_hello h;
  if (fl_wire_get_hello(f, &h, err) != 0) return -1;
  if (h.version != FL_WIRE_VERSION) {
    snprintf(err, FL_WIRE_ERR_MAX, "it speaks wire version %llu, this "
             "driver %d", (unsigned long long)h.version, FL_WIRE_VERSION);
    return -1;
  }
  const char *mine = w->pool->rt->script_sha256;
  if (h.script_sha256.n != strlen(mine) ||
      memcmp(h.script_sha256.p, mine, h.script_sha256.n) != 0) {
    snprintf(err, FL_WIRE_ERR_MAX, "it loaded another version of the script "
             "(SHA-256 %.*s, the run's is %.12s...): was it changed since "
             "the run started?",
             (int)(h.script_sha256.n < 12 ? h.script_sha256.n : 12),
             h.script_sha256.p, mine);
    return -1;
  }
  w->ready = 1;
  return 0;
}

static int take_result(worker *w, const fl_wire_frame *f, char *err) {
  fl_wire_result m;
  if (fl_wire_get_result(f, &m, err) != 0) return -1;
  fl_pool_job *job = w->first;
  if (!job || job->id != m.job_id) {
    snprintf(err, FL_WIRE_ERR_MAX, "a RESULT for job %llu, which it does "
             "not run (it runs %llu)", (unsigned long long)m.job_id,
             (unsigned long long)(job ? job->id : 0));
    return -1;
  }
  double now = fl_now();
  w->slow = now - w->job_start > SLOW_JOB;
  w->job_start = now; /* the next one starts now */
  w->first = job->next;
  if (!w->first) w->last = NULL;
  w->n_jobs--;
  job->next = NULL;
  if (!w->first) w->timed = 0;
  fl_timer_stop(&w->pool->rt->loop, &w->grace);
  job->outcome = m.outcome;
  fl_buf_add(&job->value, m.value.p, m.value.n);
  fl_buf_add(&job->message, m.message.p, m.message.n);
  fl_buf_add(&job->traceback, m.traceback.p, m.traceback.n);
  if (job->value.oom || job->message.oom || job->traceback.oom)
    job_lost(job, "out of memory taking the worker's answer");
  else
    job_done(job);
  return 0;
}

static int take_log(worker *w, const fl_wire_frame *f, char *err) {
  fl_wire_log m;
  if (fl_wire_get_log(f, &m, err) != 0) return -1;
  flowlua *rt = w->pool->rt;
  fl_pool_job *job = w->first && w->first->id == m.job_id ? w->first : NULL;
  int level = m.level >= FLOWLUA_LOG_DEBUG && m.level <= FLOWLUA_LOG_ERROR
                  ? (int)m.level
                  : FLOWLUA_LOG_INFO;
  if (job && job->on_log) {
    job->on_log(job, level, m.text.p, m.text.n);
    return 0;
  }
  char *text = strndup(m.text.p, m.text.n);
  if (!text) return 0; /* a log line lost to memory, not the job */
  fl_taskrun *was = rt->current;
  rt->current = job ? job->run : NULL;
  fl_sched_log(rt, level, text);
  rt->current = was;
  free(text);
  return 0;
}

static int take_secret(worker *w, const fl_wire_frame *f, char *err) {
  fl_wire_secret m;
  if (fl_wire_get_secret(f, &m, err) != 0) return -1;
  /* A secret with a NUL byte cannot be a C string to mask; the worker's
     flow.secret refuses those. */
  char *secret = strndup(m.secret.p, m.secret.n);
  if (!secret || fl_log_add_secret(&w->pool->rt->log, secret) != 0) {
    free(secret);
    snprintf(err, FL_WIRE_ERR_MAX, "out of memory keeping a secret");
    return -1;
  }
  free(secret);
  return 0;
}

/* Every whole frame the worker sent: 0, or -1 with err (the worker must go). */
static int take_frames(worker *w, char *err) {
  fl_wire_frame f;
  int got;
  while ((got = fl_wire_reader_next(&w->rd, &f)) == 1) {
    int rc;
    if (!w->ready && f.type != FL_WIRE_HELLO) {
      snprintf(err, FL_WIRE_ERR_MAX, "a %s frame before its HELLO",
               fl_wire_type_name(f.type));
      return -1;
    }
    switch (f.type) {
    case FL_WIRE_HELLO:
      rc = w->ready ? (snprintf(err, FL_WIRE_ERR_MAX, "a second HELLO"), -1)
                    : check_hello(w, &f, err);
      break;
    case FL_WIRE_RESULT:
      rc = take_result(w, &f, err);
      break;
    case FL_WIRE_LOG:
      rc = take_log(w, &f, err);
      break;
    case FL_WIRE_SECRET:
      rc = take_secret(w, &f, err);
      break;
    default:
      snprintf(err, FL_WIRE_ERR_MAX, "a %s frame, which a worker does not "
               "send", fl_wire_type_name(f.type));
      rc = -1;
    }
    if (rc != 0) return -1;
  }
  if (got < 0) snprintf(err, FL_WIRE_ERR_MAX, "%s", w->rd.err);
  return got < 0 ? -1 : 0;
}

/* Why writing to w failed: NULL when its process is gone (EPIPE,
   ECONNRESET: a write can learn that before the read of its end of file,
   and then the process's end, not the write, says why), else the error. */
static const char *write_problem(const worker *w, int err) {
  return err == EPIPE || err == ECONNRESET ? NULL : w->wr.err;
}

static int flush_worker(worker *w) {
  int rc = fl_wire_writer_flush(&w->wr, w->fd);
  if (rc < 0) return errno ? errno : EIO;
  fl_loop_watch(&w->pool->rt->loop, w->fd, rc == 0 ? EPOLLIN | EPOLLOUT : EPOLLIN,
                on_event, w);
  return 0;
}

static void on_event(int fd, uint32_t events, void *data) {
  (void)fd;
  worker *w = data;
  fl_pool *p = w->pool;
  char err[FL_WIRE_ERR_MAX] = "";
  int werr;
  if ((events & EPOLLOUT) && (werr = flush_worker(w)) != 0) {
    worker_lost(w, write_problem(w, werr));
  } else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    int got = fl_wire_reader_fill(&w->rd, w->fd);
    /* A reset is how a socket tells that its process died with bytes
       unread: as the end of file, the process's end says why. */
    int reset = got < 0 && errno == ECONNRESET;
    /* What it said before it went still counts (its last LOG lines). */
    if (take_frames(w, err) != 0)
      worker_lost(w, err);
    else if (got < 0 && !reset)
      worker_lost(w, w->rd.err);
    else if (got == 0 || reset) /* the process is ending */
      worker_lost(w, NULL);
  }
  pump(p);
}

/* ---- giving jobs out ----------------------------------------------------------- */

static void grace_over(fl_timer *t) {
  worker *w = t->data;
  kill(w->pid, SIGKILL); /* the socket's end of file follows */
}

/* The attempt gave up on the job (a timeout, a cancel, its run ended). */
static void job_cancel(fl_wait *wait) {
  fl_pool_job *job = (fl_pool_job *)wait;
  fl_pool *p = job->pool;
  job->run = NULL;
  if (job->state == FL_PJOB_DONE) {
    fl_pool_job_free(job);
    return;
  }
  if (job->state == FL_PJOB_WAITING) {
    fl_pool_job **pp = &p->head;
    fl_pool_job *prev = NULL;
    while (*pp && *pp != job) {
      prev = *pp;
      pp = &(*pp)->next;
    }
    if (*pp) {
      *pp = job->next;
      if (p->tail == job) p->tail = prev;
      p->n_waiting--;
    }
    fl_pool_job_free(job);
    return;
  }
  /* Sent: the worker is told, and killed if it does not answer in time
     (a C call the worker's own hook cannot stop). The answer, or its
     death, frees the job. */
  for (worker *w = p->workers; w; w = w->next) {
    if (w->first != job) {
      /* Queued behind another: the worker answers it without running it
         when it sees the CANCEL in time, else runs it; either answer is
         thrown away. No grace: it holds up nothing yet. */
      for (fl_pool_job *q = w->first; q; q = q->next)
        if (q == job) {
          if (fl_wire_put_cancel(&w->wr.out, job->id, NULL) != 0 ||
              flush_worker(w) != 0)
            kill(w->pid, SIGKILL);
          return;
        }
      continue;
    }
    if (fl_wire_put_cancel(&w->wr.out, job->id, NULL) != 0 ||
        flush_worker(w) != 0 ||
        fl_timer_start(&p->rt->loop, &w->grace, CANCEL_GRACE) != 0)
      kill(w->pid, SIGKILL);
    return;
  }
}

/* Appends job to w's frames (flushed by the caller). */
static void send_job(fl_pool *p, worker *w, fl_pool_job *job) {
  job->state = FL_PJOB_SENT;
  job->worker_pid = w->pid;
  if (job->run) {
    job->run->worker_pid = (int32_t)w->pid;
    fl__sched_worker_took(job->run);
  }
  job->next = NULL;
  if (w->last) {
    w->last->next = job;
  } else {
    w->first = job;
    w->job_start = fl_now();
  }
  w->last = job;
  w->n_jobs++;
  if (job->timeout > 0) w->timed = 1;
  /* The attempt's timeout starts now that a worker has it. */
  if (job->run && job->timeout > 0) {
    fl__sched_arm_deadline(&p->rt->loop, job->run, fl_now(), job->timeout);
  }
  /* The job keeps its frame: if the worker dies before it starts the
     job, the job goes to another worker as it is. */
  fl_buf_add(&w->wr.out, job->frame.data, job->frame.len);
}

/* How many jobs w may hold. Never more than its share of the work: the
   first worker to say HELLO must not take every job while the others
   start. A worker whose jobs take long holds two (one running, the next
   in its socket): queueing more behind a slow job only keeps them from a
   worker that frees up first. */
static int depth(const fl_pool *p, const worker *w) {
  size_t in_flight = 0;
  for (const worker *v = p->workers; v; v = v->next) in_flight += (size_t)v->n_jobs;
  size_t size = (size_t)fl_pool_size(p->rt);
  size_t share = (p->n_waiting + in_flight + size - 1) / size;
  int d = share < PIPELINE ? (int)share : PIPELINE;
  if (w->slow && d > 2) d = 2;
  return d > 0 ? d : 1;
}

/* Whether w may take job now (see PIPELINE). */
static int can_take(const fl_pool *p, const worker *w, const fl_pool_job *job) {
  if (!w->ready || w->timed) return 0;
  if (job->timeout > 0) return w->n_jobs == 0;
  return w->n_jobs < depth(p, w);
}

static void pump(fl_pool *p) {
again:
  /* Round after round, one job to each worker that can take one, so that
     the jobs spread over the workers instead of filling the first. */
  for (int sent = 1; sent && p->head;) {
    sent = 0;
    for (worker *w = p->workers; w && p->head; w = w->next) {
      if (!can_take(p, w, p->head)) continue;
      fl_pool_job *job = p->head;
      p->head = job->next;
      if (!p->head) p->tail = NULL;
      p->n_waiting--;
      send_job(p, w, job);
      sent = 1;
    }
  }
  int lost = 0;
  for (worker *w = p->workers; w;) {
    worker *next = w->next; /* worker_lost frees w, and no other */
    int werr = 0;
    if (fl_wire_writer_pending(&w->wr) &&
        (w->wr.out.oom || (werr = flush_worker(w)) != 0)) {
      worker_lost(w, w->wr.out.oom ? "out of memory sending a job"
                                   : write_problem(w, werr));
      lost = 1;
    }
    w = next;
  }
  if (lost) goto again; /* each pass loses a worker: it ends */
  int starting = 0;
  for (worker *w = p->workers; w; w = w->next) starting += !w->ready;
  int size = fl_pool_size(p->rt);
  while ((size_t)starting < p->n_waiting && p->n_workers < size) {
    if (spawn(p) != FLOWLUA_OK) {
      /* No worker for them now: the waiting jobs fail with the reason
         (their retries apply), rather than waiting for ever. */
      const char *why = fl_buf_str(&p->rt->err);
      for (fl_pool_job *j; (j = p->head);) {
        p->head = j->next;
        p->n_waiting--;
        job_lost(j, why);
      }
      p->tail = NULL;
      return;
    }
    starting++;
  }
}

int fl_pool_submit(flowlua *rt, fl_pool_job *job, fl_wire_job *m) {
  if (!rt->pool) {
    int status = fl_pool_check(rt);
    if (status) return status;
    fl_pool *p = calloc(1, sizeof *p);
    if (!p) {
      fl_set_error(rt, "cannot start the worker pool: out of memory");
      return FLOWLUA_ENOMEM;
    }
    p->rt = rt;
    rt->pool = p;
  }
  fl_pool *p = rt->pool;
  job->pool = p;
  job->id = m->job_id = ++p->next_id;
  job->wait.cancel = job_cancel;
  char err[FL_WIRE_ERR_MAX];
  if (fl_wire_put_job(&job->frame, m, err) != 0) {
    fl_set_error(rt, "cannot send the job to a worker: %s", err);
    return FLOWLUA_EINVAL;
  }
  job->state = FL_PJOB_WAITING;
  job->next = NULL;
  if (p->tail)
    p->tail->next = job;
  else
    p->head = job;
  p->tail = job;
  p->n_waiting++;
  pump(p);
  return FLOWLUA_OK;
}

/* ---- stopping ---------------------------------------------------------------- */

void fl_pool_free(fl_pool *p) {
  if (!p) return;
  for (worker *w = p->workers; w; w = w->next) {
    fl_wire_put_bye(&w->wr.out, NULL);
    fl_wire_writer_flush(&w->wr, w->fd);
    shutdown(w->fd, SHUT_WR);
    kill(w->pid, SIGTERM);
  }
  double until = fl_now() + STOP_GRACE;
  for (worker *w; (w = p->workers);) {
    fl_proc_reap_by(w->pid, until);
    for (fl_pool_job *j; (j = w->first);) {
      w->first = j->next;
      j->run = NULL;
      job_lost(j, "the runtime stopped its workers");
    }
    p->workers = w->next;
    free_worker(p, w);
  }
  for (fl_pool_job *j; (j = p->head);) {
    p->head = j->next;
    j->run = NULL;
    job_lost(j, "the runtime stopped its workers");
  }
  free(p->envp);
  free(p->env_parent);
  free(p->env_memory);
  free(p);
}
