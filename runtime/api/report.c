/*
 * report.c — flowlua_report_html: one stored run as a self-contained HTML
 * page. Gathers what report_html.c draws from the history alone: the run,
 * every attempt, the graph's edges stored with the run, and the task
 * runs' kept log lines. It never loads
 * the script the run names: a history may be copied from elsewhere, and
 * reading one must not run code.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fsutil.h"
#include "report_html.h"
#include "store.h"

/* Why the run's graph cannot be drawn, or NULL when its stored edges can
   be. The graph comes from the history alone: never from the script the
   run names, which may be anything now (reading a history runs no code). */
static const char *graph_note(const fl_store_run_detail *d) {
  switch (d->edges_state) {
  case FL_STORE_EDGES_RECORDED: return NULL;
  case FL_STORE_EDGES_DAMAGED:
    return "the graph is unavailable (the edges stored with the run are "
           "damaged: an edge names no task of the run)";
  default:
    return "the graph is unavailable (the run was recorded by a flowlua "
           "older than 0.6.0, which did not store the graph's edges)";
  }
}

int flowlua_report_html(flowlua *rt, const char *run_ref, char **out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  fl_store *st, *tmp;
  int rc = fl_history_open_run(rt, "flowlua_report_html", run_ref, &st, &tmp);
  if (rc) return rc;
  fl_store_run_detail *d = NULL;
  fl_store_attempt_list attempts = {0};
  fl_store_log_list logs = {0};
  fl_report report = {.attempts = &attempts, .logs = &logs,
                      .now = fl_wall_time()};
  fl_buf page = FL_BUF_INIT;
  rc = fl_store_load_run(st, run_ref, NULL, &d);
  if (rc == FLOWLUA_OK) rc = fl_store_load_attempts(st, d, &attempts);
  if (rc == FLOWLUA_OK) rc = fl_store_load_logs(st, d, NULL, &logs);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    goto done;
  }
  report.run = d;
  report.graph_note = graph_note(d);
  if (!report.graph_note) { /* a graph without edges is still a graph */
    static const fl_report_edge no_edges[1];
    report.edges = d->n_edges ? d->edges : no_edges;
    report.n_edges = d->n_edges;
  }
  fl_report_html(&page, &report);
  if (page.oom) {
    fl_set_error(rt, "out of memory writing the report of run %s", d->run.run_id);
    rc = FLOWLUA_ENOMEM;
    goto done;
  }
  *out = page.data;
  page.data = NULL;
done:
  fl_buf_free(&page);
  fl_store_attempt_list_free(&attempts);
  fl_store_log_list_free(&logs);
  fl_store_run_detail_free(d);
  fl_store_close(tmp);
  return rc;
}

int flowlua_report_html_write(flowlua *rt, const char *run_ref,
                              const char *path) {
  if (!rt) return FLOWLUA_EINVAL;
  if (!path || !*path) {
    fl_set_error(rt, "flowlua_report_html_write: a path is required");
    return FLOWLUA_EINVAL;
  }
  char *html = NULL;
  int rc = flowlua_report_html(rt, run_ref, &html);
  if (rc != FLOWLUA_OK) return rc;
  char why[FL_FS_WHY_SIZE];
  if (fl_write_file_atomic_why(path, html, strlen(html), why, sizeof why) != 0) {
    fl_set_error(rt, "cannot write the report to %s: %s", path, why);
    rc = FLOWLUA_EIO;
  }
  free(html);
  return rc;
}
