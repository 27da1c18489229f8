/*
 * pg_write.c — writing a chain of frozen batches (store_batch.c) to the
 * PostgreSQL history, in one transaction: the PostgreSQL twin of
 * fl__wconn_write (store_sqlite_write.c), with the same meaning.
 *
 * How: one statement per table for the whole chain, each row's columns
 * sent as array parameters and turned back into rows by unnest():
 *
 *   INSERT INTO task_run(...) SELECT unnest($1::bigint[]), ...
 *   ON CONFLICT (run, n) DO UPDATE SET ...
 *
 * A statement per row costs a round trip, a parse and a plan per row;
 * arrays cost one round trip per table. Measured (2-core VM, PostgreSQL
 * 15, 100,000 fresh no-op task runs in one statement): turning the arrays
 * into rows 150 ms, inserting them with their primary key 280 ms, and the
 * foreign key's check of each row against flow_run (PostgreSQL's RI
 * trigger, one query per row) 340 ms. The other way, COPY into a
 * temporary table then the same upsert from it, took 115 + 620 ms: no
 * faster, and it needs libpq's copy calls added to pg_api.h and a
 * temporary table (catalog writes) per transaction, so arrays it is.
 * unnest() goes in the select list, one per column, not in FROM: in FROM
 * each array's rows are first stored aside (250 ms instead of 150). The
 * arrays are text literals built here ({"a\"b",NULL}: text always quoted,
 * '"' and '\' escaped, NULL unquoted, doubles as %.17g so they read back
 * to the bit).
 *
 * What it must not do:
 * - touch one row twice in one ON CONFLICT DO UPDATE (PostgreSQL refuses
 *   the whole statement): a task run in several batches of the chain is
 *   sent once, as the last batch has it (with the last result that was
 *   set, when later ones keep theirs: result_kind -1); other tables' rows
 *   are made unique in SQL (DISTINCT ON ... ORDER BY ordinality);
 * - write part of a chain: BEGIN ... COMMIT, ROLLBACK on failure, and a
 *   batch that holds run starts or fire claims (pg_store.c writes those at
 *   once) is refused before anything is sent;
 * - be anything but idempotent: the same chain written again (the server
 *   restarted between the COMMIT and its answer) leaves the same rows.
 *
 * On PostgreSQL no task run is packed (schema: pg_schema.c): `packed` and
 * `was_packed` are the SQLite store's and are ignored; every task run is a
 * task_run row.
 */
#define _GNU_SOURCE
#include "pg_store.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "flowlua.h"
#include "pg_api.h"
#include "pg_arrays.h"
#include "utf8.h"

/* Array literals and their statements: pg_arrays.h. */

static const char *fstr(const fbatch *b, size_t off) {
  return off == SIZE_MAX ? NULL : b->strings.data + off;
}

/* ---- task runs --------------------------------------------------------------- */

/* Rows the chain upserts, newest last: a result_kind below 0 keeps the
   stored result (as in SQLite's UPSERT_TAIL); a row inserted with it
   (never, from store_batch.c: a fresh row has its kind) keeps -1. */
static const char task_upsert_sql[] =
    "INSERT INTO task_run(run, n, key, task, map_index, state, state_at,"
    " state_seq, attempts, error, started_at, started_seq, ended_at,"
    " result_kind, result) SELECT unnest($1::bigint[]), unnest($2::int[]),"
    " unnest($3::text[]), unnest($4::text[]), unnest($5::int[]),"
    " unnest($6::text[]), unnest($7::float8[]), unnest($8::int[]),"
    " unnest($9::int[]), unnest($10::text[]), unnest($11::float8[]),"
    " unnest($12::int[]), unnest($13::float8[]), unnest($14::smallint[]),"
    " unnest($15::text[])"
    " ON CONFLICT (run, n) DO UPDATE SET state = excluded.state,"
    " state_at = excluded.state_at, state_seq = excluded.state_seq,"
    " attempts = excluded.attempts, error = excluded.error,"
    " started_at = excluded.started_at, started_seq = excluded.started_seq,"
    " ended_at = excluded.ended_at,"
    " result = CASE WHEN excluded.result_kind < 0 THEN task_run.result"
    " ELSE excluded.result END,"
    " result_kind = CASE WHEN excluded.result_kind < 0"
    " THEN task_run.result_kind ELSE excluded.result_kind END";

