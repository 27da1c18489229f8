/*
 * test_pg_read.c — reading runs back from a PostgreSQL history (pg_read.c)
 * against a real server: rows inserted with plain SQL, as flowlua writes
 * them, and every field the readers return checked — lists newest first,
 * limited and by flow, with counts recorded and counted (a map counted by
 * its elements); a run by id, prefix and "last", with the SQLite store's
 * messages for no match and an ambiguous prefix (test_store.c); its graph
 * and edges (recorded, none, damaged); results byte for byte; attempts
 * from state changes, with where worker attempts ran; succeeded fire
 * times. And the time a 100,000-task run takes to load (printed).
 *
 * Run through tests/support/pg/with_pg.py, which gives the server's URI in
 * FLOWLUA_TEST_PG (ctest does: unit/test_pg_read).
 */
#define _GNU_SOURCE
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "flowlua.h"
#include "pg_api.h"
#include "pg_conn.h"
#include "pg_store.h"

static const char *uri;
static fl_pg *conn; /* migrated, with the rows of setup() */

/* ---- helpers --------------------------------------------------------------- */

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sql(const char *text) {
  int rc = fl_pg_exec(conn, text, "test SQL");
  if (rc) fprintf(stderr, "  %s\n", fl_pg_errmsg(conn));
  return rc;
}

/* The error after "state store 'NAME': ", as the SQLite store words it. */
static const char *message(void) {
  const char *m = fl_pg_errmsg(conn);
  const char *name = fl_pg_name(conn);
  static const char head[] = "state store '";
  if (strncmp(m, head, sizeof head - 1) != 0) return m;
  m += sizeof head - 1;
  if (strncmp(m, name, strlen(name)) != 0 || strncmp(m + strlen(name), "': ", 3))
    return fl_pg_errmsg(conn);
  return m + strlen(name) + 3;
}

static const fl_store_task_row *task(const fl_store_run_detail *d,
                                     const char *key) {
  const fl_store_task_row *t = fl_store_detail_find(d, key);
  if (!t) fprintf(stderr, "  no task run '%s'\n", key);
  return t;
}

/* The result every test reads back byte for byte: quotes, backslashes,
   UTF-8 of two and four bytes, and the JSON escape of a NUL. */
#define ODD_RESULT "{\"q\":\"say \\\"hi\\\"\",\"b\":\"C:\\\\dir\\\\\",\"u\":\"\xc3\xa9\xf0\x9f\x98\x80\",\"z\":\"a\\u0000b\",\"n\":-0.0}"

/*
 * The history the tests read:
 *   1 aaaa1111 etl     Success  counts recorded {"Success": 2}, no edges
 *   2 aaaa2222 etl     Failed   counts NULL (counted: a map and its
 *                               elements), edges recorded, workers
 *   3 bbbb3333 report  Running  counts not an object (counted), edges
 *                               naming no key (damaged)
 *   4 ffff4444 report  Success  counts {} (none), edges not integers
 *   10.. many: cccc0..cccc5 (an ambiguous prefix of six), dddd and dddd-2
 *   20.. cron: fire times
 */
static int setup(void) {
  return sql(
      "INSERT INTO flow_run (id, run_id, flow, script, params, state,"
      " scheduled_at, started_at, ended_at, error, task_counts, resumed_from,"
      " owner_host, owner_pid) VALUES"
      " (1, 'aaaa1111-0000-4000-8000-000000000001', 'etl', 'etl.lua',"
      "  '{\"day\":\"2026-01-01\"}', 'Success', 100, 100.25, 110.5, NULL,"
      "  '{\"Success\": 2}', NULL, 'h1', 11),"
      " (2, 'aaaa2222-0000-4000-8000-000000000002', 'etl', 'etl.lua',"
      "  '{\"n\": 1.5e300}', 'Failed', NULL, 200.125, 210, 'task load failed',"
      "  NULL, 'aaaa1111-0000-4000-8000-000000000001', 'h2', 22),"
      " (3, 'bbbb3333-0000-4000-8000-000000000003', 'report', 'r.lua', NULL,"
      "  'Running', NULL, 300, NULL, NULL, '[1, 2]', NULL, 'h3', 33),"
      " (4, 'ffff4444-0000-4000-8000-000000000004', 'report', 'r.lua', '{}',"
      "  'Success', NULL, 250, 251, NULL, '{}', NULL, '', 0);"
      "INSERT INTO flow_run (id, run_id, flow, state, started_at)"
      " SELECT 10 + i, 'cccc' || i, 'many', 'Success', 1 + i"
      " FROM generate_series(0, 5) i;"
      "INSERT INTO flow_run (id, run_id, flow, state, started_at) VALUES"
      " (16, 'dddd', 'many', 'Failed', 7), (17, 'dddd-2', 'many', 'Success', 8);"
      "INSERT INTO flow_run (id, run_id, flow, state, scheduled_at, started_at)"
      " VALUES (20, 'e0', 'cron', 'Success', 1000, 9),"
      " (21, 'e1', 'cron', 'Success', 1060, 9.1),"
      " (22, 'e2', 'cron', 'Success', 1060, 9.2),"
      " (23, 'e3', 'cron', 'Failed', 1090, 9.3),"
      " (24, 'e4', 'cron', 'Success', 1180, 9.4),"
      " (25, 'e5', 'etl2', 'Success', 1000, 9.5);"
      /* graphs */
      "INSERT INTO run_graph (run, keys, edges) VALUES"
      " (1, '[\"extract\", \"load\"]', NULL),"
      " (2, '[\"fetch\", \"m\", \"load\"]', '[[0, 1, false], [1, 2, true], [0, 2, 1]]'),"
      " (3, '[\"a\", \"b\"]', '[[0, 1, true], [1, 2, false]]'),"
      " (4, '[\"a\", \"b\"]', '[[0, 1.5, false]]');"
      /* run 1: two task runs, counts recorded */
      "INSERT INTO task_run (run, n, key, task, state, state_at, state_seq,"
      " attempts, started_at, started_seq, ended_at, result, result_kind)"
      " VALUES (1, 0, 'extract', 'extract', 'Success', 102, 2, 1, 101, 1, 102,"
      "  '[1,2,3]', 1),"
      " (1, 1, 'load', 'load', 'Success', 104, 2, 1, 103, 1, 104, NULL, 0);"
      /* run 2: fetch (a result of every kind of byte), a map m with two
         elements, load failed twice in workers */
      "INSERT INTO task_run (run, n, key, task, map_index, state, state_at,"
      " state_seq, attempts, error, started_at, started_seq, ended_at, result,"
      " result_kind) VALUES"
      " (2, 0, 'fetch', 'fetch', 0, 'Success', 201, 2, 1, NULL, 200.5, 1, 201,"
      "  $r$" ODD_RESULT "$r$, 1),"
      " (2, 1, 'm', 'm', 0, 'Success', 203, 2, 0, NULL, 201.5, 1, 203, NULL, 2),"
      " (2, 2, 'm[1]', 'square', 1, 'Success', 202, 2, 1, NULL, 201.6, 1, 202,"
      "  '1', 1),"
      " (2, 3, 'm[2]', 'square', 2, 'Failed', 202.5, 2, 1, 'bad', 201.7, 1,"
      "  202.5, 'junk', 0),"
      " (2, 4, 'load', 'load', 0, 'Failed', 206, 4, 2, 'boom2', 201.75, 1, 206,"
      "  NULL, 0);"
      "INSERT INTO task_event (run, n, seq, at, state, attempt, error) VALUES"
      " (2, 4, 2, 203, 'Retrying', 1, 'boom1'),"
      " (2, 4, 3, 204, 'Running', 2, NULL);"
      "INSERT INTO attempt_worker (run, n, attempt, host, pid) VALUES"
      " (2, 4, 1, 'w1', 7), (2, 4, 2, 'w2', 8), (2, 0, 2, 'wx', 9);"
      /* run 3: still running */
      "INSERT INTO task_run (run, n, key, task, state, state_at, state_seq,"
      " attempts, started_at, started_seq) VALUES"
      " (3, 0, 'a', 'a', 'Success', 301, 2, 1, 300.5, 1),"
      " (3, 1, 'b', 'b', 'Running', 302, 1, 1, 302, 1),"
      " (3, 2, 'c', 'c', 'Someday', 0, 0, 0, NULL, NULL);"
      "INSERT INTO task_run (run, n, key, task, state) VALUES"
      " (4, 0, 'a', 'a', 'Success');");
}

