/*
 * test_store.c — the state store on real SQLite files in a temporary folder:
 * creating, reopening and migrating; refusing foreign, newer, corrupt and
 * non-SQLite files without changing a byte; batching (nothing visible to
 * another connection before a flush, everything after, a failed flush kept
 * for the next); crash marking (live, dead, reused and zombie pids, another
 * boot, another host); fire claims from two handles and two processes;
 * list/show queries and their printed text and JSON; resume checks; the
 * cache. Every file ends with PRAGMA integrity_check = ok. Last, a timing
 * of the buffered path (printed, not asserted).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fsutil.h"
#include "store.h"
#include "store_internal.h"

/* 2025-11-28 16:10:01 UTC: every test's clock starts here. */
static const double T0 = 1764346201.0;

static char tmp_root[256];

/* ---- helpers --------------------------------------------------------------- */

/* A path in the test's temporary folder; four may be held at once. */
static const char *tmp_path(const char *name) {
  static char bufs[4][512];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", tmp_root, name);
  return b;
}

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static fl_store *open_store(const char *path) {
  fl_store *st = NULL;
  char err[512];
  int rc = fl_store_open(path, NULL, &st, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  open: %s\n", err);
  return st;
}

/* Runs one SQL statement on a separate, plain connection and returns the
   first column of its first row as a malloc'd string ("" when no row). */
static char *raw_query(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  char *out = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    out = strdup(sqlite3_errmsg(db));
  } else {
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      const char *v = (const char *)sqlite3_column_text(s, 0);
      out = strdup(v ? v : "NULL");
    } else {
      out = strdup(rc == SQLITE_DONE ? "" : sqlite3_errmsg(db));
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return out;
}

static long long raw_int(const char *path, const char *sql) {
  char *s = raw_query(path, sql);
  long long v = strtoll(s, NULL, 10);
  free(s);
  return v;
}

#define CHECK_QUERY(path, sql, want)                                           \
  do {                                                                         \
    char *got_ = raw_query((path), (sql));                                     \
    CHECK_EQ_STR(got_, (want));                                                \
    free(got_);                                                                \
  } while (0)

static void raw_exec(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open(path, &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) fprintf(stderr, "  raw_exec: %s\n", sqlite3_errmsg(db));
  CHECK_EQ_INT(rc, SQLITE_OK);
  sqlite3_close(db);
}

/* The whole file must be consistent, foreign keys included. */
static void check_integrity(const char *path) {
  CHECK_QUERY(path, "PRAGMA integrity_check", "ok");
  CHECK_QUERY(path, "SELECT count(*) FROM pragma_foreign_key_check", "0");
}

/* Whether json is valid JSON, by SQLite's parser. */
static int json_ok(const char *json) {
  sqlite3 *db = NULL;
  sqlite3_open(":memory:", &db);
  sqlite3_stmt *s = NULL;
  sqlite3_prepare_v2(db, "SELECT json_valid(?1)", -1, &s, NULL);
  sqlite3_bind_text(s, 1, json, -1, SQLITE_STATIC);
  int ok = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 1;
  sqlite3_finalize(s);
  sqlite3_close(db);
  return ok;
}

/* json_extract(json, path) as text, malloc'd ("NULL" for null). */
static char *json_get(const char *json, const char *jpath) {
  sqlite3 *db = NULL;
  sqlite3_open(":memory:", &db);
  sqlite3_stmt *s = NULL;
  sqlite3_prepare_v2(db, "SELECT json_extract(?1, ?2)", -1, &s, NULL);
  sqlite3_bind_text(s, 1, json, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, jpath, -1, SQLITE_STATIC);
  char *out = NULL;
  if (sqlite3_step(s) == SQLITE_ROW) {
    const char *v = (const char *)sqlite3_column_text(s, 0);
    out = strdup(v ? v : "NULL");
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out ? out : strdup("?");
}

#define CHECK_JSON(json, jpath, want)                                          \
  do {                                                                         \
    char *got_ = json_get((json), (jpath));                                    \
    CHECK_EQ_STR(got_, (want));                                                \
    free(got_);                                                                \
  } while (0)

/* The file's bytes, to prove a refused file was not touched. */
typedef struct snapshot {
  char *data;
  size_t len;
} snapshot;

static snapshot take(const char *path) {
  snapshot s = {NULL, 0};
  CHECK_EQ_INT(fl_read_file(path, &s.data, &s.len), 0);
  return s;
}

static void check_unchanged(const char *path, snapshot before) {
  snapshot now = take(path);
  CHECK_EQ_INT(now.len, before.len);
  CHECK(now.len == before.len && memcmp(now.data, before.data, now.len) == 0);
  free(now.data);
  free(before.data);
  /* No journal or WAL appeared beside it either. */
  char side[600];
  snprintf(side, sizeof side, "%s-wal", path);
  CHECK(!exists(side));
  snprintf(side, sizeof side, "%s-journal", path);
  CHECK(!exists(side));
}

static void write_text(const char *path, const char *text, size_t len) {
  CHECK_EQ_INT(fl_write_file_atomic(path, text, len), 0);
}

/* Opening must fail with a message holding `want` and leave the file as it
   was. */
static void check_refused(const char *path, const char *want) {
  snapshot before = take(path);
  fl_store *st = (fl_store *)1;
  char err[512];
  int rc = fl_store_open(path, NULL, &st, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_EIO);
  CHECK(st == NULL);
  CHECK_CONTAINS(err, want);
  CHECK_CONTAINS(err, path);
  check_unchanged(path, before);
}

static fl_store_run *begin(fl_store *st, const char *id, const char *flow,
                           double started, const char *const *keys,
                           size_t n_keys, const fl_store_owner *owner) {
  fl_store_run_info info = {.run_id = id, .flow = flow, .script = "flows/x.lua",
                            .params_json = "{\"n\":1}", .started_at = started,
                            .keys = keys, .n_keys = n_keys, .owner = owner};
  fl_store_run *run = NULL;
  int rc = fl_store_run_begin(st, &info, &run);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  run_begin: %s\n", fl_store_errmsg(st));
  return run;
}

static uint32_t add_task(fl_store_run *run, const char *key, const char *task,
                         int map_index) {
  uint32_t id = UINT32_MAX;
  CHECK_EQ_INT(fl_store_task_add(run, key, task, map_index, &id), FLOWLUA_OK);
  return id;
}

static void state(fl_store_run *run, uint32_t t, int s, int attempt, double at,
                  const char *error) {
  CHECK_EQ_INT(fl_store_task_state(run, t, s, attempt, at, error), FLOWLUA_OK);
}

static void result(fl_store_run *run, uint32_t t, const char *json) {
  CHECK_EQ_INT(fl_store_task_result(run, t, json, json ? strlen(json) : 0),
               FLOWLUA_OK);
}

static void flush_ok(fl_store *st) {
  int rc = fl_store_flush(st);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  flush: %s\n", fl_store_errmsg(st));
}

/* ---- run marks --------------------------------------------------------------- */

static int same_mark(const fl_store_run_mark *a, const fl_store_run_mark *b) {
  return a->state == b->state && a->ended_at == b->ended_at &&
         a->task_runs == b->task_runs && a->changes == b->changes;
}

/* A run's mark changes with each change a reader can see: a task run in
   task_row changing state, a pack of task runs that ended in one batch,
   the run's end; and not without one. */
static void test_run_mark(void) {
  fl_store *st = open_store(tmp_path("mark.db"));
  if (!st) return;
  static const char *const keys[] = {"slow"};
  fl_store_run *run = begin(st, "r-mark", "f", T0, keys, 1, NULL);
  if (!run) {
    fl_store_close(st);
    return;
  }
  uint32_t slow = add_task(run, "slow", "slow", 0);
  state(run, slow, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL);
  flush_ok(st);
  fl_store_run_mark m1, m2, m3, m4, again;
  CHECK_EQ_INT(fl_store_run_mark_get(st, "r-mark", &m1), FLOWLUA_OK);
  CHECK_EQ_INT(m1.state, FLOWLUA_FLOW_RUNNING);
  CHECK(m1.task_runs > 0);
  CHECK_EQ_INT(fl_store_run_mark_get(st, "r-mark", &again), FLOWLUA_OK);
  CHECK(same_mark(&m1, &again)); /* nothing changed: the same mark */
  state(run, slow, FLOWLUA_TASK_RETRYING, 1, T0 + 2, "try again");
  flush_ok(st);
  CHECK_EQ_INT(fl_store_run_mark_get(st, "r-mark", &m2), FLOWLUA_OK);
  CHECK(!same_mark(&m1, &m2));
  /* Task runs declared and ended in one batch: written as a pack. */
  for (int i = 0; i < 40; i++) {
    char key[16];
    snprintf(key, sizeof key, "quick#%d", i);
    uint32_t t = add_task(run, key, "quick", 0);
    state(run, t, FLOWLUA_TASK_RUNNING, 1, T0 + 3, NULL);
    state(run, t, FLOWLUA_TASK_SUCCESS, 1, T0 + 3.5, NULL);
  }
  flush_ok(st);
  CHECK_QUERY(tmp_path("mark.db"), "SELECT count(*) > 0 FROM task_pack", "1");
  CHECK_EQ_INT(fl_store_run_mark_get(st, "r-mark", &m3), FLOWLUA_OK);
  CHECK(!same_mark(&m2, &m3));
  state(run, slow, FLOWLUA_TASK_SUCCESS, 2, T0 + 4, NULL);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 5, NULL), FLOWLUA_OK);
  flush_ok(st);
  CHECK_EQ_INT(fl_store_run_mark_get(st, "r-mark", &m4), FLOWLUA_OK);
  CHECK_EQ_INT(m4.state, FLOWLUA_FLOW_SUCCESS);
  CHECK(m4.ended_at == T0 + 5);
  CHECK_EQ_INT(fl_store_run_mark_get(st, "no-such", &again), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "no run 'no-such'");
  fl_store_close(st);
}

/* ---- opening ------------------------------------------------------------------ */

static void test_create_and_reopen(void) {
  CHECK_EQ_INT(mkdir(tmp_path("create"), 0777), 0);
  const char *path = tmp_path("create/.flowlua/state.db");
  fl_store *st = open_store(path);
  CHECK(st != NULL);
  CHECK(exists(tmp_path("create/.flowlua")));
  CHECK_EQ_STR(fl_store_path(st), path);
  CHECK_EQ_STR(fl_store_errmsg(st), "");
  fl_store_close(st);

  CHECK_EQ_INT(raw_int(path, "PRAGMA application_id"), FL_STORE_APPLICATION_ID);
  CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), FL_STORE_SCHEMA_VERSION);
  CHECK_QUERY(path, "PRAGMA journal_mode", "wal");
  CHECK_QUERY(path,
              "SELECT group_concat(name, ' ') FROM (SELECT name FROM"
              " sqlite_schema WHERE type = 'table' ORDER BY name)",
              "attempt_worker cache fire fire_event flow_def flow_pause flow_run run_cancel run_graph run_ids task_event task_log task_log_dropped task_pack task_row");

  /* Reopened: the schema is kept, nothing is migrated again. */
  st = open_store(path);
  fl_store_run *run = begin(st, "r1", "f", T0, NULL, 0, NULL);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 1, NULL),
               FLOWLUA_OK);
  fl_store_close(st);
  st = open_store(path);
  fl_store_run_list l;
  CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 1);
  fl_store_run_list_free(&l);
  fl_store_close(st);
  CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), FL_STORE_SCHEMA_VERSION);
  check_integrity(path);
}

/* Only the last folder is created: a mistyped path is an error. */
static void test_missing_folders(void) {
  const char *path = tmp_path("no/such/state.db");
  fl_store *st = (fl_store *)1;
  char err[512];
  CHECK_EQ_INT(fl_store_open(path, NULL, &st, err, sizeof err), FLOWLUA_EIO);
  CHECK(st == NULL);
  CHECK_CONTAINS(err, "cannot create folder");
  CHECK_CONTAINS(err, "no/such");
  CHECK_CONTAINS(err, "does not exist");
  CHECK(!exists(tmp_path("no")));

  /* must_exist: a missing file is no error, and nothing is created. */
  fl_store_options o;
  fl_store_options_init(&o);
  o.must_exist = 1;
  path = tmp_path("absent/state.db");
  st = (fl_store *)1;
  CHECK_EQ_INT(fl_store_open(path, &o, &st, err, sizeof err), FLOWLUA_OK);
  CHECK(st == NULL);
  CHECK(!exists(tmp_path("absent")));

  /* A folder where the file should be. */
  CHECK_EQ_INT(mkdir(tmp_path("dir.db"), 0777), 0);
  CHECK_EQ_INT(fl_store_open(tmp_path("dir.db"), NULL, &st, err, sizeof err),
               FLOWLUA_EIO);
  CHECK_CONTAINS(err, "is a folder");
  fl_store_close(NULL); /* always safe */
}

static void test_memory_store(void) {
  fl_store *st = open_store(":memory:");
  fl_store_run *run = begin(st, "m1", "mem", T0, NULL, 0, NULL);
  uint32_t t = add_task(run, "a", "a", 0);
  state(run, t, FLOWLUA_TASK_RUNNING, 1, T0, NULL);
  state(run, t, FLOWLUA_TASK_SUCCESS, 1, T0 + 0.5, NULL);
  flush_ok(st);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 1, NULL),
               FLOWLUA_OK);
  fl_store_run_list l;
  CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 1);
  CHECK_EQ_INT(l.n ? l.rows[0].by_state[FLOWLUA_TASK_SUCCESS] : 0, 1);
  fl_store_run_list_free(&l);
  fl_store_close(st);
  CHECK(!exists(":memory:"));
}

/* An empty file, and an empty SQLite database (version 0, no tables), are
   taken over and migrated from version 0. */
static void test_migrate_from_empty(void) {
  const char *path = tmp_path("empty.db");
  write_text(path, "", 0);
  fl_store *st = open_store(path);
  fl_store_close(st);
  CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), FL_STORE_SCHEMA_VERSION);
  check_integrity(path);

  path = tmp_path("v0.db");
  raw_exec(path, "CREATE TABLE t(x); DROP TABLE t;");
  snapshot s = take(path);
  CHECK(s.len >= 4096); /* a real SQLite file, not an empty one */
  free(s.data);
  CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), 0);
  st = open_store(path);
  fl_store_run *run = begin(st, "v0run", "f", T0, NULL, 0, NULL);
  CHECK(run != NULL);
  fl_store_close(st);
  CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), FL_STORE_SCHEMA_VERSION);
  CHECK_EQ_INT(raw_int(path, "PRAGMA application_id"), FL_STORE_APPLICATION_ID);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM flow_run"), 1);
  check_integrity(path);
}