enum { T_RUN, T_N, T_KEY, T_TASK, T_MAP, T_STATE, T_STATE_AT, T_SEQ,
       T_ATTEMPTS, T_ERROR, T_STARTED, T_STARTED_SEQ, T_ENDED, T_KIND,
       T_RESULT, T_COLS };

/* A task run of the chain: the row as batch b froze it, ord its place in
   the chain (for "the later batch wins"). */
typedef struct row_ref {
  const fbatch *b;
  const frow *r;
  size_t ord;
} row_ref;

static int cmp_row_ref(const void *pa, const void *pb) {
  const row_ref *a = pa, *b = pb;
  if (a->r->run != b->r->run) return a->r->run < b->r->run ? -1 : 1;
  if (a->r->n != b->r->n) return a->r->n < b->r->n ? -1 : 1;
  return a->ord < b->ord ? -1 : a->ord > b->ord;
}

/* Adds the task run `last` (the chain's latest row of it) with the result
   of `res` (the latest that set one; NULL: none did, keep the stored). */
static void add_task_row(pg_columns *t, const row_ref *last, const row_ref *res) {
  const fbatch *b = last->b;
  const frow *r = last->r;
  fl__pg_cols_row(t);
  fl__pg_add_i64(&t->col[T_RUN], r->run);
  fl__pg_add_i64(&t->col[T_N], r->n);
  fl__pg_add_str(&t->col[T_KEY], fstr(b, r->key_off));
  fl__pg_add_str(&t->col[T_TASK], fstr(b, r->task_off));
  fl__pg_add_i64(&t->col[T_MAP], r->map_index);
  fl__pg_add_str(&t->col[T_STATE], fl__store_task_state_names[r->state]);
  fl__pg_add_opt_dbl(&t->col[T_STATE_AT], r->state_at);
  fl__pg_add_i64(&t->col[T_SEQ], r->n_changes);
  fl__pg_add_i64(&t->col[T_ATTEMPTS], r->attempts);
  fl__pg_add_str(&t->col[T_ERROR], fstr(b, r->err_off));
  fl__pg_add_opt_dbl(&t->col[T_STARTED], r->started);
  if (r->started_seq)
    fl__pg_add_i64(&t->col[T_STARTED_SEQ], r->started_seq);
  else
    fl__pg_add_null(&t->col[T_STARTED_SEQ]);
  fl__pg_add_opt_dbl(&t->col[T_ENDED], r->ended);
  const char *result = res ? fstr(res->b, res->r->res_off) : NULL;
  if (res && result && !fl_utf8_text(result, res->r->res_len)) {
    /* A result that is not UTF-8 (a Lua string of raw bytes, which the
       JSON encoder passes through) cannot be text here, and repaired it
       would not be the value: kept as not resumable, as one that could
       not be serialised (a resume runs the task again). */
    fl__pg_add_i64(&t->col[T_KIND], FL_STORE_RESULT_OPAQUE);
    fl__pg_add_null(&t->col[T_RESULT]);
  } else if (res) {
    fl__pg_add_i64(&t->col[T_KIND], res->r->result_kind);
    fl__pg_add_text(&t->col[T_RESULT], result, res->r->res_len);
  } else {
    fl__pg_add_i64(&t->col[T_KIND], -1);
    fl__pg_add_null(&t->col[T_RESULT]);
  }
}

/* The chain's task runs, each once, sorted by (run, n): NULL with *n 0
   when there are none, or NULL with *n SIZE_MAX when memory ran out. */
