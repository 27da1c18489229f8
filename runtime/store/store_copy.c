/*
 * store_copy.c — fl_store_copy: a whole run history copied from one state
 * to another, SQLite or PostgreSQL on either side (`flowlua state copy`).
 *
 * How: table by table (runs, graphs, task runs, state changes, workers,
 * log lines and their drops, fire claims, fire events, the cache), each row read from the source in
 * one read transaction (a snapshot: a flow writing meanwhile changes
 * nothing of what is copied) and written to the target in one
 * transaction, which the counts of both must then agree with before it
 * commits. Every row crosses as text in one form for both backends
 * (fl__copy_row, pg_store.h): integers in decimal, doubles as %.17g (to
 * the bit), so the four directions are one code. On PostgreSQL the rows
 * go many to a statement (pg_copy.c); on SQLite one prepared statement
 * per table, inside the transaction.
 *
 * Meaning kept, not layout: a SQLite source's task runs are read through
 * its view task_run (task_row and the packed task_pack alike), and a
 * SQLite target gets them as task_row rows (unpacked: a copy is not a
 * flow's hot path). Run ids (UUIDs) are kept; row ids are moved past the
 * target's own (SQLite: its run_ids block counter; PostgreSQL: the
 * identity sequence is set past them). Fire events get the target's ids,
 * in the source's order.
 *
 * What it must not do: write into a target that holds runs (refused
 * before a row is written); copy from a source where a run is Running (a
 * live driver would go on writing there); commit a target whose counts do
 * not match the source's; leave a transaction open on either side.
 */
#define _GNU_SOURCE
#include "pg_store.h"

#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_api.h"
#include "utf8.h"

/* ---- the tables ---------------------------------------------------------------
 *
 * Each with the same columns, in the same order, on both sides. types has
 * a letter per column: i integer, r double, t text. run_col is the column
 * that holds a run's row id (mapped by the target's offset), -1 none. */

typedef struct copy_table {
  const char *table; /* counted as SELECT count(*) FROM table */
  const char *what;  /* "task runs", in messages */
  const char *types;
  int run_col;
  const char *sqlite_select, *pg_select;
  const char *sqlite_insert, *pg_insert;
} copy_table;

enum { C_RUNS, C_GRAPHS, C_TASKS, C_EVENTS, C_WORKERS, C_LOGS, C_LOG_DROPS,
       C_FIRES, C_FIRE_EVENTS, C_CACHE, C_FLOWS, C_PAUSES, C_TABLES };

#define RUN_COLS                                                              \
  "id, run_id, flow, script, params, state, scheduled_at, started_at,"        \
  " ended_at, error, task_counts, resumed_from, owner_host, owner_boot,"      \
  " owner_pid, owner_start, parent_run, parent_task"
#define TASK_COLS                                                             \
  "run, n, key, task, map_index, state, state_at, state_seq, attempts,"       \
  " error, started_at, started_seq, ended_at, result_kind, result"

