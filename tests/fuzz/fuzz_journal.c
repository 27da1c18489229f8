/*
 * fuzz_journal.c — the replay of a dead process's journal on hostile files.
 *
 * A journal beside a state database is outside input: a folder copied from
 * elsewhere, a disk that lost pages, a file planted by someone who can
 * write there. The next flowlua to open the database replays every
 * journal whose owner is gone (store_replay.c), so the replay must never
 * crash, hang, leak or damage the database, whatever the records say: run
 * ids the database lacks, task numbers far past the run's, strings whose
 * lengths lie, a run's start (J_BEGIN) for an id that is taken.
 *
 * Each input is a journal: its first byte picks the header (version 1 or
 * 2, and the generation), the rest are the records, as the file holds
 * them. It is written beside a copy of a database that holds one run with
 * two task runs (#1, the id a forged record most likely names), then the
 * database is opened and crash detection runs, which replays the journal.
 * Properties: the journal is gone afterwards, or set aside as .failed, or
 * kept only when the replay said why (out of memory, the database busy or
 * damaged); and the database still opens and lists and loads every run.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "store.h"

#define HEADER_SIZE 4096
#define GEN_OFFSET 32
#define T0 1764500000.0

static char dir[64];
static char db_path[128], journal_path[192], template_path[128];
static unsigned char *template_bytes;
static size_t template_len;

static void die(const char *what) {
  perror(what);
  abort();
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len)) die(path);
  close(fd);
}

static void empty_dir(void) {
  DIR *d = opendir(dir);
  if (!d) die(dir);
  struct dirent *e;
  char path[512];
  while ((e = readdir(d)))
    if (e->d_name[0] != '.' && strcmp(e->d_name, "template.db") != 0) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
  closedir(d);
}

/* The database every input starts from: one ended run with two task runs,
   written once and copied (a fresh schema for each input would cost more
   than the replay). */
static void make_template(void) {
  fl_store *st = NULL;
  char err[512];
  if (fl_store_open(template_path, NULL, &st, err, sizeof err) != FLOWLUA_OK) {
    fprintf(stderr, "%s\n", err);
    abort();
  }
  static const char *const keys[] = {"a", "b"};
  fl_store_run_info info = {.run_id = "r1", .flow = "f", .started_at = T0,
                            .keys = keys, .n_keys = 2};
  fl_store_run *run = NULL;
  uint32_t a, b;
  if (fl_store_run_begin(st, &info, &run) ||
      fl_store_task_add(run, "a", "a", 0, &a) ||
      fl_store_task_add(run, "b", "b", 0, &b) ||
      fl_store_task_state(run, a, FLOWLUA_TASK_RUNNING, 1, T0, NULL) ||
      fl_store_task_state(run, a, FLOWLUA_TASK_SUCCESS, 1, T0 + 1, NULL) ||
      fl_store_task_result(run, a, "[1]", 3) ||
      fl_store_task_state(run, b, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL) ||
      fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 2, NULL)) {
    fprintf(stderr, "template: %s\n", fl_store_errmsg(st));
    abort();
  }
  fl_store_close(st); /* checkpointed: one file */
  int fd = open(template_path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) die(template_path);
  template_len = (size_t)sb.st_size;
  template_bytes = malloc(template_len);
  if (!template_bytes ||
      read(fd, template_bytes, template_len) != (ssize_t)template_len)
    die("template");
  close(fd);
}

/* The folder and everything in it, at exit: a fuzz run leaves nothing. */
static void remove_dir(void) {
  empty_dir();
  unlink(template_path);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  /* A folder of this process's own: its pid names it, and mkdir fails
     rather than reuse one that stands there. */
  snprintf(dir, sizeof dir, "/tmp/fuzz-journal-%ld", (long)getpid());
  if (mkdir(dir, 0700) != 0) die(dir);
  atexit(remove_dir);
  snprintf(db_path, sizeof db_path, "%s/state.db", dir);
  snprintf(template_path, sizeof template_path, "%s/template.db", dir);
  /* A pid no process has (above pid_max's ceiling), so the owner is gone
     in every sense; the replay looks at the lock, not the name. */
  snprintf(journal_path, sizeof journal_path,
           "%s/state.db.flowlua-99999999-1.log", dir);
  make_template();
  return 0;
}

static int exists(const char *path) {
  struct stat sb;
  return lstat(path, &sb) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  empty_dir();
  write_file(db_path, template_bytes, template_len);
  size_t len = HEADER_SIZE + size - 1 + 4; /* and a zero length: the end */
  unsigned char *file = calloc(1, len);
  if (!file) abort();
  memcpy(file, data[0] & 1 ? "flowlua journal 1\n" : "flowlua journal 2\n", 18);
  uint64_t gen = data[0] >> 1;
  memcpy(file + GEN_OFFSET, &gen, sizeof gen);
  memcpy(file + HEADER_SIZE, data + 1, size - 1);
  write_file(journal_path, file, len);
  free(file);

  fl_store *st = NULL;
  char err[1024];
  int rc = fl_store_open(db_path, NULL, &st, err, sizeof err);
  FUZZ_CHECK(rc == FLOWLUA_OK, "open before the replay: %s", err);
  size_t marked = 0;
  rc = fl_store_mark_crashed(st, T0 + 100, &marked);
  char why[1024];
  snprintf(why, sizeof why, "%s", fl_store_errmsg(st));
  fl_store_close(st);

  char failed[256];
  snprintf(failed, sizeof failed, "%s.failed", journal_path);
  FUZZ_CHECK(!exists(journal_path) || rc != FLOWLUA_OK,
             "the journal was kept, yet the replay reported no failure");
  FUZZ_CHECK(rc == FLOWLUA_OK || why[0], "a failure without a message");
  (void)failed;

  /* Whatever the journal said, the database still reads. A replay that
     failed may fail again at the next open (it kept the journal); read
     after removing it, as a user would after reading the message. */
  unlink(journal_path);
  rc = fl_store_open(db_path, NULL, &st, err, sizeof err);
  FUZZ_CHECK(rc == FLOWLUA_OK, "open after the replay: %s", err);
  fl_store_run_list list;
  rc = fl_store_list_runs(st, NULL, 1000, &list);
  FUZZ_CHECK(rc == FLOWLUA_OK, "list after the replay: %s", fl_store_errmsg(st));
  for (size_t i = 0; i < list.n; i++) {
    fl_store_run_detail *d = NULL;
    rc = fl_store_load_run(st, list.rows[i].run_id, NULL, &d);
    FUZZ_CHECK(rc == FLOWLUA_OK || rc == FLOWLUA_EINVAL,
               "load run %zu after the replay: %s", i, fl_store_errmsg(st));
    fl_store_run_detail_free(d);
  }
  fl_store_run_list_free(&list);
  fl_store_close(st);
  return 0;
}
