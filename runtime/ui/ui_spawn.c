/*
 * ui_spawn.c — starting a run as a `flowlua` process (ui_spawn.h).
 *
 * The process's stderr goes to a nameless file of the UI's own (never a
 * pipe: a pipe the UI stops reading would kill the run with SIGPIPE), read
 * back only when the process ends before its run is recorded. Its
 * environment is built before fork(): after it, in a process with
 * threads, only async-signal-safe calls are allowed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ui_spawn.h"

extern char **environ;

#define MAX_CHILDREN 256

struct fl_ui_children {
  pid_t pids[MAX_CHILDREN];
  size_t n;
};

fl_ui_children *fl_ui_children_new(void) { return calloc(1, sizeof(fl_ui_children)); }

static void forget(fl_ui_children *k, pid_t pid) {
  for (size_t i = 0; i < k->n; i++)
    if (k->pids[i] == pid) {
      k->pids[i] = k->pids[--k->n];
      return;
    }
}

/* Reaps the children that ended; those still going are left to run. */
static void reap(fl_ui_children *k) {
  size_t kept = 0;
  for (size_t i = 0; i < k->n; i++) {
    pid_t r = waitpid(k->pids[i], NULL, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) k->pids[kept++] = k->pids[i];
  }
  k->n = kept;
}

void fl_ui_children_free(fl_ui_children *k) {
  if (!k) return;
  reap(k);
  free(k);
}

/* environ with FLOWLUA_STATE=state in place of any it has; NULL when out
   of memory. Only the array and the one new string are owned. */
static char **child_environment(const char *state, char **owned) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = calloc(n + 2, sizeof *env);
  size_t len = strlen("FLOWLUA_STATE=") + strlen(state) + 1;
  *owned = malloc(len);
  if (!env || !*owned) {
    free(env);
    free(*owned);
    *owned = NULL;
    return NULL;
  }
  snprintf(*owned, len, "FLOWLUA_STATE=%s", state);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "FLOWLUA_STATE=", 14) != 0) env[k++] = environ[i];
  env[k++] = *owned;
  env[k] = NULL;
  return env;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void exec_child(const char *exe, char *const argv[], char **env,
                       int err_fd) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL); /* the UI blocks its stop signals */
  signal(SIGPIPE, SIG_DFL);              /* and ignores this one */
  setsid(); /* the terminal's Ctrl-C for the UI is not the run's */
  int null = open("/dev/null", O_RDWR);
  if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(err_fd, 2) < 0)
    _exit(127);
  close_range(3, ~0U, 0); /* the UI's sockets and files are not the run's */
  execve(exe, argv, env);
  static const char msg[] = "flowlua ui: cannot run the flowlua program\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  _exit(127);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* What the process wrote to stderr, first lines, into msg. */
static void read_errors(int fd, const char *head, char *msg, size_t msglen) {
  char text[2048];
  ssize_t n = pread(fd, text, sizeof text - 1, 0);
  text[n > 0 ? n : 0] = '\0';
  size_t len = strlen(text);
  while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) text[--len] = '\0';
  snprintf(msg, msglen, "%s%s%s", head, len ? ": " : "", text);
}

static int run_recorded(flowlua *rt, const char *run_id) {
  char *text = NULL;
  int rc = flowlua_report_run(rt, run_id, 1, &text);
  flowlua_string_free(text);
  return rc == FLOWLUA_OK;
}

int fl_ui_spawn_run(fl_ui_children *k, flowlua *rt, pthread_mutex_t *lock,
                    const char *exe, const char *state, char *const argv[],
                    const char *run_id, pid_t *pid, char *msg, size_t msglen) {
  reap(k);
  if (k->n == MAX_CHILDREN) {
    snprintf(msg, msglen, "%d runs started by this UI are still going: "
                          "wait for some to end", MAX_CHILDREN);
    return -1;
  }
  /* A file with no name at all (O_TMPFILE): nothing to unlink, nothing
     another user could open, nothing left behind by a crash. */
  int err_fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (err_fd < 0) {
    snprintf(msg, msglen, "cannot create a file for the run's errors in "
                          "/tmp: %s", strerror(errno));
    return -1;
  }
  char *owned = NULL;
  char **env = child_environment(state, &owned);
  if (!env) {
    close(err_fd);
    snprintf(msg, msglen, "out of memory starting the run");
    return -1;
  }
  pid_t child = fork();
  if (child == 0) exec_child(exe, argv, env, err_fd);
  int fork_errno = errno;
  free(env);
  free(owned);
  if (child < 0) {
    close(err_fd);
    snprintf(msg, msglen, "cannot start a flowlua process: %s",
             strerror(fork_errno));
    return -1;
  }
  k->pids[k->n++] = child;
  *pid = child;
  /* Until the run is recorded (what the caller answers with) or the
     process ends without it (its own message says why). */
  int rc = -1;
  for (long waited = 0; waited <= FL_UI_START_SECONDS * 1000L; waited += 20) {
    if (run_recorded(rt, run_id)) {
      rc = 0;
      break;
    }
    int status;
    if (waitpid(child, &status, WNOHANG) == child) {
      forget(k, child);
      if (run_recorded(rt, run_id)) { /* a run that ended at once */
        rc = 0;
      } else {
        char head[128];
        snprintf(head, sizeof head, "the run did not start (flowlua exited "
                                    "with status %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        read_errors(err_fd, head, msg, msglen);
      }
      close(err_fd);
      return rc;
    }
    /* The server's other requests and streams go on meanwhile. */
    if (lock) pthread_mutex_unlock(lock);
    sleep_ms(20);
    if (lock) pthread_mutex_lock(lock);
  }
  if (rc != 0)
    snprintf(msg, msglen, "run %s is not in the history after %d s; its "
                          "process (pid %ld) is still going and may record "
                          "it later", run_id, FL_UI_START_SECONDS, (long)child);
  close(err_fd);
  return rc;
}