/* A file as flowlua left it at schema version v: the migrations up to v,
   as they shipped. */
static void write_old_store(const char *path, int v) {
  for (int i = 0; i < v; i++) raw_exec(path, fl__store_migration_sql(i));
  char sql[128];
  snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
           FL_STORE_APPLICATION_ID, v);
  raw_exec(path, sql);
}

/* A version 1 file (before fire_event) keeps its runs and gains the
   table; what became of fire times is recorded there. */
static void test_migrate_from_v1(void) {
  const char *path = tmp_path("v1.db");
  write_old_store(path, 1);
  raw_exec(path, "INSERT INTO flow_run(run_id, flow, state, started_at)"
                 " VALUES ('old', 'f', 'Success', 1764346201)");
  fl_store *st = open_store(path);
  CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), FL_STORE_SCHEMA_VERSION);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM flow_run"), 1);
  CHECK_EQ_INT(fl_store_fire_event(st, "f", "skipped", T0 + 60, 0, 1,
                                   "fire time skipped: still going", T0 + 61),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_fire_event(st, "f", "missed", T0 + 120, T0 + 240, 3,
                                   "missed 3 fire times", T0 + 300),
               FLOWLUA_OK);
  flush_ok(st); /* fire events are written by the writer thread */
  CHECK_QUERY(path,
              "SELECT group_concat(outcome || ' ' || (scheduled_at - 1764346201)"
              " || ' ' || coalesce(last_at - 1764346201, '-') || ' ' || count"
              " || ' ' || detail, '; ') FROM fire_event",
              "skipped 60.0 - 1 fire time skipped: still going; "
              "missed 120.0 240.0 3 missed 3 fire times");
  fl_store_close(st);
  check_integrity(path);
}

/* A version 2 file (one row per task run) keeps its task runs and their
   history, read through the same views, and new runs pack theirs. */
static void test_migrate_from_v2(void) {
  const char *path = tmp_path("v2.db");
  write_old_store(path, 2);
  raw_exec(path,
           "INSERT INTO flow_run(id, run_id, flow, state, started_at, ended_at,"
           " graph) VALUES (1, 'old', 'f', 'Success', 1764346201, 1764346205,"
           " '[\"a\",\"b\"]');"
           "INSERT INTO task_run(run, n, key, task, state, state_at, state_seq,"
           " attempts, error, started_at, started_seq, ended_at, result,"
           " result_kind) VALUES"
           " (1, 0, 'a', 'a', 'Success', 1764346203, 4, 2, NULL, 1764346201.5,"
           "  1, 1764346203, '[1,2]', 1),"
           " (1, 1, 'b', 'b', 'Failed', 1764346204, 2, 1, 'boom', 1764346203.5,"
           "  1, 1764346204, NULL, 0);"
           "INSERT INTO task_event(run, n, seq, at, state, attempt, error) VALUES"
           " (1, 0, 2, 1764346202, 'Retrying', 1, 'first try failed'),"
           " (1, 0, 3, 1764346202.5, 'Running', 2, NULL);");
  fl_store *st = open_store(path);
  CHECK_EQ_INT(raw_int(path, "PRAGMA user_version"), FL_STORE_SCHEMA_VERSION);
  CHECK_QUERY(path,
              "SELECT group_concat(key || ' ' || state || ' ' || attempts || ' '"
              " || coalesce(result, '-') || ' ' || coalesce(error, '-'), '; ')"
              " FROM (SELECT * FROM task_run ORDER BY n)",
              "a Success 2 [1,2] -; b Failed 1 - boom");
  CHECK_QUERY(path,
              "SELECT group_concat(state || '@' || (at - 1764346201), ' ')"
              " FROM (SELECT * FROM task_history WHERE n = 0 ORDER BY seq)",
              "Running@0.5 Retrying@1.0 Running@1.5 Success@2.0");
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl_store_load_run(st, "old", NULL, &d), FLOWLUA_OK);
  CHECK(d && d->n_tasks == 2);
  CHECK(d && d->n_graph_keys == 2);
  if (d && d->n_graph_keys == 2) CHECK_EQ_STR(d->graph_keys[1], "b");
  CHECK(d && d->edges_state == FL_STORE_EDGES_NONE); /* an older run */
  fl_store_run_detail_free(d);

  /* A new run: its task runs that ended are packed, and read back. */
  const char *keys[] = {"x", "y"};
  fl_store_run *run = begin(st, "new", "f", T0 + 10, keys, 2, NULL);
  uint32_t x = 0, y = 0;
  CHECK_EQ_INT(fl_store_task_add(run, "x", "x", 0, &x), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_add(run, "y", "y", 0, &y), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_state(run, x, FLOWLUA_TASK_RUNNING, 1, T0 + 11, NULL),
               FLOWLUA_OK);
  const char *quoted = "\"a \\\"quoted\\\" one\""; /* JSON text */
  CHECK_EQ_INT(fl_store_task_result(run, x, quoted, strlen(quoted)), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_state(run, x, FLOWLUA_TASK_SUCCESS, 1, T0 + 12, NULL),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_state(run, y, FLOWLUA_TASK_RUNNING, 1, T0 + 11, NULL),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 13, NULL),
               FLOWLUA_OK);
  fl_store_close(st);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_pack"), 1);
  CHECK_QUERY(path,
              "SELECT group_concat(t.key || ' ' || t.state || ' ' ||"
              " coalesce(t.result, '-') || ' ' || (t.ended_at - 1764346201), '; ')"
              " FROM task_run t JOIN flow_run r ON r.id = t.run"
              " WHERE r.run_id = 'new' AND t.state = 'Success'",
              "x Success \"a \\\"quoted\\\" one\" 12.0");
  check_integrity(path);
}

static void test_refuse_foreign(void) {
  /* Another application's database. */
  const char *path = tmp_path("other-app.db");
  raw_exec(path, "PRAGMA application_id = 305419896; CREATE TABLE notes(x);"
                 " INSERT INTO notes VALUES ('keep me');");
  check_refused(path, "another application (application_id 0x12345678)");
  /* A database without an application id, with tables of its own. */
  path = tmp_path("other-schema.db");
  raw_exec(path, "CREATE TABLE users(id); CREATE TABLE orders(id);"
                 " INSERT INTO users VALUES (1);");
  check_refused(path, "tables of its own ('orders', 'users')");
  /* An empty database whose user_version another program set. */
  path = tmp_path("other-version.db");
  raw_exec(path, "PRAGMA user_version = 7; CREATE TABLE t(x); DROP TABLE t;");
  check_refused(path, "user_version 7");
  /* The refused files are still what their owners wrote. */
  CHECK_QUERY(tmp_path("other-app.db"), "SELECT x FROM notes", "keep me");
}

static void test_refuse_not_sqlite(void) {
  const char *path = tmp_path("notes.txt");
  const char text[] = "id,name\n1,Ada\n2,Grace\n";
  write_text(path, text, sizeof text - 1);
  check_refused(path, "not a SQLite database");
  /* Shorter than SQLite's magic string. */
  path = tmp_path("tiny.bin");
  write_text(path, "SQLite", 6);
  check_refused(path, "not a SQLite database");
}

static void test_refuse_newer(void) {
  const char *path = tmp_path("newer.db");
  fl_store_close(open_store(path));
  raw_exec(path, "PRAGMA user_version = 99");
  /* Closing the last connection checkpointed the WAL: one file. */
  check_refused(path, "newer flowlua (schema version 99; this one knows up to 9)");
}

/* A file that claims to be SQLite but whose schema page is garbage. */
static void test_refuse_corrupt(void) {
  const char *path = tmp_path("corrupt.db");
  fl_store *st = open_store(path);
  begin(st, "c1", "f", T0, NULL, 0, NULL);
  fl_store_close(st);
  /* flowlua leaves its commits in the WAL; a plain connection's close
     checkpoints them into the file, whose first page is then ours. */
  raw_exec(path, "PRAGMA wal_checkpoint(TRUNCATE)");
  snapshot s = take(path);
  CHECK(s.len > 4096);
  if (s.len > 4096) {
    memset(s.data + 100, 0xA5, 4096 - 100); /* page 1 after the header */
    write_text(path, s.data, s.len);
  }
  free(s.data);
  check_refused(path, "malformed");
}

/* ---- batching ------------------------------------------------------------------ */

static void test_batching(void) {
  const char *path = tmp_path("batch.db");
  fl_store *st = open_store(path);
  static const char *const keys[] = {"extract", "transform", "load"};
  fl_store_run *run = begin(st, "b1", "etl", T0, keys, 3, NULL);
  /* The run itself is committed at once, with its owner. */
  CHECK_QUERY(path, "SELECT state FROM flow_run WHERE run_id = 'b1'", "Running");
  CHECK_EQ_INT(raw_int(path, "SELECT owner_pid FROM flow_run"), getpid());

  uint32_t e = add_task(run, "extract", "extract", 0);
  uint32_t t = add_task(run, "transform", "transform", 0);
  uint32_t l = add_task(run, "load", "load", 0);
  state(run, e, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL);
  state(run, e, FLOWLUA_TASK_SUCCESS, 1, T0 + 2, NULL);
  result(run, e, "[1,2,3]");
  state(run, t, FLOWLUA_TASK_RUNNING, 1, T0 + 2, NULL);
  state(run, t, FLOWLUA_TASK_RETRYING, 1, T0 + 3, "attempt 1 failed");
  /* Two task runs to write, and no change for task_event: each task run's
     first Running and latest change are in its row. */
  CHECK_EQ_INT(fl_store_pending(st), 2);

  /* Nothing is visible to another connection before the flush... */
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_run"), 0);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_history"), 0);
  flush_ok(st);
  CHECK_EQ_INT(fl_store_pending(st), 0);
  /* ...and everything is after it: four changes, told by two rows. */
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_run"), 2);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_history"), 4);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_event"), 0);
  CHECK_QUERY(path,
              "SELECT state || ' ' || attempts || ' ' || (ended_at - started_at)"
              " || ' ' || result || ' ' || result_kind FROM task_run"
              " WHERE key = 'extract'",
              "Success 1 1.0 [1,2,3] 1");
  CHECK_QUERY(path,
              "SELECT group_concat(state || '@' || (at - 1764346201) || ':' ||"
              " coalesce(error, '-'), ' ') FROM (SELECT h.* FROM task_history h"
              " JOIN task_run t USING (run, n) WHERE t.key = 'transform'"
              " ORDER BY seq)",
              "Running@2.0:- Retrying@3.0:attempt 1 failed");
  CHECK_QUERY(path, "SELECT error FROM task_run WHERE key = 'transform'",
              "attempt 1 failed");

  /* A second batch updates the rows written by the first. */
  state(run, t, FLOWLUA_TASK_RUNNING, 2, T0 + 4, NULL);
  state(run, t, FLOWLUA_TASK_SUCCESS, 2, T0 + 5, NULL);
  result(run, t, "{\"rows\":3}");
  state(run, l, FLOWLUA_TASK_RUNNING, 1, T0 + 5, NULL);
  state(run, l, FLOWLUA_TASK_FAILED, 1, T0 + 6, "disk full");
  result(run, l, NULL); /* could not be serialised */
  flush_ok(st);
  CHECK_QUERY(path,
              "SELECT state || ' ' || attempts || ' ' || (ended_at - started_at)"
              " || ' ' || coalesce(error, 'no error') || ' ' || result"
              " FROM task_run WHERE key = 'transform'",
              "Success 2 3.0 no error {\"rows\":3}");
  /* Its whole history: the first Running and the latest Success are in
     its row, the two changes in between in task_event. */
  CHECK_QUERY(path,
              "SELECT group_concat(seq || state || attempt, ',') FROM (SELECT"
              " h.* FROM task_history h JOIN task_run t USING (run, n)"
              " WHERE t.key = 'transform' ORDER BY seq)",
              "1Running1,2Retrying1,3Running2,4Success2");
  CHECK_QUERY(path,
              "SELECT group_concat(seq || state, ',') FROM (SELECT e.* FROM"
              " task_event e JOIN task_run t USING (run, n)"
              " WHERE t.key = 'transform' ORDER BY seq)",
              "2Retrying,3Running");
  CHECK_QUERY(path,
              "SELECT state || ' ' || error || ' ' || result_kind || ' ' ||"
              " coalesce(result, 'none') FROM task_run WHERE key = 'load'",
              "Failed disk full 2 none");
  /* A flush with nothing buffered is free and harmless. */
  flush_ok(st);

  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_FAILED, T0 + 7, "1 task failed"),
               FLOWLUA_OK);
  flush_ok(st); /* the end is written by the writer thread */
  CHECK_QUERY(path,
              "SELECT state || ' ' || (ended_at - started_at) || ' ' || error"
              " || ' ' || task_counts FROM flow_run",
              "Failed 7.0 1 task failed {\"Failed\":1,\"Success\":2}");
  fl_store_close(st);
  check_integrity(path);
}

/* A flush that fails keeps its batch; the next one writes it exactly once. */
static void test_failed_flush_is_retried(void) {
  const char *path = tmp_path("retry.db");
  fl_store_options o;
  fl_store_options_init(&o);
  o.busy_timeout_ms = 50;
  fl_store *st = NULL;
  char err[512];
  CHECK_EQ_INT(fl_store_open(path, &o, &st, err, sizeof err), FLOWLUA_OK);
  if (!st) return;
  fl_store_run *run = begin(st, "f1", "f", T0, NULL, 0, NULL);
  uint32_t a = add_task(run, "a", "a", 0);
  uint32_t b = add_task(run, "b", "b", 0);
  state(run, a, FLOWLUA_TASK_RUNNING, 1, T0, NULL);

  /* 1. Another process holds the write lock longer than the timeout. */
  sqlite3 *other = NULL;
  sqlite3_open(path, &other);
  CHECK_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_EIO);
  CHECK_CONTAINS(fl_store_errmsg(st), path);
  CHECK_CONTAINS(fl_store_errmsg(st), "locked");
  CHECK_CONTAINS(fl_store_errmsg(st), "more than 50 ms");
  CHECK_EQ_INT(fl_store_pending(st), 1);
  sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);

  /* 2. A failure in the middle of the batch, after task rows were
     inserted: they are rolled back and must be inserted again. */
  sqlite3_exec(other,
               "CREATE TRIGGER inject BEFORE INSERT ON task_event"
               " WHEN NEW.error = 'boom' BEGIN SELECT RAISE(ABORT,"
               " 'injected failure'); END;",
               NULL, NULL, NULL);
  state(run, b, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL);
  state(run, b, FLOWLUA_TASK_RETRYING, 1, T0 + 2, "boom");
  state(run, b, FLOWLUA_TASK_RUNNING, 2, T0 + 3, NULL);
  state(run, b, FLOWLUA_TASK_FAILED, 2, T0 + 4, "boom again");
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "injected failure");
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_run"), 0);
  sqlite3_exec(other, "DROP TRIGGER inject", NULL, NULL, NULL);
  sqlite3_close(other);

  flush_ok(st);
  CHECK_EQ_INT(fl_store_pending(st), 0);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_run"), 2);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_history"), 5);
  CHECK_QUERY(path, "SELECT state || ' ' || error FROM task_run WHERE key = 'b'",
              "Failed boom again");
  fl_store_close(st);
  check_integrity(path);
}

