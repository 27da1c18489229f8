/*
 * store_flows.c — what the history keeps for readers that have no script:
 * each flow as its script last defined it (flow_def), and cancels asked
 * for by a process other than the one running the run (run_cancel).
 *
 * Both are small and rare next to a run's task runs: written directly in
 * a transaction of their own, never through the buffers and the journal.
 * The PostgreSQL statements are in pg_flows.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "pg_store.h"
#include "store_internal.h"

/* ---- flow definitions ----------------------------------------------------- */

static const char put_sql[] =
    "INSERT INTO flow_def(flow, script, host, script_sha256, params, schedule,"
    " updated_at, param_types) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    " ON CONFLICT(flow) DO UPDATE SET script = excluded.script,"
    " host = excluded.host, script_sha256 = excluded.script_sha256,"
    " params = excluded.params, schedule = excluded.schedule,"
    " updated_at = excluded.updated_at, param_types = excluded.param_types";

int fl_store_put_flows(fl_store *st, const fl_store_flow_def *defs, size_t n) {
  if (n == 0) return FLOWLUA_OK;
  if (st->pg) return fl__pg_put_flows(st, defs, n);
  const char *what = "cannot record the script's flows";
  sqlite3_stmt *s = NULL;
  int status = fl__store_tx_begin(st, what);
  if (status) return status;
  status = fl__store_prepare(st, put_sql, &s, what);
  for (size_t i = 0; i < n && status == FLOWLUA_OK; i++) {
    const fl_store_flow_def *d = &defs[i];
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, d->flow, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, d->script, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, d->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, d->script_sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, d->params_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, d->schedule_json, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 7, d->updated_at);
    sqlite3_bind_text(s, 8, d->param_types_json, -1, SQLITE_STATIC);
    status = fl__store_exec(st, s, what);
  }
  sqlite3_finalize(s);
  if (status == FLOWLUA_OK) status = fl__store_tx_commit(st, what);
  if (status != FLOWLUA_OK) fl__store_tx_rollback(st);
  return status;
}

void fl_store_flow_list_free(fl_store_flow_list *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++) {
    fl_store_flow_def *d = &l->items[i];
    free((char *)d->flow);
    free((char *)d->script);
    free((char *)d->host);
    free((char *)d->script_sha256);
    free((char *)d->params_json);
    free((char *)d->schedule_json);
    free((char *)d->param_types_json);
    free((char *)d->sched.kind);
    free((char *)d->sched.cron);
    free((char *)d->sched.timezone);
    free((char *)d->sched.dst_missing);
    free((char *)d->sched.dst_repeated);
  }
  free(l->items);
  memset(l, 0, sizeof *l);
}

static char *dup_col(sqlite3_stmt *s, int col, int *oom) {
  const unsigned char *t = sqlite3_column_text(s, col);
  if (!t) return NULL;
  char *d = strdup((const char *)t);
  if (!d) *oom = 1;
  return d;
}

