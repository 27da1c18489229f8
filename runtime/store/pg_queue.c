/*
 * pg_queue.c — worker tasks' jobs in PostgreSQL; see pg_queue.h.
 *
 * Rows cross as text array literals (pg_arrays.h) and frames as hex, which
 * decode() turns into bytea on the server: the statements stay text-only,
 * as everything else on this connection layer. Times are the server's
 * clock (NOW_SQL), so that hosts with clocks apart agree on a lease.
 */
#define _POSIX_C_SOURCE 200809L
#include "pg_queue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowlua.h"
#include "pg_api.h"
#include "pg_arrays.h"
#include "pg_conn.h"

#define NOW_SQL "extract(epoch FROM clock_timestamp())"
#define CONNECT_TIMEOUT 10.0

struct fl_pgq {
  fl_pg *c;
  int role;
  double retry;
  unsigned reconnects;
  PGresult *last; /* the rows the last call handed out point into it */
  fl_buf bytes;   /* decoded frames of the last call */
  void *rows;     /* the last call's array */
  /* A worker's own row and what it serves (fl_pgq_register). */
  int64_t worker_id;
  char label[300];
  fl_buf queues, scripts; /* array literals; queues "{}" is every one */
  double lease;
};

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void drop_last(fl_pgq *q) {
  if (q->last) fl_pq()->clear(q->last);
  q->last = NULL;
  free(q->rows);
  q->rows = NULL;
  fl_buf_reset(&q->bytes);
}

static int listen_all(fl_pgq *q) {
  if (q->role == FL_PGQ_READER) return FLOWLUA_OK;
  return fl_pg_exec(q->c, q->role == FL_PGQ_DRIVER ? "LISTEN flowlua_done"
                                                   : "LISTEN flowlua_jobs",
                    "cannot listen for the queue's news");
}

int fl_pgq_open(const char *conninfo, int role, fl_pgq **out, char *err,
                size_t errlen) {
  *out = NULL;
  fl_pgq *q = calloc(1, sizeof *q);
  if (!q) {
    snprintf(err, errlen, "cannot open the job queue: out of memory");
    return FLOWLUA_ENOMEM;
  }
  q->role = role;
  q->retry = fl_pg_retry_seconds();
  int status = fl_pg_connect(conninfo, CONNECT_TIMEOUT, &q->c, err, errlen);
  if (status == FLOWLUA_OK && (status = listen_all(q)) != FLOWLUA_OK)
    snprintf(err, errlen, "%s", fl_pg_errmsg(q->c));
  if (status != FLOWLUA_OK) {
    fl_pgq_close(q);
    return status;
  }
  *out = q;
  return FLOWLUA_OK;
}

void fl_pgq_close(fl_pgq *q) {
  if (!q) return;
  drop_last(q);
  fl_pg_close(q->c);
  fl_buf_free(&q->bytes);
  fl_buf_free(&q->queues);
  fl_buf_free(&q->scripts);
  free(q);
}

const char *fl_pgq_errmsg(const fl_pgq *q) { return fl_pg_errmsg(q->c); }

int fl_pgq_fd(const fl_pgq *q) {
  PGconn *conn = fl_pg_conn(q->c);
  return conn ? fl_pq()->socket(conn) : -1;
}

unsigned fl_pgq_reconnects(const fl_pgq *q) { return q->reconnects; }

int fl_pgq_drain(fl_pgq *q, const char *driver, fl_pgq_took_fn took,
                 void *data) {
  PGconn *conn = fl_pg_conn(q->c);
  if (!conn || !fl_pq()->consume_input(conn)) return -1;
  int n = 0;
  size_t len = driver ? strlen(driver) : 0;
  for (PGnotify *note; (note = fl_pq()->notifies(conn));) {
    /* A driver's notes: "TOKEN" (answers to read) or "TOKEN SEQ WORKER"
       (a worker took job SEQ); a worker counts every note. */
    const char *p = note->extra;
    if (!driver) {
      n++;
    } else if (strncmp(p, driver, len) == 0 && p[len] == '\0') {
      n++;
    } else if (strncmp(p, driver, len) == 0 && p[len] == ' ' && took) {
      char *end;
      long long seq = strtoll(p + len + 1, &end, 10);
      if (*end == ' ') took(data, (int64_t)seq, end + 1);
    }
    fl_pq()->freemem(note);
  }
  return n;
}

/* ---- statements, again after a reconnect ------------------------------------ */

