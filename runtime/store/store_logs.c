/*
 * store_logs.c — reading back what a task run did, for `show`, the report
 * and the web UI: its kept log lines and what their bounds dropped
 * (task_log, task_log_dropped), and every state change of one task run
 * (the view task_history, with where its attempts ran).
 *
 * Both backends in one code: each query is written for SQLite and for
 * PostgreSQL, and its rows come back as text (SQLite's columns read as
 * text, as libpq's are) to one row function, so that what is read, and
 * how it is ordered and bounded, cannot differ between them.
 *
 * What it must not do: write, or read a run's other tables (store_read.c
 * and pg_read.c load runs; this file is handed a loaded one).
 */
#define _GNU_SOURCE
#include "pg_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_api.h"

/* ---- one query, either backend ---------------------------------------------- */

/* A row: n_cols values (NULL for SQL NULL) and their lengths. */
typedef int (*row_fn)(void *ctx, const char *const *v, const size_t *len);

#define MAX_COLS 8

static int sqlite_rows(fl_store *st, const char *sql, const char *const *params,
                       int n_params, int n_cols, row_fn fn, void *ctx,
                       const char *what) {
  sqlite3_stmt *s = NULL;
  int status = fl__store_prepare(st, sql, &s, what);
  if (status) return status;
  /* Text, as libpq's parameters are: the statements cast the numbers
     (a view's columns have no affinity to convert them). */
  for (int i = 0; i < n_params; i++)
    sqlite3_bind_text(s, i + 1, params[i], -1, SQLITE_STATIC);
  int rc;
  while (status == FLOWLUA_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const char *v[MAX_COLS];
    size_t len[MAX_COLS];
    for (int c = 0; c < n_cols; c++) {
      v[c] = (const char *)sqlite3_column_text(s, c);
      len[c] = (size_t)sqlite3_column_bytes(s, c);
    }
    if (fn(ctx, v, len)) status = fl__store_oom(st, what);
  }
  if (status == FLOWLUA_OK && rc != SQLITE_DONE)
    status = fl__store_sql_err(st, rc, "%s", what);
  sqlite3_finalize(s);
  return status;
}

static int pg_rows(fl_store *st, const char *sql, const char *const *params,
                   int n_params, int n_cols, row_fn fn, void *ctx,
                   const char *what) {
  PGresult *r = fl_pg_query(st->pg, what, sql, n_params, params);
  if (!r) return fl__pg_store_err(st, FLOWLUA_EIO);
  const fl_pq_api *pq = fl_pq();
  int status = FLOWLUA_OK, rows = pq->ntuples(r);
  for (int i = 0; status == FLOWLUA_OK && i < rows; i++) {
    const char *v[MAX_COLS];
    size_t len[MAX_COLS];
    for (int c = 0; c < n_cols; c++) {
      v[c] = pq->getisnull(r, i, c) ? NULL : pq->getvalue(r, i, c);
      len[c] = (size_t)pq->getlength(r, i, c);
    }
    if (fn(ctx, v, len)) status = fl__store_oom(st, what);
  }
  pq->clear(r);
  return status;
}

/* Runs the query for st's backend (sql[0] SQLite's, sql[1] PostgreSQL's),
   calling fn for each row: 0, or a status with st's error set. */
static int rows(fl_store *st, const char *const sql[2],
                const char *const *params, int n_params, int n_cols, row_fn fn,
                void *ctx, const char *what) {
  if (st->pg)
    return pg_rows(st, sql[1], params, n_params, n_cols, fn, ctx, what);
  return sqlite_rows(st, sql[0], params, n_params, n_cols, fn, ctx, what);
}

static int64_t to_i64(const char *v) { return v ? strtoll(v, NULL, 10) : 0; }
static double to_dbl(const char *v) { return v ? strtod(v, NULL) : 0; }

/* ---- a run, and one of its task runs, by number ------------------------------ */

/* Its one value, as text, into the caller's buffer. */
typedef struct one_value {
  char text[32];
  int found;
} one_value;

static int take_one(void *ctx, const char *const *v, const size_t *len) {
  one_value *o = ctx;
  (void)len;
  if (!v[0] || o->found) return 0;
  snprintf(o->text, sizeof o->text, "%s", v[0]);
  o->found = 1;
  return 0;
}

/* The row id of d's run (found 0: deleted since it was loaded). */
static int run_rowid(fl_store *st, const fl_store_run_detail *d,
                     one_value *id) {
  static const char *const sql[2] = {
      "SELECT id FROM flow_run WHERE run_id = ?1",
      "SELECT id FROM flow_run WHERE run_id = $1"};
  memset(id, 0, sizeof *id);
  const char *params[] = {d->run.run_id};
  return rows(st, sql, params, 1, 1, take_one, id, "cannot read a run");
}

