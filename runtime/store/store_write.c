/*
 * store_write.c — writing buffered changes to the file: a flush freezes
 * the batch and a thread of the store's own writes it; see store.h
 * ("Durability", "Threading").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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

static const char cache_put_sql[] =
    "INSERT OR REPLACE INTO cache(task, key, result, stored_at)"
    " VALUES (?1, ?2, ?3, ?4)";


/* ---- what is buffered, and the journals' turns --------------------------- */

size_t fl_store_buffered(const fl_store *st) {
  return st->n_events + st->n_puts + st->n_touched + st->n_ends + st->n_fires +
         st->n_begins + st->n_claims + st->n_workers;
}

size_t fl_store_pending(const fl_store *st) {
  return fl_store_buffered(st) + fl__store_queued_changes(st);
}

/* The journals' records are all in the file once no run is open and
   nothing is buffered. */
void fl__store_journal_settled(fl_store *st) {
  if (st->runs || fl_store_pending(st) != 0) return;
  fl_journal_reset(st->journal);
  fl_journal_reset(st->spare);
  st->spare_cover = 0;
}

/* A journal takes its turn once it holds this much: short runs keep one. */
#define TURN_BYTES (1u << 20)

/* The journals take turns, so that a run's journal holds what the file
   does not yet, not the whole run (a 1,000,000-element map wrote 265 MB).
   At a flush, every record of the active journal is in a batch frozen so
   far (but the declarations of task runs that did not change since, which
   the next journal declares again: redeclare()); so once the batches up
   to this one are committed, none of its records is needed any more. The
   spare, when its own records are all committed, is reset and made the
   active one, with the next generation, which orders the two for a
   replay. If it is not yet (the writer is behind), the active journal
   goes on, and turns at a later flush. */
void fl__store_journal_turn(fl_store *st, uint64_t frozen) {
  if (!st->journal || st->replaying) return;
  if (st->spare_cover && fl__store_committed_seq(st) >= st->spare_cover) {
    fl_journal_reset(st->spare);
    st->spare_cover = 0;
  }
  if (st->spare_cover || fl_journal_used(st->journal) < TURN_BYTES) return;
  if (!st->spare) {
    char err[512];
    /* Without a spare the active journal goes on growing, as it did. */
    if (fl_journal_create(st->path, &st->spare, err, sizeof err) != 0) return;
  }
  fl_journal *was = st->journal;
  st->journal = st->spare;
  st->spare = was;
  st->spare_cover = frozen;
  fl_journal_set_generation(st->journal, ++st->journal_gen);
  /* How many task runs each open run has declared: the bound a replay of
     this journal puts on the task numbers its records name (J_COUNT). A
     failure to append is the next record's to report. */
  for (const fl_store_run *run = st->runs; run; run = run->next) {
    j_head h = {run->rowid, run->n_tasks, J_COUNT};
    fl_journal_part part = {&h, sizeof h};
    (void)fl_journal_append(st->journal, &part, 1);
  }
}

/* ---- writing a batch ---------------------------------------------------------

   A flush freezes the batch: the touched task runs' rows are copied out of
   their entries (which the engine goes on changing) into a frozen batch
   that owns every byte it writes, strings included. The frozen batch is
   then written by the writer thread on a connection of its own, so that
   the engine's thread never waits for SQLite while a run goes (the
   journal, not the file, is what makes a change durable), or, for
   ":memory:" (one connection only), at once on the handle's connection.
   Rows are upserts: a task run's row is inserted by the first batch that
   holds it and updated by later ones, whatever became of earlier batches,
   and a batch that failed is written again, whole, in order. */

