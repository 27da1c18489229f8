/*
 * test_pg_conn.c — the PostgreSQL history's connection layer against a real
 * server: URIs recognised and redacted, a password scrubbed from text;
 * connecting (application_name, search_path, a close-on-exec socket) and
 * migrating, again (nothing done), from two processes at once; a newer
 * flowlua's schema and someone else's schema refused; a wrong password, a
 * stopped server, a server restarted during the backoff, a server killed
 * under an open connection; statement errors with the server's words.
 * No message may hold a password.
 *
 * Run through tests/support/pg/with_pg.py, which gives the server's URI in
 * FLOWLUA_TEST_PG and the command that stops and starts it in
 * FLOWLUA_TEST_PG_CTL (ctest does: unit/test_pg_conn).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "pg_test.h"
#include "flowlua.h"
#include "pg_api.h"
#include "pg_conn.h"

static const char *uri;      /* the harness's database */
static char password[256];   /* its role's password, as in the URI */
static char err[4096];

/* ---- helpers --------------------------------------------------------------- */

static char *redacted(const char *conninfo) {
  fl_buf b = FL_BUF_INIT;
  fl_pg_redact(conninfo, &b);
  char *s = strdup(fl_buf_str(&b));
  fl_buf_free(&b);
  return s;
}

static void expect_redacted(const char *conninfo, const char *want) {
  char *got = redacted(conninfo);
  CHECK_EQ_STR(got, want);
  free(got);
}

