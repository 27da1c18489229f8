/*
 * rss_probe.c — runs a command and reports its wall time and peak RSS.
 *
 *     rss_probe RESULT_FILE COMMAND [ARG...]
 *
 * Forks, execs COMMAND (searched in PATH), waits for it with wait4() and
 * writes one line to RESULT_FILE:
 *
 *     <exit> <wall seconds> <ru_maxrss KiB> <user seconds> <system seconds>
 *
 * where <exit> is the exit status, or minus the signal number that killed it
 * (127: exec failed). Its own exit status is 0 once the line is written.
 *
 * Why not os.wait4 from Python directly: on Linux a child's ru_maxrss is the
 * larger of its own peak and the peak of the memory image it replaced at
 * exec — for a child of Python (fork or vfork/posix_spawn alike) that is the
 * Python interpreter's ~14 MiB, which swamps a 2 MiB lua5.4 or an 8 MiB
 * flowlua. Forked from this small program instead, the floor is under 1 MiB.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv(struct timeval t) {
  return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: rss_probe RESULT_FILE COMMAND [ARG...]\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) {
    fprintf(stderr, "rss_probe: %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  double t0 = now();
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "rss_probe: fork: %s\n", strerror(errno));
    return 2;
  }
  if (pid == 0) {
    fclose(out);
    execvp(argv[2], argv + 2);
    fprintf(stderr, "rss_probe: %s: %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      fprintf(stderr, "rss_probe: wait4: %s\n", strerror(errno));
      return 2;
    }
  }
  double wall = now() - t0;
  int code = WIFEXITED(status) ? WEXITSTATUS(status)
             : WIFSIGNALED(status) ? -WTERMSIG(status)
                                   : -1;
  fprintf(out, "%d %.6f %ld %.6f %.6f\n", code, wall, ru.ru_maxrss,
          tv(ru.ru_utime), tv(ru.ru_stime));
  return fclose(out) == 0 ? 0 : 2;
}