/* Batches handed to the writer thread: written in the background; a
   failed one is kept and reported by the next flush, then written again,
   whole and in order, with what came after it. */
static void test_background_writer(void) {
  const char *path = tmp_path("writer.db");
  fl_store_options o;
  fl_store_options_init(&o);
  o.busy_timeout_ms = 50;
  fl_store *st = NULL;
  char err[512];
  CHECK_EQ_INT(fl_store_open(path, &o, &st, err, sizeof err), FLOWLUA_OK);
  if (!st) return;
  fl_store_run *run = begin(st, "w1", "f", T0, NULL, 0, NULL);
  uint32_t a = add_task(run, "a", "a", 0), b = add_task(run, "b", "b", 0);
  state(run, a, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL);
  state(run, a, FLOWLUA_TASK_SUCCESS, 1, T0 + 2, NULL);
  result(run, a, "[1]");
  CHECK_EQ_INT(fl_store_buffered(st), 1);
  CHECK_EQ_INT(fl_store_flush_async(st), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_buffered(st), 0); /* handed over at once */
  flush_ok(st); /* and waited for */
  CHECK_EQ_INT(fl_store_pending(st), 0);
  CHECK_QUERY(path, "SELECT state || ' ' || result FROM task_run WHERE key = 'a'",
              "Success [1]");

  /* Another process holds the write lock: the background write fails. */
  sqlite3 *other = NULL;
  sqlite3_open(path, &other);
  CHECK_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  state(run, b, FLOWLUA_TASK_RUNNING, 1, T0 + 3, NULL);
  CHECK_EQ_INT(fl_store_flush_async(st), FLOWLUA_OK); /* does not wait */
  state(run, a, FLOWLUA_TASK_RUNNING, 2, T0 + 4, NULL); /* a later change */
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_EIO);
  CHECK_CONTAINS(fl_store_errmsg(st), "locked");
  CHECK_CONTAINS(fl_store_errmsg(st), "more than 50 ms");
  /* Kept: b's row, a's row, and a's Success, now history. */
  CHECK_EQ_INT(fl_store_pending(st), 3);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_run"), 1);
  sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(other);

  flush_ok(st);
  CHECK_EQ_INT(fl_store_pending(st), 0);
  CHECK_QUERY(path,
              "SELECT group_concat(key || '=' || state || '/' || attempts, ' ')"
              " FROM (SELECT * FROM task_run ORDER BY n)",
              "a=Running/2 b=Running/1");
  /* a's result from the first batch is kept by the update. */
  CHECK_QUERY(path, "SELECT result FROM task_run WHERE key = 'a'", "[1]");
  CHECK_QUERY(path,
              "SELECT group_concat(state || attempt, ',') FROM (SELECT h.*"
              " FROM task_history h JOIN task_run t USING (run, n)"
              " WHERE t.key = 'a' ORDER BY seq)",
              "Running1,Success1,Running2");
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_CANCELLED, T0 + 5, NULL),
               FLOWLUA_OK);
  fl_store_close(st);
  check_integrity(path);
}

/* Map elements are declared without the set of keys, unless a graph key
   holds a '[' and so could be one of them. */
static void test_element_keys(void) {
  const char *path = tmp_path("elements.db");
  fl_store *st = open_store(path);
  static const char *const keys[] = {"fetch", "odd[2]"};
  static const char *const tasks[] = {"fetch", "odd[2]"};
  fl_store_run *run = begin(st, "el", "f", T0, NULL, 0, NULL);
  uint32_t first = 99, n = 0;
  CHECK_EQ_INT(fl_store_task_add_many(run, keys, tasks, 2, &first), FLOWLUA_OK);
  CHECK_EQ_INT(first, 0);
  CHECK_EQ_INT(fl_store_task_add_element(run, "fetch[1]", "fetch", 1, &n),
               FLOWLUA_OK);
  CHECK_EQ_INT(n, 2);
  CHECK_EQ_INT(fl_store_task_add_element(run, "odd[2]", "odd", 2, &n),
               FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "task key 'odd[2]' is used twice");
  /* A many-declaration that fails declares none of its keys. */
  static const char *const again[] = {"new", "fetch"};
  CHECK_EQ_INT(fl_store_task_add_many(run, again, again, 2, &first),
               FLOWLUA_EINVAL);
  CHECK_EQ_INT(fl_store_task_add(run, "new", "new", 0, &n), FLOWLUA_OK);
  CHECK_EQ_INT(n, 3);
  state(run, 2, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL);
  state(run, 2, FLOWLUA_TASK_SUCCESS, 1, T0 + 2, NULL);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 3, NULL),
               FLOWLUA_OK);
  fl_store_close(st);
  CHECK_QUERY(path, "SELECT key || ' ' || map_index || ' ' || state FROM task_run",
              "fetch[1] 1 Success");
}

static void test_misuse(void) {
  const char *path = tmp_path("misuse.db");
  fl_store *st = open_store(path);
  fl_store_run *run = begin(st, "dup", "f", T0, NULL, 0, NULL);
  fl_store_run *again = (fl_store_run *)1;
  fl_store_run_info info = {.run_id = "dup", .flow = "f", .started_at = T0};
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &again), FLOWLUA_EINVAL);
  CHECK(again == NULL);
  CHECK_CONTAINS(fl_store_errmsg(st), "run id 'dup' is already recorded");
  info.run_id = "badparams";
  info.params_json = "{not json";
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &again), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "params of run 'badparams' are not valid JSON");
  info.run_id = "";
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &again), FLOWLUA_EINVAL);

  uint32_t t = add_task(run, "x", NULL, 0);
  uint32_t u = UINT32_MAX;
  CHECK_EQ_INT(fl_store_task_add(run, "x", "x", 0, &u), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "task key 'x' is used twice");
  CHECK_EQ_INT(fl_store_task_add(run, "", "x", 0, &u), FLOWLUA_EINVAL);
  CHECK_EQ_INT(fl_store_task_state(run, t + 1, FLOWLUA_TASK_RUNNING, 1, T0, NULL),
               FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "no task run number 1");
  CHECK_EQ_INT(fl_store_task_state(run, t, 99, 1, T0, NULL), FLOWLUA_EINVAL);
  CHECK_EQ_INT(fl_store_task_result(run, 7, "1", 1), FLOWLUA_EINVAL);
  CHECK_EQ_INT(fl_store_pending(st), 0); /* failures buffer nothing */
  /* A bad final state is refused, and the handle is freed all the same
     (the sanitizer build would see a leak). */
  CHECK_EQ_INT(fl_store_run_end(run, 42, T0, NULL), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "state number 42");
  fl_store_close(st);
  CHECK_QUERY(path, "SELECT state FROM task_run", "");
  check_integrity(path);
}

/* ---- crash detection -------------------------------------------------------------- */

static void crashed_run_setup(fl_store *st, const char *id,
                              const fl_store_owner *owner) {
  fl_store_run *run = begin(st, id, "crashy", T0, NULL, 0, owner);
  if (!run) return;
  uint32_t a = add_task(run, "done", "done", 0);
  uint32_t b = add_task(run, "busy", "busy", 0);
  uint32_t c = add_task(run, "waiting", "waiting", 0);
  state(run, a, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL);
  state(run, a, FLOWLUA_TASK_SUCCESS, 1, T0 + 2, NULL);
  state(run, b, FLOWLUA_TASK_RUNNING, 1, T0 + 2, NULL);
  state(run, c, FLOWLUA_TASK_RUNNING, 1, T0 + 2, NULL);
  state(run, c, FLOWLUA_TASK_RETRYING, 1, T0 + 3, "try again");
  flush_ok(st);
}

static char *run_state(const char *path, const char *id) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT state FROM flow_run WHERE run_id = '%s'", id);
  return raw_query(path, sql);
}

#define CHECK_RUN_STATE(path, id, want)                                        \
  do {                                                                         \
    char *got_ = run_state((path), (id));                                      \
    CHECK_EQ_STR(got_, (want));                                                \
    free(got_);                                                                \
  } while (0)