/* Whether to run a statement again: its connection was lost and came back
   (LISTENing again) before deadline. */
static int reconnected(fl_pgq *q, double deadline) {
  if (!fl_pg_lost(q->c)) return 0;
  double left = deadline - mono_now();
  if (left <= 0) return 0;
  fl_buf keep = FL_BUF_INIT;
  fl_buf_adds(&keep, fl_pg_errmsg(q->c));
  int ok = fl_pg_reconnect(q->c, left) == FLOWLUA_OK && listen_all(q) == FLOWLUA_OK;
  if (ok) q->reconnects++;
  else
    fl_pg_set_err(q->c, FLOWLUA_EIO, "the job queue: %s; reconnecting for "
                  "%.0f s failed", fl_buf_str(&keep), q->retry);
  fl_buf_free(&keep);
  return ok;
}

/* Whether the statement lost a race with another (a deadlock, a
   serialization failure): the server rolled it back, and it may run
   again. */
static int lost_race(const fl_pgq *q) {
  const char *state = fl_pg_sqlstate(q->c);
  return strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0;
}

/* Runs a statement that may run twice; its result becomes q->last. */
static int query(fl_pgq *q, const char *what, const char *sql, int n,
                 const char *const *params) {
  drop_last(q);
  double deadline = mono_now() + q->retry;
  for (int races = 0;;) {
    PGresult *r = fl_pg_query(q->c, what, sql, n, params);
    if (r) {
      q->last = r;
      return FLOWLUA_OK;
    }
    if (lost_race(q) && races++ < 50 && mono_now() < deadline) {
      /* A short pause that grows, so that the two sides part. */
      struct timespec pause = {0, (long)(races < 10 ? races : 10) * 1000000L};
      nanosleep(&pause, NULL);
      continue;
    }
    if (!reconnected(q, deadline)) return FLOWLUA_EIO;
  }
}

static int64_t col_i64(const PGresult *r, int row, int col) {
  return strtoll(fl_pq()->getvalue(r, row, col), NULL, 10);
}

static const char *col_str(const PGresult *r, int row, int col) {
  return fl_pq()->getisnull(r, row, col) ? NULL : fl_pq()->getvalue(r, row, col);
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A bytea column's text ("\x0a1b...") decoded onto q->bytes: its offset
   there, or -1 when it is not hex output. */
static long decode_bytea(fl_pgq *q, const char *text, size_t *len) {
  size_t n = strlen(text);
  if (n < 2 || text[0] != '\\' || text[1] != 'x' || n % 2) return -1;
  long at = (long)q->bytes.len;
  for (size_t i = 2; i < n; i += 2) {
    int hi = hex_digit(text[i]), lo = hex_digit(text[i + 1]);
    if (hi < 0 || lo < 0) return -1;
    fl_buf_addc(&q->bytes, (char)(hi << 4 | lo));
  }
  if (q->bytes.oom) return -1;
  *len = (n - 2) / 2;
  return at;
}

static void add_hex(fl_buf *a, const char *data, size_t n) {
  static const char digits[] = "0123456789abcdef";
  fl_buf_addc(a, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char b = (unsigned char)data[i];
    char two[2] = {digits[b >> 4], digits[b & 15]};
    fl_buf_add(a, two, 2);
  }
  fl_buf_addc(a, '"');
}

static void add_seqs(fl_buf *a, const int64_t *seqs, size_t n) {
  fl_buf_addc(a, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) fl_buf_addc(a, ',');
    fl__pg_add_i64(a, seqs[i]);
  }
  fl_buf_addc(a, '}');
}

static int out_of_memory(fl_pgq *q, const char *what) {
  return fl_pg_set_err(q->c, FLOWLUA_ENOMEM, "%s: out of memory", what);
}

/* ---- the driver's side -------------------------------------------------------- */

