/*
 * test_pg_store.c — the store's API on a PostgreSQL history (pg_store.c),
 * end to end against a real server: a run written and read back through
 * fl_store_* as the engine does; the lease the driver's thread renews and
 * a run left by a driver that stopped renewing it marked Crashed; fire
 * claims once per fire time; the cache; a server restart between two
 * flushes survived; the password in no message; opening a history that
 * does not exist yet for reading.
 *
 * Run through tests/support/pg/with_pg.py (ctest: unit/test_pg_store),
 * which gives FLOWLUA_TEST_PG and FLOWLUA_TEST_PG_CTL. The lease thread
 * makes this one of the ThreadSanitizer tests (.ci/run).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "flowlua.h"
#include "pg_api.h"
#include "pg_conn.h"
#include "store.h"

static const char *uri;

static const double T0 = 1764346201.5;

/* One value of a query on a connection of the test's own; "" when none.
   malloc'd. */
static char *value(const char *sql) {
  fl_pg *c = NULL;
  char err[512];
  if (fl_pg_connect(uri, 10, &c, err, sizeof err)) {
    fprintf(stderr, "  %s\n", err);
    return strdup("");
  }
  PGresult *r = fl_pg_query(c, "test SQL", sql, 0, NULL);
  char *v = strdup(r && fl_pq()->ntuples(r) ? fl_pq()->getvalue(r, 0, 0) : "");
  if (!r) fprintf(stderr, "  %s\n", fl_pg_errmsg(c));
  fl_pq()->clear(r);
  fl_pg_close(c);
  return v;
}

static void reset(void) {
  free(value("DROP SCHEMA IF EXISTS flowlua CASCADE"));
}

static fl_store *open_store(void) {
  fl_store *st = NULL;
  char err[512];
  int rc = fl_store_open(uri, NULL, &st, err, sizeof err);
  if (rc) fprintf(stderr, "  %s\n", err);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  return st;
}

/* The password as the URI writes it: what no message may hold. */
static const char *password(void) {
  static char pw[256];
  const char *at = strrchr(uri, '@'), *colon = strchr(uri + strlen("postgresql://"), ':');
  size_t n = at && colon && colon < at ? (size_t)(at - colon - 1) : 0;
  snprintf(pw, sizeof pw, "%.*s", (int)n, colon ? colon + 1 : "");
  return pw;
}

static void test_run_written_and_read(void) {
  reset();
  fl_store *st = open_store();
  if (!st) return;
  CHECK(strstr(fl_store_path(st), ":***@") != NULL);
  CHECK(strstr(fl_store_path(st), password()) == NULL);
  const char *keys[] = {"a", "b"};
  fl_store_edge edge = {0, 1, 0};
  fl_store_run_info info = {.run_id = "aaaa0000-0000-4000-8000-000000000001",
                            .flow = "etl", .script = "etl.lua",
                            .params_json = "{\"n\":3}", .started_at = T0,
                            .keys = keys, .n_keys = 2, .edges = &edge,
                            .n_edges = 1};
  fl_store_run *run = NULL;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &run), FLOWLUA_OK);
  if (!run) {
    fl_store_close(st);
    return;
  }
  CHECK(!fl_store_journalled(st)); /* durable by the server's commit */
  uint32_t a, b;
  CHECK_EQ_INT(fl_store_task_add(run, "a", "a", 0, &a), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_add(run, "b", "b", 0, &b), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_state(run, a, FLOWLUA_TASK_RUNNING, 1, T0 + 1, NULL), 0);
  CHECK_EQ_INT(fl_store_task_state(run, a, FLOWLUA_TASK_RETRYING, 1, T0 + 2,
                                   "bad \xff byte"), 0);
  CHECK_EQ_INT(fl_store_task_state(run, a, FLOWLUA_TASK_RUNNING, 2, T0 + 3, NULL), 0);
  CHECK_EQ_INT(fl_store_task_result(run, a, "{\"x\":\"\xc3\xa9\"}", 10), 0);
  /* Handed to the writer thread; the flush after waits for it. */
  CHECK_EQ_INT(fl_store_flush_async(st), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_state(run, a, FLOWLUA_TASK_SUCCESS, 2, T0 + 4, NULL), 0);
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_task_state(run, b, FLOWLUA_TASK_RUNNING, 1, T0 + 5, NULL), 0);
  /* Raw bytes, as the JSON encoder passes a Lua string through. */
  CHECK_EQ_INT(fl_store_task_result(run, b, "\"\xff\xfe\"", 4), 0);
  CHECK_EQ_INT(fl_store_task_state(run, b, FLOWLUA_TASK_SUCCESS, 1, T0 + 6, NULL), 0);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 7, NULL), 0);

  fl_store_run_list l;
  CHECK_EQ_INT(fl_store_list_runs(st, NULL, 0, &l), FLOWLUA_OK);
  CHECK_EQ_INT((long long)(l.n), 1);
  if (l.n == 1) {
    CHECK_EQ_INT(l.rows[0].state, FLOWLUA_FLOW_SUCCESS);
    CHECK_EQ_INT((long long)(l.rows[0].by_state[FLOWLUA_TASK_SUCCESS]), 2);
  }
  fl_store_run_list_free(&l);
  fl_store_run_detail *d = NULL;
  CHECK_EQ_INT(fl_store_load_run(st, "last", NULL, &d), FLOWLUA_OK);
  if (d) {
    CHECK_EQ_STR(d->run.params_json, "{\"n\":3}");
    CHECK_EQ_INT((long long)(d->n_graph_keys), 2);
    CHECK_EQ_INT(d->edges_state, FL_STORE_EDGES_RECORDED);
    const fl_store_task_row *ta = fl_store_detail_find(d, "a");
    const fl_store_task_row *tb = fl_store_detail_find(d, "b");
    CHECK(ta && ta->attempts == 2 && ta->result_kind == FL_STORE_RESULT_JSON &&
          ta->result && strcmp(ta->result, "{\"x\":\"\xc3\xa9\"}") == 0);
    CHECK(fl_store_task_reusable(ta));
    /* Not UTF-8: kept as not resumable, not refused. */
    CHECK(tb && tb->result_kind == FL_STORE_RESULT_OPAQUE && !fl_store_task_reusable(tb));
    fl_store_attempt_list at;
    CHECK_EQ_INT(fl_store_load_attempts(st, d, &at), FLOWLUA_OK);
    CHECK_EQ_INT((long long)(at.n), 3);
    if (at.n == 3) CHECK_EQ_STR(at.items[0].error, "bad \\xff byte");
    fl_store_attempt_list_free(&at);
    fl_store_run_detail_free(d);
  }
  /* A duplicate run id is refused as on SQLite. */
  fl_store_run *again = NULL;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &again), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_store_errmsg(st), "is already recorded");
  fl_store_close(st);
}