/* One task run's row, frozen. Strings are offsets into the batch's. */
typedef struct frow {
  int64_t run;
  uint32_t n, n_changes, started_seq;
  int32_t map_index, attempts, state;
  int32_t result_kind; /* FL_STORE_RESULT_*, or -1: keep the stored one */
  int fresh;           /* no batch before this one holds the row */
  int packed;          /* fresh and ended: written into a task_pack row */
  int was_packed;      /* an earlier batch packed it: it changed after it
                          ended, so task_row takes over, result included */
  double state_at, started, ended;
  size_t key_off, task_off, err_off, res_off, res_len; /* SIZE_MAX: NULL */
} frow;

typedef struct fbatch {
  struct fbatch *next;
  uint64_t seq; /* st->batch_seq when it was frozen */
  frow *rows;
  size_t n_rows;
  pending_event *events; /* their rowid, never their run pointer, is used */
  size_t n_events;
  pending_put *puts;
  size_t n_puts;
  pending_end *ends; /* after the rows: a run's end follows its tasks */
  size_t n_ends;
  pending_fire *fires;
  size_t n_fires;
  pending_begin *begins; /* before the rows: a run starts before its tasks */
  size_t n_begins;
  pending_claim *claims;
  size_t n_claims;
  pending_worker *workers;
  size_t n_workers;
  fl_buf strings;
} fbatch;

static void fbatch_free(fbatch *b) {
  if (!b) return;
  free(b->rows);
  free(b->events);
  free(b->puts);
  free(b->ends);
  free(b->fires);
  free(b->begins);
  free(b->claims);
  free(b->workers);
  fl_buf_free(&b->strings);
  free(b);
}

static size_t fbatch_size(const fbatch *b) {
  return b->n_rows + b->n_events + b->n_puts + b->n_ends + b->n_fires +
         b->n_begins + b->n_claims + b->n_workers;
}

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
typedef struct wconn {
  sqlite3 *db;
  sqlite3_stmt *stmt[W_COUNT];
  int owned; /* db is this struct's to close */
  int64_t pid; /* this process's, for fire_event.owner_pid */
  const char *host; /* and its host, for fire.owner_host */
  fl_buf pack; /* a task_pack row's JSON, reused */
} wconn;

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
      [W_WORKER] = worker_insert_sql};
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