static row_ref *collect_rows(const fbatch *b, size_t *n) {
  size_t total = 0;
  for (const fbatch *p = b; p; p = p->next) total += p->n_rows;
  *n = 0;
  if (!total) return NULL;
  row_ref *refs = malloc(total * sizeof *refs);
  if (!refs) {
    *n = SIZE_MAX;
    return NULL;
  }
  size_t k = 0;
  for (const fbatch *p = b; p; p = p->next)
    for (size_t i = 0; i < p->n_rows; i++, k++)
      refs[k] = (row_ref){p, &p->rows[i], k};
  /* Sorted, the duplicates sit side by side, and the rows reach the
     primary key's B-tree in its order. */
  qsort(refs, total, sizeof *refs, cmp_row_ref);
  *n = total;
  return refs;
}

static int write_task_runs(fl_pg *c, const fbatch *b) {
  const pg_statement s = {task_upsert_sql, NULL, "cannot record a task run"};
  size_t n;
  row_ref *refs = collect_rows(b, &n);
  if (n == SIZE_MAX)
    return fl_pg_set_err(c, FLOWLUA_ENOMEM, "%s: out of memory", s.what);
  pg_columns t;
  fl__pg_cols_init(&t, T_COLS);
  int status = FLOWLUA_OK;
  for (size_t i = 0; i < n && status == FLOWLUA_OK;) {
    /* One task run: refs[i..j), in the chain's order. */
    const row_ref *res = NULL;
    size_t j = i;
    for (; j < n && refs[j].r->run == refs[i].r->run &&
           refs[j].r->n == refs[i].r->n;
         j++)
      if (refs[j].r->result_kind >= 0) res = &refs[j];
    add_task_row(&t, &refs[j - 1], res);
    i = j;
    status = fl__pg_run_if_full(c, &t, &s);
  }
  if (status == FLOWLUA_OK) status = fl__pg_run_columns(c, &t, &s);
  fl__pg_cols_free(&t);
  free(refs);
  return status;
}

/* ---- state changes, workers, cached results ------------------------------------ */

/* A change's row never changes once written: one already there is the
   same change, written by an earlier try of this chain. */
static const char event_insert_sql[] =
    "INSERT INTO task_event(run, n, seq, at, state, attempt, error)"
    " SELECT unnest($1::bigint[]), unnest($2::int[]), unnest($3::int[]),"
    " unnest($4::float8[]), unnest($5::text[]), unnest($6::int[]),"
    " unnest($7::text[])"
    " ON CONFLICT (run, n, seq) DO NOTHING";

static int write_events(fl_pg *c, const fbatch *b) {
  const pg_statement s = {event_insert_sql, NULL,
                       "cannot record a task state change"};
  pg_columns t;
  fl__pg_cols_init(&t, 7);
  int status = FLOWLUA_OK;
  for (; b && status == FLOWLUA_OK; b = b->next)
    for (size_t i = 0; i < b->n_events && status == FLOWLUA_OK; i++) {
      const pending_event *ev = &b->events[i];
      fl__pg_cols_row(&t);
      fl__pg_add_i64(&t.col[0], ev->rowid);
      fl__pg_add_i64(&t.col[1], ev->task);
      fl__pg_add_i64(&t.col[2], ev->seq);
      fl__pg_add_dbl(&t.col[3], ev->at);
      fl__pg_add_str(&t.col[4], fl__store_task_state_names[ev->state]);
      fl__pg_add_i64(&t.col[5], ev->attempt);
      fl__pg_add_str(&t.col[6], fstr(b, ev->err_off));

      status = fl__pg_run_if_full(c, &t, &s);
    }
  if (status == FLOWLUA_OK) status = fl__pg_run_columns(c, &t, &s);
  fl__pg_cols_free(&t);
  return status;
}

/* The latest of the chain wins, as INSERT OR REPLACE in SQLite. */
static const char worker_upsert_sql[] =
    "INSERT INTO attempt_worker(run, n, attempt, host, pid)"
    " SELECT DISTINCT ON (run, n, attempt) run, n, attempt, host, pid"
    " FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[],"
    " $5::bigint[]) WITH ORDINALITY AS w(run, n, attempt, host, pid, ord)"
    " ORDER BY run, n, attempt, ord DESC"
    " ON CONFLICT (run, n, attempt) DO UPDATE SET host = excluded.host,"
    " pid = excluded.pid";

