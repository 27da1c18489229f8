/*
 * pg_conn.c — a connection to the PostgreSQL history: connecting with a
 * bounded, growing backoff, reconnecting after the server went away, and
 * running statements with errors that say what was being done and what
 * the server answered.
 *
 * What it must not do: let the password reach any text it keeps (every
 * message is scrubbed of it before it is stored: pg_redact.c), block past
 * the caller's deadline while connecting, or leave a descriptor a child
 * process could inherit.
 */
#define _POSIX_C_SOURCE 200809L
#include "pg_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowlua.h"
#include "pg_api.h"
#include "utf8.h"

/* The backoff: the first pause, its growth, its ceiling (seconds). */
#define BACKOFF_FIRST 0.1
#define BACKOFF_MAX 2.0

/* Distinct failure messages kept for the final error; more are counted. */
#define MAX_FAILURES 4

struct fl_pg {
  PGconn *pg;
  char *conninfo; /* as given: holds the password, never shown */
  char *options;  /* the conninfo's own `options`, then search_path */
  fl_buf name;    /* the conninfo redacted, for messages */
  /* The password as the conninfo writes it (each place) and as libpq
     decodes it: libpq's messages could echo either. */
  char **secrets;
  size_t n_secrets, cap_secrets;
  fl_buf err;
  int attempts;
  int lost;
  char sqlstate[6]; /* of the last failed statement; "" when none */
};

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_for(double seconds) {
  if (seconds <= 0) return;
  struct timespec ts = {(time_t)seconds,
                        (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- messages ---------------------------------------------------------------- */

/* Appends text scrubbed of the password, its runs of white space (libpq's
   messages span lines, with tabs) made one space, and no trailing space. */
static void add_clean(const fl_pg *c, fl_buf *out, const char *text) {
  fl_buf scrubbed = FL_BUF_INIT;
  fl_pg_scrub(text, (const char *const *)c->secrets, c->n_secrets, &scrubbed);
  const char *s = fl_buf_str(&scrubbed);
  int space = 0;
  size_t start = out->len;
  for (; *s; s++) {
    if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') {
      space = out->len > start;
      continue;
    }
    if (space) fl_buf_addc(out, ' ');
    space = 0;
    fl_buf_addc(out, *s);
  }
  if (scrubbed.oom) out->oom = 1;
  fl_buf_free(&scrubbed);
}

static int set_errv(fl_pg *c, int status, const char *fmt, va_list ap) {
  fl_buf text = FL_BUF_INIT;
  fl_buf_addvf(&text, fmt, ap);
  fl_buf_reset(&c->err);
  fl_buf_addf(&c->err, "state store '%s': ", fl_buf_str(&c->name));
  add_clean(c, &c->err, fl_buf_str(&text));
  fl_buf_free(&text);
  return status;
}

int fl_pg_set_err(fl_pg *c, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_errv(c, status, fmt, ap);
  va_end(ap);
  return status;
}

const char *fl_pg_errmsg(const fl_pg *c) {
  return c && c->err.data ? c->err.data : "";
}

const char *fl_pg_name(const fl_pg *c) {
  return c->name.data ? c->name.data : "";
}

int fl_pg_attempts(const fl_pg *c) { return c->attempts; }

PGconn *fl_pg_conn(fl_pg *c) { return c->pg; }

int fl_pg_lost(const fl_pg *c) { return c->lost; }

double fl_pg_env_seconds(const char *name, double fallback) {
  const char *v = getenv(name);
  if (!v || !*v) return fallback;
  char *end;
  double d = strtod(v, &end);
  return *end == '\0' && isfinite(d) && d > 0 ? d : fallback;
}

double fl_pg_retry_seconds(void) {
  return fl_pg_env_seconds("FLOWLUA_PG_RETRY", FL_PG_RETRY_DEFAULT);
}

const char *fl_pg_sqlstate(const fl_pg *c) { return c->sqlstate; }

/* ---- the handle ---------------------------------------------------------------- */

/* Room for every secret is made before any is added (handle_new): a
   secret dropped for want of room would be a password shown. */
static int add_secret(fl_pg *c, const char *s, size_t n) {
  if (n == 0) return FLOWLUA_OK;
  if (c->n_secrets == c->cap_secrets) return FLOWLUA_ENOMEM;
  char *copy = strndup(s, n);
  if (!copy) return FLOWLUA_ENOMEM;
  c->secrets[c->n_secrets++] = copy;
  return FLOWLUA_OK;
}

/* What libpq makes of the conninfo: refused if malformed; its password
   (decoded) becomes a secret; its `options` kept to extend. */
static int parse_conninfo(fl_pg *c) {
  const fl_pq_api *pq = fl_pq();
  char *why = NULL;
  PQconninfoOption *opts = pq->conninfo_parse(c->conninfo, &why);
  if (!opts) {
    int status = why ? FLOWLUA_EINVAL : FLOWLUA_ENOMEM;
    fl_pg_set_err(c, status, "not a valid PostgreSQL URI or conninfo: %s",
                  why ? why : "out of memory");
    pq->freemem(why);
    return status;
  }
  int status = FLOWLUA_OK;
  const char *options = NULL;
  for (PQconninfoOption *o = opts; o->keyword && status == FLOWLUA_OK; o++) {
    if (!o->val) continue;
    if (strcmp(o->keyword, "password") == 0)
      status = add_secret(c, o->val, strlen(o->val));
    else if (strcmp(o->keyword, "options") == 0)
      options = o->val;
  }
  /* Every session of the history works in schema flowlua, set at startup
     (no round trip), after whatever options the user gave; doubles are
     printed so that they read back to the bit whatever the server's own
     setting (times, fire times); and no JIT, whose compiling costs more
     than the history's short statements gain (0.3 s on a 100,000-task
     run's load). */
  fl_buf merged = FL_BUF_INIT;
  if (options && *options) fl_buf_addf(&merged, "%s ", options);
  fl_buf_adds(&merged, "-c search_path=flowlua -c extra_float_digits=3"
                       " -c jit=off");
  if (status == FLOWLUA_OK && !(c->options = strdup(fl_buf_str(&merged))))
    status = FLOWLUA_ENOMEM;
  if (merged.oom) status = FLOWLUA_ENOMEM;
  fl_buf_free(&merged);
  pq->conninfo_free(opts);
  if (status == FLOWLUA_ENOMEM) fl_pg_set_err(c, status, "out of memory");
  return status;
}

static fl_pg *handle_new(const char *conninfo) {
  fl_pg *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (!(c->conninfo = strdup(conninfo))) {
    free(c);
    return NULL;
  }
  fl_pg_redact(conninfo, &c->name);
  size_t n = fl_pg_password_spans(conninfo, NULL, 0);
  fl_pg_span *spans = calloc(n + 1, sizeof *spans);
  c->cap_secrets = n + 1; /* and the decoded one (parse_conninfo) */
  c->secrets = calloc(c->cap_secrets, sizeof *c->secrets);
  if (!spans || !c->secrets) c->name.oom = 1;
  if (!c->name.oom) fl_pg_password_spans(conninfo, spans, n);
  for (size_t i = 0; i < n && !c->name.oom; i++)
    if (add_secret(c, conninfo + spans[i].off, spans[i].len)) c->name.oom = 1;
  free(spans);
  if (c->name.oom) {
    fl_pg_close(c);
    return NULL;
  }
  return c;
}

void fl_pg_close(fl_pg *c) {
  if (!c) return;
  if (c->pg) fl_pq()->finish(c->pg); /* a handle with a connection: loaded */
  for (size_t i = 0; i < c->n_secrets; i++) {
    /* Wiped before freed: no copy of ours lingers in the heap (libpq's
       own copies are libpq's). */
    volatile char *p = c->secrets[i];
    while (*p) *p++ = 0;
    free(c->secrets[i]);
  }
  free(c->secrets);
  if (c->conninfo) {
    volatile char *p = c->conninfo;
    while (*p) *p++ = 0;
  }
  free(c->conninfo);
  free(c->options);
  fl_buf_free(&c->name);
  fl_buf_free(&c->err);
  free(c);
}

/* ---- connecting ---------------------------------------------------------------- */

static void drop_notice(void *arg, const char *message) {
  (void)arg;
  (void)message; /* "schema already exists, skipping" and the like */
}

typedef struct failures {
  char *text[MAX_FAILURES];
  int count[MAX_FAILURES];
  int n, others;
} failures;

static void failures_add(failures *f, const char *text) {
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->text[i], text) == 0) {
      f->count[i]++;
      return;
    }
  if (f->n == MAX_FAILURES || !(f->text[f->n] = strdup(text))) {
    f->others++;
    return;
  }
  f->count[f->n++] = 1;
}

