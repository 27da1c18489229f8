/*
 * test_pg_copy.c — flowlua_state_copy (store_copy.c, pg_copy.c) against a
 * real server: a SQLite history written with the store's own API (runs
 * that failed, were retried, resumed, ran worker attempts, a big one whose
 * task runs are packed into task_pack, fire claims and events, cached
 * results, odd bytes) copied into PostgreSQL and back into a new SQLite
 * file, every run loaded from each side and compared field by field; then
 * the refusals, each with its message and nothing written to TO: a target
 * that holds runs, a Running run in FROM, FROM missing, TO unreachable
 * (with the password kept out of the message). And the time a copy of
 * 1,000 runs of 100 task runs takes into PostgreSQL (printed).
 *
 * Run through tests/support/pg/with_pg.py, which gives the server's URI in
 * FLOWLUA_TEST_PG (ctest does: unit/test_pg_copy).
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "flowlua.h"
#include "pg_conn.h"
#include "store.h"

static const char *uri;
static char dir[] = "/tmp/flowlua-pgcopy-XXXXXX";

#define T0 1764900000.25
#define BIG_TASKS 600 /* all ending before the first flush: packed */
#define ODD_RESULT "{\"q\":\"say \\\"hi\\\"\",\"u\":\"\xc3\xa9\xf0\x9f\x98\x80\",\"z\":\"a\\u0000b\",\"n\":-0.0}"

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *path_in(const char *name) {
  char *p = NULL;
  if (asprintf(&p, "%s/%s", dir, name) < 0) abort();
  return p;
}

static fl_store *open_store(const char *path) {
  fl_store *st = NULL;
  char err[512];
  int rc = fl_store_open(path, NULL, &st, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  open %s: %s\n", path, err);
  return st;
}

/* A finished owner, so that opening the history for the copy marks
   nothing Crashed that the test did not mean to be. */
static fl_store_run *begin(fl_store *st, const char *id, const char *flow,
                           double started, const char *resumed_from,
                           double scheduled) {
  static const char *const keys[] = {"fetch", "parse", "load", "m"};
  static const fl_store_edge edges[] = {{0, 1, 0}, {1, 2, 0}, {0, 2, 1}};
  fl_store_run_info info = {.run_id = id, .flow = flow,
                            .script = "flows/x.lua",
                            .params_json = "{\"n\":1,\"s\":\"\\u00e9\"}",
                            .started_at = started, .scheduled_at = scheduled,
                            .keys = keys, .n_keys = 4, .edges = edges,
                            .n_edges = 3, .resumed_from = resumed_from};
  fl_store_run *run = NULL;
  int rc = fl_store_run_begin(st, &info, &run);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  run_begin: %s\n", fl_store_errmsg(st));
  return run;
}

static uint32_t add(fl_store_run *run, const char *key, const char *task,
                    int map_index) {
  uint32_t n = UINT32_MAX;
  CHECK_EQ_INT(fl_store_task_add(run, key, task, map_index, &n), FLOWLUA_OK);
  return n;
}

static void st_(fl_store_run *run, uint32_t t, int s, int attempt, double at,
                const char *err) {
  CHECK_EQ_INT(fl_store_task_state(run, t, s, attempt, at, err), FLOWLUA_OK);
}

static void result(fl_store_run *run, uint32_t t, const char *json) {
  CHECK_EQ_INT(fl_store_task_result(run, t, json, json ? strlen(json) : 0),
               FLOWLUA_OK);
}

/* A run that failed after a retry, with a worker attempt, a map and an
   odd result; ended at `started + 5`. */
static void failed_run(fl_store *st, const char *id, double started) {
  fl_store_run *run = begin(st, id, "etl", started, NULL, 0);
  if (!run) return;
  uint32_t f = add(run, "fetch", "fetch", 0);
  uint32_t p = add(run, "parse", "parse", 0);
  uint32_t l = add(run, "load", "load", 0);
  st_(run, f, FLOWLUA_TASK_RUNNING, 1, started + 0.1, NULL);
  CHECK_EQ_INT(fl_store_task_worker(run, f, 1, "elsewhere", 4242), FLOWLUA_OK);
  st_(run, f, FLOWLUA_TASK_RETRYING, 1, started + 0.2, "boom \"1\"");
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK); /* a row, then events */
  st_(run, f, FLOWLUA_TASK_RUNNING, 2, started + 0.3, NULL);
  st_(run, f, FLOWLUA_TASK_SUCCESS, 2, started + 0.4, NULL);
  result(run, f, ODD_RESULT);
  st_(run, p, FLOWLUA_TASK_RUNNING, 1, started + 0.5, NULL);
  st_(run, p, FLOWLUA_TASK_FAILED, 1, started + 0.6, "parse: bad\nline 2");
  uint32_t m = add(run, "m", "m", 0);
  st_(run, m, FLOWLUA_TASK_RUNNING, 1, started + 0.7, NULL);
  for (int i = 1; i <= 3; i++) {
    char key[16];
    snprintf(key, sizeof key, "m[%d]", i);
    uint32_t e = add(run, key, "m", i);
    st_(run, e, FLOWLUA_TASK_RUNNING, 1, started + 0.7 + i / 100.0, NULL);
    st_(run, e, FLOWLUA_TASK_SUCCESS, 1, started + 0.8 + i / 100.0, NULL);
    result(run, e, i == 2 ? NULL : "[1,2.5,\"x\"]");
  }
  st_(run, m, FLOWLUA_TASK_SUCCESS, 1, started + 0.9, NULL);
  st_(run, l, FLOWLUA_TASK_TRIGGER_FAILED, 0, started + 1, "upstream failed");
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_FAILED, started + 5,
                                "1 task failed"),
               FLOWLUA_OK);
}

