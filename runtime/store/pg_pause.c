/*
 * pg_pause.c — store_pause.c's statements on the PostgreSQL history: a
 * flow's pause recorded, removed and read. Each is one statement that may
 * run again after a reconnect (an insert that ignores a second copy, a
 * delete, a read).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_api.h"
#include "pg_store.h"

int fl__pg_set_pause(fl_store *st, const char *flow, int paused,
                     const char *by, double now, int *changed) {
  char at[40];
  snprintf(at, sizeof at, "%.17g", now);
  const char *params[3] = {flow, at, by};
  PGresult *r =
      paused ? fl__pg_query_retry(
                   st, "cannot record the flow's pause",
                   "INSERT INTO flow_pause(flow, paused_at, paused_by)"
                   " VALUES ($1, $2::float8, $3) ON CONFLICT (flow) DO NOTHING"
                   " RETURNING flow",
                   3, params)
             : fl__pg_query_retry(st, "cannot remove the flow's pause",
                                  "DELETE FROM flow_pause WHERE flow = $1"
                                  " RETURNING flow", 1,
                                  params);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  *changed = fl_pq()->ntuples(r) > 0;
  fl_pq()->clear(r);
  return FLOWLUA_OK;
}

int fl__pg_get_pause(fl_store *st, const char *flow, fl_store_pause *out) {
  const char *params[1] = {flow};
  PGresult *r = fl__pg_query_retry(
      st, "cannot read whether the flow is paused",
      "SELECT paused_at, paused_by FROM flow_pause WHERE flow = $1", 1,
      params);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  int status = FLOWLUA_OK;
  if (fl_pq()->ntuples(r) > 0) {
    out->paused = 1;
    out->since = strtod(fl_pq()->getvalue(r, 0, 0), NULL);
    out->by = strdup(fl_pq()->getvalue(r, 0, 1));
    if (!out->by)
      status = fl__store_oom(st, "cannot read whether the flow is paused");
  }
  fl_pq()->clear(r);
  return status;
}
