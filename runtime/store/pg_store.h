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

/* Copies c's error into st's (fl_store_errmsg) and returns status. */
int fl__pg_store_err(fl_store *st, int status);

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
int fl__pg_load_run(fl_pg *c, const char *ref, const char *flow,
                    fl_store_run_detail **out);
int fl__pg_load_attempts(fl_pg *c, const fl_store_run_detail *d,
                         fl_store_attempt_list *out);
int fl__pg_succeeded_fires(fl_pg *c, const char *flow, double from, double to,
                           double **out, size_t *n);

#endif
