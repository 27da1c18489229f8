/*
 * pg_arrays.h — many rows in one statement on the PostgreSQL history: each
 * column's values as a text array literal ({"a\\"b",NULL,1.5}), turned back
 * into rows by unnest() in the statement, and statements cut so that none
 * grows without bound. Shared by pg_write.c (a batch's rows) and
 * pg_copy.c (a whole history copied in).
 */
#ifndef FL_PG_ARRAYS_H
#define FL_PG_ARRAYS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "pg_conn.h"

/* A statement carries at most this many rows, and no more once its
   arrays hold this many bytes: a parameter, as any value, may not exceed
   1 GB, and one statement's arrays are all in memory at once, here and on
   the server. Past these the rows go in more statements of the same
   transaction, which keeps each table's meaning: a task run is sent once
   whatever the statements (the dedup is over the whole chain); a later
   statement's cached result, worker or event overwrites or meets an
   earlier one's as a later row of the same statement would; a run ended
   or a fire event written by an earlier statement is seen by the later
   ones. */
#define STMT_ROWS 100000
#define STMT_BYTES ((size_t)64 << 20)

/* ---- array literals -----------------------------------------------------
 *
 * A table's rows as columns: cols[k] is column k's array literal, built
 * one element per row. */

#define MAX_COLS 18 /* as FL_COPY_MAX_COLS: flow_run's columns */

typedef struct pg_columns {
  fl_buf col[MAX_COLS];
  int n_cols;
  size_t rows;
} pg_columns;

/* A table's statement: its SQL, taking the columns as $1..., and, when
   extra is not NULL, one more parameter after them; what failing means. */
typedef struct pg_statement {
  const char *sql, *extra, *what;
} pg_statement;

void fl__pg_cols_init(pg_columns *t, int n_cols);
void fl__pg_cols_free(pg_columns *t);
/* Empties every column, keeping the memory, for the next statement. */
void fl__pg_cols_reset(pg_columns *t);
/* Starts a row: each column gets its opening brace or a comma. */
void fl__pg_cols_row(pg_columns *t);
/* Closes the arrays: 0, or -1 when memory ran out on the way. */
int fl__pg_cols_close(pg_columns *t);

/* One element appended to a column's literal. */
void fl__pg_add_null(fl_buf *a);
void fl__pg_add_i64(fl_buf *a, int64_t v);
/* %.17g, or NaN/Infinity: reads back to the same double. */
void fl__pg_add_dbl(fl_buf *a, double v);
/* A time the store keeps as 0 for "none": NULL then. */
void fl__pg_add_opt_dbl(fl_buf *a, double v);
/* s[0..n) quoted (NULL s: SQL NULL); text that is not UTF-8 or holds a
   NUL, which the server refuses, has its bad bytes written as \xNN. */
void fl__pg_add_text(fl_buf *a, const char *s, size_t n);
void fl__pg_add_str(fl_buf *a, const char *s);

/* Runs s with the rows of t, if any, and empties t. */
int fl__pg_run_columns(fl_pg *c, pg_columns *t, const pg_statement *s);
/* After a row: runs s when t holds a statement's worth (STMT_*). */
int fl__pg_run_if_full(fl_pg *c, pg_columns *t, const pg_statement *s);

#endif