int fl_pgq_enqueue(fl_pgq *q, const char *driver, const fl_pgq_new *jobs,
                   size_t n) {
  static const char *what = "cannot queue worker tasks' jobs";
  if (n == 0) return FLOWLUA_OK;
  pg_columns t;
  fl__pg_cols_init(&t, 6);
  for (size_t i = 0; i < n; i++) {
    fl__pg_cols_row(&t);
    fl__pg_add_i64(&t.col[0], jobs[i].seq);
    fl__pg_add_str(&t.col[1], jobs[i].run_id);
    fl__pg_add_str(&t.col[2], jobs[i].task);
    fl__pg_add_str(&t.col[3], jobs[i].queue);
    fl__pg_add_str(&t.col[4], jobs[i].script_sha);
    add_hex(&t.col[5], jobs[i].frame, jobs[i].frame_len);
  }
  int status;
  if (fl__pg_cols_close(&t) != 0) {
    status = out_of_memory(q, what);
  } else {
    const char *params[7] = {driver};
    for (int k = 0; k < 6; k++) params[k + 1] = fl_buf_str(&t.col[k]);
    /* The insert runs again harmlessly after a lost answer; the notify is
       sent at commit, so a worker woken finds the rows. */
    status = query(
        q, what,
        "WITH i AS (INSERT INTO flowlua.job"
        " (driver, seq, run_id, task, queue, script_sha, frame)"
        " SELECT $1, s, r, t, qu, sh, decode(f, 'hex') FROM unnest("
        "  $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],"
        "  $7::text[]) AS u(s, r, t, qu, sh, f)"
        " ON CONFLICT (driver, seq) DO NOTHING RETURNING 1)"
        "SELECT pg_notify('flowlua_jobs', '')"
        " FROM (SELECT count(*) AS c FROM i) AS x WHERE c > 0",
        7, params);
  }
  fl__pg_cols_free(&t);
  return status;
}

/* The rows of q->last as news: seq, kind, worker, answer (or NULL). */
static int take_news(fl_pgq *q, fl_pgq_news **news, size_t *count) {
  int rows = fl_pq()->ntuples(q->last);
  fl_pgq_news *out = calloc((size_t)rows + 1, sizeof *out);
  long *at = calloc((size_t)rows + 1, sizeof *at);
  if (!out || !at) {
    free(out);
    free(at);
    return out_of_memory(q, "cannot read the job queue's news");
  }
  for (int i = 0; i < rows; i++) {
    out[i].seq = col_i64(q->last, i, 0);
    out[i].kind = (int)col_i64(q->last, i, 1);
    out[i].worker = col_str(q->last, i, 2);
    const char *answer = col_str(q->last, i, 3);
    /* An answer that is not bytea text (someone wrote the row) reads as
       none: the driver then fails that attempt, and only that one. */
    at[i] = answer ? decode_bytea(q, answer, &out[i].answer_len) : -1;
    if (at[i] < 0) out[i].answer_len = 0;
  }
  /* Pointers only now: decoding may have moved the bytes. */
  for (int i = 0; i < rows; i++)
    if (at[i] >= 0) out[i].answer = q->bytes.data + at[i];
  free(at);
  q->rows = out;
  *news = out;
  *count = (size_t)rows;
  return FLOWLUA_OK;
}

int fl_pgq_news_read(fl_pgq *q, const char *driver, int lapsed,
                     fl_pgq_news **news, size_t *n) {
  *news = NULL;
  *n = 0;
  const char *params[2] = {driver, lapsed ? "true" : "false"};
  /* Answers, and with lapsed the jobs whose lease lapsed, are read and
     deleted at once: one statement per look. When its answer is lost
     with the connection, the driver finds the jobs missing after the
     reconnect (fl_pgq_missing) and fails their attempts: retried, never
     waited for. Claims come as notifications (fl_pgq_drain), so that a
     job's row changes no more than it must. Rows are locked in id order,
     as the workers lock them. */
  int status = query(
      q, "cannot read the job queue",
      "WITH d AS (DELETE FROM flowlua.job WHERE id IN"
      "  (SELECT id FROM flowlua.job WHERE driver = $1 AND (state = 'done'"
      "   OR ($2::boolean AND state = 'running' AND lease_until < " NOW_SQL "))"
      "   ORDER BY id FOR UPDATE)"
      "  RETURNING seq, state, worker, answer)"
      "SELECT seq, CASE WHEN state = 'done' THEN 1 ELSE 2 END, worker, answer"
      " FROM d",
      2, params);
  return status ? status : take_news(q, news, n);
}

int fl_pgq_missing(fl_pgq *q, const char *driver, const int64_t *seqs,
                   size_t n, fl_pgq_news **news, size_t *count) {
  *news = NULL;
  *count = 0;
  fl_buf a = FL_BUF_INIT;
  add_seqs(&a, seqs, n);
  if (a.oom) {
    fl_buf_free(&a);
    return out_of_memory(q, "cannot check the job queue");
  }
  const char *params[2] = {driver, fl_buf_str(&a)};
  int status = query(q, "cannot check the job queue",
                     "SELECT s, 3, NULL, NULL FROM unnest($2::bigint[]) AS s"
                     " WHERE NOT EXISTS (SELECT 1 FROM flowlua.job"
                     "  WHERE driver = $1 AND seq = s)",
                     2, params);
  fl_buf_free(&a);
  return status ? status : take_news(q, news, count);
}

