/*
 * runview.c — flowlua_run_view_*: one stored run loaded once and read in
 * parts (summary, a page of task runs, the graph, the timeline), and
 * flowlua_run_mark_get, what a watcher compares to learn that a run
 * changed. For the web UI, whose page of a 100,000-task run must neither
 * send nor draw the run whole.
 *
 * Reading never runs a script: the graph is the one stored with the run.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "run_json.h"
#include "store.h"

struct flowlua_run_view {
  fl_store_run_detail *d;
  /* Read on the first timeline: they cost more than the run itself (every
     state change of every task run), and most requests never need them. */
  fl_store_attempt_list attempts;
  int have_attempts;
  /* The graph's JSON once made, for max_nodes graph_max: laying out
     100,000 nodes costs some 100 ms, and the view never changes. */
  char *graph;
  size_t graph_max;
};

/* Why the run's graph cannot be drawn, or NULL (report.c says the same
   for the HTML report). */
static const char *graph_note(const fl_store_run_detail *d) {
  switch (d->edges_state) {
  case FL_STORE_EDGES_RECORDED: return NULL;
  case FL_STORE_EDGES_DAMAGED:
    return "the edges stored with the run are damaged (an edge names no "
           "task of the run)";
  default:
    return "the run was recorded by a flowlua older than 0.6.0, which did "
           "not store the graph's edges";
  }
}

int flowlua_run_view_open(flowlua *rt, const char *run_ref,
                          flowlua_run_view **out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  fl_store *st, *tmp;
  int rc = fl_history_open_run(rt, "flowlua_run_view_open", run_ref, &st, &tmp);
  if (rc) return rc;
  flowlua_run_view *v = calloc(1, sizeof *v);
  if (!v) {
    fl_store_close(tmp);
    fl_set_error(rt, "out of memory reading run '%s'", run_ref);
    return FLOWLUA_ENOMEM;
  }
  rc = fl_store_load_run(st, run_ref, NULL, &v->d);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
    flowlua_run_view_free(v);
  } else {
    *out = v;
  }
  fl_store_close(tmp);
  return rc;
}

void flowlua_run_view_free(flowlua_run_view *v) {
  if (!v) return;
  fl_store_attempt_list_free(&v->attempts);
  fl_store_run_detail_free(v->d);
  free(v->graph);
  free(v);
}

const char *flowlua_run_view_id(const flowlua_run_view *v) {
  return v ? v->d->run.run_id : NULL;
}

int flowlua_run_view_state(const flowlua_run_view *v) {
  return v ? v->d->run.state : -1;
}

/* Hands the JSON in b to *out, or fails with ENOMEM naming what. */
static int give(flowlua *rt, fl_buf *b, const char *what, char **out) {
  if (b->oom || !b->data) {
    fl_buf_free(b);
    fl_set_error(rt, "out of memory writing %s", what);
    return FLOWLUA_ENOMEM;
  }
  *out = b->data;
  b->data = NULL;
  fl_buf_free(b);
  return FLOWLUA_OK;
}

