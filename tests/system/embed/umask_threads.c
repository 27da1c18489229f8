/*
 * umask_threads.c — atomic writes never touch the process's umask (issue
 * 16, item 10). The umask is process-wide: 0.5.0 set it to 0 and back
 * around every atomic write, so any other thread creating a file in
 * between got a world-writable one.
 *
 * Under umask 022, one runtime writes N files with fs.write, another makes
 * N folders with fs.mkdir, each on its own thread, while the host's own
 * thread creates files with open(..., 0666) until both are done. Every
 * file and folder must come out without group or other write permission:
 * the host's files 0644, the written files 0644, the folders 0755.
 *
 *     umask_threads [N]   (default 1500; 0.5.0 failed about 1 in 250 writes)
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <flowlua.h>

typedef struct runner {
  const char *body; /* the task's loop body, with %s for the folder */
  char script[8192];
  int status;
  int state;
} runner;

static atomic_int runners_left = 2;

static void *run_flow(void *arg) {
  runner *r = arg;
  flowlua_options opts;
  flowlua_options_init(&opts);
  opts.log_level = FLOWLUA_LOG_OFF;
  opts.state_path = ":memory:";
  flowlua *rt = NULL;
  r->status = flowlua_new(&opts, &rt);
  if (r->status == FLOWLUA_OK) {
    flowlua_outcome out = FLOWLUA_INIT(flowlua_outcome);
    r->status = flowlua_load_string(rt, r->script, "=umask_threads");
    if (r->status == FLOWLUA_OK) r->status = flowlua_run(rt, NULL, &out);
    if (r->status == FLOWLUA_OK) r->state = out.state;
    else fprintf(stderr, "runner: %s\n", flowlua_errmsg(rt));
  }
  flowlua_free(rt);
  atomic_fetch_sub(&runners_left, 1);
  return NULL;
}

/* Counts the entries of dir whose permission bits are not `want`. */
static int count_wrong(const char *dir, mode_t want, int *seen) {
  DIR *d = opendir(dir);
  if (!d) {
    perror(dir);
    return -1;
  }
  int wrong = 0;
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0) continue;
    (*seen)++;
    if ((st.st_mode & 07777) != want) {
      if (wrong++ < 5) printf("  %s has mode %04o\n", path, (unsigned)(st.st_mode & 07777));
    }
  }
  closedir(d);
  return wrong;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1500;
  umask(022);
  char base[] = "/tmp/flowlua-umask-XXXXXX";
  if (!mkdtemp(base)) return perror("mkdtemp"), 2;
  char files[4200], dirs[4200], host[4200];
  snprintf(files, sizeof files, "%s/files", base);
  snprintf(dirs, sizeof dirs, "%s/dirs", base);
  snprintf(host, sizeof host, "%s/host", base);
  if (mkdir(files, 0755) || mkdir(dirs, 0755) || mkdir(host, 0755))
    return perror("mkdir"), 2;

  static const char *const tmpl =
      "local flow = require 'flowlua'\n"
      "local t = flow.task('t', function()\n"
      "  for i = 1, %d do %s end\n"
      "end)\n"
      "return flow.define('umask', {}, function() t() end)\n";
  char body[4608];
  runner r[2] = {{0}, {0}};
  snprintf(body, sizeof body, "flow.fs.write('%s/f' .. i, 'x')", files);
  snprintf(r[0].script, sizeof r[0].script, tmpl, n, body);
  snprintf(body, sizeof body, "flow.fs.mkdir('%s/d' .. i)", dirs);
  snprintf(r[1].script, sizeof r[1].script, tmpl, n, body);

  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    if (pthread_create(&t[i], NULL, run_flow, &r[i]) != 0) return 2;

  /* The host's thread: files with open(2)'s usual 0666, until both
     runtimes are done (and at least n, so the check is never empty). */
  int host_files = 0, host_wrong = 0;
  char path[4300];
  while (atomic_load(&runners_left) > 0 || host_files < n) {
    snprintf(path, sizeof path, "%s/h%d", host, host_files % 64);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return perror(path), 2;
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 0022)) host_wrong++;
    close(fd);
    unlink(path);
    host_files++;
  }
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);

  int ok = 1;
  for (int i = 0; i < 2; i++) {
    if (r[i].status != FLOWLUA_OK || r[i].state != FLOWLUA_FLOW_SUCCESS) {
      printf("runner %d did not succeed: %s\n", i + 1,
             flowlua_strstatus(r[i].status));
      ok = 0;
    }
  }
  int seen_files = 0, seen_dirs = 0;
  int wrong_files = count_wrong(files, 0644, &seen_files);
  int wrong_dirs = count_wrong(dirs, 0755, &seen_dirs);
  printf("host: %d of %d files group- or world-writable\n", host_wrong, host_files);
  printf("fs.write: %d of %d files not 0644\n", wrong_files, seen_files);
  printf("fs.mkdir: %d of %d folders not 0755\n", wrong_dirs, seen_dirs);
  ok = ok && host_wrong == 0 && wrong_files == 0 && wrong_dirs == 0 &&
       seen_files == n && seen_dirs == n;
  char cmd[4300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", base);
  puts(ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
