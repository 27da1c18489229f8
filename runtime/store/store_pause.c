/*
 * store_pause.c — flows whose schedule is switched off through the history
 * (flow_pause: `flowlua pause FLOW`), read by the serving process at each
 * fire time. A row is the pause; unpausing deletes it.
 *
 * Small and rare like flow_def and run_cancel (store_flows.c): written
 * directly in a statement of its own, never through the journal. The
 * PostgreSQL statements are in pg_pause.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "pg_store.h"
#include "store_internal.h"

int fl_store_set_pause(fl_store *st, const char *flow, int paused,
                       const char *by, double now, int *changed) {
  *changed = 0;
  if (st->pg) return fl__pg_set_pause(st, flow, paused, by, now, changed);
  const char *what = paused ? "cannot record the flow's pause"
                            : "cannot remove the flow's pause";
  sqlite3_stmt *s = NULL;
  /* A second pause keeps the first one's time and author: "paused since"
     stays true. */
  int status = fl__store_prepare(
      st, paused ? "INSERT INTO flow_pause(flow, paused_at, paused_by)"
                   " VALUES (?1, ?2, ?3) ON CONFLICT(flow) DO NOTHING"
                 : "DELETE FROM flow_pause WHERE flow = ?1",
      &s, what);
  if (status) return status;
  sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
  if (paused) {
    sqlite3_bind_double(s, 2, now);
    sqlite3_bind_text(s, 3, by, -1, SQLITE_STATIC);
  }
  status = fl__store_exec(st, s, what);
  if (status == FLOWLUA_OK) *changed = sqlite3_changes(st->db) > 0;
  sqlite3_finalize(s);
  return status;
}

void fl_store_pause_clear(fl_store_pause *p) {
  free(p->by);
  memset(p, 0, sizeof *p);
}

int fl_store_get_pause(fl_store *st, const char *flow, fl_store_pause *out) {
  memset(out, 0, sizeof *out);
  if (st->pg) return fl__pg_get_pause(st, flow, out);
  const char *what = "cannot read whether the flow is paused";
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(
      st, "SELECT paused_at, paused_by FROM flow_pause WHERE flow = ?1", &s,
      what);
  if (status) return status;
  sqlite3_bind_text(s, 1, flow, -1, SQLITE_STATIC);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    const unsigned char *by = sqlite3_column_text(s, 1);
    out->paused = 1;
    out->since = sqlite3_column_double(s, 0);
    out->by = strdup(by ? (const char *)by : "");
    if (!out->by) status = fl__store_oom(st, what);
  } else if (rc != SQLITE_DONE) {
    status = fl__store_sql_err(st, rc, "%s", what);
  }
  sqlite3_finalize(s);
  if (status != FLOWLUA_OK) fl_store_pause_clear(out);
  return status;
}
