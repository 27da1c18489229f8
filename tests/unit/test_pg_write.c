/*
 * test_pg_write.c — fl__pg_write_batches (pg_write.c) against a real
 * server: chains of frozen batches built by hand, as store_batch.c freezes
 * them, and the rows they leave. Task runs inserted then updated (later in
 * the chain, and by a later call); a result kept when a row says -1;
 * results of every awkward byte, one of 1 MB, back byte for byte; state
 * changes; runs' ends with counts given and counted; fire events once;
 * where attempts ran; cached results overwritten; a chain written twice
 * leaving the same rows; batches with run starts or fire claims refused
 * with nothing written; a connection lost mid-chain rolling it back. And
 * how long 100,000 task runs take (printed, not checked).
 *
 * Run through tests/support/pg/with_pg.py (ctest does: unit/test_pg_write),
 * which gives the server's URI in FLOWLUA_TEST_PG and the command that
 * stops and starts it in FLOWLUA_TEST_PG_CTL.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "pg_test.h"
#include "flowlua.h"
#include "pg_api.h"
#include "pg_conn.h"
#include "pg_store.h"

static const char *uri; /* the harness's database */
static char err[4096];

/* ---- helpers --------------------------------------------------------------- */

static void exec_ok(fl_pg *c, const char *sql) {
  int rc = fl_pg_exec(c, sql, "test statement");
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  %s\n", fl_pg_errmsg(c));
}

/* A connection to a fresh schema flowlua, with runs 1, 2 and 3 Running
   (NULL when it could not be had). */
static fl_pg *fresh_db(void) {
  fl_pg *c = NULL;
  int rc = fl_pg_connect(uri, 60, &c, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) {
    fprintf(stderr, "  %s\n", err);
    return NULL;
  }
  exec_ok(c, "DROP SCHEMA IF EXISTS flowlua CASCADE");
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_OK);
  /* The write path does not start runs: pg_store.c does. */
  exec_ok(c, "INSERT INTO flow_run(id, run_id, flow, state, started_at)"
             " VALUES (1, 'r1', 'f', 'Running', 100),"
             " (2, 'r2', 'f', 'Running', 200), (3, 'r3', 'f', 'Running', 300)");
  return c;
}

/* One value of a query, as text (malloc'd), or NULL for SQL NULL or an
   error. */
static char *one_value(fl_pg *c, const char *sql) {
  PGresult *r = fl_pg_query(c, "test query", sql, 0, NULL);
  const fl_pq_api *pq = fl_pq(); /* loaded by the connection */
  char *v = r && pq->ntuples(r) > 0 && !pq->getisnull(r, 0, 0)
                ? strdup(pq->getvalue(r, 0, 0)) : NULL;
  if (!r) fprintf(stderr, "  %s\n", fl_pg_errmsg(c));
  pq->clear(r);
  return v;
}

static long long one_int(fl_pg *c, const char *sql) {
  char *v = one_value(c, sql);
  long long n = v ? strtoll(v, NULL, 10) : -1;
  free(v);
  return n;
}

/* CHECK_EQ_STR on a query's value, which is freed. */
#define CHECK_VALUE(c, sql, want)                                              \
  do {                                                                         \
    char *got_ = one_value((c), (sql));                                        \
    CHECK_EQ_STR(got_, (want));                                                \
    free(got_);                                                                \
  } while (0)

/* Every row of the tables the writer writes, as one text: what a chain
   left. */
static char *snapshot(fl_pg *c) {
  return one_value(
      c,
      "SELECT concat_ws(E'\\n',"
      " (SELECT string_agg(t::text, E'\\n' ORDER BY run, n) FROM task_run t),"
      " (SELECT string_agg(e::text, E'\\n' ORDER BY run, n, seq)"
      "  FROM task_event e),"
      " (SELECT string_agg(w::text, E'\\n' ORDER BY run, n, attempt)"
      "  FROM attempt_worker w),"
      " (SELECT string_agg(k::text, E'\\n' ORDER BY task, key) FROM cache k),"
      " (SELECT string_agg(f::text, E'\\n' ORDER BY id) FROM flow_run f),"
      " (SELECT string_agg(row(flow, outcome, scheduled_at, last_at, count,"
      "  detail, at)::text, E'\\n' ORDER BY id) FROM fire_event))");
}