static int write_workers(fl_pg *c, const fbatch *b) {
  const pg_statement s = {worker_upsert_sql, NULL,
                       "cannot record where an attempt ran"};
  pg_columns t;
  fl__pg_cols_init(&t, 5);
  int status = FLOWLUA_OK;
  for (; b && status == FLOWLUA_OK; b = b->next)
    for (size_t i = 0; i < b->n_workers && status == FLOWLUA_OK; i++) {
      const pending_worker *w = &b->workers[i];
      fl__pg_cols_row(&t);
      fl__pg_add_i64(&t.col[0], w->rowid);
      fl__pg_add_i64(&t.col[1], w->task);
      fl__pg_add_i64(&t.col[2], w->attempt);
      fl__pg_add_str(&t.col[3], fstr(b, w->host_off));
      fl__pg_add_i64(&t.col[4], w->pid);

      status = fl__pg_run_if_full(c, &t, &s);
    }
  if (status == FLOWLUA_OK) status = fl__pg_run_columns(c, &t, &s);
  fl__pg_cols_free(&t);
  return status;
}

/* Log lines as SQLite writes them (store_sqlite_write.c): a line already
   there is the same one, from an earlier try of this chain; then the
   trims, after every line of the chain, each deleting what its task run's
   bounds pushed out (a later batch's trim deletes at least as much as an
   earlier one's), and the counts of what was dropped, which only grow. */
static const char log_insert_sql[] =
    "INSERT INTO task_log(run, n, seq, attempt, at, level, line)"
    " SELECT unnest($1::bigint[]), unnest($2::int[]), unnest($3::bigint[]),"
    " unnest($4::int[]), unnest($5::float8[]), unnest($6::text[]),"
    " unnest($7::text[])"
    " ON CONFLICT (run, n, seq) DO NOTHING";
static const char log_trim_sql[] =
    "DELETE FROM task_log l USING unnest($1::bigint[], $2::int[],"
    " $3::bigint[]) AS t(run, n, first_seq) WHERE l.run = t.run"
    " AND l.n = t.n AND l.seq < t.first_seq";
static const char log_dropped_sql[] =
    "INSERT INTO task_log_dropped(run, n, lines, bytes)"
    " SELECT run, n, max(lines), max(bytes) FROM unnest($1::bigint[],"
    " $2::int[], $3::bigint[], $4::bigint[]) AS t(run, n, lines, bytes)"
    " GROUP BY run, n"
    " ON CONFLICT (run, n) DO UPDATE SET"
    " lines = greatest(task_log_dropped.lines, excluded.lines),"
    " bytes = greatest(task_log_dropped.bytes, excluded.bytes)";

static int write_log_lines(fl_pg *c, const fbatch *b) {
  const pg_statement s = {log_insert_sql, NULL,
                          "cannot record a task's log line"};
  pg_columns t;
  fl__pg_cols_init(&t, 7);
  int status = FLOWLUA_OK;
  for (; b && status == FLOWLUA_OK; b = b->next)
    for (size_t i = 0; i < b->n_logs && status == FLOWLUA_OK; i++) {
      const pending_log *pl = &b->logs[i];
      fl__pg_cols_row(&t);
      fl__pg_add_i64(&t.col[0], pl->rowid);
      fl__pg_add_i64(&t.col[1], pl->task);
      fl__pg_add_i64(&t.col[2], pl->seq);
      fl__pg_add_i64(&t.col[3], pl->attempt);
      fl__pg_add_dbl(&t.col[4], pl->at);
      fl__pg_add_str(&t.col[5], fl_store_log_level_name(pl->level));
      fl__pg_add_text(&t.col[6], fstr(b, pl->text_off), pl->text_len);
      status = fl__pg_run_if_full(c, &t, &s);
    }
  if (status == FLOWLUA_OK) status = fl__pg_run_columns(c, &t, &s);
  fl__pg_cols_free(&t);
  return status;
}