static const copy_table tables[C_TABLES] = {
    [C_RUNS] = {
        "flow_run", "runs", "itttttrrrtttttiitt", 0,
        "SELECT " RUN_COLS " FROM flow_run ORDER BY id",
        "SELECT id, run_id, flow, script, params, state, scheduled_at,"
        " started_at, ended_at, error, task_counts::text, resumed_from,"
        " owner_host, owner_boot, owner_pid, owner_start, parent_run,"
        " parent_task FROM flow_run ORDER BY id",
        /* SQLite's owner columns are NOT NULL; PostgreSQL's boot and start
           may be NULL (a run started by a driver that could not tell). */
        "INSERT INTO flow_run(" RUN_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
        " ?7, ?8, ?9, ?10, ?11, ?12, coalesce(?13, ''), coalesce(?14, ''),"
        " coalesce(?15, 0), coalesce(?16, 0), ?17, ?18)",
        "INSERT INTO flow_run(" RUN_COLS ") SELECT unnest($1::bigint[]),"
        " unnest($2::text[]), unnest($3::text[]), unnest($4::text[]),"
        " unnest($5::text[]), unnest($6::text[]), unnest($7::float8[]),"
        " unnest($8::float8[]), unnest($9::float8[]), unnest($10::text[]),"
        " unnest($11::jsonb[]), unnest($12::text[]), unnest($13::text[]),"
        " unnest($14::text[]), unnest($15::bigint[]), unnest($16::bigint[]),"
        " unnest($17::text[]), unnest($18::text[])"},
    [C_GRAPHS] = {
        "run_graph", "run graphs", "itt", 0,
        "SELECT run, keys, edges FROM run_graph ORDER BY run",
        "SELECT run, keys::text, edges::text FROM run_graph ORDER BY run",
        "INSERT INTO run_graph(run, keys, edges) VALUES (?1, ?2, ?3)",
        "INSERT INTO run_graph(run, keys, edges) SELECT unnest($1::bigint[]),"
        " unnest($2::jsonb[]), unnest($3::jsonb[])"},
    [C_TASKS] = {
        "task_run", "task runs", "iittitriitririt", 0,
        /* The view: task_row's rows and task_pack's, as store_read.c
           reads them. */
        "SELECT " TASK_COLS " FROM task_run ORDER BY run, n",
        "SELECT " TASK_COLS " FROM task_run ORDER BY run, n",
        "INSERT INTO task_row(" TASK_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
        " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        "INSERT INTO task_run(" TASK_COLS ") SELECT unnest($1::bigint[]),"
        " unnest($2::int[]), unnest($3::text[]), unnest($4::text[]),"
        " unnest($5::int[]), unnest($6::text[]), unnest($7::float8[]),"
        " unnest($8::int[]), unnest($9::int[]), unnest($10::text[]),"
        " unnest($11::float8[]), unnest($12::int[]), unnest($13::float8[]),"
        " unnest($14::smallint[]), unnest($15::text[])"},
    [C_EVENTS] = {
        "task_event", "state changes", "iiirtit", 0,
        "SELECT run, n, seq, at, state, attempt, error FROM task_event"
        " ORDER BY run, n, seq",
        "SELECT run, n, seq, at, state, attempt, error FROM task_event"
        " ORDER BY run, n, seq",
        "INSERT INTO task_event(run, n, seq, at, state, attempt, error)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        "INSERT INTO task_event(run, n, seq, at, state, attempt, error)"
        " SELECT unnest($1::bigint[]), unnest($2::int[]), unnest($3::int[]),"
        " unnest($4::float8[]), unnest($5::text[]), unnest($6::int[]),"
        " unnest($7::text[])"},
    [C_WORKERS] = {
        "attempt_worker", "worker attempts", "iiiti", 0,
        "SELECT run, n, attempt, host, pid FROM attempt_worker",
        "SELECT run, n, attempt, host, pid FROM attempt_worker",
        "INSERT INTO attempt_worker(run, n, attempt, host, pid)"
        " VALUES (?1, ?2, ?3, ?4, ?5)",
        "INSERT INTO attempt_worker(run, n, attempt, host, pid)"
        " SELECT unnest($1::bigint[]), unnest($2::int[]), unnest($3::int[]),"
        " unnest($4::text[]), unnest($5::bigint[])"},
    [C_LOGS] = {
        "task_log", "log lines", "iiiirtt", 0,
        "SELECT run, n, seq, attempt, at, level, line FROM task_log"
        " ORDER BY run, n, seq",
        "SELECT run, n, seq, attempt, at, level, line FROM task_log"
        " ORDER BY run, n, seq",
        "INSERT INTO task_log(run, n, seq, attempt, at, level, line)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        "INSERT INTO task_log(run, n, seq, attempt, at, level, line)"
        " SELECT unnest($1::bigint[]), unnest($2::int[]),"
        " unnest($3::bigint[]), unnest($4::int[]), unnest($5::float8[]),"
        " unnest($6::text[]), unnest($7::text[])"},
    [C_LOG_DROPS] = {
        "task_log_dropped", "counts of dropped log lines", "iiii", 0,
        "SELECT run, n, lines, bytes FROM task_log_dropped",
        "SELECT run, n, lines, bytes FROM task_log_dropped",
        "INSERT INTO task_log_dropped(run, n, lines, bytes)"
        " VALUES (?1, ?2, ?3, ?4)",
        "INSERT INTO task_log_dropped(run, n, lines, bytes)"
        " SELECT unnest($1::bigint[]), unnest($2::int[]),"
        " unnest($3::bigint[]), unnest($4::bigint[])"},
    /* A fire claim or cached result the target holds already stays, and
       the counts then tell (a target with no runs seldom has either). */
    [C_FIRES] = {
        "fire", "fire claims", "tirti", -1,
        "SELECT flow, scheduled_ms, claimed_at, owner_host, owner_pid"
        " FROM fire",
        "SELECT flow, scheduled_ms, claimed_at, owner_host, owner_pid"
        " FROM fire",
        "INSERT OR IGNORE INTO fire(flow, scheduled_ms, claimed_at,"
        " owner_host, owner_pid) VALUES (?1, ?2, ?3, ?4, ?5)",
        "INSERT INTO fire(flow, scheduled_ms, claimed_at, owner_host,"
        " owner_pid) SELECT unnest($1::text[]), unnest($2::bigint[]),"
        " unnest($3::float8[]), unnest($4::text[]), unnest($5::bigint[])"
        " ON CONFLICT (flow, scheduled_ms) DO NOTHING"},
    /* SQLite's fire_event has no owner_host: '' from it, dropped into it
       (?8 is bound and unused). */
    [C_FIRE_EVENTS] = {
        "fire_event", "fire events", "ttrritrti", -1,
        "SELECT flow, outcome, scheduled_at, last_at, count, detail, at, '',"
        " owner_pid FROM fire_event ORDER BY id",
        "SELECT flow, outcome, scheduled_at, last_at, count, detail, at,"
        " owner_host, owner_pid FROM fire_event ORDER BY id",
        "INSERT INTO fire_event(flow, outcome, scheduled_at, last_at, count,"
        " detail, at, owner_pid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9)",
        "INSERT INTO fire_event(flow, outcome, scheduled_at, last_at, count,"
        " detail, at, owner_host, owner_pid) SELECT f.flow, f.outcome,"
        " f.scheduled_at, f.last_at, f.count, f.detail, f.at, f.owner_host,"
        " f.owner_pid FROM unnest("
        " $1::text[], $2::text[], $3::float8[], $4::float8[], $5::int[],"
        " $6::text[], $7::float8[], $8::text[], $9::bigint[]) WITH ORDINALITY"
        " AS f(flow, outcome, scheduled_at, last_at, count, detail, at,"
        " owner_host, owner_pid, ord) ORDER BY f.ord"},
    [C_CACHE] = {
        "cache", "cache entries", "tttr", -1,
        "SELECT task, key, result, stored_at FROM cache",
        "SELECT task, key, result, stored_at FROM cache",
        "INSERT OR IGNORE INTO cache(task, key, result, stored_at)"
        " VALUES (?1, ?2, ?3, ?4)",
        "INSERT INTO cache(task, key, result, stored_at)"
        " SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::text[]),"
        " unnest($4::float8[]) ON CONFLICT (task, key) DO NOTHING"},
    /* Flow definitions, as the cache. A cancel asked for is not copied:
       it is for a Running run, and a copy holds none. */
    [C_FLOWS] = {
        "flow_def", "flow definitions", "ttttttrt", -1,
        "SELECT flow, script, host, script_sha256, params, schedule,"
        " updated_at, param_types FROM flow_def",
        "SELECT flow, script, host, script_sha256, params, schedule::text,"
        " updated_at, param_types FROM flow_def",
        "INSERT OR IGNORE INTO flow_def(flow, script, host, script_sha256,"
        " params, schedule, updated_at, param_types) VALUES (?1, ?2, ?3, ?4,"
        " ?5, ?6, ?7, ?8)",
        "INSERT INTO flow_def(flow, script, host, script_sha256, params,"
        " schedule, updated_at, param_types) SELECT unnest($1::text[]),"
        " unnest($2::text[]), unnest($3::text[]), unnest($4::text[]),"
        " unnest($5::text[]), unnest($6::jsonb[]), unnest($7::float8[]),"
        " unnest($8::text[]) ON CONFLICT (flow) DO NOTHING"},
    /* Paused flows: a pause is the flow's, not a run's, and a history
       copied to move servers keeps its paused schedules off. */
    [C_PAUSES] = {
        "flow_pause", "flow pauses", "trt", -1,
        "SELECT flow, paused_at, paused_by FROM flow_pause",
        "SELECT flow, paused_at, paused_by FROM flow_pause",
        "INSERT OR IGNORE INTO flow_pause(flow, paused_at, paused_by)"
        " VALUES (?1, ?2, ?3)",
        "INSERT INTO flow_pause(flow, paused_at, paused_by)"
        " SELECT unnest($1::text[]), unnest($2::float8[]),"
        " unnest($3::text[]) ON CONFLICT (flow) DO NOTHING"},
};