/* ---- building frozen batches ---------------------------------------------------
 *
 * As store_batch.c freezes them: arrays of their own, strings NUL-ended in
 * b->strings by offset, SIZE_MAX for NULL. Room for `rows` task runs and
 * 16 of everything else. */

#define ROOM 16

static fbatch *batch_new(size_t rows) {
  fbatch *b = calloc(1, sizeof *b);
  b->rows = calloc(rows ? rows : 1, sizeof *b->rows);
  b->events = calloc(ROOM, sizeof *b->events);
  b->puts = calloc(ROOM, sizeof *b->puts);
  b->ends = calloc(ROOM, sizeof *b->ends);
  b->fires = calloc(ROOM, sizeof *b->fires);
  b->begins = calloc(ROOM, sizeof *b->begins);
  b->claims = calloc(ROOM, sizeof *b->claims);
  b->workers = calloc(ROOM, sizeof *b->workers);
  return b;
}

/* A chain of n batches (b[0]->next = b[1]...). */
static void chain(fbatch **b, int n) {
  for (int i = 0; i + 1 < n; i++) b[i]->next = b[i + 1];
}

static void chain_free(fbatch *b) {
  while (b) {
    fbatch *next = b->next;
    fl__store_fbatch_free(b);
    b = next;
  }
}

static size_t str_n(fbatch *b, const char *s, size_t n) {
  if (!s) return SIZE_MAX;
  size_t off = b->strings.len;
  fl_buf_add(&b->strings, s, n);
  fl_buf_addc(&b->strings, '\0');
  return off;
}

static size_t str(fbatch *b, const char *s) {
  return str_n(b, s, s ? strlen(s) : 0);
}

/* A task run's row: fresh unless told; result NULL with kind 0 (none), or
   -1 (keep the stored one). */
static frow *add_row(fbatch *b, int64_t run, uint32_t n, const char *key,
                     int state, int kind, const char *result) {
  frow *r = &b->rows[b->n_rows++];
  *r = (frow){.run = run, .n = n, .n_changes = 1, .map_index = 0,
              .attempts = 1, .state = state, .result_kind = kind,
              .fresh = 1, .state_at = 1000.5 + n, .err_off = SIZE_MAX,
              .res_off = SIZE_MAX};
  r->key_off = str(b, key);
  r->task_off = str(b, "t");
  if (result) {
    r->res_off = str(b, result);
    r->res_len = strlen(result);
  }
  return r;
}

static void add_event(fbatch *b, int64_t run, uint32_t n, uint32_t seq,
                      int state, const char *error) {
  b->events[b->n_events++] =
      (pending_event){.rowid = run, .task = n, .seq = seq, .attempt = 1,
                      .state = state, .err_off = str(b, error),
                      .at = 2000.25 + seq};
}

static void add_end(fbatch *b, int64_t run, int state, const char *counts) {
  b->ends[b->n_ends++] = (pending_end){.rowid = run, .state = state,
                                       .ended_at = 3000.125, .err_off =
                                       str(b, state == FLOWLUA_FLOW_FAILED
                                                  ? "it failed" : NULL),
                                       .counts_off = str(b, counts)};
}

static void add_fire(fbatch *b, const char *flow, const char *outcome,
                     double first) {
  b->fires[b->n_fires++] =
      (pending_fire){.flow_off = str(b, flow), .outcome_off = str(b, outcome),
                     .detail_off = str(b, "a \"detail\""), .first = first,
                     .last = first + 60, .at = 4000.0625, .count = 2};
}

static void add_worker(fbatch *b, int64_t run, uint32_t n, int32_t attempt,
                       const char *host, int64_t pid) {
  b->workers[b->n_workers++] =
      (pending_worker){.rowid = run, .task = n, .attempt = attempt,
                       .pid = pid, .host_off = str(b, host)};
}