int fl_pgq_withdraw(fl_pgq *q, const char *driver, const int64_t *seqs,
                    size_t n, unsigned char *taken) {
  if (n == 0) return FLOWLUA_OK;
  fl_buf a = FL_BUF_INIT;
  add_seqs(&a, seqs, n);
  if (a.oom) {
    fl_buf_free(&a);
    return out_of_memory(q, "cannot withdraw jobs");
  }
  const char *params[2] = {driver, fl_buf_str(&a)};
  /* A queued job goes; a running one is marked, for its worker's next
     renewal to stop it; a done one is left to be read. */
  int status = query(
      q, "cannot withdraw jobs",
      "WITH d AS (DELETE FROM flowlua.job"
      "  WHERE driver = $1 AND seq = ANY($2::bigint[]) AND state = 'queued'"
      "  RETURNING seq),"
      " c AS (UPDATE flowlua.job SET cancel = true"
      "  WHERE driver = $1 AND seq = ANY($2::bigint[]) AND state = 'running'"
      "  RETURNING seq)"
      "SELECT seq FROM d",
      2, params);
  fl_buf_free(&a);
  if (status) return status;
  for (size_t i = 0; i < n; i++) taken[i] = 1;
  int rows = fl_pq()->ntuples(q->last);
  for (int r = 0; r < rows; r++) {
    int64_t seq = col_i64(q->last, r, 0);
    for (size_t i = 0; i < n; i++)
      if (seqs[i] == seq) taken[i] = 0;
  }
  drop_last(q);
  return FLOWLUA_OK;
}

/* ---- the worker's side -------------------------------------------------------- */

static void add_list(fl_buf *a, const char *const *v, size_t n) {
  fl_buf_addc(a, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) fl_buf_addc(a, ',');
    fl__pg_add_str(a, v[i]);
  }
  fl_buf_addc(a, '}');
}

static void fmt_seconds(char *out, size_t n, double v) {
  snprintf(out, n, "%.17g", v);
}

int fl_pgq_register(fl_pgq *q, const fl_pgq_self *self) {
  fl_buf_reset(&q->queues);
  fl_buf_reset(&q->scripts);
  add_list(&q->queues, self->queues, self->n_queues);
  add_list(&q->scripts, self->scripts, self->n_scripts);
  if (q->queues.oom || q->scripts.oom) return out_of_memory(q, "cannot register");
  snprintf(q->label, sizeof q->label, "%s:%" PRId64, self->host, self->pid);
  q->lease = self->lease;
  char pid[32], slots[16], lease[40];
  snprintf(pid, sizeof pid, "%" PRId64, self->pid);
  snprintf(slots, sizeof slots, "%d", self->slots);
  fmt_seconds(lease, sizeof lease, self->lease);
  const char *params[6] = {self->host, pid, fl_buf_str(&q->queues),
                           fl_buf_str(&q->scripts), slots, lease};
  int status = query(q, "cannot register the worker",
                     "INSERT INTO flowlua.queue_worker"
                     " (host, pid, queues, scripts, slots, lease_until)"
                     " VALUES ($1, $2, $3::text[], $4::text[], $5, " NOW_SQL
                     " + $6) RETURNING id",
                     6, params);
  if (status) return status;
  q->worker_id = col_i64(q->last, 0, 0);
  drop_last(q);
  return FLOWLUA_OK;
}

int fl_pgq_unregister(fl_pgq *q) {
  char id[32];
  snprintf(id, sizeof id, "%" PRId64, q->worker_id);
  const char *params[1] = {id};
  int status = query(q, "cannot unregister the worker",
                     "DELETE FROM flowlua.queue_worker WHERE id = $1", 1, params);
  drop_last(q);
  return status;
}

