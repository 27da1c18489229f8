/*
 * process.h — child processes on the event loop: spawn from an argv list,
 * feed stdin, capture stdout and stderr without deadlock, notice the exit.
 *
 * Plain C, no Lua. The child gets its own process group, so killing it also
 * kills whatever it started. Its exit is watched through a pidfd; output
 * pipes are read as they fill, so a child writing megabytes never blocks.
 */
#ifndef FL_PROCESS_H
#define FL_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "loop.h"

typedef struct fl_proc fl_proc;
typedef void (*fl_proc_done_cb)(fl_proc *p);

struct fl_proc {
  fl_loop *loop;
  pid_t pid;
  int pidfd;
  int in_fd, out_fd, err_fd; /* our ends; -1 when closed */
  char *stdin_data;
  size_t stdin_len, stdin_off;
  fl_buf out, err;
  size_t max_output;
  int too_much;   /* output passed max_output: the child was killed */
  int running;    /* spawned and not yet reaped */
  int status;     /* wait status once reaped */
  int finished;   /* reaped and pipes drained: results are final */
  double started, ended; /* monotonic */
  fl_proc_done_cb done;
  void *data; /* the owner's */
};

typedef struct fl_proc_opts {
  char *const *argv;      /* argv[0] is looked up in PATH if it has no '/' */
  char *const *envp;      /* NULL: inherit this process's environment */
  const char *cwd;        /* NULL: inherit */
  const char *stdin_data; /* NULL: the child reads /dev/null */
  size_t stdin_len;
  size_t max_output;      /* per stream */
} fl_proc_opts;

void fl_proc_init(fl_proc *p);
/* Spawns the child. 0, or -1 with errno set (ENOENT for a missing program,
   or the cause of a failed chdir) and nothing left behind. */
int fl_proc_start(fl_loop *loop, fl_proc *p, const fl_proc_opts *o,
                  fl_proc_done_cb done, void *data);
/* Kills the child's process group and reaps it now, without calling done.
   Harmless when it is not running. */
void fl_proc_kill(fl_proc *p);
/* Kills if needed, closes descriptors and frees the buffers. */
void fl_proc_free(fl_proc *p);

/* Waits for child pid (already asked to stop) until the monotonic time
   `until` (fl_now), then SIGKILLs it; reaps it either way. Its wait
   status. For the runtime's own long-lived children (worker processes). */
int fl_proc_reap_by(pid_t pid, double until);

#endif