static void add_put(fbatch *b, const char *task, const char *key,
                    const char *json) {
  b->puts[b->n_puts++] =
      (pending_put){.task_off = str(b, task), .key_off = str(b, key),
                    .json_off = str(b, json), .json_len = strlen(json),
                    .at = 5000.5};
}

/* Writes the chain from b, checks it succeeded, and frees it. */
static void write_ok(fl_pg *c, fbatch *b) {
  int rc = fl__pg_write_batches(c, b);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  %s\n", fl_pg_errmsg(c));
  chain_free(b);
}

/* ---- task runs --------------------------------------------------------------- */

/* A row inserted and updated by a later batch of the same chain (the later
   wins, sent once: ON CONFLICT cannot touch a row twice), then by a later
   call; the columns as written. */
static void test_rows_inserted_then_updated(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  fbatch *b[3] = {batch_new(4), batch_new(4), batch_new(4)};
  add_row(b[0], 1, 0, "a", FLOWLUA_TASK_RUNNING, 0, NULL);
  add_row(b[0], 1, 1, "b", FLOWLUA_TASK_PENDING, 0, NULL);
  frow *r = add_row(b[1], 1, 0, "a", FLOWLUA_TASK_SUCCESS, 1, "{\"x\":1}");
  r->fresh = 0;
  r->n_changes = 2;
  r->started_seq = 1;
  r->started = 1000.25;
  r->ended = 1001.75;
  r = add_row(b[2], 1, 1, "b", FLOWLUA_TASK_RUNNING, -1, NULL);
  r->fresh = 0;
  r->n_changes = 1;
  chain(b, 3);
  write_ok(c, b[0]);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run"), 2);
  CHECK_VALUE(c,
              "SELECT concat_ws('|', key, task, map_index, state, state_at,"
              " state_seq, attempts, coalesce(error, '-'), started_at,"
              " started_seq, ended_at, result_kind, result) FROM task_run"
              " WHERE run = 1 AND n = 0",
              "a|t|0|Success|1000.5|2|1|-|1000.25|1|1001.75|1|{\"x\":1}");
  CHECK_VALUE(c,
              "SELECT concat_ws('|', state, state_seq, started_at IS NULL,"
              " started_seq IS NULL, ended_at IS NULL, result_kind,"
              " result IS NULL) FROM task_run WHERE run = 1 AND n = 1",
              "Running|1|t|t|t|0|t");

  /* a later call: the row changes again; -1 keeps its result */
  fbatch *later = batch_new(2);
  r = add_row(later, 1, 0, "a", FLOWLUA_TASK_FAILED, -1, NULL);
  r->fresh = 0;
  r->n_changes = 3;
  r->attempts = 2;
  r->err_off = str(later, "boom");
  write_ok(c, later);
  CHECK_VALUE(c,
              "SELECT concat_ws('|', state, state_seq, attempts, error,"
              " result_kind, result) FROM task_run WHERE run = 1 AND n = 0",
              "Failed|3|2|boom|1|{\"x\":1}");
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run"), 2);
  fl_pg_close(c);
}

/* result_kind -1 keeps the stored result, in a later call and when the
   result was set earlier in the same chain; a later result replaces it. */