/* The number of task run key in run rowid (found 0: none). */
static int task_number(fl_store *st, const char *rowid, const char *key,
                       one_value *n) {
  static const char *const sql[2] = {
      "SELECT n FROM task_run WHERE run = CAST(?1 AS INTEGER) AND key = ?2",
      "SELECT n FROM task_run WHERE run = $1::bigint AND key = $2"};
  memset(n, 0, sizeof *n);
  const char *params[] = {rowid, key};
  return rows(st, sql, params, 2, 1, take_one, n,
              "cannot read a run's task runs");
}

/* The number of task run key of d: kept with the detail by its reader,
   else read. */
static int key_number(fl_store *st, const fl_store_run_detail *d,
                      const char *rowid, const char *key, one_value *n) {
  const fl__store_detail *det = (const fl__store_detail *)d;
  const fl_store_task_row *t = fl_store_detail_find(d, key);
  if (!t) {
    memset(n, 0, sizeof *n);
    return FLOWLUA_OK;
  }
  if (!det->numbers) return task_number(st, rowid, key, n);
  snprintf(n->text, sizeof n->text, "%u", det->numbers[t - d->tasks]);
  n->found = 1;
  return FLOWLUA_OK;
}

/* The numbers of d's task runs and their indexes in d, by number. */
typedef struct numbering {
  const fl_store_run_detail *d;
  fl__store_task_number *items;
  size_t n, cap;
} numbering;

static int take_number(void *ctx, const char *const *v, const size_t *len) {
  numbering *x = ctx;
  (void)len;
  const fl_store_task_row *t = v[1] ? fl_store_detail_find(x->d, v[1]) : NULL;
  if (!t) return 0; /* written since the detail was read */
  if (GROW(x->items, x->cap, x->n)) return -1;
  x->items[x->n++] = (fl__store_task_number){to_i64(v[0]),
                                             (size_t)(t - x->d->tasks)};
  return 0;
}

/* The numbers the reader kept with the detail (fl__store_detail.numbers):
   no query, so that `show` of a 100,000-task run does not read its task
   runs twice. 0, or -1 when the detail has none. */
static int detail_numbers(numbering *x) {
  const fl__store_detail *det = (const fl__store_detail *)x->d;
  if (!det->numbers) return -1;
  if (!x->d->n_tasks) return 0;
  x->items = malloc(x->d->n_tasks * sizeof *x->items);
  if (!x->items) return -1;
  for (size_t i = 0; i < x->d->n_tasks; i++)
    x->items[i] = (fl__store_task_number){det->numbers[i], i};
  x->n = x->cap = x->d->n_tasks;
  return 0;
}

static int number_tasks(fl_store *st, const char *rowid, numbering *x) {
  if (detail_numbers(x) == 0) return FLOWLUA_OK;
  static const char *const sql[2] = {
      "SELECT n, key FROM task_run WHERE run = CAST(?1 AS INTEGER)",
      "SELECT n, key FROM task_run WHERE run = $1::bigint"};
  const char *params[] = {rowid};
  int status = rows(st, sql, params, 1, 2, take_number, x,
                    "cannot read a run's task runs");
  if (status == FLOWLUA_OK && x->n)
    qsort(x->items, x->n, sizeof *x->items, fl__store_cmp_task_number);
  return status;
}

/* ---- log lines ------------------------------------------------------------------- */

void fl_store_log_list_free(fl_store_log_list *l) {
  free(l->lines);
  free(l->drops);
  fl__store_arena_free(l->arena_);
  memset(l, 0, sizeof *l);
}

typedef struct log_reader {
  fl_store_log_list *out;
  numbering *numbers; /* all task runs; NULL: one, index `only` */
  size_t only, cap_lines, cap_drops;
} log_reader;

/* The index in the detail of task run number v, or SIZE_MAX. */
static size_t index_of(const log_reader *r, const char *v) {
  if (!r->numbers) return r->only;
  fl__store_task_number want = {to_i64(v), 0};
  const fl__store_task_number *t =
      r->numbers->n ? bsearch(&want, r->numbers->items, r->numbers->n,
                              sizeof want, fl__store_cmp_task_number)
                    : NULL;
  return t ? t->index : SIZE_MAX;
}

