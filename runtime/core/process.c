/*
 * process.c — spawning and watching child processes; see process.h.
 *
 * posix_spawn (vfork-like, safe in a big process) with a new process group
 * and default signal dispositions. The exit is seen through pidfd_open(2)
 * (Linux 5.3+, required). The result is final once the child is reaped and its pipes are drained.
 */
#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

int fl_proc_start(fl_loop *loop, fl_proc *p, const fl_proc_opts *o,
                  fl_proc_done_cb done, void *data) {
  fl_proc_init(p);
  p->loop = loop;
  p->done = done;
  p->data = data;
  p->max_output = o->max_output;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, rc = -1;
  int saved = 0;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int fa_ready = 0, attr_ready = 0;

  if (o->stdin_data) {
    p->stdin_data = malloc(o->stdin_len ? o->stdin_len : 1);
    if (!p->stdin_data) goto fail;
    memcpy(p->stdin_data, o->stdin_data, o->stdin_len);
    p->stdin_len = o->stdin_len;
    if (pipe2(in, O_CLOEXEC) != 0) goto fail;
  }
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) goto fail;
  if (posix_spawn_file_actions_init(&fa) != 0) goto fail;
  fa_ready = 1;
  if (in[0] >= 0)
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  if (o->cwd) posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
  if (posix_spawnattr_init(&attr) != 0) goto fail;
  attr_ready = 1;
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGCHLD);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
  int e = posix_spawnp(&p->pid, o->argv[0], &fa, &attr, o->argv,
                       o->envp ? o->envp : environ);
  if (e != 0) {
    errno = e;
    p->pid = -1;
    goto fail;
  }
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
  rc = 0;
  goto done;

fail_spawned:
  saved = errno ? errno : EIO;
  fl_proc_kill(p);
  errno = saved;
  goto done;
fail:
  saved = errno;
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0) close(in[i]);
    if (out[i] >= 0) close(out[i]);
    if (err[i] >= 0) close(err[i]);
  }
  free(p->stdin_data);
  p->stdin_data = NULL;
  errno = saved;
done:
  if (fa_ready) posix_spawn_file_actions_destroy(&fa);
  if (attr_ready) posix_spawnattr_destroy(&attr);
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