int fl_pgq_claim(fl_pgq *q, int limit, fl_pgq_job **jobs, size_t *n) {
  *jobs = NULL;
  *n = 0;
  char id[32], lim[16], lease[40];
  snprintf(id, sizeof id, "%" PRId64, q->worker_id);
  snprintf(lim, sizeof lim, "%d", limit);
  fmt_seconds(lease, sizeof lease, q->lease);
  const char *params[6] = {id, q->label, fl_buf_str(&q->queues),
                           fl_buf_str(&q->scripts), lim, lease};
  /* Only jobs of runs still driven (their driver's lease holds): a driver
     that died leaves jobs nobody must run. The claim tells the driver. */
  int status = query(
      q, "cannot claim jobs",
      "WITH c AS (UPDATE flowlua.job SET state = 'running', worker_id = $1,"
      "  worker = $2, claimed_at = " NOW_SQL ", lease_until = " NOW_SQL " + $6"
      "  WHERE id IN (SELECT j.id FROM flowlua.job j"
      "   WHERE j.state = 'queued' AND j.script_sha = ANY($4::text[])"
      "   AND (cardinality($3::text[]) = 0 OR j.queue = ANY($3::text[]))"
      "   AND EXISTS (SELECT 1 FROM flowlua.flow_run r"
      "    WHERE r.run_id = j.run_id AND r.state = 'Running'"
      "    AND r.lease_until > " NOW_SQL ")"
      "   ORDER BY j.id LIMIT GREATEST(1, LEAST($5::int,"
      "    ceil((SELECT count(*) FROM flowlua.job k WHERE k.state = 'queued'"
      "     AND k.script_sha = ANY($4::text[]) AND (cardinality($3::text[]) = 0"
      "     OR k.queue = ANY($3::text[])))::numeric / GREATEST(1,"
      "     (SELECT count(*) FROM flowlua.queue_worker"
      "      WHERE lease_until >= " NOW_SQL ")))::int))"
      "   FOR UPDATE SKIP LOCKED)"
      "  RETURNING id, script_sha, frame, driver, seq)"
      "SELECT id, script_sha, frame,"
      " pg_notify('flowlua_done', driver || ' ' || seq || ' ' || $2) FROM c",
      6, params);
  if (status) return status;
  int rows = fl_pq()->ntuples(q->last);
  fl_pgq_job *out = calloc((size_t)rows + 1, sizeof *out);
  long *at = calloc((size_t)rows + 1, sizeof *at);
  if (!out || !at) {
    free(out);
    free(at);
    return out_of_memory(q, "cannot claim jobs");
  }
  for (int i = 0; i < rows; i++) {
    out[i].id = col_i64(q->last, i, 0);
    out[i].script_sha = col_str(q->last, i, 1);
    at[i] = decode_bytea(q, fl_pq()->getvalue(q->last, i, 2), &out[i].frame_len);
    /* A frame that is not bytea text is left empty: the job then fails
       as malformed, like any frame that does not parse. */
    if (at[i] < 0) out[i].frame_len = 0;
  }
  for (int i = 0; i < rows; i++)
    out[i].frame = at[i] >= 0 ? q->bytes.data + at[i] : "";
  free(at);
  q->rows = out;
  *jobs = out;
  *n = (size_t)rows;
  return FLOWLUA_OK;
}

int fl_pgq_renew(fl_pgq *q, int busy, const int64_t *held, size_t n,
                 unsigned char *keep) {
  char id[32], b[16], lease[40];
  snprintf(id, sizeof id, "%" PRId64, q->worker_id);
  snprintf(b, sizeof b, "%d", busy);
  fmt_seconds(lease, sizeof lease, q->lease);
  const char *params[3] = {id, b, lease};
  /* A lapsed lease is never renewed: the job is another worker's now, or
     given up. Jobs left behind by drivers that are gone (and by workers
     gone with them) are cleared on the way: no worker takes them. */
  int status = query(
      q, "cannot renew the leases of its jobs",
      "WITH w AS (UPDATE flowlua.queue_worker SET busy = $2,"
      "  heartbeat_at = " NOW_SQL ", lease_until = " NOW_SQL " + $3"
      "  WHERE id = $1),"
      " g AS (DELETE FROM flowlua.job j WHERE j.enqueued_at < " NOW_SQL
      "  - 3 * $3 AND (j.state <> 'running' OR j.lease_until < " NOW_SQL
      "  - 3 * $3) AND NOT EXISTS"
      "  (SELECT 1 FROM flowlua.flow_run r WHERE r.run_id = j.run_id"
      "   AND r.state = 'Running')),"
      /* Workers that died: listed no more once their lease lapsed, gone
         from the table a day later. */
      " x AS (DELETE FROM flowlua.queue_worker"
      "  WHERE lease_until < " NOW_SQL " - 86400)"
      "UPDATE flowlua.job SET lease_until = " NOW_SQL " + $3"
      " WHERE worker_id = $1 AND state = 'running'"
      " AND lease_until >= " NOW_SQL " RETURNING id, cancel",
      3, params);
  if (status) return status;
  for (size_t i = 0; i < n; i++) keep[i] = 0;
  int rows = fl_pq()->ntuples(q->last);
  for (int r = 0; r < rows; r++) {
    int64_t job = col_i64(q->last, r, 0);
    int cancel = fl_pq()->getvalue(q->last, r, 1)[0] == 't';
    for (size_t i = 0; i < n; i++)
      if (held[i] == job) keep[i] = cancel ? 2 : 1;
  }
  drop_last(q);
  return FLOWLUA_OK;
}