static void failures_free(failures *f) {
  for (int i = 0; i < f->n; i++) free(f->text[i]);
}

/* One attempt, bounded by deadline. 0 with c->pg set, or FLOWLUA_EIO with
   the failure in why (scrubbed) and *final set when trying again cannot
   help. */
static int attempt(fl_pg *c, double deadline, fl_buf *why, int *final) {
  const char *const keys[] = {"dbname", "application_name", "options", NULL};
  const char *const vals[] = {c->conninfo, "flowlua", c->options, NULL};
  const fl_pq_api *pq = fl_pq();
  PGconn *pg = pq->connect_start_params(keys, vals, 1);
  if (!pg) {
    *final = 1;
    fl_buf_adds(why, "out of memory");
    return FLOWLUA_ENOMEM;
  }
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  if (pq->status(pg) == CONNECTION_BAD) st = PGRES_POLLING_FAILED;
  int timed_out = 0;
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    /* Past the deadline the socket is still looked at once without
       waiting: a refusal already there is the better message. */
    double left = deadline - mono_now();
    struct pollfd p = {pq->socket(pg),
                       st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
    int ready = poll(&p, 1, left > 0 ? (int)(left * 1000) + 1 : 0);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      fl_buf_addf(why, "poll: %s", strerror(errno));
      pq->finish(pg);
      return FLOWLUA_EIO;
    }
    if (ready > 0) {
      st = pq->connect_poll(pg);
    } else if (left <= 0) {
      timed_out = 1;
      break;
    }
  }
  if (st == PGRES_POLLING_OK) {
    /* libpq marks its socket close-on-exec already; a worker or shell task
       started between two statements must never hold the history's
       connection, so it is made sure of here. */
    int fd = pq->socket(pg);
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
      fl_buf_addf(why, "cannot make its socket close-on-exec: %s",
                  strerror(errno));
      *final = 1;
      pq->finish(pg);
      return FLOWLUA_EIO;
    }
    pq->set_notice_processor(pg, drop_notice, NULL);
    c->pg = pg;
    return FLOWLUA_OK;
  }
  if (timed_out) {
    fl_buf_adds(why, "no answer before the deadline");
  } else {
    add_clean(c, why, pq->error_message(pg));
    /* The server answered and refused after the password was asked for or
       sent (a wrong password, no such database or role): the same answer
       would come again. A server starting up or shutting down refuses
       before that, and is tried again. */
    *final = pq->connection_needs_password(pg) ||
             pq->connection_used_password(pg);
  }
  pq->finish(pg);
  return FLOWLUA_EIO;
}