/* A run of n task runs that all end before anything is flushed: the
   store packs them into task_pack rows. */
static void big_run(fl_store *st, const char *id, double started, int n,
                    double scheduled) {
  fl_store_run *run = begin(st, id, "big", started, NULL, scheduled);
  if (!run) return;
  for (int i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "t%d", i);
    uint32_t t = add(run, key, "t", 0);
    double at = started + i / 1000.0;
    st_(run, t, FLOWLUA_TASK_RUNNING, 1, at, NULL);
    st_(run, t, FLOWLUA_TASK_SUCCESS, 1, at + 0.0005, NULL);
    char json[32];
    snprintf(json, sizeof json, "{\"i\":%d}", i);
    result(run, t, json);
  }
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, started + 3, NULL),
               FLOWLUA_OK);
}

/* The history copied: a failed run, its resume, a big packed run, fire
   claims and events, the cache. */
static void build_history(const char *path) {
  fl_store *st = open_store(path);
  if (!st) return;
  failed_run(st, "aaaa1111-0000-4000-8000-000000000001", T0);
  /* The resume: fetch kept (Cached, no attempt), parse run again. */
  fl_store_run *run = begin(st, "aaaa2222-0000-4000-8000-000000000002", "etl",
                            T0 + 100, "aaaa1111-0000-4000-8000-000000000001",
                            0);
  if (run) {
    uint32_t f = add(run, "fetch", "fetch", 0);
    uint32_t p = add(run, "parse", "parse", 0);
    st_(run, f, FLOWLUA_TASK_CACHED, 0, T0 + 100.1, NULL);
    result(run, f, ODD_RESULT);
    st_(run, p, FLOWLUA_TASK_RUNNING, 1, T0 + 100.2, NULL);
    st_(run, p, FLOWLUA_TASK_SUCCESS, 1, T0 + 100.3, NULL);
    CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 101, NULL),
                 FLOWLUA_OK);
  }
  big_run(st, "bbbb3333-0000-4000-8000-000000000003", T0 + 200, BIG_TASKS,
          T0 + 199);
  CHECK_EQ_INT(fl_store_claim_fire(st, "big", T0 + 199, T0 + 199), 1);
  CHECK_EQ_INT(fl_store_claim_fire(st, "big", T0 + 259, T0 + 259), 1);
  CHECK_EQ_INT(fl_store_fire_event(st, "big", "skipped", T0 + 319, 0, 1,
                                   "a run of big was still going", T0 + 319),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_fire_event(st, "big", "missed", T0 + 379, T0 + 439, 2,
                                   "2 fire times missed", T0 + 440),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_cache_put(st, "fetch", "k1", ODD_RESULT,
                                  strlen(ODD_RESULT), T0 + 1),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_cache_put(st, "parse", "k2", "42", 2, T0 + 2),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK);
  fl_store_close(st);
}