/* ---- the same history read from SQLite and from PostgreSQL ----------------- */

/* Copies the rows of select (on SQLite) into PostgreSQL with insert
   ($1..$n): numbers as exact text, strings byte for byte. */
static void copy_rows(sqlite3 *db, const char *select, const char *insert) {
  sqlite3_stmt *s = NULL;
  CHECK_EQ_INT(sqlite3_prepare_v2(db, select, -1, &s, NULL), SQLITE_OK);
  if (!s) return;
  int n = sqlite3_column_count(s);
  char num[16][40];
  const char *params[16];
  while (n <= 16 && sqlite3_step(s) == SQLITE_ROW) {
    for (int i = 0; i < n; i++) {
      switch (sqlite3_column_type(s, i)) {
      case SQLITE_NULL: params[i] = NULL; break;
      case SQLITE_INTEGER:
        snprintf(num[i], sizeof num[i], "%lld", (long long)sqlite3_column_int64(s, i));
        params[i] = num[i];
        break;
      case SQLITE_FLOAT:
        snprintf(num[i], sizeof num[i], "%.17g", sqlite3_column_double(s, i));
        params[i] = num[i];
        break;
      default: params[i] = (const char *)sqlite3_column_text(s, i);
      }
    }
    PGresult *r = fl_pg_query(conn, "copying", insert, n, params);
    if (!r) fprintf(stderr, "  %s\n", fl_pg_errmsg(conn));
    CHECK(r != NULL);
    fl_pq()->clear(r);
  }
  sqlite3_finalize(s);
}

static void same_str(const char *a, const char *b, const char *what) {
  if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
    fprintf(stderr, "  %s: SQLite ", what);
    check_print_quoted_(a);
    fprintf(stderr, ", PostgreSQL ");
    check_print_quoted_(b);
    fputc('\n', stderr);
    CHECK(0);
  }
}

static void same_run_row(const fl_store_run_row *a, const fl_store_run_row *b) {
  same_str(a->run_id, b->run_id, "run_id");
  same_str(a->flow, b->flow, "flow");
  same_str(a->script, b->script, "script");
  same_str(a->params_json, b->params_json, "params");
  same_str(a->error, b->error, "error");
  same_str(a->resumed_from, b->resumed_from, "resumed_from");
  same_str(a->owner_host, b->owner_host, "owner_host");
  CHECK_EQ_INT(a->state, b->state);
  CHECK(a->scheduled_at == b->scheduled_at);
  CHECK(a->started_at == b->started_at);
  CHECK(a->ended_at == b->ended_at);
  CHECK_EQ_INT(a->owner_pid, b->owner_pid);
  CHECK_EQ_INT(a->n_tasks, b->n_tasks);
  CHECK(memcmp(a->by_state, b->by_state, sizeof a->by_state) == 0);
}

static void same_detail(const fl_store_run_detail *a, const fl_store_run_detail *b) {
  same_run_row(&a->run, &b->run);
  CHECK_EQ_INT(a->n_graph_keys, b->n_graph_keys);
  for (size_t i = 0; i < a->n_graph_keys && i < b->n_graph_keys; i++)
    same_str(a->graph_keys[i], b->graph_keys[i], "graph key");
  CHECK_EQ_INT(a->edges_state, b->edges_state);
  CHECK_EQ_INT(a->n_edges, b->n_edges);
  if (a->n_edges == b->n_edges && a->n_edges)
    CHECK(memcmp(a->edges, b->edges, a->n_edges * sizeof *a->edges) == 0);
  CHECK_EQ_INT(a->n_tasks, b->n_tasks);
  for (size_t i = 0; i < a->n_tasks && i < b->n_tasks; i++) {
    const fl_store_task_row *x = &a->tasks[i], *y = &b->tasks[i];
    same_str(x->key, y->key, "key");
    same_str(x->task, y->task, "task");
    same_str(x->error, y->error, "task error");
    same_str(x->worker_host, y->worker_host, "worker_host");
    CHECK_EQ_INT(x->result_len, y->result_len);
    CHECK((x->result == NULL) == (y->result == NULL));
    if (x->result && y->result && x->result_len == y->result_len)
      CHECK(memcmp(x->result, y->result, x->result_len) == 0);
    CHECK_EQ_INT(x->map_index, y->map_index);
    CHECK_EQ_INT(x->state, y->state);
    CHECK_EQ_INT(x->attempts, y->attempts);
    CHECK_EQ_INT(x->result_kind, y->result_kind);
    CHECK(x->started_at == y->started_at);
    CHECK(x->ended_at == y->ended_at);
    CHECK_EQ_INT(x->worker_pid, y->worker_pid);
  }
}

static void same_attempts(const fl_store_attempt_list *a,
                          const fl_store_attempt_list *b) {
  CHECK_EQ_INT(a->n, b->n);
  for (size_t i = 0; i < a->n && i < b->n; i++) {
    const fl_store_attempt *x = &a->items[i], *y = &b->items[i];
    CHECK_EQ_INT(x->task, y->task);
    CHECK_EQ_INT(x->attempt, y->attempt);
    CHECK_EQ_INT(x->state, y->state);
    CHECK(x->started_at == y->started_at);
    CHECK(x->ended_at == y->ended_at);
    same_str(x->error, y->error, "attempt error");
    same_str(x->worker_host, y->worker_host, "attempt worker_host");
    CHECK_EQ_INT(x->worker_pid, y->worker_pid);
  }
}