int flowlua_run_view_summary(flowlua *rt, const flowlua_run_view *v,
                             char **out) {
  if (!rt || !v || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  const fl_store_run_detail *d = v->d;
  fl_buf b = FL_BUF_INIT;
  fl_store_print_run_head(&b, d);
  fl_buf_addf(&b, ",\"task_runs\":%zu,\"graph\":{\"tasks\":%zu,\"edges\":%zu}}\n",
              d->n_tasks, d->n_graph_keys,
              d->edges_state == FL_STORE_EDGES_RECORDED ? d->n_edges : 0);
  return give(rt, &b, "a run's summary", out);
}

int flowlua_run_view_tasks(flowlua *rt, const flowlua_run_view *v,
                           const flowlua_tasks_query *q, char **out) {
  if (!rt || !v || !q || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  if (q->state < -1 || q->state >= FLOWLUA_TASK_STATE_COUNT) {
    fl_set_error(rt, "flowlua_run_view_tasks: no task state %d", q->state);
    return FLOWLUA_EINVAL;
  }
  const fl_store_run_detail *d = v->d;
  fl_buf b = FL_BUF_INIT;
  size_t total = 0, listed = 0;
  fl_buf_adds(&b, "{\"tasks\":[");
  for (size_t i = 0; i < d->n_tasks; i++) {
    const fl_store_task_row *t = &d->tasks[i];
    if (q->state >= 0 && t->state != q->state) continue;
    if (total++ < q->offset || listed == q->limit) continue;
    fl_buf_adds(&b, listed++ ? ",\n" : "\n");
    fl_store_print_task_json(&b, d, i, NULL, NULL);
  }
  fl_buf_addf(&b, "],\"total\":%zu,\"offset\":%zu}\n", total, q->offset);
  return give(rt, &b, "a run's task runs", out);
}

int flowlua_run_view_graph(flowlua *rt, flowlua_run_view *v,
                           size_t max_nodes, char **out) {
  if (!rt || !v || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  if (v->graph && v->graph_max == max_nodes) {
    if (!(*out = strdup(v->graph))) {
      fl_set_error(rt, "out of memory writing a run's graph");
      return FLOWLUA_ENOMEM;
    }
    return FLOWLUA_OK;
  }
  const fl_store_run_detail *d = v->d;
  const char *note = graph_note(d);
  static const fl_report_edge no_edges[1];
  const fl_report_edge *edges = note ? NULL : d->n_edges ? d->edges : no_edges;
  fl_buf b = FL_BUF_INIT;
  if (fl_run_json_graph(&b, d, edges, note ? 0 : d->n_edges, note, max_nodes))
    b.oom = 1;
  int rc = give(rt, &b, "a run's graph", out);
  if (rc == FLOWLUA_OK) { /* kept if it can be: a copy is only a cache */
    free(v->graph);
    v->graph = strdup(*out);
    v->graph_max = max_nodes;
  }
  return rc;
}

/* Reads the run's attempts once, from rt's history. A task run recorded
   after the run was loaded has no row in the view: its attempts are left
   out (fl_store_load_attempts maps them by key). */
static int load_attempts(flowlua *rt, flowlua_run_view *v) {
  if (v->have_attempts) return FLOWLUA_OK;
  fl_store *st, *tmp;
  int rc = fl_history_open_run(rt, "flowlua_run_view_timeline",
                               v->d->run.run_id, &st, &tmp);
  if (rc) return rc;
  rc = fl_store_load_attempts(st, v->d, &v->attempts);
  if (rc != FLOWLUA_OK)
    fl_set_error(rt, "%s", fl_store_errmsg(st));
  else
    v->have_attempts = 1;
  fl_store_close(tmp);
  return rc;
}

int flowlua_run_view_timeline(flowlua *rt, flowlua_run_view *v,
                              size_t offset, size_t limit, char **out) {
  if (!rt || !v || !out) return FLOWLUA_EINVAL;
  *out = NULL;
  int rc = load_attempts(rt, v);
  if (rc) return rc;
  fl_buf b = FL_BUF_INIT;
  fl_run_json_timeline(&b, v->d, &v->attempts, fl_wall_time(), offset, limit);
  return give(rt, &b, "a run's timeline", out);
}

int flowlua_run_mark_get(flowlua *rt, const char *run_id,
                         flowlua_run_mark *out) {
  if (!rt || !out) return FLOWLUA_EINVAL;
  if (!FL_API_SIZED(rt, "flowlua_run_mark_get", out)) return FLOWLUA_EINVAL;
  fl_store *st, *tmp;
  int rc = fl_history_open_run(rt, "flowlua_run_mark_get", run_id, &st, &tmp);
  if (rc) return rc;
  fl_store_run_mark m;
  rc = fl_store_run_mark_get(st, run_id, &m);
  if (rc != FLOWLUA_OK) {
    fl_set_error(rt, "%s", fl_store_errmsg(st));
  } else {
    out->state = m.state;
    out->ended_at = m.ended_at;
    out->task_runs = m.task_runs;
    out->changes = m.changes;
  }
  fl_store_close(tmp);
  return rc;
}
