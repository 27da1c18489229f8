/*
 * store_begin.c — a run's start without the database's lock: run ids
 * handed out in blocks, and the flow_run insert that the engine's thread,
 * the writer thread and a replay share.
 *
 * Run ids. SQLite lets one process write at a time, and another process
 * (a `--once` run, a resume, a script reading the file with Python) may
 * hold that lock for seconds. A run's id used to be its flow_run row's
 * rowid, assigned by the insert, so a serving process could not start a
 * run — its tasks' journal records name the run by id — before it had the
 * lock, and fire times passed while it waited. Now every run's id comes
 * from the table run_ids (schema step 4 -> 5), which hands out ranges: a
 * serving process holds a block of ids, starts a run with the next one,
 * journals the start (durable, like any change: a replay inserts the row
 * if the process dies first) and leaves the insert to its writer thread,
 * which reserves the next block ahead of need, in a transaction it is
 * writing anyway. Ids a process never used are gaps: nothing reads them.
 */
#include "store_internal.h"

#include <errno.h>

const char fl__store_run_insert_sql[] =
    "INSERT INTO flow_run(id, run_id, flow, script, params, resumed_from,"
    " state, scheduled_at, started_at, owner_host, owner_boot, owner_pid,"
    " owner_start, parent_run, parent_task) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
    " 'Running', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    " ON CONFLICT(id) DO NOTHING";
const char fl__store_graph_insert_sql[] =
    "INSERT INTO run_graph(run, keys, edges) VALUES (?1, ?2, ?3)"
    " ON CONFLICT(run) DO NOTHING";

/* Here with the run inserts: the writer and a replay both record claims. */
const char fl__store_claim_insert_sql[] =
    "INSERT INTO fire(flow, scheduled_ms, claimed_at, owner_host, owner_pid)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

int fl__store_reserve_ids(sqlite3 *db, int64_t n, int64_t *first) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db,
                              "UPDATE run_ids SET next = next + ?1"
                              " RETURNING next - ?1",
                              -1, &s, NULL);
  if (rc != SQLITE_OK) return rc;
  sqlite3_bind_int64(s, 1, n);
  rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *first = sqlite3_column_int64(s, 0);
    rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_DONE : SQLITE_CORRUPT;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_CORRUPT; /* the table lost its one row */
  }
  sqlite3_finalize(s);
  return rc;
}

int fl__store_insert_begin(sqlite3_stmt *run, sqlite3_stmt *graph,
                           const store_begin *b) {
  const char *const *str = b->str;
  const size_t *len = b->len;
  sqlite3_bind_int64(run, 1, b->rowid);
  for (int i = JB_RUN_ID; i <= JB_RESUMED; i++)
    fl__store_bind_text(run, 2 + i, str[i], len[i]);
  fl__store_bind_opt_double(run, 7, b->scheduled_at);
  sqlite3_bind_double(run, 8, b->started_at);
  fl__store_bind_text(run, 9, str[JB_HOST], len[JB_HOST]);
  fl__store_bind_text(run, 10, str[JB_BOOT], len[JB_BOOT]);
  sqlite3_bind_int64(run, 11, b->pid);
  sqlite3_bind_int64(run, 12, b->start);
  fl__store_bind_text(run, 13, str[JB_PARENT], len[JB_PARENT]);
  fl__store_bind_text(run, 14, str[JB_PARENT_TASK], len[JB_PARENT_TASK]);
  int rc = sqlite3_step(run);
  sqlite3_reset(run);
  sqlite3_clear_bindings(run);
  if (rc != SQLITE_DONE) return rc;
  sqlite3_bind_int64(graph, 1, b->rowid);
  fl__store_bind_text(graph, 2, str[JB_GRAPH], len[JB_GRAPH]);
  fl__store_bind_text(graph, 3, str[JB_EDGES], len[JB_EDGES]);
  rc = sqlite3_step(graph);
  sqlite3_reset(graph);
  sqlite3_clear_bindings(graph);
  return rc;
}

int fl__store_begin_in_background(fl_store *st, fl_store_run *run,
                                  const store_begin *b) {
  const char *what = "cannot record the run";
  j_begin jb = {b->scheduled_at, b->started_at, b->pid, b->start, {0}};
  fl_journal_part parts[2 + J_BEGIN_STRINGS];
  /* Only a subflow's start needs the longer record (store_internal.h). */
  int child = b->str[JB_PARENT] || b->str[JB_PARENT_TASK];
  int n_str = child ? J_BEGIN_STRINGS : J_BEGIN_PLAIN_STRINGS;
  j_head h = {b->rowid, 0, child ? J_BEGIN_CHILD : J_BEGIN};
  parts[0] = (fl_journal_part){&h, sizeof h};
  parts[1] = (fl_journal_part){&jb, child ? sizeof jb : sizeof(j_begin_plain)};
  for (int i = J_BEGIN_PLAIN_STRINGS; i < J_BEGIN_STRINGS; i++)
    jb.len[i] = J_NONE; /* beyond a J_BEGIN's fields: what its padding holds */
  for (int i = 0; i < n_str; i++) {
    if (b->len[i] >= J_NONE)
      return fl__store_set_err(st, FLOWLUA_EINVAL,
                               "run '%s': its params or graph are too large "
                               "to record (%zu bytes)",
                               b->str[JB_RUN_ID], b->len[i]);
    jb.len[i] = b->str[i] ? (uint32_t)b->len[i] : J_NONE;
    parts[2 + i] = (fl_journal_part){b->str[i], b->str[i] ? b->len[i] : 0};
  }
  if (GROW(st->begins, st->cap_begins, st->n_begins))
    return fl__store_oom(st, what);
  pending_begin p = {b->rowid, b->pid, b->start, b->scheduled_at,
                     b->started_at, {0}};
  size_t keep = st->batch.len;
  int status = FLOWLUA_OK;
  for (int i = 0; status == FLOWLUA_OK && i < J_BEGIN_STRINGS; i++) {
    p.str_off[i] = SIZE_MAX;
    if (b->str[i])
      status = fl__store_batch_str(st, b->str[i], b->len[i], &p.str_off[i],
                                   what);
  }
  if (status != FLOWLUA_OK) {
    st->batch.len = keep;
    return status;
  }
  /* Journalled last: a failure above leaves no record of a run that did
     not start. */
  if (fl_journal_append(st->journal, parts, 2 + (size_t)n_str) != 0) {
    st->batch.len = keep;
    return fl__store_set_err(st, FLOWLUA_EIO, "cannot write its journal: %s",
                             strerror(errno));
  }
  st->begins[st->n_begins++] = p;
  run->rowid = b->rowid;
  return FLOWLUA_OK;
}
