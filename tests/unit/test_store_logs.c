/*
 * test_store_logs.c — task runs' log lines in the history (store_log.c,
 * store_logs.c), through the store's API, on SQLite and, when the
 * harness gives one (FLOWLUA_TEST_PG: ctest's pg/store_logs runs this
 * under tests/support/pg/with_pg.py), on PostgreSQL too, with the same
 * expectations: both backends must keep the same lines.
 *
 * 2,000 lines across flushes keep the last 1,000 and count 1,000 dropped
 * with their bytes; lines of 1,000 bytes keep the last 65 (64 KiB); a
 * line over 64 KiB keeps its head and counts the rest; lines of attempts
 * 1 and 2; a task logging 100,000 lines between two flushes holds no
 * more than the bound in its buffer; a task run's state changes with
 * where its attempt ran; what is read after reopening; a run that logs
 * nothing reads none; a copy keeps the lines (SQLite to either backend,
 * and back); prune deletes them; a
 * version 6 file (before log lines) is migrated and keeps its runs.
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "flowlua.h"
#include "store.h"
#include "store_internal.h" /* fl__store_migration_sql */

static const double T0 = 1764346201.0;
static char tmp_root[256];

static const char *tmp_path(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmp_root, name);
  return path;
}

/* The history under test: a SQLite file, or the harness's database (its
   schema dropped first, so each test starts empty). */
static const char *backend;

static fl_store *open_at(const char *where) {
  fl_store *st = NULL;
  char err[1024];
  int rc = fl_store_open(where, NULL, &st, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  open: %s\n", err);
  return st;
}

static void drop_pg_schema(const char *uri) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "psql -q -X '%s' -c 'DROP SCHEMA IF EXISTS flowlua CASCADE' "
           ">/dev/null 2>&1",
           uri);
  CHECK_EQ_INT(system(cmd), 0);
}

/* A fresh history of the backend under test, named `name` for SQLite. */
static const char *fresh(const char *name) {
  if (strcmp(backend, "sqlite") == 0) {
    const char *p = tmp_path(name);
    unlink(p);
    return p;
  }
  drop_pg_schema(backend);
  return backend;
}

static void flush_ok(fl_store *st) {
  int rc = fl_store_flush(st);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  flush: %s\n", fl_store_errmsg(st));
}

static void log_ok(fl_store_run *run, uint32_t t, int attempt, const char *s,
                   size_t len, double at) {
  CHECK_EQ_INT(fl_store_task_log(run, t, attempt, FLOWLUA_LOG_INFO, at, s, len),
               FLOWLUA_OK);
}

static fl_store_run *begin(fl_store *st, const char *id, double at,
                           const char *const *keys, size_t n) {
  fl_store_run_info info = {.run_id = id, .flow = "f", .started_at = at,
                            .keys = keys, .n_keys = n};
  fl_store_run *run = NULL;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &run), FLOWLUA_OK);
  uint32_t first = UINT32_MAX;
  if (run)
    CHECK_EQ_INT(fl_store_task_add_many(run, keys, keys, (uint32_t)n, &first),
                 FLOWLUA_OK);
  CHECK_EQ_INT(first, 0);
  return run;
}

static fl_store_run_detail *load(fl_store *st, const char *id) {
  fl_store_run_detail *d = NULL;
  int rc = fl_store_load_run(st, id, NULL, &d);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  load: %s\n", fl_store_errmsg(st));
  return d;
}

/* ---- the bounds ------------------------------------------------------------- */

/* What run "bounds" recorded: a (2,000 short lines), b (100 lines of 1,000
   bytes), c (two lines of attempt 1, one of 2), big (a line of 70,000
   bytes after three short ones), quiet (nothing). */