/* ---- errors ------------------------------------------------------------------- */

/* st's error (a PostgreSQL one moved into it first) copied into to's, so
   that the caller reads every failure in one place. */
static int err_from(fl_store *to, fl_store *st, int status) {
  if (st->pg) fl__pg_store_err(st, status);
  if (st != to) {
    fl_buf_reset(&to->err);
    fl_buf_adds(&to->err, fl_store_errmsg(st));
  }
  return status;
}

/* ---- counting ------------------------------------------------------------------- */

/* SELECT count(*) FROM `from_where` on st: 0 with *n, or a status with
   st's error set. */
static int count_rows(fl_store *st, const char *from_where, size_t *n) {
  char sql[200];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", from_where);
  *n = 0;
  if (st->pg) {
    PGresult *r = fl_pg_query(st->pg, "cannot count what it holds", sql, 0,
                              NULL);
    if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
    if (fl_pq()->ntuples(r) > 0)
      *n = (size_t)strtoull(fl_pq()->getvalue(r, 0, 0), NULL, 10);
    fl_pq()->clear(r);
    return FLOWLUA_OK;
  }
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st, sql, &s, "cannot count what it holds");
  if (status != FLOWLUA_OK) return status;
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW)
    *n = (size_t)sqlite3_column_int64(s, 0);
  else
    status = fl__store_sql_err(st, rc, "cannot count what it holds");
  sqlite3_finalize(s);
  return status;
}