/* The message after "state store 'NAME': " of the SQLite store. */
static const char *sqlite_message(fl_store *st) {
  const char *m = fl_store_errmsg(st);
  const char *p = strstr(m, "': ");
  return p ? p + 3 : m;
}

/* A history written by the SQLite store itself (runs ended and running,
   retries, a map, a worker, a result of odd bytes, edges, fire times),
   copied row for row into PostgreSQL: every reader must hand back the
   same from both, and refuse the same refs with the same words. */
static void test_same_as_sqlite(void) {
  char dir[] = "/tmp/flowlua-pgread-" MKDTEMP_SUFFIX;
  if (!mkdtemp(dir)) {
    CHECK(0);
    return;
  }
  char path[256];
  snprintf(path, sizeof path, "%s/state.db", dir);
  fl_store *st = NULL;
  char err[512];
  CHECK_EQ_INT(fl_store_open(path, NULL, &st, err, sizeof err), FLOWLUA_OK);
  if (!st) return;
  static const char *const keys[] = {"fetch", "m", "load"};
  static const fl_store_edge edges[] = {{0, 1, 0}, {1, 2, 1}};
  static const char *const ids[] = {"aaaa1111-0000-4000-8000-000000000001",
                                    "aaaa2222-0000-4000-8000-000000000002",
                                    "bbbb3333-0000-4000-8000-000000000003"};
  for (int k = 0; k < 3; k++) {
    fl_store_run_info info = {.run_id = ids[k], .flow = k < 2 ? "etl" : "report",
                              .script = "flows/etl.lua",
                              .params_json = "{\"day\":\"2026-12-05\",\"x\":-0.0}",
                              .scheduled_at = k == 2 ? 0 : 1764900000 + 60 * k,
                              .started_at = 1764900000.123456 + 100 * k,
                              .keys = keys, .n_keys = 3,
                              .edges = k ? edges : NULL, .n_edges = k ? 2 : 0,
                              .resumed_from = k == 1 ? ids[0] : NULL};
    fl_store_run *r = NULL;
    CHECK_EQ_INT(fl_store_run_begin(st, &info, &r), FLOWLUA_OK);
    if (!r) break;
    double t = info.started_at;
    uint32_t f = 0, m = 0, e1 = 0, e2 = 0, l = 0;
    fl_store_task_add(r, "fetch", "fetch", 0, &f);
    fl_store_task_add(r, "m", "m", 0, &m);
    fl_store_task_add(r, "m[1]", "square", 1, &e1);
    fl_store_task_add(r, "m[2]", "square", 2, &e2);
    fl_store_task_add(r, "load", "load", 0, &l);
    fl_store_task_state(r, f, FLOWLUA_TASK_RUNNING, 1, t + 0.1, NULL);
    fl_store_task_state(r, f, FLOWLUA_TASK_SUCCESS, 1, t + 0.2, NULL);
    fl_store_task_result(r, f, ODD_RESULT, strlen(ODD_RESULT));
    fl_store_task_state(r, m, FLOWLUA_TASK_RUNNING, 1, t + 0.3, NULL);
    fl_store_task_state(r, e1, FLOWLUA_TASK_RUNNING, 1, t + 0.31, NULL);
    fl_store_task_state(r, e1, FLOWLUA_TASK_SUCCESS, 1, t + 0.32, NULL);
    fl_store_task_result(r, e1, "1", 1);
    fl_store_task_state(r, e2, FLOWLUA_TASK_RUNNING, 1, t + 0.33, NULL);
    fl_store_task_state(r, e2, FLOWLUA_TASK_FAILED, 1, t + 0.34, "bad\ninput");
    fl_store_task_state(r, m, FLOWLUA_TASK_FAILED, 0, t + 0.35, "1 element failed");
    for (int a = 1; a <= 3 && k > 0; a++) {
      fl_store_task_state(r, l, FLOWLUA_TASK_RUNNING, a, t + 1 + a, NULL);
      fl_store_task_worker(r, l, a, a == 2 ? "w2" : "w1", 100 + a);
      if (k == 2 && a == 2) break; /* still running */
      fl_store_task_state(r, l, a < 3 ? FLOWLUA_TASK_RETRYING : FLOWLUA_TASK_SUCCESS,
                          a, t + 1.5 + a, a < 3 ? "disk full" : NULL);
    }
    if (k < 2)
      CHECK_EQ_INT(fl_store_run_end(r, k ? FLOWLUA_FLOW_SUCCESS : FLOWLUA_FLOW_FAILED,
                                    t + 10, k ? NULL : "2 tasks failed"),
                   FLOWLUA_OK);
  }
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK);

  sqlite3 *db = NULL;
  CHECK_EQ_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  copy_rows(db,
            "SELECT id, run_id, flow, script, params, state, scheduled_at,"
            " started_at, ended_at, error, task_counts, resumed_from,"
            " owner_host, owner_pid FROM flow_run",
            "INSERT INTO flow_run (id, run_id, flow, script, params, state,"
            " scheduled_at, started_at, ended_at, error, task_counts,"
            " resumed_from, owner_host, owner_pid) VALUES ($1, $2, $3, $4, $5,"
            " $6, $7, $8, $9, $10, $11, $12, $13, $14)");
  copy_rows(db, "SELECT run, keys, edges FROM run_graph",
            "INSERT INTO run_graph (run, keys, edges) VALUES ($1, $2, $3)");
  copy_rows(db,
            "SELECT run, n, key, task, map_index, state, state_at, state_seq,"
            " attempts, error, started_at, started_seq, ended_at, result,"
            " result_kind FROM task_run",
            "INSERT INTO task_run (run, n, key, task, map_index, state,"
            " state_at, state_seq, attempts, error, started_at, started_seq,"
            " ended_at, result, result_kind) VALUES ($1, $2, $3, $4, $5, $6,"
            " $7, $8, $9, $10, $11, $12, $13, $14, $15)");
  copy_rows(db, "SELECT run, n, seq, at, state, attempt, error FROM task_event",
            "INSERT INTO task_event (run, n, seq, at, state, attempt, error)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)");
  copy_rows(db, "SELECT run, n, attempt, host, pid FROM attempt_worker",
            "INSERT INTO attempt_worker (run, n, attempt, host, pid)"
            " VALUES ($1, $2, $3, $4, $5)");
  sqlite3_close(db);

  fl_store_run_list a, b;
  CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &a), FLOWLUA_OK);
  CHECK_EQ_INT(fl__pg_list_runs(conn, NULL, 0, &b), FLOWLUA_OK);
  CHECK_EQ_INT(a.n, 3);
  CHECK_EQ_INT(a.n, b.n);
  for (size_t i = 0; i < a.n && i < b.n; i++) same_run_row(&a.rows[i], &b.rows[i]);
  fl_store_run_list_free(&a);
  fl_store_run_list_free(&b);

  static const char *const refs[] = {"aaaa1", "aaaa2222-0000-4000-8000-000000000002",
                                     "last", "bbbb"};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    fl_store_run_detail *x = NULL, *y = NULL;
    CHECK_EQ_INT(fl_store_load_run(st, refs[i], NULL, &x), FLOWLUA_OK);
    CHECK_EQ_INT(fl__pg_load_run(conn, refs[i], NULL, &y), FLOWLUA_OK);
    if (x && y) {
      CHECK(x->n_tasks >= 4); /* the comparison compares something */
      same_detail(x, y);
      fl_store_attempt_list la, lb;
      CHECK_EQ_INT(fl_store_load_attempts(st, x, &la), FLOWLUA_OK);
      CHECK_EQ_INT(fl__pg_load_attempts(conn, y, &lb), FLOWLUA_OK);
      CHECK(la.n >= 4);
      same_attempts(&la, &lb);
      fl_store_attempt_list_free(&la);
      fl_store_attempt_list_free(&lb);
    }
    fl_store_run_detail_free(x);
    fl_store_run_detail_free(y);
  }

  static const struct {
    const char *ref, *flow;
  } refused[] = {{"aaaa", NULL}, {"zzzz", NULL}, {"bbbb", "etl"},
                 {"last", "nothing"}, {"", NULL}, {"a\xff", NULL}};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    fl_store_run_detail *x = NULL, *y = NULL;
    int ra = fl_store_load_run(st, refused[i].ref, refused[i].flow, &x);
    int rb = fl__pg_load_run(conn, refused[i].ref, refused[i].flow, &y);
    CHECK_EQ_INT(ra, FLOWLUA_EINVAL);
    CHECK_EQ_INT(rb, ra);
    CHECK_EQ_STR(message(), sqlite_message(st));
    fl_store_run_detail_free(x);
    fl_store_run_detail_free(y);
  }

  /* The marks (the UI's change marker), of ended runs and of the one
     still Running, and a page bounded by start times, read the same (the
     counters are each backend's own: they are compared, not read). */
  for (int k = 0; k < 3; k++) {
    fl_store_run_mark ma, mb;
    CHECK_EQ_INT(fl_store_run_mark_get(st, ids[k], &ma), FLOWLUA_OK);
    CHECK_EQ_INT(fl__pg_run_mark(conn, ids[k], &mb), FLOWLUA_OK);
    CHECK_EQ_INT(ma.state, k == 2 ? FLOWLUA_FLOW_RUNNING : mb.state);
    CHECK_EQ_INT(ma.state, mb.state);
    CHECK(ma.ended_at == mb.ended_at);
    if (k == 2) {
      CHECK(ma.task_runs > 0 && ma.changes > 0);
      CHECK_EQ_INT((int)mb.task_runs, 5);
      CHECK(mb.changes >= 9); /* every change of its task runs counts */
    } else {
      CHECK(ma.task_runs == 0 && mb.task_runs == 0); /* ended: not counted */
    }
  }
  fl_store_run_mark none;
  CHECK_EQ_INT(fl_store_run_mark_get(st, "zzzz", &none), FLOWLUA_EINVAL);
  CHECK_EQ_INT(fl__pg_run_mark(conn, "zzzz", &none), FLOWLUA_EINVAL);
  CHECK_EQ_STR(message(), sqlite_message(st));
  fl_store_run_filter window = {.state = -1, .since = 1764900000.123456 + 50,
                                .until = 1764900000.123456 + 150};
  CHECK_EQ_INT(fl_store_list_runs_where(st, &window, &a), FLOWLUA_OK);
  CHECK_EQ_INT(fl__pg_list_runs_where(conn, &window, &b), FLOWLUA_OK);
  CHECK_EQ_INT(a.n, 1);
  CHECK_EQ_INT(a.n, b.n);
  if (a.n == 1 && b.n == 1) {
    CHECK_EQ_STR(a.rows[0].run_id, ids[1]);
    same_run_row(&a.rows[0], &b.rows[0]);
  }
  fl_store_run_list_free(&a);
  fl_store_run_list_free(&b);

  double *fa = NULL, *fb = NULL;
  size_t na = 0, nb = 0;
  CHECK_EQ_INT(fl_store_succeeded_fires(st, "etl", 1764899000, 1764901000, &fa, &na),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl__pg_succeeded_fires(conn, "etl", 1764899000, 1764901000, &fb, &nb),
               FLOWLUA_OK);
  CHECK_EQ_INT(na, 1);
  CHECK_EQ_INT(na, nb);
  if (na == 1 && nb == 1) CHECK(fa[0] == fb[0]);
  free(fa);
  free(fb);
  fl_store_close(st);
  char rm[512];
  snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
  CHECK_EQ_INT(system(rm), 0);
}