static void record_bounds_run(fl_store *st) {
  const char *keys[] = {"a", "b", "c", "big", "quiet"};
  fl_store_run *run = begin(st, "bounds", T0, keys, 5);
  if (!run) return;
  char line[1100];
  for (uint32_t t = 0; t < 5; t++)
    CHECK_EQ_INT(fl_store_task_state(run, t, FLOWLUA_TASK_RUNNING, 1, T0 + 1,
                                     NULL), FLOWLUA_OK);
  for (int i = 1; i <= 2000; i++) {
    int n = snprintf(line, sizeof line, "line %d", i);
    log_ok(run, 0, 1, line, (size_t)n, T0 + 1 + i / 1000.0);
    if (i == 700 || i == 1500) flush_ok(st); /* trims across batches */
  }
  memset(line, 'x', 1000);
  for (int i = 1; i <= 100; i++) {
    snprintf(line, 8, "%07d", i);
    line[7] = 'x';
    log_ok(run, 1, 1, line, 1000, T0 + 2);
  }
  log_ok(run, 2, 1, "first try", 9, T0 + 3);
  log_ok(run, 2, 1, "<b>failing</b> & so on", 22, T0 + 3.1);
  CHECK_EQ_INT(fl_store_task_state(run, 2, FLOWLUA_TASK_RETRYING, 1, T0 + 3.2,
                                   "boom"), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_state(run, 2, FLOWLUA_TASK_RUNNING, 2, T0 + 3.3,
                                   NULL), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_worker(run, 2, 2, "host-w", 4242), FLOWLUA_OK);
  log_ok(run, 2, 2, "second try", 10, T0 + 3.4);
  for (int i = 0; i < 3; i++) log_ok(run, 3, 1, "short", 5, T0 + 4);
  size_t huge = FL_STORE_LOG_BYTES + 4464;
  char *big = malloc(huge);
  if (big) {
    memset(big, 'h', huge);
    log_ok(run, 3, 1, big, huge, T0 + 4.5);
    free(big);
  }
  for (uint32_t t = 0; t < 5; t++)
    CHECK_EQ_INT(fl_store_task_state(run, t, FLOWLUA_TASK_SUCCESS, t == 2 ? 2 : 1,
                                     T0 + 5, NULL), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 6, NULL),
               FLOWLUA_OK);
}