static fl_pg *connect_ok(void) {
  fl_pg *c = NULL;
  int rc = fl_pg_connect(uri, 60, &c, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  %s\n", err);
  return c;
}

/* One value of a query, as text (malloc'd), or NULL. */
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

static void drop_schema(void) {
  fl_pg *c = connect_ok();
  if (!c) return;
  CHECK_EQ_INT(fl_pg_exec(c, "DROP SCHEMA IF EXISTS flowlua CASCADE",
                          "dropping the schema"), FLOWLUA_OK);
  fl_pg_close(c);
}

/* The relations of schema flowlua, "name:kind,..." in name order. */
static char *schema_objects(fl_pg *c) {
  return one_value(c,
                   "SELECT string_agg(relname || ':' || relkind::text, ',' ORDER BY"
                   " relname) FROM pg_class k JOIN pg_namespace s ON s.oid ="
                   " k.relnamespace WHERE nspname = 'flowlua' AND relkind IN"
                   " ('r', 'v')");
}

/* The relations of schema version FL_PG_SCHEMA_VERSION (5: version 1's,
   the job queue's, flow definitions, cancels asked for and paused flows,
   the described params of flow_def, a column, and flow_run's link of a
   subflow's run to its parent, two columns). */
static const char *const SCHEMA_NOW =
    "attempt_worker:r,cache:r,fire:r,fire_event:r,flow_def:r,flow_pause:r,"
    "flow_run:r,job:r,"
    "queue_worker:r,run_cancel:r,run_graph:r,schema_version:r,task_event:r,"
    "task_history:v,task_log:r,task_log_dropped:r,task_run:r";

/* ---- names and redaction ------------------------------------------------ */

static void test_uri_recognised(void) {
  CHECK(fl_pg_is_uri("postgresql://h/db"));
  CHECK(fl_pg_is_uri("postgres://u:p@h:5432/db?sslmode=require"));
  CHECK(fl_pg_is_uri("postgresql://")); /* libpq's defaults: still ours */
  CHECK(!fl_pg_is_uri(".flowlua/state.db"));
  CHECK(!fl_pg_is_uri(":memory:"));
  CHECK(!fl_pg_is_uri("postgresql:/h/db"));
  CHECK(!fl_pg_is_uri("POSTGRESQL://h/db")); /* libpq: case-sensitive */
  CHECK(!fl_pg_is_uri("mysql://h/db"));
  CHECK(!fl_pg_is_uri("./postgresql://h"));
  CHECK(!fl_pg_is_uri(""));
  CHECK(!fl_pg_is_uri(NULL));
}

static void test_uri_redacted(void) {
  expect_redacted("postgresql://ann:s3cret@db.example:5432/prod?sslmode=require",
                  "postgresql://ann:***@db.example:5432/prod?sslmode=require");
  expect_redacted("postgres://ann@db/prod", "postgres://ann@db/prod");
  expect_redacted("postgresql://db/prod", "postgresql://db/prod");
  expect_redacted("postgresql://db/prod?user=ann&password=s3cret&sslmode=disable",
                  "postgresql://db/prod?user=ann&password=***&sslmode=disable");
  expect_redacted("postgresql://db/prod?password=s3cret",
                  "postgresql://db/prod?password=***");
  /* the key itself percent-encoded, as libpq decodes it */
  expect_redacted("postgresql://db/prod?pass%77ord=s3cret",
                  "postgresql://db/prod?pass%77ord=***");
  expect_redacted("postgresql://ann:p%40ss%3Aw@h/d", "postgresql://ann:***@h/d");
  /* unescaped '@', '/' and '?' in the password: hidden whole */
  expect_redacted("postgresql://ann:p@ss@h/d", "postgresql://ann:***@h/d");
  expect_redacted("postgresql://ann:p/s?s@h/d", "postgresql://ann:***@h/d");
  expect_redacted("postgresql://u:pw@h1:5432,h2:5433/d",
                  "postgresql://u:***@h1:5432,h2:5433/d");
  /* both places at once */
  expect_redacted("postgresql://u:one@h/d?password=two",
                  "postgresql://u:***@h/d?password=***");
  expect_redacted("postgresql://u:@h/d", "postgresql://u:***@h/d");
}

static void test_keyword_conninfo_redacted(void) {
  expect_redacted("host=h user=ann password=s3cret dbname=d",
                  "host=h user=ann password=*** dbname=d");
  expect_redacted("host=h password = 'se cr\\'et' dbname=d",
                  "host=h password = *** dbname=d");
  expect_redacted("password=s3cr\\ et host=h", "password=*** host=h");
  expect_redacted("host=h dbname=d", "host=h dbname=d");
  expect_redacted("passwordx=1 password=2", "passwordx=1 password=***");
  /* an unterminated quote hides the rest */
  expect_redacted("host=h password='abc dbname=d", "host=h password=***");
  /* not key=value at all: the rest hidden when it could hold one */
  expect_redacted("host=h password", "host=h ***");
  /* many: every one hidden */
  fl_buf many = FL_BUF_INIT, want = FL_BUF_INIT;
  for (int i = 0; i < 40; i++) {
    fl_buf_addf(&many, "password=p%d ", i);
    fl_buf_adds(&want, "password=*** ");
  }
  expect_redacted(fl_buf_str(&many), fl_buf_str(&want));
  fl_buf_free(&many);
  fl_buf_free(&want);
  fl_pg_span spans[2];
  CHECK_EQ_INT(fl_pg_password_spans("password=a password=b", NULL, 0), 2);
  CHECK_EQ_INT(fl_pg_password_spans("password=a password=b", spans, 2), 2);
  CHECK_EQ_INT(spans[1].off, 20);
  CHECK_EQ_INT(spans[1].len, 1);
}

static void test_scrub(void) {
  const char *one[] = {"s3cret"};
  fl_buf b = FL_BUF_INIT;
  fl_pg_scrub("FATAL: s3cret is not s3cre nor s3cret!", one, 1, &b);
  CHECK_EQ_STR(fl_buf_str(&b), "FATAL: *** is not s3cre nor ***!");
  /* one secret inside another: the longer goes whole */
  const char *two[] = {"ab", "xabcd", NULL, ""};
  fl_buf_reset(&b);
  fl_pg_scrub("1xabcd2ab3", two, 4, &b);
  CHECK_EQ_STR(fl_buf_str(&b), "1***2***3");
  fl_buf_reset(&b);
  fl_pg_scrub("nothing here", NULL, 0, &b);
  CHECK_EQ_STR(fl_buf_str(&b), "nothing here");
  fl_buf_free(&b);
}

/* ---- loading libpq ------------------------------------------------------- */

/* In a child, whose first load of libpq this is (the parent's is the
   other tests'): FLOWLUA_LIBPQ set to library, two connects to the
   harness's server. Returns what the child saw, "RC RC ERROR" (malloc'd). */
static char *connect_with_libpq(const char *library) {
  int out[2];
  CHECK_EQ_INT(pipe(out), 0);
  pid_t kid = fork();
  if (kid == 0) {
    close(out[0]);
    setenv("FLOWLUA_LIBPQ", library, 1);
    fl_pg *c = NULL;
    char e[2048], again[2048];
    int rc = fl_pg_connect(uri, 5, &c, e, sizeof e);
    fl_pg_close(c);
    /* The failure is kept: the second connect says the same. */
    int rc2 = fl_pg_connect(uri, 5, &c, again, sizeof again);
    fl_pg_close(c);
    char line[4200];
    int n = snprintf(line, sizeof line, "%d %d %s%s", rc, rc2, e,
                     strcmp(e, again) ? " (the second said otherwise)" : "");
    _exit(write(out[1], line, (size_t)n) == n ? 0 : 1);
  }
  close(out[1]);
  fl_buf got = FL_BUF_INIT;
  char chunk[512];
  ssize_t n;
  while ((n = read(out[0], chunk, sizeof chunk)) > 0)
    fl_buf_add(&got, chunk, (size_t)n);
  close(out[0]);
  int status = -1;
  waitpid(kid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char *text = strdup(fl_buf_str(&got));
  fl_buf_free(&got);
  return text;
}

/* Nothing loads libpq before the first connection: not the start, not
   linking (the library does not link it). Without it, that connection
   fails at once and says what to install; a library that lacks a function
   flowlua calls is named as too old. No message holds the password. */
static void test_libpq_missing(void) {
  char eio[32]; /* both connects: FLOWLUA_EIO */
  snprintf(eio, sizeof eio, "%d %d ", FLOWLUA_EIO, FLOWLUA_EIO);
  CHECK(fl_pq() == NULL);
  char *text = connect_with_libpq("/nonexistent/libpq.so");
  CHECK(strncmp(text, eio, strlen(eio)) == 0);
  CHECK_CONTAINS(text, "state store 'postgresql://");
  CHECK_CONTAINS(text, ":***@127.0.0.1:");
  CHECK_CONTAINS(text, "': cannot connect: cannot load libpq "
                       "(/nonexistent/libpq.so: ");
  CHECK_CONTAINS(text, "): install libpq5");
  CHECK_NOT_CONTAINS(text, "said otherwise");
  CHECK_NOT_CONTAINS(text, password);
  free(text);
  text = connect_with_libpq("libc.so.6");
  CHECK(strncmp(text, eio, strlen(eio)) == 0);
  CHECK_CONTAINS(text, "': cannot connect: libc.so.6 has no PQconninfoParse: "
                       "too old a libpq");
  CHECK_NOT_CONTAINS(text, password);
  free(text);
  CHECK(fl_pq() == NULL); /* the parent's first load is still to come */
}

/* libpq's parse errors echo the text they choke on: here the password. */
static void test_malformed_conninfo(void) {
  fl_pg *c = NULL;
  int rc = fl_pg_connect("postgresql://u:s3cr%zzet@127.0.0.1/d", 5, &c, err,
                         sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_EINVAL);
  CHECK(c == NULL);
  CHECK_CONTAINS(err, "state store 'postgresql://u:***@127.0.0.1/d'");
  CHECK_CONTAINS(err, "not a valid PostgreSQL URI or conninfo");
  CHECK_CONTAINS(err, "percent");
  CHECK_NOT_CONTAINS(err, "s3cr");
  rc = fl_pg_connect("postgresql://u:s3cret@127.0.0.1/d?nosuch=1", 5, &c, err,
                     sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_EINVAL);
  CHECK_CONTAINS(err, "nosuch");
  CHECK_NOT_CONTAINS(err, "s3cret");
  rc = fl_pg_connect("host=127.0.0.1 password='s3cret", 5, &c, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_EINVAL);
  CHECK_CONTAINS(err, "state store 'host=127.0.0.1 password=***'");
  CHECK_NOT_CONTAINS(err, "s3cret");
}

/* ---- connecting and migrating ------------------------------------------- */

static void test_connect_and_migrate(void) {
  drop_schema();
  fl_pg *c = connect_ok();
  if (!c) return;
  CHECK_EQ_INT(fl_pg_attempts(c), 1);
  CHECK_NOT_CONTAINS(fl_pg_name(c), password);
  CHECK_CONTAINS(fl_pg_name(c), ":***@127.0.0.1:");
  char *v = one_value(c, "SHOW application_name");
  CHECK_EQ_STR(v, "flowlua");
  free(v);
  v = one_value(c, "SHOW search_path");
  CHECK_EQ_STR(v, "flowlua");
  free(v);
  int flags = fcntl(fl_pq()->socket(fl_pg_conn(c)), F_GETFD);
  CHECK(flags >= 0 && (flags & FD_CLOEXEC));

  int version = -1;
  CHECK_EQ_INT(fl_pg_schema_version(c, &version), FLOWLUA_OK);
  CHECK_EQ_INT(version, 0);
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_schema_version(c, &version), FLOWLUA_OK);
  CHECK_EQ_INT(version, FL_PG_SCHEMA_VERSION);
  v = schema_objects(c);
  CHECK_EQ_STR(v, SCHEMA_NOW);
  free(v);
  /* One row per step, each naming the flowlua that took it. */
  v = one_value(c, "SELECT string_agg(version || ' ' || flowlua, ',' ORDER BY"
                   " version) FROM schema_version");
  CHECK_EQ_STR(v, "1 " FLOWLUA_VERSION ",2 " FLOWLUA_VERSION
                  ",3 " FLOWLUA_VERSION ",4 " FLOWLUA_VERSION
                  ",5 " FLOWLUA_VERSION);
  free(v);
  /* A version 1 schema (an older flowlua's) is taken to the current one:
     the job queue's tables, then log lines, flow definitions and cancels,
     are added, nothing else is touched. */
  CHECK_EQ_INT(fl_pg_exec(c, "DROP TABLE flowlua.job, flowlua.queue_worker,"
                             " flowlua.task_log, flowlua.task_log_dropped,"
                             " flowlua.flow_def, flowlua.run_cancel,"
                             " flowlua.flow_pause;"
                             "ALTER TABLE flowlua.flow_run DROP COLUMN"
                             " parent_run, DROP COLUMN parent_task;"
                             "DELETE FROM flowlua.schema_version WHERE version >= 2",
                          "back to version 1"), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_schema_version(c, &version), FLOWLUA_OK);
  CHECK_EQ_INT(version, FL_PG_SCHEMA_VERSION);
  v = schema_objects(c);
  CHECK_EQ_STR(v, SCHEMA_NOW);
  free(v);
  /* A version 2 schema (runs recorded before log lines were kept) is taken
     to version 3: the log, flow and cancel tables are added, its runs stay, and a run of
     it can be deleted with its lines (ON DELETE CASCADE). */
  CHECK_EQ_INT(fl_pg_exec(c, "DROP TABLE flowlua.task_log,"
                             " flowlua.task_log_dropped, flowlua.flow_def,"
                             " flowlua.run_cancel, flowlua.flow_pause;"
                             "ALTER TABLE flowlua.flow_run DROP COLUMN"
                             " parent_run, DROP COLUMN parent_task;"
                             "DELETE FROM flowlua.schema_version WHERE version >= 3;"
                             "INSERT INTO flowlua.flow_run(run_id, flow, state,"
                             " started_at, lease_owner, lease_until) VALUES"
                             " ('v2run', 'etl', 'Success', 1, 'h:1:x', 2)",
                          "back to version 2"), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_schema_version(c, &version), FLOWLUA_OK);
  CHECK_EQ_INT(version, FL_PG_SCHEMA_VERSION);
  v = schema_objects(c);
  CHECK_EQ_STR(v, SCHEMA_NOW);
  free(v);
  /* A version 3 schema (flows recorded before their params were
     described) gains flow_def.param_types, NULL for what it held. */
  CHECK_EQ_INT(fl_pg_exec(c, "ALTER TABLE flowlua.flow_def DROP COLUMN"
                             " param_types;"
                             "ALTER TABLE flowlua.flow_run DROP COLUMN"
                             " parent_run, DROP COLUMN parent_task;"
                             "DELETE FROM flowlua.schema_version WHERE version >= 4;"
                             "INSERT INTO flowlua.flow_def(flow, script, host,"
                             " script_sha256, params, updated_at) VALUES"
                             " ('old', '/s.lua', 'h', 'ab', '{\"n\":1}', 1)",
                          "back to version 3"), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_schema_version(c, &version), FLOWLUA_OK);
  CHECK_EQ_INT(version, FL_PG_SCHEMA_VERSION);
  v = one_value(c, "SELECT coalesce(param_types, 'null') || ' ' || params"
                   " FROM flowlua.flow_def WHERE flow = 'old'");
  CHECK_EQ_STR(v, "null {\"n\":1}");
  free(v);
  CHECK_EQ_INT(fl_pg_exec(c, "DELETE FROM flowlua.flow_def",
                          "the old flow gone"), FLOWLUA_OK);
  /* A version 4 schema (runs recorded before subflows were linked to
     their parents) gains flow_run.parent_run and parent_task, NULL for the
     runs it held, and the index that finds a run's subflows. */
  CHECK_EQ_INT(fl_pg_exec(c, "ALTER TABLE flowlua.flow_run DROP COLUMN"
                             " parent_run, DROP COLUMN parent_task;"
                             "DELETE FROM flowlua.schema_version WHERE version = 5;"
                             "INSERT INTO flowlua.flow_run(run_id, flow, state,"
                             " started_at, lease_owner, lease_until) VALUES"
                             " ('v4run', 'etl', 'Success', 1, 'h:1:x', 2)",
                          "back to version 4"), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_schema_version(c, &version), FLOWLUA_OK);
  CHECK_EQ_INT(version, FL_PG_SCHEMA_VERSION);
  v = one_value(c, "SELECT coalesce(parent_run, 'null') || ' ' ||"
                   " coalesce(parent_task, 'null') FROM flowlua.flow_run"
                   " WHERE run_id = 'v4run'");
  CHECK_EQ_STR(v, "null null");
  free(v);
  v = one_value(c, "SELECT indexdef FROM pg_indexes WHERE schemaname ="
                   " 'flowlua' AND indexname = 'flow_run_by_parent'");
  CHECK_CONTAINS(v, "(parent_run) WHERE (parent_run IS NOT NULL)");
  free(v);
  CHECK_EQ_INT(fl_pg_exec(c, "DELETE FROM flowlua.flow_run WHERE run_id ="
                             " 'v4run'", "the old run gone"), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_exec(c,
      "INSERT INTO flowlua.task_log(run, n, seq, attempt, at, level, line)"
      "  SELECT id, 0, 1, 1, 1.5, 'INFO', 'kept' FROM flowlua.flow_run"
      "  WHERE run_id = 'v2run';"
      "INSERT INTO flowlua.task_log_dropped(run, n, lines, bytes)"
      "  SELECT id, 0, 3, 30 FROM flowlua.flow_run WHERE run_id = 'v2run'",
      "log lines of a migrated run"), FLOWLUA_OK);
  v = one_value(c, "SELECT count(*) FROM flowlua.task_log");
  CHECK_EQ_STR(v, "1");
  free(v);
  CHECK_EQ_INT(fl_pg_exec(c, "DELETE FROM flowlua.flow_run WHERE run_id ="
                             " 'v2run'", "deleting the run"), FLOWLUA_OK);
  v = one_value(c, "SELECT (SELECT count(*) FROM flowlua.task_log) +"
                   " (SELECT count(*) FROM flowlua.task_log_dropped)");
  CHECK_EQ_STR(v, "0");
  free(v);

  /* The tables read as the SQLite history's: unqualified (search_path),
     params and results kept as written (text, byte for byte: -0.0 stays
     -0.0) and cast to JSONB by a reader, task_history from a row and an
     event. */
  CHECK_EQ_INT(fl_pg_exec(c,
      "INSERT INTO flow_run(run_id, flow, params, state, started_at,"
      "  lease_owner, lease_until)"
      "  VALUES ('r1', 'etl', '{\"n\": 3}', 'Running', 100, 'h:1:x', 130);"
      "INSERT INTO task_run(run, n, key, task, state, state_at, state_seq,"
      "  attempts, started_at, started_seq, ended_at, result, result_kind)"
      "  SELECT id, 0, 'fetch', 'fetch', 'Success', 102, 3, 2, 100.5, 1,"
      "  102, '[1, \"a\", -0.0]', 1 FROM flow_run WHERE run_id = 'r1';"
      "INSERT INTO task_event(run, n, seq, at, state, attempt, error)"
      "  SELECT id, 0, 2, 101, 'Retrying', 1, 'boom' FROM flow_run"
      "  WHERE run_id = 'r1'",
      "recording a run"), FLOWLUA_OK);
  v = one_value(c, "SELECT string_agg(seq || ' ' || state || ' ' || attempt,"
                   " ', ' ORDER BY seq) FROM task_history");
  CHECK_EQ_STR(v, "1 Running 1, 2 Retrying 1, 3 Success 2");
  free(v);
  CHECK_EQ_INT(one_int(c, "SELECT (params::jsonb->>'n')::int +"
                          " (result::jsonb->>0)::int"
                          " FROM flow_run, task_run WHERE run = id"), 4);
  v = one_value(c, "SELECT result FROM task_run");
  CHECK_EQ_STR(v, "[1, \"a\", -0.0]");
  free(v);
  fl_pg_close(c);
}

static void test_migrate_again_does_nothing(void) {
  fl_pg *c = connect_ok();
  if (!c) return;
  long long before =
      one_int(c, "SELECT max(xmin::text::bigint) FROM schema_version");
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_OK);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM schema_version"),
               FL_PG_SCHEMA_VERSION);
  /* the same rows, never rewritten */
  CHECK_EQ_INT(one_int(c, "SELECT max(xmin::text::bigint) FROM schema_version"),
               before);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM flow_run"), 1);
  fl_pg_close(c);
}