static void test_keep_result(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  fbatch *b[3] = {batch_new(2), batch_new(2), batch_new(2)};
  add_row(b[0], 1, 0, "a", FLOWLUA_TASK_RUNNING, 1, "\"first\"");
  add_row(b[0], 1, 1, "b", FLOWLUA_TASK_RUNNING, 1, "\"one\"");
  add_row(b[1], 1, 0, "a", FLOWLUA_TASK_RUNNING, -1, NULL)->fresh = 0;
  add_row(b[1], 1, 1, "b", FLOWLUA_TASK_RUNNING, 1, "\"two\"")->fresh = 0;
  add_row(b[2], 1, 0, "a", FLOWLUA_TASK_SUCCESS, -1, NULL)->fresh = 0;
  add_row(b[2], 1, 1, "b", FLOWLUA_TASK_SUCCESS, -1, NULL)->fresh = 0;
  chain(b, 3);
  write_ok(c, b[0]);
  CHECK_VALUE(c, "SELECT result FROM task_run WHERE n = 0", "\"first\"");
  CHECK_VALUE(c, "SELECT result FROM task_run WHERE n = 1", "\"two\"");
  CHECK_VALUE(c, "SELECT string_agg(state, ',' ORDER BY n) FROM task_run",
              "Success,Success");

  fbatch *later = batch_new(2);
  add_row(later, 1, 0, "a", FLOWLUA_TASK_SUCCESS, -1, NULL)->fresh = 0;
  add_row(later, 1, 1, "b", FLOWLUA_TASK_SUCCESS, 2, NULL)->fresh = 0;
  write_ok(c, later);
  CHECK_VALUE(c, "SELECT result FROM task_run WHERE n = 0", "\"first\"");
  CHECK_VALUE(c, "SELECT result_kind || '/' || (result IS NULL) FROM task_run"
                 " WHERE n = 1", "2/true");
  fl_pg_close(c);
}

/* Results that an array literal must quote, and a large one, come back
   byte for byte. */
static void test_results_byte_for_byte(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  size_t big_len = (size_t)1 << 20;
  char *big = malloc(big_len + 1);
  for (size_t i = 0; i < big_len; i++) big[i] = "a\"\\{},\n é"[i % 10];
  big[big_len] = '\0';
  const char *results[] = {
      "\"a\\\"b\"",          /* quote and backslash */
      "\\",                  /* a lone backslash */
      "\"",                  /* a lone quote */
      "{\"k\":[1,2,{}]}",    /* braces and commas */
      "\"line\\none\nline two\r\n\ttab\"",
      "\"héllo ✓ 😀 \\u00e9\"",
      "NULL",                /* the word, not SQL NULL */
      "",                    /* empty */
      "  spaced  ",          /* white space kept at both ends */
      "{\"a\":\"}\",\"b\":\"{\"}",
      big};
  size_t n = sizeof results / sizeof results[0];
  fbatch *b = batch_new(n);
  for (size_t i = 0; i < n; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%zu", i);
    add_row(b, 2, (uint32_t)i, key, FLOWLUA_TASK_SUCCESS, 1, results[i]);
  }
  write_ok(c, b);
  for (size_t i = 0; i < n; i++) {
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT result FROM task_run WHERE run = 2 AND n = %zu", i);
    char *got = one_value(c, sql);
    CHECK(got != NULL);
    if (got && i + 1 == n) { /* not printed whole when it differs */
      CHECK_EQ_INT(strlen(got), big_len);
      CHECK(strcmp(got, big) == 0);
    } else {
      CHECK_EQ_STR(got, results[i]);
    }
    free(got);
  }
  free(big);
  fl_pg_close(c);
}

/* More results than one statement carries (pg_write.c's STMT_BYTES, 64
   MB): the task runs go in several statements of the transaction, each
   once, and a later batch's update of an early one still wins. */
static void test_many_statements(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  enum { ROWS = 80 };
  size_t len = (size_t)1 << 20;
  char *big = malloc(len + 1);
  memset(big, 'x', len);
  big[0] = big[len - 1] = '"';
  big[len] = '\0';
  fbatch *b[2] = {batch_new(ROWS), batch_new(1)};
  for (uint32_t i = 0; i < ROWS; i++) {
    big[1] = (char)('a' + i % 26);
    add_row(b[0], 1, i, "k", FLOWLUA_TASK_SUCCESS, 1, big);
  }
  add_row(b[1], 1, 0, "k", FLOWLUA_TASK_FAILED, -1, NULL)->fresh = 0;
  chain(b, 2);
  write_ok(c, b[0]);
  free(big);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run"), ROWS);
  CHECK_EQ_INT(one_int(c, "SELECT sum(length(result)) FROM task_run"),
               (long long)ROWS * (long long)len);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run WHERE"
                          " substr(result, 2, 1) = chr(97 + n % 26)"), ROWS);
  CHECK_VALUE(c, "SELECT state FROM task_run WHERE n = 0", "Failed");
  CHECK_VALUE(c, "SELECT result_kind FROM task_run WHERE n = 0", "1");
  fl_pg_close(c);
}

