/*
 * pg_store.h — the store's PostgreSQL backend: what store*.c call when the
 * handle's history is in PostgreSQL (st->pg set, st->db NULL), on top of
 * pg_conn.h. The handle, its buffering and its frozen batches are the
 * SQLite store's own (store_internal.h); only what touches the database
 * differs.
 *
 *   pg_store.c   opening, closing, a run's start and its lease, fire
 *                claims, the cache's reads, crash detection by lease
 *   pg_write.c   a chain of frozen batches in one transaction
 *   pg_read.c    reading runs back (runs, show, report, resume)
 *   pg_copy.c    a whole history read and written (fl_store_copy)
 *   pg_flows.c   flow definitions and cancels asked for (store_flows.c)
 *   pg_pause.c   paused flows (store_pause.c)
 *
 * Every function here returns 0 or a FLOWLUA_* status with the reason in
 * fl_pg_errmsg(c) ("state store 'postgresql://ann:***@h/db': what: why",
 * never the password); the store's callers copy it into the handle's
 * error with fl__pg_store_err.
 */
#ifndef FL_PG_STORE_H
#define FL_PG_STORE_H

#include "pg_conn.h"
#include "store_internal.h"

/* ---- pg_store.c ----------------------------------------------------------- */

/* Copies st->pg's error into st's (fl_store_errmsg) and returns status
   (FLOWLUA_OK copies nothing). */
int fl__pg_store_err(fl_store *st, int status);

/* Connects st (whose path is the conninfo redacted) to the server
   conninfo names, within a bounded time, and brings schema `flowlua` to
   this flowlua's version; with opts.must_exist and no schema yet, only
   connects (fl__pg_store_empty then says so). 0, or the status with st's
   error set. fl__pg_store_close undoes it (NULL-safe parts). */
int fl__pg_store_open(fl_store *st, const char *conninfo);

/* One statement on st's connection, again after a reconnect when the
   server went away (so one that may run twice). NULL on failure, with
   st->pg's error set. */
PGresult *fl__pg_query_retry(fl_store *st, const char *what, const char *sql,
                             int n, const char *const *params);
int fl__pg_store_empty(const fl_store *st);
void fl__pg_store_close(fl_store *st);

/* Writes the chain from b on (fl__pg_write_batches) on c, reconnecting
   and writing it again while the server is away, for up to retry
   seconds: 0, or the status with c's error set. fl__pg_write_queue
   writes st->mem_head's chain so on st's connection (the caller frees the
   chain on success). */
int fl__pg_write_chain(fl_pg *c, const fbatch *b, double retry);
int fl__pg_write_queue(fl_store *st);

/* A connection of its own to st's server, for the writer thread, and the
   retry time its writes use. 0, or the status with st's error set. */
int fl__pg_writer_connect(fl_store *st, fl_pg **out, double *retry);

/* Inserts a run's start (b: its strings; b->rowid set here), with the
   claim of the run it resumes, and takes the run's lease, renewed until
   fl__pg_run_forget. */
int fl__pg_run_begin(fl_store *st, store_begin *b);
void fl__pg_run_forget(fl_store *st, int64_t rowid);

/* fl_store_mark_crashed by lease: Running runs whose lease lapsed. */
int fl__pg_mark_crashed(fl_store *st, double now, size_t *n_marked);

/* A fire time claimed (1), found claimed (0), or a negative status. */
int fl__pg_claim_fire(fl_store *st, const char *flow, int64_t ms, double now);
/* fl_store_last_fire and fl_store_fire_event, written at once. */
int fl__pg_last_fire(fl_store *st, const char *flow, double *out);
int fl__pg_fire_event(fl_store *st, const char *flow, const char *outcome,
                      double first, double last, size_t count,
                      const char *detail, double now);

/* The cache's row for (task, key): 1 with its result in json and its
   time in *stored_at, 0 when none, or a negative status. */
int fl__pg_cache_get(fl_store *st, const char *task, const char *key,
                     double *stored_at, fl_buf *json);

/* ---- pg_prune.c ------------------------------------------------------------ */

/* One step of a prune (fl_store_prune_step) at *phase (0 at the start),
   which it moves on: 1 while there is more, 0 when done, or a status
   with st's error set; r counts what went. */
int fl__pg_prune_step(fl_store *st, const fl_store_prune_opts *o, double cutoff,
                      int *phase, fl_store_prune_result *r);

/* ---- pg_copy.c ---------------------------------------------------------------- */