static void test_lease_renewed_and_lapsed(void) {
  reset();
  setenv("FLOWLUA_PG_LEASE", "0.6", 1);
  fl_store *st = open_store();
  if (!st) return;
  fl_store_run_info info = {.run_id = "bbbb0000-0000-4000-8000-000000000001",
                            .flow = "leased", .started_at = T0};
  fl_store_run *run = NULL;
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &run), FLOWLUA_OK);
  char *first = value("SELECT lease_until FROM flowlua.flow_run");
  /* Renewed every third of the lease by the store's thread, while this
     one does nothing: waits for the renewal itself. */
  int renewed = 0;
  for (int i = 0; i < 400 && !renewed; i++) {
    char *now = value("SELECT lease_until FROM flowlua.flow_run");
    renewed = strtod(now, NULL) > strtod(first, NULL);
    free(now);
    if (!renewed) usleep(10000);
  }
  CHECK(renewed);
  free(first);
  /* Another process looking now finds it alive. */
  fl_store *other = open_store();
  size_t marked = 9;
  if (other) {
    CHECK_EQ_INT(fl_store_mark_crashed(other, T0 + 10, &marked), FLOWLUA_OK);
    CHECK_EQ_INT((long long)(marked), 0);
  }
  /* The driver goes without ending the run (as a killed one would, on
     another host: this host's own pid would say it lives): its lease is
     no longer renewed, and once it lapsed the run is Crashed. */
  free(value("UPDATE flowlua.flow_run SET owner_host = 'elsewhere'"));
  fl_store_close(st);
  int crashed = 0;
  for (int i = 0; i < 400 && !crashed && other; i++) {
    CHECK_EQ_INT(fl_store_mark_crashed(other, T0 + 10, &marked), FLOWLUA_OK);
    crashed = marked == 1;
    if (!crashed) usleep(10000);
  }
  CHECK(crashed);
  char *state = value("SELECT state || ': ' || error FROM flowlua.flow_run");
  CHECK_CONTAINS(state, "Crashed: the process that ran it");
  CHECK_CONTAINS(state, "stopped renewing the run's lease");
  free(state);
  fl_store_close(other);
  unsetenv("FLOWLUA_PG_LEASE");
}

static void test_fire_claims_and_cache(void) {
  reset();
  fl_store *st = open_store(), *other = open_store();
  if (!st || !other) {
    fl_store_close(st);
    fl_store_close(other);
    return;
  }
  CHECK_EQ_INT(fl_store_claim_fire(st, "f", T0, T0), 1);
  CHECK_EQ_INT(fl_store_claim_fire(other, "f", T0, T0 + 0.1), 0);
  CHECK_EQ_INT(fl_store_claim_fire(other, "f", T0 + 60, T0 + 0.1), 1);
  double last = 0;
  CHECK_EQ_INT(fl_store_last_fire(st, "f", &last), 1);
  CHECK(last == T0 + 60);
  CHECK_EQ_INT(fl_store_last_fire(st, "g", &last), 0);
  CHECK_EQ_INT(fl_store_fire_event(st, "f", "skipped", T0, T0, 1, "busy", T0 + 1), 0);
  char *n = value("SELECT count(*) FROM flowlua.fire_event");
  CHECK_EQ_STR(n, "1");
  free(n);

  CHECK_EQ_INT(fl_store_cache_put(st, "t", "k1", "[1,2]", 5, T0), FLOWLUA_OK);
  const char *json = NULL;
  size_t len = 0;
  /* Buffered, then in the database once flushed. */
  CHECK_EQ_INT(fl_store_cache_get(st, "t", "k1", T0, -1, &json, &len), 1);
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK);
  CHECK_EQ_INT(fl_store_cache_get(other, "t", "k1", T0 + 5, 10, &json, &len), 1);
  CHECK(len == 5 && memcmp(json, "[1,2]", 5) == 0);
  CHECK_EQ_INT(fl_store_cache_get(other, "t", "k1", T0 + 50, 10, &json, &len), 0);
  CHECK_EQ_INT(fl_store_cache_get(other, "t", "nope", T0, -1, &json, &len), 0);
  fl_store_close(st);
  fl_store_close(other);
}