int fl_store_list_flows(fl_store *st, fl_store_flow_list *out) {
  memset(out, 0, sizeof *out);
  if (st->pg) {
    int status = fl__pg_list_flows(st, out);
    if (status != FLOWLUA_OK) fl_store_flow_list_free(out);
    return status;
  }
  const char *what = "cannot read the recorded flows";
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(
      st, "SELECT flow, script, host, script_sha256, params, schedule,"
          " updated_at, schedule ->> '$.kind', schedule ->> '$.cron',"
          " schedule ->> '$.timezone', schedule ->> '$.dst_missing',"
          " schedule ->> '$.dst_repeated', schedule ->> '$.every',"
          " schedule ->> '$.start', schedule ->> '$.until', param_types"
          " FROM flow_def ORDER BY flow",
      &s, what);
  size_t cap = 0;
  int rc = SQLITE_DONE;
  while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (out->n == cap) {
      size_t ncap = cap ? 2 * cap : 16;
      fl_store_flow_def *p = realloc(out->items, ncap * sizeof *p);
      if (!p) {
        status = fl__store_oom(st, what);
        break;
      }
      out->items = p;
      cap = ncap;
    }
    int oom = 0;
    fl_store_flow_def *d = &out->items[out->n++];
    d->flow = dup_col(s, 0, &oom);
    d->script = dup_col(s, 1, &oom);
    d->host = dup_col(s, 2, &oom);
    d->script_sha256 = dup_col(s, 3, &oom);
    d->params_json = dup_col(s, 4, &oom);
    d->schedule_json = dup_col(s, 5, &oom);
    d->updated_at = sqlite3_column_double(s, 6);
    d->sched.kind = dup_col(s, 7, &oom);
    d->sched.cron = dup_col(s, 8, &oom);
    d->sched.timezone = dup_col(s, 9, &oom);
    d->sched.dst_missing = dup_col(s, 10, &oom);
    d->sched.dst_repeated = dup_col(s, 11, &oom);
    d->sched.every = sqlite3_column_double(s, 12);
    d->sched.start = sqlite3_column_double(s, 13);
    d->sched.until = sqlite3_column_double(s, 14);
    d->param_types_json = dup_col(s, 15, &oom);
    if (oom || !d->flow) status = fl__store_oom(st, what);
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "%s", what);
  sqlite3_finalize(s);
  if (status != FLOWLUA_OK) fl_store_flow_list_free(out);
  return status;
}

/* ---- cancels asked for -------------------------------------------------------- */

int fl_store_request_cancel(fl_store *st, const char *run_id, const char *by,
                            double now) {
  if (st->pg) return fl__pg_request_cancel(st, run_id, by, now);
  const char *what = "cannot ask for the run's cancel";
  sqlite3_stmt *s = NULL;
  int status = fl__store_tx_begin(st, what);
  if (status) return status;
  status = fl__store_prepare(st, "SELECT id, state FROM flow_run WHERE run_id = ?1",
                             &s, what);
  sqlite3_int64 id = 0;
  if (status == FLOWLUA_OK) {
    sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
      status = fl__store_set_err(st, FLOWLUA_EINVAL, "no run '%s'", run_id);
    } else if (rc != SQLITE_ROW) {
      status = fl__store_sql_err(st, rc, "%s", what);
    } else {
      const char *state = (const char *)sqlite3_column_text(s, 1);
      id = sqlite3_column_int64(s, 0);
      if (!state || strcmp(state, "Running") != 0)
        status = fl__store_set_err(st, FLOWLUA_ESTATE,
                                   "run %s is %s, not Running: there is "
                                   "nothing to cancel",
                                   run_id, state ? state : "of no state");
    }
  }
  sqlite3_finalize(s);
  s = NULL;
  if (status == FLOWLUA_OK)
    status = fl__store_prepare(st,
                               "INSERT INTO run_cancel(run, requested_at,"
                               " requested_by) VALUES (?1, ?2, ?3)"
                               " ON CONFLICT(run) DO NOTHING",
                               &s, what);
  if (status == FLOWLUA_OK) {
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_double(s, 2, now);
    sqlite3_bind_text(s, 3, by, -1, SQLITE_STATIC);
    status = fl__store_exec(st, s, what);
  }
  sqlite3_finalize(s);
  if (status == FLOWLUA_OK) status = fl__store_tx_commit(st, what);
  if (status != FLOWLUA_OK) fl__store_tx_rollback(st);
  return status;
}

int fl_store_cancel_requests(fl_store *st, const char *const *run_ids,
                             size_t n, unsigned char *asked) {
  memset(asked, 0, n);
  if (n == 0) return FLOWLUA_OK;
  if (st->pg) return fl__pg_cancel_requests(st, run_ids, n, asked);
  const char *what = "cannot read the cancels asked for";
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(
      st, "SELECT 1 FROM run_cancel c JOIN flow_run r ON r.id = c.run"
          " WHERE r.run_id = ?1",
      &s, what);
  for (size_t i = 0; i < n && status == FLOWLUA_OK; i++) {
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, run_ids[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
      asked[i] = 1;
    else if (rc != SQLITE_DONE)
      status = fl__store_sql_err(st, rc, "%s", what);
  }
  sqlite3_finalize(s);
  return status;
}

/* ---- flows with runs, fire events ------------------------------------------- */

/* The distinct names by the flow_run_by_flow index, one probe each (a
   skip scan: a history of 100,000 runs of three flows reads three keys). */
#define RUN_FLOWS_SQL                                                          \
  "WITH RECURSIVE f(name) AS (SELECT min(flow) FROM flow_run UNION ALL"       \
  " SELECT (SELECT min(flow) FROM flow_run WHERE flow > f.name) FROM f"        \
  " WHERE f.name IS NOT NULL) SELECT name FROM f WHERE name IS NOT NULL"

void fl_store_name_list_free(fl_store_name_list *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++) free(l->names[i]);
  free(l->names);
  memset(l, 0, sizeof *l);
}