static void test_crash_marking(void) {
  const char *path = tmp_path("crash.db");
  fl_store_owner self;
  fl_store_owner_self(&self);
  CHECK_EQ_INT(self.pid, getpid());
  CHECK(self.start_time > 0);
  CHECK(strlen(self.boot_id) == 36);

  /* A child that exited and was reaped: its pid is gone. */
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, NULL, 0);
  fl_store_owner gone = self;
  gone.pid = dead;
  gone.start_time = self.start_time + 5;
  CHECK_EQ_INT(fl_store_owner_of(dead, &(fl_store_owner){0}), -1);

  /* Our own pid, but recorded with another start time: a process that had
     this pid before us. */
  fl_store_owner reused = self;
  reused.start_time = self.start_time - 1;
  /* Another boot: whatever the pid is now, it is not the owner. */
  fl_store_owner rebooted = self;
  memcpy(rebooted.boot_id, "00000000-0000-0000-0000-000000000000", 37);
  /* Another host: cannot be judged from here. */
  fl_store_owner remote = self;
  snprintf(remote.host, sizeof remote.host, "elsewhere.example");
  remote.pid = 1;
  /* A live child that will die without being reaped (a zombie). */
  int pipefd[2];
  CHECK_EQ_INT(pipe(pipefd), 0);
  pid_t child = fork();
  if (child == 0) {
    char c;
    close(pipefd[1]);
    while (read(pipefd[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(pipefd[0]);
  fl_store_owner kid;
  CHECK_EQ_INT(fl_store_owner_of(child, &kid), 0);
  CHECK(kid.start_time > 0);

  fl_store *writer = open_store(path);
  crashed_run_setup(writer, "live", NULL);
  crashed_run_setup(writer, "dead", &gone);
  crashed_run_setup(writer, "reused", &reused);
  crashed_run_setup(writer, "rebooted", &rebooted);
  crashed_run_setup(writer, "remote", &remote);
  crashed_run_setup(writer, "child", &kid);
  /* The writer's handles stay open: the "live" run really is ours. */

  fl_store *st = open_store(path);
  size_t n = 99;
  CHECK_EQ_INT(fl_store_mark_crashed(st, T0 + 60, &n), FLOWLUA_OK);
  CHECK_EQ_INT(n, 3);
  CHECK_RUN_STATE(path, "live", "Running");
  CHECK_RUN_STATE(path, "dead", "Crashed");
  CHECK_RUN_STATE(path, "reused", "Crashed");
  CHECK_RUN_STATE(path, "rebooted", "Crashed");
  CHECK_RUN_STATE(path, "remote", "Running");
  CHECK_RUN_STATE(path, "child", "Running");

  /* The crashed run's tasks: the finished one is kept, the others are
     Crashed, each with one more state change; the run ends at its last
     sign of life and says why. */
  CHECK_QUERY(path,
              "SELECT group_concat(key || '=' || state, ' ') FROM (SELECT"
              " t.key, t.state FROM task_run t JOIN flow_run r ON r.id = t.run"
              " WHERE r.run_id = 'dead' ORDER BY t.n)",
              "done=Success busy=Crashed waiting=Crashed");
  CHECK_QUERY(path,
              "SELECT group_concat(state || '#' || seq, ' ') FROM (SELECT h.*"
              " FROM task_history h JOIN task_run t USING (run, n) JOIN"
              " flow_run r ON r.id = t.run WHERE r.run_id = 'dead' AND t.key ="
              " 'waiting' ORDER BY seq)",
              "Running#1 Retrying#2 Crashed#3");
  CHECK_QUERY(path,
              "SELECT (ended_at - started_at) || ' ' || task_counts FROM"
              " flow_run WHERE run_id = 'dead'",
              "3.0 {\"Crashed\":2,\"Success\":1}");
  char *err = raw_query(path, "SELECT error FROM flow_run WHERE run_id = 'dead'");
  char pid_text[32];
  snprintf(pid_text, sizeof pid_text, "pid %d", (int)dead);
  CHECK_CONTAINS(err, pid_text);
  CHECK_CONTAINS(err, "died before the run ended");
  free(err);

  /* The child dies and stays unreaped: a zombie never finishes a run. */
  kill(child, SIGKILL);
  for (int i = 0; i < 200; i++) {
    fl_store_owner probe;
    if (fl_store_owner_of(child, &probe) != 0) break;
    usleep(5000);
  }
  CHECK_EQ_INT(fl_store_mark_crashed(st, T0 + 61, &n), FLOWLUA_OK);
  CHECK_EQ_INT(n, 1);
  CHECK_RUN_STATE(path, "child", "Crashed");
  /* Marking again finds nothing new. */
  CHECK_EQ_INT(fl_store_mark_crashed(st, T0 + 62, &n), FLOWLUA_OK);
  CHECK_EQ_INT(n, 0);
  close(pipefd[1]);
  waitpid(child, NULL, 0);

  /* show reads the Crashed task state back. */
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl_store_load_run(st, "dead", NULL, &d), FLOWLUA_OK);
  if (d) {
    CHECK_EQ_INT(d->run.state, FLOWLUA_FLOW_CRASHED);
    CHECK_EQ_INT(d->run.by_state[FL_STORE_TASK_CRASHED], 2);
    const fl_store_task_row *t = fl_store_detail_find(d, "busy");
    CHECK(t && t->state == FL_STORE_TASK_CRASHED);
  }
  fl_store_run_detail_free(d);
  fl_store_close(st);
  fl_store_close(writer);
  check_integrity(path);
}

/* ---- scheduled fires ---------------------------------------------------------------- */

/* How many journal files lie beside path. */
static int count_journals(const char *path) {
  char pattern[600];
  snprintf(pattern, sizeof pattern, "%s.flowlua-", strrchr(path, '/') + 1);
  int n = 0;
  DIR *d = opendir(tmp_root);
  for (struct dirent *e; d && (e = readdir(d));)
    if (strncmp(e->d_name, pattern, strlen(pattern)) == 0) n++;
  if (d) closedir(d);
  return n;
}

/* A child records a run's changes without any flush, tells the parent,
   and waits; killed, it leaves them in its journal only. */
static pid_t journal_child(const char *path, int ready_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  fl_store *st = NULL;
  char err[256];
  if (fl_store_open(path, NULL, &st, err, sizeof err)) _exit(1);
  fl_store_run_info info = {.run_id = "journalled", .flow = "f",
                            .started_at = T0};
  fl_store_run *run;
  uint32_t a, b, c;
  if (fl_store_run_begin(st, &info, &run) ||
      fl_store_task_add(run, "a", "a", 0, &a) ||
      fl_store_task_add(run, "b", "b", 0, &b) ||
      fl_store_task_add(run, "c[1]", "c", 1, &c) ||
      fl_store_task_state(run, a, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL) ||
      fl_store_task_state(run, a, FLOWLUA_TASK_RETRYING, 1, T0 + 2, "boom") ||
      fl_store_task_state(run, a, FLOWLUA_TASK_RUNNING, 2, T0 + 3, NULL) ||
      fl_store_task_state(run, a, FLOWLUA_TASK_SUCCESS, 2, T0 + 4, NULL) ||
      fl_store_task_result(run, a, "{\"n\":1}", 7) ||
      fl_store_task_state(run, b, FLOWLUA_TASK_RUNNING, 1, T0 + 5, NULL) ||
      fl_store_task_state(run, b, FLOWLUA_TASK_SUCCESS, 1, T0 + 6, NULL) ||
      fl_store_task_result(run, b, NULL, 0) ||
      fl_store_task_state(run, c, FLOWLUA_TASK_RUNNING, 1, T0 + 7, NULL) ||
      fl_store_task_worker(run, a, 1, "elsewhere", 4242) ||
      fl_store_task_worker(run, a, 2, NULL, 4343) ||
      fl_store_task_worker(run, c, 1, NULL, 77))
    _exit(2);
  if (write(ready_fd, "x", 1) != 1) _exit(3);
  for (;;) pause(); /* until killed: no flush, no close */
}

/* Changes recorded but never flushed survive the death of the process in
   its journal, and the next mark_crashed writes them into the file — but
   not while the process lives. */
static void test_journal_replay(void) {
  const char *path = tmp_path("journal.db");
  int fds[2];
  CHECK_EQ_INT(pipe(fds), 0);
  pid_t child = journal_child(path, fds[1]);
  close(fds[1]);
  char c;
  CHECK_EQ_INT(read(fds[0], &c, 1), 1);
  close(fds[0]);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_run"), 0);
  CHECK_EQ_INT(count_journals(path), 1);

  /* The owner lives: its journal is its own. */
  fl_store *st = open_store(path);
  size_t n = 99;
  CHECK_EQ_INT(fl_store_mark_crashed(st, T0 + 60, &n), FLOWLUA_OK);
  CHECK_EQ_INT(n, 0);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_run"), 0);

  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  CHECK_EQ_INT(fl_store_mark_crashed(st, T0 + 60, &n), FLOWLUA_OK);
  CHECK_EQ_INT(n, 1);
  CHECK_QUERY(path,
              "SELECT group_concat(key || '=' || state || '/' || attempts ||"
              " '/' || coalesce(result, 'NULL') || '/' || result_kind, ' ')"
              " FROM (SELECT * FROM task_run ORDER BY n)",
              "a=Success/2/{\"n\":1}/1 b=Success/1/NULL/2 c[1]=Crashed/1/NULL/0");
  CHECK_QUERY(path,
              "SELECT group_concat(state || ':' || coalesce(error, ''), ' ')"
              " FROM (SELECT * FROM task_history WHERE n = 0 ORDER BY seq)",
              "Running: Retrying:boom Running: Success:");
  /* Where the attempts ran, though no batch held it before the death. */
  CHECK_QUERY(path,
              "SELECT group_concat(n || '/' || attempt || '@' ||"
              " replace(w.host, h.host, 'HERE') || ':' || w.pid, ' ') FROM"
              " (SELECT * FROM attempt_worker ORDER BY n, attempt) w,"
              " (SELECT owner_host AS host FROM flow_run LIMIT 1) h",
              "0/1@elsewhere:4242 0/2@HERE:4343 2/1@HERE:77");
  CHECK_EQ_INT(count_journals(path), 1); /* this handle's own */
  fl_store_close(st);
  CHECK_EQ_INT(count_journals(path), 0);
  check_integrity(path);
}

/* A child that ends a run while the parent holds the database's write
   lock: the end is journalled and handed to the writer thread, so
   fl_store_run_end returns at once (before, it waited for the lock, and
   with a 50 ms busy timeout failed, leaving the run Running). The child
   reports what the call returned, then waits to be killed. */
static pid_t end_child(const char *path, int ready_fd, int go_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  fl_store_options o;
  fl_store_options_init(&o);
  o.busy_timeout_ms = 50;
  fl_store *st = NULL;
  char err[256], c;
  if (fl_store_open(path, &o, &st, err, sizeof err)) _exit(1);
  fl_store_write_in_background(st); /* as a serving process does */
  fl_store_run_info info = {.run_id = "ended", .flow = "f", .started_at = T0};
  fl_store_run *run;
  uint32_t a;
  if (fl_store_run_begin(st, &info, &run) ||
      fl_store_task_add(run, "a", "a", 0, &a) ||
      fl_store_task_state(run, a, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL) ||
      fl_store_task_state(run, a, FLOWLUA_TASK_SUCCESS, 1, T0 + 2, NULL) ||
      fl_store_task_result(run, a, "7", 1))
    _exit(2);
  if (write(ready_fd, "b", 1) != 1 || read(go_fd, &c, 1) != 1) _exit(3);
  char rc = (char)fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 3, NULL);
  if (rc == FLOWLUA_OK)
    rc = (char)fl_store_fire_event(st, "f", "missed", T0 + 4, T0 + 5, 2,
                                   "2 fire times missed", T0 + 6);
  if (write(ready_fd, &rc, 1) != 1) _exit(4);
  for (;;) pause(); /* until killed: the end is in its journal only */
}

/* A run ends, and a fire event is recorded, while another process holds
   the write lock: neither call waits for it, and both survive the death
   of the process before its writer could commit them (the replay records
   them: the run Success, not Crashed). */
static void test_end_while_locked(void) {
  const char *path = tmp_path("end-locked.db");
  int up[2], down[2];
  CHECK_EQ_INT(pipe(up), 0);
  CHECK_EQ_INT(pipe(down), 0);
  pid_t child = end_child(path, up[1], down[0]);
  close(up[1]);
  close(down[0]);
  char c = 0;
  CHECK_EQ_INT(read(up[0], &c, 1), 1); /* its run has begun */
  sqlite3 *other = NULL;
  sqlite3_open(path, &other);
  CHECK_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  CHECK_EQ_INT(write(down[1], "g", 1), 1);
  CHECK_EQ_INT(read(up[0], &c, 1), 1);
  CHECK_EQ_INT(c, FLOWLUA_OK); /* ended without the lock */
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  close(up[0]);
  close(down[1]);
  CHECK_QUERY(path, "SELECT state FROM flow_run", "Running"); /* not yet */
  sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(other);

  fl_store *st = open_store(path);
  size_t n = 99;
  CHECK_EQ_INT(fl_store_mark_crashed(st, T0 + 60, &n), FLOWLUA_OK);
  CHECK_EQ_INT(n, 0);
  CHECK_QUERY(path,
              "SELECT state || ' ' || (ended_at - started_at) || ' ' ||"
              " coalesce(error, '-') || ' ' || task_counts FROM flow_run",
              "Success 3.0 - {\"Success\":1}");
  CHECK_QUERY(path, "SELECT state || ' ' || result FROM task_run",
              "Success 7");
  char want[100];
  snprintf(want, sizeof want, "f missed 2 2 fire times missed %ld", (long)child);
  CHECK_QUERY(path,
              "SELECT group_concat(flow || ' ' || outcome || ' ' || count || ' '"
              " || detail || ' ' || owner_pid) FROM fire_event",
              want);
  fl_store_close(st);
  CHECK_EQ_INT(count_journals(path), 0);
  check_integrity(path);
}

/* A child that records a big run, flushing as the engine does, and dies
   with its last changes in its journals only: the journals take turns
   (none grows with the run), and the replay of both, in order, leaves the
   file as if the child had flushed. */
enum { TURN_TASKS = 30000, TURN_UNFLUSHED = 10 };

static pid_t turning_child(const char *path, int ready_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  fl_store *st = NULL;
  char err[256];
  if (fl_store_open(path, NULL, &st, err, sizeof err)) _exit(1);
  static char names[TURN_TASKS][16];
  static const char *keys[TURN_TASKS];
  for (int i = 0; i < TURN_TASKS; i++) {
    snprintf(names[i], sizeof names[i], "t#%d", i + 1);
    keys[i] = names[i];
  }
  fl_store_run_info info = {.run_id = "turning", .flow = "f", .started_at = T0,
                            .keys = keys, .n_keys = TURN_TASKS};
  fl_store_run *run;
  uint32_t first;
  if (fl_store_run_begin(st, &info, &run) ||
      fl_store_task_add_many(run, keys, keys, TURN_TASKS, &first))
    _exit(2);
  int last = TURN_TASKS - TURN_UNFLUSHED;
  for (int i = 0; i < TURN_TASKS; i++) {
    uint32_t t = first + (uint32_t)i;
    if (fl_store_task_state(run, t, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL))
      _exit(3);
    if (i == 7 && (fl_store_task_state(run, t, FLOWLUA_TASK_RETRYING, 1, T0 + 2,
                                       "first try") ||
                   fl_store_task_state(run, t, FLOWLUA_TASK_RUNNING, 2, T0 + 3,
                                       NULL)))
      _exit(4);
    if (i >= last) continue; /* still running when it dies */
    if (fl_store_task_result(run, t, "[1,2]", 5) ||
        fl_store_task_state(run, t, FLOWLUA_TASK_SUCCESS, i == 7 ? 2 : 1,
                            T0 + 4, NULL))
      _exit(5);
    if (i % 2000 == 1999 && i < last - 1000 && fl_store_flush(st)) _exit(6);
  }
  if (write(ready_fd, "x", 1) != 1) _exit(7);
  for (;;) pause(); /* until killed */
}

static off_t file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static void test_journal_turns(void) {
  const char *path = tmp_path("turns.db");
  int fds[2];
  CHECK_EQ_INT(pipe(fds), 0);
  pid_t child = turning_child(path, fds[1]);
  close(fds[1]);
  char c;
  CHECK_EQ_INT(read(fds[0], &c, 1), 1);
  close(fds[0]);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status));
  /* Two journals, each far smaller than the run's 4 MB of changes. */
  CHECK_EQ_INT(count_journals(path), 2);
  off_t biggest = 0;
  DIR *d = opendir(tmp_root);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (strncmp(e->d_name, "turns.db.flowlua-", 17) != 0) continue;
    char p[700];
    snprintf(p, sizeof p, "%s/%s", tmp_root, e->d_name);
    if (file_size(p) > biggest) biggest = file_size(p);
  }
  if (d) closedir(d);
  CHECK(biggest > 0 && biggest <= (2 << 20) + 4096);

  fl_store *st = open_store(path);
  size_t n = 0;
  CHECK_EQ_INT(fl_store_mark_crashed(st, T0 + 60, &n), FLOWLUA_OK);
  CHECK_EQ_INT(n, 1);
  fl_store_close(st);
  CHECK_EQ_INT(count_journals(path), 0);
  CHECK_QUERY(path,
              "SELECT group_concat(state || '=' || n, ' ') FROM (SELECT state,"
              " count(*) AS n FROM task_run GROUP BY state ORDER BY state)",
              "Crashed=10 Success=29990");
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_run WHERE state ="
                             " 'Success' AND result = '[1,2]'"),
               TURN_TASKS - TURN_UNFLUSHED);
  CHECK_QUERY(path,
              "SELECT group_concat(state || attempt, ' ') FROM (SELECT * FROM"
              " task_history WHERE n = 7 ORDER BY seq)",
              "Running1 Retrying1 Running2 Success2");
  CHECK_EQ_INT(raw_int(path, "SELECT count(DISTINCT n) FROM task_run"), TURN_TASKS);
  /* No change applied twice: task 7's two changes between its first
     Running and its Success are the only history rows, and every other
     task run had exactly two changes. */
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_event"), 2);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_run WHERE state_seq <> 2"), 1);
  check_integrity(path);
}

static void test_claim_fire(void) {
  const char *path = tmp_path("fires.db");
  fl_store *a = open_store(path), *b = open_store(path);
  CHECK_EQ_INT(fl_store_claim_fire(a, "etl", T0, T0), 1);
  CHECK_EQ_INT(fl_store_claim_fire(b, "etl", T0, T0), 0);
  CHECK_EQ_INT(fl_store_claim_fire(a, "etl", T0, T0), 0);
  /* The same time within a millisecond is the same fire. */
  CHECK_EQ_INT(fl_store_claim_fire(b, "etl", T0 + 0.0001, T0), 0);
  CHECK_EQ_INT(fl_store_claim_fire(b, "etl", T0 + 60, T0), 1);
  CHECK_EQ_INT(fl_store_claim_fire(b, "other flow", T0, T0), 1);
  fl_store_close(a);
  fl_store_close(b);

  /* Two processes race for the same 150 fire times: each is claimed once. */
  enum { FIRES = 150, PROCS = 2 };
  pid_t kids[PROCS];
  for (int k = 0; k < PROCS; k++) {
    kids[k] = fork();
    if (kids[k] == 0) {
      fl_store *st = NULL;
      char err[512];
      if (fl_store_open(path, NULL, &st, err, sizeof err) != FLOWLUA_OK) _exit(255);
      int got = 0;
      for (int i = 0; i < FIRES; i++) {
        int rc = fl_store_claim_fire(st, "race", T0 + 60.0 * i, T0);
        if (rc < 0) {
          fprintf(stderr, "  child: %s\n", fl_store_errmsg(st));
          fl_store_close(st);
          _exit(255);
        }
        got += rc;
      }
      fl_store_close(st);
      _exit(got);
    }
  }
  int total = 0;
  for (int k = 0; k < PROCS; k++) {
    int status = 0;
    waitpid(kids[k], &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 255);
    total += WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  }
  CHECK_EQ_INT(total, FIRES);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM fire WHERE flow = 'race'"), FIRES);
  check_integrity(path);
}