/* The trims of the chain (dropped = 0) or their counts (1). */
static int write_log_trims(fl_pg *c, const fbatch *b, int dropped) {
  const pg_statement s = {dropped ? log_dropped_sql : log_trim_sql, NULL,
                          "cannot trim a task's log lines"};
  pg_columns t;
  fl__pg_cols_init(&t, dropped ? 4 : 3);
  int status = FLOWLUA_OK;
  for (; b && status == FLOWLUA_OK; b = b->next)
    for (size_t i = 0; i < b->n_trims && status == FLOWLUA_OK; i++) {
      const pending_trim *tr = &b->trims[i];
      fl__pg_cols_row(&t);
      fl__pg_add_i64(&t.col[0], tr->rowid);
      fl__pg_add_i64(&t.col[1], tr->task);
      if (dropped) {
        fl__pg_add_i64(&t.col[2], tr->lines);
        fl__pg_add_i64(&t.col[3], tr->bytes);
      } else {
        fl__pg_add_i64(&t.col[2], tr->first_seq);
      }
      status = fl__pg_run_if_full(c, &t, &s);
    }
  if (status == FLOWLUA_OK) status = fl__pg_run_columns(c, &t, &s);
  fl__pg_cols_free(&t);
  return status;
}

static int write_logs(fl_pg *c, const fbatch *b) {
  int status = write_log_lines(c, b);
  if (status == FLOWLUA_OK) status = write_log_trims(c, b, 0);
  if (status == FLOWLUA_OK) status = write_log_trims(c, b, 1);
  return status;
}

static const char cache_upsert_sql[] =
    "INSERT INTO cache(task, key, result, stored_at)"
    " SELECT DISTINCT ON (task, key) task, key, result, stored_at"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[])"
    " WITH ORDINALITY AS p(task, key, result, stored_at, ord)"
    " ORDER BY task, key, ord DESC"
    " ON CONFLICT (task, key) DO UPDATE SET result = excluded.result,"
    " stored_at = excluded.stored_at";

static int write_puts(fl_pg *c, const fbatch *b) {
  const pg_statement s = {cache_upsert_sql, NULL,
                       "cannot store a cached result"};
  pg_columns t;
  fl__pg_cols_init(&t, 4);
  int status = FLOWLUA_OK;
  for (; b && status == FLOWLUA_OK; b = b->next)
    for (size_t i = 0; i < b->n_puts && status == FLOWLUA_OK; i++) {
      const pending_put *p = &b->puts[i];
      /* Not UTF-8: not cached here (repaired it would not be the value). */
      if (!fl_utf8_text(fstr(b, p->json_off), p->json_len)) continue;
      fl__pg_cols_row(&t);
      fl__pg_add_str(&t.col[0], fstr(b, p->task_off));
      fl__pg_add_str(&t.col[1], fstr(b, p->key_off));
      fl__pg_add_text(&t.col[2], fstr(b, p->json_off), p->json_len);
      fl__pg_add_dbl(&t.col[3], p->at);

      status = fl__pg_run_if_full(c, &t, &s);
    }
  if (status == FLOWLUA_OK) status = fl__pg_run_columns(c, &t, &s);
  fl__pg_cols_free(&t);
  return status;
}

/* ---- runs' ends and fire events ------------------------------------------------ */

/* FL_STORE_COUNT_TASK_RUNS_SQL for the run e.id: every element of a map,
   and every other task run but a map that has elements (its key is an
   element's without "[i]"). */
#define COUNT_TASK_RUNS_SQL                                                   \
  "SELECT t.state, count(*) AS n FROM task_run t WHERE t.run = e.id AND"      \
  " (t.map_index > 0 OR t.key NOT IN (SELECT substr(m.key, 1,"                \
  " length(m.key) - length(m.map_index::text) - 2) FROM task_run m"           \
  " WHERE m.run = e.id AND m.map_index > 0)) GROUP BY t.state"