/* A row of a table being copied (store_copy.c): each column's value as
   text, the same on both backends (integers in decimal, doubles that read
   back to the bit), v[k] NULL for SQL NULL; len[k] its bytes. */
#define FL_COPY_MAX_COLS 18 /* flow_run's columns, the widest table */
typedef struct fl__copy_row {
  const char *v[FL_COPY_MAX_COLS];
  size_t len[FL_COPY_MAX_COLS];
} fl__copy_row;

/* Takes one row read; 0, or a status that stops the reading. */
typedef int (*fl__copy_sink)(void *ctx, const fl__copy_row *row);

/* Hands every row of `select` (n_cols columns, in the caller's
   transaction) to sink, in order, through a cursor. */
int fl__pg_copy_read(fl_pg *c, const char *select, int n_cols,
                     fl__copy_sink sink, void *ctx);

/* Rows written by `insert`, which takes each column as a text array
   ($1::bigint[]...; every element is sent quoted), many to a statement:
   _row adds one (running the statement when it holds enough), _end runs
   what is left when flush (else drops it) and frees o (NULL-safe). Text
   the server would refuse has its bad bytes written as \xNN: the caller
   leaves out or changes what must not be so (results). */
typedef struct fl__pg_copy_out fl__pg_copy_out;
int fl__pg_copy_out_begin(fl_pg *c, const char *insert, int n_cols,
                          const char *what, fl__pg_copy_out **out);
int fl__pg_copy_out_row(fl__pg_copy_out *o, const fl__copy_row *row);
int fl__pg_copy_out_end(fl__pg_copy_out *o, int flush);

/* ---- pg_write.c ------------------------------------------------------------ */

/*
 * Writes the frozen batches from b on (b->next...) in one transaction, as
 * fl__wconn_write does on SQLite: task runs' rows (upserts on (run, n); a
 * row whose result_kind is -1 keeps the stored result), their state
 * changes, runs' ends (only a Running run ends; counts NULL: counted from
 * the rows), fire events, where worker attempts ran, cached results. Every
 * statement is idempotent, so a chain written again after a failure (the
 * server restarted between the COMMIT and its answer) leaves the same
 * rows. Batches of a PostgreSQL store hold no run starts and no fire
 * claims (both are written at once, pg_store.c): such a batch is refused
 * (FLOWLUA_EINVAL). On failure the transaction is rolled back and
 * fl_pg_lost(c) tells whether the connection went (the caller reconnects
 * and writes the chain again).
 */
int fl__pg_write_batches(fl_pg *c, const fbatch *b);

/* ---- pg_read.c -------------------------------------------------------------- */

/* fl_store_list_runs, fl_store_load_run, fl_store_load_attempts and
   fl_store_succeeded_fires on a PostgreSQL history, with the same results
   and the same messages. */
int fl__pg_list_runs(fl_pg *c, const char *flow, int limit,
                     fl_store_run_list *out);
int fl__pg_list_runs_where(fl_pg *c, const fl_store_run_filter *f,
                           fl_store_run_list *out);
int fl__pg_run_mark(fl_pg *c, const char *run_id, fl_store_run_mark *out);
int fl__pg_load_run(fl_pg *c, const char *ref, const char *flow,
                    fl_store_run_detail **out);
int fl__pg_load_attempts(fl_pg *c, const fl_store_run_detail *d,
                         fl_store_attempt_list *out);
int fl__pg_succeeded_fires(fl_pg *c, const char *flow, double from, double to,
                           double **out, size_t *n);

/* ---- pg_flows.c: store_flows.c's statements ------------------------------ */

int fl__pg_put_flows(fl_store *st, const fl_store_flow_def *defs, size_t n);
int fl__pg_list_flows(fl_store *st, fl_store_flow_list *out);
int fl__pg_request_cancel(fl_store *st, const char *run_id, const char *by,
                          double now);
int fl__pg_cancel_requests(fl_store *st, const char *const *run_ids, size_t n,
                           unsigned char *asked);
int fl__pg_set_pause(fl_store *st, const char *flow, int paused,
                     const char *by, double now, int *changed);
int fl__pg_get_pause(fl_store *st, const char *flow, fl_store_pause *out);
int fl__pg_run_flows(fl_store *st, const char *sql, fl_store_name_list *out);
int fl__pg_fire_events(fl_store *st, const char *flow, int limit,
                       fl_store_fire_event_list *out);

#endif