static int name_add(fl_store_name_list *l, const char *name) {
  char **p = realloc(l->names, (l->n + 1) * sizeof *p);
  if (!p) return -1;
  l->names = p;
  if (!(l->names[l->n] = strdup(name))) return -1;
  l->n++;
  return 0;
}

int fl_store_run_flows(fl_store *st, fl_store_name_list *out) {
  memset(out, 0, sizeof *out);
  int status = FLOWLUA_OK;
  if (st->pg) {
    status = fl__pg_run_flows(st, RUN_FLOWS_SQL, out);
  } else {
    const char *what = "cannot read the flows that have runs";
    sqlite3_stmt *s = NULL;
    status = fl__store_prepare(st, RUN_FLOWS_SQL, &s, what);
    int rc = SQLITE_DONE;
    while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
      const char *name = (const char *)sqlite3_column_text(s, 0);
      if (name && name_add(out, name) != 0)
        status = fl__store_oom(st, what);
    }
    if (status == FLOWLUA_OK && rc != SQLITE_DONE)
      status = fl__store_sql_err(st, rc, "%s", what);
    sqlite3_finalize(s);
  }
  if (status != FLOWLUA_OK) fl_store_name_list_free(out);
  return status;
}

void fl_store_fire_event_list_free(fl_store_fire_event_list *l) {
  if (!l) return;
  for (size_t i = 0; i < l->n; i++) {
    free(l->rows[i].outcome);
    free(l->rows[i].detail);
  }
  free(l->rows);
  memset(l, 0, sizeof *l);
}

int fl_store_fire_events(fl_store *st, const char *flow, int limit,
                         fl_store_fire_event_list *out) {
  memset(out, 0, sizeof *out);
  if (limit <= 0) return FLOWLUA_OK;
  int status = FLOWLUA_OK;
  if (st->pg) {
    status = fl__pg_fire_events(st, flow, limit, out);
  } else {
    const char *what = "cannot read the fire events";
    sqlite3_stmt *s = NULL;
    status = fl__store_prepare(
        st, "SELECT outcome, detail, scheduled_at, last_at, at, count"
            " FROM fire_event WHERE flow = ?1 ORDER BY id DESC LIMIT ?2",
        &s, what);
    if (status == FLOWLUA_OK) {
      sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
      sqlite3_bind_int(s, 2, limit);
      out->rows = calloc((size_t)limit, sizeof *out->rows);
      if (!out->rows) status = fl__store_oom(st, what);
    }
    int rc = SQLITE_DONE;
    while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW &&
           out->n < (size_t)limit) {
      int oom = 0;
      fl_store_fire_event_row *e = &out->rows[out->n++];
      e->outcome = dup_col(s, 0, &oom);
      e->detail = dup_col(s, 1, &oom);
      e->scheduled_at = sqlite3_column_double(s, 2);
      e->last_at = sqlite3_column_double(s, 3);
      e->at = sqlite3_column_double(s, 4);
      e->count = sqlite3_column_int64(s, 5);
      if (oom || !e->outcome) status = fl__store_oom(st, what);
    }
    if (status == FLOWLUA_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
      status = fl__store_sql_err(st, rc, "%s", what);
    sqlite3_finalize(s);
  }
  if (status != FLOWLUA_OK) fl_store_fire_event_list_free(out);
  return status;
}