/* Only a Running run ends, and the chain's first end of a run is the one
   (a later one finds it ended, as in SQLite). Counts NULL: counted from
   the rows, which this transaction wrote before. */
static const char run_end_sql[] =
    "UPDATE flow_run f SET state = e.state, ended_at = e.ended_at,"
    " error = e.error, task_counts = coalesce(e.counts::jsonb,"
    " (SELECT coalesce(jsonb_object_agg(k.state, k.n), '{}'::jsonb) FROM"
    " (" COUNT_TASK_RUNS_SQL ") k))"
    " FROM (SELECT DISTINCT ON (id) id, state, ended_at, error, counts"
    " FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::text[],"
    " $5::text[]) WITH ORDINALITY AS u(id, state, ended_at, error, counts,"
    " ord) ORDER BY id, ord) e"
    " WHERE f.id = e.id AND f.state = 'Running'";

static int write_ends(fl_pg *c, const fbatch *b) {
  const pg_statement s = {run_end_sql, NULL,
                       "cannot record the end of a run"};
  pg_columns t;
  fl__pg_cols_init(&t, 5);
  int status = FLOWLUA_OK;
  for (; b && status == FLOWLUA_OK; b = b->next)
    for (size_t i = 0; i < b->n_ends && status == FLOWLUA_OK; i++) {
      const pending_end *e = &b->ends[i];
      fl__pg_cols_row(&t);
      fl__pg_add_i64(&t.col[0], e->rowid);
      fl__pg_add_str(&t.col[1], fl__store_flow_state_name(e->state));
      fl__pg_add_opt_dbl(&t.col[2], e->ended_at);
      fl__pg_add_str(&t.col[3], fstr(b, e->err_off));
      fl__pg_add_str(&t.col[4], fstr(b, e->counts_off));

      status = fl__pg_run_if_full(c, &t, &s);
    }
  if (status == FLOWLUA_OK) status = fl__pg_run_columns(c, &t, &s);
  fl__pg_cols_free(&t);
  return status;
}

/* fl__store_fire_event_sql's meaning: an event is inserted only when an
   identical one (flow, fire time, outcome, time, process) is not there,
   nor earlier in the chain; in the chain's order. $8: this process. */
static const char fire_event_sql[] =
    "INSERT INTO fire_event(flow, outcome, scheduled_at, last_at, count,"
    " detail, at, owner_pid) SELECT f.flow, f.outcome, f.scheduled_at,"
    " f.last_at, f.count, f.detail, f.at, $8::bigint FROM (SELECT DISTINCT ON"
    " (flow, scheduled_at, outcome, at) * FROM unnest($1::text[], $2::text[],"
    " $3::float8[], $4::float8[], $5::int[], $6::text[], $7::float8[])"
    " WITH ORDINALITY AS u(flow, outcome, scheduled_at, last_at, count,"
    " detail, at, ord) ORDER BY flow, scheduled_at, outcome, at, ord) f"
    " WHERE NOT EXISTS (SELECT 1 FROM fire_event x WHERE x.flow = f.flow"
    " AND x.scheduled_at = f.scheduled_at AND x.outcome = f.outcome"
    " AND x.at = f.at AND x.owner_pid = $8::bigint) ORDER BY f.ord";

static int write_fires(fl_pg *c, const fbatch *b) {
  /* The process that records it, as the SQLite writer's w->pid. */
  char pid[24];
  snprintf(pid, sizeof pid, "%lld", (long long)getpid());
  const pg_statement s = {fire_event_sql, pid,
                       "cannot record what became of a fire time"};
  pg_columns t;
  fl__pg_cols_init(&t, 7);
  int status = FLOWLUA_OK;
  for (; b && status == FLOWLUA_OK; b = b->next)
    for (size_t i = 0; i < b->n_fires && status == FLOWLUA_OK; i++) {
      const pending_fire *f = &b->fires[i];
      fl__pg_cols_row(&t);
      fl__pg_add_str(&t.col[0], fstr(b, f->flow_off));
      fl__pg_add_str(&t.col[1], fstr(b, f->outcome_off));
      fl__pg_add_dbl(&t.col[2], f->first);
      fl__pg_add_opt_dbl(&t.col[3], f->last);
      fl_buf_addu(&t.col[4], (unsigned long long)f->count);
      fl__pg_add_str(&t.col[5], fstr(b, f->detail_off));
      fl__pg_add_dbl(&t.col[6], f->at);
      status = fl__pg_run_if_full(c, &t, &s);
    }
  if (status == FLOWLUA_OK) status = fl__pg_run_columns(c, &t, &s);
  fl__pg_cols_free(&t);
  return status;
}

