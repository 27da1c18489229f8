/*
 * pg_flows.c — store_flows.c's statements on the PostgreSQL history: flow
 * definitions and cancels asked for. Each is one statement that may run
 * again after a reconnect (an upsert, an insert that ignores a second
 * copy, a read).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_api.h"
#include "pg_store.h"

static void fmt_time(char *out, size_t n, double v) {
  snprintf(out, n, "%.17g", v);
}

int fl__pg_put_flows(fl_store *st, const fl_store_flow_def *defs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const fl_store_flow_def *d = &defs[i];
    char at[40];
    fmt_time(at, sizeof at, d->updated_at);
    const char *params[8] = {d->flow,          d->script,      d->host,
                             d->script_sha256, d->params_json,
                             d->schedule_json, at, d->param_types_json};
    PGresult *r = fl__pg_query_retry(
        st, "cannot record the script's flows",
        "INSERT INTO flow_def(flow, script, host, script_sha256, params,"
        " schedule, updated_at, param_types) VALUES ($1, $2, $3, $4, $5,"
        " $6::jsonb, $7::float8, $8) ON CONFLICT (flow) DO UPDATE SET script ="
        " excluded.script, host = excluded.host, script_sha256 ="
        " excluded.script_sha256, params = excluded.params, schedule ="
        " excluded.schedule, updated_at = excluded.updated_at,"
        " param_types = excluded.param_types",
        8, params);
    if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
    fl_pq()->clear(r);
  }
  return FLOWLUA_OK;
}

static char *dup_value(PGresult *r, int row, int col, int *oom) {
  if (fl_pq()->getisnull(r, row, col)) return NULL;
  char *d = strdup(fl_pq()->getvalue(r, row, col));
  if (!d) *oom = 1;
  return d;
}

int fl__pg_list_flows(fl_store *st, fl_store_flow_list *out) {
  PGresult *r = fl__pg_query_retry(
      st, "cannot read the recorded flows",
      "SELECT flow, script, host, script_sha256, params, schedule::text,"
      " updated_at, schedule ->> 'kind', schedule ->> 'cron',"
      " schedule ->> 'timezone', schedule ->> 'dst_missing',"
      " schedule ->> 'dst_repeated', schedule ->> 'every',"
      " schedule ->> 'start', schedule ->> 'until', param_types"
      " FROM flow_def ORDER BY flow",
      0, NULL);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  int rows = fl_pq()->ntuples(r), oom = 0;
  out->items = rows ? calloc((size_t)rows, sizeof *out->items) : NULL;
  if (rows && !out->items) oom = 1;
  for (int i = 0; i < rows && !oom; i++) {
    fl_store_flow_def *d = &out->items[out->n++];
    d->flow = dup_value(r, i, 0, &oom);
    d->script = dup_value(r, i, 1, &oom);
    d->host = dup_value(r, i, 2, &oom);
    d->script_sha256 = dup_value(r, i, 3, &oom);
    d->params_json = dup_value(r, i, 4, &oom);
    d->schedule_json = dup_value(r, i, 5, &oom);
    d->updated_at = strtod(fl_pq()->getvalue(r, i, 6), NULL);
    d->sched.kind = dup_value(r, i, 7, &oom);
    d->sched.cron = dup_value(r, i, 8, &oom);
    d->sched.timezone = dup_value(r, i, 9, &oom);
    d->sched.dst_missing = dup_value(r, i, 10, &oom);
    d->sched.dst_repeated = dup_value(r, i, 11, &oom);
    d->sched.every = strtod(fl_pq()->getvalue(r, i, 12), NULL);
    d->sched.start = strtod(fl_pq()->getvalue(r, i, 13), NULL);
    d->sched.until = strtod(fl_pq()->getvalue(r, i, 14), NULL);
    d->param_types_json = dup_value(r, i, 15, &oom);
  }
  fl_pq()->clear(r);
  /* What was read so far stays in out: the caller frees it. */
  return oom ? fl__store_oom(st, "cannot read the recorded flows") : FLOWLUA_OK;
}