/* ---- events, ends, fires, workers, the cache ---------------------------------- */

static void test_events(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  fbatch *b[2] = {batch_new(2), batch_new(2)};
  add_row(b[0], 1, 0, "a", FLOWLUA_TASK_RUNNING, 0, NULL);
  add_event(b[1], 1, 0, 1, FLOWLUA_TASK_RUNNING, NULL);
  add_event(b[1], 1, 0, 2, FLOWLUA_TASK_RETRYING, "try \"again\"\n\\");
  add_row(b[1], 1, 0, "a", FLOWLUA_TASK_SUCCESS, 0, NULL)->n_changes = 3;
  chain(b, 2);
  write_ok(c, b[0]);
  CHECK_VALUE(c,
              "SELECT string_agg(concat_ws('|', run, n, seq, at, state,"
              " attempt, coalesce(error, '-')), ';' ORDER BY seq)"
              " FROM task_event",
              "1|0|1|2001.25|Running|1|-;1|0|2|2002.25|Retrying|1|"
              "try \"again\"\n\\");
  /* with the row's own changes, the history view has all three */
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_history"), 3);
  /* the same events again: nothing more */
  fbatch *again = batch_new(1);
  add_event(again, 1, 0, 1, FLOWLUA_TASK_RUNNING, NULL);
  write_ok(c, again);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_event"), 2);
  fl_pg_close(c);
}

/* Counts given are stored; NULL ones are counted as the engine counts
   (a map with elements is counted by them; an empty map as itself); a
   run that is not Running does not end again. */
static void test_run_ends(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  exec_ok(c, "UPDATE flow_run SET state = 'Success', ended_at = 7 WHERE id = 3");
  fbatch *b = batch_new(8);
  frow *r;
  add_row(b, 2, 0, "a", FLOWLUA_TASK_SUCCESS, 0, NULL);
  add_row(b, 2, 1, "m", FLOWLUA_TASK_FAILED, 0, NULL); /* the map's group */
  r = add_row(b, 2, 2, "m[1]", FLOWLUA_TASK_SUCCESS, 0, NULL);
  r->map_index = 1;
  r = add_row(b, 2, 3, "m[2]", FLOWLUA_TASK_FAILED, 0, NULL);
  r->map_index = 2;
  r = add_row(b, 2, 4, "m[10]", FLOWLUA_TASK_SUCCESS, 0, NULL);
  r->map_index = 10;
  add_row(b, 2, 5, "e", FLOWLUA_TASK_SKIPPED, 0, NULL); /* an empty map */
  add_end(b, 1, FLOWLUA_FLOW_SUCCESS, "{\"Success\":5}");
  add_end(b, 2, FLOWLUA_FLOW_FAILED, NULL);
  add_end(b, 3, FLOWLUA_FLOW_FAILED, "{\"Failed\":1}");
  write_ok(c, b);
  CHECK_VALUE(c,
              "SELECT concat_ws('|', state, ended_at, coalesce(error, '-'),"
              " task_counts = '{\"Success\": 5}') FROM flow_run WHERE id = 1",
              "Success|3000.125|-|t");
  CHECK_VALUE(c,
              "SELECT concat_ws('|', state, ended_at, error, task_counts ="
              " '{\"Success\": 3, \"Failed\": 1, \"Skipped\": 1}')"
              " FROM flow_run WHERE id = 2",
              "Failed|3000.125|it failed|t");
  CHECK_VALUE(c,
              "SELECT concat_ws('|', state, ended_at, coalesce(error, '-'),"
              " task_counts IS NULL) FROM flow_run WHERE id = 3",
              "Success|7|-|t");
  /* a run with no task runs counts to {} */
  exec_ok(c, "INSERT INTO flow_run(id, run_id, flow, state, started_at)"
             " VALUES (4, 'r4', 'f', 'Running', 400)");
  b = batch_new(0);
  add_end(b, 4, FLOWLUA_FLOW_CANCELLED, NULL);
  write_ok(c, b);
  CHECK_VALUE(c, "SELECT state || task_counts::text FROM flow_run WHERE id = 4",
              "Cancelled{}");
  fl_pg_close(c);
}

