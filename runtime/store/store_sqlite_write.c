/*
 * store_sqlite_write.c — writing frozen batches (store_batch.c) to the
 * SQLite file, in one transaction per call: the task runs' rows (many to
 * a statement, or packed), their state changes, runs' starts and ends,
 * fire claims and events, where worker attempts ran, cached results. The
 * writer thread (store_write.c) calls it on a connection of its own; a
 * ":memory:" store on the handle's.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* New task runs are inserted TASK_ROWS at a time: most of the cost of a row
   is its statement's (binding, stepping, resetting), not the B-tree's. */
#define TASK_ROWS 32
#define TASK_COLS 15

/* The columns of a task_row row, in the order of the parameters that
   bind_row() binds (the writer makes it an upsert of many rows). */
static const char task_insert_sql[] =
    "INSERT INTO task_row(run, n, key, task, map_index, state, state_at,"
    " state_seq, attempts, error, started_at, started_seq, ended_at,"
    " result_kind, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
    " ?10, ?11, ?12, ?13, ?14, ?15)";
static const char event_insert_sql[] =
    "INSERT INTO task_event(run, n, seq, at, state, attempt, error)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char pack_insert_sql[] =
    "INSERT INTO task_pack(run, rows) VALUES (?1, ?2)";
static const char unpack_result_sql[] =
    "UPDATE task_row SET (result_kind, result) = (SELECT t.value ->> 12,"
    " t.value ->> 13 FROM task_pack p, json_each(p.rows) t"
    " WHERE p.run = ?1 AND t.value ->> 0 = ?2) WHERE run = ?1 AND n = ?2";
/* A run's end: ?5, the engine's counts, or NULL to count the rows (the
   batch holding the end holds the run's last rows, before it). Only a
   Running run ends: a replay that already wrote it leaves it alone. */
static const char run_end_sql[] =
    "UPDATE flow_run SET state = ?2, ended_at = ?3, error = ?4,"
    " task_counts = coalesce(?5, (SELECT json_group_object(state, n) FROM"
    " (" FL_STORE_COUNT_TASK_RUNS_SQL "))) WHERE id = ?1 AND state = 'Running'";

const char fl__store_fire_event_sql[] =
    "INSERT INTO fire_event(flow, outcome, scheduled_at, last_at, count,"
    " detail, at, owner_pid) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8"
    " WHERE NOT EXISTS (SELECT 1 FROM fire_event WHERE flow = ?1"
    " AND scheduled_at = ?3 AND outcome = ?2 AND at = ?7 AND owner_pid = ?8)";

static const char worker_insert_sql[] =
    "INSERT OR REPLACE INTO attempt_worker(run, n, attempt, host, pid)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";

/* A line already there is the same line, written by an earlier try of
   the batch; a trim deletes what the task run's bounds pushed out, and
   the counts only grow. */
static const char log_insert_sql[] =
    "INSERT OR IGNORE INTO task_log(run, n, seq, attempt, at, level, line)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char log_trim_sql[] =
    "DELETE FROM task_log WHERE run = ?1 AND n = ?2 AND seq < ?3";
static const char log_dropped_sql[] =
    "INSERT INTO task_log_dropped(run, n, lines, bytes) VALUES (?1, ?2, ?4,"
    " ?5) ON CONFLICT(run, n) DO UPDATE SET lines = max(lines,"
    " excluded.lines), bytes = max(bytes, excluded.bytes)";

static const char cache_put_sql[] =
    "INSERT OR REPLACE INTO cache(task, key, result, stored_at)"
    " VALUES (?1, ?2, ?3, ?4)";

/* ---- writing a batch ----------------------------------------------------
   (What a frozen batch is, and why its rows are upserts: "frozen batches"
   in store_internal.h.) */

