/*
 * process.c — spawning and watching child processes; see process.h.
 *
 * vfork and exec (cheap and safe in a big process) with a new process group,
 * default signal dispositions, only descriptors 0, 1 and 2 (whatever else
 * flowlua or its host has open, close-on-exec or not, stays behind), and
 * SIGKILL at flowlua's death (PR_SET_PDEATHSIG: a SIGKILLed flowlua cannot
 * kill the process group itself). The exit is seen through pidfd_open(2)
 * (Linux 5.3+, required). The result is final once the child is reaped and
 * its pipes are drained.
 *
 * The death signal is sent when the THREAD that started the child ends, not
 * the process: the runtime starts children from the thread that drives its
 * loop, which lives for the whole run, and a run never leaves a child behind
 * (cancel and the end of a task kill it), so the two coincide here.
 */
#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void fl_proc_init(fl_proc *p) {
  memset(p, 0, sizeof *p);
  p->pid = -1;
  p->pidfd = p->in_fd = p->out_fd = p->err_fd = -1;
}

static void close_fd(fl_proc *p, int *fd) {
  if (*fd < 0) return;
  fl_loop_unwatch(p->loop, *fd);
  close(*fd);
  *fd = -1;
}

static void maybe_finish(fl_proc *p) {
  if (p->finished || p->running || p->out_fd >= 0 || p->err_fd >= 0) return;
  close_fd(p, &p->in_fd);
  p->finished = 1;
  p->ended = fl_now();
  if (p->done) p->done(p);
}

/* Reads what a pipe has; closes it at EOF. Returns 0, or -1 if the output
   limit was passed (the caller kills the child). */
static int drain(fl_proc *p, int *fd, fl_buf *b) {
  char chunk[65536];
  for (;;) {
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n > 0) {
      if (b->len + (size_t)n > p->max_output) {
        p->too_much = 1;
        return -1;
      }
      fl_buf_add(b, chunk, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    close_fd(p, fd); /* EOF or a read error: nothing more will come */
    return 0;
  }
}

static void reap(fl_proc *p, int block) {
  if (!p->running) return;
  int status;
  pid_t r;
  do r = waitpid(p->pid, &status, block ? 0 : WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == p->pid || (r < 0 && errno == ECHILD)) {
    p->status = r == p->pid ? status : 0;
    p->running = 0;
    close_fd(p, &p->pidfd);
  }
}

static void on_output(int fd, uint32_t events, void *data) {
  (void)events;
  fl_proc *p = data;
  int *slot = fd == p->out_fd ? &p->out_fd : &p->err_fd;
  if (drain(p, slot, slot == &p->out_fd ? &p->out : &p->err) != 0) {
    kill(-p->pid, SIGKILL);
    close_fd(p, &p->out_fd);
    close_fd(p, &p->err_fd);
  }
  maybe_finish(p);
}

static void on_exit_fd(int fd, uint32_t events, void *data) {
  (void)fd, (void)events;
  fl_proc *p = data;
  reap(p, 0);
  if (p->running) return;
  /* The child is gone: what it wrote is in the pipes now. Take it, and do
     not wait for descendants that may still hold the pipes open. */
  if (p->out_fd >= 0) (void)drain(p, &p->out_fd, &p->out);
  if (p->err_fd >= 0) (void)drain(p, &p->err_fd, &p->err);
  close_fd(p, &p->out_fd);
  close_fd(p, &p->err_fd);
  maybe_finish(p);
}

static void on_stdin(int fd, uint32_t events, void *data) {
  (void)fd;
  fl_proc *p = data;
  if (events & (EPOLLERR | EPOLLHUP)) {
    close_fd(p, &p->in_fd); /* the child closed its stdin: fine */
    return;
  }
  while (p->stdin_off < p->stdin_len) {
    ssize_t n = write(p->in_fd, p->stdin_data + p->stdin_off,
                      p->stdin_len - p->stdin_off);
    if (n > 0) {
      p->stdin_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    break; /* EPIPE: the child does not want the rest */
  }
  close_fd(p, &p->in_fd);
}

static int pidfd_open_compat(pid_t pid) {
#ifdef SYS_pidfd_open
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

/* What the child does between vfork and exec, prepared by the parent: the
   child shares the parent's memory and may only make system calls (no
   malloc, no locks, no stdio). */
typedef struct spawn_plan {
  char *const *argv, *const *envp;
  const char *cwd;
  int stdin_fd;       /* becomes 0; -1: /dev/null */
  int out_fd, err_fd; /* become 1 and 2 */
  int fd_limit;       /* close below this when close_range is missing */
  pid_t parent;
  volatile int err;   /* the child's errno when it could not exec */
} spawn_plan;

/* Signals whose disposition the child gets back as the default even when
   flowlua ignores them (it ignores SIGPIPE; a host may ignore others). */
static int reset_to_default(int sig) {
  return sig == SIGINT || sig == SIGTERM || sig == SIGPIPE || sig == SIGCHLD;
}

static void child_close_others(const spawn_plan *sp) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0) return;
#endif
  for (int fd = 3; fd < sp->fd_limit; fd++) close(fd);
}

static void child_fail(spawn_plan *sp) {
  sp->err = errno ? errno : EIO;
  _exit(127);
}

/* The child: default signal handling, its own process group, death with
   flowlua, the three standard descriptors and no other, then exec. */
__attribute__((noreturn)) static void child_exec(spawn_plan *sp) {
  /* All signals are blocked (the parent did it before vfork): flowlua's
     handlers must be gone before they are unblocked, or one could run in
     this copy sharing the parent's memory. */
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction sa;
    if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) != 0)
      continue;
    if (sa.sa_handler == SIG_DFL) continue;
    if (sa.sa_handler == SIG_IGN && !reset_to_default(sig)) continue;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
  }
  if (setpgid(0, 0) != 0) child_fail(sp);
  /* SIGKILL flowlua, and the child must not live on. If the parent died
     before the request was made, nothing would send it: check. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(sp);
  if (getppid() != sp->parent) _exit(127);
  int in = sp->stdin_fd;
  if (in < 0 && (in = open("/dev/null", O_RDONLY)) < 0) child_fail(sp);
  if (dup2(in, 0) < 0 || dup2(sp->out_fd, 1) < 0 || dup2(sp->err_fd, 2) < 0)
    child_fail(sp);
  if (sp->cwd && chdir(sp->cwd) != 0) child_fail(sp);
  child_close_others(sp);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  execvpe(sp->argv[0], sp->argv, sp->envp);
  child_fail(sp);
  _exit(127); /* not reached */
}