static void check_bounds_run(fl_store *st) {
  fl_store_run_detail *d = load(st, "bounds");
  if (!d) return;
  fl_store_log_list l;
  CHECK_EQ_INT(fl_store_load_logs(st, d, NULL, &l), FLOWLUA_OK);
  size_t n = 0;
  /* a: the last 1,000 of 2,000, in order, and 1,000 dropped with their
     bytes ("line 1".."line 1000": 9 + 90 * 7 + 900 * 8 + 9 = 7,848 + 9). */
  const fl_store_log_line *a = fl_store_log_lines_of(&l, 0, &n);
  CHECK_EQ_INT(n, 1000);
  if (n == 1000) {
    CHECK_EQ_STR(a[0].line, "line 1001");
    CHECK_EQ_STR(a[999].line, "line 2000");
    CHECK_EQ_INT(a[0].seq, 1001);
    CHECK_EQ_INT(a[0].attempt, 1);
    CHECK_EQ_INT(a[0].level, FLOWLUA_LOG_INFO);
    CHECK_EQ_DBL(a[999].at, T0 + 3, 1e-6);
  }
  const fl_store_log_drop *drop = fl_store_log_drop_of(&l, 0);
  CHECK(drop != NULL);
  if (drop) {
    CHECK_EQ_INT(drop->lines, 1000);
    CHECK_EQ_INT(drop->bytes, 9 * 6 + 90 * 7 + 900 * 8 + 1 * 9);
  }
  /* b: 65 lines of 1,000 bytes fit in 64 KiB, 66 do not. */
  const fl_store_log_line *b = fl_store_log_lines_of(&l, 1, &n);
  CHECK_EQ_INT(n, 65);
  if (n == 65) {
    CHECK_EQ_INT(strlen(b[0].line), 1000);
    CHECK(strncmp(b[0].line, "0000036x", 8) == 0);
  }
  drop = fl_store_log_drop_of(&l, 1);
  CHECK(drop && drop->lines == 35 && drop->bytes == 35000);
  /* c: both attempts' lines, text as it was given. */
  const fl_store_log_line *c = fl_store_log_lines_of(&l, 2, &n);
  CHECK_EQ_INT(n, 3);
  if (n == 3) {
    CHECK_EQ_INT(c[0].attempt, 1);
    CHECK_EQ_STR(c[1].line, "<b>failing</b> & so on");
    CHECK_EQ_INT(c[2].attempt, 2);
    CHECK_EQ_STR(c[2].line, "second try");
  }
  CHECK(fl_store_log_drop_of(&l, 2) == NULL);
  /* big: its head, 64 KiB; the rest of it and the lines before, dropped. */
  const fl_store_log_line *big = fl_store_log_lines_of(&l, 3, &n);
  CHECK_EQ_INT(n, 1);
  if (n == 1) CHECK_EQ_INT(strlen(big[0].line), FL_STORE_LOG_BYTES);
  drop = fl_store_log_drop_of(&l, 3);
  CHECK(drop && drop->lines == 3 && drop->bytes == 15 + 4464);
  /* quiet: nothing. */
  CHECK(fl_store_log_lines_of(&l, 4, &n) == NULL && n == 0);
  CHECK(fl_store_log_drop_of(&l, 4) == NULL);
  CHECK_EQ_INT(l.n, 1000 + 65 + 3 + 1);
  fl_store_log_list_free(&l);

  /* One task run alone: the same lines. */
  CHECK_EQ_INT(fl_store_load_logs(st, d, "c", &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 3);
  CHECK(l.n == 3 && l.lines[0].task == 2);
  fl_store_log_list_free(&l);
  CHECK_EQ_INT(fl_store_load_logs(st, d, "nope", &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 0);
  fl_store_log_list_free(&l);

  /* c's state changes, in order, with where attempt 2 ran. */
  fl_store_event_list ev;
  CHECK_EQ_INT(fl_store_load_task_events(st, d, "c", &ev), FLOWLUA_OK);
  CHECK_EQ_INT(ev.n, 4);
  if (ev.n == 4) {
    CHECK_EQ_INT(ev.items[0].state, FLOWLUA_TASK_RUNNING);
    CHECK_EQ_INT(ev.items[1].state, FLOWLUA_TASK_RETRYING);
    CHECK_EQ_STR(ev.items[1].error, "boom");
    CHECK_EQ_INT(ev.items[2].attempt, 2);
    CHECK_EQ_STR(ev.items[2].worker_host, "host-w");
    CHECK_EQ_INT(ev.items[3].worker_pid, 4242);
    CHECK_EQ_INT(ev.items[3].state, FLOWLUA_TASK_SUCCESS);
    CHECK(ev.items[0].worker_pid == 0);
    CHECK(ev.items[0].seq < ev.items[1].seq && ev.items[2].seq < ev.items[3].seq);
  }
  fl_store_event_list_free(&ev);
  fl_store_run_detail_free(d);
}

static void test_bounds(void) {
  const char *where = fresh("bounds.db");
  fl_store *st = open_at(where);
  if (!st) return;
  record_bounds_run(st);
  check_bounds_run(st);
  fl_store_close(st);
  /* What the file holds, read by another handle. */
  st = open_at(where);
  if (!st) return;
  check_bounds_run(st);
  fl_store_close(st);
  if (strcmp(backend, "sqlite") == 0) {
    /* Trimmed in the file too, not only hidden by the reader. */
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    CHECK_EQ_INT(sqlite3_open(where, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_prepare_v2(db, "SELECT count(*) FROM task_log", -1, &s,
                                    NULL), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_step(s), SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int(s, 0), 1069);
    sqlite3_finalize(s);
    sqlite3_close(db);
  }
}

/* A task logging 100,000 lines between two flushes: its dropped lines
   leave the buffer as it goes, so the buffer stays near the bound. */
static void test_buffer_bounded(void) {
  const char *where = fresh("buffer.db");
  fl_store *st = open_at(where);
  if (!st) return;
  const char *keys[] = {"loop"};
  fl_store_run *run = begin(st, "loop", T0, keys, 1);
  if (!run) {
    fl_store_close(st);
    return;
  }
  size_t most = 0;
  for (int i = 0; i < 100000; i++) {
    log_ok(run, 0, 1, "a line of a loop", 16, T0 + 1);
    size_t b = fl_store_buffered(st);
    if (b > most) most = b;
  }
  CHECK(most <= 4096 + 2);
  fprintf(stderr, "  most lines buffered: %zu\n", most);
  CHECK_EQ_INT(fl_store_task_state(run, 0, FLOWLUA_TASK_SUCCESS, 1, T0 + 2,
                                   NULL), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 3, NULL),
               FLOWLUA_OK);
  fl_store_run_detail *d = load(st, "loop");
  fl_store_log_list l;
  CHECK_EQ_INT(d ? fl_store_load_logs(st, d, NULL, &l) : -1, FLOWLUA_OK);
  CHECK_EQ_INT(l.n, FL_STORE_LOG_LINES);
  const fl_store_log_drop *drop = fl_store_log_drop_of(&l, 0);
  CHECK(drop && drop->lines == 99000 && drop->bytes == 99000 * 16);
  fl_store_log_list_free(&l);
  fl_store_run_detail_free(d);
  fl_store_close(st);
}

/* Bad calls are refused, naming what is wrong; a line after the task
   run ended is not kept. */
static void test_refusals(void) {
  const char *where = fresh("refusals.db");
  fl_store *st = open_at(where);
  if (!st) return;
  const char *keys[] = {"t"};
  fl_store_run *run = begin(st, "refused", T0, keys, 1);
  if (run) {
    CHECK_EQ_INT(fl_store_task_log(run, 7, 1, FLOWLUA_LOG_INFO, T0, "x", 1),
                 FLOWLUA_EINVAL);
    CHECK_CONTAINS(fl_store_errmsg(st), "no task run number 7");
    CHECK_EQ_INT(fl_store_task_log(run, 0, 1, 42, T0, "x", 1), FLOWLUA_EINVAL);
    CHECK_CONTAINS(fl_store_errmsg(st), "no log level number 42");
    /* A line after the task run's final state is not kept. */
    log_ok(run, 0, 1, "before", 6, T0 + 0.1);
    CHECK_EQ_INT(fl_store_task_state(run, 0, FLOWLUA_TASK_SUCCESS, 1, T0 + 0.2,
                                     NULL), FLOWLUA_OK);
    log_ok(run, 0, 1, "after", 5, T0 + 0.3);
    CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 1, NULL),
                 FLOWLUA_OK);
  }
  fl_store_run_detail *d = load(st, "refused");
  fl_store_log_list l;
  CHECK_EQ_INT(d ? fl_store_load_logs(st, d, "t", &l) : -1, FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 1);
  if (l.n == 1) CHECK_EQ_STR(l.lines[0].line, "before");
  fl_store_log_list_free(&l);
  fl_store_run_detail_free(d);
  fl_store_close(st);
}