/* The first end of a run in a chain is the one, as in SQLite. */
static void test_first_end_wins(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  fbatch *b[2] = {batch_new(0), batch_new(0)};
  add_end(b[0], 1, FLOWLUA_FLOW_FAILED, "{\"Failed\":1}");
  add_end(b[1], 1, FLOWLUA_FLOW_SUCCESS, "{\"Success\":1}");
  chain(b, 2);
  write_ok(c, b[0]);
  CHECK_VALUE(c, "SELECT state || task_counts::text FROM flow_run WHERE id = 1",
              "Failed{\"Failed\": 1}");
  fl_pg_close(c);
}

/* A fire event is written once, however often the chain holds it or is
   written; another outcome is another event. */
static void test_fire_events_once(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  for (int round = 0; round < 2; round++) {
    fbatch *b[2] = {batch_new(0), batch_new(0)};
    add_fire(b[0], "nightly", "skipped", 1700000000.123456789);
    add_fire(b[1], "nightly", "skipped", 1700000000.123456789);
    add_fire(b[1], "nightly", "missed", 1700000000.123456789);
    chain(b, 2);
    write_ok(c, b[0]);
  }
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM fire_event"), 2);
  CHECK_VALUE(c,
              "SELECT string_agg(concat_ws('|', flow, outcome, scheduled_at,"
              " last_at, count, detail, at, owner_pid > 0), ';' ORDER BY id)"
              " FROM fire_event",
              "nightly|skipped|1700000000.1234567|1700000060.1234567|2|"
              "a \"detail\"|4000.0625|t;"
              "nightly|missed|1700000000.1234567|1700000060.1234567|2|"
              "a \"detail\"|4000.0625|t");
  /* the fire time to the bit: %.17g reads back as the same double */
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM fire_event WHERE scheduled_at"
                          " = 1700000000.123456789::float8"), 2);
  fl_pg_close(c);
}

static void test_attempt_worker(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  for (int round = 0; round < 2; round++) {
    fbatch *b[2] = {batch_new(1), batch_new(0)};
    add_row(b[0], 1, 0, "a", FLOWLUA_TASK_RUNNING, 0, NULL);
    add_worker(b[0], 1, 0, 1, "host-a", 11);
    add_worker(b[1], 1, 0, 1, "host-b", 12); /* the later one wins */
    add_worker(b[1], 1, 0, 2, "host-\"c\"", 13);
    chain(b, 2);
    write_ok(c, b[0]);
  }
  CHECK_VALUE(c,
              "SELECT string_agg(concat_ws('|', run, n, attempt, host, pid),"
              " ';' ORDER BY attempt) FROM attempt_worker",
              "1|0|1|host-b|12;1|0|2|host-\"c\"|13");
  fl_pg_close(c);
}

static void test_cache_puts_overwrite(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  fbatch *b[2] = {batch_new(0), batch_new(0)};
  add_put(b[0], "fetch", "k1", "[1]");
  add_put(b[0], "fetch", "k2", "{\"a\":\"\\\\\"}");
  add_put(b[1], "fetch", "k1", "[1,2]");
  chain(b, 2);
  write_ok(c, b[0]);
  CHECK_VALUE(c,
              "SELECT string_agg(concat_ws('|', task, key, result, stored_at),"
              " ';' ORDER BY key) FROM cache",
              "fetch|k1|[1,2]|5000.5;fetch|k2|{\"a\":\"\\\\\"}|5000.5");
  fbatch *later = batch_new(0);
  add_put(later, "fetch", "k2", "null");
  write_ok(c, later);
  CHECK_VALUE(c, "SELECT result FROM cache WHERE key = 'k2'", "null");
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM cache"), 2);
  fl_pg_close(c);
}

/* ---- the chain as a whole ------------------------------------------------------ */