int fl__pg_request_cancel(fl_store *st, const char *run_id, const char *by,
                          double now) {
  char at[40];
  fmt_time(at, sizeof at, now);
  const char *params[3] = {run_id, at, by};
  /* One statement: the run's state as it is when the request goes in,
     and whether it went in. */
  PGresult *r = fl__pg_query_retry(
      st, "cannot ask for the run's cancel",
      "WITH run AS (SELECT id, state FROM flow_run WHERE run_id = $1),"
      " asked AS (INSERT INTO run_cancel(run, requested_at, requested_by)"
      " SELECT id, $2::float8, $3 FROM run WHERE state = 'Running'"
      " ON CONFLICT (run) DO NOTHING RETURNING run)"
      " SELECT state FROM run",
      3, params);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  int status = FLOWLUA_OK;
  if (fl_pq()->ntuples(r) == 0) {
    status = fl__store_set_err(st, FLOWLUA_EINVAL, "no run '%s'", run_id);
  } else {
    const char *state = fl_pq()->getvalue(r, 0, 0);
    if (strcmp(state, "Running") != 0)
      status = fl__store_set_err(st, FLOWLUA_ESTATE,
                                 "run %s is %s, not Running: there is "
                                 "nothing to cancel",
                                 run_id, state);
  }
  fl_pq()->clear(r);
  return status;
}

int fl__pg_cancel_requests(fl_store *st, const char *const *run_ids, size_t n,
                           unsigned char *asked) {
  for (size_t i = 0; i < n; i++) {
    const char *params[1] = {run_ids[i]};
    PGresult *r = fl__pg_query_retry(
        st, "cannot read the cancels asked for",
        "SELECT 1 FROM run_cancel c JOIN flow_run r ON r.id = c.run"
        " WHERE r.run_id = $1",
        1, params);
    if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
    asked[i] = fl_pq()->ntuples(r) > 0;
    fl_pq()->clear(r);
  }
  return FLOWLUA_OK;
}

int fl__pg_run_flows(fl_store *st, const char *sql, fl_store_name_list *out) {
  PGresult *r = fl__pg_query_retry(st, "cannot read the flows that have runs",
                                   sql, 0, NULL);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  int rows = fl_pq()->ntuples(r), oom = 0;
  out->names = rows ? calloc((size_t)rows, sizeof *out->names) : NULL;
  if (rows && !out->names) oom = 1;
  for (int i = 0; i < rows && !oom; i++)
    if (!(out->names[out->n++] = dup_value(r, i, 0, &oom))) oom = 1;
  fl_pq()->clear(r);
  return oom ? fl__store_oom(st, "cannot read the flows that have runs")
             : FLOWLUA_OK;
}

int fl__pg_fire_events(fl_store *st, const char *flow, int limit,
                       fl_store_fire_event_list *out) {
  char n[16];
  snprintf(n, sizeof n, "%d", limit);
  const char *params[2] = {flow, n};
  PGresult *r = fl__pg_query_retry(
      st, "cannot read the fire events",
      "SELECT outcome, detail, scheduled_at, coalesce(last_at, 0), at, count"
      " FROM fire_event WHERE flow = $1 ORDER BY id DESC LIMIT $2::int",
      2, params);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  int rows = fl_pq()->ntuples(r), oom = 0;
  out->rows = rows ? calloc((size_t)rows, sizeof *out->rows) : NULL;
  if (rows && !out->rows) oom = 1;
  for (int i = 0; i < rows && !oom; i++) {
    fl_store_fire_event_row *e = &out->rows[out->n++];
    e->outcome = dup_value(r, i, 0, &oom);
    e->detail = dup_value(r, i, 1, &oom);
    e->scheduled_at = strtod(fl_pq()->getvalue(r, i, 2), NULL);
    e->last_at = strtod(fl_pq()->getvalue(r, i, 3), NULL);
    e->at = strtod(fl_pq()->getvalue(r, i, 4), NULL);
    e->count = strtoll(fl_pq()->getvalue(r, i, 5), NULL, 10);
  }
  fl_pq()->clear(r);
  return oom ? fl__store_oom(st, "cannot read the fire events") : FLOWLUA_OK;
}