/* n, seq, attempt, at, level, line */
static int take_line(void *ctx, const char *const *v, const size_t *len) {
  log_reader *r = ctx;
  size_t task = index_of(r, v[0]);
  if (task == SIZE_MAX) return 0;
  fl_store_log_list *l = r->out;
  if (GROW(l->lines, r->cap_lines, l->n)) return -1;
  char *line = fl__store_arena_dup(l->arena_, v[5] ? v[5] : "",
                                   v[5] ? len[5] : 0);
  if (!line) return -1;
  l->lines[l->n++] = (fl_store_log_line){
      .task = task, .seq = to_i64(v[1]), .attempt = (int)to_i64(v[2]),
      .at = to_dbl(v[3]), .level = fl_store_log_level_parse(v[4]),
      .line = line};
  return 0;
}

/* n, lines, bytes */
static int take_drop(void *ctx, const char *const *v, const size_t *len) {
  log_reader *r = ctx;
  (void)len;
  size_t task = index_of(r, v[0]);
  if (task == SIZE_MAX) return 0;
  fl_store_log_list *l = r->out;
  if (GROW(l->drops, r->cap_drops, l->n_drops)) return -1;
  l->drops[l->n_drops++] =
      (fl_store_log_drop){task, to_i64(v[1]), to_i64(v[2])};
  return 0;
}

static int cmp_line(const void *a, const void *b) {
  const fl_store_log_line *x = a, *y = b;
  if (x->task != y->task) return x->task < y->task ? -1 : 1;
  return (x->seq > y->seq) - (x->seq < y->seq);
}

static int cmp_drop(const void *a, const void *b) {
  const fl_store_log_drop *x = a, *y = b;
  return (x->task > y->task) - (x->task < y->task);
}

/* Reads the lines and drops of run rowid (of task run number n when n is
   not NULL) into r->out. */
static int read_logs(fl_store *st, const char *rowid, const char *n,
                     log_reader *r) {
  static const char *const all_lines[2] = {
      "SELECT n, seq, attempt, at, level, line FROM task_log"
      " WHERE run = CAST(?1 AS INTEGER)",
      "SELECT n, seq, attempt, at, level, line FROM task_log"
      " WHERE run = $1::bigint"};
  static const char *const one_lines[2] = {
      "SELECT n, seq, attempt, at, level, line FROM task_log"
      " WHERE run = CAST(?1 AS INTEGER) AND n = CAST(?2 AS INTEGER)",
      "SELECT n, seq, attempt, at, level, line FROM task_log"
      " WHERE run = $1::bigint AND n = $2::int"};
  static const char *const all_drops[2] = {
      "SELECT n, lines, bytes FROM task_log_dropped"
      " WHERE run = CAST(?1 AS INTEGER)",
      "SELECT n, lines, bytes FROM task_log_dropped WHERE run = $1::bigint"};
  static const char *const one_drops[2] = {
      "SELECT n, lines, bytes FROM task_log_dropped"
      " WHERE run = CAST(?1 AS INTEGER) AND n = CAST(?2 AS INTEGER)",
      "SELECT n, lines, bytes FROM task_log_dropped WHERE run = $1::bigint"
      " AND n = $2::int"};
  const char *params[] = {rowid, n};
  int n_params = n ? 2 : 1;
  int status = rows(st, n ? one_lines : all_lines, params, n_params, 6,
                    take_line, r, "cannot read a run's log lines");
  if (status == FLOWLUA_OK)
    status = rows(st, n ? one_drops : all_drops, params, n_params, 3,
                  take_drop, r, "cannot read a run's dropped log lines");
  return status;
}

int fl_store_load_logs(fl_store *st, const fl_store_run_detail *d,
                       const char *key, fl_store_log_list *out) {
  memset(out, 0, sizeof *out);
  if (!(out->arena_ = fl__store_arena_new()))
    return fl__store_oom(st, "cannot read a run's log lines");
  int status = st->pg ? FLOWLUA_OK : fl__store_writer_drain(st);
  one_value id, n;
  if (status == FLOWLUA_OK) status = run_rowid(st, d, &id);
  if (status || !id.found) return status; /* deleted since: no lines */
  numbering numbers = {.d = d};
  log_reader r = {.out = out};
  if (key) {
    const fl_store_task_row *t = fl_store_detail_find(d, key);
    if (!t) return FLOWLUA_OK;
    r.only = (size_t)(t - d->tasks);
    status = key_number(st, d, id.text, key, &n);
    if (status == FLOWLUA_OK && n.found)
      status = read_logs(st, id.text, n.text, &r);
  } else {
    r.numbers = &numbers;
    status = number_tasks(st, id.text, &numbers);
    if (status == FLOWLUA_OK) status = read_logs(st, id.text, NULL, &r);
  }
  free(numbers.items);
  if (status == FLOWLUA_OK) {
    if (out->n) qsort(out->lines, out->n, sizeof *out->lines, cmp_line);
    if (out->n_drops)
      qsort(out->drops, out->n_drops, sizeof *out->drops, cmp_drop);
  }
  return status;
}