/* ---- lists ------------------------------------------------------------------ */

static void test_list_runs(void) {
  fl_store_run_list l;
  CHECK_EQ_INT(fl__pg_list_runs(conn, NULL, 0, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 18);
  if (l.n == 18) {
    /* newest first */
    CHECK_EQ_STR(l.rows[0].run_id, "bbbb3333-0000-4000-8000-000000000003");
    CHECK_EQ_STR(l.rows[1].run_id, "ffff4444-0000-4000-8000-000000000004");
    CHECK_EQ_STR(l.rows[2].run_id, "aaaa2222-0000-4000-8000-000000000002");
    CHECK_EQ_STR(l.rows[3].run_id, "aaaa1111-0000-4000-8000-000000000001");
    CHECK_EQ_STR(l.rows[4].run_id, "e5");
    CHECK_EQ_STR(l.rows[17].run_id, "cccc0");
    /* every field of a finished run, with its counts as recorded */
    const fl_store_run_row *r = &l.rows[3];
    CHECK_EQ_STR(r->flow, "etl");
    CHECK_EQ_STR(r->script, "etl.lua");
    CHECK_EQ_STR(r->params_json, "{\"day\":\"2026-01-01\"}");
    CHECK_EQ_INT(r->state, FLOWLUA_FLOW_SUCCESS);
    CHECK(r->scheduled_at == 100 && r->started_at == 100.25 && r->ended_at == 110.5);
    CHECK(r->error == NULL && r->resumed_from == NULL);
    CHECK_EQ_INT(r->owner_pid, 11);
    CHECK_EQ_STR(r->owner_host, "h1");
    CHECK_EQ_INT(r->n_tasks, 2);
    CHECK_EQ_INT(r->by_state[FLOWLUA_TASK_SUCCESS], 2);
    /* counted from the rows: m's elements count, m itself not */
    r = &l.rows[2];
    CHECK_EQ_STR(r->params_json, "{\"n\": 1.5e300}"); /* text: as written */
    CHECK_EQ_INT(r->state, FLOWLUA_FLOW_FAILED);
    CHECK(r->scheduled_at == 0 && r->started_at == 200.125 && r->ended_at == 210);
    CHECK_EQ_STR(r->error, "task load failed");
    CHECK_EQ_STR(r->resumed_from, "aaaa1111-0000-4000-8000-000000000001");
    CHECK_EQ_INT(r->n_tasks, 4);
    CHECK_EQ_INT(r->by_state[FLOWLUA_TASK_SUCCESS], 2);
    CHECK_EQ_INT(r->by_state[FLOWLUA_TASK_FAILED], 2);
    /* counts that are no object: counted, an unknown state in the total */
    r = &l.rows[0];
    CHECK_EQ_INT(r->state, FLOWLUA_FLOW_RUNNING);
    CHECK(r->params_json == NULL && r->ended_at == 0);
    CHECK_EQ_INT(r->n_tasks, 3);
    CHECK_EQ_INT(r->by_state[FLOWLUA_TASK_SUCCESS], 1);
    CHECK_EQ_INT(r->by_state[FLOWLUA_TASK_RUNNING], 1);
    /* {}: recorded as none */
    CHECK_EQ_INT(l.rows[1].n_tasks, 0);
    CHECK_EQ_STR(l.rows[1].owner_host, "");
  }
  fl_store_run_list_free(&l);

  CHECK_EQ_INT(fl__pg_list_runs(conn, NULL, 1, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 1);
  if (l.n) CHECK_EQ_STR(l.rows[0].run_id, "bbbb3333-0000-4000-8000-000000000003");
  fl_store_run_list_free(&l);

  CHECK_EQ_INT(fl__pg_list_runs(conn, "etl", 5, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 2);
  if (l.n == 2) {
    CHECK_EQ_STR(l.rows[0].run_id, "aaaa2222-0000-4000-8000-000000000002");
    CHECK_EQ_STR(l.rows[1].run_id, "aaaa1111-0000-4000-8000-000000000001");
    CHECK_EQ_INT(l.rows[0].n_tasks, 4);
    CHECK_EQ_INT(l.rows[1].n_tasks, 2);
  }
  fl_store_run_list_free(&l);

  CHECK_EQ_INT(fl__pg_list_runs(conn, "et\xfa", 5, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 0);
  fl_store_run_list_free(&l);

  /* a flow named in UTF-8 beyond ASCII */
  CHECK_EQ_INT(sql("INSERT INTO flow_run (id, run_id, flow, state, started_at)"
                   " VALUES (26, '\xf0\x9f\x98\x80', 'd\xc3\xa9j\xc3\xa0',"
                   " 'Success', 0.5)"),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl__pg_list_runs(conn, "d\xc3\xa9j\xc3\xa0", 0, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 1);
  if (l.n) CHECK_EQ_STR(l.rows[0].run_id, "\xf0\x9f\x98\x80");
  fl_store_run_list_free(&l);

  CHECK_EQ_INT(fl__pg_list_runs(conn, "nothing", 5, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 0);
  fl_buf out = FL_BUF_INIT;
  fl_store_print_runs(&out, &l, 1);
  CHECK_EQ_STR(fl_buf_str(&out), "[]\n");
  fl_buf_free(&out);
  fl_store_run_list_free(&l);
}

/* ---- one run ----------------------------------------------------------------- */

static void expect_run(const char *ref, const char *flow, const char *id) {
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl__pg_load_run(conn, ref, flow, &d), FLOWLUA_OK);
  CHECK(d != NULL);
  if (d) CHECK_EQ_STR(d->run.run_id, id);
  fl_store_run_detail_free(d);
}

static void expect_refused(const char *ref, const char *flow, const char *msg) {
  fl_store_run_detail *d = (fl_store_run_detail *)1;
  CHECK_EQ_INT(fl__pg_load_run(conn, ref, flow, &d), FLOWLUA_EINVAL);
  CHECK(d == NULL);
  CHECK_EQ_STR(message(), msg);
}

static void test_find_run(void) {
  expect_run("last", NULL, "bbbb3333-0000-4000-8000-000000000003");
  expect_run("last", "etl", "aaaa2222-0000-4000-8000-000000000002");
  expect_run("aaaa1", NULL, "aaaa1111-0000-4000-8000-000000000001");
  expect_run("aaaa2222-0000-4000-8000-000000000002", NULL,
             "aaaa2222-0000-4000-8000-000000000002");
  expect_run("dddd", NULL, "dddd"); /* exact wins over a longer id */
  expect_run("dddd-", "many", "dddd-2");

  /* The SQLite store's words (test_store.c: test_show_run). */
  expect_refused("aaaa", NULL,
                 "run id 'aaaa' is ambiguous: it starts 2 ids"
                 " (aaaa2222-0000-4000-8000-000000000002,"
                 " aaaa1111-0000-4000-8000-000000000001); give more of it");
  expect_refused("cccc", NULL,
                 "run id 'cccc' is ambiguous: it starts more than 5 ids"
                 " (cccc5, cccc4, cccc3, cccc2, cccc1, ...); give more of it");
  expect_refused("zzzz", NULL, "no run has an id starting with 'zzzz'");
  expect_refused("bbbb", "etl", "no run of flow 'etl' has an id starting with 'bbbb'");
  expect_refused("last", "nothing", "no run of flow 'nothing' is recorded");
  expect_refused("", NULL, "no run id given");
  /* the prefix is text, not a pattern */
  expect_refused("aaaa%", NULL, "no run has an id starting with 'aaaa%'");
  expect_refused("_aaa", NULL, "no run has an id starting with '_aaa'");
  /* not UTF-8: no stored id or flow can match it (the server would refuse
     the text) */
  expect_refused("aa\xff", NULL, "no run has an id starting with 'aa\xff'");
  expect_refused("\xc0\xaf", NULL, "no run has an id starting with '\xc0\xaf'");
  expect_refused("\xed\xa0\x80", NULL,
                 "no run has an id starting with '\xed\xa0\x80'");
  expect_refused("last", "e\xe9", "no run of flow 'e\xe9' is recorded");
  expect_run("aaaa1", "etl", "aaaa1111-0000-4000-8000-000000000001");
}

static void test_load_run(void) {
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl__pg_load_run(conn, "aaaa2222", NULL, &d), FLOWLUA_OK);
  if (!d) return;
  const fl_store_run_row *r = &d->run;
  CHECK_EQ_STR(r->flow, "etl");
  CHECK_EQ_STR(r->script, "etl.lua");
  CHECK_EQ_INT(r->state, FLOWLUA_FLOW_FAILED);
  CHECK_EQ_STR(r->error, "task load failed");
  CHECK_EQ_STR(r->owner_host, "h2");
  CHECK_EQ_INT(r->owner_pid, 22);
  /* counted from the task runs loaded, as the list counts them */
  CHECK_EQ_INT(r->n_tasks, 4);
  CHECK_EQ_INT(r->by_state[FLOWLUA_TASK_SUCCESS], 2);
  CHECK_EQ_INT(r->by_state[FLOWLUA_TASK_FAILED], 2);

  CHECK_EQ_INT(d->n_graph_keys, 3);
  if (d->n_graph_keys == 3) {
    CHECK_EQ_STR(d->graph_keys[0], "fetch");
    CHECK_EQ_STR(d->graph_keys[1], "m");
    CHECK_EQ_STR(d->graph_keys[2], "load");
  }
  CHECK_EQ_INT(d->edges_state, FL_STORE_EDGES_RECORDED);
  CHECK_EQ_INT(d->n_edges, 3);
  if (d->n_edges == 3) {
    CHECK(d->edges[0].from == 0 && d->edges[0].to == 1 && !d->edges[0].ordering);
    CHECK(d->edges[1].from == 1 && d->edges[1].to == 2 && d->edges[1].ordering);
    CHECK(d->edges[2].from == 0 && d->edges[2].to == 2 && d->edges[2].ordering);
  }

  /* in declaration order, every field */
  CHECK_EQ_INT(d->n_tasks, 5);
  if (d->n_tasks == 5) {
    CHECK_EQ_STR(d->tasks[0].key, "fetch");
    CHECK_EQ_STR(d->tasks[1].key, "m");
    CHECK_EQ_STR(d->tasks[2].key, "m[1]");
    CHECK_EQ_STR(d->tasks[3].key, "m[2]");
    CHECK_EQ_STR(d->tasks[4].key, "load");
  }
  const fl_store_task_row *t = task(d, "fetch");
  if (t) {
    static const char want[] = ODD_RESULT;
    CHECK_EQ_STR(t->task, "fetch");
    CHECK_EQ_INT(t->state, FLOWLUA_TASK_SUCCESS);
    CHECK_EQ_INT(t->result_kind, FL_STORE_RESULT_JSON);
    CHECK_EQ_INT(t->result_len, sizeof want - 1);
    CHECK(t->result && memcmp(t->result, want, sizeof want) == 0);
    CHECK(t->started_at == 200.5 && t->ended_at == 201);
    CHECK_EQ_INT(t->attempts, 1);
    CHECK(t->error == NULL);
    /* a worker row for an attempt it never made is not believed */
    CHECK(t->worker_host == NULL && t->worker_pid == 0);
    CHECK(fl_store_task_reusable(t));
  }
  t = task(d, "m");
  if (t) {
    CHECK_EQ_INT(t->map_index, 0);
    CHECK_EQ_INT(t->result_kind, FL_STORE_RESULT_OPAQUE);
    CHECK(t->result == NULL && t->result_len == 0);
    CHECK(!fl_store_task_reusable(t));
  }
  t = task(d, "m[2]");
  if (t) {
    CHECK_EQ_STR(t->task, "square");
    CHECK_EQ_INT(t->map_index, 2);
    CHECK_EQ_INT(t->state, FLOWLUA_TASK_FAILED);
    CHECK_EQ_STR(t->error, "bad");
    /* a result of kind none is not read */
    CHECK(t->result == NULL && t->result_kind == FL_STORE_RESULT_NONE);
  }
  t = task(d, "m[1]");
  if (t) {
    CHECK_EQ_INT(t->result_len, 1);
    CHECK_EQ_STR(t->result, "1");
  }
  t = task(d, "load");
  if (t) {
    CHECK_EQ_INT(t->state, FLOWLUA_TASK_FAILED);
    CHECK_EQ_INT(t->attempts, 2);
    CHECK_EQ_STR(t->error, "boom2");
    CHECK(t->started_at == 201.75 && t->ended_at == 206);
    /* its latest attempt's worker */
    CHECK_EQ_STR(t->worker_host, "w2");
    CHECK_EQ_INT(t->worker_pid, 8);
  }
  CHECK(fl_store_detail_find(d, "nope") == NULL);
  CHECK(d->resumed == NULL);

  /* what a resume checks, on a detail from PostgreSQL */
  const char *keys[] = {"fetch", "m", "load"};
  CHECK_EQ_INT(fl_store_check_resume(d, "etl", keys, 3, 0, NULL), FLOWLUA_OK);
  fl_store_run_detail_free(d);

  /* counts recorded; edges none */
  CHECK_EQ_INT(fl__pg_load_run(conn, "aaaa1111", "etl", &d), FLOWLUA_OK);
  if (d) {
    CHECK_EQ_INT(d->run.n_tasks, 2);
    CHECK_EQ_INT(d->run.by_state[FLOWLUA_TASK_SUCCESS], 2);
    CHECK_EQ_INT(d->edges_state, FL_STORE_EDGES_NONE);
    CHECK(d->n_edges == 0 && d->edges == NULL);
    CHECK_EQ_INT(d->n_graph_keys, 2);
    t = task(d, "extract");
    if (t) {
      CHECK_EQ_STR(t->result, "[1,2,3]");
      CHECK_EQ_INT(t->result_len, 7);
    }
    t = task(d, "load");
    if (t) CHECK(t->result == NULL && t->result_kind == FL_STORE_RESULT_NONE);
  }
  fl_store_run_detail_free(d);

  /* an edge naming no key, an edge of no integers: damaged; counts that
     are not an object are counted, an unknown state kept as -1 */
  CHECK_EQ_INT(fl__pg_load_run(conn, "bbbb", NULL, &d), FLOWLUA_OK);
  if (d) {
    CHECK_EQ_INT(d->edges_state, FL_STORE_EDGES_DAMAGED);
    CHECK(d->n_edges == 0);
    CHECK_EQ_INT(d->run.n_tasks, 3);
    CHECK_EQ_INT(d->run.by_state[FLOWLUA_TASK_SUCCESS], 1);
    CHECK_EQ_INT(d->run.by_state[FLOWLUA_TASK_RUNNING], 1);
    t = task(d, "c");
    if (t) CHECK(t->state == -1 && t->started_at == 0 && t->ended_at == 0);
  }
  fl_store_run_detail_free(d);
  CHECK_EQ_INT(fl__pg_load_run(conn, "ffff", NULL, &d), FLOWLUA_OK);
  if (d) {
    CHECK_EQ_INT(d->edges_state, FL_STORE_EDGES_DAMAGED);
    CHECK_EQ_INT(d->run.n_tasks, 0); /* {}: none recorded */
    CHECK_EQ_INT(d->n_tasks, 1);
  }
  fl_store_run_detail_free(d);

  /* a run with nothing but its row */
  CHECK_EQ_INT(fl__pg_load_run(conn, "cccc3", NULL, &d), FLOWLUA_OK);
  if (d) {
    CHECK(d->n_tasks == 0 && d->n_graph_keys == 0 && d->run.n_tasks == 0);
    CHECK_EQ_INT(d->edges_state, FL_STORE_EDGES_NONE);
    CHECK(fl_store_detail_find(d, "a") == NULL);
  }
  fl_store_run_detail_free(d);
}

/* Edges in every form a history may hold: those flowlua writes (parsed
   by pg_read.c), those it leaves to SQL, and damaged ones; each read as
   store_read.c reads it (three keys: a, b, c). */
static void test_edge_forms(void) {
  static const struct {
    const char *edges;
    int state;
    const char *orderings; /* of the recorded edges, '0'/'1' each */
  } cases[] = {
      {"[]", FL_STORE_EDGES_RECORDED, ""},
      {"[[0, 2, true], [1, 2, 0.5], [0, 1, 2], [1, 0, null], [2,2,false]]",
       FL_STORE_EDGES_RECORDED, "10100"},
      {"[[-0, 1, -3]]", FL_STORE_EDGES_RECORDED, "1"},
      /* a third element of another kind: SQL reads it */
      {"[[0, 1, \"x\"], [0, 2, \"1\"], [1, 2, {\"a\": 1}], [2, 0, [1]]]",
       FL_STORE_EDGES_RECORDED, "0100"},
      {"[[0, 1, \"x\"], [0, 3, true]]", FL_STORE_EDGES_DAMAGED, ""},
      {"[[0, 1]]", FL_STORE_EDGES_DAMAGED, ""},
      {"[[0, 1, true, 4]]", FL_STORE_EDGES_DAMAGED, ""},
      {"[[0, -1, true]]", FL_STORE_EDGES_DAMAGED, ""},
      {"[[0, 3, true]]", FL_STORE_EDGES_DAMAGED, ""},
      {"[[0, 99999999999999999999999, true]]", FL_STORE_EDGES_DAMAGED, ""},
      {"[[0, \"1\", true]]", FL_STORE_EDGES_DAMAGED, ""},
      {"[[0.0, 1, true]]", FL_STORE_EDGES_DAMAGED, ""},
      {"[[0, 1, true], \"x\"]", FL_STORE_EDGES_DAMAGED, ""},
      {"[0]", FL_STORE_EDGES_DAMAGED, ""},
      {"{\"a\": 1}", FL_STORE_EDGES_DAMAGED, ""},
      {"\"x\"", FL_STORE_EDGES_DAMAGED, ""},
      {"null", FL_STORE_EDGES_DAMAGED, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char q[1024];
    snprintf(q, sizeof q,
             "INSERT INTO flow_run (id, run_id, flow, state, started_at)"
             " VALUES (%zu, 'edges-%zu', 'edges', 'Success', 0);"
             "INSERT INTO run_graph (run, keys, edges) VALUES"
             " (%zu, '[\"a\", \"b\", \"c\"]', $e$%s$e$)",
             100 + i, i, 100 + i, cases[i].edges);
    if (sql(q)) continue;
    char id[32];
    snprintf(id, sizeof id, "edges-%zu", i);
    fl_store_run_detail *d = NULL;
    CHECK_EQ_INT(fl__pg_load_run(conn, id, "edges", &d), FLOWLUA_OK);
    if (!d) continue;
    char got[16] = "";
    for (size_t e = 0; e < d->n_edges && e < sizeof got - 1; e++)
      got[e] = d->edges[e].ordering ? '1' : '0';
    if (d->edges_state != cases[i].state || strcmp(got, cases[i].orderings))
      fprintf(stderr, "  edges %s\n", cases[i].edges);
    CHECK_EQ_INT(d->edges_state, cases[i].state);
    CHECK_EQ_STR(got, cases[i].orderings);
    if (d->edges_state == FL_STORE_EDGES_RECORDED && d->n_edges > 1)
      CHECK(d->edges[0].from == 0 && d->edges[1].to == 2);
    fl_store_run_detail_free(d);
  }
}

/* ---- attempts and fire times --------------------------------------------------- */

static void test_attempts(void) {
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl__pg_load_run(conn, "aaaa2222", NULL, &d), FLOWLUA_OK);
  if (!d) return;
  fl_store_attempt_list l;
  CHECK_EQ_INT(fl__pg_load_attempts(conn, d, &l), FLOWLUA_OK);
  /* fetch 1, m[1] 1, m[2] 1, load 1 and 2; m (a map, no attempt) none */
  CHECK_EQ_INT(l.n, 5);
  if (l.n == 5) {
    const fl_store_attempt *a = &l.items[0];
    CHECK_EQ_INT(a->task, 0);
    CHECK_EQ_INT(a->attempt, 1);
    CHECK_EQ_INT(a->state, FLOWLUA_TASK_SUCCESS);
    CHECK(a->started_at == 200.5 && a->ended_at == 201 && a->error == NULL);
    CHECK(a->worker_host == NULL && a->worker_pid == 0);
    CHECK_EQ_INT(l.items[1].task, 2);
    CHECK_EQ_INT(l.items[2].task, 3);
    CHECK_EQ_INT(l.items[2].state, FLOWLUA_TASK_FAILED);
    CHECK_EQ_STR(l.items[2].error, "bad");
    a = &l.items[3];
    CHECK_EQ_INT(a->task, 4);
    CHECK_EQ_INT(a->attempt, 1);
    CHECK_EQ_INT(a->state, FLOWLUA_TASK_RETRYING);
    CHECK(a->started_at == 201.75 && a->ended_at == 203);
    CHECK_EQ_STR(a->error, "boom1");
    CHECK_EQ_STR(a->worker_host, "w1");
    CHECK_EQ_INT(a->worker_pid, 7);
    a = &l.items[4];
    CHECK_EQ_INT(a->task, 4);
    CHECK_EQ_INT(a->attempt, 2);
    CHECK_EQ_INT(a->state, FLOWLUA_TASK_FAILED);
    CHECK(a->started_at == 204 && a->ended_at == 206);
    CHECK_EQ_STR(a->error, "boom2");
    CHECK_EQ_STR(a->worker_host, "w2");
    CHECK_EQ_INT(a->worker_pid, 8);
  }
  fl_store_attempt_list_free(&l);
  fl_store_run_detail_free(d);

  /* still running: the open attempt has no end */
  CHECK_EQ_INT(fl__pg_load_run(conn, "bbbb", NULL, &d), FLOWLUA_OK);
  if (!d) return;
  CHECK_EQ_INT(fl__pg_load_attempts(conn, d, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 2);
  if (l.n == 2) {
    CHECK_EQ_INT(l.items[1].task, 1);
    CHECK_EQ_INT(l.items[1].state, FLOWLUA_TASK_RUNNING);
    CHECK(l.items[1].started_at == 302 && l.items[1].ended_at == 0);
  }
  fl_store_attempt_list_free(&l);
  fl_store_run_detail_free(d);
}

static void test_succeeded_fires(void) {
  double *t = NULL;
  size_t n = 9;
  CHECK_EQ_INT(fl__pg_succeeded_fires(conn, "cron", 1000, 1120, &t, &n), FLOWLUA_OK);
  CHECK_EQ_INT(n, 2); /* 1060 twice, once; 1090 failed; 1180 beyond */
  if (n == 2) CHECK(t[0] == 1000 && t[1] == 1060);
  free(t);
  CHECK_EQ_INT(fl__pg_succeeded_fires(conn, "cron", -INFINITY, INFINITY, &t, &n),
               FLOWLUA_OK);
  CHECK_EQ_INT(n, 3);
  if (n == 3) CHECK(t[2] == 1180);
  free(t);
  CHECK_EQ_INT(fl__pg_succeeded_fires(conn, "cron", 1000.5, 1059.9, &t, &n),
               FLOWLUA_OK);
  CHECK(n == 0 && t == NULL);
  free(t);
  CHECK_EQ_INT(fl__pg_succeeded_fires(conn, "cr\xffon", 0, 2000, &t, &n), FLOWLUA_OK);
  CHECK(n == 0 && t == NULL);
  free(t);
}

/* A statement the server refuses: the readers say what they were doing
   and why, as fl_pg_query words it. */
static void test_errors(void) {
  CHECK_EQ_INT(sql("ALTER TABLE task_run RENAME TO task_run_gone"), FLOWLUA_OK);
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl__pg_load_run(conn, "aaaa2222", NULL, &d), FLOWLUA_EIO);
  CHECK(d == NULL);
  CHECK_CONTAINS(message(), "cannot read a run's task runs: relation \"task_run\" does not exist");
  fl_store_run_list l;
  CHECK_EQ_INT(fl__pg_list_runs(conn, "etl", 0, &l), FLOWLUA_EIO);
  CHECK_CONTAINS(message(), "cannot count a run's task runs: relation");
  fl_store_run_list_free(&l);
  CHECK_EQ_INT(sql("ALTER TABLE task_run_gone RENAME TO task_run"), FLOWLUA_OK);
}

/* ---- a big run ------------------------------------------------------------------ */

static void test_big_run_load_time(void) {
  enum { N = 100000 };
  CHECK_EQ_INT(sql("INSERT INTO flow_run (id, run_id, flow, state, started_at)"
                   " VALUES (1000, 'big', 'big', 'Running', 5000);"
                   "INSERT INTO run_graph (run, keys, edges) SELECT 1000,"
                   " jsonb_agg('t' || i ORDER BY i),"
                   " jsonb_agg(jsonb_build_array(i - 1, i, false) ORDER BY i)"
                   "   FILTER (WHERE i > 0)"
                   " FROM generate_series(0, 99999) i;"
                   "INSERT INTO task_run (run, n, key, task, state, state_at,"
                   " state_seq, attempts, started_at, started_seq, ended_at,"
                   " result, result_kind) SELECT 1000, i, 't' || i, 'work',"
                   " 'Success', 5001 + i / 1000.0, 2, 1, 5000 + i / 1000.0, 1,"
                   " 5001 + i / 1000.0, '{\"i\":' || i || ',\"s\":\"text\"}', 1"
                   " FROM generate_series(0, 99999) i;"
                   "ANALYZE task_run; ANALYZE run_graph; ANALYZE flow_run;"),
               FLOWLUA_OK);
  fl_store_run_detail *d = NULL;
  double best = 1e9;
  for (int i = 0; i < 3; i++) { /* the first warms the server's caches */
    double t0 = now_mono();
    int rc = fl__pg_load_run(conn, "big", NULL, &d);
    double dt = now_mono() - t0;
    CHECK_EQ_INT(rc, FLOWLUA_OK);
    if (dt < best) best = dt;
    if (i < 2) fl_store_run_detail_free(d);
  }
  fprintf(stderr, "  fl__pg_load_run of a %d-task run: %.1f ms (best of 3)\n",
          N, best * 1000);
  if (d) {
    CHECK_EQ_INT(d->n_tasks, N);
    CHECK_EQ_INT(d->n_graph_keys, N);
    CHECK_EQ_INT(d->n_edges, N - 1);
    CHECK_EQ_INT(d->edges_state, FL_STORE_EDGES_RECORDED);
    CHECK_EQ_INT(d->run.n_tasks, N);
    const fl_store_task_row *t = task(d, "t99999");
    if (t) CHECK_EQ_STR(t->result, "{\"i\":99999,\"s\":\"text\"}");
    fl_store_attempt_list l;
    double t0 = now_mono();
    CHECK_EQ_INT(fl__pg_load_attempts(conn, d, &l), FLOWLUA_OK);
    fprintf(stderr, "  fl__pg_load_attempts of it: %.1f ms\n",
            (now_mono() - t0) * 1000);
    CHECK_EQ_INT(l.n, N);
    fl_store_attempt_list_free(&l);
    fl_store_run_list rl;
    t0 = now_mono();
    CHECK_EQ_INT(fl__pg_list_runs(conn, "big", 0, &rl), FLOWLUA_OK);
    fprintf(stderr, "  fl__pg_list_runs counting it: %.1f ms\n",
            (now_mono() - t0) * 1000);
    if (rl.n == 1) CHECK_EQ_INT(rl.rows[0].n_tasks, N);
    fl_store_run_list_free(&rl);
  }
  fl_store_run_detail_free(d);
}

int main(void) {
  uri = getenv("FLOWLUA_TEST_PG");
  if (!uri) {
    fprintf(stderr, "test_pg_read: run it through tests/support/pg/with_pg.py"
                    " (FLOWLUA_TEST_PG is not set)\n");
    return 1;
  }
  char err[4096];
  if (fl_pg_connect(uri, 60, &conn, err, sizeof err) != FLOWLUA_OK) {
    fprintf(stderr, "test_pg_read: %s\n", err);
    return 1;
  }
  if (sql("DROP SCHEMA IF EXISTS flowlua CASCADE") || fl_pg_migrate(conn)) {
    fprintf(stderr, "test_pg_read: %s\n", fl_pg_errmsg(conn));
    fl_pg_close(conn);
    return 1;
  }
  RUN(test_same_as_sqlite);
  /* the other tests read a history of their own */
  if (sql("DROP SCHEMA flowlua CASCADE") || fl_pg_migrate(conn) || setup()) {
    fprintf(stderr, "test_pg_read: %s\n", fl_pg_errmsg(conn));
    fl_pg_close(conn);
    return 1;
  }
  RUN(test_list_runs);
  RUN(test_find_run);
  RUN(test_load_run);
  RUN(test_edge_forms);
  RUN(test_attempts);
  RUN(test_succeeded_fires);
  RUN(test_errors);
  RUN(test_big_run_load_time);
  fl_pg_close(conn);
  return check_summary();
}