/* A chain of everything. */
static fbatch *full_chain(void) {
  fbatch *b[2] = {batch_new(4), batch_new(4)};
  add_row(b[0], 1, 0, "a", FLOWLUA_TASK_RUNNING, 0, NULL);
  add_row(b[0], 1, 1, "b", FLOWLUA_TASK_SUCCESS, 1, "\"b\"");
  add_worker(b[0], 1, 0, 1, "h", 5);
  add_put(b[0], "t", "k", "[\"v\"]");
  add_fire(b[0], "f", "skipped", 10.5);
  add_event(b[1], 1, 0, 1, FLOWLUA_TASK_RUNNING, NULL);
  frow *r = add_row(b[1], 1, 0, "a", FLOWLUA_TASK_SUCCESS, 1, "{\"a\":[1]}");
  r->fresh = 0;
  r->n_changes = 2;
  add_end(b[1], 1, FLOWLUA_FLOW_SUCCESS, NULL);
  chain(b, 2);
  return b[0];
}

/* Written again (a COMMIT whose answer was lost), a chain leaves the same
   rows. */
static void test_chain_twice_same_rows(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  write_ok(c, full_chain());
  char *once = snapshot(c);
  CHECK(once != NULL);
  CHECK_CONTAINS(once, "{\"\"a\"\":[1]}"); /* row text doubles quotes */
  CHECK_CONTAINS(once, "{\"\"Success\"\": 2}");
  write_ok(c, full_chain());
  char *twice = snapshot(c);
  CHECK_EQ_STR(twice, once);
  free(once);
  free(twice);
  fl_pg_close(c);
}

/* A run start or a fire claim in any batch: the chain is refused before
   anything is written, and the connection stays usable. */
static void test_begins_and_claims_refused(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  fbatch *b = full_chain();
  b->next->n_begins = 1;
  b->next->begins[0] = (pending_begin){.rowid = 9};
  CHECK_EQ_INT(fl__pg_write_batches(c, b), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_pg_errmsg(c), "run start");
  chain_free(b);
  b = full_chain();
  b->n_claims = 1;
  b->claims[0] = (pending_claim){.flow_off = str(b, "f"), .ms = 1};
  CHECK_EQ_INT(fl__pg_write_batches(c, b), FLOWLUA_EINVAL);
  CHECK_CONTAINS(fl_pg_errmsg(c), "fire claim");
  chain_free(b);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run"), 0);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM cache"), 0);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM fire_event"), 0);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM flow_run WHERE state"
                          " = 'Running'"), 3);
  /* and an empty chain writes nothing, successfully */
  CHECK_EQ_INT(fl__pg_write_batches(c, NULL), FLOWLUA_OK);
  fl_pg_close(c);
}

/* A statement that fails mid-chain (an event of a task run nobody wrote:
   the foreign key) rolls back what the chain wrote before it; the
   connection is not lost and takes the next chain. */
static void test_statement_failure_rolls_back(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  fbatch *b = full_chain();
  add_event(b->next, 1, 77, 1, FLOWLUA_TASK_RUNNING, NULL);
  CHECK_EQ_INT(fl__pg_write_batches(c, b), FLOWLUA_EIO);
  CHECK_CONTAINS(fl_pg_errmsg(c), "cannot record a task state change: ");
  CHECK_CONTAINS(fl_pg_errmsg(c), "foreign key");
  chain_free(b);
  CHECK(!fl_pg_lost(c));
  CHECK(fl_pq()->transaction_status(fl_pg_conn(c)) == PQTRANS_IDLE);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run"), 0);
  write_ok(c, full_chain());
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run"), 2);
  fl_pg_close(c);
}

/* The connection lost in the middle of a chain (the backend ends itself
   when the first state change is inserted, after the task runs went in):
   nothing of the chain stays, the handle knows it is lost, and after a
   reconnect the chain is written whole. */