/* ---- comparing two histories ------------------------------------------------ */

static void eq_str(const char *a, const char *b, const char *what,
                   const char *run) {
  if ((!a && !b) || (a && b && strcmp(a, b) == 0)) {
    CHECK(1);
    return;
  }
  CHECK_EQ_STR(a ? a : "(null)", b ? b : "(null)");
  fprintf(stderr, "  %s of run %s\n", what, run);
}

static void compare_runs(const fl_store_run_row *a, const fl_store_run_row *b) {
  const char *id = a->run_id;
  eq_str(a->run_id, b->run_id, "run_id", id);
  eq_str(a->flow, b->flow, "flow", id);
  eq_str(a->script, b->script, "script", id);
  eq_str(a->params_json, b->params_json, "params", id);
  eq_str(a->error, b->error, "error", id);
  eq_str(a->resumed_from, b->resumed_from, "resumed_from", id);
  eq_str(a->owner_host, b->owner_host, "owner_host", id);
  CHECK_EQ_INT(a->state, b->state);
  CHECK_EQ_DBL(a->scheduled_at, b->scheduled_at, 0);
  CHECK_EQ_DBL(a->started_at, b->started_at, 0);
  CHECK_EQ_DBL(a->ended_at, b->ended_at, 0);
  CHECK_EQ_INT(a->n_tasks, b->n_tasks);
  CHECK_EQ_INT(a->owner_pid, b->owner_pid);
  for (int s = 0; s < FL_STORE_TASK_STATES; s++)
    CHECK_EQ_INT(a->by_state[s], b->by_state[s]);
}