static void wconn_close(wconn *w) {
  for (int i = 0; i < W_COUNT; i++) sqlite3_finalize(w->stmt[i]);
  if (w->owned) sqlite3_close(w->db);
  fl_buf_free(&w->pack);
  memset(w, 0, sizeof *w);
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
static int write_fbatches(wconn *w, const fbatch *b, int64_t want_ids,
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

/* Copies s (n bytes) and a NUL into b's strings. */
static size_t fb_str(fbatch *b, const char *s, size_t n) {
  size_t off = b->strings.len;
  fl_buf_add(&b->strings, s, n);
  fl_buf_addc(&b->strings, '\0');
  return off;
}

/* Moves everything buffered into a frozen batch (NULL when out of memory,
   the buffer then unchanged). */
static fbatch *freeze(fl_store *st) {
  fbatch *b = calloc(1, sizeof *b);
  frow *rows = malloc((st->n_touched ? st->n_touched : 1) * sizeof *rows);
  if (!b || !rows) {
    free(b);
    free(rows);
    return NULL;
  }
  b->rows = rows;
  b->seq = st->batch_seq + 1; /* taken below, once nothing can fail */
  b->strings = st->batch; /* results, cached results, event errors */
  size_t keep = b->strings.len;
  for (size_t i = 0; i < st->n_touched; i++) {
    const fl_store_run *run = st->touched[i].run;
    uint32_t n = st->touched[i].task;
    const task_entry *e = &run->tasks[n];
    const char *key = run->names.data + e->key_off;
    const char *task = run->names.data + e->task_off;
    frow *r = &rows[i];
    *r = (frow){.run = run->rowid, .n = n, .n_changes = e->n_changes,
                .started_seq = e->started_seq, .map_index = e->map_index,
                .attempts = e->attempts, .state = e->state,
                .fresh = !e->written,
                .packed = !e->written && store_is_final_state(e->state),
                .was_packed = e->packed,
                .result_kind = e->result_kind ? e->result_kind
                               : e->written   ? -1
                                              : 0,
                .state_at = e->state_at, .started = e->started,
                .ended = e->ended, .err_off = SIZE_MAX, .res_off = SIZE_MAX};
    r->key_off = fb_str(b, key, strlen(key));
    r->task_off = fb_str(b, task, strlen(task));
    if (e->error) r->err_off = fb_str(b, e->error, strlen(e->error));
    if (e->result_kind == FL_STORE_RESULT_JSON) {
      r->res_off = e->result_off;
      r->res_len = e->result_len;
    }
  }
  if (b->strings.oom) {
    b->strings.len = keep;
    b->strings.oom = 0;
    st->batch = b->strings;
    free(rows);
    free(b);
    return NULL;
  }
  b->n_rows = st->n_touched;
  for (size_t i = 0; i < st->n_touched; i++) {
    task_entry *e = &st->touched[i].run->tasks[st->touched[i].task];
    e->touched = e->result_kind = 0;
    e->packed |= !e->written && store_is_final_state(e->state);
    e->written = 1; /* its row is in this batch: later ones update it */
    e->result_off = e->result_len = 0;
  }
  st->batch_seq = b->seq;
  b->events = st->events;
  b->n_events = st->n_events;
  b->puts = st->puts;
  b->n_puts = st->n_puts;
  b->ends = st->ends;
  b->n_ends = st->n_ends;
  b->fires = st->fires;
  b->n_fires = st->n_fires;
  st->fires = NULL;
  st->cap_fires = 0;
  st->n_fires = 0;
  b->begins = st->begins;
  b->n_begins = st->n_begins;
  st->begins = NULL;
  st->cap_begins = st->n_begins = 0;
  b->claims = st->claims;
  b->n_claims = st->n_claims;
  st->claims = NULL;
  st->cap_claims = st->n_claims = 0;
  b->workers = st->workers;
  b->n_workers = st->n_workers;
  st->workers = NULL;
  st->cap_workers = st->n_workers = 0;
  st->events = NULL;
  st->puts = NULL;
  st->ends = NULL;
  st->cap_events = st->cap_puts = st->cap_ends = 0;
  st->n_touched = st->n_events = st->n_puts = st->n_ends = 0;
  st->batch = (fl_buf)FL_BUF_INIT;
  if (st->stats) {
    st->n_flushes++;
    st->n_rows += b->n_rows;
    st->n_events_written += b->n_events;
  }
  return b;
}

/* ---- the writer thread ---------------------------------------------------------- */

/* Frozen batches waiting to be written, in order, and the thread that
   writes them. The engine's thread only ever touches the queue under mu. */
typedef struct writer {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* to the thread: a batch, a retry, or stop */
  pthread_cond_t idle; /* from the thread: the queue moved or failed */
  fbatch *head, *tail;
  size_t queued;  /* changes in the queue */
  int busy;       /* writing the head now */
  int failed;     /* the head failed; not retried until asked */
  int stop;
  int status;     /* FLOWLUA_* of the last failure, until reported */
  fl_buf err;     /* its message */
  wconn conn;     /* the thread's own */
  const char *path;
  int busy_ms;
  store_busy waits; /* conn's busy handler */
  int wal_frames; /* in the WAL after the thread's last commit */
  uint64_t committed; /* seq of the last batch it committed */
  /* Run ids it reserved for the engine's thread (fl__store_refill_ids),
     and whether it was asked for more. */
  int64_t ids_first, ids_count;
  int want_ids;
} writer;

/* Checkpoint when the writer is idle and the WAL holds this many frames
   (SQLite's own default threshold, which it applies on commit instead:
   on this thread, the commit that ends a run would wait for it). */
#define CHECKPOINT_FRAMES 1000

static int note_wal_size(void *ctx, sqlite3 *db, const char *name, int frames) {
  (void)db;
  (void)name;
  ((writer *)ctx)->wal_frames = frames;
  return SQLITE_OK;
}

/* "state store 'p': <what>: <SQLite's reason>", plus a hint when the
   cause is another process holding the lock. */
static void format_failure(fl_buf *out, const char *path, int rc,
                           const fl_buf *why, int busy_ms) {
  fl_buf_reset(out);
  fl_buf_addf(out, "state store '%s': %s", path, fl_buf_str((fl_buf *)why));
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
    fl_buf_addf(out, " (another process kept it locked for more than %d ms)",
                busy_ms);
}

static void *writer_main(void *arg) {
  writer *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->stop && (!w->head || w->failed))
      pthread_cond_wait(&w->wake, &w->mu);
    if (!w->head || w->failed) break; /* stopping, nothing to write */
    /* Everything queued now, in one transaction: the batches are detached
       from the queue meanwhile, so the engine can queue more. */
    fbatch *b = w->head;
    size_t n = w->queued;
    w->head = w->tail = NULL;
    w->busy = 1;
    int64_t want_ids = w->want_ids && !w->ids_count ? FL_STORE_ID_BLOCK : 0;
    int64_t ids_first = 0;
    pthread_mutex_unlock(&w->mu);
    fl_buf why = FL_BUF_INIT;
    int rc = write_fbatches(&w->conn, b, want_ids, &ids_first, &why);
    pthread_mutex_lock(&w->mu);
    w->busy = 0;
    if (rc == SQLITE_DONE && want_ids) {
      w->ids_first = ids_first;
      w->ids_count = want_ids;
      w->want_ids = 0;
    }
    if (rc == SQLITE_DONE) {
      w->queued -= n;
      while (b) {
        fbatch *next = b->next;
        w->committed = b->seq;
        fbatch_free(b);
        b = next;
      }
    } else {
      /* Back in front of whatever came meanwhile, for a retry when asked. */
      fbatch *last = b;
      while (last->next) last = last->next;
      last->next = w->head;
      if (!w->head) w->tail = last;
      w->head = b;
      format_failure(&w->err, w->path, rc, &why, w->busy_ms);
      w->status = fl__store_status_of(rc);
      w->failed = 1;
    }
    fl_buf_free(&why);
    pthread_cond_broadcast(&w->idle);
    if (rc == SQLITE_DONE && !w->head && !w->stop &&
        w->wal_frames >= CHECKPOINT_FRAMES) {
      /* Nothing queued: copy the WAL into the file now. PASSIVE: it never
         waits for readers or writers; what it cannot copy stays for the
         next time. */
      pthread_mutex_unlock(&w->mu);
      sqlite3_wal_checkpoint_v2(w->conn.db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                NULL, NULL);
      pthread_mutex_lock(&w->mu);
      w->wal_frames = 0;
    }
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static int writer_start(fl_store *st) {
  writer *w = calloc(1, sizeof *w);
  if (!w) return fl__store_oom(st, "cannot start its writer");
  w->path = st->path;
  w->busy_ms = st->opts.busy_timeout_ms;
  w->conn.owned = 1;
  w->conn.pid = st->self.pid;
  w->conn.host = st->self.host;
  int rc = sqlite3_open_v2(st->path, &w->conn.db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc == SQLITE_OK) {
    fl__store_busy_install(st, w->conn.db, &w->waits);
    sqlite3_extended_result_codes(w->conn.db, 1);
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
    rc = sqlite3_exec(w->conn.db, sql, NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK) sqlite3_wal_hook(w->conn.db, note_wal_size, w);
  if (rc != SQLITE_OK) {
    int status = fl__store_set_err(st, fl__store_status_of(rc),
                         "cannot open a second connection to it: %s",
                         w->conn.db ? sqlite3_errmsg(w->conn.db)
                                    : sqlite3_errstr(rc));
    wconn_close(&w->conn);
    free(w);
    return status;
  }
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->wake, NULL);
  pthread_cond_init(&w->idle, NULL);
  /* Signals are for the engine's thread (flowlua_stop from a handler). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&w->thread, NULL, writer_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->idle);
    wconn_close(&w->conn);
    free(w);
    return fl__store_set_err(st, FLOWLUA_EIO, "cannot start its writer thread: %s",
                   strerror(err));
  }
  st->writer = w;
  st->writer_used = 1;
  return FLOWLUA_OK;
}

/* Stops the thread once the queue is written or has failed, and frees it
   with whatever could not be written. */
void fl__store_writer_stop(fl_store *st) {
  writer *w = st->writer;
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->wake);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  while (w->head) {
    fbatch *b = w->head;
    w->head = b->next;
    fbatch_free(b);
  }
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->wake);
  pthread_cond_destroy(&w->idle);
  wconn_close(&w->conn);
  fl_buf_free(&w->err);
  free(w);
  st->writer = NULL;
}

/* Takes over a failure of the writer as the handle's error (once). */
static int writer_take_error(fl_store *st) {
  writer *w = st->writer;
  if (!w->status) return FLOWLUA_OK;
  int status = w->status;
  fl_buf_reset(&st->err);
  fl_buf_adds(&st->err, fl_buf_str(&w->err));
  w->status = FLOWLUA_OK;
  return status;
}

/* Hands b to the writer (after the batches before it); with wait, returns
   once the queue is written, or has failed. */
static int writer_submit(fl_store *st, fbatch *b, int wait) {
  writer *w = st->writer;
  pthread_mutex_lock(&w->mu);
  if (b) {
    if (w->tail)
      w->tail->next = b;
    else
      w->head = b;
    w->tail = b;
    w->queued += fbatch_size(b);
  }
  if (w->failed && (b || wait)) w->failed = 0; /* asked again: retry */
  pthread_cond_signal(&w->wake);
  while (wait && (w->head || w->busy) && !w->failed)
    pthread_cond_wait(&w->idle, &w->mu);
  int status = writer_take_error(st);
  if (wait && w->head && status == FLOWLUA_OK) status = FLOWLUA_EIO;
  pthread_mutex_unlock(&w->mu);
  return status;
}

uint64_t fl__store_committed_seq(fl_store *st) {
  uint64_t seq = st->mem_committed;
  if (st->writer) {
    pthread_mutex_lock(&st->writer->mu);
    if (st->writer->committed > seq) seq = st->writer->committed;
    pthread_mutex_unlock(&st->writer->mu);
  }
  return seq;
}

/* Batches are written on the handle's own connection until the writer
   thread starts (never, for ":memory:", whose one connection is the
   database). */
int fl__store_mem_conn_open(fl_store *st) {
  st->mem_conn = calloc(1, sizeof *st->mem_conn);
  if (!st->mem_conn) return fl__store_oom(st, "cannot prepare its queries");
  st->mem_conn->db = st->db;
  st->mem_conn->pid = st->self.pid;
  st->mem_conn->host = st->self.host;
  return FLOWLUA_OK;
}

void fl__store_mem_queue_free(fl_store *st) {
  while (st->mem_head) {
    fbatch *b = st->mem_head;
    st->mem_head = b->next;
    fbatch_free(b);
  }
  st->mem_tail = NULL;
  if (st->mem_conn) wconn_close(st->mem_conn);
  free(st->mem_conn);
  st->mem_conn = NULL;
}

void fl__store_drop_queued(fl_store *st) {
  while (st->mem_head) {
    fbatch *b = st->mem_head;
    st->mem_head = b->next;
    fbatch_free(b);
  }
  st->mem_tail = NULL;
}

/* Changes handed over to be written and not yet in the file. */
size_t fl__store_queued_changes(const fl_store *st) {
  size_t n = 0;
  if (st->writer) {
    pthread_mutex_lock(&st->writer->mu);
    n = st->writer->queued;
    pthread_mutex_unlock(&st->writer->mu);
  }
  for (const fbatch *b = st->mem_head; b; b = b->next) n += fbatch_size(b);
  return n;
}

/* Waits until every batch handed to the writer is in the file. */
int fl__store_writer_drain(fl_store *st) {
  return st->writer ? writer_submit(st, NULL, 1) : FLOWLUA_OK;
}

/* A flush: freezes the batch and writes it — on the writer thread, waiting
   for it when `wait` (and for every batch before it), or at once on the
   handle's connection for ":memory:". */
static int flush_batch(fl_store *st, const char *what, int wait) {
  double t0 = st->stats ? fl__store_mono_now() : 0;
  fbatch *b = NULL;
  if (fl_store_buffered(st)) {
    b = freeze(st);
    if (!b) return fl__store_oom(st, what);
  }
  fl__store_journal_turn(st, st->batch_seq);
  /* The writer thread starts with the first flush that does not wait:
     a short run (and `runs`, `show`, a resume's checks) never needs it. */
  if (!wait && !st->writer && st->journal && !st->mem_head &&
      writer_start(st) != FLOWLUA_OK)
    fl_buf_reset(&st->err); /* then this connection writes, as before */
  int status;
  if (st->writer) {
    status = !b && !wait ? FLOWLUA_OK : writer_submit(st, b, wait);
  } else {
    /* One connection: write now; a failed batch stays first in line. */
    if (b) {
      if (st->mem_tail)
        st->mem_tail->next = b;
      else
        st->mem_head = b;
      st->mem_tail = b;
    }
    status = FLOWLUA_OK;
    if (st->mem_head) {
      fl_buf why = FL_BUF_INIT;
      int64_t unused;
      int rc = write_fbatches(st->mem_conn, st->mem_head, 0, &unused, &why);
      if (rc != SQLITE_DONE) {
        format_failure(&st->err, st->path, rc, &why, st->opts.busy_timeout_ms);
        st->err_busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
        status = fl__store_status_of(rc);
      } else {
        while (st->mem_head) {
          fbatch *done = st->mem_head;
          st->mem_head = done->next;
          st->mem_committed = done->seq;
          fbatch_free(done);
        }
        st->mem_tail = NULL;
      }
      fl_buf_free(&why);
    }
  }
  if (st->stats) st->flush_seconds += fl__store_mono_now() - t0;
  return status;
}

/* One flush, then an extra write (run begin or end) in a transaction of
   its own on the handle's connection. */
typedef int (*fl__store_extra_write)(fl_store *st, void *ctx);

int fl__store_flush_with(fl_store *st, const char *what, fl__store_extra_write extra,
                      void *ctx) {
  int status = flush_batch(st, what, 1);
  if (status || !extra) return status;
  status = fl__store_tx_begin(st, what);
  if (status) return status;
  status = extra(st, ctx);
  if (status == FLOWLUA_OK) status = fl__store_tx_commit(st, what);
  if (status != FLOWLUA_OK) fl__store_tx_rollback(st);
  return status;
}

int fl__store_flush(fl_store *st, const char *what) {
  return fl__store_flush_with(st, what, NULL, NULL);
}


int fl_store_flush(fl_store *st) {
  int status = fl__store_flush(st, "cannot write the run's changes");
  if (status == FLOWLUA_OK) fl__store_journal_settled(st);
  return status;
}

void fl__store_refill_ids(fl_store *st) {
  writer *w = st->writer;
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  if (st->ids_next >= st->ids_end && w->ids_count) {
    st->ids_next = w->ids_first;
    st->ids_end = w->ids_first + w->ids_count;
    w->ids_count = 0;
  }
  if (st->ids_end - st->ids_next < FL_STORE_ID_LOW) w->want_ids = 1;
  pthread_mutex_unlock(&w->mu);
}

void fl_store_write_in_background(fl_store *st) {
  if (st) st->background = 1;
}

int fl_store_flush_async(fl_store *st) {
  return flush_batch(st, "cannot write the run's changes", 0);
}

