/*
 * queues.c — flowlua_serve_queues (`flowlua worker`) and
 * flowlua_report_workers (`flowlua workers`): worker tasks through
 * PostgreSQL queues, for the CLI and embedders alike (engine/queue.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "pg_queue.h"
#include "queue.h"
#include "record.h"

static int check_runtime(flowlua *rt, flowlua *first) {
  if (!fl_queue_in_use(rt)) {
    fl_set_error(first, "flowlua worker: the state %s is not PostgreSQL: "
                        "workers serve the queues of a PostgreSQL history "
                        "(--state postgresql://...); with SQLite or "
                        ":memory:, a driver runs its worker tasks on its own "
                        "worker processes",
                 rt->state_path && *rt->state_path ? rt->state_name
                                                   : "(none)");
    return FLOWLUA_EINVAL;
  }
  if (!rt->script_path) {
    fl_set_error(first, "flowlua worker: every runtime needs a script loaded "
                        "from a file (its jobs name it by its SHA-256)");
    return FLOWLUA_EINVAL;
  }
  if (strcmp(rt->state_path, first->state_path) != 0) {
    fl_set_error(first, "flowlua worker: the runtimes must share one state");
    return FLOWLUA_EINVAL;
  }
  return FLOWLUA_OK;
}

int flowlua_serve_queues(flowlua *const *rts, size_t n,
                         const flowlua_queue_options *opts) {
  if (!rts || n == 0 || !rts[0] || !opts) return FLOWLUA_EINVAL;
  flowlua *first = rts[0];
  int rc = fl_api_enter(first, "flowlua_serve_queues", FL_API_RUN);
  if (rc) return rc;
  fl_buf_reset(&first->err);
  for (size_t i = 0; i < n && rc == FLOWLUA_OK; i++)
    rc = rts[i] ? check_runtime(rts[i], first) : FLOWLUA_EINVAL;
  if (rc == FLOWLUA_OK && opts->slots < 1) {
    fl_set_error(first, "flowlua worker: slots must be at least 1, got %d",
                 opts->slots);
    rc = FLOWLUA_EINVAL;
  }
  if (rc == FLOWLUA_OK && !(opts->lease > 0 && isfinite(opts->lease))) {
    fl_set_error(first, "flowlua worker: the lease must be more than 0 "
                        "seconds, got %g", opts->lease);
    rc = FLOWLUA_EINVAL;
  }
  /* The history opened (and its schema brought up to date) before any
     claim. */
  if (rc == FLOWLUA_OK) rc = fl_record_open_history(first);
  if (rc == FLOWLUA_OK) {
    fl_queue_work_opts o = {opts->queues, opts->n_queues, opts->slots,
                            opts->lease};
    rc = fl_queue_work(rts, n, &o);
  }
  return fl_api_leave(first, rc);
}

/* ---- flowlua workers ---------------------------------------------------------- */

static void iso_time(double t, char *out, size_t n) {
  time_t s = (time_t)t;
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void format_workers(const fl_pgq_worker_row *rows, size_t n, int json,
                           double now, fl_buf *out) {
  if (json) {
    fl_buf_addc(out, '[');
    for (size_t i = 0; i < n; i++) {
      const fl_pgq_worker_row *w = &rows[i];
      char started[32], beat[32];
      iso_time(w->started_at, started, sizeof started);
      iso_time(w->heartbeat_at, beat, sizeof beat);
      fl_buf_adds(out, i ? ",\n {" : "{");
      fl_buf_adds(out, "\"host\":");
      fl_buf_add_json_string(out, w->host ? w->host : "");
      fl_buf_addf(out, ",\"pid\":%" PRId64 ",\"queues\":", w->pid);
      fl_buf_add_json_string(out, w->queues ? w->queues : "");
      fl_buf_adds(out, ",\"scripts\":");
      fl_buf_add_json_string(out, w->scripts ? w->scripts : "");
      fl_buf_addf(out, ",\"slots\":%d,\"busy\":%d,\"started_at\":\"%s\","
                       "\"heartbeat_at\":\"%s\"}",
                  w->slots, w->busy, started, beat);
    }
    fl_buf_adds(out, "]\n");
    return;
  }
  if (n == 0) {
    fl_buf_adds(out, "no live workers\n");
    return;
  }
  fl_buf_addf(out, "%-28s %-8s %-11s %-20s %-14s %s\n", "WORKER", "SLOTS",
              "HEARTBEAT", "QUEUES", "SCRIPTS", "SINCE");
  for (size_t i = 0; i < n; i++) {
    const fl_pgq_worker_row *w = &rows[i];
    char who[300], slots[32], beat[32], since[32], scripts[16];
    snprintf(who, sizeof who, "%s:%" PRId64, w->host ? w->host : "?", w->pid);
    snprintf(slots, sizeof slots, "%d/%d", w->busy, w->slots);
    snprintf(beat, sizeof beat, "%.0f s ago",
             now > w->heartbeat_at ? now - w->heartbeat_at : 0.0);
    iso_time(w->started_at, since, sizeof since);
    /* Script versions by their first 12 hex digits, as messages name them. */
    snprintf(scripts, sizeof scripts, "%.12s%s", w->scripts ? w->scripts : "",
             w->scripts && strchr(w->scripts, ',') ? "+" : "");
    fl_buf_addf(out, "%-28s %-8s %-11s %-20s %-14s %s\n", who, slots, beat,
                w->queues && *w->queues ? w->queues : "(every queue)", scripts,
                since);
  }
}

int flowlua_report_workers(flowlua *rt, int json, char **out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  int rc = fl_api_enter(rt, "flowlua_report_workers", "a report");
  if (rc) return rc;
  fl_buf_reset(&rt->err);
  if (!fl_queue_in_use(rt)) {
    fl_set_error(rt, "flowlua workers: the state %s is not PostgreSQL: "
                     "only a PostgreSQL history has `flowlua worker` "
                     "processes (--state postgresql://...)",
                 rt->state_path && *rt->state_path ? rt->state_name : "(none)");
    return fl_api_leave(rt, FLOWLUA_EINVAL);
  }
  fl_pgq *q;
  char err[1024];
  rc = fl_pgq_open(rt->state_path, FL_PGQ_READER, &q, err, sizeof err);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", err);
    return fl_api_leave(rt, rc);
  }
  fl_pgq_worker_row *rows;
  size_t n;
  rc = fl_pgq_workers(q, &rows, &n);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_pgq_errmsg(q));
  } else {
    fl_buf b = FL_BUF_INIT;
    format_workers(rows, n, json, (double)time(NULL), &b);
    if (b.oom || !(*out = strdup(fl_buf_str(&b)))) {
      fl_set_error(rt, "flowlua workers: out of memory");
      rc = FLOWLUA_ENOMEM;
    }
    fl_buf_free(&b);
  }
  fl_pgq_close(q);
  return fl_api_leave(rt, rc);
}