/* A serving process (write_in_background) starts runs and claims fire
   times while another process holds the database's write lock: no call
   waits for it. A second process on the file sees the claims (the claims
   file decides them), and once the lock is gone the writer has recorded
   every run and claim. A damaged claims file starts afresh, and a claims
   file that is a symbolic link is never followed: claims go to the
   database instead. */
static void test_claims_while_locked(void) {
  const char *path = tmp_path("claims-locked.db");
  static const char *const keys[] = {"t"};
  fl_store *a = open_store(path), *b = open_store(path);
  fl_store_write_in_background(a);
  fl_store_write_in_background(b);
  /* The first run takes a block of ids, in a transaction of its own. */
  fl_store_run *r = begin(a, "first", "f", T0, keys, 1, NULL);
  CHECK_EQ_INT(fl_store_run_end(r, FLOWLUA_FLOW_SUCCESS, T0 + 1, NULL), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_flush(a), FLOWLUA_OK);

  sqlite3 *other = NULL;
  sqlite3_open(path, &other);
  CHECK_EQ_INT(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  double t0 = fl__store_mono_now();
  CHECK_EQ_INT(fl_store_claim_fire_within(a, "f", T0 + 60, T0, 200), 1);
  CHECK_EQ_INT(fl_store_claim_fire_within(b, "f", T0 + 60, T0, 200), 0);
  CHECK_EQ_INT(fl_store_claim_fire_within(b, "f", T0 + 120, T0, 200), 1);
  double last = 0;
  CHECK_EQ_INT(fl_store_last_fire(a, "f", &last), 1);
  CHECK(fabs(last - (T0 + 120)) < 0.001);
  r = begin(a, "while-locked", "f", T0 + 60, keys, 1, NULL);
  uint32_t t = add_task(r, "t", "t", 0);
  state(r, t, FLOWLUA_TASK_RUNNING, 1, T0 + 60, NULL);
  state(r, t, FLOWLUA_TASK_SUCCESS, 1, T0 + 61, NULL);
  CHECK_EQ_INT(fl_store_run_end(r, FLOWLUA_FLOW_SUCCESS, T0 + 61, NULL), FLOWLUA_OK);
  /* None of it waited for the lock (the busy timeout is 5 s). */
  CHECK(fl__store_mono_now() - t0 < 2.0);
  CHECK_QUERY(path, "SELECT count(*) FROM flow_run", "1"); /* not yet */
  sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(other);
  CHECK_EQ_INT(fl_store_flush(a), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_flush(b), FLOWLUA_OK);
  CHECK_QUERY(path,
              "SELECT group_concat(run_id || ' ' || state, ', ') FROM"
              " (SELECT run_id, state FROM flow_run ORDER BY started_at)",
              "first Success, while-locked Success");
  CHECK_QUERY(path, "SELECT t.state FROM task_run t JOIN flow_run r ON r.id = t.run"
                    " WHERE r.run_id = 'while-locked'", "Success");
  CHECK_QUERY(path, "SELECT group_concat(scheduled_ms - (SELECT min(scheduled_ms)"
                    " FROM fire), ' ') FROM (SELECT scheduled_ms FROM fire"
                    " ORDER BY scheduled_ms)", "0 60000");

  /* A damaged claims file: started afresh, with a notice. */
  char claims[600];
  snprintf(claims, sizeof claims, "%s.flowlua-fires", path);
  FILE *f = fopen(claims, "w");
  fputs("garbage", f);
  fclose(f);
  fl_store_notices_clear(b);
  CHECK_EQ_INT(fl_store_claim_fire(b, "f", T0 + 180, T0), 1);
  CHECK_EQ_INT(fl_store_claim_fire(a, "f", T0 + 180, T0), 0);
  CHECK_EQ_INT(fl_store_claim_fire(a, "f", T0 + 60, T0), 0); /* in the table */
  CHECK_CONTAINS(fl_store_notices(b), "was damaged (7 bytes, not a claims ring)");
  fl_store_close(a);
  fl_store_close(b);

  /* A symbolic link where the claims file goes: never followed. */
  char target[600];
  snprintf(target, sizeof target, "%s.elsewhere", path);
  unlink(claims);
  CHECK_EQ_INT(symlink(target, claims), 0);
  a = open_store(path);
  fl_store_write_in_background(a);
  CHECK_EQ_INT(fl_store_claim_fire(a, "f", T0 + 240, T0), 1);
  CHECK_EQ_INT(fl_store_claim_fire(a, "f", T0 + 240, T0), 0);
  CHECK_CONTAINS(fl_store_notices(a), "cannot open the fire claims file");
  fl_store_close(a);
  CHECK_EQ_INT(access(target, F_OK), -1);
  unlink(claims);
  check_integrity(path);
}

/* ---- list, show, print --------------------------------------------------------------- */

/* Three runs: etl Success, etl Failed, report still Running. */
static void history_setup(fl_store *st) {
  static const char *const etl_keys[] = {"extract", "load"};
  fl_store_run *r = begin(st, "aaaa1111-0000-4000-8000-000000000001", "etl", T0,
                          etl_keys, 2, NULL);
  uint32_t e = add_task(r, "extract", "extract", 0);
  uint32_t l = add_task(r, "load", "load", 0);
  state(r, e, FLOWLUA_TASK_RUNNING, 1, T0, NULL);
  state(r, e, FLOWLUA_TASK_SUCCESS, 1, T0 + 0.004, NULL);
  state(r, l, FLOWLUA_TASK_RUNNING, 1, T0 + 0.004, NULL);
  state(r, l, FLOWLUA_TASK_SUCCESS, 1, T0 + 1.5, NULL);
  CHECK_EQ_INT(fl_store_run_end(r, FLOWLUA_FLOW_SUCCESS, T0 + 1.5, NULL), FLOWLUA_OK);

  r = begin(st, "aaaa2222-0000-4000-8000-000000000002", "etl", T0 + 100,
            etl_keys, 2, NULL);
  e = add_task(r, "extract", "extract", 0);
  l = add_task(r, "load", "load", 0);
  state(r, e, FLOWLUA_TASK_RUNNING, 1, T0 + 100, NULL);
  state(r, e, FLOWLUA_TASK_SUCCESS, 1, T0 + 101, NULL);
  result(r, e, "{\"rows\":[1,2]}");
  for (int a = 1; a <= 3; a++) {
    state(r, l, FLOWLUA_TASK_RUNNING, a, T0 + 101 + a, NULL);
    state(r, l, a < 3 ? FLOWLUA_TASK_RETRYING : FLOWLUA_TASK_FAILED, a,
          T0 + 101.5 + a, "csv.write: disk full\nstack traceback:\n\tload.lua:3");
  }
  CHECK_EQ_INT(fl_store_run_end(r, FLOWLUA_FLOW_FAILED, T0 + 225.25,
                                "1 task failed: load"),
               FLOWLUA_OK);

  static const char *const report_keys[] = {"fetch"};
  r = begin(st, "bbbb3333-0000-4000-8000-000000000003", "report", T0 + 3600,
            report_keys, 1, NULL);
  uint32_t f = add_task(r, "fetch", "fetch", 0);
  state(r, f, FLOWLUA_TASK_RUNNING, 1, T0 + 3600, NULL);
  flush_ok(st);
}

static void test_list_runs(void) {
  const char *path = tmp_path("history.db");
  fl_store *st = open_store(path);
  history_setup(st);
  fl_store_run_list l;
  CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 3);
  if (l.n == 3) {
    CHECK_EQ_STR(l.rows[0].flow, "report");
    CHECK_EQ_INT(l.rows[0].state, FLOWLUA_FLOW_RUNNING);
    CHECK_EQ_INT(l.rows[0].by_state[FLOWLUA_TASK_RUNNING], 1);
    CHECK_EQ_STR(l.rows[1].run_id, "aaaa2222-0000-4000-8000-000000000002");
    CHECK_EQ_INT(l.rows[1].n_tasks, 2);
    CHECK_EQ_INT(l.rows[1].by_state[FLOWLUA_TASK_FAILED], 1);
    CHECK_EQ_STR(l.rows[1].error, "1 task failed: load");
    CHECK_EQ_STR(l.rows[1].params_json, "{\"n\":1}");
    CHECK_EQ_DBL(l.rows[2].ended_at - l.rows[2].started_at, 1.5, 1e-6);
  }
  fl_buf out = FL_BUF_INIT;
  fl_store_print_runs(&out, &l, 0);
  CHECK_EQ_STR(fl_buf_str(&out),
               "ID        FLOW    STATE    STARTED              DURATION  TASKS\n"
               "bbbb3333  report  Running  2025-11-28 17:10:01   running  1 Running\n"
               "aaaa2222  etl     Failed   2025-11-28 16:11:41     2m05s  1 Success, 1 Failed\n"
               "aaaa1111  etl     Success  2025-11-28 16:10:01      1.5s  2 Success\n");
  fl_buf_reset(&out);
  fl_store_print_runs(&out, &l, 1);
  CHECK(json_ok(fl_buf_str(&out)));
  CHECK_JSON(fl_buf_str(&out), "$[1].id", "aaaa2222-0000-4000-8000-000000000002");
  CHECK_JSON(fl_buf_str(&out), "$[1].state", "Failed");
  CHECK_JSON(fl_buf_str(&out), "$[1].started_at", "2025-11-28T16:11:41.000Z");
  CHECK_JSON(fl_buf_str(&out), "$[1].duration", "125.25");
  CHECK_JSON(fl_buf_str(&out), "$[1].tasks.Failed", "1");
  CHECK_JSON(fl_buf_str(&out), "$[1].task_count", "2");
  CHECK_JSON(fl_buf_str(&out), "$[0].ended_at", "NULL");
  CHECK_JSON(fl_buf_str(&out), "$[0].duration", "NULL");
  fl_store_run_list_free(&l);

  /* One flow; a limit. */
  CHECK_EQ_INT(fl_store_list_runs(st, "etl", 0, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 2);
  CHECK(l.n == 2 && strcmp(l.rows[0].run_id, "aaaa2222-0000-4000-8000-000000000002") == 0);
  fl_store_run_list_free(&l);
  CHECK_EQ_INT(fl_store_list_runs(st, NULL, 1, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 1);
  fl_store_run_list_free(&l);
  CHECK_EQ_INT(fl_store_list_runs(st, "nothing", 5, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 0);
  fl_buf_reset(&out);
  fl_store_print_runs(&out, &l, 1);
  CHECK_EQ_STR(fl_buf_str(&out), "[]\n");
  fl_store_run_list_free(&l);
  fl_buf_free(&out);
  fl_store_close(st);
  check_integrity(path);
}

static void test_show_run(void) {
  const char *path = tmp_path("history.db"); /* written by test_list_runs */
  fl_store *st = open_store(path);
  fl_store_run_detail *d = NULL;

  /* "last", "last" of a flow, a prefix, an exact id. */
  CHECK_EQ_INT(fl_store_load_run(st, "last", NULL, &d), FLOWLUA_OK);
  CHECK(d && strcmp(d->run.run_id, "bbbb3333-0000-4000-8000-000000000003") == 0);
  fl_store_run_detail_free(d);
  CHECK_EQ_INT(fl_store_load_run(st, "last", "etl", &d), FLOWLUA_OK);
  CHECK(d && strcmp(d->run.run_id, "aaaa2222-0000-4000-8000-000000000002") == 0);
  fl_store_run_detail_free(d);
  CHECK_EQ_INT(fl_store_load_run(st, "aaaa1", NULL, &d), FLOWLUA_OK);
  CHECK(d && strcmp(d->run.run_id, "aaaa1111-0000-4000-8000-000000000001") == 0);
  fl_store_run_detail_free(d);

  /* Ambiguous, unknown, and "last" of a flow without runs. */
  d = (fl_store_run_detail *)1;
  CHECK_EQ_INT(fl_store_load_run(st, "aaaa", NULL, &d), FLOWLUA_EINVAL);
  CHECK(d == NULL);
  CHECK_CONTAINS(fl_store_errmsg(st), "run id 'aaaa' is ambiguous: it starts 2 ids");
  CHECK_CONTAINS(fl_store_errmsg(st), "aaaa1111-0000-4000-8000-000000000001");
  CHECK_EQ_INT(fl_store_load_run(st, "zzzz", NULL, &d), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "no run has an id starting with 'zzzz'");
  CHECK_EQ_INT(fl_store_load_run(st, "bbbb", "etl", &d), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "no run of flow 'etl' has an id starting with 'bbbb'");
  CHECK_EQ_INT(fl_store_load_run(st, "last", "nothing", &d), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "no run of flow 'nothing' is recorded");

  CHECK_EQ_INT(fl_store_load_run(st, "aaaa2222-0000-4000-8000-000000000002", NULL, &d),
               FLOWLUA_OK);
  if (!d) {
    fl_store_close(st);
    return;
  }
  CHECK_EQ_INT(d->n_tasks, 2);
  CHECK_EQ_INT(d->n_graph_keys, 2);
  CHECK_EQ_STR(d->n_graph_keys == 2 ? d->graph_keys[1] : NULL, "load");
  const fl_store_task_row *t = fl_store_detail_find(d, "load");
  CHECK(t != NULL);
  if (t) {
    CHECK_EQ_INT(t->state, FLOWLUA_TASK_FAILED);
    CHECK_EQ_INT(t->attempts, 3);
    CHECK_EQ_DBL(t->ended_at - t->started_at, 2.5, 1e-6);
    CHECK_CONTAINS(t->error, "disk full");
    CHECK(!fl_store_task_reusable(t));
  }
  t = fl_store_detail_find(d, "extract");
  CHECK(t && fl_store_task_reusable(t));
  CHECK_EQ_STR(t ? t->result : NULL, "{\"rows\":[1,2]}");
  CHECK(fl_store_detail_find(d, "nope") == NULL);

  fl_buf out = FL_BUF_INIT;
  fl_store_print_run(&out, d, NULL, 0);
  CHECK_EQ_STR(fl_buf_str(&out),
               "Run       aaaa2222-0000-4000-8000-000000000002\n"
               "Flow      etl\n"
               "Script    flows/x.lua\n"
               "State     Failed\n"
               "Started   2025-11-28 16:11:41\n"
               "Ended     2025-11-28 16:13:46 (took 2m05s)\n"
               "Params    {\"n\":1}\n"
               "Error     1 task failed: load\n"
               "Tasks     1 Success, 1 Failed\n"
               "\n"
               "TASK     STATE    ATTEMPTS  DURATION  ERROR\n"
               "extract  Success         1      1.0s\n"
               "load     Failed          3      2.5s  csv.write: disk full\n");
  fl_buf_reset(&out);
  fl_store_print_run(&out, d, NULL, 1);
  const char *j = fl_buf_str(&out);
  CHECK(json_ok(j));
  CHECK_JSON(j, "$.id", "aaaa2222-0000-4000-8000-000000000002");
  CHECK_JSON(j, "$.params.n", "1");
  CHECK_JSON(j, "$.tasks[1].key", "load");
  CHECK_JSON(j, "$.tasks[1].attempts", "3");
  CHECK_JSON(j, "$.tasks[1].duration", "2.5");
  CHECK_JSON(j, "$.tasks[1].error",
             "csv.write: disk full\nstack traceback:\n\tload.lua:3");
  CHECK_JSON(j, "$.tasks[0].resumable", "1");
  CHECK_JSON(j, "$.task_counts.Success", "1");
  fl_buf_free(&out);
  fl_store_run_detail_free(d);
  fl_store_close(st);
  check_integrity(path);
}

/* Where the attempts of worker tasks ran: recorded per attempt, read back
   with the task runs (the latest attempt's) and with the attempts, and
   printed by `show` in a WORKER column that only runs with a worker task
   get (issue 17). */
static void test_attempt_workers(void) {
  const char *path = tmp_path("workers.db");
  fl_store *st = open_store(path);
  fl_store_run_info info = {.run_id = "cccc0000-0000-4000-8000-000000000001",
                            .flow = "w", .started_at = T0};
  fl_store_run *run = NULL;
  uint32_t a, b;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &run), FLOWLUA_OK);
  if (!run) {
    fl_store_close(st);
    return;
  }
  CHECK_EQ_INT(fl_store_task_add(run, "a", "a", 0, &a), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_add(run, "b", "b", 0, &b), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_state(run, a, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL), 0);
  CHECK_EQ_INT(fl_store_task_worker(run, a, 1, "other-host", 501), 0);
  CHECK_EQ_INT(fl_store_task_state(run, a, FLOWLUA_TASK_RETRYING, 1, T0 + 2,
                                   "worker 501 died of SIGSEGV"), 0);
  CHECK_EQ_INT(fl_store_task_state(run, a, FLOWLUA_TASK_RUNNING, 2, T0 + 3, NULL), 0);
  CHECK_EQ_INT(fl_store_task_worker(run, a, 2, NULL, 502), 0);
  CHECK_EQ_INT(fl_store_task_state(run, a, FLOWLUA_TASK_SUCCESS, 2, T0 + 4, NULL), 0);
  CHECK_EQ_INT(fl_store_task_state(run, b, FLOWLUA_TASK_RUNNING, 1, T0 + 4, NULL), 0);
  CHECK_EQ_INT(fl_store_task_state(run, b, FLOWLUA_TASK_SUCCESS, 1, T0 + 5, NULL), 0);
  /* Refused, naming what is wrong: no attempt 0, no pid 0, no task 9. */
  CHECK_EQ_INT(fl_store_task_worker(run, a, 0, NULL, 503), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "no worker attempt 0");
  CHECK_EQ_INT(fl_store_task_worker(run, a, 1, NULL, 0), FLOWLUA_EINVAL);
  CHECK_EQ_INT(fl_store_task_worker(run, 9, 1, NULL, 1), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "no task run number 9");
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 6, NULL), 0);
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK);

  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl_store_load_run(st, "cccc", NULL, &d), FLOWLUA_OK);
  if (!d) {
    fl_store_close(st);
    return;
  }
  const fl_store_task_row *ta = fl_store_detail_find(d, "a");
  const fl_store_task_row *tb = fl_store_detail_find(d, "b");
  CHECK(ta && ta->worker_pid == 502 && ta->worker_host &&
        strcmp(ta->worker_host, d->run.owner_host) == 0);
  CHECK(tb && tb->worker_pid == 0 && tb->worker_host == NULL);
  fl_store_attempt_list at;
  CHECK_EQ_INT(fl_store_load_attempts(st, d, &at), FLOWLUA_OK);
  CHECK_EQ_INT(at.n, 3);
  if (at.n == 3) {
    CHECK_EQ_INT(at.items[0].worker_pid, 501);
    CHECK_EQ_STR(at.items[0].worker_host, "other-host");
    CHECK_EQ_INT(at.items[0].state, FLOWLUA_TASK_RETRYING);
    CHECK_EQ_INT(at.items[1].worker_pid, 502);
    CHECK_EQ_INT(at.items[2].worker_pid, 0);
    CHECK(at.items[2].worker_host == NULL);
  }
  fl_store_attempt_list_free(&at);

  fl_buf out = FL_BUF_INIT;
  fl_store_print_run(&out, d, NULL, 0);
  CHECK_CONTAINS(fl_buf_str(&out),
                 "TASK  STATE    ATTEMPTS  DURATION  WORKER  ERROR\n"
                 "a     Success         2      3.0s     502\n"
                 "b     Success         1      1.0s\n");
  fl_buf_reset(&out);
  fl_store_print_run(&out, d, NULL, 1);
  const char *j = fl_buf_str(&out);
  CHECK(json_ok(j));
  CHECK_JSON(j, "$.tasks[0].worker.pid", "502");
  CHECK_JSON(j, "$.tasks[1].worker", "NULL");
  /* Another host is named with the pid. */
  fl_buf_reset(&out);
  fl_store_add_worker(&out, "other-host", 501, d->run.owner_host, 1);
  CHECK_EQ_STR(fl_buf_str(&out), "other-host:501");
  fl_buf_free(&out);
  fl_store_run_detail_free(d);
  fl_store_close(st);
  check_integrity(path);
}