static int count_all(fl_store *st, size_t n[C_TABLES]) {
  int status = FLOWLUA_OK;
  for (int k = 0; k < C_TABLES && status == FLOWLUA_OK; k++)
    status = count_rows(st, tables[k].table, &n[k]);
  return status;
}

/* ---- one table ------------------------------------------------------------------- */

typedef struct copy_ctx {
  fl_store *to;
  const copy_table *t;
  int64_t offset;          /* added to run_col's row ids */
  sqlite3_stmt *ins;       /* the target's insert, on SQLite */
  fl__pg_copy_out *out;    /* or on PostgreSQL */
  int sink_failed;         /* the error is the target's (to->err) */
  size_t skipped;          /* rows PostgreSQL cannot hold (below) */
  char num[FL_COPY_MAX_COLS][32]; /* numbers as text, for a SQLite source */
} copy_ctx;

/* A row into the target: its run id mapped, then inserted. */
static int sink_row(void *vctx, const fl__copy_row *in) {
  copy_ctx *x = vctx;
  fl__copy_row row = *in;
  char run_id[32];
  int n_cols = (int)strlen(x->t->types);
  if (x->t->run_col >= 0 && x->offset && row.v[x->t->run_col]) {
    long long id = strtoll(row.v[x->t->run_col], NULL, 10) + x->offset;
    row.len[x->t->run_col] = (size_t)snprintf(run_id, sizeof run_id, "%lld", id);
    row.v[x->t->run_col] = run_id;
  }
  int status;
  if (x->out) {
    /* Results and cached values must reach PostgreSQL byte for byte, and
       its text cannot hold what is not UTF-8: such a result is kept as
       one that could not be serialised (a resume runs the task again),
       as pg_write.c does; such a cached value is not copied (a miss). */
    if (x->t == &tables[C_TASKS] && row.v[14] &&
        !fl_utf8_text(row.v[14], row.len[14])) {
      row.v[13] = "2"; /* FL_STORE_RESULT_OPAQUE */
      row.len[13] = 1;
      row.v[14] = NULL;
      row.len[14] = 0;
    }
    if (x->t == &tables[C_CACHE] && row.v[2] &&
        !fl_utf8_text(row.v[2], row.len[2])) {
      x->skipped++;
      return FLOWLUA_OK;
    }
    status = fl__pg_copy_out_row(x->out, &row);
    if (status != FLOWLUA_OK) fl__pg_store_err(x->to, status);
  } else {
    int n_params = sqlite3_bind_parameter_count(x->ins);
    for (int k = 0; k < n_cols && k < n_params; k++) {
      if (!row.v[k])
        sqlite3_bind_null(x->ins, k + 1);
      else if (x->t->types[k] == 'i')
        sqlite3_bind_int64(x->ins, k + 1, strtoll(row.v[k], NULL, 10));
      else if (x->t->types[k] == 'r')
        sqlite3_bind_double(x->ins, k + 1, strtod(row.v[k], NULL));
      else
        fl__store_bind_text(x->ins, k + 1, row.v[k], row.len[k]);
    }
    status = fl__store_exec(x->to, x->ins, "cannot write the copy");
  }
  if (status != FLOWLUA_OK) x->sink_failed = 1;
  return status;
}