/* Children connect, say so, wait for the word, then migrate together. */
static void test_two_processes_migrate(void) {
  drop_schema();
  enum { N = 3 };
  int ready[2], go[2];
  CHECK_EQ_INT(pipe(ready), 0);
  CHECK_EQ_INT(pipe(go), 0);
  pid_t kids[N];
  for (int i = 0; i < N; i++) {
    kids[i] = fork();
    if (kids[i] == 0) {
      close(ready[0]);
      close(go[1]);
      fl_pg *c = NULL;
      char e[2048];
      int rc = fl_pg_connect(uri, 60, &c, e, sizeof e);
      char byte = rc == FLOWLUA_OK ? 'y' : 'n';
      if (write(ready[1], &byte, 1) != 1 || rc) {
        fprintf(stderr, "child %d: %s\n", i, e);
        _exit(2);
      }
      if (read(go[0], &byte, 1) != 1) _exit(3);
      rc = fl_pg_migrate(c);
      if (rc) fprintf(stderr, "child %d: %s\n", i, fl_pg_errmsg(c));
      fl_pg_close(c);
      _exit(rc ? 1 : 0);
    }
  }
  close(ready[1]);
  close(go[0]);
  int connected = 0;
  char byte;
  while (connected < N && read(ready[0], &byte, 1) == 1 && byte == 'y')
    connected++;
  CHECK_EQ_INT(connected, N);
  char word[N] = {0};
  CHECK_EQ_INT(write(go[1], word, N), N); /* one byte each, all at once */
  close(go[1]);
  close(ready[0]);
  for (int i = 0; i < N; i++) {
    int status = -1;
    waitpid(kids[i], &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  fl_pg *c = connect_ok();
  if (!c) return;
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM schema_version"),
               FL_PG_SCHEMA_VERSION);
  CHECK_EQ_INT(one_int(c, "SELECT max(version) FROM schema_version"),
               FL_PG_SCHEMA_VERSION);
  char *v = schema_objects(c);
  CHECK_EQ_STR(v, SCHEMA_NOW);
  free(v);
  fl_pg_close(c);
}

static void test_newer_schema_refused(void) {
  fl_pg *c = connect_ok();
  if (!c) return;
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_exec(c, "INSERT INTO schema_version(version, flowlua)"
                             " VALUES (7, '9.0.0')", "a newer flowlua"),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_EIO);
  const char *m = fl_pg_errmsg(c);
  CHECK_CONTAINS(m, "state store 'postgresql://");
  CHECK_CONTAINS(m, "written by a newer flowlua (schema version 7; this one "
                    "knows up to 5); refusing to touch it");
  CHECK_NOT_CONTAINS(m, password);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM schema_version"),
               FL_PG_SCHEMA_VERSION + 1);
  CHECK_EQ_INT(fl_pg_exec(c, "DELETE FROM schema_version WHERE version = 7",
                          "back to ours"), FLOWLUA_OK);
  fl_pg_close(c);
}