/* ---- pruning old runs ------------------------------------------------------------------------ */

/* One run of n task runs, ended (state) at `ended`; every third task run
   retried (a task_event row), every fifth on a worker, all flushed in
   batches so that most are packed and some are rows. */
static void pruned_run(fl_store *st, const char *id, const char *flow,
                       double ended, int state_of_run, int n) {
  const char *keys[] = {"t"};
  fl_store_run *run = begin(st, id, flow, ended - 10, keys, 1, NULL);
  if (!run) return;
  char key[32];
  for (int i = 0; i < n; i++) {
    snprintf(key, sizeof key, "t[%d]", i + 1);
    uint32_t t = add_task(run, key, "t", i + 1);
    state(run, t, FLOWLUA_TASK_RUNNING, 1, ended - 5, NULL);
    if (i % 3 == 0) {
      state(run, t, FLOWLUA_TASK_RETRYING, 1, ended - 4, "boom");
      state(run, t, FLOWLUA_TASK_RUNNING, 2, ended - 3, NULL);
    }
    if (i % 5 == 0)
      CHECK_EQ_INT(fl_store_task_worker(run, t, i % 3 == 0 ? 2 : 1, NULL, 100 + i), 0);
    state(run, t, FLOWLUA_TASK_SUCCESS, i % 3 == 0 ? 2 : 1, ended - 1, NULL);
    result(run, t, "1");
    if (i % 700 == 699) flush_ok(st);
  }
  CHECK_EQ_INT(fl_store_run_end(run, state_of_run, ended, NULL), FLOWLUA_OK);
}

/* Rows left in the table of the runs whose flow_run row is gone. */
static long long orphans(const char *path, const char *table) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM %s WHERE run NOT IN (SELECT id FROM flow_run)",
           table);
  return raw_int(path, sql);
}

/* Old runs go with everything they hold, a step at a time; new, Running
   and (with keep_failed) failed runs stay, and another flow's with `flow`;
   fire events and claims older than the cut go, but each flow's newest
   claim; the file gives its space back (incremental vacuum). */
static void test_prune(void) {
  const char *path = tmp_path("prune.db");
  fl_store *st = open_store(path);
  double now = T0 + 100 * 86400.0;
  pruned_run(st, "old-big", "etl", T0, FLOWLUA_FLOW_SUCCESS, 5000);
  pruned_run(st, "old-failed", "etl", T0 + 1, FLOWLUA_FLOW_FAILED, 30);
  pruned_run(st, "old-other", "report", T0 + 2, FLOWLUA_FLOW_SUCCESS, 30);
  pruned_run(st, "new", "etl", now - 3600, FLOWLUA_FLOW_SUCCESS, 30);
  const char *keys[] = {"a"};
  fl_store_run *running = begin(st, "old-running", "etl", T0, keys, 1, NULL);
  flush_ok(st);
  CHECK_EQ_INT(fl_store_fire_event(st, "etl", "missed", T0, T0, 1, "old", T0),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_fire_event(st, "etl", "missed", now - 60, now - 60, 1,
                                   "new", now - 60), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_claim_fire(st, "etl", T0, T0), 1);
  CHECK_EQ_INT(fl_store_claim_fire(st, "etl", T0 + 60, T0 + 60), 1);
  CHECK_EQ_INT(fl_store_claim_fire(st, "report", T0, T0), 1);
  flush_ok(st);
  long long pages_before = raw_int(path, "PRAGMA page_count");
  CHECK_EQ_INT(raw_int(path, "PRAGMA auto_vacuum"), 2); /* a new file's */

  /* Failed runs kept, one flow only: old-big goes, over many small steps
     (the budget starts at 4,096 rows), whole runs at every step. */
  fl_store_prune_opts o = {.older_than = 30 * 86400.0, .keep_failed = 1,
                           .flow = "etl"};
  fl_store_prune *p = NULL;
  CHECK_EQ_INT(fl_store_prune_begin(st, &o, now, &p), FLOWLUA_OK);
  int rc, steps = 0;
  while ((rc = fl_store_prune_step(p)) == 1) {
    steps++;
    /* Between steps no run is half gone but the one being deleted, and
       nothing is left of a run whose row is gone. */
    CHECK_EQ_INT(orphans(path, "task_row"), 0);
    CHECK_EQ_INT(orphans(path, "task_pack"), 0);
  }
  CHECK_EQ_INT(rc, 0);
  CHECK(steps >= 2);
  const fl_store_prune_result *r = fl_store_prune_done(p);
  CHECK_EQ_INT(r->runs, 1);
  CHECK_EQ_INT(r->task_runs, 5000);
  CHECK_EQ_INT(r->fire_events, 1);
  CHECK_EQ_INT(r->fire_claims, 1); /* etl's newest claim stays */
  CHECK(r->longest_step > 0);
  fl_store_prune_free(p);
  CHECK_QUERY(path, "SELECT group_concat(run_id, ' ') FROM (SELECT run_id FROM"
                    " flow_run ORDER BY run_id)",
              "new old-failed old-other old-running");
  for (const char *t = "task_row task_pack task_event attempt_worker run_graph"; *t;) {
    char table[32];
    size_t len = strcspn(t, " ");
    snprintf(table, sizeof table, "%.*s", (int)len, t);
    CHECK_EQ_INT(orphans(path, table), 0);
    t += len + (t[len] == ' ');
  }
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM fire WHERE flow = 'etl'"), 1);
  CHECK(raw_int(path, "PRAGMA page_count") < pages_before); /* given back */
  CHECK_EQ_INT(raw_int(path, "PRAGMA freelist_count"), 0);
  double last = 0;
  CHECK_EQ_INT(fl_store_last_fire(st, "etl", &last), 1);
  CHECK_EQ_DBL(last, T0 + 60, 1e-6);

  /* Everything old, every flow: the Running run stays, and the new one. */
  o = (fl_store_prune_opts){.older_than = 30 * 86400.0};
  CHECK_EQ_INT(fl_store_prune_begin(st, &o, now, &p), FLOWLUA_OK);
  while ((rc = fl_store_prune_step(p)) == 1) {
  }
  CHECK_EQ_INT(rc, 0);
  CHECK_EQ_INT(fl_store_prune_done(p)->runs, 2);
  fl_store_prune_free(p);
  CHECK_QUERY(path, "SELECT group_concat(run_id, ' ') FROM (SELECT run_id FROM"
                    " flow_run ORDER BY run_id)",
              "new old-running");
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM task_run WHERE run ="
                             " (SELECT id FROM flow_run WHERE run_id = 'new')"), 30);
  o.older_than = -1;
  CHECK_EQ_INT(fl_store_prune_begin(st, &o, now, &p), FLOWLUA_EINVAL);
  CHECK(p == NULL);
  if (running) fl_store_run_end(running, FLOWLUA_FLOW_SUCCESS, now, NULL);
  fl_store_close(st);
  check_integrity(path);
}

/* ---- the graph's edges and the count of task runs ----------------------------------------- */

/* The edges are stored with the run and read back, so that a report needs
   no script; a run without them (recorded by an older flowlua) or with
   damaged ones says so (issue 16, item 8). A map with elements is counted
   by its elements, not as a task run of its own, while the run goes and
   after it ended (item 22). */