int fl_pg_reconnect(fl_pg *c, double timeout) {
  if (c->pg) fl_pq()->finish(c->pg);
  c->pg = NULL;
  c->lost = 0;
  c->attempts = 0;
  double start = mono_now(), deadline = start + timeout;
  double pause = BACKOFF_FIRST;
  failures f = {0};
  fl_buf why = FL_BUF_INIT;
  int status, final = 0;
  for (;;) {
    c->attempts++;
    fl_buf_reset(&why);
    status = attempt(c, deadline, &why, &final);
    if (status == FLOWLUA_OK) break;
    failures_add(&f, fl_buf_str(&why));
    double left = deadline - mono_now();
    if (final || left < 0.01) break;
    sleep_for(pause < left ? pause : left);
    pause = pause * 2 < BACKOFF_MAX ? pause * 2 : BACKOFF_MAX;
  }
  if (status != FLOWLUA_OK) {
    fl_buf all = FL_BUF_INIT;
    for (int i = 0; i < f.n; i++) {
      fl_buf_addf(&all, "%s%s", i ? "; " : "", f.text[i]);
      if (f.count[i] > 1) fl_buf_addf(&all, " (%d times)", f.count[i]);
    }
    if (f.others) fl_buf_addf(&all, "; and %d other failures", f.others);
    if (final)
      fl_pg_set_err(c, status, "cannot connect (not retried: %s): %s",
                    status == FLOWLUA_ENOMEM ? "out of memory"
                                             : "the server refused it",
                    fl_buf_str(&all));
    else
      fl_pg_set_err(c, status, "cannot connect (%d attempt%s in %.1f s): %s",
                    c->attempts, c->attempts == 1 ? "" : "s",
                    mono_now() - start, fl_buf_str(&all));
    fl_buf_free(&all);
  }
  failures_free(&f);
  fl_buf_free(&why);
  return status;
}

int fl_pg_connect(const char *conninfo, double timeout, fl_pg **out,
                  char *err, size_t errlen) {
  *out = NULL;
  if (errlen) err[0] = '\0';
  if (!conninfo || !*conninfo) {
    if (errlen) snprintf(err, errlen, "state store: no PostgreSQL URI given");
    return FLOWLUA_EINVAL;
  }
  fl_pg *c = handle_new(conninfo);
  if (!c) {
    if (errlen) snprintf(err, errlen, "state store: out of memory");
    return FLOWLUA_ENOMEM;
  }
  /* libpq is loaded by the first connection (pg_api.h); without it there
     is no connection to make, and the error says how to get it. */
  const char *why = NULL;
  int status = fl_pq_load(&why)
                   ? parse_conninfo(c)
                   : fl_pg_set_err(c, FLOWLUA_EIO, "cannot connect: %s", why);
  if (status == FLOWLUA_OK) status = fl_pg_reconnect(c, timeout);
  if (status != FLOWLUA_OK) {
    if (errlen) snprintf(err, errlen, "%s", fl_pg_errmsg(c));
    fl_pg_close(c);
    return status;
  }
  *out = c;
  return FLOWLUA_OK;
}