static void compare_details(fl_store *sa, const fl_store_run_detail *a,
                            fl_store *sb, const fl_store_run_detail *b) {
  const char *id = a->run.run_id;
  compare_runs(&a->run, &b->run);
  CHECK_EQ_INT(a->n_graph_keys, b->n_graph_keys);
  for (size_t k = 0; k < a->n_graph_keys && k < b->n_graph_keys; k++)
    eq_str(a->graph_keys[k], b->graph_keys[k], "graph key", id);
  CHECK_EQ_INT(a->edges_state, b->edges_state);
  CHECK_EQ_INT(a->n_edges, b->n_edges);
  for (size_t k = 0; k < a->n_edges && k < b->n_edges; k++) {
    CHECK_EQ_INT(a->edges[k].from, b->edges[k].from);
    CHECK_EQ_INT(a->edges[k].to, b->edges[k].to);
    CHECK_EQ_INT(a->edges[k].ordering, b->edges[k].ordering);
  }
  CHECK_EQ_INT(a->n_tasks, b->n_tasks);
  for (size_t i = 0; i < a->n_tasks && i < b->n_tasks; i++) {
    const fl_store_task_row *x = &a->tasks[i], *y = &b->tasks[i];
    eq_str(x->key, y->key, "task key", id);
    eq_str(x->task, y->task, "task name", id);
    eq_str(x->error, y->error, "task error", id);
    eq_str(x->worker_host, y->worker_host, "worker host", id);
    CHECK_EQ_INT(x->result_len, y->result_len);
    CHECK(x->result_len == y->result_len &&
          (x->result_len == 0 || memcmp(x->result, y->result, x->result_len) == 0));
    CHECK_EQ_INT(x->map_index, y->map_index);
    CHECK_EQ_INT(x->state, y->state);
    CHECK_EQ_INT(x->attempts, y->attempts);
    CHECK_EQ_INT(x->result_kind, y->result_kind);
    CHECK_EQ_INT(x->worker_pid, y->worker_pid);
    CHECK_EQ_DBL(x->started_at, y->started_at, 0);
    CHECK_EQ_DBL(x->ended_at, y->ended_at, 0);
  }
  fl_store_attempt_list la = {0}, lb = {0};
  CHECK_EQ_INT(fl_store_load_attempts(sa, a, &la), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_load_attempts(sb, b, &lb), FLOWLUA_OK);
  CHECK_EQ_INT(la.n, lb.n);
  for (size_t i = 0; i < la.n && i < lb.n; i++) {
    const fl_store_attempt *x = &la.items[i], *y = &lb.items[i];
    CHECK_EQ_INT(x->task, y->task);
    CHECK_EQ_INT(x->attempt, y->attempt);
    CHECK_EQ_INT(x->state, y->state);
    CHECK_EQ_DBL(x->started_at, y->started_at, 0);
    CHECK_EQ_DBL(x->ended_at, y->ended_at, 0);
    eq_str(x->error, y->error, "attempt error", id);
    eq_str(x->worker_host, y->worker_host, "attempt worker", id);
    CHECK_EQ_INT(x->worker_pid, y->worker_pid);
  }
  fl_store_attempt_list_free(&la);
  fl_store_attempt_list_free(&lb);
}

/* Every run of a and b, the same, field by field; their caches and fire
   claims too. */
static void compare_histories(const char *pa, const char *pb) {
  fl_store *a = open_store(pa), *b = open_store(pb);
  if (!a || !b) goto done;
  fl_store_run_list la = {0}, lb = {0};
  CHECK_EQ_INT(fl_store_list_runs(a, NULL, 0, &la), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_list_runs(b, NULL, 0, &lb), FLOWLUA_OK);
  CHECK_EQ_INT(la.n, 3);
  CHECK_EQ_INT(la.n, lb.n);
  for (size_t i = 0; i < la.n && i < lb.n; i++) {
    compare_runs(&la.rows[i], &lb.rows[i]);
    fl_store_run_detail *da = NULL, *db = NULL;
    CHECK_EQ_INT(fl_store_load_run(a, la.rows[i].run_id, NULL, &da), FLOWLUA_OK);
    CHECK_EQ_INT(fl_store_load_run(b, la.rows[i].run_id, NULL, &db), FLOWLUA_OK);
    if (da && db) compare_details(a, da, b, db);
    fl_store_run_detail_free(da);
    fl_store_run_detail_free(db);
  }
  fl_store_run_list_free(&la);
  fl_store_run_list_free(&lb);
  const char *json = NULL;
  size_t len = 0;
  CHECK_EQ_INT(fl_store_cache_get(b, "fetch", "k1", T0 + 10, -1, &json, &len), 1);
  CHECK(len == strlen(ODD_RESULT) && json && memcmp(json, ODD_RESULT, len) == 0);
  CHECK_EQ_INT(fl_store_cache_get(b, "parse", "k2", T0 + 10, -1, &json, &len), 1);
  double last = 0;
  CHECK_EQ_INT(fl_store_last_fire(b, "big", &last), 1);
  CHECK_EQ_DBL(last, T0 + 259, 1e-3);
  /* The copy's fire claim stands: the same time is not claimed again. */
  CHECK_EQ_INT(fl_store_claim_fire(b, "big", T0 + 259, T0 + 500), 0);
done:
  fl_store_close(a);
  fl_store_close(b);
}

/* ---- the tests ------------------------------------------------------------------ */