const fl_store_log_line *fl_store_log_lines_of(const fl_store_log_list *l,
                                               size_t task, size_t *n) {
  *n = 0;
  if (!l || !l->n) return NULL;
  /* The first line of task: lines are sorted by task. */
  size_t lo = 0, hi = l->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (l->lines[mid].task < task)
      lo = mid + 1;
    else
      hi = mid;
  }
  size_t end = lo;
  while (end < l->n && l->lines[end].task == task) end++;
  *n = end - lo;
  return *n ? &l->lines[lo] : NULL;
}

const fl_store_log_drop *fl_store_log_drop_of(const fl_store_log_list *l,
                                              size_t task) {
  if (!l || !l->n_drops) return NULL;
  fl_store_log_drop want = {task, 0, 0};
  const fl_store_log_drop *x = bsearch(&want, l->drops, l->n_drops,
                                       sizeof want, cmp_drop);
  return x && (x->lines || x->bytes) ? x : NULL;
}

/* ---- one task run's state changes ------------------------------------------------- */

void fl_store_event_list_free(fl_store_event_list *l) {
  free(l->items);
  fl__store_arena_free(l->arena_);
  memset(l, 0, sizeof *l);
}

typedef struct event_reader {
  fl_store_event_list *out;
  size_t cap;
} event_reader;

/* seq, at, state, attempt, error */
static int take_event(void *ctx, const char *const *v, const size_t *len) {
  event_reader *r = ctx;
  fl_store_event_list *l = r->out;
  if (GROW(l->items, r->cap, l->n)) return -1;
  const char *error = NULL;
  if (v[4] && !(error = fl__store_arena_dup(l->arena_, v[4], len[4])))
    return -1;
  l->items[l->n++] = (fl_store_task_event){
      .seq = to_i64(v[0]), .at = to_dbl(v[1]),
      .state = fl_store_task_state_parse(v[2]), .attempt = (int)to_i64(v[3]),
      .error = error};
  return 0;
}

/* attempt, host, pid: given to every change of that attempt. */
static int take_worker(void *ctx, const char *const *v, const size_t *len) {
  event_reader *r = ctx;
  fl_store_event_list *l = r->out;
  int attempt = (int)to_i64(v[0]);
  const char *host = NULL;
  for (size_t i = 0; i < l->n; i++) {
    if (l->items[i].attempt != attempt || attempt < 1) continue;
    if (!host && !(host = fl__store_arena_dup(l->arena_, v[1] ? v[1] : "",
                                              v[1] ? len[1] : 0)))
      return -1;
    l->items[i].worker_host = host;
    l->items[i].worker_pid = to_i64(v[2]);
  }
  return 0;
}

int fl_store_load_task_events(fl_store *st, const fl_store_run_detail *d,
                              const char *key, fl_store_event_list *out) {
  static const char *const events_sql[2] = {
      "SELECT seq, at, state, attempt, error FROM task_history"
      " WHERE run = CAST(?1 AS INTEGER) AND n = CAST(?2 AS INTEGER)"
      " ORDER BY seq",
      "SELECT seq, at, state, attempt, error FROM task_history"
      " WHERE run = $1::bigint AND n = $2::int ORDER BY seq"};
  static const char *const workers_sql[2] = {
      "SELECT attempt, host, pid FROM attempt_worker"
      " WHERE run = CAST(?1 AS INTEGER) AND n = CAST(?2 AS INTEGER)",
      "SELECT attempt, host, pid FROM attempt_worker"
      " WHERE run = $1::bigint AND n = $2::int"};
  memset(out, 0, sizeof *out);
  if (!(out->arena_ = fl__store_arena_new()))
    return fl__store_oom(st, "cannot read a task run's state changes");
  int status = st->pg ? FLOWLUA_OK : fl__store_writer_drain(st);
  one_value id, n;
  if (status == FLOWLUA_OK) status = run_rowid(st, d, &id);
  if (status || !id.found) return status;
  status = key_number(st, d, id.text, key, &n);
  if (status || !n.found) return status;
  const char *params[] = {id.text, n.text};
  event_reader r = {.out = out};
  status = rows(st, events_sql, params, 2, 5, take_event, &r,
                "cannot read a task run's state changes");
  if (status == FLOWLUA_OK)
    status = rows(st, workers_sql, params, 2, 3, take_worker, &r,
                  "cannot read where a task run's attempts ran");
  return status;
}