int fl_pgq_finish(fl_pgq *q, const int64_t *ids, const fl_buf *answers,
                  size_t n, size_t *written) {
  *written = 0;
  if (n == 0) return FLOWLUA_OK;
  fl_buf a = FL_BUF_INIT, b = FL_BUF_INIT;
  add_seqs(&a, ids, n);
  fl_buf_addc(&b, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) fl_buf_addc(&b, ',');
    add_hex(&b, answers[i].data ? answers[i].data : "", answers[i].len);
  }
  fl_buf_addc(&b, '}');
  int status;
  if (a.oom || b.oom) {
    status = out_of_memory(q, "cannot write jobs' answers");
  } else {
    char id[32];
    snprintf(id, sizeof id, "%" PRId64, q->worker_id);
    const char *params[3] = {id, fl_buf_str(&a), fl_buf_str(&b)};
    status = query(
        q, "cannot write jobs' answers",
        "WITH d AS (UPDATE flowlua.job SET state = 'done',"
        "  answer = decode(u.a, 'hex')"
        "  FROM unnest($2::bigint[], $3::text[]) AS u(id, a)"
        "  WHERE job.id = u.id AND job.id IN (SELECT id FROM flowlua.job"
        "   WHERE id = ANY($2::bigint[]) ORDER BY id FOR UPDATE)"
        "  AND job.worker_id = $1"
        "  AND job.state = 'running' AND job.lease_until >= " NOW_SQL
        "  RETURNING job.driver)"
        "SELECT pg_notify('flowlua_done', driver) FROM d",
        3, params);
    if (status == FLOWLUA_OK) *written = (size_t)fl_pq()->ntuples(q->last);
  }
  fl_buf_free(&a);
  fl_buf_free(&b);
  drop_last(q);
  return status;
}

/* ---- reading ------------------------------------------------------------------ */

int fl_pgq_workers(fl_pgq *q, fl_pgq_worker_row **rows, size_t *n) {
  *rows = NULL;
  *n = 0;
  int status = query(q, "cannot list the workers",
                     "SELECT host, pid, array_to_string(queues, ','),"
                     " array_to_string(scripts, ','), slots, busy,"
                     " started_at, heartbeat_at FROM flowlua.queue_worker"
                     " WHERE lease_until >= " NOW_SQL " ORDER BY host, pid",
                     0, NULL);
  /* No table yet (no flowlua has opened this history to write): no
     workers, rather than the server's "does not exist". */
  if (status && strcmp(fl_pg_sqlstate(q->c), "42P01") == 0) return FLOWLUA_OK;
  if (status) return status;
  int count = fl_pq()->ntuples(q->last);
  fl_pgq_worker_row *out = calloc((size_t)count + 1, sizeof *out);
  if (!out) return out_of_memory(q, "cannot list the workers");
  for (int i = 0; i < count; i++) {
    out[i].host = col_str(q->last, i, 0);
    out[i].pid = col_i64(q->last, i, 1);
    out[i].queues = col_str(q->last, i, 2);
    out[i].scripts = col_str(q->last, i, 3);
    out[i].slots = (int)col_i64(q->last, i, 4);
    out[i].busy = (int)col_i64(q->last, i, 5);
    out[i].started_at = strtod(fl_pq()->getvalue(q->last, i, 6), NULL);
    out[i].heartbeat_at = strtod(fl_pq()->getvalue(q->last, i, 7), NULL);
  }
  q->rows = out;
  *rows = out;
  *n = (size_t)count;
  return FLOWLUA_OK;
}
