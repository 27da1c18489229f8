/*
 * store_sql.c — the SQL helpers every file of the store uses: errors
 * (with SQLite's reason, and a hint when another process held the lock),
 * statements stepped once, transactions, and binding optional values.
 *
 * A leaf of the store: it knows fl_store's error buffer and connection,
 * nothing of runs.
 */
#define _POSIX_C_SOURCE 200809L
#include "pg_conn.h"
#include "store_internal.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <time.h>

/* ---- errors ---------------------------------------------------------------- */

void fl__store_notice(void *ctx, const char *message) {
  fl_store *st = ctx;
  fl_buf_adds(&st->notices, message);
  fl_buf_addc(&st->notices, '\n');
}

int fl__store_status_of(int sqlite_rc) {
  switch (sqlite_rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW:
    return FLOWLUA_OK;
  case SQLITE_NOMEM:
    return FLOWLUA_ENOMEM;
  case SQLITE_CONSTRAINT:
  case SQLITE_MISUSE:
  case SQLITE_RANGE:
    return FLOWLUA_EINVAL;
  default:
    return FLOWLUA_EIO;
  }
}

static void fl__store_set_errv(fl_store *st, const char *fmt, va_list ap) {
  fl_buf_reset(&st->err);
  st->err_busy = 0;
  fl_buf_addf(&st->err, "state store '%s': ", st->path);
  fl_buf_addvf(&st->err, fmt, ap);
}

int fl__store_set_err(fl_store *st, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fl__store_set_errv(st, fmt, ap);
  va_end(ap);
  return status;
}

/* "state store 'p': <what>: <SQLite's reason>", plus a hint when the cause
   is another process holding the lock. Returns the FLOWLUA_* status. */
int fl__store_sql_err(fl_store *st, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fl__store_set_errv(st, fmt, ap);
  va_end(ap);
  const char *why = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
  fl_buf_addf(&st->err, ": %s", why);
  st->err_busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
  if (st->err_busy)
    fl_buf_addf(&st->err,
                " (another process kept it locked for more than %d ms)",
                st->opts.busy_timeout_ms);
  return fl__store_status_of(rc) ? fl__store_status_of(rc) : FLOWLUA_EIO;
}

int fl__store_oom(fl_store *st, const char *what) {
  return fl__store_set_err(st, FLOWLUA_ENOMEM, "%s: out of memory", what);
}

const char *fl_store_errmsg(const fl_store *st) {
  return st && st->err.data ? st->err.data : "";
}

const char *fl_store_path(const fl_store *st) { return st->path; }

/* Steps a statement that returns no rows and resets it. */
int fl__store_exec(fl_store *st, sqlite3_stmt *s, const char *what) {
  int rc = sqlite3_step(s);
  int status = FLOWLUA_OK;
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) status = fl__store_sql_err(st, rc, "%s", what);
  sqlite3_reset(s);
  return status;
}

int fl__store_exec_sql(fl_store *st, const char *sql, const char *what) {
  int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? FLOWLUA_OK : fl__store_sql_err(st, rc, "%s", what);
}

int fl__store_prepare(fl_store *st, const char *sql, sqlite3_stmt **s,
                   const char *what) {
  int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);
  return rc == SQLITE_OK ? FLOWLUA_OK : fl__store_sql_err(st, rc, "%s", what);
}

/* ---- transactions ---------------------------------------------------------- */

int fl__store_tx_begin(fl_store *st, const char *what) {
  return fl__store_exec(st, st->stmt[S_BEGIN], what);
}

int fl__store_tx_commit(fl_store *st, const char *what) {
  return fl__store_exec(st, st->stmt[S_COMMIT], what);
}

/* Harmless when no transaction is open (SQLite may already have rolled back
   after an I/O error). Keeps the error message of the failure that led here. */
void fl__store_tx_rollback(fl_store *st) {
  if (!sqlite3_get_autocommit(st->db)) {
    sqlite3_step(st->stmt[S_ROLLBACK]);
    sqlite3_reset(st->stmt[S_ROLLBACK]);
  }
}

void fl__store_bind_opt_double(sqlite3_stmt *s, int i, double v) {
  if (v > 0)
    sqlite3_bind_double(s, i, v);
  else
    sqlite3_bind_null(s, i);
}

void fl__store_bind_text(sqlite3_stmt *s, int i, const char *v, size_t n) {
  sqlite3_bind_text64(s, i, v, v ? n : 0, SQLITE_STATIC, SQLITE_UTF8);
}

double fl__store_mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* sqlite3_busy_handler: sleeps a little and says to try again, until the
   busy timeout has passed since this wait began. */
static int counted_busy(void *ctx, int count) {
  store_busy *b = ctx;
  double now = fl__store_mono_now();
  if (count == 0) b->started = now;
  int limit = b->limit_ms > 0 ? b->limit_ms : b->st->opts.busy_timeout_ms;
  if ((now - b->started) * 1000.0 >= limit) return 0;
  struct timespec step = {0, count < 10 ? 1000000L : 5000000L};
  nanosleep(&step, NULL);
  double waited = fl__store_mono_now() - now;
  __atomic_fetch_add(&b->st->busy_ns, (uint64_t)(waited * 1e9),
                     __ATOMIC_RELAXED);
  return 1;
}

void fl__store_busy_install(fl_store *st, sqlite3 *db, store_busy *b) {
  b->st = st;
  b->started = 0;
  b->limit_ms = 0;
  sqlite3_busy_handler(db, counted_busy, b);
}

int fl_store_lock_busy(const fl_store *st) { return st && st->err_busy; }

double fl_store_busy_seconds(const fl_store *st) {
  return st ? (double)__atomic_load_n(&st->busy_ns, __ATOMIC_RELAXED) / 1e9
            : 0;
}

int fl__store_batch_str(fl_store *st, const char *s, size_t n, size_t *off,
                        const char *what) {
  if (fl_buf_reserve(&st->batch, n + 1) != 0) {
    st->batch.oom = 0; /* the buffer is intact: a later call may succeed */
    return fl__store_oom(st, what);
  }
  *off = st->batch.len;
  memcpy(st->batch.data + st->batch.len, s, n);
  st->batch.data[st->batch.len + n] = '\0';
  st->batch.len += n + 1;
  return FLOWLUA_OK;
}

char *fl_store_display_name(const char *path) {
  if (!fl_pg_is_uri(path)) return strdup(path);
  fl_buf name = FL_BUF_INIT;
  fl_pg_redact(path, &name);
  char *out = name.oom ? NULL : strdup(fl_buf_str(&name));
  fl_buf_free(&name);
  return out;
}