static void test_foreign_schema_refused(void) {
  drop_schema();
  fl_pg *c = connect_ok();
  if (!c) return;
  CHECK_EQ_INT(fl_pg_exec(c, "CREATE SCHEMA flowlua;"
                             " CREATE TABLE flowlua.orders(id int)",
                          "someone else's schema"), FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_EIO);
  CHECK_CONTAINS(fl_pg_errmsg(c), "no flowlua.schema_version: it belongs to "
                                  "something else; refusing to touch it");
  char *v = schema_objects(c);
  CHECK_EQ_STR(v, "orders:r"); /* untouched */
  free(v);
  /* An empty schema flowlua (made by an administrator) is used. */
  CHECK_EQ_INT(fl_pg_exec(c, "DROP TABLE flowlua.orders", "emptying it"),
               FLOWLUA_OK);
  CHECK_EQ_INT(fl_pg_migrate(c), FLOWLUA_OK);
  v = schema_objects(c);
  CHECK_EQ_STR(v, SCHEMA_NOW);
  free(v);
  fl_pg_close(c);
}

/* ---- statements ------------------------------------------------------------ */

static void test_statement_errors(void) {
  fl_pg *c = connect_ok();
  if (!c) return;
  CHECK_EQ_INT(fl_pg_exec(c, "SELECT * FROM no_such_table", "listing runs"),
               FLOWLUA_EIO);
  CHECK_CONTAINS(fl_pg_errmsg(c), "': listing runs: relation \"no_such_table\""
                                  " does not exist");
  CHECK(!fl_pg_lost(c));
  /* the detail too: which key was taken */
  const char *p[] = {"etl", "1764346201000"};
  PGresult *r = fl_pg_query(c, "claiming a fire time",
                            "INSERT INTO fire VALUES ($1, $2, 0, 'h', 1)", 2, p);
  CHECK(r != NULL);
  fl_pq()->clear(r);
  r = fl_pg_query(c, "claiming a fire time",
                  "INSERT INTO fire VALUES ($1, $2, 0, 'h', 2)", 2, p);
  CHECK(r == NULL);
  CHECK_CONTAINS(fl_pg_errmsg(c), "claiming a fire time: duplicate key value "
                                  "violates unique constraint \"fire_pkey\" "
                                  "(Key (flow, scheduled_ms)=(etl, "
                                  "1764346201000) already exists.)");
  /* the connection stays usable */
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM fire"), 1);
  fl_pg_close(c);
}