/* Statements of a connection that writes batches. */
enum {
  W_BEGIN, W_COMMIT, W_ROLLBACK,
  W_INSERT, W_INSERT_MANY, /* a row's first write */
  W_UPSERT,               /* a row a batch before wrote, or will */
  W_PACK,                 /* many ended rows in one (schema step 2 -> 3) */
  W_UNPACK_RESULT,        /* a packed row's result, into its task_row row */
  W_EVENT, W_PUT,
  W_END,                  /* a run's end (fl_store_run_end) */
  W_FIRE,                 /* fl_store_fire_event */
  W_RUN, W_GRAPH,         /* a run's start (store_begin.c) */
  W_CLAIM,                /* a claimed fire time (store_claims.c) */
  W_WORKER,               /* where an attempt ran (fl_store_task_worker) */
  W_LOG, W_LOG_TRIM, W_LOG_DROPPED, /* log lines (store_log.c) */
  W_COUNT
};

#define UPSERT_TAIL                                                            \
  " ON CONFLICT(run, n) DO UPDATE SET state = excluded.state,"                 \
  " state_at = excluded.state_at, state_seq = excluded.state_seq,"             \
  " attempts = excluded.attempts, error = excluded.error,"                     \
  " started_at = excluded.started_at, started_seq = excluded.started_seq,"     \
  " ended_at = excluded.ended_at,"                                             \
  " result = CASE WHEN excluded.result_kind < 0 THEN task_row.result"          \
  " ELSE excluded.result END,"                                                 \
  " result_kind = CASE WHEN excluded.result_kind < 0 THEN task_row.result_kind" \
  " ELSE excluded.result_kind END"

/* A connection, its statements and its last error: the writer thread's,
   or the handle's own for ":memory:". */
struct wconn {
  sqlite3 *db;
  sqlite3_stmt *stmt[W_COUNT];
  int owned; /* db is this struct's to close */
  int64_t pid; /* this process's, for fire_event.owner_pid */
  const char *host; /* and its host, for fire.owner_host */
  fl_buf pack; /* a task_pack row's JSON, reused */
  store_busy waits; /* db's busy handler, when owned */
  int *wal_frames;  /* told the WAL's size after each commit, or NULL */
};

/* The task_row insert for rows rows, as an upsert when `upsert`;
   malloc'd or NULL. */
static char *row_sql(int rows, int upsert) {
  const char *one = task_insert_sql;
  fl_buf b = FL_BUF_INIT;
  fl_buf_add(&b, one, (size_t)(strstr(one, " VALUES") - one));
  fl_buf_adds(&b, " VALUES ");
  for (int r = 0; r < rows; r++) {
    fl_buf_adds(&b, r ? ", (" : "(");
    /* Plain "?": SQLite numbers them in order, and looks each "?NNN"
       up among the ones before it, which made 480 of them quadratic. */
    for (int c = 1; c <= TASK_COLS; c++) fl_buf_adds(&b, c > 1 ? ", ?" : "?");
    fl_buf_addc(&b, ')');
  }
  if (upsert) fl_buf_adds(&b, UPSERT_TAIL);
  if (b.oom) {
    fl_buf_free(&b);
    return NULL;
  }
  return b.data;
}