static flowlua *runtime(void) {
  flowlua_options o;
  flowlua_options_init(&o);
  o.state_path = ":memory:";
  flowlua *rt = NULL;
  CHECK_EQ_INT(flowlua_new(&o, &rt), FLOWLUA_OK);
  return rt;
}

static int copy(flowlua *rt, const char *from, const char *to,
                flowlua_state_copy_result *r) {
  *r = (flowlua_state_copy_result)FLOWLUA_INIT(flowlua_state_copy_result);
  int rc = flowlua_state_copy(rt, from, to, r);
  if (rc) fprintf(stderr, "  copy %s -> %s: %s\n", from, to, flowlua_errmsg(rt));
  return rc;
}

/* SQLite -> PostgreSQL -> a new SQLite file, the same history each time;
   and a new run in each copy gets an id of its own. */
static void test_round_trip(void) {
  char *src = path_in("src.db"), *back = path_in("back.db");
  build_history(src);
  /* The big run's task runs are packed in the source: read through the
     view, they must come out the same. */
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  long long packs = -1;
  if (sqlite3_open_v2(src, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, "SELECT count(*) FROM task_pack", -1, &q,
                         NULL) == SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW)
    packs = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  CHECK(packs > 0);
  /* A paused flow is copied paused, both ways. */
  fl_store *paused = open_store(src);
  int changed = 0;
  if (paused) {
    CHECK_EQ_INT(fl_store_set_pause(paused, "etl", 1, "ann@h1", T0 + 7, &changed),
                 FLOWLUA_OK);
    CHECK_EQ_INT(changed, 1);
    fl_store_close(paused);
  }
  flowlua *rt = runtime();
  flowlua_state_copy_result r = FLOWLUA_INIT(flowlua_state_copy_result);
  CHECK_EQ_INT(copy(rt, src, uri, &r), FLOWLUA_OK);
  CHECK_EQ_INT(r.runs, 3);
  CHECK_EQ_INT(r.task_runs, 3 + 3 + 1 + 2 + BIG_TASKS);
  CHECK_EQ_INT(r.state_changes, 2);
  CHECK_EQ_INT(r.fire_claims, 2);
  CHECK_EQ_INT(r.fire_events, 2);
  CHECK_EQ_INT(r.cache_entries, 2);
  CHECK(strstr(r.to_name, "***") != NULL);
  compare_histories(src, uri);
  CHECK_EQ_INT(copy(rt, uri, back, &r), FLOWLUA_OK);
  CHECK_EQ_INT(r.runs, 3);
  CHECK_EQ_INT(r.task_runs, 3 + 3 + 1 + 2 + BIG_TASKS);
  compare_histories(src, back);
  const char *copies[2] = {uri, back};
  for (int i = 0; i < 2; i++) {
    fl_store *c = open_store(copies[i]);
    fl_store_pause p;
    if (!c) continue;
    CHECK_EQ_INT(fl_store_get_pause(c, "etl", &p), FLOWLUA_OK);
    CHECK_EQ_INT(p.paused, 1);
    CHECK(p.since == T0 + 7);
    CHECK_EQ_STR(p.by ? p.by : "", "ann@h1");
    fl_store_pause_clear(&p);
    fl_store_close(c);
  }
  /* A run started after the copy, on either side, is a run of its own. */
  fl_store *st = open_store(uri);
  if (st) {
    fl_store_run *run = begin(st, "cccc4444-0000-4000-8000-000000000004", "etl",
                              T0 + 900, NULL, 0);
    if (run)
      CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 901, NULL),
                   FLOWLUA_OK);
    fl_store_run_list l = {0};
    CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &l), FLOWLUA_OK);
    CHECK_EQ_INT(l.n, 4);
    fl_store_run_list_free(&l);
    fl_store_close(st);
  }
  flowlua_free(rt);
  free(src);
  free(back);
}

/* TO holds runs (PostgreSQL after the round trip, a SQLite file): refused,
   named, nothing written. */