/* ---- failures to connect ------------------------------------------------- */

static void test_wrong_password(void) {
  char bad[1024];
  const char *wrong = "Wr0ng-pa55word";
  const char *at = strchr(uri + strlen("postgresql://"), '@');
  snprintf(bad, sizeof bad, "postgresql://flowlua_test:%s%s", wrong, at);
  fl_pg *c = NULL;
  double t0 = pg_test_now();
  int rc = fl_pg_connect(bad, 30, &c, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_EIO);
  CHECK(c == NULL);
  CHECK_CONTAINS(err, "state store 'postgresql://flowlua_test:***@127.0.0.1:");
  CHECK_CONTAINS(err, "cannot connect (not retried: the server refused it)");
  CHECK_CONTAINS(err, "password authentication failed for user \"flowlua_test\"");
  CHECK_NOT_CONTAINS(err, wrong);
  CHECK_NOT_CONTAINS(err, password);
  /* refused at once, not retried until the deadline */
  CHECK(pg_test_now() - t0 < 20);

  /* key=value, the password quoted with a space */
  snprintf(bad, sizeof bad,
           "host=127.0.0.1 port=%s user=flowlua_test dbname=flowlua_test "
           "password='Wr0ng pa55'", getenv("FLOWLUA_TEST_PG_PORT"));
  rc = fl_pg_connect(bad, 30, &c, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_EIO);
  CHECK_CONTAINS(err, "user=flowlua_test dbname=flowlua_test password=***'");
  CHECK_CONTAINS(err, "password authentication failed");
  CHECK_NOT_CONTAINS(err, "Wr0ng");
}

