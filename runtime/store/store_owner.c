/*
 * store_owner.c — which process owns a run: its pid, start time and boot
 * id, read from /proc, so that a run left Running by a process that died
 * can be told from one whose process is still going (crash detection).
 */
#define _GNU_SOURCE
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Reads field 3 (state) and field 22 (start time) of /proc/PID/stat. The
   command name (field 2) may hold spaces and ')', so fields are counted
   from its last ')'. 0, or -1 when the process does not exist. */
static int read_proc_stat(pid_t pid, char *state, int64_t *start_time) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  if (!p) return -1;
  p++;
  *state = '?';
  *start_time = 0;
  for (int field = 3; *p && field <= 22; field++) {
    while (*p == ' ') p++;
    if (field == 3) *state = *p;
    if (field == 22) *start_time = strtoll(p, NULL, 10);
    while (*p && *p != ' ') p++;
  }
  return 0;
}

static void read_line_file(const char *path, char *out, size_t size) {
  out[0] = '\0';
  FILE *f = fopen(path, "re");
  if (!f) return;
  if (fgets(out, (int)size, f)) out[strcspn(out, "\n")] = '\0';
  fclose(f);
}

void fl_store_owner_self(fl_store_owner *o) {
  memset(o, 0, sizeof *o);
  if (gethostname(o->host, sizeof o->host - 1) != 0) o->host[0] = '\0';
  read_line_file("/proc/sys/kernel/random/boot_id", o->boot_id,
                 sizeof o->boot_id);
  o->pid = getpid();
  char state;
  if (read_proc_stat(getpid(), &state, &o->start_time) != 0) o->start_time = 0;
}

int fl_store_owner_of(pid_t pid, fl_store_owner *o) {
  if (pid <= 0) return -1;
  fl_store_owner_self(o);
  o->pid = pid;
  char state;
  if (read_proc_stat(pid, &state, &o->start_time) == 0)
    return state == 'Z' || state == 'X' ? -1 : 0;
  /* No /proc entry: gone, unless /proc itself is missing (not Linux, or not
     mounted), where kill(pid, 0) is all there is. */
  o->start_time = 0;
  if (access("/proc/self/stat", R_OK) == 0) return -1;
  return kill(pid, 0) == 0 || errno == EPERM ? 0 : -1;
}


int fl__store_owner_gone(const fl_store_owner *self, const char *host,
                         const char *boot, int64_t pid, int64_t start) {
  if (strcmp(host, self->host) != 0) return 0; /* cannot see it from here */
  if (*boot && *self->boot_id && strcmp(boot, self->boot_id) != 0) return 1;
  fl_store_owner now;
  if (pid <= 0 || fl_store_owner_of((pid_t)pid, &now) != 0) return 1;
  /* The pid lives, but if it started at another time it is another process
     that got the same pid. */
  return start && now.start_time && start != now.start_time;
}
