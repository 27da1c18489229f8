/*
 * pg_arrays.c — column array literals for statements that write many rows
 * at once (pg_arrays.h says how they are used).
 *
 * What it must not do: send a literal the server would read as other
 * values than the caller's (every text quoted, '"' and '\\' escaped, NULL
 * unquoted, doubles to the bit), or a statement past STMT_ROWS/STMT_BYTES.
 */
#include "pg_arrays.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "flowlua.h"
#include "pg_api.h"
#include "utf8.h"


void fl__pg_cols_init(pg_columns *t, int n_cols) {
  memset(t, 0, sizeof *t);
  t->n_cols = n_cols;
}

void fl__pg_cols_free(pg_columns *t) {
  for (int k = 0; k < t->n_cols; k++) fl_buf_free(&t->col[k]);
}

/* Empties every column, keeping the memory, for the next statement. */
void fl__pg_cols_reset(pg_columns *t) {
  for (int k = 0; k < t->n_cols; k++) fl_buf_reset(&t->col[k]);
  t->rows = 0;
}

/* Starts a row: each column gets its opening brace or a comma. */
void fl__pg_cols_row(pg_columns *t) {
  for (int k = 0; k < t->n_cols; k++)
    fl_buf_addc(&t->col[k], t->rows ? ',' : '{');
  t->rows++;
}

/* Closes the arrays: 0, or -1 when memory ran out on the way. */
int fl__pg_cols_close(pg_columns *t) {
  int oom = 0;
  for (int k = 0; k < t->n_cols; k++) {
    fl_buf_addc(&t->col[k], '}');
    oom |= t->col[k].oom;
  }
  return oom ? -1 : 0;
}

void fl__pg_add_null(fl_buf *a) { fl_buf_adds(a, "NULL"); }

void fl__pg_add_i64(fl_buf *a, int64_t v) {
  if (v < 0) {
    fl_buf_addc(a, '-');
    fl_buf_addu(a, (unsigned long long)0 - (unsigned long long)v);
  } else {
    fl_buf_addu(a, (unsigned long long)v);
  }
}

/* %.17g reads back to the same double; float8's input takes these
   spellings of the values printf would write as inf and nan. */
void fl__pg_add_dbl(fl_buf *a, double v) {
  if (isnan(v))
    fl_buf_adds(a, "NaN");
  else if (isinf(v))
    fl_buf_adds(a, v > 0 ? "Infinity" : "-Infinity");
  else
    fl_buf_addf(a, "%.17g", v);
}

/* A time the store keeps as 0 for "none" (fl__store_bind_opt_double). */
void fl__pg_add_opt_dbl(fl_buf *a, double v) {
  if (v > 0)
    fl__pg_add_dbl(a, v);
  else
    fl__pg_add_null(a);
}


/* Text the server may refuse (PostgreSQL's text is UTF-8 without NUL; a
   task's error or name is whatever bytes Lua had): its bad bytes written
   as \xNN, so that one such byte does not fail the whole batch. */
static void add_repaired(fl_buf *a, const char *s, size_t n) {
  fl_buf fixed = FL_BUF_INIT;
  fl_utf8_repair(&fixed, s, n);
  if (fixed.oom)
    a->oom = 1;
  else
    fl__pg_add_text(a, fixed.data, fixed.len);
  fl_buf_free(&fixed);
}

/* s[0..n) quoted for an array literal: inside double quotes only '"' and
   '\' need a backslash; every other byte (braces, commas, white space,
   UTF-8) stands for itself. NULL is SQL NULL. */
void fl__pg_add_text(fl_buf *a, const char *s, size_t n) {
  if (!s) {
    fl__pg_add_null(a);
    return;
  }
  if (!fl_utf8_text(s, n)) {
    add_repaired(a, s, n);
    return;
  }
  if (fl_buf_reserve(a, n + 2) != 0) return; /* the oom stays set */
  fl_buf_addc(a, '"');
  const char *end = s + n;
  while (s < end) {
    const char *p = s;
    while (p < end && *p != '"' && *p != '\\') p++;
    fl_buf_add(a, s, (size_t)(p - s));
    if (p == end) break;
    fl_buf_addc(a, '\\');
    fl_buf_addc(a, *p);
    s = p + 1;
  }
  fl_buf_addc(a, '"');
}

void fl__pg_add_str(fl_buf *a, const char *s) {
  fl__pg_add_text(a, s, s ? strlen(s) : 0);
}

/* ---- statements ---------------------------------------------------------- */



/* Runs s with the rows of t, if any, and empties t. */
int fl__pg_run_columns(fl_pg *c, pg_columns *t, const pg_statement *s) {
  if (!t->rows) return FLOWLUA_OK;
  int status = FLOWLUA_OK;
  if (fl__pg_cols_close(t) != 0)
    status = fl_pg_set_err(c, FLOWLUA_ENOMEM, "%s: out of memory", s->what);
  const char *params[MAX_COLS + 1];
  int n = 0;
  for (; n < t->n_cols; n++) params[n] = t->col[n].data;
  if (s->extra) params[n++] = s->extra;
  PGresult *r = status ? NULL : fl_pg_query(c, s->what, s->sql, n, params);
  if (!status && !r) status = FLOWLUA_EIO;
  if (r) fl_pq()->clear(r);
  fl__pg_cols_reset(t);
  return status;
}

/* After a row: runs s when t holds a statement's worth (STMT_*). */
int fl__pg_run_if_full(fl_pg *c, pg_columns *t, const pg_statement *s) {
  size_t bytes = 0;
  for (int k = 0; k < t->n_cols; k++) bytes += t->col[k].len;
  return t->rows >= STMT_ROWS || bytes >= STMT_BYTES ? fl__pg_run_columns(c, t, s)
                                                      : FLOWLUA_OK;
}