static void test_stopped_server_fails_in_time(void) {
  if (pg_test_server("stop") != 0) {
    CHECK(!"the server stopped");
    return;
  }
  fl_pg *c = NULL;
  double t0 = pg_test_now();
  int rc = fl_pg_connect(uri, 1.5, &c, err, sizeof err);
  double took = pg_test_now() - t0;
  CHECK_EQ_INT(rc, FLOWLUA_EIO);
  CHECK(c == NULL);
  /* within the deadline (and a margin for a loaded machine to schedule the
     last refusal), after trying until it */
  CHECK(took < 1.5 + 1.0);
  CHECK(took > 1.0);
  CHECK_CONTAINS(err, "cannot connect (");
  CHECK_CONTAINS(err, " attempts in ");
  CHECK_CONTAINS(err, "Connection refused");
  CHECK_CONTAINS(err, " times)");
  CHECK_NOT_CONTAINS(err, password);
  CHECK_EQ_INT(pg_test_server("start"), 0);
}

/* The server comes up while the connect is in its backoff: the child starts
   it (a Python process, then postgres: hundreds of milliseconds) while the
   parent's first attempt, made at once, is refused. */
static void test_restart_during_backoff(void) {
  if (pg_test_server("stop") != 0) {
    CHECK(!"the server stopped");
    return;
  }
  pid_t kid = fork();
  if (kid == 0) _exit(pg_test_server("start") == 0 ? 0 : 1);
  fl_pg *c = NULL;
  int rc = fl_pg_connect(uri, 60, &c, err, sizeof err);
  CHECK_EQ_INT(rc, FLOWLUA_OK);
  if (rc) fprintf(stderr, "  %s\n", err);
  int status = -1;
  waitpid(kid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (!c) return;
  CHECK(fl_pg_attempts(c) >= 2);
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM schema_version"),
               FL_PG_SCHEMA_VERSION);
  fl_pg_close(c);
}