static void test_edges_and_counts(void) {
  const char *path = tmp_path("edges.db");
  fl_store *st = open_store(path);
  static const char *const keys[] = {"seed", "sq", "lone"};
  static const fl_store_edge edges[] = {{0, 1, 0}, {1, 2, 1}};
  static const fl_store_edge bad[] = {{0, 3, 0}};
  fl_store_run_info info = {.run_id = "r-edges", .flow = "f", .started_at = T0,
                            .keys = keys, .n_keys = 3, .edges = bad,
                            .n_edges = 1};
  fl_store_run *run = NULL;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &run), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "edge 1 joins task 0 to task 3, but the "
                                      "graph has 3 tasks");
  info.edges = edges;
  info.n_edges = 2;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &run), FLOWLUA_OK);
  if (!run) return;
  uint32_t seed = add_task(run, "seed", "seed", 0);
  uint32_t sq = add_task(run, "sq", "sq", 0);
  uint32_t lone = add_task(run, "lone", "lone", 0);
  uint32_t el[3];
  static const char *const el_keys[] = {"sq[1]", "sq[2]", "sq[3]"};
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(fl_store_task_add_element(run, el_keys[i], "sq", i + 1, &el[i]),
                 FLOWLUA_OK);
  state(run, seed, FLOWLUA_TASK_SUCCESS, 1, T0 + 1, NULL);
  state(run, sq, FLOWLUA_TASK_FAILED, 1, T0 + 2, "1 element failed");
  state(run, el[0], FLOWLUA_TASK_SUCCESS, 1, T0 + 2, NULL);
  state(run, el[1], FLOWLUA_TASK_FAILED, 1, T0 + 2, "odd");
  state(run, el[2], FLOWLUA_TASK_SUCCESS, 1, T0 + 2, NULL);
  state(run, lone, FLOWLUA_TASK_FAILED, 1, T0 + 2, "alone");
  flush_ok(st);

  /* Still running: counted from the rows. */
  fl_store_run_list list = {0};
  CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &list), FLOWLUA_OK);
  CHECK(list.n == 1);
  if (list.n == 1) {
    CHECK_EQ_INT((int)list.rows[0].n_tasks, 5);
    CHECK_EQ_INT((int)list.rows[0].by_state[FLOWLUA_TASK_FAILED], 2);
    CHECK_EQ_INT((int)list.rows[0].by_state[FLOWLUA_TASK_SUCCESS], 3);
  }
  fl_store_run_list_free(&list);
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl_store_load_run(st, "r-edges", NULL, &d), FLOWLUA_OK);
  if (d) {
    CHECK_EQ_INT((int)d->run.n_tasks, 5);
    CHECK_EQ_INT((int)d->run.by_state[FLOWLUA_TASK_FAILED], 2);
    CHECK_EQ_INT((int)d->run.by_state[FLOWLUA_TASK_SUCCESS], 3);
  }
  fl_store_run_detail_free(d);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_FAILED, T0 + 3, NULL),
               FLOWLUA_OK);
  flush_ok(st); /* the end is written by the writer thread */
  CHECK_QUERY(path, "SELECT task_counts FROM flow_run",
              "{\"Failed\":2,\"Success\":3}");

  CHECK_EQ_INT(fl_store_load_run(st, "r-edges", NULL, &d), FLOWLUA_OK);
  if (d) {
    CHECK_EQ_INT((int)d->n_tasks, 6); /* every row, the map's own too */
    CHECK_EQ_INT((int)d->run.n_tasks, 5);
    CHECK_EQ_INT((int)d->run.by_state[FLOWLUA_TASK_FAILED], 2);
    CHECK_EQ_INT(d->edges_state, FL_STORE_EDGES_RECORDED);
    CHECK_EQ_INT((int)d->n_edges, 2);
    if (d->n_edges == 2) {
      CHECK(d->edges[0].from == 0 && d->edges[0].to == 1 && !d->edges[0].ordering);
      CHECK(d->edges[1].from == 1 && d->edges[1].to == 2 && d->edges[1].ordering);
    }
  }
  fl_store_run_detail_free(d);

  /* The engine's counts, when given, are what is recorded. */
  info.run_id = "r-counted";
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &run), FLOWLUA_OK);
  if (!run) return;
  size_t by_state[FL_STORE_TASK_STATES] = {0};
  by_state[FLOWLUA_TASK_SKIPPED] = 4;
  fl_store_run_counts(run, by_state, FL_STORE_TASK_STATES);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 4, NULL),
               FLOWLUA_OK);
  flush_ok(st); /* the end is written by the writer thread */
  CHECK_QUERY(path, "SELECT task_counts FROM flow_run WHERE run_id = 'r-counted'",
              "{\"Skipped\":4}");

  /* Damaged edges (the file may come from elsewhere), and none at all. */
  raw_exec(path, "UPDATE run_graph SET edges = '[[0,1,0],[2,7,1]]'"
                 " WHERE run = (SELECT id FROM flow_run WHERE run_id = 'r-edges')");
  CHECK_EQ_INT(fl_store_load_run(st, "r-edges", NULL, &d), FLOWLUA_OK);
  CHECK(d && d->edges_state == FL_STORE_EDGES_DAMAGED && d->n_edges == 0);
  fl_store_run_detail_free(d);
  raw_exec(path, "UPDATE run_graph SET edges = 'not json'");
  CHECK_EQ_INT(fl_store_load_run(st, "r-edges", NULL, &d), FLOWLUA_OK);
  CHECK(d && d->edges_state == FL_STORE_EDGES_DAMAGED && d->n_edges == 0);
  fl_store_run_detail_free(d);
  raw_exec(path, "UPDATE run_graph SET edges = NULL");
  CHECK_EQ_INT(fl_store_load_run(st, "r-edges", NULL, &d), FLOWLUA_OK);
  CHECK(d && d->edges_state == FL_STORE_EDGES_NONE && d->n_edges == 0);
  fl_store_run_detail_free(d);
  fl_store_close(st);
  check_integrity(path);
}

/* A resume claims the run it resumes (issue 16, item 5): while a run of
   its chain of resumes is Running with a live owner, recording another
   resume of any run of that chain is refused; an owner that died holds no
   claim. */
static void test_resume_claim(void) {
  const char *path = tmp_path("claim.db");
  fl_store *st = open_store(path);
  static const char *const keys[] = {"a"};
  fl_store_run *first = begin(st, "r1", "f", T0, keys, 1, NULL);
  if (!first) return;
  CHECK_EQ_INT(fl_store_run_end(first, FLOWLUA_FLOW_FAILED, T0 + 1, NULL),
               FLOWLUA_OK);
  fl_store_run_info info = {.run_id = "r2", .flow = "f", .started_at = T0 + 2,
                            .keys = keys, .n_keys = 1, .resumed_from = "r1"};
  fl_store_run *r2 = NULL, *other = NULL;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &r2), FLOWLUA_OK);
  if (!r2) return;
  char want[200];
  snprintf(want, sizeof want,
           "run r1 is already being resumed by pid %ld on this host (run r2)",
           (long)getpid());
  info.run_id = "r3";
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &other), FLOWLUA_ESTATE);
  CHECK_CONTAINS(fl_store_errmsg(st), want);
  info.resumed_from = "r2"; /* the same chain, from its other end */
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &other), FLOWLUA_ESTATE);
  CHECK_QUERY(path, "SELECT count(*) FROM flow_run", "2");
  CHECK_EQ_INT(fl_store_run_end(r2, FLOWLUA_FLOW_FAILED, T0 + 3, NULL),
               FLOWLUA_OK);
  /* Once it ended, the run may be resumed again. */
  info.resumed_from = "r1";
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &other), FLOWLUA_OK);
  if (other)
    CHECK_EQ_INT(fl_store_run_end(other, FLOWLUA_FLOW_FAILED, T0 + 4, NULL),
                 FLOWLUA_OK);

  /* A resume whose process died holds no claim. */
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, NULL, 0);
  fl_store_owner gone;
  fl_store_owner_self(&gone);
  gone.pid = dead;
  info.run_id = "r4";
  info.owner = &gone;
  fl_store_run *r4 = NULL, *r5 = NULL;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &r4), FLOWLUA_OK);
  info.run_id = "r5";
  info.owner = NULL;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &r5), FLOWLUA_OK);
  if (r5)
    CHECK_EQ_INT(fl_store_run_end(r5, FLOWLUA_FLOW_SUCCESS, T0 + 5, NULL),
                 FLOWLUA_OK);
  fl_store_close(st);
  check_integrity(path);
}

/* ---- resume ----------------------------------------------------------------------------- */

static void test_resume_support(void) {
  const char *path = tmp_path("resume.db");
  fl_store *st = open_store(path);
  static const char *const keys[] = {"a", "b", "c", "m"};
  fl_store_run_info info = {.run_id = "r-failed", .flow = "pipeline",
                            .params_json = "{\"day\":\"2025-11-28\"}",
                            .started_at = T0, .keys = keys, .n_keys = 4};
  fl_store_run *run = NULL;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &run), FLOWLUA_OK);
  if (!run) return;
  uint32_t a = add_task(run, "a", "a", 0), b = add_task(run, "b", "b", 0);
  uint32_t c = add_task(run, "c", "c", 0), m = add_task(run, "m", "m", 0);
  uint32_t m1 = add_task(run, "m[1]", "m", 1), m2 = add_task(run, "m[2]", "m", 2);
  uint32_t n = add_task(run, "n", "n", 0);
  state(run, n, FLOWLUA_TASK_SUCCESS, 1, T0 + 1, NULL);
  state(run, a, FLOWLUA_TASK_SUCCESS, 1, T0 + 1, NULL);
  result(run, a, "{\"x\":1}");
  state(run, b, FLOWLUA_TASK_SUCCESS, 1, T0 + 1, NULL);
  result(run, b, NULL); /* a function, say: not resumable */
  state(run, c, FLOWLUA_TASK_FAILED, 1, T0 + 2, "nope");
  state(run, m, FLOWLUA_TASK_FAILED, 1, T0 + 2, "1 element failed");
  state(run, m1, FLOWLUA_TASK_SUCCESS, 1, T0 + 2, NULL);
  result(run, m1, "10");
  state(run, m2, FLOWLUA_TASK_FAILED, 1, T0 + 2, "bad element");
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_FAILED, T0 + 3, NULL), FLOWLUA_OK);

  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl_store_load_run(st, "last", "pipeline", &d), FLOWLUA_OK);
  if (!d) {
    fl_store_close(st);
    return;
  }
  CHECK_EQ_STR(d->run.params_json, "{\"day\":\"2025-11-28\"}");
  CHECK(fl_store_task_reusable(fl_store_detail_find(d, "a")));
  CHECK(!fl_store_task_reusable(fl_store_detail_find(d, "b")));
  CHECK(!fl_store_task_reusable(fl_store_detail_find(d, "c")));
  CHECK(fl_store_task_reusable(fl_store_detail_find(d, "m[1]")));
  CHECK(!fl_store_task_reusable(fl_store_detail_find(d, "m[2]")));
  CHECK_EQ_INT(fl_store_detail_find(d, "m[2]")->map_index, 2);
  /* Success with no result recorded: the task returned nil. */
  CHECK(fl_store_task_reusable(fl_store_detail_find(d, "n")));
  CHECK_EQ_INT(fl_store_detail_find(d, "n")->result_kind, FL_STORE_RESULT_NONE);
  CHECK_EQ_INT(fl_store_detail_find(d, "b")->result_kind, FL_STORE_RESULT_OPAQUE);

  /* The same graph (in another order): resumable. */
  fl_buf msg = FL_BUF_INIT;
  static const char *const same[] = {"m", "c", "b", "a"};
  CHECK_EQ_INT(fl_store_check_resume(d, "pipeline", same, 4, 0, &msg), FLOWLUA_OK);
  CHECK_EQ_STR(fl_buf_str(&msg), "");
  /* A task renamed and one added: refused, saying exactly what differs. */
  static const char *const changed[] = {"a", "b", "c2", "m", "z"};
  CHECK_EQ_INT(fl_store_check_resume(d, "pipeline", changed, 5, 0, &msg),
               FLOWLUA_EBUILD);
  CHECK_EQ_STR(fl_buf_str(&msg),
               "the graph of flow 'pipeline' no longer matches run r-failed: "
               "2 tasks added: 'c2', 'z'; 1 task removed: 'c'");
  /* ...unless forced, which still says it. */
  fl_buf_reset(&msg);
  CHECK_EQ_INT(fl_store_check_resume(d, "pipeline", changed, 5, 1, &msg), FLOWLUA_OK);
  CHECK_CONTAINS(fl_buf_str(&msg), "1 task removed: 'c'");
  /* Another flow's run. */
  fl_buf_reset(&msg);
  CHECK_EQ_INT(fl_store_check_resume(d, "other", same, 4, 0, &msg), FLOWLUA_ESTATE);
  CHECK_EQ_STR(fl_buf_str(&msg), "run r-failed is a run of flow 'pipeline', not of 'other'");
  fl_store_run_detail_free(d);

  /* A run that succeeded, and one still running, cannot be resumed. */
  run = begin(st, "r-ok", "pipeline", T0 + 10, keys, 4, NULL);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 11, NULL), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_load_run(st, "r-ok", NULL, &d), FLOWLUA_OK);
  fl_buf_reset(&msg);
  CHECK_EQ_INT(d ? fl_store_check_resume(d, "pipeline", keys, 4, 1, &msg) : -99,
               FLOWLUA_ESTATE);
  CHECK_CONTAINS(fl_buf_str(&msg), "ended Success; only a Failed, Cancelled or Crashed run");
  fl_store_run_detail_free(d);
  begin(st, "r-going", "pipeline", T0 + 20, keys, 4, NULL);
  CHECK_EQ_INT(fl_store_load_run(st, "r-going", NULL, &d), FLOWLUA_OK);
  fl_buf_reset(&msg);
  CHECK_EQ_INT(d ? fl_store_check_resume(d, "pipeline", keys, 4, 0, &msg) : -99,
               FLOWLUA_ESTATE);
  CHECK_CONTAINS(fl_buf_str(&msg), "is still running");
  fl_store_run_detail_free(d);
  /* A resumed run records where it came from. */
  info = (fl_store_run_info){.run_id = "r-resumed", .flow = "pipeline",
                             .started_at = T0 + 30, .resumed_from = "r-failed"};
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &run), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_load_run(st, "r-resumed", NULL, &d), FLOWLUA_OK);
  CHECK_EQ_STR(d ? d->run.resumed_from : NULL, "r-failed");
  fl_store_run_detail_free(d);
  fl_buf_free(&msg);
  fl_store_close(st);
  check_integrity(path);
}

/* ---- cache --------------------------------------------------------------------------------- */

/* Flow definitions replace by name; a cancel is asked once, for a Running
   run only, and read back by whoever runs it; prune takes it away. */