/* A copy keeps every line and count; prune deletes them with their run. */
static void test_copy_and_prune(void) {
  const char *where = fresh("copy_src.db");
  fl_store *st = open_at(where);
  if (!st) return;
  record_bounds_run(st);
  const char *to_path = tmp_path("copy_dst.db");
  unlink(to_path);
  fl_store *to = open_at(to_path);
  if (to) {
    fl_store_copy_counts counts;
    int rc = fl_store_copy(st, to, &counts);
    CHECK_EQ_INT(rc, FLOWLUA_OK);
    if (rc) fprintf(stderr, "  copy: %s\n", fl_store_errmsg(to));
    CHECK_EQ_INT(counts.log_lines, 1069);
    CHECK_EQ_INT(counts.log_drops, 3);
    check_bounds_run(to);
    fl_store_close(to);
  }
  fl_store_prune_opts o = {.older_than = 60};
  fl_store_prune *p = NULL;
  CHECK_EQ_INT(fl_store_prune_begin(st, &o, T0 + 86400, &p), FLOWLUA_OK);
  int rc;
  while ((rc = fl_store_prune_step(p)) == 1) {
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(fl_store_prune_done(p)->runs, 1);
  fl_store_prune_free(p);
  /* Copied back into an empty SQLite file, the pruned history has no
     lines left: the copy counts what the source holds. */
  const char *after = tmp_path("after_prune.db");
  unlink(after);
  to = open_at(after);
  if (to) {
    fl_store_copy_counts counts;
    CHECK_EQ_INT(fl_store_copy(st, to, &counts), FLOWLUA_OK);
    CHECK_EQ_INT(counts.runs, 0);
    CHECK_EQ_INT(counts.log_lines, 0);
    CHECK_EQ_INT(counts.log_drops, 0);
    fl_store_close(to);
  }
  fl_store_close(st);
}

/* A SQLite history copied into the backend under test keeps every line
   and count (on PostgreSQL: the other direction of test_copy_and_prune). */
static void test_copy_into(void) {
  const char *src = tmp_path("copy_into_src.db");
  unlink(src);
  fl_store *from = open_at(src);
  if (!from) return;
  record_bounds_run(from);
  const char *where = fresh("copy_into_dst.db");
  fl_store *to = open_at(where);
  if (to) {
    fl_store_copy_counts counts;
    int rc = fl_store_copy(from, to, &counts);
    CHECK_EQ_INT(rc, FLOWLUA_OK);
    if (rc) fprintf(stderr, "  copy: %s\n", fl_store_errmsg(to));
    CHECK_EQ_INT(counts.log_lines, 1069);
    CHECK_EQ_INT(counts.log_drops, 3);
    check_bounds_run(to);
    fl_store_close(to);
  }
  fl_store_close(from);
}

static void raw_exec(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  char *msg = NULL;
  CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  CHECK_EQ_INT(rc, SQLITE_OK);
  if (rc) fprintf(stderr, "  %s: %s\n", sql, msg);
  sqlite3_free(msg);
  sqlite3_close(db);
}

/* A file as flowlua 6 left it (schema version 6, no task_log) keeps its
   runs, reads no lines for them, and records lines of new runs. */
static void test_migrate_from_v6(void) {
  const char *path = tmp_path("v6.db");
  unlink(path);
  for (int v = 0; v < 6; v++) raw_exec(path, fl__store_migration_sql(v));
  char sql[160];
  snprintf(sql, sizeof sql,
           "PRAGMA application_id = %d; PRAGMA user_version = 6;",
           FL_STORE_APPLICATION_ID);
  raw_exec(path, sql);
  raw_exec(path,
           "INSERT INTO flow_run(id, run_id, flow, state, started_at, ended_at,"
           " owner_host, owner_boot, owner_pid, owner_start) VALUES (1, 'old',"
           " 'f', 'Success', 1764346201, 1764346205, 'h', 'b', 1, 1);"
           "INSERT INTO run_graph(run, keys) VALUES (1, '[\"a\"]');"
           "INSERT INTO task_row(run, n, key, task, map_index, state, state_at,"
           " state_seq, attempts, started_at, started_seq, ended_at,"
           " result_kind) VALUES (1, 0, 'a', 'a', 0, 'Success', 1764346203,"
           " 2, 1, 1764346202, 1, 1764346203, 0);"
           "UPDATE run_ids SET next = 2;");
  fl_store *st = open_at(path);
  if (!st) return;
  fl_store_run_detail *d = load(st, "old");
  fl_store_log_list l;
  CHECK_EQ_INT(d ? fl_store_load_logs(st, d, NULL, &l) : -1, FLOWLUA_OK);
  CHECK(d && d->n_tasks == 1);
  CHECK_EQ_INT(l.n, 0);
  CHECK_EQ_INT(l.n_drops, 0);
  fl_store_log_list_free(&l);
  fl_store_run_detail_free(d);
  const char *keys[] = {"b"};
  fl_store_run *run = begin(st, "new", T0 + 10, keys, 1);
  if (run) {
    log_ok(run, 0, 1, "after the migration", 19, T0 + 11);
    CHECK_EQ_INT(fl_store_task_state(run, 0, FLOWLUA_TASK_SUCCESS, 1, T0 + 12,
                                     NULL), FLOWLUA_OK);
    CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 13, NULL),
                 FLOWLUA_OK);
  }
  d = load(st, "new");
  CHECK_EQ_INT(d ? fl_store_load_logs(st, d, "b", &l) : -1, FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 1);
  if (l.n == 1) CHECK_EQ_STR(l.lines[0].line, "after the migration");
  fl_store_log_list_free(&l);
  fl_store_run_detail_free(d);
  fl_store_close(st);
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
  CHECK_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL),
               SQLITE_OK);
  CHECK_EQ_INT(sqlite3_step(s), SQLITE_ROW);
  CHECK_EQ_INT(sqlite3_column_int(s, 0), FL_STORE_SCHEMA_VERSION);
  sqlite3_finalize(s);
  sqlite3_close(db);
}

int main(void) {
  snprintf(tmp_root, sizeof tmp_root, "/tmp/fl_store_logs_" MKDTEMP_SUFFIX);
  if (!mkdtemp(tmp_root)) {
    perror("mkdtemp");
    return 1;
  }
  const char *pg = getenv("FLOWLUA_TEST_PG");
  backend = pg && *pg ? pg : "sqlite";
  fprintf(stderr, "backend: %s\n", pg && *pg ? "postgresql" : "sqlite");
  RUN(test_bounds);
  RUN(test_buffer_bounded);
  RUN(test_refusals);
  RUN(test_copy_and_prune);
  RUN(test_copy_into);
  if (strcmp(backend, "sqlite") == 0) RUN(test_migrate_from_v6);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
  return check_summary();
}