static void test_lost_mid_chain(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  exec_ok(c, "CREATE FUNCTION flowlua.die() RETURNS trigger LANGUAGE plpgsql"
             " AS $$BEGIN PERFORM pg_terminate_backend(pg_backend_pid());"
             " PERFORM pg_sleep(5); RETURN NEW; END$$;"
             "CREATE TRIGGER die BEFORE INSERT ON flowlua.task_event"
             " FOR EACH ROW EXECUTE FUNCTION flowlua.die()");
  fbatch *b = full_chain();
  CHECK_EQ_INT(fl__pg_write_batches(c, b), FLOWLUA_EIO);
  CHECK(fl_pg_lost(c));
  CHECK_CONTAINS(fl_pg_errmsg(c), "cannot record a task state change: ");
  CHECK_EQ_INT(fl_pg_reconnect(c, 60), FLOWLUA_OK);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run"), 0);
  exec_ok(c, "DROP TRIGGER die ON flowlua.task_event");
  CHECK_EQ_INT(fl__pg_write_batches(c, b), FLOWLUA_OK);
  chain_free(b);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run"), 2);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_event"), 1);
  fl_pg_close(c);
}

/* The server killed under the connection: the chain fails, the handle is
   lost, nothing is written; once the server is back, the same chain goes
   in. */
static void test_server_killed(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  fbatch *b = full_chain();
  CHECK_EQ_INT(pg_test_server("kill"), 0);
  CHECK_EQ_INT(fl__pg_write_batches(c, b), FLOWLUA_EIO);
  CHECK(fl_pg_lost(c));
  CHECK_EQ_INT(pg_test_server("start"), 0);
  CHECK_EQ_INT(fl_pg_reconnect(c, 60), FLOWLUA_OK);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run"), 0);
  CHECK_EQ_INT(fl__pg_write_batches(c, b), FLOWLUA_OK);
  chain_free(b);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run"), 2);
  CHECK_VALUE(c, "SELECT state FROM flow_run WHERE id = 1", "Success");
  fl_pg_close(c);
}

/* ---- speed ---------------------------------------------------------------------- */

/* 100,000 no-op task runs in one batch, fresh, then all updated: printed,
   not checked (the machine decides). */
static void test_timing_100k(void) {
  fl_pg *c = fresh_db();
  if (!c) return;
  enum { N = 100000 };
  for (int round = 0; round < 2; round++) {
    fbatch *b = batch_new(N);
    for (uint32_t i = 0; i < N; i++) {
      char key[24];
      snprintf(key, sizeof key, "noop[%u]", i + 1);
      frow *r = add_row(b, 1, i, key, FLOWLUA_TASK_SUCCESS, 0, NULL);
      r->map_index = (int32_t)i + 1;
      r->n_changes = 2;
      r->started_seq = 1;
      r->started = 1000.0 + i * 1e-3;
      r->ended = r->started + 1e-4;
      if (round) {
        r->fresh = 0;
        r->result_kind = -1;
      }
    }
    double t0 = pg_test_now();
    write_ok(c, b);
    double t1 = pg_test_now();
    printf("     100,000 task runs %s: %.3f s\n",
           round ? "updated" : "fresh", t1 - t0);
  }
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM task_run WHERE state ="
                          " 'Success'"), N);
  fl_pg_close(c);
}

int main(void) {
  uri = getenv("FLOWLUA_TEST_PG");
  if (!uri || !getenv("FLOWLUA_TEST_PG_CTL")) {
    fprintf(stderr, "test_pg_write: run it through tests/support/pg/with_pg.py"
                    " (FLOWLUA_TEST_PG and FLOWLUA_TEST_PG_CTL are not set)\n");
    return 1;
  }
  RUN(test_rows_inserted_then_updated);
  RUN(test_keep_result);
  RUN(test_results_byte_for_byte);
  RUN(test_many_statements);
  RUN(test_events);
  RUN(test_run_ends);
  RUN(test_first_end_wins);
  RUN(test_fire_events_once);
  RUN(test_attempt_worker);
  RUN(test_cache_puts_overwrite);
  RUN(test_chain_twice_same_rows);
  RUN(test_begins_and_claims_refused);
  RUN(test_statement_failure_rolls_back);
  RUN(test_lost_mid_chain);
  RUN(test_server_killed);
  RUN(test_timing_100k);
  return check_summary();
}