static void test_flows_and_cancels(void) {
  const char *path = tmp_path("flows.db");
  fl_store *st = open_store(path);
  fl_store_flow_list l;
  CHECK_EQ_INT(fl_store_list_flows(st, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 0);
  fl_store_flow_list_free(&l);
  fl_store_flow_def defs[2] = {
      {"nightly", "/srv/a.lua", "h1", "ab", "{\"n\":1}",
       "{\"kind\":\"interval\",\"every\":60}", T0},
      {"adhoc", "/srv/a.lua", "h1", "ab", "{}", NULL, T0}};
  CHECK_EQ_INT(fl_store_put_flows(st, defs, 2), FLOWLUA_OK);
  defs[0].params_json = "{\"n\":2}";
  defs[0].script = "/srv/b.lua";
  defs[0].param_types_json = "{\"n\":{\"type\":\"integer\",\"default\":2}}";
  CHECK_EQ_INT(fl_store_put_flows(st, defs, 1), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_list_flows(st, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 2);
  if (l.n == 2) {
    CHECK_EQ_STR(l.items[0].flow, "adhoc"); /* by name */
    CHECK(l.items[0].schedule_json == NULL);
    CHECK(l.items[0].param_types_json == NULL); /* none given */
    CHECK_EQ_STR(l.items[1].flow, "nightly");
    CHECK_EQ_STR(l.items[1].script, "/srv/b.lua");
    CHECK_EQ_STR(l.items[1].params_json, "{\"n\":2}");
    CHECK_EQ_STR(l.items[1].param_types_json,
                 "{\"n\":{\"type\":\"integer\",\"default\":2}}");
    CHECK_EQ_STR(l.items[1].host, "h1");
  }
  fl_store_flow_list_free(&l);
  defs[0].params_json = "not json";
  CHECK(fl_store_put_flows(st, defs, 1) != FLOWLUA_OK); /* CHECK (json_valid) */
  CHECK_CONTAINS(fl_store_errmsg(st), "cannot record the script's flows");

  CHECK_EQ_INT(fl_store_request_cancel(st, "nope", "test", T0), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "no run 'nope'");
  fl_store_run *a = begin(st, "run-a", "nightly", T0, NULL, 0, NULL);
  fl_store_run *b = begin(st, "run-b", "nightly", T0, NULL, 0, NULL);
  const char *ids[3] = {"run-a", "run-b", "run-c"};
  unsigned char asked[3] = {9, 9, 9};
  CHECK_EQ_INT(fl_store_cancel_requests(st, ids, 3, asked), FLOWLUA_OK);
  CHECK(!asked[0] && !asked[1] && !asked[2]);
  CHECK_EQ_INT(fl_store_request_cancel(st, "run-b", "ui on h2", T0 + 1), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_request_cancel(st, "run-b", "ui again", T0 + 2), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_cancel_requests(st, ids, 3, asked), FLOWLUA_OK);
  CHECK(!asked[0] && asked[1] && !asked[2]);
  CHECK_QUERY(path, "SELECT group_concat(requested_by) FROM run_cancel", "ui on h2");
  CHECK_EQ_INT(fl_store_run_end(a, FLOWLUA_FLOW_SUCCESS, T0 + 3, NULL), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_run_end(b, FLOWLUA_FLOW_CANCELLED, T0 + 3, NULL), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_request_cancel(st, "run-a", "test", T0 + 4), FLOWLUA_ESTATE);
  CHECK_CONTAINS(fl_store_errmsg(st), "run run-a is Success, not Running");

  fl_store_prune_opts po = {.older_than = 0};
  fl_store_prune *p = NULL;
  CHECK_EQ_INT(fl_store_prune_begin(st, &po, T0 + 100, &p), FLOWLUA_OK);
  int rc;
  while ((rc = fl_store_prune_step(p)) == 1) {}
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  fl_store_prune_free(p);
  CHECK_QUERY(path, "SELECT count(*) FROM run_cancel", "0");
  CHECK_QUERY(path, "SELECT count(*) FROM flow_def", "2"); /* not runs */
  fl_store_close(st);
  check_integrity(path);
}

/* A pause is the flow's: a second one keeps the first's time and author,
   prune leaves it, a copy carries it, unpause removes it once. */
static void test_pauses(void) {
  const char *path = tmp_path("pauses.db");
  unlink(path);
  fl_store *st = open_store(path);
  fl_store_pause p;
  int changed = 9;
  CHECK_EQ_INT(fl_store_get_pause(st, "nightly", &p), FLOWLUA_OK);
  CHECK_EQ_INT(p.paused, 0);
  CHECK(p.by == NULL);
  CHECK_EQ_INT(fl_store_set_pause(st, "nightly", 1, "ann@h1", T0 + 5, &changed),
               FLOWLUA_OK);
  CHECK_EQ_INT(changed, 1);
  CHECK_EQ_INT(fl_store_set_pause(st, "nightly", 1, "bob@h2", T0 + 9, &changed),
               FLOWLUA_OK);
  CHECK_EQ_INT(changed, 0);
  CHECK_EQ_INT(fl_store_get_pause(st, "nightly", &p), FLOWLUA_OK);
  CHECK_EQ_INT(p.paused, 1);
  CHECK(p.since == T0 + 5);
  CHECK_EQ_STR(p.by, "ann@h1");
  fl_store_pause_clear(&p);
  CHECK_EQ_INT(fl_store_get_pause(st, "adhoc", &p), FLOWLUA_OK);
  CHECK_EQ_INT(p.paused, 0); /* per flow */

  fl_store_run *a = begin(st, "run-a", "nightly", T0, NULL, 0, NULL);
  CHECK_EQ_INT(fl_store_run_end(a, FLOWLUA_FLOW_SUCCESS, T0 + 3, NULL), FLOWLUA_OK);
  fl_store_prune_opts po = {.older_than = 0};
  fl_store_prune *pr = NULL;
  CHECK_EQ_INT(fl_store_prune_begin(st, &po, T0 + 100, &pr), FLOWLUA_OK);
  int rc;
  while ((rc = fl_store_prune_step(pr)) == 1) {}
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  fl_store_prune_free(pr);
  CHECK_QUERY(path, "SELECT flow || ' ' || paused_by FROM flow_pause",
              "nightly ann@h1");

  const char *copy = tmp_path("pauses_copy.db");
  unlink(copy);
  fl_store *to = open_store(copy);
  CHECK_EQ_INT(fl_store_copy(st, to, NULL), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_get_pause(to, "nightly", &p), FLOWLUA_OK);
  CHECK_EQ_INT(p.paused, 1);
  CHECK_EQ_STR(p.by, "ann@h1");
  fl_store_pause_clear(&p);
  fl_store_close(to);

  CHECK_EQ_INT(fl_store_set_pause(st, "nightly", 0, "ann@h1", T0 + 20, &changed),
               FLOWLUA_OK);
  CHECK_EQ_INT(changed, 1);
  CHECK_EQ_INT(fl_store_set_pause(st, "nightly", 0, "ann@h1", T0 + 21, &changed),
               FLOWLUA_OK);
  CHECK_EQ_INT(changed, 0);
  CHECK_EQ_INT(fl_store_get_pause(st, "nightly", &p), FLOWLUA_OK);
  CHECK_EQ_INT(p.paused, 0);
  fl_store_close(st);
  check_integrity(path);
}

static void test_cache(void) {
  const char *path = tmp_path("cache.db");
  fl_store *st = open_store(path);
  const char *json = NULL;
  size_t len = 0;
  CHECK_EQ_INT(fl_store_cache_get(st, "fetch", "k1", T0, 60, &json, &len), 0);
  CHECK(json == NULL);
  CHECK_EQ_INT(fl_store_cache_put(st, "fetch", "k1", "[1,2]", 5, T0), FLOWLUA_OK);
  /* Seen before the flush... */
  CHECK_EQ_INT(fl_store_cache_get(st, "fetch", "k1", T0 + 1, 60, &json, &len), 1);
  CHECK_EQ_STR(json, "[1,2]");
  CHECK_EQ_INT(len, 5);
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM cache"), 0);
  flush_ok(st);
  /* ...and after it, by another handle too. */
  fl_store *other = open_store(path);
  CHECK_EQ_INT(fl_store_cache_get(other, "fetch", "k1", T0 + 59, 60, &json, &len), 1);
  CHECK_EQ_STR(json, "[1,2]");
  /* Expired; another key; another task with the same key. */
  CHECK_EQ_INT(fl_store_cache_get(other, "fetch", "k1", T0 + 61, 60, &json, &len), 0);
  CHECK_EQ_INT(fl_store_cache_get(other, "fetch", "k2", T0, 60, &json, &len), 0);
  CHECK_EQ_INT(fl_store_cache_get(other, "parse", "k1", T0, 60, &json, &len), 0);
  /* No limit on age. */
  CHECK_EQ_INT(fl_store_cache_get(other, "fetch", "k1", T0 + 1e6, -1, &json, &len), 1);
  /* A newer result replaces the old one; an expired pending put is a miss
     even though the file holds an older entry. */
  CHECK_EQ_INT(fl_store_cache_put(st, "fetch", "k1", "\"new\"", 5, T0 + 100), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_cache_get(st, "fetch", "k1", T0 + 200, 60, &json, &len), 0);
  CHECK_EQ_INT(fl_store_cache_get(st, "fetch", "k1", T0 + 120, 60, &json, &len), 1);
  CHECK_EQ_STR(json, "\"new\"");
  flush_ok(st);
  CHECK_EQ_INT(fl_store_cache_get(other, "fetch", "k1", T0 + 120, 60, &json, &len), 1);
  CHECK_EQ_STR(json, "\"new\"");
  CHECK_EQ_INT(raw_int(path, "SELECT count(*) FROM cache"), 1);
  CHECK_EQ_INT(fl_store_cache_put(st, NULL, "k", "1", 1, T0), FLOWLUA_EINVAL);
  fl_store_close(other);
  fl_store_close(st);
  check_integrity(path);
}

/* ---- timing --------------------------------------------------------------------------------- */

/* Writes n tasks × (Running, Success), flushing every `every` state changes;
   returns the seconds taken from the first add to the run's end. */
static double timed_run(const char *path, int sync, int n, int every,
                        const char *id) {
  fl_store_options o;
  fl_store_options_init(&o);
  o.sync = sync;
  fl_store *st = NULL;
  char err[512];
  if (fl_store_open(path, &o, &st, err, sizeof err) != FLOWLUA_OK) {
    CHECK(0);
    return -1;
  }
  char key[32];
  double t0 = now_mono();
  fl_store_run *run = begin(st, id, "bench", T0, NULL, 0, NULL);
  int changes = 0, failures = 0;
  for (int i = 0; run && i < n; i++) {
    uint32_t t;
    snprintf(key, sizeof key, "noop#%d", i + 1);
    failures += fl_store_task_add(run, key, "noop", 0, &t) != FLOWLUA_OK;
    failures += fl_store_task_state(run, t, FLOWLUA_TASK_RUNNING, 1, T0 + i * 1e-6, NULL) != 0;
    failures += fl_store_task_state(run, t, FLOWLUA_TASK_SUCCESS, 1, T0 + i * 1e-6, NULL) != 0;
    failures += fl_store_task_result(run, t, "null", 4) != 0;
    if ((changes += 2) >= every) {
      failures += fl_store_flush(st) != FLOWLUA_OK;
      changes = 0;
    }
  }
  if (run) failures += fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 1, NULL) != 0;
  double took = now_mono() - t0;
  CHECK_EQ_INT(failures, 0);
  fl_store_close(st);
  return took;
}

static void test_timing(void) {
  const char *path = tmp_path("timing.db");
  enum { N = 100000 };
  double batched = timed_run(path, FL_STORE_SYNC_NORMAL, N, 1000, "t-batched");
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM task_history");
  CHECK_EQ_INT(raw_int(path, sql), 2 * N);
  /* A chain: every task waits for its upstream's flush. */
  enum { CHAIN = 10000, FULL = 300 };
  double chain = timed_run(path, FL_STORE_SYNC_NORMAL, CHAIN, 2, "t-chain");
  double full = timed_run(path, FL_STORE_SYNC_FULL, FULL, 2, "t-full");

  fl_store *st = open_store(path);
  double t0 = now_mono();
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl_store_load_run(st, "t-batched", NULL, &d), FLOWLUA_OK);
  CHECK_EQ_INT(d ? d->n_tasks : 0, N);
  CHECK(d && fl_store_task_reusable(fl_store_detail_find(d, "noop#77777")));
  double load = now_mono() - t0;
  fl_store_run_detail_free(d);
  t0 = now_mono();
  fl_store_run_list l;
  CHECK_EQ_INT(fl_store_list_runs(st, NULL, 20, &l), FLOWLUA_OK);
  double list = now_mono() - t0;
  fl_store_run_list_free(&l);
  fl_store_close(st);
  printf("timing: %d tasks x (Running, Success, result), flush every 1000 "
         "changes: %.3f s (%.2f us/task)\n",
         N, batched, batched / N * 1e6);
  printf("timing: chain of %d tasks, one flush per task, synchronous=NORMAL: "
         "%.3f s (%.1f us/task)\n",
         CHAIN, chain, chain / CHAIN * 1e6);
  printf("timing: chain of %d tasks, one flush per task, synchronous=FULL: "
         "%.3f s (%.1f us/task)\n",
         FULL, full, full / FULL * 1e6);
  printf("timing: load a %d-task run: %.3f s; list 20 runs: %.4f s\n", N, load,
         list);
  check_integrity(path);
}

/* ---- main ------------------------------------------------------------------------------------ */

static int remove_entry(const char *path, const struct stat *sb, int flag,
                        struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

int main(void) {
  /* Text output uses local time: make it UTC so the expected tables are
     the same everywhere. */
  setenv("TZ", "UTC", 1);
  tzset();
  const char *base = getenv("TMPDIR");
  snprintf(tmp_root, sizeof tmp_root, "%s/flowlua-store-" MKDTEMP_SUFFIX,
           base && *base ? base : "/tmp");
  if (!mkdtemp(tmp_root)) {
    perror("mkdtemp");
    return 1;
  }
  RUN(test_create_and_reopen);
  RUN(test_run_mark);
  RUN(test_missing_folders);
  RUN(test_memory_store);
  RUN(test_migrate_from_empty);
  RUN(test_migrate_from_v1);
  RUN(test_migrate_from_v2);
  RUN(test_refuse_foreign);
  RUN(test_refuse_not_sqlite);
  RUN(test_refuse_newer);
  RUN(test_refuse_corrupt);
  RUN(test_batching);
  RUN(test_failed_flush_is_retried);
  RUN(test_background_writer);
  RUN(test_element_keys);
  RUN(test_misuse);
  RUN(test_crash_marking);
  RUN(test_journal_replay);
  RUN(test_end_while_locked);
  RUN(test_journal_turns);
  RUN(test_claim_fire);
  RUN(test_claims_while_locked);
  RUN(test_list_runs);
  RUN(test_show_run);
  RUN(test_attempt_workers);
  RUN(test_prune);
  RUN(test_edges_and_counts);
  RUN(test_resume_claim);
  RUN(test_resume_support);
  RUN(test_cache);
  RUN(test_flows_and_cancels);
  RUN(test_pauses);
  RUN(test_timing);
  /* FLOWLUA_TEST_KEEP=1 keeps the files, to look at them with sqlite3. */
  if (getenv("FLOWLUA_TEST_KEEP"))
    printf("files kept in %s\n", tmp_root);
  else
    nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return check_summary();
}