/* vfork, not fork: a flowlua with gigabytes of Lua heap must still start
   children cheaply and without overcommitting memory. Returns the pid, or
   -1 with errno (the child's own when it could not exec; it is reaped). */
static pid_t spawn_child(spawn_plan *sp) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  sp->err = 0;
  pid_t pid = vfork();
  if (pid == 0) child_exec(sp);
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) {
    errno = e;
    return -1;
  }
  if (sp->err) {
    e = sp->err;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    errno = e;
    return -1;
  }
  return pid;
}

/* A pipe end that is 0, 1 or 2 (flowlua started with one of them closed)
   would be overwritten by the child's dup2s: move it above them. */
static int keep_above_stdio(int *fd) {
  if (*fd < 0 || *fd > 2) return 0;
  int moved = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return -1;
  close(*fd);
  *fd = moved;
  return 0;
}

static int open_pipe(int ends[2]) {
  if (pipe2(ends, O_CLOEXEC) != 0) return -1;
  return keep_above_stdio(&ends[0]) != 0 || keep_above_stdio(&ends[1]) != 0 ? -1
                                                                              : 0;
}

static int descriptor_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
      rl.rlim_cur > 1 << 20)
    return 1 << 16;
  return (int)rl.rlim_cur;
}

int fl_proc_start(fl_loop *loop, fl_proc *p, const fl_proc_opts *o,
                  fl_proc_done_cb done, void *data) {
  fl_proc_init(p);
  p->loop = loop;
  p->done = done;
  p->data = data;
  p->max_output = o->max_output;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, rc = -1;
  int saved = 0;

  if (o->stdin_data) {
    p->stdin_data = malloc(o->stdin_len ? o->stdin_len : 1);
    if (!p->stdin_data) goto fail;
    memcpy(p->stdin_data, o->stdin_data, o->stdin_len);
    p->stdin_len = o->stdin_len;
    if (open_pipe(in) != 0) goto fail;
  }
  if (open_pipe(out) != 0 || open_pipe(err) != 0) goto fail;
  spawn_plan sp = {.argv = o->argv, .envp = o->envp ? o->envp : environ,
                   .cwd = o->cwd, .stdin_fd = in[0], .out_fd = out[1],
                   .err_fd = err[1], .fd_limit = descriptor_limit(),
                   .parent = getpid()};
  p->pid = spawn_child(&sp);
  if (p->pid < 0) goto fail;
  p->running = 1;
  p->started = fl_now();
  close(out[1]);
  close(err[1]);
  out[1] = err[1] = -1;
  if (in[0] >= 0) close(in[0]);
  in[0] = -1;
  p->out_fd = out[0];
  p->err_fd = err[0];
  p->in_fd = in[1];
  fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
  fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
  if (p->in_fd >= 0) fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
  if (fl_loop_watch(loop, p->out_fd, EPOLLIN, on_output, p) != 0 ||
      fl_loop_watch(loop, p->err_fd, EPOLLIN, on_output, p) != 0 ||
      (p->in_fd >= 0 && fl_loop_watch(loop, p->in_fd, EPOLLOUT, on_stdin, p) != 0))
    goto fail_spawned;
  p->pidfd = pidfd_open_compat(p->pid);
  if (p->pidfd < 0 || fl_loop_watch(loop, p->pidfd, EPOLLIN, on_exit_fd, p) != 0)
    goto fail_spawned;
  return 0;

fail_spawned:
  saved = errno ? errno : EIO;
  fl_proc_kill(p);
  errno = saved;
  return rc;
fail:
  saved = errno;
  p->pid = -1;
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0) close(in[i]);
    if (out[i] >= 0) close(out[i]);
    if (err[i] >= 0) close(err[i]);
  }
  free(p->stdin_data);
  p->stdin_data = NULL;
  errno = saved;
  return rc;
}

void fl_proc_kill(fl_proc *p) {
  if (p->running) {
    kill(-p->pid, SIGKILL);
    reap(p, 1);
  }
  close_fd(p, &p->pidfd);
  close_fd(p, &p->in_fd);
  close_fd(p, &p->out_fd);
  close_fd(p, &p->err_fd);
}

void fl_proc_free(fl_proc *p) {
  fl_proc_kill(p);
  fl_buf_free(&p->out);
  fl_buf_free(&p->err);
  free(p->stdin_data);
  p->stdin_data = NULL;
}

int fl_proc_reap_by(pid_t pid, double until) {
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (fl_now() >= until) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  return status;
}
