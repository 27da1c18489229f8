/*
 * pg_prune.c — `flowlua prune` on a PostgreSQL history: the runs that
 * ended before the cut (their task runs, state changes, workers and
 * graphs go with them, ON DELETE CASCADE), then fire events, then fire
 * claims but each flow's newest, as store_prune.c does on SQLite. Each
 * step is one short transaction of at most STEP_ROWS rows, so a running
 * flow's writes wait for no long lock; the space is the server's
 * autovacuum's to reuse (no VACUUM: it would lock the tables).
 */
#define _GNU_SOURCE
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_api.h"

/* Rows a step deletes at most (runs, or fire rows). */
#define STEP_ROWS 500

enum { PG_P_RUNS, PG_P_FIRE_EVENTS, PG_P_CLAIMS, PG_P_DONE };

/* ?: the statement of each phase; $1 the cut, $2 the flow or NULL, $3
   whether failed runs stay, $4 the step's rows. Each returns how many it
   deleted (and, for runs, their task runs, counted before they go: the
   statement sees the rows as they were when it began). */
static const char *const phase_sql[] = {
    [PG_P_RUNS] =
        "WITH gone AS (DELETE FROM flow_run WHERE id IN (SELECT id FROM"
        " flow_run WHERE state <> 'Running' AND coalesce(ended_at, started_at)"
        " < $1::float8 AND ($2::text IS NULL OR flow = $2)"
        " AND (NOT $3::bool OR state = 'Success') ORDER BY id LIMIT $4::int)"
        " RETURNING id)"
        " SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM task_run"
        " WHERE run IN (SELECT id FROM gone))",
    [PG_P_FIRE_EVENTS] =
        "WITH gone AS (DELETE FROM fire_event WHERE id IN (SELECT id FROM"
        " fire_event WHERE at < $1::float8 AND ($2::text IS NULL OR flow = $2)"
        " AND $3::bool IS NOT NULL LIMIT $4::int) RETURNING 1)"
        " SELECT count(*), 0 FROM gone",
    /* Each flow's newest claim stays: where its catch-up starts. */
    [PG_P_CLAIMS] =
        "WITH gone AS (DELETE FROM fire WHERE (flow, scheduled_ms) IN (SELECT"
        " flow, scheduled_ms FROM fire f WHERE claimed_at < $1::float8"
        " AND ($2::text IS NULL OR flow = $2) AND $3::bool IS NOT NULL"
        " AND scheduled_ms < (SELECT max(scheduled_ms) FROM fire g"
        " WHERE g.flow = f.flow) LIMIT $4::int) RETURNING 1)"
        " SELECT count(*), 0 FROM gone",
};

int fl__pg_prune_step(fl_store *st, const fl_store_prune_opts *o, double cutoff,
                      int *phase, fl_store_prune_result *r) {
  if (*phase >= PG_P_DONE) return 0;
  char cut[40], rows[16];
  snprintf(cut, sizeof cut, "%.17g", cutoff);
  snprintf(rows, sizeof rows, "%d", STEP_ROWS);
  const char *params[4] = {cut, o->flow, o->keep_failed ? "true" : "false",
                           rows};
  double t0 = fl__store_mono_now();
  PGresult *res = fl_pg_query(st->pg, "cannot prune it", phase_sql[*phase],
                              4, params);
  if (!res) return fl__pg_store_err(st, FLOWLUA_EIO);
  long long n = strtoll(fl_pq()->getvalue(res, 0, 0), NULL, 10);
  long long tasks = strtoll(fl_pq()->getvalue(res, 0, 1), NULL, 10);
  fl_pq()->clear(res);
  double took = fl__store_mono_now() - t0;
  if (took > r->longest_step) r->longest_step = took;
  r->steps++;
  if (*phase == PG_P_RUNS) {
    r->runs += (size_t)n;
    r->task_runs += (size_t)tasks;
  } else if (*phase == PG_P_FIRE_EVENTS) {
    r->fire_events += (size_t)n;
  } else {
    r->fire_claims += (size_t)n;
  }
  if (n < STEP_ROWS) ++*phase;
  return *phase < PG_P_DONE;
}