/* SIGKILL of the server under an open connection: the next statement fails
   saying so, the handle knows it is lost, and a reconnect gets it back. */
static void test_lost_connection_and_reconnect(void) {
  fl_pg *c = connect_ok();
  if (!c) return;
  CHECK_EQ_INT(pg_test_server("kill"), 0);
  CHECK_EQ_INT(fl_pg_exec(c, "SELECT 1", "checking the connection"),
               FLOWLUA_EIO);
  CHECK(fl_pg_lost(c));
  CHECK_CONTAINS(fl_pg_errmsg(c), "checking the connection: ");
  CHECK_CONTAINS(fl_pg_errmsg(c), "closed the connection");
  CHECK_NOT_CONTAINS(fl_pg_errmsg(c), password);
  /* with the server down, a reconnect fails in time and can be tried again */
  CHECK_EQ_INT(fl_pg_reconnect(c, 0.5), FLOWLUA_EIO);
  CHECK(fl_pg_conn(c) == NULL);
  CHECK_EQ_INT(fl_pg_exec(c, "SELECT 1", "checking"), FLOWLUA_EIO);
  CHECK_CONTAINS(fl_pg_errmsg(c), "checking: not connected");
  CHECK_EQ_INT(pg_test_server("start"), 0);
  CHECK_EQ_INT(fl_pg_reconnect(c, 60), FLOWLUA_OK);
  CHECK(!fl_pg_lost(c));
  CHECK_EQ_INT(one_int(c, "SELECT count(*) FROM flow_run"), 0);
  char *v = one_value(c, "SHOW search_path");
  CHECK_EQ_STR(v, "flowlua");
  free(v);
  fl_pg_close(c);
}