static void test_restart_between_flushes(void) {
  const char *ctl = getenv("FLOWLUA_TEST_PG_CTL");
  if (!ctl) {
    fprintf(stderr, "  no FLOWLUA_TEST_PG_CTL: run through with_pg.py\n");
    CHECK(0);
    return;
  }
  reset();
  fl_store *st = open_store();
  if (!st) return;
  fl_store_run_info info = {.run_id = "cccc0000-0000-4000-8000-000000000001",
                            .flow = "restarted", .started_at = T0};
  fl_store_run *run = NULL;
  uint32_t t[3];
  CHECK_EQ_INT(fl_store_run_begin(st, &info, &run), FLOWLUA_OK);
  if (!run) {
    fl_store_close(st);
    return;
  }
  const char *keys[3] = {"x", "y", "z"};
  const char *tasks[3] = {"x", "y", "z"};
  CHECK_EQ_INT(fl_store_task_add_many(run, keys, tasks, 3, &t[0]), FLOWLUA_OK);
  t[1] = t[0] + 1;
  t[2] = t[0] + 2;
  CHECK_EQ_INT(fl_store_task_state(run, t[0], FLOWLUA_TASK_SUCCESS, 1, T0 + 1, NULL), 0);
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s restart", ctl);
  CHECK_EQ_INT(system(cmd), 0);
  /* The next flush finds the connection gone, reconnects, writes. */
  CHECK_EQ_INT(fl_store_task_state(run, t[1], FLOWLUA_TASK_SUCCESS, 1, T0 + 2, NULL), 0);
  CHECK_EQ_INT(fl_store_flush(st), FLOWLUA_OK);
  /* A server that stays away: the flush fails in bounded time, naming
     the server without its password. */
  setenv("FLOWLUA_PG_RETRY", "1", 1);
  fl_store *brief = open_store();
  snprintf(cmd, sizeof cmd, "%s stop", ctl);
  CHECK_EQ_INT(system(cmd), 0);
  if (brief) {
    CHECK_EQ_INT(fl_store_claim_fire(brief, "g", T0, T0), FLOWLUA_EIO);
    CHECK_CONTAINS(fl_store_errmsg(brief), "reconnecting for 1 s failed");
    CHECK(strstr(fl_store_errmsg(brief), password()) == NULL);
  }
  unsetenv("FLOWLUA_PG_RETRY");
  snprintf(cmd, sizeof cmd, "%s start", ctl);
  CHECK_EQ_INT(system(cmd), 0);
  CHECK_EQ_INT(fl_store_task_state(run, t[2], FLOWLUA_TASK_SUCCESS, 1, T0 + 3, NULL), 0);
  CHECK_EQ_INT(fl_store_run_end(run, FLOWLUA_FLOW_SUCCESS, T0 + 4, NULL), 0);
  char *n = value("SELECT count(*) || ' ' || min(state) FROM flowlua.task_run");
  CHECK_EQ_STR(n, "3 Success");
  free(n);
  fl_store_close(brief);
  fl_store_close(st);
}

static void test_open_for_reading_no_history(void) {
  reset();
  fl_store_options o;
  fl_store_options_init(&o);
  o.must_exist = 1;
  o.reading = 1;
  fl_store *st = (fl_store *)1;
  char err[512];
  CHECK_EQ_INT(fl_store_open(uri, &o, &st, err, sizeof err), FLOWLUA_OK);
  CHECK(st == NULL); /* nothing recorded yet, and nothing created */
  char *n = value("SELECT count(*) FROM pg_namespace WHERE nspname = 'flowlua'");
  CHECK_EQ_STR(n, "0");
  free(n);
}

int main(void) {
  uri = getenv("FLOWLUA_TEST_PG");
  if (!uri) {
    fprintf(stderr, "test_pg_store: no FLOWLUA_TEST_PG: run through "
                    "tests/support/pg/with_pg.py\n");
    return 1;
  }
  RUN(test_run_written_and_read);
  RUN(test_lease_renewed_and_lapsed);
  RUN(test_fire_claims_and_cache);
  RUN(test_restart_between_flushes);
  RUN(test_open_for_reading_no_history);
  return check_summary();
}