/* ---- the chain ------------------------------------------------------------------ */

/* Whether the chain holds anything to write; -1 when a batch holds what
   this backend writes elsewhere (run starts, fire claims). */
static int chain_check(const fbatch *b) {
  int any = 0;
  for (; b; b = b->next) {
    if (b->n_begins || b->n_claims) return -1;
    any |= b->n_rows || b->n_events || b->n_workers || b->n_puts ||
           b->n_ends || b->n_fires || b->n_logs || b->n_trims;
  }
  return any;
}

/* Whether the chain's rows go in one statement: one table's, few, and
   small (far from STMT_ROWS and STMT_BYTES). Such a statement is its own
   transaction, and BEGIN and COMMIT would only cost two more round trips:
   a chain of tasks writes one task run's row at a time, and waits. */
static int one_statement(const fbatch *b) {
  size_t kind[8] = {0}, bytes = 0;
  for (; b; b = b->next) {
    kind[0] += b->n_rows;
    kind[1] += b->n_events;
    kind[2] += b->n_workers;
    kind[3] += b->n_puts;
    kind[4] += b->n_ends;
    kind[5] += b->n_fires;
    kind[6] += b->n_logs;
    kind[7] += b->n_trims; /* two statements more: never alone */
    bytes += b->strings.len;
  }
  int kinds = 0;
  size_t rows = 0;
  for (int k = 0; k < 8; k++) {
    kinds += kind[k] > 0;
    rows += kind[k];
  }
  return kinds == 1 && rows <= 1000 && bytes <= STMT_BYTES / 4;
}

int fl__pg_write_batches(fl_pg *c, const fbatch *b) {
  int check = chain_check(b);
  if (check < 0)
    return fl_pg_set_err(c, FLOWLUA_EINVAL,
                         "cannot write the run's changes: a batch holds a run "
                         "start or a fire claim, which a PostgreSQL history "
                         "writes at once, not in a batch");
  if (check == 0) return FLOWLUA_OK;
  int single = one_statement(b);
  int status = single ? FLOWLUA_OK
                      : fl_pg_exec(c, "BEGIN", "cannot write the run's changes");
  /* Rows before their events (the foreign key) and before their runs'
     ends (which count them), as in each SQLite batch. */
  if (status == FLOWLUA_OK) status = write_task_runs(c, b);
  if (status == FLOWLUA_OK) status = write_events(c, b);
  if (status == FLOWLUA_OK) status = write_workers(c, b);
  if (status == FLOWLUA_OK) status = write_logs(c, b);
  if (status == FLOWLUA_OK) status = write_puts(c, b);
  if (status == FLOWLUA_OK) status = write_ends(c, b);
  if (status == FLOWLUA_OK) status = write_fires(c, b);
  if (status == FLOWLUA_OK && !single)
    status = fl_pg_exec(c, "COMMIT", "cannot write the run's changes");
  PGconn *pg = fl_pg_conn(c);
  if (status != FLOWLUA_OK && pg && !fl_pg_lost(c) &&
      fl_pq()->transaction_status(pg) != PQTRANS_IDLE) {
    /* Straight to libpq's table: fl_pg_exec would replace the error of
       the failure that led here. */
    PGresult *r = fl_pq()->exec(pg, "ROLLBACK");
    fl_pq()->clear(r);
  }
  return status;
}