static void test_target_not_empty(void) {
  char *src = path_in("src.db"), *back = path_in("back.db");
  flowlua *rt = runtime();
  flowlua_state_copy_result r = FLOWLUA_INIT(flowlua_state_copy_result);
  CHECK_EQ_INT(flowlua_state_copy(rt, src, uri, &r), FLOWLUA_ESTATE);
  CHECK_CONTAINS(flowlua_errmsg(rt), "holds 4 runs already");
  CHECK_CONTAINS(flowlua_errmsg(rt), "***");
  CHECK(strstr(flowlua_errmsg(rt), "flowlua_test:") == NULL ||
        strstr(flowlua_errmsg(rt), ":***@") != NULL);
  CHECK_EQ_INT(flowlua_state_copy(rt, src, back, &r), FLOWLUA_ESTATE);
  CHECK_CONTAINS(flowlua_errmsg(rt), back);
  CHECK_CONTAINS(flowlua_errmsg(rt), "holds 3 runs already");
  fl_store *st = open_store(uri);
  fl_store_run_list l = {0};
  if (st) CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 4);
  fl_store_run_list_free(&l);
  fl_store_close(st);
  flowlua_free(rt);
  free(src);
  free(back);
}

/* A count that differs after the rows went in (here a cached result the
   target held already, kept, so one of the source's did not go in): the
   copy fails, names what differs, and keeps nothing. */
static void test_count_mismatch(void) {
  char *src = path_in("src.db"), *dst = path_in("cached.db");
  fl_store *st = open_store(dst);
  if (st) {
    CHECK_EQ_INT(fl_store_cache_put(st, "fetch", "k1", "1", 1, T0), FLOWLUA_OK);
    CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK);
    fl_store_close(st);
  }
  flowlua *rt = runtime();
  flowlua_state_copy_result r = FLOWLUA_INIT(flowlua_state_copy_result);
  CHECK_EQ_INT(flowlua_state_copy(rt, src, dst, &r), FLOWLUA_EIO);
  CHECK_CONTAINS(flowlua_errmsg(rt), "copied 1 of 2 cache entries");
  st = open_store(dst);
  fl_store_run_list l = {0};
  if (st) CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &l), FLOWLUA_OK);
  CHECK_EQ_INT(l.n, 0);
  fl_store_run_list_free(&l);
  fl_store_close(st);
  flowlua_free(rt);
  free(src);
  free(dst);
}

/* A run Running in FROM (its driver, this process, is alive): refused
   before TO is opened, so no file appears there. */
static void test_running_refused(void) {
  char *src = path_in("running.db"), *dst = path_in("never.db");
  fl_store *st = open_store(src);
  fl_store_run *run = st ? begin(st, "dddd5555-0000-4000-8000-000000000005",
                                 "etl", T0, NULL, 0)
                         : NULL;
  CHECK_EQ_INT(st ? fl_store_flush(st) : -1, FLOWLUA_OK);
  flowlua *rt = runtime();
  flowlua_state_copy_result r = FLOWLUA_INIT(flowlua_state_copy_result);
  CHECK_EQ_INT(flowlua_state_copy(rt, src, dst, &r), FLOWLUA_ESTATE);
  CHECK_CONTAINS(flowlua_errmsg(rt), "1 run is still Running");
  CHECK_CONTAINS(flowlua_errmsg(rt), "marked Crashed");
  CHECK_CONTAINS(flowlua_errmsg(rt), src);
  struct stat sb;
  CHECK(stat(dst, &sb) != 0);
  if (run) CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 1, NULL),
                        FLOWLUA_OK);
  fl_store_close(st);
  flowlua_free(rt);
  free(src);
  free(dst);
}