/* Steps and resets s: the SQLite result code. */
static int wstep(sqlite3_stmt *s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

/* The statement i of w, prepared on first use (a one-task run needs few
   of them, and preparing the 480-parameter insert alone took most of a
   millisecond of its start): NULL with *rc set when it cannot be. */
static sqlite3_stmt *wstmt(wconn *w, int i, int *rc) {
  if (w->stmt[i]) return w->stmt[i];
  static const char *const fixed[W_COUNT] = {
      [W_BEGIN] = "BEGIN IMMEDIATE", [W_COMMIT] = "COMMIT",
      [W_ROLLBACK] = "ROLLBACK", [W_PACK] = pack_insert_sql,
      [W_UNPACK_RESULT] = unpack_result_sql, [W_EVENT] = event_insert_sql,
      [W_PUT] = cache_put_sql, [W_END] = run_end_sql,
      [W_FIRE] = fl__store_fire_event_sql, [W_RUN] = fl__store_run_insert_sql,
      [W_GRAPH] = fl__store_graph_insert_sql,
      [W_CLAIM] = fl__store_claim_insert_sql,
      [W_WORKER] = worker_insert_sql, [W_LOG] = log_insert_sql,
      [W_LOG_TRIM] = log_trim_sql, [W_LOG_DROPPED] = log_dropped_sql};
  char *built = i == W_INSERT        ? row_sql(1, 0)
                : i == W_INSERT_MANY ? row_sql(TASK_ROWS, 0)
                : i == W_UPSERT      ? row_sql(1, 1)
                                     : NULL;
  const char *sql = built ? built : fixed[i];
  *rc = sql ? sqlite3_prepare_v3(w->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                 &w->stmt[i], NULL)
            : SQLITE_NOMEM;
  free(built);
  return *rc == SQLITE_OK ? w->stmt[i] : NULL;
}

/* Steps and resets statement i of w (prepared if need be): the SQLite
   result code. */
static int wrun(wconn *w, int i) {
  int rc;
  sqlite3_stmt *s = wstmt(w, i, &rc);
  return s ? wstep(s) : rc;
}

void fl__wconn_free(wconn *w) {
  if (!w) return;
  for (int i = 0; i < W_COUNT; i++) sqlite3_finalize(w->stmt[i]);
  if (w->owned) sqlite3_close(w->db);
  fl_buf_free(&w->pack);
  free(w);
}

static int note_wal_size(void *ctx, sqlite3 *db, const char *name, int frames) {
  (void)db;
  (void)name;
  *((wconn *)ctx)->wal_frames = frames;
  return SQLITE_OK;
}

int fl__wconn_open(fl_store *st, wconn **out, int *wal_frames) {
  wconn *w = calloc(1, sizeof *w);
  *out = NULL;
  if (!w) return fl__store_oom(st, "cannot start its writer");
  w->owned = 1;
  w->pid = st->self.pid;
  w->host = st->self.host;
  w->wal_frames = wal_frames;
  int rc = sqlite3_open_v2(st->path, &w->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    fl__store_busy_install(st, w->db, &w->waits);
    sqlite3_extended_result_codes(w->db, 1);
    /* No foreign key checks on this connection: it only writes rows of
       runs it was given (their flow_run rows exist) and events of rows
       written by the same or an earlier batch, so the checks would only
       cost a lookup per row. Deletes, with their cascades, happen on the
       handle's own connection, where the keys are enforced. */
    char sql[200];
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = %s; PRAGMA foreign_keys = OFF;"
             " PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;"
             " PRAGMA wal_autocheckpoint = 0;",
             st->opts.sync == FL_STORE_SYNC_FULL ? "FULL" : "NORMAL");
    rc = sqlite3_exec(w->db, sql, NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK && wal_frames) sqlite3_wal_hook(w->db, note_wal_size, w);
  if (rc != SQLITE_OK) {
    int status = fl__store_set_err(st, fl__store_status_of(rc),
                         "cannot open a second connection to it: %s",
                         w->db ? sqlite3_errmsg(w->db) : sqlite3_errstr(rc));
    fl__wconn_free(w);
    return status;
  }
  *out = w;
  return FLOWLUA_OK;
}

int fl__wconn_borrow(fl_store *st, wconn **out) {
  wconn *w = calloc(1, sizeof *w);
  *out = w;
  if (!w) return fl__store_oom(st, "cannot prepare its queries");
  w->db = st->db;
  w->pid = st->self.pid;
  w->host = st->self.host;
  return FLOWLUA_OK;
}

void fl__wconn_checkpoint(wconn *w) {
  /* PASSIVE: it never waits for readers or writers; what it cannot copy
     stays for the next time. */
  sqlite3_wal_checkpoint_v2(w->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
}

static const char *fstr(const fbatch *b, size_t off) {
  return off == SIZE_MAX ? NULL : b->strings.data + off;
}

static void bind_row(sqlite3_stmt *s, int base, const fbatch *b,
                     const frow *r) {
  const char *state = fl__store_task_state_names[r->state];
  sqlite3_bind_int64(s, base + 1, r->run);
  sqlite3_bind_int64(s, base + 2, r->n);
  fl__store_bind_text(s, base + 3, fstr(b, r->key_off), strlen(fstr(b, r->key_off)));
  fl__store_bind_text(s, base + 4, fstr(b, r->task_off), strlen(fstr(b, r->task_off)));
  sqlite3_bind_int(s, base + 5, r->map_index);
  fl__store_bind_text(s, base + 6, state, strlen(state));
  fl__store_bind_opt_double(s, base + 7, r->state_at);
  sqlite3_bind_int64(s, base + 8, r->n_changes);
  sqlite3_bind_int(s, base + 9, r->attempts);
  const char *err = fstr(b, r->err_off);
  fl__store_bind_text(s, base + 10, err, err ? strlen(err) : 0);
  fl__store_bind_opt_double(s, base + 11, r->started);
  if (r->started_seq)
    sqlite3_bind_int64(s, base + 12, r->started_seq);
  else
    sqlite3_bind_null(s, base + 12);
  fl__store_bind_opt_double(s, base + 13, r->ended);
  sqlite3_bind_int(s, base + 14, r->result_kind);
  fl__store_bind_text(s, base + 15, fstr(b, r->res_off), r->res_len);
}


/* ---- packed rows ------------------------------------------------------------

   A task run that ended before the first flush that holds it, the bulk of
   a large run, is written as one element of a task_pack row's JSON array
   (see the schema's step 2 -> 3): a B-tree row, its statement and its
   fifteen bound columns cost far more than the element's bytes. */

/* At most this many task runs to a task_pack row, and no more task runs
   once it holds PACK_BYTES: a row is one SQLite value, which may not exceed
   1e9 bytes (a task run's element stays under 2 * FL_STORE_MAX_RESULT). */
#define PACK_ROWS 1024
#define PACK_BYTES ((size_t)64 << 20)

static void pack_row(fl_buf *j, const fbatch *b, const frow *r) {
  store_pack_row p = {
      .n = r->n, .state_seq = r->n_changes, .started_seq = r->started_seq,
      .map_index = r->map_index, .attempts = r->attempts,
      .result_kind = r->result_kind, .state = r->state,
      .state_at = r->state_at, .started_at = r->started, .ended_at = r->ended,
      .key = fstr(b, r->key_off), .task = fstr(b, r->task_off),
      .error = fstr(b, r->err_off), .result = fstr(b, r->res_off),
      .result_len = r->res_len};
  fl__store_pack_add(j, &p);
}

/* Writes the packed rows of b, PACK_ROWS to a row and one run to a row. */
static int write_packs(wconn *w, const fbatch *b, fl_buf *j) {
  int rc;
  sqlite3_stmt *s = wstmt(w, W_PACK, &rc);
  if (!s) return rc;
  size_t i = 0;
  while (i < b->n_rows) {
    if (!b->rows[i].packed) {
      i++;
      continue;
    }
    int64_t run = b->rows[i].run;
    size_t in_pack = 0;
    fl__store_pack_begin(j);
    for (; i < b->n_rows && in_pack < PACK_ROWS && j->len < PACK_BYTES; i++) {
      const frow *r = &b->rows[i];
      if (!r->packed) continue;
      if (r->run != run) break;
      pack_row(j, b, r);
      in_pack++;
    }
    fl__store_pack_end(j);
    if (j->oom) return SQLITE_NOMEM;
    sqlite3_bind_int64(s, 1, run);
    sqlite3_bind_text64(s, 2, j->data, j->len, SQLITE_STATIC, SQLITE_UTF8);
    rc = wstep(s);
    if (rc != SQLITE_DONE) return rc;
  }
  return SQLITE_DONE;
}

/* Writes the log lines of b, then its trims: lines its task runs' bounds
   pushed out (in this batch's or earlier ones) go, and the counts of
   what was dropped are kept. */
static int write_logs(wconn *w, const fbatch *b) {
  int rc = SQLITE_DONE;
  sqlite3_stmt *s = b->n_logs ? wstmt(w, W_LOG, &rc) : NULL;
  if (b->n_logs && !s) return rc;
  for (size_t i = 0; i < b->n_logs; i++) {
    const pending_log *pl = &b->logs[i];
    const char *level = fl_store_log_level_name(pl->level);
    sqlite3_bind_int64(s, 1, pl->rowid);
    sqlite3_bind_int64(s, 2, pl->task);
    sqlite3_bind_int64(s, 3, pl->seq);
    sqlite3_bind_int(s, 4, pl->attempt);
    sqlite3_bind_double(s, 5, pl->at);
    fl__store_bind_text(s, 6, level, strlen(level));
    fl__store_bind_text(s, 7, fstr(b, pl->text_off), pl->text_len);
    if ((rc = wstep(s)) != SQLITE_DONE) return rc;
  }
  for (size_t i = 0; i < b->n_trims; i++) {
    const pending_trim *t = &b->trims[i];
    for (int k = W_LOG_TRIM; k <= W_LOG_DROPPED; k++) {
      if (!(s = wstmt(w, k, &rc))) return rc;
      sqlite3_bind_int64(s, 1, t->rowid);
      sqlite3_bind_int64(s, 2, t->task);
      if (k == W_LOG_TRIM) sqlite3_bind_int64(s, 3, t->first_seq);
      if (k == W_LOG_DROPPED) {
        sqlite3_bind_int64(s, 4, t->lines);
        sqlite3_bind_int64(s, 5, t->bytes);
      }
      if ((rc = wstep(s)) != SQLITE_DONE) return rc;
    }
  }
  return SQLITE_DONE;
}

/* Writes the runs' starts and the fire claims of b. */
static int write_begins(wconn *w, const fbatch *b, const char **what) {
  int rc = SQLITE_DONE;
  *what = "cannot record the start of a run";
  for (size_t i = 0; i < b->n_begins; i++) {
    const pending_begin *p = &b->begins[i];
    store_begin sb = {p->rowid, p->pid, p->start, p->scheduled_at,
                      p->started_at, {0}, {0}};
    for (int k = 0; k < J_BEGIN_STRINGS; k++) {
      sb.str[k] = fstr(b, p->str_off[k]);
      sb.len[k] = sb.str[k] ? strlen(sb.str[k]) : 0;
    }
    sqlite3_stmt *run = wstmt(w, W_RUN, &rc), *graph = wstmt(w, W_GRAPH, &rc);
    if (!run || !graph) return rc;
    if ((rc = fl__store_insert_begin(run, graph, &sb)) != SQLITE_DONE)
      return rc;
  }
  *what = "cannot record a claimed fire time";
  for (size_t i = 0; i < b->n_claims; i++) {
    const pending_claim *c = &b->claims[i];
    sqlite3_stmt *s = wstmt(w, W_CLAIM, &rc);
    if (!s) return rc;
    const char *flow = fstr(b, c->flow_off);
    fl__store_bind_text(s, 1, flow, strlen(flow));
    sqlite3_bind_int64(s, 2, c->ms);
    sqlite3_bind_double(s, 3, c->at);
    sqlite3_bind_text(s, 4, w->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, w->pid);
    if ((rc = wstep(s)) != SQLITE_DONE) return rc;
  }
  return SQLITE_DONE;
}

/* Writes one batch inside the caller's transaction. */
static int write_one(wconn *w, const fbatch *b, const char **what) {
  int rc = write_begins(w, b, what);
  if (rc != SQLITE_DONE) return rc;
  *what = "cannot record a task run";
  /* New rows are inserted TASK_ROWS to a statement (most of a row's cost
     is its statement's); rows an earlier batch wrote are upserted. */
  const frow *chunk[TASK_ROWS];
  int in_chunk = 0;
  size_t i;
  for (i = 0; i < b->n_rows; i++) {
    const frow *r = &b->rows[i];
    if (r->packed) continue; /* write_packs */
    if (!r->fresh) {
      sqlite3_stmt *up = wstmt(w, W_UPSERT, &rc);
      if (!up) goto fail;
      bind_row(up, 0, b, r);
      if ((rc = wstep(up)) != SQLITE_DONE) goto fail;
      if (r->was_packed && r->result_kind < 0) { /* keep the packed result */
        sqlite3_stmt *u = wstmt(w, W_UNPACK_RESULT, &rc);
        if (!u) goto fail;
        sqlite3_bind_int64(u, 1, r->run);
        sqlite3_bind_int64(u, 2, r->n);
        if ((rc = wstep(u)) != SQLITE_DONE) goto fail;
      }
      continue;
    }
    chunk[in_chunk++] = r;
    if (in_chunk < TASK_ROWS) continue;
    sqlite3_stmt *many = wstmt(w, W_INSERT_MANY, &rc);
    if (!many) goto fail;
    for (int k = 0; k < TASK_ROWS; k++)
      bind_row(many, k * TASK_COLS, b, chunk[k]);
    if ((rc = wstep(many)) != SQLITE_DONE) goto fail;
    in_chunk = 0;
  }
  for (int k = 0; k < in_chunk; k++) {
    sqlite3_stmt *one = wstmt(w, W_INSERT, &rc);
    if (!one) goto fail;
    bind_row(one, 0, b, chunk[k]);
    if ((rc = wstep(one)) != SQLITE_DONE) goto fail;
  }
  if ((rc = write_packs(w, b, &w->pack)) != SQLITE_DONE) goto fail;
  *what = "cannot record a task state change";
  sqlite3_stmt *s = b->n_events ? wstmt(w, W_EVENT, &rc) : NULL;
  if (b->n_events && !s) goto fail;
  for (i = 0; i < b->n_events; i++) {
    const pending_event *ev = &b->events[i];
    const char *err = fstr(b, ev->err_off);
    const char *state = fl__store_task_state_names[ev->state];
    sqlite3_bind_int64(s, 1, ev->rowid);
    sqlite3_bind_int64(s, 2, ev->task);
    sqlite3_bind_int64(s, 3, ev->seq);
    sqlite3_bind_double(s, 4, ev->at);
    fl__store_bind_text(s, 5, state, strlen(state));
    sqlite3_bind_int(s, 6, ev->attempt);
    fl__store_bind_text(s, 7, err, err ? strlen(err) : 0);
    if ((rc = wstep(s)) != SQLITE_DONE) goto fail;
  }
  *what = "cannot record where an attempt ran";
  s = b->n_workers ? wstmt(w, W_WORKER, &rc) : NULL;
  if (b->n_workers && !s) goto fail;
  for (i = 0; i < b->n_workers; i++) {
    const pending_worker *pw = &b->workers[i];
    const char *host = fstr(b, pw->host_off);
    sqlite3_bind_int64(s, 1, pw->rowid);
    sqlite3_bind_int64(s, 2, pw->task);
    sqlite3_bind_int(s, 3, pw->attempt);
    fl__store_bind_text(s, 4, host, strlen(host));
    sqlite3_bind_int64(s, 5, pw->pid);
    if ((rc = wstep(s)) != SQLITE_DONE) goto fail;
  }
  *what = "cannot record a task's log line";
  if ((rc = write_logs(w, b)) != SQLITE_DONE) goto fail;
  *what = "cannot store a cached result";
  s = b->n_puts ? wstmt(w, W_PUT, &rc) : NULL;
  if (b->n_puts && !s) goto fail;
  for (i = 0; i < b->n_puts; i++) {
    const pending_put *p = &b->puts[i];
    fl__store_bind_text(s, 1, fstr(b, p->task_off), strlen(fstr(b, p->task_off)));
    fl__store_bind_text(s, 2, fstr(b, p->key_off), strlen(fstr(b, p->key_off)));
    fl__store_bind_text(s, 3, fstr(b, p->json_off), p->json_len);
    sqlite3_bind_double(s, 4, p->at);
    if ((rc = wstep(s)) != SQLITE_DONE) goto fail;
  }
  *what = "cannot record the end of a run";
  s = b->n_ends ? wstmt(w, W_END, &rc) : NULL;
  if (b->n_ends && !s) goto fail;
  for (i = 0; i < b->n_ends; i++) {
    const pending_end *e = &b->ends[i];
    const char *state = fl__store_flow_state_name(e->state);
    const char *err = fstr(b, e->err_off), *counts = fstr(b, e->counts_off);
    sqlite3_bind_int64(s, 1, e->rowid);
    fl__store_bind_text(s, 2, state, strlen(state));
    fl__store_bind_opt_double(s, 3, e->ended_at);
    fl__store_bind_text(s, 4, err, err ? strlen(err) : 0);
    fl__store_bind_text(s, 5, counts, counts ? strlen(counts) : 0);
    if ((rc = wstep(s)) != SQLITE_DONE) goto fail;
  }
  *what = "cannot record what became of a fire time";
  s = b->n_fires ? wstmt(w, W_FIRE, &rc) : NULL;
  if (b->n_fires && !s) goto fail;
  for (i = 0; i < b->n_fires; i++) {
    const pending_fire *f = &b->fires[i];
    const char *flow = fstr(b, f->flow_off), *outcome = fstr(b, f->outcome_off);
    const char *detail = fstr(b, f->detail_off);
    fl__store_bind_text(s, 1, flow, strlen(flow));
    fl__store_bind_text(s, 2, outcome, strlen(outcome));
    sqlite3_bind_double(s, 3, f->first);
    fl__store_bind_opt_double(s, 4, f->last);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)f->count);
    fl__store_bind_text(s, 6, detail, detail ? strlen(detail) : 0);
    sqlite3_bind_double(s, 7, f->at);
    sqlite3_bind_int64(s, 8, w->pid);
    if ((rc = wstep(s)) != SQLITE_DONE) goto fail;
  }
  return SQLITE_DONE;
fail:
  return rc;
}

/* Writes the batches from b on, in one transaction on w: the SQLite result
   code; on failure, the transaction is rolled back and err holds what
   failed and why. */
int fl__wconn_write(wconn *w, const fbatch *b, int64_t want_ids,
                    int64_t *ids_first, fl_buf *err) {
  const char *what = "cannot write the run's changes";
  int rc = wrun(w, W_BEGIN);
  for (; rc == SQLITE_DONE && b; b = b->next) rc = write_one(w, b, &what);
  if (rc == SQLITE_DONE && want_ids) { /* the next block of run ids */
    what = "cannot reserve run ids";
    rc = fl__store_reserve_ids(w->db, want_ids, ids_first);
  }
  if (rc == SQLITE_DONE) {
    what = "cannot write the run's changes";
    rc = wrun(w, W_COMMIT);
  }
  if (rc == SQLITE_DONE) return rc;
  fl_buf_reset(err);
  fl_buf_addf(err, "%s: %s", what, sqlite3_errmsg(w->db));
  if (!sqlite3_get_autocommit(w->db)) wrun(w, W_ROLLBACK);
  return rc;
}