int main(void) {
  uri = getenv("FLOWLUA_TEST_PG");
  if (!uri || !getenv("FLOWLUA_TEST_PG_CTL")) {
    fprintf(stderr, "test_pg_conn: run it through tests/support/pg/with_pg.py"
                    " (FLOWLUA_TEST_PG and FLOWLUA_TEST_PG_CTL are not set)\n");
    return 1;
  }
  /* postgresql://ROLE:PASSWORD@...: the harness's password needs no
     escaping */
  const char *colon = strchr(uri + strlen("postgresql://"), ':');
  const char *at = strchr(uri, '@');
  if (!colon || !at || at < colon ||
      (size_t)(at - colon - 1) >= sizeof password) {
    fprintf(stderr, "test_pg_conn: no password in FLOWLUA_TEST_PG\n");
    return 1;
  }
  memcpy(password, colon + 1, (size_t)(at - colon - 1));

  RUN(test_uri_recognised);
  RUN(test_uri_redacted);
  RUN(test_keyword_conninfo_redacted);
  RUN(test_scrub);
  RUN(test_libpq_missing); /* before any connection loads libpq */
  RUN(test_malformed_conninfo);
  RUN(test_connect_and_migrate);
  RUN(test_migrate_again_does_nothing);
  RUN(test_two_processes_migrate);
  RUN(test_newer_schema_refused);
  RUN(test_foreign_schema_refused);
  RUN(test_statement_errors);
  RUN(test_wrong_password);
  RUN(test_stopped_server_fails_in_time);
  RUN(test_restart_during_backoff);
  RUN(test_lost_connection_and_reconnect);
  return check_summary();
}