static void test_from_missing(void) {
  char *src = path_in("nothere.db"), *dst = path_in("never2.db");
  flowlua *rt = runtime();
  flowlua_state_copy_result r = FLOWLUA_INIT(flowlua_state_copy_result);
  CHECK_EQ_INT(flowlua_state_copy(rt, src, dst, &r), FLOWLUA_EINVAL);
  CHECK_CONTAINS(flowlua_errmsg(rt), "no run history at");
  CHECK_CONTAINS(flowlua_errmsg(rt), src);
  struct stat sb;
  CHECK(stat(dst, &sb) != 0);
  CHECK(stat(src, &sb) != 0);
  CHECK_EQ_INT(flowlua_state_copy(rt, src, ":memory:", &r), FLOWLUA_EINVAL);
  flowlua_free(rt);
  free(src);
  free(dst);
}

/* A port where nothing listens: the connect fails after its bounded
   retries, named, without the password. */
static void test_to_unreachable(void) {
  char *src = path_in("src.db");
  flowlua *rt = runtime();
  flowlua_state_copy_result r = FLOWLUA_INIT(flowlua_state_copy_result);
  const char *to = "postgresql://ann:Sekr1tPw@127.0.0.1:1/nothing";
  CHECK_EQ_INT(flowlua_state_copy(rt, src, to, &r), FLOWLUA_EIO);
  CHECK_CONTAINS(flowlua_errmsg(rt), "postgresql://ann:***@127.0.0.1:1/nothing");
  CHECK_CONTAINS(flowlua_errmsg(rt), "cannot connect");
  CHECK(strstr(flowlua_errmsg(rt), "Sekr1tPw") == NULL);
  flowlua_free(rt);
  free(src);
}

/* 1,000 runs of 100 task runs, SQLite into a fresh PostgreSQL schema: the
   time is printed (docs/manual/postgresql.md quotes it). */
static void test_timing(void) {
  char *src = path_in("timing.db");
  fl_store *st = open_store(src);
  if (!st) return;
  for (int i = 0; i < 1000; i++) {
    char id[64];
    snprintf(id, sizeof id, "eeee%04d-0000-4000-8000-000000000000", i);
    big_run(st, id, T0 + 1000 + i * 10, 100, 0);
  }
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK);
  fl_store_close(st);
  /* An empty target: the other tests' runs go with the schema. */
  fl_pg *c = NULL;
  char err[512];
  CHECK_EQ_INT(fl_pg_connect(uri, 10, &c, err, sizeof err), FLOWLUA_OK);
  if (c) CHECK_EQ_INT(fl_pg_exec(c, "DROP SCHEMA flowlua CASCADE", "drop"),
                      FLOWLUA_OK);
  fl_pg_close(c);
  const char *pg_uri = uri;
  flowlua *rt = runtime();
  flowlua_state_copy_result r = FLOWLUA_INIT(flowlua_state_copy_result);
  double t = now_mono();
  CHECK_EQ_INT(copy(rt, src, pg_uri, &r), FLOWLUA_OK);
  t = now_mono() - t;
  CHECK_EQ_INT(r.runs, 1000);
  CHECK_EQ_INT(r.task_runs, 100000);
  fprintf(stderr, "  copy of 1,000 runs x 100 task runs SQLite -> PostgreSQL: "
                  "%.2f s\n", t);
  char *back = path_in("timing-back.db");
  t = now_mono();
  CHECK_EQ_INT(copy(rt, pg_uri, back, &r), FLOWLUA_OK);
  fprintf(stderr, "  and back into a new SQLite file: %.2f s\n",
          now_mono() - t);
  flowlua_free(rt);
  free(back);
  free(src);
}

int main(void) {
  uri = getenv("FLOWLUA_TEST_PG");
  if (!uri) {
    fprintf(stderr, "test_pg_copy: run it through tests/support/pg/with_pg.py"
                    " (FLOWLUA_TEST_PG is not set)\n");
    return 1;
  }
  if (!mkdtemp(dir)) return 1;
  RUN(test_round_trip);
  RUN(test_target_not_empty);
  RUN(test_count_mismatch);
  RUN(test_running_refused);
  RUN(test_from_missing);
  RUN(test_to_unreachable);
  RUN(test_timing);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", dir);
  return check_summary();
}