/* A double as text that reads back to the same bits, on both backends. */
static size_t dbl_text(char *out, size_t size, double v) {
  if (isnan(v)) return (size_t)snprintf(out, size, "NaN");
  if (isinf(v)) return (size_t)snprintf(out, size, v > 0 ? "Infinity"
                                                         : "-Infinity");
  return (size_t)snprintf(out, size, "%.17g", v);
}

/* Every row of a SQLite source's select, to sink_row. */
static int read_sqlite(fl_store *from, copy_ctx *x) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(from, x->t->sqlite_select, &s,
                                 "cannot read the history to copy");
  if (status != FLOWLUA_OK) return status;
  int n_cols = (int)strlen(x->t->types), rc;
  while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    fl__copy_row row;
    for (int k = 0; k < n_cols; k++) {
      row.v[k] = NULL;
      row.len[k] = 0;
      if (sqlite3_column_type(s, k) == SQLITE_NULL) continue;
      if (x->t->types[k] == 'i') {
        row.len[k] = (size_t)snprintf(x->num[k], sizeof x->num[k], "%lld",
                                      (long long)sqlite3_column_int64(s, k));
        row.v[k] = x->num[k];
      } else if (x->t->types[k] == 'r') {
        row.len[k] = dbl_text(x->num[k], sizeof x->num[k],
                              sqlite3_column_double(s, k));
        row.v[k] = x->num[k];
      } else {
        const unsigned char *text = sqlite3_column_text(s, k);
        if (!text) {
          status = fl__store_oom(from, "cannot read the history to copy");
          break;
        }
        row.v[k] = (const char *)text;
        row.len[k] = (size_t)sqlite3_column_bytes(s, k);
      }
    }
    if (status == FLOWLUA_OK) status = sink_row(x, &row);
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(from, rc, "cannot read the history to copy");
  sqlite3_finalize(s);
  return status;
}

/* Copies table t; the error is then in to's. */
static int copy_table_rows(fl_store *from, fl_store *to, const copy_table *t,
                           int64_t offset, size_t *skipped) {
  copy_ctx x = {.to = to, .t = t, .offset = offset};
  int n_cols = (int)strlen(t->types);
  int status = to->pg
                   ? fl__pg_copy_out_begin(to->pg, t->pg_insert, n_cols,
                                           "cannot write the copy", &x.out)
                   : fl__store_prepare(to, t->sqlite_insert, &x.ins,
                                       "cannot write the copy");
  if (status != FLOWLUA_OK) return to->pg ? fl__pg_store_err(to, status)
                                          : status;
  status = from->pg ? fl__pg_copy_read(from->pg, t->pg_select, n_cols,
                                       sink_row, &x)
                    : read_sqlite(from, &x);
  if (status != FLOWLUA_OK && !x.sink_failed) err_from(to, from, status);
  if (x.out) {
    int end = fl__pg_copy_out_end(x.out, status == FLOWLUA_OK);
    if (status == FLOWLUA_OK && end != FLOWLUA_OK)
      status = fl__pg_store_err(to, end);
  }
  sqlite3_finalize(x.ins);
  *skipped = x.skipped;
  return status;
}