/* ---- statements ---------------------------------------------------------------- */

/* 0 when r is a success; else the error "what: primary (detail)", with
   the connection marked lost when it broke. */
static int result_status(fl_pg *c, PGresult *r, const char *what) {
  const fl_pq_api *pq = fl_pq();
  ExecStatusType s = r ? pq->result_status(r) : PGRES_FATAL_ERROR;
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY)
    return FLOWLUA_OK;
  if (pq->status(c->pg) == CONNECTION_BAD) c->lost = 1;
  const char *state = r ? pq->result_error_field(r, PG_DIAG_SQLSTATE) : NULL;
  snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "");
  const char *primary =
      r ? pq->result_error_field(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *detail =
      r ? pq->result_error_field(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
  if (!primary) primary = pq->error_message(c->pg); /* no answer: libpq's own */
  if (!primary || !*primary) primary = r ? pq->res_status(s) : "out of memory";
  if (detail)
    return fl_pg_set_err(c, FLOWLUA_EIO, "%s: %s (%s)", what, primary, detail);
  return fl_pg_set_err(c, FLOWLUA_EIO, "%s: %s%s", what, primary,
                       c->lost ? " (the connection was lost)" : "");
}

int fl_pg_exec(fl_pg *c, const char *sql, const char *what) {
  if (!c->pg)
    return fl_pg_set_err(c, FLOWLUA_EIO, "%s: not connected", what);
  PGresult *r = fl_pq()->exec(c->pg, sql);
  int status = result_status(c, r, what);
  fl_pq()->clear(r);
  return status;
}

/* The parameters as the server takes them: text in a UTF8 database is
   well-formed UTF-8 without NUL, and a flow's names, errors and params
   are whatever bytes Lua had. A parameter that is not gets its bad bytes
   written as \xNN (utf8.h), so a history keeps what it can show rather
   than refusing the whole statement. NULL when all are good as they are
   (the common case: no copy), or a malloc'd array of pointers into
   *scratch; *failed set when memory ran out. */
static const char **repaired_params(int n, const char *const *params,
                                    fl_buf *scratch, int *failed) {
  int bad = 0;
  for (int i = 0; i < n; i++)
    if (params[i] && !fl_utf8_text(params[i], strlen(params[i]))) bad = 1;
  if (!bad) return NULL;
  size_t *off = calloc((size_t)n, sizeof *off);
  const char **fixed = calloc((size_t)n, sizeof *fixed);
  for (int i = 0; off && fixed && i < n; i++) {
    if (!params[i] || fl_utf8_text(params[i], strlen(params[i]))) continue;
    off[i] = scratch->len + 1; /* 0: not repaired */
    fl_utf8_repair(scratch, params[i], strlen(params[i]));
    fl_buf_addc(scratch, '\0');
  }
  if (!off || !fixed || scratch->oom) {
    free(off);
    free(fixed);
    *failed = 1;
    return NULL;
  }
  for (int i = 0; i < n; i++)
    fixed[i] = off[i] ? scratch->data + off[i] - 1 : params[i];
  free(off);
  return fixed;
}

PGresult *fl_pg_query(fl_pg *c, const char *what, const char *sql, int n,
                      const char *const *params) {
  if (!c->pg) {
    fl_pg_set_err(c, FLOWLUA_EIO, "%s: not connected", what);
    return NULL;
  }
  fl_buf scratch = FL_BUF_INIT;
  int failed = 0;
  const char **fixed = repaired_params(n, params, &scratch, &failed);
  if (failed) {
    fl_buf_free(&scratch);
    fl_pg_set_err(c, FLOWLUA_ENOMEM, "%s: out of memory", what);
    return NULL;
  }
  PGresult *r = fl_pq()->exec_params(c->pg, sql, n, NULL,
                                     fixed ? fixed : params, NULL, NULL, 0);
  free(fixed);
  fl_buf_free(&scratch);
  if (result_status(c, r, what) != FLOWLUA_OK) {
    fl_pq()->clear(r);
    return NULL;
  }
  return r;
}
