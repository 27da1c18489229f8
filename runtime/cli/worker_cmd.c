/*
 * worker_cmd.c — `flowlua __worker SCRIPT`: a worker process, started by a
 * driver (the flowlua process that runs a flow with worker tasks) with a
 * connected socket as descriptor 3. It loads the script and serves jobs on
 * the socket (flowlua_worker_serve) until the driver says BYE or goes.
 *
 * A worker must never outlive its driver: it exits at once when its parent
 * is not the driver that started it (FLOWLUA_WORKER_PARENT), and asks the
 * kernel for SIGKILL when the parent dies. Its socket is moved off
 * descriptor 3 and made close-on-exec, so that flow.shell's children never
 * hold the driver's connection open; stdout is stderr, so that print() in
 * a task cannot corrupt anything. On the public API only, like main.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "flowlua.h"
#include "worker_cmd.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* The connection, as the driver passes it. */
#define WORKER_FD 3

/* Whether the parent is still the driver that started this worker: when
   FLOWLUA_WORKER_PARENT names it, it must be our parent; else the parent
   at start (ppid0) must still be. */
static int driver_alive(pid_t ppid0) {
  const char *want = getenv("FLOWLUA_WORKER_PARENT");
  pid_t now = getppid();
  if (want && *want) {
    char *end;
    errno = 0;
    long pid = strtol(want, &end, 10);
    if (errno || *end || pid <= 0 || (pid_t)pid != now) return 0;
  }
  return now == ppid0;
}

/* FLOWLUA_WORKER_MEMORY_LIMIT=bytes (the driver's --memory-limit): 0 and
   *limit set, or -1. Unset is no limit. */
static int memory_limit_from_env(size_t *limit) {
  const char *text = getenv("FLOWLUA_WORKER_MEMORY_LIMIT");
  *limit = 0;
  if (!text || !*text) return 0;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || *end || text[0] == '-' || v > (size_t)-1) return -1;
  *limit = (size_t)v;
  return 0;
}

/* Descriptors: the connection off 3 and close-on-exec (returned), stdin
   from /dev/null, stdout onto stderr. -1 with a message printed. */
static int set_up_descriptors(void) {
  int fd = fcntl(WORKER_FD, F_DUPFD_CLOEXEC, WORKER_FD + 1);
  if (fd < 0) {
    fprintf(stderr, "flowlua %s: descriptor %d is not open (%s): a worker "
                    "is started by a flowlua driver, with its connection "
                    "there\n",
            CLI_WORKER_COMMAND, WORKER_FD, strerror(errno));
    return -1;
  }
  close(WORKER_FD);
  struct stat st;
  if (fstat(fd, &st) != 0 || !(S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))) {
    fprintf(stderr, "flowlua %s: descriptor %d is not a socket: a worker is "
                    "started by a flowlua driver, with its connection there\n",
            CLI_WORKER_COMMAND, WORKER_FD);
    close(fd);
    return -1;
  }
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null >= 0) {
    if (null != 0) {
      dup2(null, 0);
      close(null);
    }
  } else {
    close(0);
  }
  fflush(stdout);
  dup2(2, 1);
  return fd;
}

/* SIGTERM and SIGINT end the worker at once (the driver stops its workers
   with SIGTERM; a terminal's ^C reaches the whole group): it holds nothing
   to save, the driver records the attempt. Its own writes never raise
   SIGPIPE. */
static void set_up_signals(void) {
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int cli_worker_main(int argc, char **argv) {
  pid_t ppid0 = getppid();
  if (!driver_alive(ppid0)) return EXIT_FAILED; /* the driver is gone */
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* The driver may have died between the check and prctl: then the
     signal will never come. */
  if (!driver_alive(ppid0)) return EXIT_FAILED;
#endif
  if (argc != 3) {
    fprintf(stderr, "flowlua %s: usage: flowlua %s SCRIPT (started by a "
                    "flowlua driver, not by hand)\n",
            CLI_WORKER_COMMAND, CLI_WORKER_COMMAND);
    return EXIT_USAGE;
  }
  int fd = set_up_descriptors();
  if (fd < 0) return EXIT_USAGE;
  set_up_signals();

  flowlua_options opts;
  flowlua_options_init(&opts);
  opts.state_path = NULL; /* the driver keeps the history */
  /* A job's flow.log lines go to the driver at every level; what the
     worker logs itself outside jobs (the script's top level, which the
     driver ran too) is shown from warnings up. */
  opts.log_level = FLOWLUA_LOG_WARN;
  if (memory_limit_from_env(&opts.memory_limit) != 0) {
    fprintf(stderr, "flowlua %s: FLOWLUA_WORKER_MEMORY_LIMIT='%s' is not a "
                    "number of bytes\n",
            CLI_WORKER_COMMAND, getenv("FLOWLUA_WORKER_MEMORY_LIMIT"));
    close(fd);
    return EXIT_USAGE;
  }
  flowlua *rt = NULL;
  int rc = flowlua_new(&opts, &rt);
  if (rc != FLOWLUA_OK) {
    fprintf(stderr, "flowlua %s: cannot start the runtime: %s\n",
            CLI_WORKER_COMMAND, flowlua_strstatus(rc));
    close(fd);
    return rc == FLOWLUA_EINVAL ? EXIT_USAGE : EXIT_FAILED;
  }
  int code = EXIT_OK;
  if (flowlua_load_file(rt, argv[2]) != FLOWLUA_OK) {
    fprintf(stderr, "flowlua %s: %s\n", CLI_WORKER_COMMAND, flowlua_errmsg(rt));
    code = EXIT_USAGE;
  } else if (flowlua_worker_serve(rt, fd) != FLOWLUA_OK) {
    fprintf(stderr, "flowlua %s: %s\n", CLI_WORKER_COMMAND, flowlua_errmsg(rt));
    code = EXIT_FAILED;
  }
  flowlua_free(rt);
  close(fd);
  return code;
}