/* ---- the transactions --------------------------------------------------------- */

/* The source's read transaction: one snapshot for every table. */
static int source_begin(fl_store *from) {
  if (from->pg)
    return fl__pg_store_err(
        from, fl_pg_exec(from->pg,
                         "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                         "cannot read the history to copy"));
  return fl__store_exec_sql(from, "BEGIN", "cannot read the history to copy");
}

static void source_end(fl_store *from) {
  if (from->pg) {
    PGconn *pg = fl_pg_conn(from->pg);
    if (pg && fl_pq()->transaction_status(pg) != PQTRANS_IDLE)
      fl_pq()->clear(fl_pq()->exec(pg, "ROLLBACK"));
  } else if (!sqlite3_get_autocommit(from->db)) {
    sqlite3_exec(from->db, "ROLLBACK", NULL, NULL, NULL);
  }
}

/* The target's write transaction; on PostgreSQL flow_run is locked
   against another writer's inserts until the commit, so that "holds no
   runs" stays true while the copy goes in. */
static int target_begin(fl_store *to) {
  if (!to->pg) return fl__store_tx_begin(to, "cannot write the copy");
  int status = fl_pg_exec(to->pg,
                          "BEGIN; LOCK TABLE flow_run IN SHARE ROW EXCLUSIVE"
                          " MODE",
                          "cannot write the copy");
  return fl__pg_store_err(to, status);
}

static void target_rollback(fl_store *to) {
  if (!to->pg) {
    fl__store_tx_rollback(to);
    return;
  }
  PGconn *pg = fl_pg_conn(to->pg);
  /* Straight to libpq's table: fl_pg_exec would replace the error of the
     failure that led here. */
  if (pg && fl_pq()->transaction_status(pg) != PQTRANS_IDLE)
    fl_pq()->clear(fl_pq()->exec(pg, "ROLLBACK"));
}

/* The id a run the target makes later gets: past the copied ones. */
static int target_ids_after(fl_store *to) {
  if (to->pg)
    return fl__pg_store_err(
        to, fl_pg_exec(to->pg,
                       "SELECT setval(s::regclass, greatest((SELECT"
                       " coalesce(max(id), 1) FROM flow_run),"
                       " nextval(s::regclass))) FROM pg_get_serial_sequence("
                       "'flowlua.flow_run', 'id') AS s",
                       "cannot move the run ids past the copied runs"));
  return fl__store_exec_sql(to,
                            "UPDATE run_ids SET next = max(next, (SELECT"
                            " coalesce(max(id), 0) + 1 FROM flow_run))",
                            "cannot move the run ids past the copied runs");
}

/* What to add to a source run's row id on a SQLite target: its ids start
   at run_ids.next (a block another process holds stays its own). On
   PostgreSQL the ids stay: the target has no runs, and its sequence is
   moved past them after. */
static int target_offset(fl_store *to, int64_t *offset) {
  *offset = 0;
  if (to->pg) return FLOWLUA_OK;
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(to, "SELECT next FROM run_ids", &s,
                                 "cannot read the next run id");
  if (status != FLOWLUA_OK) return status;
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    int64_t next = sqlite3_column_int64(s, 0);
    *offset = next > 1 ? next - 1 : 0;
  } else if (rc != SQLITE_DONE) {
    status = fl__store_sql_err(to, rc, "cannot read the next run id");
  }
  sqlite3_finalize(s);
  return status;
}

static int target_commit(fl_store *to) {
  if (to->pg)
    return fl__pg_store_err(to, fl_pg_exec(to->pg, "COMMIT",
                                           "cannot write the copy"));
  return fl__store_tx_commit(to, "cannot write the copy");
}

/* ---- the copy -------------------------------------------------------------------- */

int fl_store_running_runs(fl_store *st, size_t *n) {
  return count_rows(st, "flow_run WHERE state = 'Running'", n);
}

/* Refusals made in the transactions: a Running run in the source (it may
   have started since the caller looked), runs in the target. */
static int check_sides(fl_store *from, fl_store *to) {
  size_t running = 0, runs = 0;
  int status = fl_store_running_runs(from, &running);
  if (status != FLOWLUA_OK) return err_from(to, from, status);
  if (running)
    return err_from(
        to, from,
        fl__store_set_err(from, FLOWLUA_ESTATE,
                          "cannot copy from it: %zu run%s still Running "
                          "there (a driver would go on writing to it); "
                          "they must end, or be marked Crashed, before a "
                          "copy",
                          running, running == 1 ? " is" : "s are"));
  status = count_rows(to, "flow_run", &runs);
  if (status != FLOWLUA_OK) return status;
  if (runs)
    return fl__store_set_err(
        to, FLOWLUA_ESTATE,
        "cannot copy into it: it holds %zu run%s already; a copy goes into "
        "a history with no runs (a new SQLite file, a new database)",
        runs, runs == 1 ? "" : "s");
  return FLOWLUA_OK;
}

static int copy_all(fl_store *from, fl_store *to, fl_store_copy_counts *out) {
  size_t src[C_TABLES], before[C_TABLES], after[C_TABLES];
  size_t skipped[C_TABLES] = {0};
  int64_t offset = 0;
  int status = check_sides(from, to);
  if (status == FLOWLUA_OK) status = count_all(from, src);
  if (status != FLOWLUA_OK && !to->err.len) err_from(to, from, status);
  if (status == FLOWLUA_OK) status = count_all(to, before);
  if (status == FLOWLUA_OK) status = target_offset(to, &offset);
  for (int k = 0; k < C_TABLES && status == FLOWLUA_OK; k++)
    status = copy_table_rows(from, to, &tables[k], offset, &skipped[k]);
  if (status == FLOWLUA_OK) status = count_all(to, after);
  for (int k = 0; k < C_TABLES && status == FLOWLUA_OK; k++) {
    size_t want = src[k] - skipped[k], got = after[k] - before[k];
    if (got != want)
      status = fl__store_set_err(
          to, FLOWLUA_EIO, "copied %zu of %zu %s from '%s' (nothing kept)",
          got, want, tables[k].what, fl_store_path(from));
  }
  if (status == FLOWLUA_OK) status = target_ids_after(to);
  if (status == FLOWLUA_OK && out) {
    *out = (fl_store_copy_counts){
        .runs = src[C_RUNS],
        .task_runs = src[C_TASKS],
        .state_changes = src[C_EVENTS],
        .log_lines = src[C_LOGS],
        .log_drops = src[C_LOG_DROPS],
        .fire_claims = src[C_FIRES],
        .fire_events = src[C_FIRE_EVENTS],
        .cache_entries = src[C_CACHE] - skipped[C_CACHE],
        .flow_defs = src[C_FLOWS],
        .cache_skipped = skipped[C_CACHE]};
  }
  return status;
}

int fl_store_copy(fl_store *from, fl_store *to, fl_store_copy_counts *out) {
  if (out) memset(out, 0, sizeof *out);
  fl_buf_reset(&to->err);
  /* What either handle still buffers goes in first: the copy reads and
     writes the databases, not the handles. */
  int status = fl_store_flush(from);
  if (status != FLOWLUA_OK) return err_from(to, from, status);
  status = fl_store_flush(to);
  if (status != FLOWLUA_OK) return status;
  status = source_begin(from);
  if (status != FLOWLUA_OK) return err_from(to, from, status);
  status = target_begin(to);
  if (status == FLOWLUA_OK) {
    status = copy_all(from, to, out);
    if (status == FLOWLUA_OK)
      status = target_commit(to);
    else
      target_rollback(to);
  }
  source_end(from);
  return status;
}
