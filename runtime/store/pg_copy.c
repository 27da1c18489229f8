/*
 * pg_copy.c — the PostgreSQL side of copying a whole history
 * (fl_store_copy, store_copy.c): a table's rows read through a cursor, a
 * few thousand at a time, and rows written many to a statement as column
 * arrays (pg_arrays.h), as pg_write.c writes a batch.
 *
 * What it must not do: hold a whole table in memory (a cursor reads it in
 * slices; a statement's arrays are cut at STMT_ROWS/STMT_BYTES); begin,
 * commit or roll back (store_copy.c owns both transactions: a cursor
 * lives in the caller's); know what the tables mean (store_copy.c says
 * which columns and statements).
 */
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowlua.h"
#include "pg_api.h"
#include "pg_arrays.h"

/* Rows fetched per round trip: big enough that the round trips cost
   nothing next to the rows, small enough that a slice of task runs with
   their results stays a few megabytes. */
#define FETCH_ROWS "5000"

int fl__pg_copy_read(fl_pg *c, const char *select, int n_cols,
                     fl__copy_sink sink, void *ctx) {
  if (n_cols > FL_COPY_MAX_COLS)
    return fl_pg_set_err(c, FLOWLUA_EINVAL, "cannot copy: %d columns",
                         n_cols);
  fl_buf sql = FL_BUF_INIT;
  fl_buf_adds(&sql, "DECLARE fl_copy NO SCROLL CURSOR FOR ");
  fl_buf_adds(&sql, select);
  if (sql.oom) {
    fl_buf_free(&sql);
    return fl_pg_set_err(c, FLOWLUA_ENOMEM, "cannot copy: out of memory");
  }
  int status = fl_pg_exec(c, sql.data, "cannot read the history to copy");
  fl_buf_free(&sql);
  if (status != FLOWLUA_OK) return status;
  const fl_pq_api *pq = fl_pq(); /* loaded: c is connected */
  for (;;) {
    PGresult *r = fl_pg_query(c, "cannot read the history to copy",
                              "FETCH " FETCH_ROWS " FROM fl_copy", 0, NULL);
    if (!r) {
      status = FLOWLUA_EIO;
      break;
    }
    int rows = pq->ntuples(r);
    for (int i = 0; i < rows && status == FLOWLUA_OK; i++) {
      fl__copy_row row;
      for (int k = 0; k < n_cols; k++) {
        int null = pq->getisnull(r, i, k);
        row.v[k] = null ? NULL : pq->getvalue(r, i, k);
        row.len[k] = null ? 0 : (size_t)pq->getlength(r, i, k);
      }
      status = sink(ctx, &row);
    }
    pq->clear(r);
    if (status != FLOWLUA_OK || rows == 0) break;
  }
  /* The cursor goes with the transaction anyway; closed here so that the
     next table may declare its own in the same transaction. */
  if (status == FLOWLUA_OK)
    status = fl_pg_exec(c, "CLOSE fl_copy", "cannot read the history to copy");
  return status;
}

/* ---- writing ---------------------------------------------------------------- */

struct fl__pg_copy_out {
  fl_pg *c;
  pg_columns cols;
  pg_statement stmt;
};

int fl__pg_copy_out_begin(fl_pg *c, const char *insert, int n_cols,
                          const char *what, fl__pg_copy_out **out) {
  *out = NULL;
  if (n_cols > MAX_COLS)
    return fl_pg_set_err(c, FLOWLUA_EINVAL, "%s: %d columns", what, n_cols);
  fl__pg_copy_out *o = calloc(1, sizeof *o);
  if (!o) return fl_pg_set_err(c, FLOWLUA_ENOMEM, "%s: out of memory", what);
  o->c = c;
  fl__pg_cols_init(&o->cols, n_cols);
  o->stmt = (pg_statement){insert, NULL, what};
  *out = o;
  return FLOWLUA_OK;
}

int fl__pg_copy_out_row(fl__pg_copy_out *o, const fl__copy_row *row) {
  fl__pg_cols_row(&o->cols);
  for (int k = 0; k < o->cols.n_cols; k++)
    fl__pg_add_text(&o->cols.col[k], row->v[k], row->len[k]);
  return fl__pg_run_if_full(o->c, &o->cols, &o->stmt);
}

int fl__pg_copy_out_end(fl__pg_copy_out *o, int flush) {
  if (!o) return FLOWLUA_OK;
  int status = flush ? fl__pg_run_columns(o->c, &o->cols, &o->stmt)
                     : FLOWLUA_OK;
  fl__pg_cols_free(&o->cols);
  free(o);
  return status;
}
